"""The `vaultctl` command-line adapter (Click).

httpx imports its own command-line tool (`httpx._main`: rich's console, progress, syntax and
table modules, pygments) on every import when rich is installed, as it is here: ~20 ms of each
`vaultctl --addr ...` call (issue 16 asks for 150 ms). vaultctl never runs httpx's tool, so its
import is refused in the CLI's process, before anything imports httpx; httpx then defines its
own stand-in (`httpx.main` says its dependencies are missing). The library does not import this
package and is not affected.
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
