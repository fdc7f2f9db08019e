"""Parallel plans: the rules a plan must follow, and enumeration of every valid plan.

Degrees are counted in ranks (framework processes): a chip, or a die on chips whose
frameworks run one process per die (``ranks_per_package``). tp * pp * dp * cp = ranks.
EP is carved out of the data-parallel ranks (dp * cp) as in Megatron-Core.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from estimator.errors import PlanError
from estimator.packing import PREC_CODES
from estimator.specs import ModelSpec
from kernels import layout as K

KNOBS = ("tp", "pp", "dp", "cp", "ep", "vpp", "mbs", "recompute", "zero", "precision")
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


def check_plan(model: ModelSpec, w: Workload, plan: dict) -> None:
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
    if pp * vpp > model.layers:
        raise PlanError(f"pp*vpp = {pp * vpp} pipeline stages exceed the {model.layers} layers")
    if vpp > 1 and pp == 1:
        raise PlanError("vpp > 1 needs pp > 1 (interleaving splits pipeline stages)")
    if w.gbs % (dp * mbs):
        raise PlanError(f"gbs ({w.gbs}) not divisible by dp*mbs ({dp}*{mbs})")
    if cp > 1 and w.seq_len % (2 * cp):
        raise PlanError(f"seq_len ({w.seq_len}) not divisible by 2*cp ({2 * cp}) for load-balanced CP")
    if model.moe is None:
        if ep != 1:
            raise PlanError(f"ep ({ep}) > 1 needs a mixture-of-experts model")
    else:
        if (dp * cp) % ep:
            raise PlanError(f"ep ({ep}) must divide dp*cp ({dp * cp}): EP is carved out of data-parallel ranks")
        if model.moe.experts % ep:
            raise PlanError(f"ep ({ep}) must divide the number of experts ({model.moe.experts})")
    if plan["zero"] not in (0, 1, 2, 3):
        raise PlanError(f"zero must be 0-3 (got {plan['zero']})")


def enumerate_plans(model: ModelSpec, w: Workload, fixed: dict, precisions: list[str]) -> np.ndarray:
    """Every valid plan matching the fixed knobs, as an int64 matrix (kernels.layout P_*)."""
    n = w.ranks
    moe = model.moe is not None

    def choices(name, default):
        v = fixed.get(name)
        return [v] if v is not None else default

    rows = []
    for tp in choices("tp", divisors(n)):
        if n % tp or tp_rule(model, tp):
            continue
        for pp in choices("pp", divisors(n // tp)):
            if (n // tp) % pp or pp > model.layers:
                continue
            for cp in choices("cp", divisors(n // (tp * pp))):
                if (n // (tp * pp)) % cp:
                    continue
                if cp > 1 and w.seq_len % (2 * cp):
                    continue
                dp = n // (tp * pp * cp)
                if fixed.get("dp") is not None and fixed["dp"] != dp:
                    continue
                if moe:
                    eps = [e for e in divisors(dp * cp) if model.moe.experts % e == 0]
                else:
                    eps = [1]
                for ep in choices("ep", eps):
                    if moe and ((dp * cp) % ep or model.moe.experts % ep):
                        continue
                    if not moe and ep != 1:
                        continue
                    vpps = [1] if pp == 1 else [v for v in range(1, VPP_MAX + 1) if pp * v <= model.layers]
                    for vpp in choices("vpp", vpps):
                        if pp * vpp > model.layers or (vpp > 1 and pp == 1):
                            continue
                        for mbs in choices("mbs", list(MBS_CHOICES)):
                            if w.gbs % (dp * mbs):
                                continue
                            rows.append((tp, pp, dp, cp, ep, vpp, mbs))
    if not rows:
        return np.zeros((0, K.P_SIZE), dtype=np.int64)
    base = np.array(rows, dtype=np.int64)
    # recompute choices as (code, quarters of the layers): "partial" = full recompute of 1-3
    # quarters of each rank's layers (Megatron --recompute-num-layers)
    choice = {"none": [(K.RC_NONE, 0)], "selective": [(K.RC_SELECTIVE, 0)],
              "full": [(K.RC_FULL, 4)], "partial": [(K.RC_FULL, q) for q in (1, 2, 3)]}
    rcs = choice[fixed["recompute"]] if fixed.get("recompute") else [x for v in choice.values() for x in v]
    zeros = [fixed["zero"]] if fixed.get("zero") is not None else [0, 1, 2, 3]
    precs = [PREC_CODES[p] for p in precisions]
    # precision varies slowest so consecutive rows share layer-level results (kernel memo)
    combos = np.array([(r, q, z, pr) for pr in precs for r, q in rcs for z in zeros], dtype=np.int64)
    nb, nc = len(base), len(combos)
    out = np.empty((nb * nc, K.P_SIZE), dtype=np.int64)
    out[:, K.P_TP:K.P_MBS + 1] = np.repeat(base, nc, axis=0)
    out[:, K.P_GBS] = w.gbs
    out[:, K.P_SEQ] = w.seq_len
    c = np.tile(combos, (nb, 1))
    out[:, K.P_RECOMPUTE] = c[:, 0]
    out[:, K.P_RC_Q] = c[:, 1]
    out[:, K.P_ZERO] = c[:, 2]
    out[:, K.P_PREC] = c[:, 3]
    return out
