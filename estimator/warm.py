"""The numba kernels' first compile: tell whether the on-disk cache is cold, and compile ahead.

numba compiles the kernels the first time they run after an install (tens of seconds) and
caches the machine code on disk (``cache=True``); later runs load it. :func:`cold_kernels` looks
at the cache index files only (no compiling, well under a millisecond per kernel), so the
command line can say why the first answer is slow; :func:`warmup` compiles every kernel up
front, e.g. in a Dockerfile (``RUN suanli warmup``).
"""
from __future__ import annotations

import importlib
import time
import types

#: the kernel modules, with their compile time on a shared 2-core x86-64 machine (numba 0.68;
#: measured 18-49 s and 16-28 s depending on load): the "about N s" of the first-run notice
KERNELS = {"kernels.training": 25, "kernels.inference": 20}


def _dispatchers(mod) -> dict:
    """numba dispatchers defined in ``mod`` (name -> dispatcher)."""
    out = {}
    for name, obj in vars(mod).items():
        if getattr(obj, "__module__", None) == mod.__name__ and hasattr(obj, "_cache") \
                and hasattr(obj, "py_func"):
            out[name] = obj
    return out


def entry_kernels(mod) -> list:
    """Dispatchers that plain Python functions of ``mod`` call (what the estimator runs; the
    others are compiled into them). All dispatchers when none is called from Python."""
    disp = _dispatchers(mod)
    called: set[str] = set()
    for obj in vars(mod).values():
        if isinstance(obj, types.FunctionType) and obj.__module__ == mod.__name__:
            stack = [obj.__code__]
            while stack:
                code = stack.pop()
                called.update(code.co_names)
                stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    entries = [d for n, d in disp.items() if n in called]
    return entries or list(disp.values())


def _cached(dispatcher) -> bool | None:
    """True when the on-disk cache holds a compiled version of the current source; None when
    numba caching is off or its layout is not the one this code knows."""
    try:
        cache = dispatcher._cache
        index = cache._cache_file._load_index()
    except Exception:  # noqa: BLE001  (private numba API: never fail a command over it)
        return None
    if type(cache).__name__ == "NullCache":
        return None
    return len(index) > 0


def cold_kernels(modules=None) -> list[str]:
    """The kernel modules (of ``modules``, default all) whose entry kernels must be compiled
    before they run. Empty when everything is cached or when it cannot tell.

    >>> from estimator.warm import cold_kernels
    >>> set(cold_kernels()) <= {"kernels.training", "kernels.inference"}
    True
    """
    out = []
    for name in modules or KERNELS:
        mod = importlib.import_module(name)
        states = [_cached(d) for d in entry_kernels(mod)]
        if any(s is False for s in states):
            out.append(name)
    return out


def compile_estimate_s(modules) -> int:
    """Expected compile time of these kernel modules, s (from :data:`KERNELS`)."""
    return sum(KERNELS.get(m, 30) for m in modules)


def cache_dirs() -> list[str]:
    """Where numba keeps the compiled kernels."""
    dirs = []
    for name in KERNELS:
        for d in entry_kernels(importlib.import_module(name)):
            try:
                p = d._cache._cache_path
            except Exception:  # noqa: BLE001
                continue
            if p not in dirs:
                dirs.append(p)
    return dirs


def _compile_training() -> None:
    from estimator.api import estimate_training
    from estimator.catalog import Catalog

    estimate_training("llama3-8b", "h100-sxm", chips=8, gbs=8, seq_len=1024,
                      catalog=Catalog(use_env=False))


def _compile_inference() -> None:
    from estimator.api import estimate_inference
    from estimator.catalog import Catalog

    estimate_inference("llama3-8b", "h100-sxm", chips=1, input_len=64, output_len=8,
                       catalog=Catalog(use_env=False))


_COMPILERS = {"kernels.training": _compile_training, "kernels.inference": _compile_inference}


def warmup(progress=None) -> dict:
    """Compile (or load) every kernel now; returns seconds per kernel module and whether the
    cache holds them afterwards. ``progress(name, cold)`` is called before each module.

    >>> from estimator import warmup
    >>> r = warmup()
    >>> sorted(r["seconds"]), r["cold_after"]
    (['kernels.inference', 'kernels.training'], [])
    """
    cold_before = cold_kernels()
    seconds = {}
    for name, run in _COMPILERS.items():
        if progress:
            progress(name, name in cold_before)
        t = time.perf_counter()
        run()
        seconds[name] = time.perf_counter() - t
    return {"seconds": seconds, "cold_before": cold_before, "cold_after": cold_kernels(),
            "cache_dirs": cache_dirs()}
