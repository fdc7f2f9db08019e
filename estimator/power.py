"""Cluster power and energy.

IT power = chips x chip TDP + nodes x node overhead (hosts, NICs, fans, share of switches;
from the system spec). Where a chip's TDP is not published but the system spec carries a
published all-in system power (e.g. SemiAnalysis' 559 kW for CloudMatrix-384), that figure per
chip is used instead and the answer says so. Facility power = IT power x PUE (default 1.3).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from estimator.specs import ChipSpec, SystemSpec

PUE_DEFAULT = 1.3
#: node overhead as a fraction of the node's chip TDP, used when a system spec does not give
#: one: the median of NVIDIA's DGX datasheets (max system power minus 8 x GPU TDP, over 8 x TDP):
#: DGX A100 6.5 kW / 8 x 400 W -> 1.03; DGX H100 10.2 kW / 8 x 700 W -> 0.82; DGX B200
#: 14.3 kW / 8 x 1000 W -> 0.79
DEFAULT_NODE_OVERHEAD_FRACTION = 0.82


@dataclass
class PowerEstimate:
    it_w: float | None
    facility_w: float | None
    pue: float
    basis: str

    def to_dict(self) -> dict:
        return asdict(self)


def _system_all_in_w_per_chip(system: SystemSpec) -> tuple[float, str] | None:
    for f in system.facts:
        if f.metric == "system_power" and f.value is not None and (f.unit or "").lower() in ("kw", "w"):
            watts = f.value * (1000.0 if f.unit.lower() == "kw" else 1.0)
            return watts / system.scale_up.domain_chips, f.source
    return None


def cluster_power(chip: ChipSpec, system: SystemSpec, chips: int, pue: float = PUE_DEFAULT) -> PowerEstimate:
    nodes = math.ceil(chips / system.chips_per_node)
    tdp = chip.tdp_w.value
    if tdp is not None:
        it = chips * tdp
        basis = f"{chips} x {tdp:g} W chip TDP ({chip.tdp_w.confidence})"
        ov = system.node_overhead_w.value
        if ov is not None:
            it += nodes * ov
            basis += f" + {nodes} nodes x {ov:g} W node overhead ({system.node_overhead_w.confidence})"
        else:
            ov = DEFAULT_NODE_OVERHEAD_FRACTION * system.chips_per_node * tdp
            it += nodes * ov
            basis += (f" + {nodes} nodes x {ov:,.0f} W default node overhead "
                      f"({DEFAULT_NODE_OVERHEAD_FRACTION:g} x node chip TDP, DGX datasheets; "
                      "the system spec gives none)")
        return PowerEstimate(it, it * pue, pue, basis + f"; x PUE {pue:g}")
    all_in = _system_all_in_w_per_chip(system)
    if all_in is not None:
        w, src = all_in
        it = chips * w
        return PowerEstimate(it, it * pue, pue,
                             f"chip TDP unknown; all-in system power per chip {w:,.0f} W ({src}); x PUE {pue:g}")
    return PowerEstimate(None, None, pue, f"unknown: {chip.id} has no TDP and {system.id} no system power")
