"""Who owns a build folder right now: one lock file per (build folder, name), held with `flock`.

`hold(out, name, command)` takes `OUT/.avuie-tmp/locks/<name>.lock` (a source's build takes its source name,
the commit step takes `commit`) and writes who holds it: pid, host, command and start time. A second holder gets
`LockHeld` naming them; a lock whose holder died is free (the kernel drops a dead process's flock) and is taken
over with a notice naming the dead holder. The file itself is never deleted (deleting a flock'ed file would let
two processes hold "the" lock), only emptied on release.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from avuie.shards.layout import lock_path


class LockHeld(RuntimeError):
    """The lock is held by another live process; `holder` is what it wrote (pid, host, command, started)."""

    def __init__(self, path: Path, holder: dict) -> None:
        self.path, self.holder = path, holder
        who = ", ".join(f"{k} {holder[k]}" for k in ("pid", "host", "started") if k in holder)
        command = holder.get("command") or "?"
        super().__init__(f"{path.parent.parent.parent} is in use by another avuie ({who}): {command}")


@dataclass
class Lock:
    """A held lock: its file, open handle and the notice about a dead holder it took over (or "")."""

    path: Path
    handle: IO[str]
    notice: str = ""

    def release(self) -> None:
        """Empty the file and drop the lock."""
        with contextlib.suppress(OSError):
            self.handle.seek(0)
            self.handle.truncate()
            self.handle.flush()
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        self.handle.close()


def current_command() -> str:
    """The command line of this process as a user would retype it (`avuie ...` for the CLI)."""
    import shlex

    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("avuie", "__main__.py", "-m"):
        argv[0] = "avuie"
    return shlex.join(argv)


def _read_holder(handle: IO[str]) -> dict:
    handle.seek(0)
    try:
        holder = json.loads(handle.read() or "{}")
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def acquire(out: str | os.PathLike, name: str, command: str | None = None, wait: bool = False) -> Lock:
    """Take the lock `name` of build folder `out`; raise LockHeld (or wait, with `wait`) while another holds it."""
    path = lock_path(out, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - kept open while held
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        holder = _read_holder(handle)
        handle.close()
        raise LockHeld(path, holder) from None
    old = _read_holder(handle)
    notice = ""
    if old.get("pid") and old.get("pid") != os.getpid():
        notice = (
            f"took over the lock of {Path(out)} left by pid {old['pid']} on {old.get('host', '?')} "
            f"(started {old.get('started', '?')}, no longer running): {old.get('command', '?')}"
        )
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command or current_command(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(info))
    handle.flush()
    return Lock(path, handle, notice)


@contextlib.contextmanager
def hold(out: str | os.PathLike, name: str, command: str | None = None, wait: bool = False) -> Iterator[Lock]:
    """`acquire` as a context manager: the lock is released when the block ends (or the process dies)."""
    lock = acquire(out, name, command, wait)
    try:
        yield lock
    finally:
        lock.release()


@contextlib.contextmanager
def hold_all(
    out: str | os.PathLike, names: list[str] | set[str], command: str | None = None
) -> Iterator[list[Lock]]:
    """Hold the locks `names` of `out` (taken in sorted order, never waiting): all of them or none."""
    locks: list[Lock] = []
    try:
        for name in sorted(set(names)):
            locks.append(acquire(out, name, command))
        yield locks
    finally:
        for lock in reversed(locks):
            lock.release()
