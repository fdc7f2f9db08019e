"""Chip (accelerator package) spec: datasheet facts, each with a source and confidence.

Efficiency parameters (achieved fraction of peak) are NOT here: they live in
``hwspecs/efficiency.yaml`` (see :mod:`estimator.specs.efficiency`).
"""
from __future__ import annotations

from typing import Optional

from pydantic import Field, model_validator

from estimator.specs.common import CatalogEntry, Sourced, SourcedLink, Strict

#: Matmul precisions a chip can list a dense peak for (TFLOP/s; TOP/s for int8).
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")


class PeakTflops(Strict):
    """Dense peak tensor throughput per precision, TFLOP/s (int8: TOP/s).

    Vendor figures quoted with 2:4 structured sparsity are halved; ``ChipSpec.sparsity_note``
    says what was done.
    """

    fp32: Optional[Sourced] = None
    tf32: Optional[Sourced] = None
    bf16: Optional[Sourced] = None
    fp16: Optional[Sourced] = None
    fp8: Optional[Sourced] = None
    int8: Optional[Sourced] = None
    fp4: Optional[Sourced] = None

    def value(self, precision: str) -> float | None:
        s = getattr(self, precision)
        return None if s is None else s.value


class Memory(Strict):
    type: Optional[str] = None
    capacity_gb: Sourced
    bandwidth_gb_per_s: Sourced


class ScaleUpLink(Strict):
    link: Optional[str] = None
    bandwidth_gb_per_s: SourcedLink


class ScaleOut(Strict):
    nic_gbit_per_s: Sourced


class ChipSpec(CatalogEntry):
    process: Optional[str] = None
    dies_per_package: int = Field(default=1, ge=1)
    #: area of one (compute) die, mm^2; the export-control density uses it x dies_per_package
    die_area_mm2: Optional[Sourced] = None
    #: processes (ranks) the framework runs per package; 2 for Ascend 910C (one per die)
    ranks_per_package: int = Field(default=1, ge=1)
    die_to_die_gb_per_s: Optional[SourcedLink] = None
    peak_tflops: PeakTflops
    sparsity_note: Optional[str] = None
    memory: Memory
    tdp_w: Sourced
    scale_up: ScaleUpLink
    scale_out: ScaleOut
    default_system: Optional[str] = None
    export_control: Optional[str] = None
    notes: Optional[str] = None

    @model_validator(mode="after")
    def _ranks_vs_dies(self):
        if self.ranks_per_package > self.dies_per_package:
            raise ValueError("ranks_per_package cannot exceed dies_per_package")
        if self.ranks_per_package > 1 and self.die_to_die_gb_per_s is None:
            raise ValueError("ranks_per_package > 1 needs die_to_die_gb_per_s (the on-package link)")
        return self

    # convenience accessors (None when unknown)
    def peak(self, precision: str) -> float | None:
        return self.peak_tflops.value(precision)

    @property
    def hbm_gb(self) -> float | None:
        return self.memory.capacity_gb.value

    @property
    def hbm_gb_per_s(self) -> float | None:
        return self.memory.bandwidth_gb_per_s.value

    def supported_precisions(self) -> list[str]:
        return [p for p in PRECISIONS if self.peak(p) is not None]
