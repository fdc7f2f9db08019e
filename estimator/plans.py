"""Parallel plans: the rules a plan must follow, and enumeration of every valid plan.

Degrees are counted in ranks (framework processes): a chip, or a die on chips whose
frameworks run one process per die (``ranks_per_package``). tp * pp * dp * cp = ranks.
EP is carved out of the data-parallel ranks (dp * cp) as in Megatron-Core.

A plan the search proposes must be one the software stack can run: Megatron's micro-batch
rules for the interleaved schedule, only the ZeRO stages, recompute modes and precisions the
stack has, EP overlap only where the stack implements it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from estimator.errors import PlanError
from estimator.packing import DISP_CODES, PREC_CODES
from estimator.specs import ModelSpec
from estimator.specs.stack import TrainingFeatures
from kernels import layout as K

KNOBS = ("tp", "pp", "dp", "cp", "ep", "vpp", "mbs", "recompute", "zero", "precision", "ep_overlap",
         "etp", "moe_dispatcher")
MBS_CHOICES = (1, 2, 4, 8)
VPP_MAX = 16


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True)
class Workload:
    ranks: int
    gbs: int
    seq_len: int


def tp_rule(model: ModelSpec, tp: int) -> str | None:
    kv = model.heads if model.attention is not None else model.kv_heads
    if model.heads % tp:
        return f"heads ({model.heads}) not divisible by tp ({tp})"
    if kv % tp:
        return f"kv heads ({kv}) not divisible by tp ({tp})"
    return None


def schedule_rule(pp: int, vpp: int, m: int, features: TrainingFeatures | None) -> str | None:
    """Megatron's pipeline-schedule rules for m micro-batches per step (megatron/core/
    pipeline_parallel/schedules.py): the interleaved schedule needs the stack to implement it
    and m to be a multiple of pp (so m >= pp)."""
    if vpp > 1:
        if pp == 1:
            return "vpp > 1 needs pp > 1 (interleaving splits pipeline stages)"
        if features is not None and not features.interleaved_pipeline:
            return "the stack has no interleaved pipeline schedule (vpp must be 1)"
        if m % pp:
            return (f"interleaved pipeline: micro-batches per step ({m}) must be a multiple of "
                    f"pp ({pp})")
    return None


def stack_rule(plan: dict, features: TrainingFeatures | None, moe: bool) -> str | None:
    """The knobs the software stack must support."""
    if features is None:
        return None
    if plan["zero"] not in features.zero_stages:
        return f"zero {plan['zero']} is not available in this stack (stages: {features.zero_stages})"
    rc = plan["recompute"]
    if rc == "selective" and not features.selective_recompute:
        return "selective recompute is not available in this stack"
    if rc == "partial" and not features.partial_recompute:
        return "partial recompute (--recompute-num-layers) is not available in this stack"
    if plan.get("ep_overlap") and not features.ep_comm_overlap:
        return "MoE all-to-all overlap is not available in this stack"
    disp = plan.get("moe_dispatcher")
    if disp is not None and disp not in features.dispatchers():
        return (f"MoE dispatcher {disp} is not available in this stack "
                f"(dispatchers: {', '.join(features.dispatchers())})")
    prec = plan.get("precision")
    if prec is not None and prec not in features.precisions:
        return f"the stack does not train in {prec} (precisions: {', '.join(features.precisions)})"
    return None


def folds_experts(features: TrainingFeatures | None) -> bool:
    return features is not None and features.moe_parallel_folding


def ep_rule(tp: int, dp: int, cp: int, ep: int, features: TrainingFeatures | None) -> str | None:
    """EP is carved out of the data-parallel ranks (ep divides dp*cp); with MoE parallel
    folding (Megatron-Core, Liu et al. 2025) the expert layers may also take in the TP ranks:
    ep divides tp*dp*cp and the expert TP degree becomes tp*dp*cp/ep."""
    if (dp * cp) % ep == 0:
        return None
    if folds_experts(features):
        if (tp * dp * cp) % ep == 0:
            return None
        return f"ep ({ep}) must divide tp*dp*cp ({tp * dp * cp}) to fold the expert layers"
    return f"ep ({ep}) must divide dp*cp ({dp * cp}): EP is carved out of data-parallel ranks"


def etp_choices(tp: int, dp: int, cp: int, ep: int, features: TrainingFeatures | None) -> list[int]:
    """Expert tensor-parallel degrees a plan may use. Without MoE parallel folding the experts
    are split over the attention's TP group (etp = tp). With folding (Megatron-Core
    --expert-tensor-parallel-size) the expert layers regroup a stage's tp*dp*cp ranks as
    ETP x EP x expert-DP, so etp*ep must divide tp*dp*cp: the search tries etp = tp, etp = 1
    (what NVIDIA's MoE recipes set: Megatron-Bridge 25.11 perf configs for DeepSeek-V3,
    GPT-OSS and Qwen3 use expert_tensor_parallel_size=1) and the fully folded tp*dp*cp/ep."""
    if not folds_experts(features):
        return [tp]
    width = tp * dp * cp
    cands = [tp] if (dp * cp) % ep == 0 else [width // ep]     # the default rule first
    cands.append(1)
    return [e for i, e in enumerate(cands) if e >= 1 and width % (ep * e) == 0 and e not in cands[:i]]


def etp_rule(tp: int, dp: int, cp: int, ep: int, etp: int, features: TrainingFeatures | None) -> str | None:
    if etp < 1:
        return f"etp must be >= 1 (got {etp})"
    if not folds_experts(features):
        if etp != tp:
            return (f"etp ({etp}) must equal tp ({tp}): this stack splits experts over the "
                    "attention's TP group (no MoE parallel folding)")
        return None
    if (tp * dp * cp) % (ep * etp):
        return f"etp*ep ({etp}*{ep}) must divide tp*dp*cp ({tp * dp * cp}) to fold the expert layers"
    return None


def _dispatcher(plan: dict, features: TrainingFeatures | None) -> str:
    """The plan's MoE dispatcher: its own, else the stack's default."""
    if plan.get("moe_dispatcher") is not None:
        return plan["moe_dispatcher"]
    return features.moe_dispatcher if features is not None else "alltoall"


def stage_slots(model: ModelSpec, features: TrainingFeatures | None) -> int:
    """The most pipeline stages (pp*vpp) the layers can fill: one layer each, plus the
    embedding and the loss where the stack counts them as layers (Megatron-Core
    --account-for-embedding-in-pipeline-split / --account-for-loss-in-pipeline-split)."""
    return model.layers + (2 if features is not None and features.embedding_loss_stages else 0)


def check_plan(model: ModelSpec, w: Workload, plan: dict, features: TrainingFeatures | None = None) -> None:
    """Raise PlanError naming the first rule the (complete) plan breaks."""
    tp, pp, dp, cp, ep, vpp, mbs = (plan[k] for k in ("tp", "pp", "dp", "cp", "ep", "vpp", "mbs"))
    for k in ("tp", "pp", "dp", "cp", "ep", "vpp", "mbs"):
        if plan[k] < 1:
            raise PlanError(f"{k} must be >= 1 (got {plan[k]})")
    if tp * pp * dp * cp != w.ranks:
        raise PlanError(f"tp*pp*dp*cp = {tp}*{pp}*{dp}*{cp} = {tp * pp * dp * cp} "
                        f"must equal the number of ranks ({w.ranks})")
    why = tp_rule(model, tp)
    if why:
        raise PlanError(why)
    if pp * vpp > stage_slots(model, features):
        extra = (" (+2 for the embedding and the loss in this stack)"
                 if features is not None and features.embedding_loss_stages else "")
        raise PlanError(f"pp*vpp = {pp * vpp} pipeline stages exceed the {model.layers} layers{extra}")
    if w.gbs % (dp * mbs):
        raise PlanError(f"gbs ({w.gbs}) not divisible by dp*mbs ({dp}*{mbs})")
    why = schedule_rule(pp, vpp, w.gbs // (dp * mbs), features)
    if why:
        raise PlanError(why)
    if cp > 1 and w.seq_len % (2 * cp):
        raise PlanError(f"seq_len ({w.seq_len}) not divisible by 2*cp ({2 * cp}) for load-balanced CP")
    if model.moe is None:
        if ep != 1:
            raise PlanError(f"ep ({ep}) > 1 needs a mixture-of-experts model")
        if plan.get("moe_dispatcher") is not None:
            raise PlanError("moe_dispatcher needs a mixture-of-experts model")
        if plan.get("etp") not in (None, tp):
            raise PlanError("etp (expert tensor parallelism) needs a mixture-of-experts model")
        if plan.get("ep_overlap"):
            raise PlanError("ep_overlap needs a mixture-of-experts model with ep > 1")
    else:
        why = ep_rule(tp, dp, cp, ep, features)
        if why:
            raise PlanError(why)
        if plan.get("etp") is not None:
            why = etp_rule(tp, dp, cp, ep, plan["etp"], features)
            if why:
                raise PlanError(why)
        if model.moe.experts % ep:
            raise PlanError(f"ep ({ep}) must divide the number of experts ({model.moe.experts})")
        if plan.get("ep_overlap") and (ep == 1 or w.gbs // (dp * mbs) < 2):
            raise PlanError("ep_overlap pairs two micro-batches: it needs ep > 1 and at least 2 "
                            "micro-batches per step")
        if plan.get("ep_overlap") and _dispatcher(plan, features) == "allgather":
            raise PlanError("ep_overlap overlaps all-to-all dispatch; the allgather dispatcher has none")
    if plan["zero"] not in (0, 1, 2, 3):
        raise PlanError(f"zero must be 0-3 (got {plan['zero']})")
    if plan["zero"] >= 2 and pp > 1 and not (features is not None and features.sharded_with_pp):
        raise PlanError(f"zero {plan['zero']} shards gradients per micro-batch and cannot be "
                        "combined with pipeline parallelism in this stack (pp must be 1)")
    why = stack_rule(plan, features, model.moe is not None)
    if why:
        raise PlanError(why)


def enumerate_plans(model: ModelSpec, w: Workload, fixed: dict, precisions: list[str],
                    features: TrainingFeatures | None = None) -> np.ndarray:
    """Every valid plan matching the fixed knobs, as an int64 matrix (kernels.layout P_*)."""
    n = w.ranks
    moe = model.moe is not None
    interleave = features is None or features.interleaved_pipeline

    def choices(name, default):
        v = fixed.get(name)
        return [v] if v is not None else default

    heads: list[int] = []
    parts: list[np.ndarray] = []
    tails: dict = {}
    slots = stage_slots(model, features)
    disp_name = _dispatcher(fixed, features) if moe else "alltoall"
    disp_code = DISP_CODES[fixed["moe_dispatcher"]] if moe and fixed.get("moe_dispatcher") else 0
    # loop order: the knobs the kernel's layer blocks depend on (tp, cp, ep, mbs; precision
    # outermost, below) vary slowest, so consecutive plans reuse the memoised layer costs
    for tp in choices("tp", divisors(n)):
        if n % tp or tp_rule(model, tp):
            continue
        for cp in choices("cp", divisors(n // tp)):
            if (n // tp) % cp:
                continue
            if cp > 1 and w.seq_len % (2 * cp):
                continue
            rest = n // (tp * cp)
            eps = divisors(model.moe.experts) if moe else [1]
            for ep in choices("ep", eps):
                if not moe and ep != 1:
                    continue
                if moe and model.moe.experts % ep:
                    continue
                for mbs in choices("mbs", list(MBS_CHOICES)):
                    for pp in choices("pp", divisors(rest)):
                        if rest % pp or pp > model.layers:
                            continue
                        dp = rest // pp
                        if fixed.get("dp") is not None and fixed["dp"] != dp:
                            continue
                        if w.gbs % (dp * mbs):
                            continue
                        if moe and ep_rule(tp, dp, cp, ep, features):
                            continue
                        m = w.gbs // (dp * mbs)
                        if pp == 1 or not interleave:
                            vpps = [1]
                        else:
                            vpps = [v for v in range(1, VPP_MAX + 1) if pp * v <= slots]
                        epos = [0]
                        if (moe and ep > 1 and m >= 2 and (features is None or features.ep_comm_overlap)
                                and disp_name != "allgather"):
                            epos = [0, 1]
                        if fixed.get("ep_overlap") is not None:
                            want = int(bool(fixed["ep_overlap"]))
                            if want not in epos:
                                continue
                            epos = [want]
                        etps = etp_choices(tp, dp, cp, ep, features) if moe else [tp]
                        if fixed.get("etp") is not None:
                            bad = etp_rule(tp, dp, cp, ep, fixed["etp"], features) if moe else fixed["etp"] != tp
                            if bad:
                                continue
                            etps = [fixed["etp"]]
                        # the schedule rule depends on vpp only through vpp > 1
                        interleaved_ok = pp > 1 and schedule_rule(pp, 2, m, features) is None
                        ok = tuple(v for v in choices("vpp", vpps)
                                   if pp * v <= slots and (v == 1 or interleaved_ok))
                        if not ok:
                            continue
                        key = (ok, tuple(etps), tuple(epos))
                        tail = tails.get(key)
                        if tail is None:
                            tail = np.array([(v, epo, e) for v in ok for e in etps for epo in epos],
                                            dtype=np.int64)
                            tails[key] = tail
                        heads.extend((tp, pp, dp, cp, ep, mbs))
                        parts.append(tail)
    if not parts:
        return np.zeros((0, K.P_SIZE), dtype=np.int64)
    # one head (tp, pp, dp, cp, ep, mbs) per (vpp, etp, ep-overlap) tail, in loop order
    head = np.array(heads, dtype=np.int64).reshape(-1, 6)
    tail = np.concatenate(parts)
    head = np.repeat(head, [len(t) for t in parts], axis=0)
    base = np.column_stack((head[:, :5], tail[:, 0], head[:, 5], tail[:, 1], tail[:, 2]))
    # recompute choices as (code, quarters of the layers): "partial" = full recompute of 1-3
    # quarters of each rank's layers (Megatron --recompute-num-layers)
    choice = {"none": [(K.RC_NONE, 0)], "selective": [(K.RC_SELECTIVE, 0)],
              "full": [(K.RC_FULL, 4)], "partial": [(K.RC_FULL, q) for q in (1, 2, 3)]}
    if features is not None and not fixed.get("recompute"):
        if not features.selective_recompute:
            choice.pop("selective")
        if not features.partial_recompute:
            choice.pop("partial")
    rcs = choice[fixed["recompute"]] if fixed.get("recompute") else [x for v in choice.values() for x in v]
    zeros = [fixed["zero"]] if fixed.get("zero") is not None else (
        list(features.zero_stages) if features is not None else [0, 1, 2, 3])
    precs = [PREC_CODES[p] for p in precisions]
    # precision varies slowest of all (one block of every plan per precision), so consecutive
    # rows share layer-level results (kernel memo)
    combos = np.array([(r, q, z) for r, q in rcs for z in zeros], dtype=np.int64)
    nb, nc = len(base), len(combos)
    # written in place by broadcasting (precision, base plan, combination): no temporaries the
    # size of the result, which reaches millions of rows for large MoE searches
    out = np.empty((len(precs), nb, nc, K.P_SIZE), dtype=np.int64)
    out[..., K.P_TP:K.P_MBS + 1] = base[None, :, None, :7]
    out[..., K.P_EPO] = base[None, :, None, 7]
    out[..., K.P_ETP] = base[None, :, None, 8]
    out[..., K.P_GBS] = w.gbs
    out[..., K.P_SEQ] = w.seq_len
    out[..., K.P_RECOMPUTE] = combos[None, None, :, 0]
    out[..., K.P_RC_Q] = combos[None, None, :, 1]
    out[..., K.P_ZERO] = combos[None, None, :, 2]
    out[..., K.P_PREC] = np.array(precs, dtype=np.int64)[:, None, None]
    out[..., K.P_DISP] = disp_code
    out = out.reshape(-1, K.P_SIZE)
    # ZeRO-2/3 cannot run with pipeline parallelism unless the stack says so
    if features is not None and features.sharded_with_pp:
        return out
    keep = ~((out[:, K.P_ZERO] >= 2) & (out[:, K.P_PP] > 1))
    return out[keep]
