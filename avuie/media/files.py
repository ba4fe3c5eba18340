"""Media errors and the cheap check every medium passes before anything opens, hashes or decodes it.

:func:`check_media_file` looks at a path without reading its content: it opens it non-blocking (a FIFO or a
device never blocks the open), checks with ``fstat`` on that same descriptor that it is a regular non-empty
file, and turns every OS error into a :class:`MediaError` with a specific reason. Only then may a caller hash
or decode the file, so a directory, a FIFO, a link to ``/dev/zero``, an unreadable file or a name longer than
the file system allows becomes one reject instead of an aborted or hung build.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

REASONS = (
    "missing_file",
    "empty_file",
    "not_a_file",
    "unreadable",
    "name_too_long",
    "corrupt_media",
    "no_video_stream",
    "no_audio_stream",
    "too_short",
    "timeout",
    "ffmpeg_failed",
)
# OS errors that are about the output side or the whole machine, never about one entry: a build must stop
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EMFILE, errno.ENFILE, errno.ENOMEM})


class MediaError(Exception):
    """A media file could not be used; ``reason`` is one of ``REASONS``, ``detail`` says why in words."""

    def __init__(self, reason: str, detail: str, path: str | Path | None = None):
        if reason not in REASONS:
            raise ValueError(f"unknown MediaError reason {reason!r}")
        self.reason, self.detail, self.path = reason, detail, str(path) if path is not None else None
        super().__init__(f"{reason}: {detail}" + (f" ({path})" if path is not None else ""))


def os_error_reason(exc: OSError) -> str:
    """The reject reason of an OS error met while reading one input file (``unreadable`` when no better one)."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "missing_file"
    if exc.errno == errno.ENAMETOOLONG:
        return "name_too_long"
    if exc.errno in (errno.EISDIR, errno.ENXIO, errno.ENODEV):
        return "not_a_file"
    return "unreadable"


def media_error_from_os(exc: OSError, path: str | Path) -> MediaError:
    """A MediaError for an OS error on input ``path``; re-raises errors of the output side or the machine."""
    if exc.errno in OUTPUT_ERRNOS:
        raise exc
    reason = os_error_reason(exc)
    return MediaError(reason, f"{exc.strerror or type(exc).__name__} (errno {exc.errno})", _short(path))


def _short(path: str | Path) -> str:
    """The path as shown in a reject: very long names are shortened (the reject row stays readable)."""
    text = str(path)
    return text if len(text) <= 300 else f"{text[:150]}...{text[-100:]} ({len(text)} characters)"


_KINDS = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a character device"}
_KINDS |= {stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket"}


def check_media_file(path: str | Path) -> int:
    """Check that ``path`` is a readable, non-empty regular file (links followed); return its size in bytes.

    Nothing is read: ``stat`` says what the path is (a device or FIFO is never opened), then a regular file is
    opened with ``O_NONBLOCK`` (no open can block) and checked again with ``fstat`` on that descriptor.
    Raises MediaError: ``missing_file``, ``name_too_long``, ``not_a_file`` (directory, FIFO, device, socket),
    ``unreadable`` (no permission, I/O error, link loop), ``empty_file``.
    """
    name = os.fspath(path)
    try:
        st = os.stat(name)  # the type first: a device is never opened (opening some has side effects)
        if stat.S_ISREG(st.st_mode):
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
            try:
                st = os.fstat(fd)  # the file actually opened (a name swapped since the stat is caught)
            finally:
                os.close(fd)
    except OSError as exc:
        raise media_error_from_os(exc, name) from exc
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in _KINDS.items() if test(st.st_mode)), "not a regular file")
        raise MediaError("not_a_file", f"the path is {kind}, not a regular file", _short(name))
    if st.st_size == 0:
        raise MediaError("empty_file", "file has zero bytes", _short(name))
    return st.st_size
