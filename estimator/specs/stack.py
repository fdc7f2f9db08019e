"""Software stacks: what the training framework or serving engine can do, as feature flags
(not speed factors).

A stack declares which overlaps, fusions, kernels and ZeRO stages exist in the software that
ran (or will run) a job. Hardware efficiencies stay in the chip class (efficiency.yaml); the
stack only switches mechanisms on or off. ``params`` holds the few numbers that describe the
software's behaviour rather than the hardware (MoE routing balance, DDP bucket size), each with
its basis, and ``fitted`` names those the calibration program may fit.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from estimator.specs.common import ID_PATTERN, Strict, check_aliases

TRAIN_PRECISIONS = ("bf16", "fp16", "fp8", "fp4")


def _precision_list(v: list[str], allowed) -> list[str]:
    if not v or any(p not in allowed for p in v):
        raise ValueError(f"precisions must be a non-empty list of {', '.join(allowed)}")
    return v


class TrainingFeatures(Strict):
    #: Megatron sequence parallelism (Korthikanti et al. 2022): TP traffic as reduce-scatter /
    #: all-gather and the non-GEMM activations split over TP; without it, all-reduce and
    #: replicated norm/dropout activations
    sequence_parallel: bool
    #: recompute of the attention core only (Korthikanti et al. 2022)
    selective_recompute: bool
    #: selective recompute also recomputes the MLP activation function instead of keeping its
    #: input (Megatron-Core --recompute-modules ... moe_act / mlp; MindSpeed
    #: --recompute-activation-function; MindFormers SiLU/Mul recompute)
    selective_recompute_activation: bool = False
    #: full recompute of some of a rank's layers (Megatron --recompute-num-layers)
    partial_recompute: bool
    #: ZeRO stages the stack implements (1 = distributed optimizer, 3 = FSDP)
    zero_stages: list[int]
    #: ZeRO-2 as in DeepSpeed: gradients reduce-scattered every micro-batch into a shard
    zero2_reduce_per_microbatch: bool = True
    #: ZeRO-3 releases a layer's gathered parameters after its forward, so a fully recomputed
    #: layer gathers them once more for the recompute (DeepSpeed: the recompute runs the
    #: module's forward hooks again); FSDP-style units recompute inside the backward's own
    #: gather and pay nothing extra
    zero3_regather_on_recompute: bool = False
    #: ZeRO-2/3 sharding combines with pipeline parallelism (torchtitan FSDP2 + PP; DeepSpeed
    #: and Megatron FSDP do not)
    sharded_with_pp: bool = False
    #: interleaved 1F1B (virtual pipeline stages)
    interleaved_pipeline: bool
    #: the input embedding and the loss each count as one layer when layers are split into
    #: pipeline stages (Megatron-Core --account-for-embedding-in-pipeline-split and
    #: --account-for-loss-in-pipeline-split), so pp*vpp may reach layers + 2 (the first and
    #: last virtual stage then hold one transformer layer fewer)
    embedding_loss_stages: bool = False
    #: data-parallel gradient reduce-scatter/all-reduce bucketed and overlapped with backward
    overlap_grad_reduce: bool
    #: distributed-optimizer parameter all-gather overlapped with the next forward
    overlap_param_gather: bool
    #: TP collectives pipelined with the adjacent GEMMs (TE userbuffers; MindSpeed MC2)
    tp_comm_overlap: bool
    #: pipeline send/recv overlapped with compute
    p2p_comm_overlap: bool
    #: context parallelism: ring (K,V passed hop by hop behind the attention of the chunk in
    #: hand) or allgather (K,V all-gathered before attention, exposed; Llama 3 paper sec. 3.3.2)
    cp_algorithm: Literal["ring", "allgather"] = "ring"
    #: MoE all-to-all of one micro-batch overlapped with another micro-batch's compute
    ep_comm_overlap: bool
    #: MoE parallel folding (Megatron-Core --expert-tensor-parallel-size; Liu et al. 2025): the
    #: expert layers may regroup a stage's tp*cp*dp ranks as ETP x EP, so ep may exceed dp*cp
    moe_parallel_folding: bool = False
    #: the stack's default MoE token dispatcher: alltoall (every routed copy travels to the rank
    #: of its expert), allgather (hidden states all-gathered over the EP x ETP group, outputs
    #: reduce-scattered back; Megatron MoEAllGatherTokenDispatcher) or deepep (one copy per
    #: remote node, forwarded inside the node; DeepSeek-V3 sec. 3.2.2; Megatron flex dispatcher)
    moe_dispatcher: Literal["alltoall", "allgather", "deepep"]
    #: dispatchers a plan may name (--moe-dispatcher); None = the default only
    moe_dispatchers: Optional[list[Literal["alltoall", "allgather", "deepep"]]] = None
    #: experts run as one grouped GEMM (else a loop of per-expert GEMMs)
    grouped_gemm: bool
    #: attention kernel: unfused (scores materialised, fused softmax), flash2 (FlashAttention-2
    #: class), flash3 (FlashAttention-3 / cuDNN class, Hopper and later)
    attention: Literal["unfused", "flash2", "flash3"]
    #: fused norm / rope / activation / bias-dropout-add kernels
    fused_elementwise: bool
    #: matmul precisions the stack trains in
    precisions: list[str]
    #: layers run as captured CUDA graphs: none, dense (attention and dense blocks; MoE
    #: dispatch with data-dependent shapes stays eager), full
    cuda_graphs: Literal["none", "dense", "full"] = "none"

    @field_validator("zero_stages")
    @classmethod
    def _zeros(cls, v: list[int]):
        if not v or any(z not in (0, 1, 2, 3) for z in v):
            raise ValueError("zero_stages must be a non-empty list of 0-3")
        return sorted(set(v))

    @field_validator("precisions")
    @classmethod
    def _precs(cls, v: list[str]):
        return _precision_list(v, TRAIN_PRECISIONS)

    @model_validator(mode="after")
    def _dispatchers(self):
        if self.moe_dispatchers is not None and self.moe_dispatcher not in self.moe_dispatchers:
            raise ValueError(f"moe_dispatchers must include the default moe_dispatcher ({self.moe_dispatcher})")
        return self

    def dispatchers(self) -> list[str]:
        """MoE token dispatchers a plan may use (the default first)."""
        return list(dict.fromkeys([self.moe_dispatcher] + list(self.moe_dispatchers or [])))


class TrainingParams(Strict):
    #: coefficient of variation of routed tokens per expert within a step (load balance of the
    #: router under the recipe's auxiliary loss / bias balancing)
    moe_load_cv: float = Field(ge=0, le=3)
    #: DDP bucket size in parameters: the last bucket's reduction cannot hide behind backward
    grad_bucket_params: float = Field(gt=0)
    #: ZeRO-3 / FSDP parameter all-gather (prefetch) bucket, parameters; at least one gather
    #: per layer whatever its size (DeepSpeed stage3_prefetch_bucket_size 5e7)
    gather_bucket_params: float = Field(default=4.0e7, gt=0)
    #: bytes per parameter of the main-gradient buffer (fp32 accumulation = 4)
    main_grad_bytes: float = Field(ge=2, le=4)
    #: host time per operator issued (Python module code, framework dispatch, kernel launch),
    #: microseconds: small layers on fast chips wait for the CPU
    host_op_us: float = Field(ge=0, le=1000)
    #: share of the chip's compute units (SMs) the MoE dispatch / combine kernels occupy while
    #: they overlap another micro-batch's compute (DeepEP-style kernels run on SMs; DeepSeek-V3
    #: sec. 3.2.2: 20 of the H800's 132); 0 where a copy engine moves the data
    a2a_sm_share: float = Field(default=0.0, ge=0, lt=1)


class TrainingStack(Strict):
    features: TrainingFeatures
    params: TrainingParams


SERVE_PRECISIONS = ("bf16", "fp16", "fp8", "fp4", "int8", "int4", "w4a8")


class ServingFeatures(Strict):
    """What a serving engine does (feature flags, not speed factors)."""

    #: decode steps replay a captured graph (CUDA graphs, Ascend ACL graph / torchair): no host
    #: dispatch per operator; without it every operator costs a host dispatch
    graphs: bool
    #: host scheduling of step n+1 runs while the device executes step n (TensorRT-LLM overlap
    #: scheduler, SGLang zero-overhead scheduler, vLLM async scheduling)
    overlap_scheduler: bool
    #: prefill tokens ride in decode steps up to the chunk (in-flight batching, chunked
    #: prefill); else prefill runs as separate iterations that stall decode
    mixed_batching: bool
    #: KV reserved per admitted sequence: reserve_full = input + output tokens up front
    #: (TensorRT-LLM GUARANTEED_NO_EVICT), on_demand = paged blocks as tokens arrive, so a
    #: sequence holds input + output/2 on average over its life (vLLM, SGLang)
    kv_admission: Literal["reserve_full", "on_demand"]
    #: the KV-cache fraction is of total device memory (vLLM gpu_memory_utilization, SGLang
    #: mem_fraction_static) or of the memory left after weights and workspace (TensorRT-LLM)
    kv_fraction_of: Literal["total", "free"]
    #: one-shot / two-shot all-reduce kernels for small messages (else the library's)
    custom_allreduce: bool
    #: MoE dispatch/combine in decode with low-latency kernels (DeepEP low-latency class)
    low_latency_a2a: bool
    #: two-batch overlap of MoE communication with the other half-batch's compute exists
    two_batch_overlap: bool
    #: activation quantisation fused into the preceding kernel (norm+quant, act+quant)
    fused_quant: bool
    #: speculative decoding / MTP exists
    speculative: bool
    #: weight precisions the engine serves
    precisions: list[str]

    @field_validator("precisions")
    @classmethod
    def _precs(cls, v: list[str]):
        return _precision_list(v, SERVE_PRECISIONS)


class ServingParams(Strict):
    #: prefill tokens per engine iteration (max_num_tokens / chunked_prefill_size)
    prefill_chunk_tokens: int = Field(ge=64, le=1_048_576)
    #: memory fraction given to the KV cache (see kv_fraction_of)
    kv_memory_fraction: float = Field(gt=0, le=1)
    #: host microseconds per engine step (scheduling, sampling, bookkeeping, graph launch)
    step_host_us: float = Field(ge=0, le=1e6)
    #: host microseconds per running sequence per step
    step_host_us_per_seq: float = Field(ge=0, le=1e4)
    #: coefficient of variation of expert popularity left after the engine's expert placement
    #: (EPLB redundant experts lower it)
    expert_load_cv: float = Field(ge=0, le=3)
    #: host microseconds to dispatch one operator without graph capture (Python module and
    #: framework dispatch plus the runtime's launch)
    eager_op_host_us: float = Field(ge=0, le=1e4)
    #: share of the compute units the high-throughput (prefill) all-to-all kernels occupy while
    #: they run, taken from the compute they overlap with two-batch overlap
    a2a_compute_share: float = Field(ge=0, lt=0.9)


class ServingStack(Strict):
    features: ServingFeatures
    params: ServingParams


class StackSpec(Strict):
    name: str
    aliases: list[str] = Field(default_factory=list)
    #: what the flags rest on: versions, papers, source files
    basis: str
    #: parameters (names in params) the calibration program may fit
    fitted: list[str] = Field(default_factory=list)
    training: Optional[TrainingStack] = None
    #: the values the fit starts from (written by `suanli calibrate`)
    prior: Optional[dict[str, float]] = None
    #: what the fit used and found (data, rows, date, values with standard errors)
    calibration: Optional[dict[str, object]] = None
    serving: Optional[ServingStack] = None

    @field_validator("aliases")
    @classmethod
    def _alias_format(cls, v: list[str]):
        return check_aliases(v)


class StackFile(Strict):
    #: default training stack per efficiency class ("*" = any other class)
    default_training: dict[str, str]
    #: default serving stack per efficiency class ("*" = any other class)
    default_serving: dict[str, str] = Field(default_factory=dict)
    stacks: dict[str, StackSpec]

    @model_validator(mode="after")
    def _refs(self):
        import re

        for sid, s in self.stacks.items():
            if not re.match(ID_PATTERN, sid):
                raise ValueError(f"stack id '{sid}' must be lower-case letters, digits, '.', '-'")
            known = set(TrainingParams.model_fields if s.training is not None else ())
            known |= set(ServingParams.model_fields if s.serving is not None else ())
            bad = [f for f in s.fitted if f not in known]
            if bad:
                raise ValueError(f"stacks.{sid}.fitted: unknown parameter(s) {bad}")
        if "*" not in self.default_training:
            raise ValueError("default_training needs a '*' entry")
        for cls_, sid in self.default_training.items():
            if sid not in self.stacks or self.stacks[sid].training is None:
                raise ValueError(f"default_training.{cls_}: '{sid}' is not a training stack")
        if self.default_serving and "*" not in self.default_serving:
            raise ValueError("default_serving needs a '*' entry")
        for cls_, sid in self.default_serving.items():
            if sid not in self.stacks or self.stacks[sid].serving is None:
                raise ValueError(f"default_serving.{cls_}: '{sid}' is not a serving stack")
        seen: dict[str, str] = {}
        for sid, s in self.stacks.items():
            for key in [sid, *s.aliases]:
                if key in seen:
                    raise ValueError(f"stack id/alias '{key}' is defined twice ({seen[key]}, {sid})")
                seen[key] = sid
        return self

    def resolve(self, name: str) -> tuple[str, StackSpec]:
        """(id, spec) for an id or alias; KeyError if unknown."""
        low = name.strip().lower()
        if low in self.stacks:
            return low, self.stacks[low]
        for sid, s in self.stacks.items():
            if low in s.aliases:
                return sid, s
        raise KeyError(name)

    def names(self) -> list[str]:
        return sorted(list(self.stacks) + [a for s in self.stacks.values() for a in s.aliases])

    def default_for(self, eff_class: str) -> str:
        return self.default_training.get(eff_class, self.default_training["*"])

    def default_serving_for(self, eff_class: str) -> str | None:
        if not self.default_serving:
            return None
        return self.default_serving.get(eff_class, self.default_serving["*"])
