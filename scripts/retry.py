"""Run a command up to N times: ``python scripts/retry.py [-C DIR] N CMD ARGS...`` (tox's npm installs).

``-C DIR`` runs the command in DIR. npm is run there rather than with ``--prefix DIR``: ``--prefix``
also moves npm's *global* config file under DIR, so a machine-wide setting such as the CA bundle of
a registry proxy (``cafile``) silently stops applying and every fetch fails its certificate check.

Registry downloads fail transiently (a reset connection, a certificate error mid-rotation); npm's
own fetch retries do not cover every such failure, so the whole install is retried. The wait
grows by ``RETRY_DELAY`` seconds (default 10) after each failure. Exits with the last status.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    cwd = None
    if argv[:1] == ["-C"] and len(argv) > 1:
        cwd, argv = argv[1], argv[2:]
    if len(argv) < 2 or not argv[0].isdigit() or int(argv[0]) < 1:
        print("usage: retry.py [-C DIR] N CMD [ARGS...]", file=sys.stderr)
        return 2
    tries, command = int(argv[0]), argv[1:]
    delay = float(os.environ.get("RETRY_DELAY", "10"))
    for attempt in range(1, tries + 1):
        status = subprocess.call(command, cwd=cwd)
        if status == 0:
            return 0
        if attempt < tries:
            print(f"retry.py: {command[0]} exited {status}; retrying ({attempt}/{tries - 1})", file=sys.stderr, flush=True)
            time.sleep(delay * attempt)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
