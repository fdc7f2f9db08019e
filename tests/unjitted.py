"""The kernels' own source, loaded a second time with numba's JIT switched off.

The estimator's per-plan model is written once, as ``@njit`` functions in ``kernels/``. To test
numba semantics (integer/float division, error model, prange, caching) the same functions are
run un-jitted: this imports a private copy of the ``kernels`` package while
``numba.config.DISABLE_JIT`` is set, so every decorated function stays plain Python (and calls
the other plain-Python functions of that copy), then restores the jitted modules. Physics is
tested elsewhere, by closed-form cases (tests/test_closed_forms.py).
"""
import sys
from types import SimpleNamespace

import numba

_PURE = None


def pure_kernels() -> SimpleNamespace:
    """Plain-Python copies of the kernel modules (training, inference, collectives, ...)."""
    global _PURE
    if _PURE is None:
        import kernels.inference  # noqa: F401  (make sure the jitted package is loaded first)
        import kernels.training  # noqa: F401

        saved = {k: v for k, v in sys.modules.items() if k == "kernels" or k.startswith("kernels.")}
        for k in saved:
            del sys.modules[k]
        old = numba.config.DISABLE_JIT
        numba.config.DISABLE_JIT = True
        try:
            import kernels.inference as inf
            import kernels.training as tr
            import kernels.collectives as col
            import kernels.gemm as gm
            import kernels.model as md
            pure = {k: v for k, v in sys.modules.items() if k == "kernels" or k.startswith("kernels.")}
        finally:
            numba.config.DISABLE_JIT = old
            for k in pure:
                del sys.modules[k]
            sys.modules.update(saved)
        _PURE = SimpleNamespace(training=tr, inference=inf, collectives=col, gemm=gm, model=md)
    return _PURE
