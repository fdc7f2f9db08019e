"""Efficiency parameters: how much of a chip's datasheet peak real software achieves.

These are NOT datasheet facts. They live apart from the chip specs, in
``hwspecs/efficiency.yaml``: one full parameter set per vendor class, each chip mapped to a
class with optional per-chip overrides. Every class carries a ``basis`` note saying where its
numbers come from, and ``fitted`` lists the parameters that were tuned against the public
validation rows.
"""
from __future__ import annotations

from typing import Optional

from pydantic import Field, field_validator, model_validator

from estimator.specs.common import Strict


class Curve(Strict):
    """Breakpoint table: efficiency (fraction of peak) vs GEMM size in GFLOP, log-interpolated."""

    gflop: list[float]
    efficiency: list[float]

    @model_validator(mode="after")
    def _shape(self):
        if len(self.gflop) != len(self.efficiency) or len(self.gflop) < 2:
            raise ValueError("gflop and efficiency need the same length (>= 2)")
        if any(b <= a for a, b in zip(self.gflop, self.gflop[1:])):
            raise ValueError("gflop breakpoints must increase strictly")
        if any(g <= 0 for g in self.gflop):
            raise ValueError("gflop breakpoints must be positive")
        if any(not (0 < e <= 1) for e in self.efficiency):
            raise ValueError("efficiency values must be in (0, 1]")
        return self


class EfficiencySpec(Strict):
    """One full set of efficiency parameters (a vendor class, or a class plus overrides)."""

    #: achieved fraction of the dense peak vs per-GEMM size (bf16/fp16 GEMMs)
    gemm: Curve
    #: narrow-GEMM penalty: the curve is multiplied by w / (w + gemm_narrow_dim), w being the
    #: smaller weight dimension (n or k) of the per-rank GEMM: tile prologue/epilogue and
    #: operand reuse cost more when a weight matrix is thin (TP-split, fine-grained experts)
    gemm_narrow_dim: float = Field(ge=0)
    #: grouped (MoE expert) GEMMs: efficiency x w / (w + grouped_gemm_narrow_dim), w the smaller
    #: weight dimension of one expert (fine-grained experts are thin), times grouped_gemm_factor
    grouped_gemm_narrow_dim: float = Field(default=0.0, ge=0)
    grouped_gemm_factor: float = Field(default=1.0, gt=0, le=1.5)
    #: M-block of a grouped (MoE expert) GEMM kernel: one launch tiles every expert's rows, each
    #: expert's token count padded up to a multiple of this block (DeepGEMM's contiguous layout
    #: aligns each expert segment to the 128-row M block; CUTLASS / Transformer Engine grouped
    #: GEMMs tile M by 128 on Ampere to Blackwell), so about half a block per expert is wasted
    grouped_gemm_m_tile: float = Field(default=128.0, gt=0)
    #: multiplier on the GEMM curve for lower precisions (fp8/int8/fp4 kernels reach a smaller
    #: fraction of their higher peak)
    low_precision_factor: dict[str, float] = Field(default_factory=dict)
    #: fraction of bf16 peak reached by fused (flash) attention, forward and backward:
    #: FlashAttention-2 class kernels (the stack's `attention: flash2`)
    attention_fwd: float = Field(gt=0, le=1)
    attention_bwd: float = Field(gt=0, le=1)
    #: the same for FlashAttention-3 / cuDNN class kernels (Hopper and later; `attention:
    #: flash3`); unset = no such kernel on this class, the flash2 figures apply
    attention3_fwd: Optional[float] = Field(default=None, gt=0, le=1)
    attention3_bwd: Optional[float] = Field(default=None, gt=0, le=1)
    #: the fractions above are plateaus for long sequences; at a mean context of c keys per
    #: query the kernel reaches plateau x c / (c + attention_half_context) (fixed work per
    #: query block: softmax rescaling, tile prologue, load imbalance of the causal mask)
    attention_half_context: float = Field(default=300.0, ge=0)
    #: fraction of peak HBM bandwidth reached by memory-bound kernels
    hbm: float = Field(gt=0, le=1)
    #: fraction of link peak reached by collectives, per tier
    die_link: float = Field(gt=0, le=1)
    scale_up: float = Field(gt=0, le=1)
    scale_out: float = Field(gt=0, le=1)
    #: link latency per tier, microseconds, used when the system spec states none
    latency_die_us: float = Field(ge=0)
    latency_scale_up_us: float = Field(ge=0)
    latency_scale_out_us: float = Field(ge=0)
    #: software cost of one collective step (NCCL / HCCL protocol, kernel), microseconds; the
    #: per-step alpha of a tier is its link latency plus this
    collective_step_us: float = Field(default=0.0, ge=0)
    #: share of a GEMM's duration that a TP collective pipelined with it (TE userbuffers,
    #: Ascend MC2) actually hides: compute and communication contend for the same cores and HBM
    tp_overlap_efficiency: float = Field(default=0.8, gt=0, le=1)
    #: fixed cost per kernel launch / dispatch, microseconds
    kernel_overhead_us: float = Field(ge=0)
    #: HBM per rank lost to runtime, communication buffers and fragmentation, GB
    memory_reserve_gb: float = Field(ge=0)
    #: SERVING ONLY, being replaced by mechanisms: time per routed token copy per MoE layer,
    #: nanoseconds (training models routing as GEMMs, HBM traffic and all-to-all instead)
    moe_dispatch_ns_per_token: float = Field(default=0.0, ge=0)
    #: fixed cost of one serving-engine step (scheduler, sampling, graph launch), microseconds
    step_overhead_us: float = Field(ge=0)
    #: share of the HBM left after weights and workspace that the engine gives the KV cache
    kv_cache_fraction: float = Field(gt=0, le=1)
    #: coefficient of variation of per-node step time (straggler model)
    straggler_cv: float = Field(ge=0, le=1)

    # ---- serving kernels (optional; a class that leaves one out gets the stated fallback) ----
    #: fraction of the HBM peak decode GEMMs reach streaming their weights, per weight width:
    #: keys bf16 (16-bit), fp8 (8-bit: fp8, int8 W8A8), fp4 (4-bit: fp4, int4 W4A16/W4A8);
    #: a missing key falls back to ``hbm``
    serve_weight_stream: dict[str, float] = Field(default_factory=dict)
    #: fraction of each precision's peak that large serving GEMMs reach (M, N, K >= 4096), by
    #: width: bf16 (16-bit), fp8 (8-bit: fp8, int8 W8A8), fp4 (W4A4); the serving GEMM then uses
    #: the class curve scaled so that its top is this plateau
    serve_gemm_plateau: dict[str, float] = Field(default_factory=dict)
    #: where no plateau is measured: multiplier on the class curve by width (e.g. an 8-bit
    #: kernel's plateau over the 16-bit one in the same benchmark); missing = 1.0 for bf16,
    #: low_precision_factor for fp8 / fp4
    serve_gemm_factor: dict[str, float] = Field(default_factory=dict)
    #: microseconds of one activation-quantisation kernel before a low-precision GEMM, charged
    #: when the serving stack does not fuse it into the preceding kernel (None = kernel_overhead_us)
    serve_quant_us: Optional[float] = Field(default=None, ge=0)
    #: fraction of the HBM peak decode attention reaches reading the paged KV cache (None = hbm)
    serve_kv_read: Optional[float] = Field(default=None, gt=0, le=1)
    #: fraction of the 16-bit peak reached by compute-bound decode attention (MLA absorbed
    #: decode, speculative verification) (None = attention_fwd)
    serve_decode_attention: Optional[float] = Field(default=None, gt=0, le=1)
    #: microseconds of a one-shot all-reduce kernel at the smallest sizes, inside the scale-up
    #: domain (None = latency_scale_up_us)
    serve_allreduce_custom_us: Optional[float] = Field(default=None, ge=0)
    #: microseconds of a library (NCCL / HCCL) all-reduce at the smallest sizes, less the
    #: per-rank step below (None = latency_scale_up_us)
    serve_allreduce_library_us: Optional[float] = Field(default=None, ge=0)
    #: microseconds a library all-reduce (or all-to-all) adds per further rank in the domain
    #: (None = latency_scale_up_us)
    serve_allreduce_step_us: Optional[float] = Field(default=None, ge=0)
    #: fraction of the scale-up link peak (per direction) that all-reduce reaches at serving
    #: message sizes (kilobytes to tens of megabytes) (None = scale_up)
    serve_collective_bw: Optional[float] = Field(default=None, gt=0, le=1)
    #: the scale-up switch reduces in the network (NVLink SHARP); the system must be switched
    serve_nvls: bool = False
    #: microseconds of one low-latency MoE dispatch or combine kernel beyond its bandwidth term
    #: (None = latency_scale_out_us)
    serve_a2a_latency_us: Optional[float] = Field(default=None, ge=0)
    #: microseconds one kernel costs on the device inside a captured graph (the floor of a tiny
    #: kernel in decode) (None = kernel_overhead_us)
    serve_kernel_us: Optional[float] = Field(default=None, ge=0)

    @field_validator("serve_weight_stream")
    @classmethod
    def _ws(cls, v: dict[str, float]):
        for k, x in v.items():
            if k not in ("bf16", "fp8", "fp4"):
                raise ValueError(f"unknown weight width '{k}' (known: bf16, fp8, fp4)")
            if not (0 < x <= 1):
                raise ValueError(f"fraction for {k} must be in (0, 1]")
        return v

    @field_validator("serve_gemm_factor", "serve_gemm_plateau")
    @classmethod
    def _gf(cls, v: dict[str, float]):
        for k, x in v.items():
            if k not in ("bf16", "fp8", "fp4"):
                raise ValueError(f"unknown weight width '{k}' (known: bf16, fp8, fp4)")
            if not (0 < x <= 1.5):
                raise ValueError(f"value for {k} must be in (0, 1.5]")
        return v

    @field_validator("low_precision_factor")
    @classmethod
    def _lpf(cls, v: dict[str, float]):
        from estimator.specs.chip import PRECISIONS

        for k, x in v.items():
            if k not in PRECISIONS:
                raise ValueError(f"unknown precision '{k}' (known: {', '.join(PRECISIONS)})")
            if not (0 < x <= 1.5):
                raise ValueError(f"factor for {k} must be in (0, 1.5]")
        return v


#: parameters of a class the calibration program can fit (estimator/fitting/params.py)
FITTABLE = ("gemm", "attention", "fp8", "fp4", "grouped", "tp_overlap")


class EfficiencyClass(EfficiencySpec):
    #: where these numbers come from (papers, microbenchmarks, fitted rows)
    basis: str
    #: parameters the calibration program fits (gemm: a scale on the GEMM curve; attention: a
    #: scale on the attention fractions; fp8 / fp4: the low-precision factors; grouped: the
    #: grouped-GEMM factor)
    fitted: list[str] = Field(default_factory=list)
    #: the micro-benchmark values the fit starts from and is pulled towards (written by
    #: `suanli calibrate`; absent = the values above are the micro-benchmark values)
    prior: Optional[dict[str, object]] = None
    #: what the fit used and found: data file, rows, date, fitted values with standard errors
    calibration: Optional[dict[str, object]] = None

    @field_validator("fitted")
    @classmethod
    def _fittable(cls, v: list[str]):
        bad = [x for x in v if x not in FITTABLE]
        if bad:
            raise ValueError(f"unknown fitted parameter(s) {bad} (fittable: {', '.join(FITTABLE)})")
        return v


class ChipEfficiency(Strict):
    class_: str = Field(alias="class")
    overrides: dict[str, object] = Field(default_factory=dict)
    basis: Optional[str] = None


class EfficiencyFile(Strict):
    default_class: str
    classes: dict[str, EfficiencyClass]
    chips: dict[str, ChipEfficiency] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _refs(self):
        if self.default_class not in self.classes:
            raise ValueError(f"default_class '{self.default_class}' is not a defined class")
        for cid, ce in self.chips.items():
            if ce.class_ not in self.classes:
                raise ValueError(f"chips.{cid}: unknown class '{ce.class_}'")
            bad = set(ce.overrides) - set(EfficiencySpec.model_fields)
            if bad:
                raise ValueError(f"chips.{cid}.overrides: unknown parameter(s) {sorted(bad)}")
        return self

    def for_chip(self, chip_id: str) -> tuple[str, EfficiencySpec]:
        """(class name, resolved parameters) for a chip; unknown chips get the default class."""
        ce = self.chips.get(chip_id)
        cname = ce.class_ if ce else self.default_class
        base = self.classes[cname].model_dump(exclude={"basis", "fitted", "prior", "calibration"})
        if ce and ce.overrides:
            base.update(ce.overrides)
        return cname, EfficiencySpec.model_validate(base)
