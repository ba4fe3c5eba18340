"""Run avuie with a real SIGKILL just before its N-th file-system change (rename, replace or unlink).

`python -m tests.crashkit N ARGS...` runs `avuie ARGS...` in this process with os.replace, os.rename, os.unlink and
os.remove counted; the N-th call kills the process (SIGKILL) before it happens. Exit code -9 means it was killed;
0 means the command finished with fewer than N changes. The patch is at the OS boundary, so it works on any
version of avuie.

`Crasher()` (used by the kill-at-every-step tests) does the same many times without paying Python's and avuie's
start-up each time: one helper process (`python -m tests.crashkit --serve`) imports avuie once, then forks a child
per command (single-threaded parent, so the fork is safe), arms the child and reports how it ended.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# what the killed commands import lazily (the reasoning client, parquet, the build), imported before the forks
PRELOAD = ("avuie.cli", "openai", "avuie.reasoning.openai_engine", "pyarrow.dataset", "avuie.build.pipeline")


def arm(n: int, under: str | None = None) -> None:
    """Kill this process just before its n-th rename/replace/unlink (of a path under `under` when given: the
    output folder, leaving out the media cutter's scratch files)."""
    count = [0]

    def wrap(fn):
        def inner(*args, **kwargs):
            if under is None or any(str(a).startswith(under) for a in args[:2]):
                count[0] += 1
                if count[0] == n:
                    os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)

        return inner

    for name in ("replace", "rename", "unlink", "remove"):
        setattr(os, name, wrap(getattr(os, name)))


def run_cli(args: list[str]) -> int:
    """Run the avuie CLI with ARGS in this process; return its exit code."""
    from avuie.cli import app

    sys.argv = ["avuie", *args]
    try:
        app()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def serve() -> None:
    """Read `[n, under, args]` JSON lines on stdin; run each in a forked child killed before change n (under
    `under`); answer the child's exit code (-9: killed) as one JSON line."""
    import importlib

    for name in PRELOAD:  # imported once, shared by every child
        importlib.import_module(name)

    answers = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # children's (and stray) output must not mix with the answers
    for line in sys.stdin:
        n, under, args = json.loads(line)
        pid = os.fork()
        if pid == 0:
            arm(n, under)
            code = run_cli(args)
            sys.stdout.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps(os.waitstatus_to_exitcode(status)) + "\n")
        answers.flush()


class Crasher:
    """`with Crasher() as crash: crash(n, *args)` -> the exit code of `avuie ARGS` killed before change n;
    `Crasher(under=OUT)` counts only the changes under OUT."""

    def __init__(self, under: Path | None = None) -> None:
        self.under = None if under is None else str(under)

    def __enter__(self) -> Crasher:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.crashkit", "--serve"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        return self

    def __call__(self, n: int, *args: str) -> int:
        self.proc.stdin.write(json.dumps([n, self.under, list(args)]) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the crash helper died"
        return json.loads(line)

    def __exit__(self, *exc: object) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> None:
    """`--serve`, or arm the kill and run the avuie CLI with the remaining arguments."""
    if sys.argv[1] == "--serve":
        serve()
        return
    arm(int(sys.argv[1]))
    sys.exit(run_cli(sys.argv[2:]))


if __name__ == "__main__":
    main()
