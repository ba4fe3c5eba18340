"""Run avuie with a real SIGKILL just before its N-th file-system change (rename, replace or unlink).

`python -m tests.crashkit N ARGS...` runs `avuie ARGS...` in this process with os.replace, os.rename, os.unlink and
os.remove counted; the N-th call kills the process (SIGKILL) before it happens. Exit code -9 means it was killed;
0 means the command finished with fewer than N changes. Used by the kill-at-every-step tests and
scripts/kill_soak.py; the patch is at the OS boundary, so it works on any version of avuie.
"""

from __future__ import annotations

import os
import signal
import sys


def arm(n: int) -> None:
    """Kill this process just before its n-th rename/replace/unlink."""
    count = [0]

    def wrap(fn):
        def inner(*args, **kwargs):
            count[0] += 1
            if count[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)

        return inner

    for name in ("replace", "rename", "unlink", "remove"):
        setattr(os, name, wrap(getattr(os, name)))


def main() -> None:
    """Arm the kill, then run the avuie CLI with the remaining arguments."""
    arm(int(sys.argv[1]))
    from avuie.cli import app

    sys.argv = ["avuie", *sys.argv[2:]]
    app()


if __name__ == "__main__":
    main()
