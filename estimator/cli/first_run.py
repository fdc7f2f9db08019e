"""The first answer after an install: say on stderr that the kernels are being compiled (and
about how long that takes), then how long the wait really was."""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager


def _err(text: str) -> None:
    print(f"suanli: {text}", file=sys.stderr, flush=True)


@contextmanager
def compiling(modules):
    """Wrap work that runs the kernels of ``modules`` (e.g. ["kernels.training"])."""
    from estimator.warm import cold_kernels, compile_estimate_s

    cold = cold_kernels(modules)
    if not cold:
        yield
        return
    start = time.perf_counter()
    _err(f"compiling the estimator once (about {compile_estimate_s(cold)} s); later runs reuse "
         "the compiled kernels ('suanli warmup' does this ahead of time)")
    ok = False
    try:
        yield
        ok = True
    finally:
        waited = time.perf_counter() - start
        still = cold_kernels(cold) if ok else []
        if still:
            _err(f"waited {waited:.1f} s; numba could not cache the compiled kernels, so every run "
                 "compiles again: set NUMBA_CACHE_DIR to a writable folder")
        elif ok:
            _err(f"compiled and answered in {waited:.1f} s; the next run skips the compile")
