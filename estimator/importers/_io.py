"""Reading user files safely: regular files only, size capped while reading.

A FIFO, a device such as /dev/zero, or a huge file must give one clear error, never a hang
or a runaway read.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from estimator.errors import SpecError


def read_regular_file(path: str | os.PathLike, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of ``path``; raises SpecError naming the file when it is not a regular
    file, cannot be read, or holds more than ``max_bytes``."""
    name = str(path)
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise SpecError(name, None, "file not found") from None
    except OSError as e:
        raise SpecError(name, None, f"cannot read {what} ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise SpecError(name, None, f"is a directory, expected a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise SpecError(name, None, f"not a regular file (a device, FIFO or socket); expected a {what}")
    if st.st_size > max_bytes:
        raise SpecError(name, None, f"file too large ({st.st_size} bytes; limit {max_bytes})")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(p, flags)
    except OSError as e:
        raise SpecError(name, None, f"cannot read {what} ({e.strerror or e})") from None
    try:
        # the path may have been swapped since the stat: check what was actually opened
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SpecError(name, None, f"not a regular file; expected a {what}")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 16, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise SpecError(name, None, f"file too large (over {max_bytes} bytes)")
    except OSError as e:
        raise SpecError(name, None, f"cannot read {what} ({e.strerror or e})") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_text_file(path: str | os.PathLike, max_bytes: int, what: str = "file") -> str:
    raw = read_regular_file(path, max_bytes, what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(str(path), None, f"not UTF-8 text (bad byte at offset {e.start})") from None
