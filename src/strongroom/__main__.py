"""`python -m strongroom` runs `vaultctl`."""

from strongroom.cli.main import main

if __name__ == "__main__":
    main()
