"""Result objects: named breakdowns whose parts sum to the totals."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from estimator.packing import DISP_NAMES, GIB, PREC_NAMES, RECOMPUTE_NAMES
from kernels import layout as K

TIME_PARTS = {
    "compute": K.O_T_COMPUTE, "recompute": K.O_T_RECOMPUTE, "tp_comm": K.O_T_TP,
    "cp_comm": K.O_T_CP, "ep_comm": K.O_T_EP, "pp_comm": K.O_T_PP, "dp_comm": K.O_T_DP,
    "bubble": K.O_T_BUBBLE, "optimizer": K.O_T_OPTIMIZER, "straggler": K.O_T_STRAGGLER,
}
MEM_PARTS = {"weights": K.O_MEM_WEIGHTS, "gradients": K.O_MEM_GRADS,
             "optimizer": K.O_MEM_OPT, "activations": K.O_MEM_ACT}
STATUS_TEXT = {K.ST_OK: "ok", K.ST_OOM: "out of memory", K.ST_NO_PRECISION: "precision not supported",
               K.ST_NO_LINK: "link bandwidth unknown"}


def _recompute_name(row) -> str:
    rc = int(row[K.P_RECOMPUTE])
    if rc == K.RC_FULL and 0 < int(row[K.P_RC_Q]) < 4:
        return "partial"
    return RECOMPUTE_NAMES[rc]


def _recompute_fraction(row) -> float:
    """Nominal share of each rank's layers fully recomputed (quarters, rounded up to layers)."""
    if int(row[K.P_RECOMPUTE]) != K.RC_FULL:
        return 0.0
    q = int(row[K.P_RC_Q])
    return 1.0 if q <= 0 else q / 4.0


def plan_dict(row: np.ndarray) -> dict:
    return {
        "tp": int(row[K.P_TP]), "pp": int(row[K.P_PP]), "dp": int(row[K.P_DP]),
        "cp": int(row[K.P_CP]), "ep": int(row[K.P_EP]), "vpp": int(row[K.P_VPP]),
        "mbs": int(row[K.P_MBS]), "gbs": int(row[K.P_GBS]), "seq_len": int(row[K.P_SEQ]),
        "zero": int(row[K.P_ZERO]), "recompute": _recompute_name(row),
        "recompute_fraction": _recompute_fraction(row),
        "precision": PREC_NAMES[int(row[K.P_PREC])],
        "ep_overlap": bool(row[K.P_EPO]),
        "etp": expert_tp(row),
        "moe_dispatcher": DISP_NAMES.get(int(row[K.P_DISP])),     # None: the stack's default
    }


def expert_tp(row: np.ndarray) -> int:
    """Tensor-parallel degree of the expert layers: the plan's etp knob, or when unset the
    default rule (kernels.training.expert_tp): tp, or with MoE parallel folding tp*dp*cp/ep."""
    if int(row[K.P_ETP]) > 0:
        return int(row[K.P_ETP])
    tp, dp, cp, ep = (int(row[k]) for k in (K.P_TP, K.P_DP, K.P_CP, K.P_EP))
    return tp if (dp * cp) % ep == 0 else tp * dp * cp // ep


@dataclass
class TrainingResult:
    model: str
    chip: str
    system: str
    chips: int
    ranks_per_chip: int
    plan: dict
    fits: bool
    status: str
    step_time_s: float
    tokens_per_s: float
    tokens_per_s_per_chip: float
    mfu: float
    hfu: float
    model_flops_per_token: float
    breakdown_s: dict
    memory_gb_per_chip: dict
    memory_capacity_gb_per_chip: float
    days_to_train: float | None = None
    tokens: float | None = None
    search: dict = field(default_factory=dict)
    efficiency_class: str = ""
    stack: str = ""
    # p10 / p90 beside the value (estimator/fitting/bands.py); None before a band is attached
    tokens_per_s_p10: float | None = None
    tokens_per_s_p90: float | None = None
    tokens_per_s_per_chip_p10: float | None = None
    tokens_per_s_per_chip_p90: float | None = None
    step_time_s_p10: float | None = None
    step_time_s_p90: float | None = None
    mfu_p10: float | None = None
    mfu_p90: float | None = None
    days_to_train_p10: float | None = None
    days_to_train_p90: float | None = None
    band: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def build_result(row_plan: np.ndarray, row_out: np.ndarray, status: int, *, model: str,
                 chip, system: str, chips: int, capacity_gb_rank: float, eff_class: str,
                 tokens: float | None = None, stack: str = "") -> TrainingResult:
    """Turn one kernel output row into a named result (per-chip = per package)."""
    rpp = chip.ranks_per_package
    step = float(row_out[K.O_STEP])
    tps = float(row_out[K.O_TOKENS_PER_S])
    prec = PREC_NAMES[int(row_plan[K.P_PREC])]
    peak_chip = (chip.peak(prec) if chip.peak(prec) is not None else chip.peak("fp16")) or 0.0
    mft = float(row_out[K.O_MODEL_FLOPS_TOK])
    hft = float(row_out[K.O_HW_FLOPS_TOK])
    denom = chips * peak_chip * 1e12
    breakdown = {k: float(row_out[i]) for k, i in TIME_PARTS.items()}
    mem = {k: float(row_out[i]) * rpp / GIB for k, i in MEM_PARTS.items()}
    mem["total"] = sum(mem.values())
    res = TrainingResult(
        model=model, chip=chip.id, system=system, chips=chips, ranks_per_chip=rpp,
        plan=plan_dict(row_plan), fits=status == K.ST_OK, status=STATUS_TEXT[status],
        step_time_s=step, tokens_per_s=tps, tokens_per_s_per_chip=tps / chips,
        mfu=tps * mft / denom if denom else 0.0, hfu=tps * hft / denom if denom else 0.0,
        model_flops_per_token=mft, breakdown_s=breakdown, memory_gb_per_chip=mem,
        memory_capacity_gb_per_chip=capacity_gb_rank * rpp, efficiency_class=eff_class,
        stack=stack,
    )
    if tokens is not None and tps > 0:
        res.tokens = tokens
        res.days_to_train = tokens / tps / 86400.0
    if rpp > 1:
        res.notes.append(f"{chip.id} runs {rpp} ranks per package; plan degrees count ranks, "
                         "per-chip figures are per package")
    return res
