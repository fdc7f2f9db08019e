"""The parameters the calibration program fits, their priors and how they act on the packed
vectors.

A class parameter scales a micro-benchmark value of an efficiency class (hwspecs/efficiency.yaml);
a stack parameter is a software behaviour of a stack (hwspecs/stacks.yaml). Every parameter is
fitted in log space, pulled towards its prior (the micro-benchmark or documented value) with a
stated width, inside physical bounds:

=========== ====================================================== ======== ================
parameter   acts on                                                 prior sd bounds
=========== ====================================================== ======== ================
gemm        every point of the GEMM efficiency curve (x scale)      0.15     0.4 - 1.3
attention   flash-attention fractions, fwd and bwd (x scale)        0.30     0.3 - 2.0
fp8 / fp4   the low-precision factor on the GEMM curve              0.20     0.3 - 1.2
grouped     the factor on grouped (MoE expert) GEMMs                0.30     0.2 - 1.5
tp_overlap  share of a fused GEMM a TP collective hides behind      0.40     0.05 - 1
host_op_us  host time per operator, microseconds                    0.80     1 - 300
moe_load_cv tokens-per-expert coefficient of variation              0.50     0.02 - 2
=========== ====================================================== ======== ================

The prior sd is in natural-log units (0.15 = about +-16%). Efficiencies never exceed 0.98 of a
peak whatever the scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import layout as K

#: (prior sd in log units, lower bound, upper bound, what it is)
CLASS_PARAMS = {
    "gemm": (0.15, 0.4, 1.3, "scale on the GEMM efficiency curve"),
    "attention": (0.30, 0.3, 2.0, "scale on the flash-attention fractions"),
    "fp8": (0.20, 0.3, 1.2, "fp8 factor on the GEMM curve"),
    "fp4": (0.20, 0.2, 1.2, "fp4 factor on the GEMM curve"),
    "grouped": (0.30, 0.2, 1.5, "factor on grouped (expert) GEMMs"),
    "tp_overlap": (0.40, 0.05, 1.0, "share of a fused GEMM a TP collective hides behind"),
}
STACK_PARAMS = {
    "host_op_us": (0.80, 1.0, 300.0, "host time per operator, us"),
    "moe_load_cv": (0.50, 0.02, 2.0, "tokens-per-expert coefficient of variation"),
}
MAX_EFF = 0.98


@dataclass(frozen=True)
class Param:
    """One fitted parameter: owner kind ('class' or 'stack'), owner name, parameter name."""

    kind: str
    owner: str
    name: str
    prior: float          # value the fit starts from (a scale of 1 for gemm / attention)
    sd: float
    lo: float
    hi: float

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.owner}:{self.name}"


def class_prior(eff_spec_values: dict, name: str) -> float:
    """Prior value of a class parameter: scales start at 1, factors at the class's value."""
    if name in ("gemm", "attention"):
        return 1.0
    if name == "grouped":
        return float(eff_spec_values.get("grouped_gemm_factor", 1.0))
    if name == "tp_overlap":
        return float(eff_spec_values.get("tp_overlap_efficiency", 0.8))
    return float(eff_spec_values.get("low_precision_factor", {}).get(name, 1.0))


def make_params(classes: dict[str, list[str]], stacks: dict[str, list[str]],
                class_values: dict[str, dict], stack_values: dict[str, dict]) -> list[Param]:
    """Parameters for the classes and stacks the rows touch, from their `fitted` lists."""
    out: list[Param] = []
    for cls in sorted(classes):
        for name in classes[cls]:
            sd, lo, hi, _ = CLASS_PARAMS[name]
            out.append(Param("class", cls, name, class_prior(class_values[cls], name), sd, lo, hi))
    for st in sorted(stacks):
        for name in stacks[st]:
            sd, lo, hi, _ = STACK_PARAMS[name]
            out.append(Param("stack", st, name, float(stack_values[st][name]), sd, lo, hi))
    return out


def apply_class(hv: np.ndarray, base_hv: np.ndarray, name: str, value: float) -> None:
    """Set one class parameter in a packed hardware vector (``base_hv`` holds the prior)."""
    if name == "gemm":
        n = int(base_hv[K.H_NCURVE])
        for i in range(n):
            hv[K.H_CURVE_Y + i] = min(MAX_EFF, base_hv[K.H_CURVE_Y + i] * value)
    elif name == "attention":
        for idx in (K.H_ATT_FWD, K.H_ATT_BWD, K.H_ATT3_FWD, K.H_ATT3_BWD):
            hv[idx] = min(MAX_EFF, base_hv[idx] * value)
    elif name == "fp8":
        hv[K.H_LP_FP8] = value
    elif name == "fp4":
        hv[K.H_LP_FP4] = value
    elif name == "grouped":
        hv[K.H_GG_FACTOR] = value
    elif name == "tp_overlap":
        hv[K.H_TP_OVL_EFF] = value
    else:  # pragma: no cover - guarded by the spec validator
        raise KeyError(name)


def apply_stack(sv: np.ndarray, name: str, value: float) -> None:
    """Set one stack parameter in a packed stack vector."""
    if name == "host_op_us":
        sv[K.S_HOST_OP] = value * 1e-6
    elif name == "moe_load_cv":
        sv[K.S_MOE_CV] = value
    else:  # pragma: no cover
        raise KeyError(name)
