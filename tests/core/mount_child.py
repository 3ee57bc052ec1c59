"""A separate process for the mount crash test: `python mount_child.py DSN MOUNT`, the master key
as one JSON line on stdin. It unlocks, prints "ready", waits for "go", disables MOUNT and prints
"done" (unless it is killed first)."""

from __future__ import annotations

import json
import sys

from strongroom import VaultConfig, open_vault

FAST = VaultConfig(
    argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1, auto_lock=False
)


def main() -> None:
    dsn, mount = sys.argv[1], sys.argv[2]
    key = json.loads(sys.stdin.readline())["key"]
    vault = open_vault(dsn, FAST)
    vault.unlock(key)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    vault.mounts.disable(mount)
    sys.stdout.write("done\n")
    sys.stdout.flush()
    vault.close()


if __name__ == "__main__":
    main()
