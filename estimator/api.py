"""The library's public entry points: argument checks, then the estimator.

Each function checks its arguments first (finite numbers in sane ranges, known names; errors
name the parameter, e.g. ``chips must be positive``), accepts ``precision="auto"`` as the
command line does, and then calls the estimator. Import them from :mod:`estimator`::

    from estimator import estimate_training, estimate_inference, size_for_time

The numba kernels load on first use, not on import.
"""
from __future__ import annotations

from estimator.args import check, check_derate, check_optional
from estimator.errors import InputError
from estimator.units import derate_text, parse_count

#: precisions a training plan can use (estimator.packing.PREC_CODES)
TRAIN_PRECISIONS = ("bf16", "fp16", "fp8", "fp4")
#: weight/activation formats for serving (estimator.inference.WPREC_CODES)
SERVE_PRECISIONS = ("bf16", "fp16", "fp8", "fp4", "int8", "int4", "w4a8")
KV_PRECISIONS = ("bf16", "fp16", "fp8", "int8")
RECOMPUTE = ("none", "selective", "partial", "full")
PHASES = ("e2e", "prefill", "decode")
_DEGREES = ("tp", "pp", "dp", "cp", "ep", "vpp", "mbs")


def _degree(name: str, v) -> None:
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError(f"{name} must be a whole number (got {v!r})", name)
    if v <= 0:
        raise InputError(f"{name} must be positive (got {v})", name)


def _one_of(name: str, v, allowed) -> None:
    if v not in allowed:
        raise InputError(f"{name} must be one of {', '.join(map(str, allowed))} (got {v!r})", name)


def _train_precision(precision):
    if precision is None or precision == "auto":
        return None
    _one_of("precision", precision, TRAIN_PRECISIONS + ("auto",))
    return precision


def _whatif_note(overrides: dict) -> str | None:
    return f"what-if: {derate_text(overrides)} applied to the datasheet facts" if overrides else None


def estimate_training(model, chip, *, chips: int, gbs: int, seq_len: int, system=None,
                      tp=None, pp=None, dp=None, cp=None, ep=None, vpp=None, mbs=None,
                      recompute=None, zero=None, precision: str | None = "bf16", tokens=None,
                      catalog=None, overrides: dict | None = None, top: int = 1,
                      stack: str | None = None, ep_overlap: bool | None = None, etp=None,
                      moe_dispatcher: str | None = None,
                      require_fit: bool = True):
    """Estimate a training job: the best plan's step time, tokens/s, MFU and memory.

    ``model``, ``chip`` and ``system`` are catalog ids, aliases, YAML paths or spec objects;
    ``chips`` counts packages (an Ascend 910C is one chip of two dies). Plan knobs left as None
    are searched (the plan with the most tokens/s that fits); ``precision="auto"`` (or None)
    searches every precision the chip has a peak for. ``tokens`` (a number or ``"15T"``) adds
    days to train. ``overrides`` scales datasheet facts for a what-if, e.g. ``{"hbm_bw": 0.8}``
    (keys: compute, hbm_bw, hbm_capacity, scale_up, scale_out). ``stack`` names the software
    stack (hwspecs/stacks.yaml; None = the modern default for the chip's class). ``etp`` fixes
    the experts' tensor-parallel degree (MoE parallel folding; None = searched) and
    ``moe_dispatcher`` the MoE token dispatcher (alltoall, allgather or deepep, as the stack
    offers; None = the stack's default). Every
    throughput figure comes with its p10 / p90 (``tokens_per_s_p10`` ...).

    Returns a :class:`TrainingResult`; raises :class:`InputError` (bad argument),
    :class:`PlanError` (a fixed knob breaks a plan rule), :class:`InfeasibleError` (nothing
    fits), :class:`UnknownIdError` or :class:`SpecError`.

    >>> from estimator import estimate_training
    >>> r = estimate_training("llama3-8b", "h100", chips=16, gbs=64, seq_len=4096, tokens="1T")
    >>> r.fits, r.chips, r.plan["tp"] * r.plan["pp"] * r.plan["dp"] * r.plan["cp"]
    (True, 16, 16)
    >>> 0 < r.mfu < 1 and r.days_to_train > 0
    True
    >>> estimate_training("llama3-8b", "h100", chips=float("nan"), gbs=64, seq_len=4096)
    Traceback (most recent call last):
    ...
    estimator.errors.InputError: chips must be a finite number (got nan)
    """
    from estimator import training

    check("chips", chips)
    check("gbs", gbs)
    check("seq_len", seq_len)
    for name, v in zip(_DEGREES + ("etp",), (tp, pp, dp, cp, ep, vpp, mbs, etp)):
        _degree(name, v)
    if recompute is not None:
        _one_of("recompute", recompute, RECOMPUTE)
    if zero is not None:
        _one_of("zero", zero, (0, 1, 2, 3))
    prec = _train_precision(precision)
    tok = None if tokens is None else parse_count(tokens, "tokens")
    ov = check_derate(overrides)
    check("top", top)
    res = training.estimate_training(
        model, chip, chips=int(chips), gbs=int(gbs), seq_len=int(seq_len), system=system, tp=tp,
        pp=pp, dp=dp, cp=cp, ep=ep, vpp=vpp, mbs=mbs, recompute=recompute, zero=zero,
        precision=prec, tokens=tok, catalog=catalog, overrides=ov, top=int(top), stack=stack,
        ep_overlap=ep_overlap, etp=etp, moe_dispatcher=moe_dispatcher, require_fit=require_fit)
    note = _whatif_note(ov)
    if note:
        res.notes.insert(0, note)
    return res


def search_plans(model, chip, *, chips: int, gbs: int, seq_len: int, system=None,
                 precision: str | None = "bf16", top: int = 10, catalog=None,
                 overrides: dict | None = None, stack: str | None = None, **fixed) -> dict:
    """Every valid plan evaluated: the best ``top``, the Pareto front of throughput vs memory
    headroom, and how many plans were rejected, by reason. Fixed knobs (``tp=8``...) narrow
    the search; ``precision="auto"`` searches every precision the chip has.

    >>> from estimator import search_plans
    >>> rep = search_plans("llama3-8b", "h100", chips=8, gbs=64, seq_len=4096, top=3)
    >>> len(rep["top"]), rep["counts"]["evaluated"] >= rep["counts"]["feasible"] > 0
    (3, True)
    >>> rep["top"][0]["tokens_per_s"] >= rep["top"][1]["tokens_per_s"]
    True
    """
    from estimator import training

    check("chips", chips)
    check("gbs", gbs)
    check("seq_len", seq_len)
    check("top", top)
    unknown = sorted(set(fixed) - set(_DEGREES) - {"recompute", "zero", "ep_overlap", "etp", "moe_dispatcher"})
    if unknown:
        raise InputError(f"search_plans: unknown knob(s) {', '.join(unknown)} "
                         f"(knobs: {', '.join(_DEGREES)}, recompute, zero)", unknown[0])
    for name in _DEGREES:
        _degree(name, fixed.get(name))
    if fixed.get("recompute") is not None:
        _one_of("recompute", fixed["recompute"], RECOMPUTE)
    if fixed.get("zero") is not None:
        _one_of("zero", fixed["zero"], (0, 1, 2, 3))
    ov = check_derate(overrides)
    rep = training.search_plans(model, chip, chips=int(chips), gbs=int(gbs), seq_len=int(seq_len),
                                system=system, precision=_train_precision(precision), top=int(top),
                                catalog=catalog, overrides=ov, stack=stack, **fixed)
    rep["derate"] = ov
    return rep


def estimate_inference(model, chip, *, chips: int, input_len: int, output_len: int, system=None,
                       tp=None, pp=None, ep=None, dp=None, batch=None, tpot_slo_ms=None,
                       ttft_slo_ms=None, precision: str = "bf16", kv_precision: str | None = None,
                       phase: str = "e2e", spec_accept: float = 1.0, spec_draft: int | None = None,
                       tbo: int | None = None, stack: str | None = None, catalog=None,
                       overrides: dict | None = None):
    """Serving estimate for one replica of ``chips`` chips: TTFT, TPOT, throughput, memory.

    Knobs left as None are searched; ``batch=None`` takes the largest batch that fits the KV
    cache and meets the SLOs. ``precision`` is the weight/activation format (bf16, fp16, fp8,
    fp4, int8 = W8A8, int4 = W4A16, w4a8) or ``"auto"``: the narrowest of fp8, int8, bf16 the
    chip has a peak for. ``phase``: e2e (output tokens/s, prefill amortised), prefill or decode.

    >>> from estimator import estimate_inference
    >>> r = estimate_inference("llama3-8b", "h100", chips=1, input_len=1000, output_len=200,
    ...                        precision="auto", tpot_slo_ms=50)
    >>> r.plan["precision"], r.tpot_ms <= 50, r.output_tokens_per_s > 0
    ('fp8', True, True)
    """
    from estimator import inference
    from estimator.catalog import default_catalog
    from estimator.serving import auto_serving_precision

    _one_of("phase", phase, PHASES)
    check("chips", chips)
    check("input_len", input_len)
    check("output_len", output_len)
    if phase == "e2e" and output_len == 0:
        raise InputError("output_len must be positive for phase='e2e' (use phase='prefill' for "
                         "prompts only)", "output_len")
    for name, v in (("tp", tp), ("pp", pp), ("ep", ep), ("dp", dp), ("batch", batch)):
        _degree(name, v)
    check_optional("tpot_slo_ms", tpot_slo_ms)
    check_optional("ttft_slo_ms", ttft_slo_ms)
    check("spec_accept", spec_accept)
    if precision == "auto":
        cat = catalog or default_catalog()
        c = cat.chip(chip) if isinstance(chip, str) else chip
        precision = auto_serving_precision(c)
    _one_of("precision", precision, SERVE_PRECISIONS + ("auto",))
    if kv_precision is not None:
        _one_of("kv_precision", kv_precision, KV_PRECISIONS)
    ov = check_derate(overrides)
    res = inference.estimate_inference(
        model, chip, chips=int(chips), input_len=int(input_len), output_len=int(output_len),
        system=system, tp=tp, pp=pp, ep=ep, dp=dp, batch=batch, tpot_slo_ms=tpot_slo_ms,
        ttft_slo_ms=ttft_slo_ms, precision=precision, kv_precision=kv_precision, phase=phase,
        spec_accept=float(spec_accept), spec_draft=spec_draft, tbo=tbo, stack=stack,
        catalog=catalog, overrides=ov)
    note = _whatif_note(ov)
    if note:
        res.notes.insert(0, note)
    return res


def _add_result_examples() -> None:
    """Result types defined with the estimator get the example their fields need here, unless
    their own docstring already has one."""
    from estimator.inference import InferenceResult
    from estimator.results import TrainingResult

    examples = {
        TrainingResult: """

    What :func:`estimate_training` returns: the plan, times (``breakdown_s`` sums to
    ``step_time_s``), throughput, MFU/HFU and memory per chip (``memory_gb_per_chip``).

    >>> from estimator import estimate_training
    >>> r = estimate_training("llama3-8b", "h100", chips=8, gbs=32, seq_len=4096)
    >>> abs(sum(r.breakdown_s.values()) - r.step_time_s) < 1e-9 * r.step_time_s
    True
    >>> sorted(r.to_dict())[:3]
    ['band', 'breakdown_s', 'chip']
""",
        InferenceResult: """

    What :func:`estimate_inference` returns: plan, batch, TTFT/TPOT (ms), throughput per
    replica and per chip, memory per chip and a breakdown in ms.

    >>> from estimator import estimate_inference
    >>> r = estimate_inference("llama3-8b", "h100", chips=1, input_len=500, output_len=100)
    >>> r.batch >= 1, bool(r.memory_gb_per_chip <= r.memory_capacity_gb_per_chip)
    (True, True)
""",
    }
    for cls, text in examples.items():
        if ">>>" not in (cls.__doc__ or ""):
            cls.__doc__ = (cls.__doc__ or cls.__name__) + text
