"""numba kernels for suanli. Imports only numpy and numba.

Kernels are pure functions of flat arrays (layouts in :mod:`kernels.layout`), writing into
preallocated outputs, with integer codes for variants and status.

numba's on-disk cache (``cache=True``) is keyed on each kernel file's own timestamp, not on
the index constants it reads from ``layout.py``; a cache compiled against an older layout would
read the wrong slots. So the cache is dropped whenever ``layout.py`` changes.
"""
import hashlib
import os
from pathlib import Path


def _drop_stale_cache() -> None:
    here = Path(__file__).resolve().parent
    cache = here / "__pycache__"
    try:
        stamp = hashlib.sha256((here / "layout.py").read_bytes()).hexdigest()[:16]
        mark = cache / "layout.stamp"
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
