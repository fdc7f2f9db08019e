"""Packing: validated specs -> flat float64 arrays in SI units (layout in kernels.layout).

Done once per (model, chip, system); the kernels never look at a spec object.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from estimator.errors import SpecError
from estimator.specs import ChipSpec, EfficiencySpec, ModelSpec, StackSpec, SystemSpec
from kernels import layout as K

GIB = float(1 << 30)
TOPO_CODES = {"switched": K.TOPO_SWITCHED, "clos": K.TOPO_SWITCHED, "none": K.TOPO_SWITCHED,
              "full_mesh": K.TOPO_MESH, "torus": K.TOPO_TORUS}
PREC_CODES = {"bf16": K.PREC_BF16, "fp16": K.PREC_FP16, "fp8": K.PREC_FP8, "fp4": K.PREC_FP4}
PREC_NAMES = {v: k for k, v in PREC_CODES.items()}
RECOMPUTE_CODES = {"none": K.RC_NONE, "selective": K.RC_SELECTIVE, "full": K.RC_FULL,
                   "partial": K.RC_FULL}
RECOMPUTE_NAMES = {K.RC_NONE: "none", K.RC_SELECTIVE: "selective", K.RC_FULL: "full"}


def pack_model(m: ModelSpec) -> np.ndarray:
    mv = np.zeros(K.M_SIZE)
    mv[K.M_LAYERS] = m.layers
    mv[K.M_HIDDEN] = m.hidden
    mv[K.M_HEADS] = m.heads
    mv[K.M_KV_HEADS] = m.kv_heads
    if m.attention is not None:
        mla = m.attention
        mv[K.M_MLA] = 1.0
        mv[K.M_DQK] = mla.qk_nope_head_dim + mla.qk_rope_head_dim
        mv[K.M_DV] = mla.v_head_dim
        mv[K.M_Q_LORA] = mla.q_lora_rank
        mv[K.M_KV_LORA] = mla.kv_lora_rank
        mv[K.M_ROPE] = mla.qk_rope_head_dim
        mv[K.M_KV_HEADS] = m.heads
    else:
        mv[K.M_DQK] = m.head_dim_eff
        mv[K.M_DV] = m.head_dim_eff
    mv[K.M_FFN] = m.ffn_hidden
    mv[K.M_ACT] = {"gelu": K.ACT_GELU, "swiglu": K.ACT_SWIGLU, "relu2": K.ACT_RELU2}[m.ffn_act]
    mv[K.M_VOCAB] = m.vocab
    mv[K.M_TIED] = 1.0 if m.tied_embeddings else 0.0
    if m.moe is not None:
        after = m.layers - m.moe.dense_layers
        n_moe = after // m.moe.moe_layer_every
        mv[K.M_N_MOE] = n_moe
        mv[K.M_N_DENSE] = m.layers - n_moe
        mv[K.M_EXPERTS] = m.moe.experts
        mv[K.M_TOPK] = m.moe.top_k
        mv[K.M_SHARED] = m.moe.shared_experts
        mv[K.M_FE] = m.moe.expert_ffn_hidden
        mv[K.M_FS] = m.moe.shared_expert_ffn_hidden or m.moe.expert_ffn_hidden
        mv[K.M_GROUPS] = m.moe.routing_groups or 0
        mv[K.M_GROUP_LIMIT] = m.moe.routing_group_limit or 0
    else:
        mv[K.M_N_DENSE] = m.layers
    if m.sliding_window:
        mv[K.M_WINDOW] = m.sliding_window
        every = m.sliding_window_every or 0
        n_full = m.layers // every if every else 0
        mv[K.M_FRAC_SLIDING] = (m.layers - n_full) / m.layers
    return mv


def link_per_direction_gb_s(value: float | None, direction: str) -> float:
    """GB/s per direction. A 'bidirectional' total counts both directions; when the source
    does not say, we take the conservative reading (total of both directions)."""
    if value is None:
        return 0.0
    return value if direction == "unidirectional" else value / 2.0


@dataclass(frozen=True)
class HardwareContext:
    """Names for the packed hardware vector, to explain results."""

    chip: ChipSpec
    system: SystemSpec
    eff: EfficiencySpec
    eff_class: str
    ranks_per_package: int


def pack_hardware(chip: ChipSpec, system: SystemSpec, eff: EfficiencySpec,
                  overrides: dict[str, float] | None = None) -> np.ndarray:
    """Per-rank hardware vector. ``overrides`` scale datasheet facts for what-ifs
    (keys: compute, hbm_bw, hbm_capacity, scale_up, scale_out; value = multiplier)."""
    ov = {"compute": 1.0, "hbm_bw": 1.0, "hbm_capacity": 1.0, "scale_up": 1.0, "scale_out": 1.0}
    ov.update(overrides or {})
    rpp = chip.ranks_per_package
    hv = np.zeros(K.H_SIZE)
    tf = 1e12 * ov["compute"] / rpp

    bf16 = chip.peak("bf16")
    fp16 = chip.peak("fp16")
    sixteen = bf16 if bf16 is not None else fp16
    hv[K.H_PEAK_BF16] = (sixteen or 0.0) * tf
    hv[K.H_PEAK_FP16] = (fp16 if fp16 is not None else (bf16 or 0.0)) * tf
    hv[K.H_PEAK_FP8] = (chip.peak("fp8") or 0.0) * tf
    hv[K.H_PEAK_FP4] = (chip.peak("fp4") or 0.0) * tf
    hv[K.H_PEAK_INT8] = (chip.peak("int8") or 0.0) * tf

    cap = chip.hbm_gb
    bw = chip.hbm_gb_per_s
    if cap is None:
        raise SpecError(chip.id, "memory.capacity_gb", "unknown (null) in the catalog: cannot estimate "
                        "memory fit; give a sourced value in a user spec (--spec-dir)")
    if bw is None:
        raise SpecError(chip.id, "memory.bandwidth_gb_per_s", "unknown (null) in the catalog: cannot "
                        "estimate speed; give a sourced value in a user spec (--spec-dir)")
    # memory sizes are binary as vendors mean them ("80 GB" = 80 GiB); bandwidths decimal
    cap_rank = cap * ov["hbm_capacity"] / rpp
    hv[K.H_HBM_BYTES] = max(0.0, cap_rank - eff.memory_reserve_gb) * GIB
    hv[K.H_HBM_TOTAL] = cap_rank * GIB
    hv[K.H_HBM_BW] = bw * ov["hbm_bw"] / rpp * 1e9 * eff.hbm

    su = system.scale_up
    up = su.bandwidth_gb_per_s_per_chip
    up_dir = link_per_direction_gb_s(up.value, up.direction) * ov["scale_up"]
    hv[K.H_BW_UP] = up_dir / rpp * 1e9 * eff.scale_up
    pkgs = su.domain_chips
    hv[K.H_DOMAIN_PKGS] = pkgs
    hv[K.H_TOPO] = TOPO_CODES[su.topology]
    hv[K.H_TORUS_DIMS] = su.torus_dims or (3 if su.topology == "torus" else 0)
    if su.topology == "full_mesh":
        if su.pair_gb_per_s is not None and su.pair_gb_per_s.value is not None:
            pair = link_per_direction_gb_s(su.pair_gb_per_s.value, su.pair_gb_per_s.direction)
            hv[K.H_BW_PAIR_UP] = pair * ov["scale_up"] / rpp * 1e9 * eff.scale_up
        else:  # the per-chip figure spread over its peers
            hv[K.H_BW_PAIR_UP] = hv[K.H_BW_UP] / max(1, pkgs - 1)
    else:
        hv[K.H_BW_PAIR_UP] = hv[K.H_BW_UP]
    nic = system.scale_out.nic_gbit_per_s_per_chip.value
    out_dir = (nic or 0.0) / 8.0 / system.scale_out.oversubscription * ov["scale_out"]
    hv[K.H_BW_OUT] = out_dir / rpp * 1e9 * eff.scale_out
    if rpp > 1:
        d2d = chip.die_to_die_gb_per_s
        if d2d is not None and d2d.value is not None:
            hv[K.H_BW_DIE] = link_per_direction_gb_s(d2d.value, d2d.direction) * 1e9 * eff.die_link
        # else 0: plans whose groups cross the on-package link are refused (unknown link)
    lat_up = su.latency_us.value if su.latency_us is not None and su.latency_us.value else None
    lat_out = (system.scale_out.latency_us.value if system.scale_out.latency_us is not None
               and system.scale_out.latency_us.value else None)
    hv[K.H_LAT_DIE] = eff.latency_die_us * 1e-6
    hv[K.H_LAT_UP] = (lat_up if lat_up is not None else eff.latency_scale_up_us) * 1e-6
    hv[K.H_LAT_OUT] = (lat_out if lat_out is not None else eff.latency_scale_out_us) * 1e-6
    hv[K.H_LAT_SW] = eff.collective_step_us * 1e-6
    hv[K.H_RANKS_PKG] = rpp
    hv[K.H_DOMAIN] = pkgs * rpp
    hv[K.H_NODE] = system.chips_per_node * rpp
    hv[K.H_KERNEL_S] = eff.kernel_overhead_us * 1e-6
    hv[K.H_TP_OVL_EFF] = eff.tp_overlap_efficiency
    hv[K.H_ATT_FWD] = eff.attention_fwd
    hv[K.H_ATT_BWD] = eff.attention_bwd
    hv[K.H_ATT3_FWD] = eff.attention3_fwd or eff.attention_fwd
    hv[K.H_ATT3_BWD] = eff.attention3_bwd or eff.attention_bwd
    hv[K.H_ATT_S0] = eff.attention_half_context
    hv[K.H_GEMM_D0] = eff.gemm_narrow_dim
    hv[K.H_GG_D0] = eff.grouped_gemm_narrow_dim
    hv[K.H_GG_FACTOR] = eff.grouped_gemm_factor
    hv[K.H_GG_MTILE] = eff.grouped_gemm_m_tile
    hv[K.H_STEP_S] = eff.step_overhead_us * 1e-6
    hv[K.H_KV_FRACTION] = eff.kv_cache_fraction
    hv[K.H_STRAGGLER_CV] = eff.straggler_cv
    hv[K.H_MOE_TOKEN_S] = eff.moe_dispatch_ns_per_token * 1e-9
    hv[K.H_LP_FP8] = eff.low_precision_factor.get("fp8", 1.0)
    hv[K.H_LP_FP4] = eff.low_precision_factor.get("fp4", 1.0)
    hv[K.H_LP_INT8] = eff.low_precision_factor.get("int8", eff.low_precision_factor.get("fp8", 1.0))
    _pack_serving_hardware(hv, chip, system, eff, ov, up)
    n = len(eff.gemm.gflop)
    if n > K.H_CURVE_MAX:
        raise SpecError("efficiency", "gemm", f"at most {K.H_CURVE_MAX} breakpoints")
    hv[K.H_NCURVE] = n
    for i, (x, y) in enumerate(zip(eff.gemm.gflop, eff.gemm.efficiency)):
        hv[K.H_CURVE_X + i] = math.log10(x)
        hv[K.H_CURVE_Y + i] = y
    return hv


def _pack_serving_hardware(hv: np.ndarray, chip: ChipSpec, system: SystemSpec, eff: EfficiencySpec,
                           ov: dict, up) -> None:
    """Slots 48-63: serving-side hardware terms (efficiency.yaml serve_*; fallbacks as stated
    in estimator/specs/efficiency.py)."""
    rpp = chip.ranks_per_package
    peak_bw = chip.hbm_gb_per_s * ov["hbm_bw"] / rpp * 1e9
    ws = eff.serve_weight_stream
    hv[K.H_SV_WS_16] = peak_bw * ws.get("bf16", eff.hbm)
    hv[K.H_SV_WS_8] = peak_bw * ws.get("fp8", eff.hbm)
    hv[K.H_SV_WS_4] = peak_bw * ws.get("fp4", eff.hbm)
    # serving GEMM factors on the class curve: an absolute plateau measured in serving tables
    # (factor = plateau / the curve's top), else a factor, else the training factor
    top = max(eff.gemm.efficiency)
    gp, gf = eff.serve_gemm_plateau, eff.serve_gemm_factor
    lpf = eff.low_precision_factor
    for slot, width, fallback in ((K.H_SV_LP_16, "bf16", 1.0), (K.H_SV_LP_8, "fp8", lpf.get("fp8", 1.0)),
                                  (K.H_SV_LP_4, "fp4", lpf.get("fp4", 1.0))):
        hv[slot] = gp[width] / top if width in gp else gf.get(width, fallback)
    us = 1e-6
    hv[K.H_SV_QUANT_S] = (eff.serve_quant_us if eff.serve_quant_us is not None
                          else eff.kernel_overhead_us) * us
    hv[K.H_SV_KV_BW] = peak_bw * (eff.serve_kv_read if eff.serve_kv_read is not None else eff.hbm)
    hv[K.H_SV_ATT_DEC] = (eff.serve_decode_attention if eff.serve_decode_attention is not None
                          else eff.attention_fwd)
    hv[K.H_SV_AR_CUSTOM_S] = (eff.serve_allreduce_custom_us if eff.serve_allreduce_custom_us is not None
                              else eff.latency_scale_up_us) * us
    hv[K.H_SV_AR_LIB_S] = (eff.serve_allreduce_library_us if eff.serve_allreduce_library_us is not None
                           else eff.latency_scale_up_us) * us
    hv[K.H_SV_AR_STEP_S] = (eff.serve_allreduce_step_us if eff.serve_allreduce_step_us is not None
                            else eff.latency_scale_up_us) * us
    frac = eff.serve_collective_bw if eff.serve_collective_bw is not None else eff.scale_up
    hv[K.H_SV_COLL_BW] = link_per_direction_gb_s(up.value, up.direction) * ov["scale_up"] / rpp * 1e9 * frac
    hv[K.H_SV_NVLS] = 1.0 if (eff.serve_nvls and system.scale_up.topology == "switched") else 0.0
    hv[K.H_SV_A2A_S] = (eff.serve_a2a_latency_us if eff.serve_a2a_latency_us is not None
                        else eff.latency_scale_out_us) * us
    hv[K.H_SV_KERNEL_S] = (eff.serve_kernel_us if eff.serve_kernel_us is not None
                           else eff.kernel_overhead_us) * us


GRAPH_CODES = {"none": K.GRAPHS_NONE, "dense": K.GRAPHS_DENSE, "full": K.GRAPHS_FULL}
DISP_CODES = {"alltoall": K.DISP_ALLTOALL, "allgather": K.DISP_ALLGATHER, "deepep": K.DISP_DEEPEP}
DISP_NAMES = {v: k for k, v in DISP_CODES.items()}
ATTN_CODES = {"unfused": K.ATTN_UNFUSED, "flash2": K.ATTN_FLASH2, "flash3": K.ATTN_FLASH3}


def pack_stack(stack: StackSpec) -> np.ndarray:
    """Training-stack vector (kernels.layout S_*) from a stack spec's feature flags."""
    if stack.training is None:
        raise SpecError("stacks", stack.name, "is not a training stack")
    f, pr = stack.training.features, stack.training.params
    sv = np.zeros(K.S_SIZE)
    sv[K.S_SP] = float(f.sequence_parallel)
    sv[K.S_TP_OVERLAP] = float(f.tp_comm_overlap)
    sv[K.S_GRAD_OVERLAP] = float(f.overlap_grad_reduce)
    sv[K.S_PARAM_OVERLAP] = float(f.overlap_param_gather)
    sv[K.S_P2P_OVERLAP] = float(f.p2p_comm_overlap)
    sv[K.S_DISP] = DISP_CODES[f.moe_dispatcher]
    sv[K.S_GROUPED_GEMM] = float(f.grouped_gemm)
    sv[K.S_ATTN] = ATTN_CODES[f.attention]
    sv[K.S_FUSED] = float(f.fused_elementwise)
    sv[K.S_ZERO2_PER_MB] = float(f.zero2_reduce_per_microbatch)
    sv[K.S_MOE_CV] = pr.moe_load_cv
    sv[K.S_BUCKET] = pr.grad_bucket_params
    sv[K.S_GATHER_BUCKET] = pr.gather_bucket_params
    sv[K.S_GRAD_BYTES] = pr.main_grad_bytes
    sv[K.S_HOST_OP] = pr.host_op_us * 1e-6
    sv[K.S_A2A_SHARE] = pr.a2a_sm_share
    sv[K.S_GRAPHS] = GRAPH_CODES[f.cuda_graphs]
    sv[K.S_SEL_ACT] = float(f.selective_recompute_activation)
    sv[K.S_CP_ALLGATHER] = float(f.cp_algorithm == "allgather")
    sv[K.S_ZERO3_REGATHER] = float(f.zero3_regather_on_recompute)
    return sv


KV_ADMIT_CODES = {"reserve_full": K.KVA_FULL, "on_demand": K.KVA_MEAN}


def pack_serving_stack(stack: StackSpec) -> dict[int, int]:
    """Serving-stack knobs as plan-row entries (kernels.layout I_* index -> int value)."""
    if stack.serving is None:
        raise SpecError("stacks", stack.name, "is not a serving stack")
    f, pr = stack.serving.features, stack.serving.params
    return {
        K.I_GRAPHS: int(f.graphs),
        K.I_OVERLAP: int(f.overlap_scheduler),
        K.I_MIXED: int(f.mixed_batching),
        K.I_CHUNK: int(pr.prefill_chunk_tokens),
        K.I_KV_ADMIT: KV_ADMIT_CODES[f.kv_admission],
        K.I_CUSTOM_AR: int(f.custom_allreduce),
        K.I_HOST_US: int(round(pr.step_host_us)),
        K.I_HOST_SEQ_NS: int(round(pr.step_host_us_per_seq * 1000)),
        K.I_KV_FRAC_PM: int(round(pr.kv_memory_fraction * 1000)),
        K.I_KV_OF_TOTAL: int(f.kv_fraction_of == "total"),
        K.I_LOAD_CV_PM: int(round(pr.expert_load_cv * 1000)),
        K.I_A2A_LL: int(f.low_latency_a2a),
        K.I_FUSED_QUANT: int(f.fused_quant),
        K.I_HOST_OP_NS: int(round(pr.eager_op_host_us * 1000)),
        K.I_A2A_SM_PM: int(round(pr.a2a_compute_share * 1000)),
    }
