"""The first answer after an install: say on stderr that the kernels are being compiled (and
about how long that takes), then how long the wait really was.

The notice is for a person waiting at a terminal. It is shown when stderr is a terminal (or
when SUANLI_COMPILE_NOTICE=1), and only once the work has run for ``delay_s``: an input error
found before any kernel compiles stays the single line on stderr, and scripts that read stderr
see no notice unless they ask for it (SUANLI_COMPILE_NOTICE=0 silences it at a terminal)."""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager

DELAY_S = 0.5


def _err(text: str) -> None:
    print(f"suanli: {text}", file=sys.stderr, flush=True)


def wants_notice() -> bool:
    forced = os.environ.get("SUANLI_COMPILE_NOTICE", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def compiling(modules, announce: bool | None = None, delay_s: float = DELAY_S):
    """Wrap work that runs the kernels of ``modules`` (e.g. ["kernels.training"])."""
    from estimator.warm import cold_kernels, compile_estimate_s

    if not (wants_notice() if announce is None else announce):
        yield
        return
    cold = cold_kernels(modules)
    if not cold:
        yield
        return
    start = time.perf_counter()
    said = threading.Event()

    def notice() -> None:
        said.set()
        _err(f"compiling the estimator once (about {compile_estimate_s(cold)} s); later runs "
             "reuse the compiled kernels ('suanli warmup' does this ahead of time)")

    timer = None
    if delay_s <= 0:
        notice()
    else:
        timer = threading.Timer(delay_s, notice)
        timer.daemon = True
        timer.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
        if said.is_set():
            waited = time.perf_counter() - start
            still = cold_kernels(cold) if ok else []
            if still:
                _err(f"waited {waited:.1f} s; numba could not cache the compiled kernels, so every "
                     "run compiles again: set NUMBA_CACHE_DIR to a writable folder")
            elif ok:
                _err(f"compiled and answered in {waited:.1f} s; the next run skips the compile")
