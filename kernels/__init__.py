"""numba kernels for suanli. Imports only numpy and numba.

Kernels are pure functions of flat arrays (layouts in :mod:`kernels.layout`), writing into
preallocated outputs, with integer codes for variants and status.

numba's on-disk cache (``cache=True``) is keyed on each kernel file's own timestamp, not on
the files it calls into: a training kernel compiled against an older ``layout.py`` (index
constants) or ``moe.py`` / ``collectives.py`` (functions compiled into it) would run the old
code. So the cache is dropped whenever any kernel source file changes.
"""
import hashlib
import os
from pathlib import Path


def _drop_stale_cache() -> None:
    here = Path(__file__).resolve().parent
    cache = here / "__pycache__"
    try:
        h = hashlib.sha256()
        for src in sorted(here.glob("*.py")):
            h.update(src.name.encode() + b"\0" + src.read_bytes())
        stamp = h.hexdigest()[:16]
        mark = cache / "sources.stamp"
        if mark.is_file() and mark.read_text() == stamp:
            return
        if cache.is_dir():
            for f in cache.iterdir():
                if f.suffix in (".nbi", ".nbc"):
                    f.unlink()
        cache.mkdir(exist_ok=True)
        mark.write_text(stamp)
    except OSError:  # read-only install: numba then caches elsewhere or not at all
        pass


if os.environ.get("SUANLI_KEEP_NUMBA_CACHE") != "1":
    _drop_stale_cache()
