"""`python -m strongroom` runs `vaultctl`."""

from strongroom.cli.startup import main

if __name__ == "__main__":
    main()
