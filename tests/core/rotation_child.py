"""A separate process on a test vault, driven over stdin/stdout by rotation tests.

Usage: python rotation_child.py MODE DSN BATCH; the master keys arrive as one JSON line on stdin
(never in argv). Modes:
  serve   unlock, print "ready", wait for "go", then read `count` secrets `on/<i>` (expecting
          `val-<i>`), write `on/child`, read it back, print "ok <current term>".
  rotate  unlock with `key`, print "ready", rotate_all(`new_key`) printing "progress D T" per
          batch, then "done".
  resume  unlock with `key`, print "ready", rotate_all(`key`) (resumes), "progress"..., "done".
"""

from __future__ import annotations

import json
import sys

from strongroom import VaultConfig, open_vault

FAST = VaultConfig(
    argon2_time_cost=1,
    argon2_memory_kib=1024,
    argon2_parallelism=1,
    auto_lock=False,
    rotation_batch=int(sys.argv[3]),
)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    mode, dsn = sys.argv[1], sys.argv[2]
    args = json.loads(sys.stdin.readline())
    vault = open_vault(dsn, FAST)
    vault.unlock(args["key"])
    say("ready")
    if mode == "serve":
        sys.stdin.readline()
        for i in range(args["count"]):
            if vault.get_secret(f"on/{i}") != f"val-{i}":
                say(f"bad on/{i}")
                return
        vault.create_secret("on/child", "from-child")
        assert vault.get_secret("on/child") == "from-child"
        say(f"ok {vault.status().current_term}")
    elif mode in ("rotate", "resume"):
        key = args["new_key"] if mode == "rotate" else args["key"]
        vault.rotate_all(key, progress=lambda done, total: say(f"progress {done} {total}"))
        say("done")
    vault.close()


if __name__ == "__main__":
    main()
