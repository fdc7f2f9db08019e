"""System spec: a node or scale-up domain of one chip type and the network it plugs into."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from estimator.specs.common import CatalogEntry, Sourced, SourcedLink, Strict


class ScaleUpDomain(Strict):
    #: chips (packages) in one scale-up domain (8 for HGX, 72 for NVL72, 384 for CloudMatrix-384)
    domain_chips: int = Field(ge=1)
    topology: Literal["switched", "full_mesh", "torus", "clos", "none"]
    link: Optional[str] = None
    #: per-chip scale-up bandwidth inside this system
    bandwidth_gb_per_s_per_chip: SourcedLink
    #: full mesh only: the link between one pair of chips (default: the per-chip figure
    #: divided by the number of peers)
    pair_gb_per_s: Optional[SourcedLink] = None
    #: torus only: number of dimensions (TPU v4/v5p: 3, v6e: 2)
    torus_dims: Optional[int] = Field(default=None, ge=1, le=6)
    #: hardware latency of one hop, microseconds (default: the chip class's)
    latency_us: Optional[Sourced] = None


class ScaleOutNetwork(Strict):
    nic_gbit_per_s_per_chip: Sourced
    network: Optional[str] = None
    #: >= 1; 1 = non-blocking
    oversubscription: float = Field(default=1.0, ge=1.0)
    #: hardware latency of one hop across the network, microseconds (default: the class's)
    latency_us: Optional[Sourced] = None


class SystemFact(Strict):
    """A published system-level figure kept for reference (e.g. CloudMatrix-384 vs NVL72)."""

    metric: str
    value: Optional[float] = None
    unit: Optional[str] = None
    text: Optional[str] = None
    source: str


class SystemSpec(CatalogEntry):
    chip: str
    chips_per_node: int = Field(ge=1)
    scale_up: ScaleUpDomain
    scale_out: ScaleOutNetwork
    #: power per node beyond the chips' TDP (host CPUs, memory, NICs, fans, share of switches)
    node_overhead_w: Sourced
    facts: list[SystemFact] = Field(default_factory=list)
    notes: Optional[str] = None

    @model_validator(mode="after")
    def _domain_vs_node(self):
        d, n = self.scale_up.domain_chips, self.chips_per_node
        if d % n != 0 and n % d != 0:
            raise ValueError(
                f"scale_up.domain_chips ({d}) and chips_per_node ({n}) must divide one another"
            )
        return self
