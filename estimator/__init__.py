"""suanli (算力): how fast clusters of AI accelerators train and serve LLMs, and how big a
cluster a job needs. The library surface (every name in ``__all__`` has a docstring with an
example)::

    >>> from estimator import estimate_training, JobSpec, size_for_time
    >>> r = estimate_training("llama3-8b", "h100", chips=8, gbs=32, seq_len=4096)
    >>> r.fits
    True

Training: :func:`estimate_training`, :func:`search_plans`. Serving: :func:`estimate_inference`,
:func:`serve_size`. Sizing: :class:`JobSpec` with :func:`size_for_time` (and
:func:`sure_count`, the count that meets a deadline at the band's p10),
:func:`match_cluster`, :func:`fastest_under_power`, :func:`compare`, :func:`sweep`.
Measurements: :func:`validate_file`. Specs: :class:`Catalog`. Errors derive from
:class:`SuanliError`; bad arguments raise :class:`InputError` naming the parameter.
Compile the numba kernels ahead of time with :func:`warmup` (``suanli warmup``).

Names load on first use, so ``import estimator`` stays cheap.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    # training and serving (argument checks + precision="auto" in estimator.api)
    "estimate_training": "estimator.api",
    "search_plans": "estimator.api",
    "estimate_inference": "estimator.api",
    "serve_size": "estimator.serving",
    # sizing
    "JobSpec": "estimator.sizing",
    "ClusterRow": "estimator.sizing",
    "evaluate_cluster": "estimator.sizing",
    "size_for_time": "estimator.sizing",
    "sure_count": "estimator.sizing",
    "match_cluster": "estimator.sizing",
    "fastest_under_power": "estimator.sizing",
    "compare": "estimator.sizing",
    "sweep": "estimator.sizing",
    # power, validation, specs, kernels
    "cluster_power": "estimator.power",
    "validate_file": "estimator.validate",
    "Catalog": "estimator.catalog",
    "warmup": "estimator.warm",
    # result types
    "TrainingResult": "estimator.results",
    "InferenceResult": "estimator.inference",
    "ServePlan": "estimator.serving",
    "PowerEstimate": "estimator.power",
    "Goodput": "estimator.goodput",
    # errors
    "SuanliError": "estimator.errors",
    "InputError": "estimator.errors",
    "SpecError": "estimator.errors",
    "UnknownIdError": "estimator.errors",
    "PlanError": "estimator.errors",
    "InfeasibleError": "estimator.errors",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'estimator' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    if name in ("TrainingResult", "InferenceResult"):
        importlib.import_module("estimator.api")._add_result_examples()
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
