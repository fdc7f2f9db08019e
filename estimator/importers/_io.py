"""Reading user files safely: regular files only, size capped while reading
(estimator.yamlio.read_regular_file), decoded as UTF-8 text."""
from __future__ import annotations

import os

from estimator.errors import SpecError
from estimator.yamlio import read_regular_file


def read_text_file(path: str | os.PathLike, max_bytes: int, what: str = "file") -> str:
    raw = read_regular_file(path, max_bytes, what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(str(path), None, f"not UTF-8 text (bad byte at offset {e.start})") from None
