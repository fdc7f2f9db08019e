"""Training estimates: evaluate one plan, or search every valid plan for the best one.

Library entry point: :func:`estimate_training`. The numba kernel does the arithmetic
(kernels/training.py); this module resolves specs, packs them, enumerates plans, picks the
best feasible one and names the parts of the answer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from estimator.catalog import Catalog, default_catalog
from estimator.errors import InfeasibleError, InputError, PlanError
from estimator.packing import DISP_CODES, DISP_NAMES, GIB, PREC_CODES, RECOMPUTE_CODES, pack_hardware, pack_model, pack_stack
from estimator.plans import Workload, check_plan, enumerate_plans
from estimator.results import TrainingResult, build_result, plan_dict
from estimator.specs import ChipSpec, ModelSpec, SystemSpec
from kernels import layout as K
from kernels.training import evaluate_training_parallel, new_outputs

CHUNK = 1 << 20


def resolve(model, chip, system=None, catalog: Catalog | None = None,
            overrides: dict | None = None) -> tuple[ModelSpec, ChipSpec, SystemSpec, str, np.ndarray, np.ndarray]:
    cat = catalog or default_catalog()
    m = model if isinstance(model, ModelSpec) else cat.model(model)
    c = chip if isinstance(chip, ChipSpec) else cat.chip(chip)
    s = system if isinstance(system, SystemSpec) else cat.system_for(c, system)
    cls, eff = cat.efficiency().for_chip(c.id)
    return m, c, s, cls, pack_model(m), pack_hardware(c, s, eff, overrides)


def resolve_stack(cat: Catalog, stack, eff_class: str):
    """(stack id, StackSpec, packed stack vector) for a name, alias or None (class default)."""
    sid, spec = cat.stack(stack, eff_class)
    return sid, spec, pack_stack(spec)


def _positive(name: str, v, allow_none=True):
    if v is None and allow_none:
        return
    if v is None or (isinstance(v, (int, float)) and v <= 0):
        raise InputError(f"--{name.replace('_', '-')} must be positive (got {v})")


@dataclass
class SearchOutcome:
    plans: np.ndarray
    out: np.ndarray
    status: np.ndarray

    def counts(self) -> dict:
        st = self.status
        return {"evaluated": int(len(st)), "feasible": int((st == K.ST_OK).sum()),
                "out_of_memory": int((st == K.ST_OOM).sum()),
                "unsupported_precision": int((st == K.ST_NO_PRECISION).sum()),
                "unknown_link": int((st == K.ST_NO_LINK).sum())}

    def ranking(self) -> np.ndarray:
        """Indices of feasible plans, best tokens/s first (ties: less memory first)."""
        ok = np.flatnonzero(self.status == K.ST_OK)
        if len(ok) == 0:
            return ok
        key = np.lexsort((self.out[ok, K.O_MEM_TOTAL], -self.out[ok, K.O_TOKENS_PER_S]))
        return ok[key]

    def top(self, k: int) -> np.ndarray:
        """The first ``k`` of :meth:`ranking` without sorting every feasible plan: the plans at or
        above the k-th best tokens/s (all of them, so ties are broken as in the full ranking),
        then sorted."""
        ok = np.flatnonzero(self.status == K.ST_OK)
        if len(ok) <= k:
            return self.ranking()[:k]
        tps = self.out[ok, K.O_TOKENS_PER_S]
        kth = np.partition(tps, len(tps) - k)[len(tps) - k]
        sel = ok[tps >= kth]
        key = np.lexsort((self.out[sel, K.O_MEM_TOTAL], -self.out[sel, K.O_TOKENS_PER_S]))
        return sel[key][:k]


def evaluate_plans(mv: np.ndarray, hv: np.ndarray, sv: np.ndarray, plans: np.ndarray,
                   progress=None) -> SearchOutcome:
    """Run the kernel over ``plans`` in chunks on every numba thread (progress callback gets
    (done, total))."""
    n = len(plans)
    out, status = new_outputs(n)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        evaluate_training_parallel(mv, hv, sv, plans[start:stop], out[start:stop], status[start:stop])
        if progress:
            progress(stop, n)
    return SearchOutcome(plans, out, status)


def explain_infeasible(oc: SearchOutcome, hv: np.ndarray, chip: ChipSpec) -> str:
    c = oc.counts()
    if c["evaluated"] == 0:
        return "no valid parallel plan for these knobs"
    parts = []
    oom = oc.status == K.ST_OOM
    if oom.any():
        need = oc.out[oom, K.O_MEM_TOTAL].min() / GIB
        have = hv[K.H_HBM_BYTES] / GIB
        unit = "rank" if chip.ranks_per_package > 1 else "chip"
        parts.append(f"does not fit: the smallest plan needs {need:.1f} GB per {unit}, "
                     f"{have:.1f} GB usable")
    if c["unsupported_precision"]:
        parts.append(f"{chip.id} has no peak for the requested precision")
    if c["unknown_link"]:
        die = " (the on-package die-to-die link is null)" if chip.ranks_per_package > 1 and \
            hv[K.H_BW_DIE] <= 0 else ""
        parts.append(f"the plans need a link whose bandwidth is unknown (null) in the spec{die}; "
                     "give it in a user spec file")
    return "; ".join(parts) + f" ({c['evaluated']} plans evaluated)"


@dataclass
class PreparedSearch:
    """Everything a plan search needs, resolved and packed once: the fitting program reuses it
    to re-evaluate the same plans under other efficiency parameters."""

    model: ModelSpec
    chip: ChipSpec
    system: SystemSpec
    eff_class: str
    stack: str
    mv: np.ndarray
    hv: np.ndarray
    sv: np.ndarray
    plans: np.ndarray
    chips: int


def prepare_search(model, chip, *, chips, gbs, seq_len, system=None, tp=None, pp=None, dp=None,
                   cp=None, ep=None, vpp=None, mbs=None, recompute=None, zero=None,
                   precision="bf16", catalog=None, overrides=None, stack=None,
                   ep_overlap=None, etp=None, moe_dispatcher=None) -> PreparedSearch:
    """Validate the inputs, resolve and pack the specs, and enumerate every valid plan."""
    for name, v in (("chips", chips), ("gbs", gbs), ("seq_len", seq_len)):
        _positive(name, v, allow_none=False)
    for name, v in (("tp", tp), ("pp", pp), ("dp", dp), ("cp", cp), ("ep", ep), ("vpp", vpp),
                    ("mbs", mbs), ("etp", etp)):
        _positive(name, v)
    m, c, s, cls, mv, hv = resolve(model, chip, system, catalog, overrides)
    cat = catalog or default_catalog()
    sid, stk, sv = resolve_stack(cat, stack, cls)
    feats = stk.training.features
    if etp is not None and m.moe is None:
        raise PlanError(f"etp (expert tensor parallelism) needs a mixture-of-experts model; {m.name} has no experts")
    if moe_dispatcher is not None:
        if moe_dispatcher not in DISP_CODES:
            raise InputError(f"--moe-dispatcher must be one of {', '.join(DISP_CODES)} (got {moe_dispatcher})")
        if m.moe is None:
            raise PlanError(f"moe_dispatcher needs a mixture-of-experts model; {m.name} has no experts")
        if moe_dispatcher not in feats.dispatchers():
            raise PlanError(f"stack {sid} has no {moe_dispatcher} MoE dispatcher "
                            f"(dispatchers: {', '.join(feats.dispatchers())})")
    if recompute is not None and recompute not in RECOMPUTE_CODES:
        raise InputError(f"--recompute must be one of {', '.join(RECOMPUTE_CODES)} (got {recompute})")
    if zero is not None and zero not in (0, 1, 2, 3):
        raise InputError(f"--zero must be 0-3 (got {zero})")
    if precision is not None:
        if precision not in PREC_CODES:
            raise InputError(f"--precision must be one of {', '.join(PREC_CODES)} (got {precision})")
        if c.peak(precision) is None and not (precision == "bf16" and c.peak("fp16") is not None):
            raise InputError(f"{c.id} has no {precision} peak in its spec "
                             f"(known: {', '.join(c.supported_precisions()) or 'none'})")
        if precision not in feats.precisions:
            raise InputError(f"stack {sid} does not train in {precision} "
                             f"(precisions: {', '.join(feats.precisions)})")
        precs = [precision]
    else:
        precs = [p for p in PREC_CODES if c.peak(p) is not None and p in feats.precisions]
        if not precs:
            raise InputError(f"{c.id} has no known matmul peak in a precision stack {sid} trains in")
    if chips > 10_000_000:
        raise InputError(f"--chips {chips} is beyond any cluster this tool can reason about")
    ranks = chips * c.ranks_per_package
    w = Workload(ranks, gbs, seq_len)
    fixed = {"tp": tp, "pp": pp, "dp": dp, "cp": cp, "ep": ep, "vpp": vpp, "mbs": mbs,
             "recompute": recompute, "zero": zero}
    if all(v is not None for v in fixed.values()) and len(precs) == 1:
        check_plan(m, w, {**fixed, "precision": precs[0], "ep_overlap": ep_overlap, "etp": etp,
                          "moe_dispatcher": moe_dispatcher}, feats)
    elif tp is not None and pp is not None and cp is not None and dp is not None:
        if tp * pp * dp * cp != ranks:
            raise PlanError(f"tp*pp*dp*cp = {tp * pp * dp * cp} must equal the number of ranks ({ranks})")
    plans = enumerate_plans(m, w, {**fixed, "ep_overlap": ep_overlap, "etp": etp,
                                   "moe_dispatcher": moe_dispatcher}, precs, feats)
    if len(plans) == 0:
        # name the rule that kills a fully specified or partly fixed plan
        trial = {k: (v if v is not None else 1) for k, v in fixed.items()}
        trial["recompute"] = trial["recompute"] if recompute else "none"
        trial["zero"] = zero if zero is not None else 1
        if trial["dp"] == 1 and dp is None:
            trial["dp"] = max(1, ranks // (trial["tp"] * trial["pp"] * trial["cp"]))
        if zero is None:
            trial["zero"] = feats.zero_stages[0]
        trial["precision"] = precs[0]
        trial["etp"] = etp
        trial["moe_dispatcher"] = moe_dispatcher
        check_plan(m, w, trial, feats)
        raise PlanError("no valid parallel plan: check that gbs, seq_len and the fixed knobs "
                        f"can be divided over {ranks} ranks")
    return PreparedSearch(m, c, s, cls, sid, mv, hv, sv, plans, chips)


def _run_search(model, chip, **kw):
    ps = prepare_search(model, chip, **kw)
    return (ps.model, ps.chip, ps.system, ps.eff_class, ps.hv, ps.stack, ps.plans,
            evaluate_plans(ps.mv, ps.hv, ps.sv, ps.plans))


def estimate_training(model, chip, *, chips: int, gbs: int, seq_len: int, system=None,
                      tp=None, pp=None, dp=None, cp=None, ep=None, vpp=None, mbs=None,
                      recompute=None, zero=None, precision: str | None = "bf16",
                      tokens: float | None = None, catalog: Catalog | None = None,
                      overrides: dict | None = None, top: int = 1,
                      require_fit: bool = True, stack: str | None = None,
                      ep_overlap: bool | None = None, etp: int | None = None,
                      moe_dispatcher: str | None = None) -> TrainingResult:
    """Estimate a training job. Knobs left as None are searched (best tokens/s that fits).

    ``chips`` counts packages; plan degrees count ranks (see estimator.plans).
    ``precision=None`` searches every precision the chip supports. ``recompute`` may be
    none, selective, partial (full recompute of some layers) or full. ``stack`` names the
    software stack (hwspecs/stacks.yaml; None = the default for the chip's class): the search
    only picks what that stack can run.
    """
    _positive("tokens", tokens)
    cat = catalog or default_catalog()
    ps = prepare_search(
        model, chip, chips=chips, gbs=gbs, seq_len=seq_len, system=system, tp=tp, pp=pp, dp=dp,
        cp=cp, ep=ep, vpp=vpp, mbs=mbs, recompute=recompute, zero=zero, precision=precision,
        catalog=cat, overrides=overrides, stack=stack, ep_overlap=ep_overlap, etp=etp,
        moe_dispatcher=moe_dispatcher)
    m, c, s, cls, hv, sid, plans = ps.model, ps.chip, ps.system, ps.eff_class, ps.hv, ps.stack, ps.plans
    oc = evaluate_plans(ps.mv, ps.hv, ps.sv, ps.plans)
    order = oc.top(max(1, top))
    if len(order) == 0:
        if require_fit:
            raise InfeasibleError(f"{m.name} on {chips} x {c.id}: " + explain_infeasible(oc, hv, c))
        # report the plan that comes closest to fitting
        finite = np.flatnonzero(oc.status != K.ST_NO_PRECISION)
        best = finite[np.argmin(oc.out[finite, K.O_MEM_TOTAL])] if len(finite) else 0
    else:
        best = order[0]
    res = build_result(plans[best], oc.out[best], int(oc.status[best]), model=m.name, chip=c,
                       system=s.id, chips=chips, capacity_gb_rank=hv[K.H_HBM_BYTES] / GIB,
                       eff_class=cls, tokens=tokens, stack=sid)
    if m.moe is not None and res.plan.get("moe_dispatcher") is None:
        res.plan["moe_dispatcher"] = DISP_NAMES[int(ps.sv[K.S_DISP])]
    if s.chip != c.id and s.chip not in c.aliases:
        res.notes.append(f"what-if: system {s.id} normally holds {s.chip}, here filled with {c.id}")
    res.search = oc.counts()
    if res.tokens_per_s > 0:
        attach_band(res, ps, plans[best], cat, overrides)
    if top > 1:
        res.search["top"] = [
            {"plan": plan_dict(plans[i]), "tokens_per_s": float(oc.out[i, K.O_TOKENS_PER_S]),
             "memory_gb_per_chip": float(oc.out[i, K.O_MEM_TOTAL]) * c.ranks_per_package / GIB}
            for i in order[:top]]
    return res


def attach_band(res: TrainingResult, ps: PreparedSearch, plan: np.ndarray, cat: Catalog,
                overrides: dict | None) -> None:
    """p10 / p90 beside every throughput figure of ``res`` (estimator/fitting/bands.py): the
    class's cross-validated residual spread combined with the chosen plan re-evaluated at the
    low and high ends of the spec figures' ranges."""
    from estimator.fitting.bands import combine, spec_overrides, spec_spread

    spread = spec_spread(ps.chip, ps.system)
    eff = cat.efficiency().for_chip(ps.chip.id)[1]
    ends = []
    for side in (-1, 1):
        hv2 = pack_hardware(ps.chip, ps.system, eff, spec_overrides(spread, side, overrides))
        out, st = new_outputs(1)
        evaluate_training_parallel(ps.mv, hv2, ps.sv, plan.reshape(1, -1), out, st)
        ends.append(float(out[0, K.O_TOKENS_PER_S]))
    kind = "training-moe" if ps.model.moe is not None else "training"
    mb = cat.uncertainty().model_band(kind, ps.eff_class)
    lo, hi = combine(res.tokens_per_s, mb, ends[0], ends[1])
    f_lo, f_hi = lo / res.tokens_per_s, hi / res.tokens_per_s
    res.tokens_per_s_p10, res.tokens_per_s_p90 = lo, hi
    res.tokens_per_s_per_chip_p10 = res.tokens_per_s_per_chip * f_lo
    res.tokens_per_s_per_chip_p90 = res.tokens_per_s_per_chip * f_hi
    res.mfu_p10, res.mfu_p90 = res.mfu * f_lo, res.mfu * f_hi
    res.step_time_s_p10, res.step_time_s_p90 = res.step_time_s / f_hi, res.step_time_s / f_lo
    if res.days_to_train is not None:
        res.days_to_train_p10, res.days_to_train_p90 = res.days_to_train / f_hi, res.days_to_train / f_lo
    res.band = {"calibrated": mb.calibrated, "model_error": mb.basis,
                "model_q10_q90_log": [mb.q10, mb.q90], "spec_spread": spread,
                "spec_ends_tokens_per_s": ends}
    if not mb.calibrated:
        res.notes.append(f"{ps.eff_class}: uncalibrated class (no measured runs): wide band")


def search_plans(model, chip, *, chips: int, gbs: int, seq_len: int, system=None,
                 precision: str | None = "bf16", top: int = 10, catalog: Catalog | None = None,
                 overrides: dict | None = None, stack: str | None = None, **fixed) -> dict:
    """Every valid plan evaluated: the best ``top``, the Pareto front of throughput vs memory
    headroom, and rejection counts by reason."""
    knobs = {k: fixed.get(k) for k in ("tp", "pp", "dp", "cp", "ep", "vpp", "mbs", "recompute", "zero")}
    m, c, s, cls, hv, sid, plans, oc = _run_search(
        model, chip, chips=chips, gbs=gbs, seq_len=seq_len, system=system, precision=precision,
        catalog=catalog, overrides=overrides, stack=stack, ep_overlap=fixed.get("ep_overlap"),
        etp=fixed.get("etp"), moe_dispatcher=fixed.get("moe_dispatcher"), **knobs)
    rpp = c.ranks_per_package
    cap = hv[K.H_HBM_BYTES] / GIB * rpp
    peak = {p: (c.peak(p) if c.peak(p) is not None else c.peak("fp16")) or 0.0 for p in PREC_CODES}

    def row(i):
        pdict = plan_dict(plans[i])
        mem = float(oc.out[i, K.O_MEM_TOTAL]) * rpp / GIB
        tps = float(oc.out[i, K.O_TOKENS_PER_S])
        pk = peak[pdict["precision"]] * 1e12 * chips
        return {"plan": pdict, "tokens_per_s": tps, "tokens_per_s_per_chip": tps / chips,
                "step_time_s": float(oc.out[i, K.O_STEP]),
                "mfu": tps * float(oc.out[i, K.O_MODEL_FLOPS_TOK]) / pk if pk else 0.0,
                "memory_gb_per_chip": mem, "headroom_gb": cap - mem}

    order = oc.ranking()
    if len(order) == 0:
        raise InfeasibleError(f"{m.name} on {chips} x {c.id}: " + explain_infeasible(oc, hv, c))
    pareto, best_headroom = [], -np.inf
    for i in order:  # fastest first: keep plans that buy more headroom than every faster one
        head = cap - float(oc.out[i, K.O_MEM_TOTAL]) * rpp / GIB
        if head > best_headroom + 1e-9:
            pareto.append(i)
            best_headroom = head
    return {"model": m.name, "chip": c.id, "system": s.id, "stack": sid, "chips": chips, "gbs": gbs,
            "seq_len": seq_len, "capacity_gb_per_chip": cap, "counts": oc.counts(),
            "top": [row(i) for i in order[:top]], "pareto": [row(i) for i in pareto[:max(top, 10)]]}
