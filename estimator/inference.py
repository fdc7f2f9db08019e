"""Inference estimates: one serving plan, or the best plan and batch under latency SLOs.

Library entry point: :func:`estimate_inference`. A replica is ``chips`` chips (tp*pp*dp ranks);
knobs left as None are searched, and the batch is the largest that fits in the KV cache and
meets the TPOT/TTFT SLOs. Throughput objective by phase: e2e -> output tokens/s (prefill
amortised), prefill -> input tokens/s, decode -> output tokens/s at a KV length of input_len.

The serving stack (hwspecs/stacks.yaml, ``stack=``; default per chip class) says what the
engine does: graph capture, overlapped scheduling, mixed prefill, KV admission policy, custom
all-reduce, low-latency MoE all-to-all, two-batch overlap, fused quantisation, speculative
decoding, and which weight precisions it serves. The search only uses what the stack has.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from estimator.catalog import Catalog, default_catalog
from estimator.errors import InfeasibleError, InputError, PlanError
from estimator.packing import GIB, pack_hardware, pack_serving_stack
from estimator.plans import divisors
from estimator.training import resolve
from kernels import layout as K
from kernels.inference import evaluate_inference, new_inference_outputs

WPREC_CODES = {"bf16": K.WP_BF16, "fp16": K.WP_FP16, "fp8": K.WP_FP8, "fp4": K.WP_FP4,
               "int8": K.WP_INT8, "int4": K.WP_INT4, "w4a8": K.WP_W4A8}
WPREC_NAMES = {v: k for k, v in WPREC_CODES.items()}
#: the datasheet peak each weight/activation precision needs
WPREC_PEAK = {"bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "fp4": "fp4", "int8": "int8",
              "int4": "bf16", "w4a8": "int8"}
KV_CODES = {"bf16": K.KV_BF16, "fp16": K.KV_BF16, "fp8": K.KV_FP8, "int8": K.KV_INT8}
KV_NAMES = {K.KV_BF16: "bf16", K.KV_FP8: "fp8", K.KV_INT8: "int8"}
PHASES = ("e2e", "prefill", "decode")

MAX_BATCH = 65536
MAX_DRAFT = 15


@dataclass
class InferenceResult:
    model: str
    chip: str
    system: str
    chips: int
    ranks_per_chip: int
    phase: str
    stack: str
    plan: dict
    batch: int
    fits: bool
    ttft_ms: float
    tpot_ms: float
    output_tokens_per_s: float
    output_tokens_per_s_per_chip: float
    input_tokens_per_s_per_chip: float
    kv_cache_gb_per_chip: float
    weights_gb_per_chip: float
    memory_gb_per_chip: float
    memory_capacity_gb_per_chip: float
    max_batch_by_memory: int
    expert_imbalance: float
    breakdown_ms: dict
    search: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    # p10 / p90 (estimator/fitting/bands.py): the serving residual spread for the chip's class
    # combined with the chosen plan re-run at the ends of its spec figures' ranges. Times run
    # the other way: p10 is the fast end. None before a band is attached.
    output_tokens_per_s_p10: float | None = None
    output_tokens_per_s_p90: float | None = None
    tpot_ms_p10: float | None = None
    tpot_ms_p90: float | None = None
    ttft_ms_p10: float | None = None
    ttft_ms_p90: float | None = None
    input_tokens_per_s_per_chip_p10: float | None = None
    input_tokens_per_s_per_chip_p90: float | None = None
    band: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _check_len(name, v, allow_zero=False):
    if v is None or v < 0 or (v == 0 and not allow_zero):
        raise InputError(f"--{name} must be {'>= 0' if allow_zero else 'positive'} (got {v})")


def default_kv_precision(precision: str) -> str:
    """KV cache precision when none is given: the activation precision (fp8 for fp8/fp4
    weights, int8 for W8A8 / W4A8 deployments is NOT assumed: 16-bit)."""
    return "fp8" if precision in ("fp8", "fp4") else "bf16"


def default_draft(spec_accept: float) -> int:
    """Drafted tokens per step when only the mean accepted is given: the fewest that can emit
    that many (accepted <= 1 + drafted)."""
    return max(0, math.ceil(spec_accept - 1.0 - 1e-9))


def _parallel_plans(model, ranks: int, tp, pp, ep, dp, tbo, tbo_ok: bool) -> list[tuple]:
    moe = model.moe is not None
    out = []
    for t in ([tp] if tp else divisors(ranks)):
        if ranks % t or model.heads % t:
            continue
        for p_ in ([pp] if pp else divisors(ranks // t)):
            if (ranks // t) % p_ or p_ > model.layers:
                continue
            d = ranks // (t * p_)
            if dp and dp != d:
                continue
            # serving engines place redundant expert copies (EPLB), so ep need not divide the
            # number of experts; it must divide the replica's tp*dp ranks. The search keeps
            # ep <= experts; a given ep above it means redundant copies (one expert per rank,
            # CloudMatrix-Infer's EP320 for 256 experts)
            eps = [ep] if ep else ([e for e in divisors(t * d) if e <= model.moe.experts] if moe else [1])
            for e in eps:
                if moe and (t * d) % e:
                    continue
                if not moe and e != 1:
                    continue
                if tbo is not None:
                    tbos = [tbo]
                else:
                    tbos = [0, 1] if (moe and e > 1 and tbo_ok) else [0]
                for b in tbos:
                    out.append((t, p_, e, d, b))
    return out


def _batch_grid(bmax: int, dpi: int) -> list[int]:
    g = sorted({int(round(1.1 ** k)) * dpi for k in range(0, 200) if 1.1 ** k * dpi <= bmax} | {bmax})
    return [x for x in g if x >= dpi]


def estimate_inference(model, chip, *, chips: int, input_len: int, output_len: int, system=None,
                       tp=None, pp=None, ep=None, dp=None, batch=None, tpot_slo_ms=None,
                       ttft_slo_ms=None, precision: str = "bf16", kv_precision: str | None = None,
                       phase: str = "e2e", spec_accept: float = 1.0, spec_draft: int | None = None,
                       tbo: int | None = None, stack: str | None = None,
                       catalog: Catalog | None = None, overrides: dict | None = None) -> InferenceResult:
    if phase not in PHASES:
        raise InputError(f"--phase must be one of {', '.join(PHASES)} (got {phase})")
    if chips is None or chips <= 0:
        raise InputError(f"--chips must be positive (got {chips})")
    _check_len("input-len", input_len)
    _check_len("output-len", output_len, allow_zero=True)
    if phase == "e2e" and output_len == 0:
        raise InputError("--phase e2e needs --output-len > 0 (use --phase prefill for prompts only)")
    for n, v in (("tp", tp), ("pp", pp), ("ep", ep), ("dp", dp), ("batch", batch)):
        if v is not None and v <= 0:
            raise InputError(f"--{n} must be positive (got {v})")
    for n, v in (("tpot-slo-ms", tpot_slo_ms), ("ttft-slo-ms", ttft_slo_ms)):
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise InputError(f"--{n} must be a positive number (got {v})")
    if spec_accept is None or not math.isfinite(spec_accept) or not (1.0 <= spec_accept <= 16.0):
        raise InputError("--spec-accept (mean tokens emitted per decode step) must be in [1, 16] "
                         f"(got {spec_accept})")
    if spec_draft is None:
        spec_draft = default_draft(spec_accept)
    if not (0 <= spec_draft <= MAX_DRAFT):
        raise InputError(f"--spec-draft (drafted tokens per step) must be in [0, {MAX_DRAFT}] "
                         f"(got {spec_draft})")
    if spec_accept > 1.0 + spec_draft + 1e-9:
        raise InputError(f"--spec-accept {spec_accept:g} cannot exceed 1 + --spec-draft ({1 + spec_draft})")
    if precision not in WPREC_CODES:
        raise InputError(f"--precision must be one of {', '.join(WPREC_CODES)} (got {precision})")
    cat = catalog or default_catalog()
    m, c, s, cls, mv, hv = resolve(model, chip, system, cat, overrides)
    stack_id, st_spec = cat.serving_stack(stack, cls)
    feats = st_spec.serving.features
    if precision not in feats.precisions:
        raise InputError(f"stack {stack_id} does not serve {precision} weights "
                         f"(it serves: {', '.join(feats.precisions)})")
    if spec_draft > 0 and not feats.speculative:
        raise InputError(f"stack {stack_id} has no speculative decoding (--spec-draft/--spec-accept)")
    if tbo and not feats.two_batch_overlap:
        raise InputError(f"stack {stack_id} has no two-batch overlap")
    need = WPREC_PEAK[precision]
    if c.peak(need) is None and not (need == "bf16" and c.peak("fp16") is not None):
        raise InputError(f"{c.id} has no {need} peak in its spec, needed for {precision} "
                         f"(known: {', '.join(c.supported_precisions()) or 'none'})")
    if kv_precision is None:
        kv_precision = default_kv_precision(precision)
    if kv_precision not in KV_CODES:
        raise InputError(f"--kv-precision must be one of {', '.join(KV_CODES)} (got {kv_precision})")
    if kv_precision == "fp8" and c.peak("fp8") is None:
        raise InputError(f"{c.id} has no fp8 support in its spec for an fp8 KV cache (use int8 or bf16)")
    ranks = chips * c.ranks_per_package
    par = _parallel_plans(m, ranks, tp, pp, ep, dp, tbo, feats.two_batch_overlap)
    if not par:
        if tp and m.heads % tp:
            raise PlanError(f"heads ({m.heads}) not divisible by tp ({tp})")
        raise PlanError(f"no valid serving plan of {ranks} ranks for the fixed knobs "
                        "(tp*pp*dp must equal the ranks; ep must divide tp*dp and the experts)")
    O = 0 if phase == "prefill" else output_len
    base = np.zeros((len(par), K.I_SIZE), dtype=np.int64)
    for i, (t, p_, e, d, b) in enumerate(par):
        base[i, [K.I_TP, K.I_PP, K.I_EP, K.I_DP, K.I_TBO]] = (t, p_, e, d, b)
    base[:, K.I_IN] = input_len
    base[:, K.I_OUT] = O
    base[:, K.I_WPREC] = WPREC_CODES[precision]
    base[:, K.I_KVPREC] = KV_CODES[kv_precision]
    base[:, K.I_SPEC_X100] = int(round(spec_accept * 100))
    base[:, K.I_DRAFT] = spec_draft
    for col, v in pack_serving_stack(st_spec).items():
        base[:, col] = v
    base[:, K.I_BATCH] = base[:, K.I_DP]        # one sequence per attention group: capacity probe
    out0, st0 = new_inference_outputs(len(base))
    evaluate_inference(mv, hv, base, out0, st0)
    rows, ok_plans = [], 0
    for i in range(len(base)):
        if st0[i] == K.ST_NO_PRECISION:
            continue
        bmax = int(min(MAX_BATCH, out0[i, K.Q_KV_CAP_TOKENS] // max(out0[i, K.Q_SEQ_KV], 1.0)))
        dpi = int(base[i, K.I_DP] * base[i, K.I_PP])
        bmax -= bmax % dpi
        if batch is not None:
            grid = [batch]
        else:
            if bmax < dpi:
                continue
            grid = _batch_grid(bmax, dpi)
        ok_plans += 1
        for bb in grid:
            r = base[i].copy()
            r[K.I_BATCH] = bb
            rows.append(r)
    if not rows:
        # nothing fits even one sequence per attention group: say how far off
        best = int(np.argmin(out0[:, K.Q_MEM_WEIGHTS] + out0[:, K.Q_MEM_ACT]))
        need_gb = (out0[best, K.Q_MEM_WEIGHTS] + out0[best, K.Q_MEM_ACT]) / GIB
        raise InfeasibleError(f"{m.name} on {chips} x {c.id}: does not fit at batch 1: needs "
                              f"{need_gb:.1f} GB per rank for weights and workspace plus KV for "
                              f"{int(out0[best, K.Q_SEQ_KV])} tokens, "
                              f"{hv[K.H_HBM_BYTES] / GIB:.1f} GB usable")
    P = np.array(rows)
    out, st = new_inference_outputs(len(P))
    evaluate_inference(mv, hv, P, out, st)
    acc = P[:, K.I_SPEC_X100] / 100.0
    if phase == "e2e":
        score = out[:, K.Q_OUT_TOK_S].copy()
    elif phase == "prefill":
        score = out[:, K.Q_IN_TOK_S].copy()
    else:
        score = P[:, K.I_BATCH] * acc / out[:, K.Q_TPOT] * (out[:, K.Q_TPOT] > 0)
    tpot = out[:, K.Q_TPOT_E2E] if phase == "e2e" else out[:, K.Q_TPOT]
    feasible = st == K.ST_OK
    if tpot_slo_ms is not None and phase != "prefill":
        feasible &= tpot * 1e3 <= tpot_slo_ms
    if ttft_slo_ms is not None:
        feasible &= out[:, K.Q_TTFT] * 1e3 <= ttft_slo_ms
    counts = {"plans": len(par), "evaluated": int(len(P)), "feasible": int(feasible.sum()),
              "out_of_memory": int((st == K.ST_OOM).sum())}
    if not feasible.any():
        fit = st == K.ST_OK
        if not fit.any():
            if batch:
                cap = int(max(out0[:, K.Q_KV_CAP_TOKENS].max() // max(out0[:, K.Q_SEQ_KV].min(), 1.0), 0))
                raise InfeasibleError(f"{m.name} on {chips} x {c.id}: batch {batch} does not fit in "
                                      f"memory (KV for at most {cap} sequences of "
                                      f"{int(out0[:, K.Q_SEQ_KV].min())} tokens with {kv_precision} KV "
                                      f"under {stack_id}); try --kv-precision or more chips")
            raise InfeasibleError(f"{m.name} on {chips} x {c.id}: nothing fits")
        best_tpot = tpot[fit].min() * 1e3
        best_ttft = out[fit, K.Q_TTFT].min() * 1e3
        why = []
        if tpot_slo_ms is not None and best_tpot > tpot_slo_ms:
            why.append(f"the fastest decode step is {best_tpot:.1f} ms > TPOT SLO {tpot_slo_ms:g} ms")
        if ttft_slo_ms is not None and best_ttft > ttft_slo_ms:
            why.append(f"the fastest prefill is {best_ttft:.1f} ms > TTFT SLO {ttft_slo_ms:g} ms")
        raise InfeasibleError(f"{m.name} on {chips} x {c.id}: no batch meets the SLO: " +
                              ("; ".join(why) or "no single plan meets both SLOs"))
    idx = np.flatnonzero(feasible)
    best = idx[np.argmax(score[idx])]
    res = _result(m, c, s, chips, phase, stack_id, P[best], out[best], int(st[best]), hv, counts)
    _attach_band(res, m, c, s, cls, mv, P[best], phase, cat, overrides)
    if stack_id == "other":
        res.notes.append("stack 'other': an in-house engine, taken to have every feature the "
                         "catalog's engines have (the search picks)")
    return res


def _attach_band(res: InferenceResult, m, c, s, cls: str, mv, plan, phase: str, cat: Catalog,
                 overrides: dict | None) -> None:
    """p10 / p90 beside throughput, TPOT and TTFT: the model's serving error for the class
    (uncertainty.yaml, kind "serving") and the chosen plan re-evaluated with every spec figure
    at the low and high ends of its range (by confidence)."""
    from estimator.fitting.bands import combine, spec_overrides, spec_spread

    spread = spec_spread(c, s)
    eff = cat.efficiency().for_chip(c.id)[1]
    ends = []
    for side in (-1, 1):
        hv2 = pack_hardware(c, s, eff, spec_overrides(spread, side, overrides))
        o2, st2 = new_inference_outputs(1)
        evaluate_inference(mv, hv2, plan.reshape(1, -1), o2, st2)
        ends.append(o2[0])
    mb = cat.uncertainty().model_band("serving", cls)

    if phase != "prefill" and res.tpot_ms > 0:
        # output tokens/s and TPOT move together (batch fixed): band the decode step rate
        q = K.Q_TPOT_E2E if phase == "e2e" else K.Q_TPOT
        r0 = 1e3 / res.tpot_ms
        lo, hi = combine(r0, mb, 1.0 / ends[0][q], 1.0 / ends[1][q])
        f_lo, f_hi = lo / r0, hi / r0
        res.output_tokens_per_s_p10 = res.output_tokens_per_s * f_lo
        res.output_tokens_per_s_p90 = res.output_tokens_per_s * f_hi
        res.tpot_ms_p10, res.tpot_ms_p90 = res.tpot_ms / f_hi, res.tpot_ms / f_lo
    t0 = res.ttft_ms / 1e3
    if t0 > 0:
        lo, hi = combine(1.0 / t0, mb, 1.0 / ends[0][K.Q_TTFT], 1.0 / ends[1][K.Q_TTFT])
        res.ttft_ms_p10, res.ttft_ms_p90 = 1e3 / hi, 1e3 / lo
        # prefill-saturated input rate moves with the prefill speed
        res.input_tokens_per_s_per_chip_p10 = res.input_tokens_per_s_per_chip * lo * t0
        res.input_tokens_per_s_per_chip_p90 = res.input_tokens_per_s_per_chip * hi * t0
    res.band = {"calibrated": mb.calibrated, "model_error": mb.basis,
                "model_q10_q90_log": [mb.q10, mb.q90], "spec_spread": spread}
    if not mb.calibrated:
        res.notes.append(f"{cls}: no measured serving runs for this class: wide band")


def _result(m, c, s, chips, phase, stack_id, p, o, status, hv, counts) -> InferenceResult:
    rpp = c.ranks_per_package
    acc = float(p[K.I_SPEC_X100]) / 100.0
    B = int(p[K.I_BATCH])
    if phase == "e2e":
        out_s = float(o[K.Q_OUT_TOK_S])
    else:
        out_s = B * acc / o[K.Q_TPOT] if phase == "decode" else 0.0
    plan = {"tp": int(p[K.I_TP]), "pp": int(p[K.I_PP]), "ep": int(p[K.I_EP]), "dp": int(p[K.I_DP]),
            "precision": WPREC_NAMES[int(p[K.I_WPREC])], "kv_precision": KV_NAMES[int(p[K.I_KVPREC])],
            "two_batch_overlap": bool(p[K.I_TBO]), "spec_accept": acc, "spec_draft": int(p[K.I_DRAFT])}
    bd = {"decode_layers": o[K.Q_D_LAYERS], "decode_comm": o[K.Q_D_COMM],
          "decode_overhead": o[K.Q_D_OVERHEAD], "decode_prefill_share": o[K.Q_D_PREFILL],
          "decode_attention": o[K.Q_D_ATTN], "decode_moe_a2a": o[K.Q_D_MOE_A2A],
          "decode_draft": o[K.Q_D_DRAFT], "decode_weight_stream": o[K.Q_D_WEIGHTS],
          "decode_kv_stream": o[K.Q_D_KV], "prefill_compute": o[K.Q_P_COMPUTE],
          "prefill_comm": o[K.Q_P_COMM], "prefill_overhead": o[K.Q_P_OVERHEAD]}
    res = InferenceResult(
        model=m.name, chip=c.id, system=s.id, chips=chips, ranks_per_chip=rpp, phase=phase,
        stack=stack_id, plan=plan, batch=B, fits=status == K.ST_OK,
        ttft_ms=float(o[K.Q_TTFT]) * 1e3,
        tpot_ms=float(o[K.Q_TPOT_E2E] if phase == "e2e" else o[K.Q_TPOT]) * 1e3,
        output_tokens_per_s=float(out_s), output_tokens_per_s_per_chip=float(out_s) / chips,
        input_tokens_per_s_per_chip=float(o[K.Q_IN_TOK_S]) / chips,
        kv_cache_gb_per_chip=float(o[K.Q_MEM_KV]) * rpp / GIB,
        weights_gb_per_chip=float(o[K.Q_MEM_WEIGHTS]) * rpp / GIB,
        memory_gb_per_chip=float(o[K.Q_MEM_TOTAL]) * rpp / GIB,
        memory_capacity_gb_per_chip=float(hv[K.H_HBM_BYTES] * rpp / GIB),
        max_batch_by_memory=int(o[K.Q_KV_CAP_TOKENS] // max(o[K.Q_SEQ_KV], 1.0)),
        expert_imbalance=float(o[K.Q_IMBALANCE]),
        breakdown_ms={k: float(v) * 1e3 for k, v in bd.items()}, search=counts)
    if rpp > 1:
        res.notes.append(f"{c.id} runs {rpp} ranks per package; per-chip figures are per package")
    if acc > 1 or p[K.I_DRAFT] > 0:
        res.notes.append(f"speculative decoding: {int(p[K.I_DRAFT])} drafted, {acc:g} emitted per step")
    if phase == "e2e":
        res.notes.append("e2e TPOT includes the prefill work owed per step (mixed into decode "
                         "steps or run between them, per the stack)")
    return res
