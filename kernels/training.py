"""Training-step model (numba): one parallel plan -> step time as named parts, memory per rank.

The per-plan model is written once, here, as readable functions of the packed arrays
(kernels/layout.py): model vector ``mv``, per-rank hardware vector ``hv``, software-stack
vector ``sv`` (feature flags, hwspecs/stacks.yaml) and one plan row ``p``. It is built from
four blocks that depend on only some of the plan's knobs, so a search can reuse them between
neighbouring plans (the memo at the end of this file):

* ``layer_costs``: one transformer layer (dense or MoE) for one micro-batch on one rank -
  compute, recompute, and the TP / CP / EP communication it exposes;
* ``head_costs``: output layer, loss, and one pipeline send;
* ``dp_costs``: parameters per rank and data-parallel collectives;
* ``activation_costs``: activation bytes per layer by recompute mode;

and ``assemble`` puts them together for a plan (micro-batches, pipeline schedule, overlaps,
memory). ``train_one`` evaluates a plan from scratch; ``train_one_memo`` does the same with the
blocks cached. Conventions:

* A rank is one framework process (a chip, or a die where frameworks run one per die).
* Placement (Megatron): TP innermost; then an inner data block Din = lcm(cp, ep) holding the
  CP and EP groups; then PP; then the rest of data parallelism.
* Step time = compute + recompute + exposed TP/CP/EP/PP/DP communication + pipeline bubble +
  optimizer + stragglers. Exposure is computed (communication minus the compute the stack can
  hide it behind), never a fixed fraction.
"""
import math

import numba
import numpy as np
from numba import njit, prange

from kernels import layout as K
from kernels.collectives import all_reduce, flat_ring_latency, p2p, rs_or_ag, tier_sizes, tiered_transfer
from kernels.gemm import gemm_time, grouped_gemm
from kernels.model import avg_context, hardware_flops_per_token, model_flops_per_token, model_params
from kernels.moe import dispatch_bytes, ep_imbalance

BF16_BYTES = 2.0
FP32_BYTES = 4.0
#: bytes an Adam step moves per local fp32 master parameter: read/write master, m, v (24),
#: read the fp32 gradient (4), write the 16-bit parameter (2), plus the grad-norm read (4)
ADAM_BYTES_PER_PARAM = 34.0
#: optimizer state per local master parameter: fp32 master weight, Adam m and v
ADAM_STATE_BYTES = 12.0

# ---- layer block (one layer, one micro-batch, one rank) ------------------------------------
L_FWD = 0       # forward compute, s (GEMMs, attention core, elementwise, MoE routing)
L_BWD = 1       # backward compute
L_CORE = 2      # attention-core forward (what selective recompute repeats)
L_TP_F = 3      # TP communication left exposed, forward
L_TP_B = 4
L_CP_F = 5      # CP ring communication left exposed, forward
L_CP_B = 6
L_EP_F = 7      # MoE all-to-all (dispatch + combine) time, forward (exposure decided per plan)
L_EP_B = 8
L_HOST = 9      # host time to issue the layer's forward operators (backward issues twice as many)
L_SYNC = 10     # host time exposed after the MoE dispatcher's device-to-host sync
L_SIZE = 11
#: operators the host issues per pipeline chunk and micro-batch, each direction (send, receive,
#: wait, output deallocation and the schedule's own bookkeeping); a chunk of one layer pays them
#: for every layer
PIPE_CHUNK_OPS = 12.0
# ---- head block -------------------------------------------------------------------------
HD_LOGITS = 0   # output-layer GEMM forward
HD_CE = 1       # softmax cross-entropy forward
HD_P2P = 2      # one pipeline send of a micro-batch's activations
HD_MFT = 3      # model FLOPs per token (MFU convention)
HD_HFT_FULL = 4  # executed FLOPs per token with every layer fully recomputed
HD_HFT_SEL = 5  # executed FLOPs per token with selective recompute
HD_SIZE = 6
# ---- data-parallel block ------------------------------------------------------------------
DP_RS = 0       # reduce-scatter of the gradients (dense + expert groups)
DP_AR = 1       # all-reduce of the gradients
DP_AG = 2       # all-gather of the 16-bit parameters
DP_RS_TAIL = 3  # the same for one DDP bucket: the part that cannot hide behind compute
DP_AR_TAIL = 4
DP_AG_TAIL = 5
DP_PD = 6       # dense parameters on the busiest rank
DP_PE = 7       # expert parameters on the busiest rank
DP_ND = 8       # dense layers on the busiest rank
DP_NM = 9       # MoE layers on the busiest rank
DP_FSDPW = 10   # ZeRO-3 working set: two gathered layers, bytes
DP_STRAG = 11   # straggler factor cv * sqrt(2 ln nodes)
DP_AG3 = 12     # ZeRO-3 parameter all-gather (at least one collective per layer)
DP_SIZE = 13
# ---- activation block ---------------------------------------------------------------------
A_FULL_EXTRA = 6   # bytes of one layer re-materialised during backward under full recompute
A_LOGITS = 7       # logits and loss buffers of one micro-batch
A_SIZE = 8         # 0..5: (dense, MoE) layer bytes for recompute none / selective / full

# schedule_costs output (SC_*): per micro-batch, busiest rank, seconds
SC_FD = 0          # one dense layer's forward (host-bound, with the MoE sync where any)
SC_FM = 1          # one MoE layer's forward
SC_FWD = 2         # the rank's forward (layers + head)
SC_BWD = 3         # the rank's backward
SC_TP_F = 4        # exposed TP communication, forward / backward
SC_TP_B = 5
SC_CP_F = 6        # exposed CP communication, forward / backward
SC_CP_B = 7
SC_EP_ALL = 8      # exposed (or SM-share) EP all-to-all, forward + backward
SC_EP_F = 9        # of which in the forward
SC_SIZE = 10


@njit(cache=True, error_model="numpy")
def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


@njit(cache=True, error_model="numpy")
def expert_tp(tp, dp, cp, ep):
    """Tensor-parallel degree of the expert layers. EP carved out of the data-parallel ranks
    (ep divides dp*cp): experts are split over the same TP group as the rest (expert TP = tp).
    Otherwise MoE parallel folding (Liu et al. 2025, arXiv 2504.14960; Megatron-Core
    --expert-tensor-parallel-size): the expert layers remap the tp*cp*dp ranks of a pipeline
    stage as ETP x EP with no expert data parallelism, ETP = tp*cp*dp / ep."""
    if (dp * cp) % ep == 0.0:
        return tp
    return tp * dp * cp / ep


@njit(cache=True, error_model="numpy")
def plan_etp(p, tp, dp, cp, ep):
    """Expert TP degree of plan row ``p``: its P_ETP knob, or the default rule when 0."""
    e = float(p[K.P_ETP])
    return e if e > 0.0 else expert_tp(tp, dp, cp, ep)


@njit(cache=True, error_model="numpy")
def inner_block(tp, dp, cp, ep, etp):
    """Data-parallel ranks inside the block that sits between TP and PP in the rank order: the
    CP/EP groups (lcm of cp and ep); with folded experts the whole data-parallel width (the EP
    group spans it)."""
    if etp < tp:
        return dp * cp
    icp = int(cp)
    iep = int(ep)
    return float(icp * iep // _gcd(icp, iep))


@njit(cache=True, error_model="numpy")
def precision_terms(hv, prec):
    """(16-bit peak, matmul peak, low-precision factor, bytes per matmul input element)."""
    peak16 = hv[K.H_PEAK_BF16] if prec != K.PREC_FP16 else hv[K.H_PEAK_FP16]
    if prec == K.PREC_FP8:
        return peak16, hv[K.H_PEAK_FP8], hv[K.H_LP_FP8], 1.0
    if prec == K.PREC_FP4:
        return peak16, hv[K.H_PEAK_FP4], hv[K.H_LP_FP4], 0.5
    return peak16, peak16, 1.0, BF16_BYTES


@njit(cache=True, error_model="numpy")
def attention_core(mv, hv, sv, tp, cp, seq, mbs, peak16):
    """(forward, backward) time of the attention core (QK^T, softmax, AV) of one layer.

    Fused flash attention (Dao et al. 2022/2023): causal FLOPs over the mean context at the
    class's attention efficiency (FlashAttention-2 class, or FlashAttention-3 / cuDNN class where
    the stack runs it); backward = 2.5x the forward FLOPs (5 matmuls vs 2). Unfused (Megatron
    2021): QK^T and AV as batched GEMMs over the full s x s score matrix (no causal skipping),
    the fused scale-mask-softmax reads and writes the scores (4 B per score forward, 6 backward).
    """
    a = mv[K.M_HEADS] / tp
    dqk = mv[K.M_DQK]
    dv = mv[K.M_DV]
    T = mbs * seq / cp
    launch = hv[K.H_KERNEL_S]
    if sv[K.S_ATTN] == K.ATTN_UNFUSED:
        sq = seq / cp
        heads = mbs * a
        fwd = (gemm_time(hv, sq, seq, dqk, heads, peak16, 1.0, BF16_BYTES)
               + gemm_time(hv, sq, dv, seq, heads, peak16, 1.0, BF16_BYTES))
        scores = heads * sq * seq
        fwd += 4.0 * scores / hv[K.H_HBM_BW] + launch
        bwd = 2.0 * (fwd - launch) + 6.0 * scores / hv[K.H_HBM_BW] + 2.0 * launch
        return fwd, bwd
    fs = mv[K.M_FRAC_SLIDING]
    ctx = (1.0 - fs) * avg_context(seq, 0.0, True) + fs * avg_context(seq, mv[K.M_WINDOW], True)
    flops = 2.0 * T * ctx * a * (dqk + dv)
    if sv[K.S_ATTN] == K.ATTN_FLASH3:
        e_f = hv[K.H_ATT3_FWD]
        e_b = hv[K.H_ATT3_BWD]
    else:
        e_f = hv[K.H_ATT_FWD]
        e_b = hv[K.H_ATT_BWD]
    # short contexts run below the plateau (FlashAttention-3 paper, H100 causal: 0.30 / 0.53 /
    # 0.62 of peak at 512 / 2k / 16k tokens)
    sat = ctx / (ctx + hv[K.H_ATT_S0])
    return flops / (peak16 * e_f * sat) + launch, 2.5 * flops / (peak16 * e_b * sat) + launch


@njit(cache=True, error_model="numpy")
def _tp_exposed(c, g, overlap, chunks, eff):
    """A TP collective of time ``c`` next to a GEMM of time ``g``: all of it without overlap;
    with userbuffers/MC2 pipelining the GEMM is split into ``chunks`` pieces and the collective
    hides behind ``eff`` of the GEMM's time (the two contend for cores and HBM), leaving at least
    one chunk exposed."""
    if not overlap:
        return c
    return max(c / chunks, c - eff * g)


@njit(cache=True, error_model="numpy")
def host_ops(mv, sv, tp, ep, prec, moe_layer):
    """(operators the host issues for one layer's forward, operators issued after the MoE
    dispatcher's device-to-host sync). Counts follow the module structure of a Megatron /
    Transformer Engine layer: attention block (norm, QKV GEMMs, RoPE, attention, output GEMM,
    residual) and MLP block (norm, up GEMM, activation, down GEMM, residual); an MoE block adds
    the router (GEMM, softmax/top-k, auxiliary loss), the dispatcher (index computation, token
    counts, two all-to-alls, permute and unpermute) and grouped expert GEMMs. Eager (unfused)
    elementwise code issues about twice as many operators; each fp8 GEMM adds a cast and a
    scale update (a grouped fp8 GEMM: per local expert); each TP collective is one more.
    Captured CUDA graphs issue one launch."""
    fused = sv[K.S_FUSED] > 0.5
    graphs = sv[K.S_GRAPHS]
    n_gemm_attn = 4.0 if mv[K.M_MLA] > 0.5 else 2.0
    attn = (6.0 if fused else 12.0) + n_gemm_attn - 2.0
    mlp = 5.0 if fused else 8.0
    sync_ops = 0.0
    local = 1.0
    if moe_layer:
        mlp = 40.0 if fused else 60.0
        sync_ops = 15.0 if fused else 25.0
        local = mv[K.M_EXPERTS] / ep
        if mv[K.M_SHARED] > 0:
            mlp += 4.0
    if prec == K.PREC_FP8 or prec == K.PREC_FP4:
        attn += 2.0 * n_gemm_attn
        if moe_layer:
            mlp += 2.0 * 2.0 * local + (4.0 if mv[K.M_SHARED] > 0 else 0.0)
        else:
            mlp += 4.0
    if tp > 1.0:
        attn += 2.0
        mlp += 2.0
    if graphs == K.GRAPHS_FULL:
        return 2.0, 0.0
    if graphs == K.GRAPHS_DENSE:
        attn = 1.0
        if not moe_layer:
            mlp = 1.0
    return attn + mlp, sync_ops


@njit(cache=True, error_model="numpy")
def layer_costs(out, mv, hv, sv, tp, cp, ep, etp, seq, mbs, prec, moe_layer, disp):
    """Fill ``out`` (L_*) for one layer (dense or MoE) and one micro-batch on one rank; ``disp``
    is the MoE token dispatcher (kernels.layout DISP_*)."""
    h = mv[K.M_HIDDEN]
    a = mv[K.M_HEADS]
    kv = mv[K.M_KV_HEADS]
    dqk = mv[K.M_DQK]
    dv = mv[K.M_DV]
    swiglu = mv[K.M_ACT] == K.ACT_SWIGLU
    up = 2.0 if swiglu else 1.0
    T = mbs * seq / cp
    sp = sv[K.S_SP] > 0.5
    fused = sv[K.S_FUSED] > 0.5
    bw = hv[K.H_HBM_BW]
    launch = hv[K.H_KERNEL_S]
    peak16, peak, lp, in_b = precision_terms(hv, prec)

    # -- attention projections (Megatron column-parallel QKV, row-parallel output) ---------
    q_el = 0.0      # elements cast to fp8/fp4 before GEMMs (inputs), for the cast traffic
    q_out = 0.0     # GEMM output elements whose gradients are cast in backward
    if mv[K.M_MLA] > 0.5:
        ql = mv[K.M_Q_LORA]
        kvl = mv[K.M_KV_LORA]
        rope = mv[K.M_ROPE]
        if ql > 0:
            g_in = (gemm_time(hv, T, ql, h, 1.0, peak, lp, in_b)
                    + gemm_time(hv, T, a * dqk / tp, ql, 1.0, peak, lp, in_b))
            q_el += T * h + T * ql
            q_out += T * ql + T * a * dqk / tp
        else:
            g_in = gemm_time(hv, T, a * dqk / tp, h, 1.0, peak, lp, in_b)
            q_el += T * h
            q_out += T * a * dqk / tp
        g_in += gemm_time(hv, T, kvl + rope, h, 1.0, peak, lp, in_b)
        g_in += gemm_time(hv, T, a * ((dqk - rope) + dv) / tp, kvl, 1.0, peak, lp, in_b)
        q_el += T * h + T * kvl
        q_out += T * (kvl + rope) + T * a * ((dqk - rope) + dv) / tp
        rope_el = (a / tp + 1.0) * rope
        kv_heads_cp = a
    else:
        g_in = gemm_time(hv, T, (a + 2.0 * kv) * dqk / tp, h, 1.0, peak, lp, in_b)
        q_el += T * h
        q_out += T * (a + 2.0 * kv) * dqk / tp
        rope_el = (a + kv) * dqk / tp
        kv_heads_cp = kv
    g_out = gemm_time(hv, T, h, a * dv / tp, 1.0, peak, lp, in_b)
    q_el += T * a * dv / tp
    q_out += T * h
    core_f, core_b = attention_core(mv, hv, sv, tp, cp, seq, mbs, peak16)

    # -- MLP: dense, or MoE (router, permutation, grouped experts, shared experts) --------
    elem = 0.0          # forward elementwise bytes through HBM
    act_bytes = 0.0     # of which the MLP activation function
    n_launch = 8.0 if fused else 20.0
    act_el = 3.0 if fused else 5.0       # SwiGLU: read gate and up, write; eager: silu, mul
    if not swiglu:
        act_el = 2.0
    ep_f = 0.0
    ep_b = 0.0
    g_sh_in = 0.0       # shared-expert GEMMs (a dense TP MLP beside the routed experts)
    g_sh_out = 0.0
    routed = 0.0        # routed copies of the rank's ETP group (busiest rank)
    if moe_layer:
        E = mv[K.M_EXPERTS]
        k = mv[K.M_TOPK]
        fe = mv[K.M_FE]
        local = E / ep
        imb = ep_imbalance(E, ep, sv[K.S_MOE_CV])
        Te = T * etp / tp                          # tokens of the rank's ETP group
        te = Te * k * ep / E * imb                 # tokens per local expert, busiest rank
        routed = Te * k * imb
        grouped = sv[K.S_GROUPED_GEMM] > 0.5
        g_router = gemm_time(hv, T, E, h, 1.0, peak16, 1.0, BF16_BYTES)
        g_up = grouped_gemm(hv, te, up * fe / etp, h, local, peak, lp, in_b, grouped)
        g_down = grouped_gemm(hv, te, h, fe / etp, local, peak, lp, in_b, grouped)
        q_el += Te * k * imb * (h + fe / etp)
        q_out += Te * k * imb * (up * fe / etp + h)
        act_bytes += act_el * Te * k * imb * fe / etp * BF16_BYTES
        # permutation through HBM (read + write of every routed copy): permute and unpermute,
        # plus the chunk sort before and after the all-to-all when ep > 1; fused permute
        # kernels (TE / DeepEP) do each direction in one pass
        passes = 2.0 if ep <= 1.0 else 4.0
        if fused:
            passes = passes / 2.0
        elem += passes * 2.0 * Te * k * imb * h * BF16_BYTES
        elem += 3.0 * T * E * FP32_BYTES            # router softmax / top-k on fp32 logits
        n_launch += 10.0 if fused else 20.0
        if not grouped:
            n_launch += local
        g_mlp_in = g_router + g_up
        g_mlp_out = g_down
        if mv[K.M_SHARED] > 0:
            fsh = mv[K.M_FS] * mv[K.M_SHARED]
            g_sh_in = gemm_time(hv, T, up * fsh / tp, h, 1.0, peak, lp, in_b)
            g_sh_out = gemm_time(hv, T, h, fsh / tp, 1.0, peak, lp, in_b)
            g_mlp_in += g_sh_in
            g_mlp_out += g_sh_out
            q_el += T * (h + fsh / tp)
            q_out += T * (up * fsh / tp + h)
            act_bytes += act_el * T * fsh / tp * BF16_BYTES
        if disp == K.DISP_ALLGATHER and ep * etp > 1.0:
            # allgather dispatcher (Megatron MoEAllGatherTokenDispatcher): the hidden states of
            # the whole EP x ETP group are all-gathered before the experts and their outputs
            # reduce-scattered back (reverse in backward), 16 bit; each rank then picks the
            # copies bound for its local experts from all gathered tokens (one HBM pass)
            n_g = ep * etp
            whole = T / tp * n_g * h * BF16_BYTES
            one_g = rs_or_ag(hv, whole, n_g, 1.0, n_g, 1.0, 1.0)
            ep_f = 2.0 * one_g
            ep_b = 2.0 * one_g
            elem += whole
        elif ep > 1.0:
            # dispatch (fp8 when the matmuls are fp8, as DeepSeek-V3 sec. 3.3) and combine (16
            # bit) over the tiers the EP group spans; the busiest rank receives imb x the mean
            g0, g1, n_dom = tier_sizes(hv, etp, ep, 1.0, 1.0)
            tok = T / tp
            d_b = 1.0 if prec == K.PREC_FP8 else BF16_BYTES
            dedup = disp == K.DISP_DEEPEP
            b0, b1, b2 = dispatch_bytes(tok, h * d_b, k, ep, g0, n_dom, E, mv[K.M_GROUPS],
                                        mv[K.M_GROUP_LIMIT], dedup)
            c0, c1, c2 = dispatch_bytes(tok, h * BF16_BYTES, k, ep, g0, n_dom, E, mv[K.M_GROUPS],
                                        mv[K.M_GROUP_LIMIT], dedup)
            combine = tiered_transfer(hv, imb * c0, imb * c1, imb * c2, g1)
            ep_f = tiered_transfer(hv, imb * b0, imb * b1, imb * b2, g1) + combine
            ep_b = 2.0 * combine
    else:
        f = mv[K.M_FFN]
        g_mlp_in = gemm_time(hv, T, up * f / tp, h, 1.0, peak, lp, in_b)
        g_mlp_out = gemm_time(hv, T, h, f / tp, 1.0, peak, lp, in_b)
        q_el += T * (h + f / tp)
        q_out += T * (up * f / tp + h)
        act_bytes += act_el * T * f / tp * BF16_BYTES
    elem += act_bytes

    # -- elementwise: two norms and two residual adds on the sequence shard (SP) or on every
    # token (no SP), rotary embedding on this rank's heads; eager kernels make more passes
    tok_norm = T / tp if sp else T
    norm_passes = 1.0 if fused else 3.0
    rope_passes = 1.0 if fused else 4.0
    elem += (2.0 * norm_passes * 2.0 * h + 2.0 * 3.0 * h) * tok_norm * BF16_BYTES
    elem += rope_passes * 2.0 * rope_el * T * BF16_BYTES
    quant_b = 0.0
    if prec == K.PREC_FP8 or prec == K.PREC_FP4:
        # Transformer Engine casts each GEMM input to fp8 with its transpose (read 16 bit,
        # write twice), and in backward the output gradients likewise
        elem += q_el * (BF16_BYTES + 2.0 * in_b)
        quant_b = q_out * (BF16_BYTES + 2.0 * in_b) / bw
    elem_f = elem / bw + n_launch * launch

    gemm_f = g_in + g_out + g_mlp_in + g_mlp_out
    gpu_f = gemm_f + core_f + elem_f
    gpu_b = 2.0 * gemm_f + core_b + 2.0 * elem_f + quant_b
    host_f, host_sync = host_ops(mv, sv, tp, ep, prec, moe_layer)
    host_f *= sv[K.S_HOST_OP]
    # selective recompute repeats the attention core (and, where the stack does, the MLP
    # activation function)
    out[L_CORE] = core_f + (act_bytes / bw if sv[K.S_SEL_ACT] > 0.5 else 0.0)

    # -- TP: with SP all-gather before the QKV and MLP-in GEMMs, reduce-scatter after the
    # output and MLP-out GEMMs (4 per layer per direction, Korthikanti et al. 2022); without SP
    # two all-reduces of the same volume. Backward GEMMs (dgrad + wgrad) are twice as long.
    # An MoE layer's routed experts sharded over ETP > 1 ranks need every routed copy of the
    # group: the alltoall dispatchers all-gather the permuted tokens over the ETP group after the
    # EP all-to-all and reduce-scatter them before the combine (Megatron-Core
    # MoEAlltoAll(SEQ)TokenDispatcher; MindSpeed documents this all-gather as serial with the
    # grouped GEMM, docs/features/megatron_moe/megatron-moe-alltoall-dispatcher.md): k x the
    # dense volume, not pipelined with a TE / MC2 linear layer, so exposed. With ETP = 1 (folded)
    # tokens stay on their sequence shard and the experts need no TP collective; shared experts
    # are a dense TP MLP.
    tp_f = 0.0
    tp_b = 0.0
    if tp > 1.0:
        one = rs_or_ag(hv, T * h * BF16_BYTES, tp, 1.0, tp, 1.0, 1.0)
        ovl = sv[K.S_TP_OVERLAP] > 0.5
        e = hv[K.H_TP_OVL_EFF]
        tp_f = _tp_exposed(one, g_in, ovl, tp, e) + _tp_exposed(one, g_out, ovl, tp, e)
        tp_b = _tp_exposed(one, 2.0 * g_in, ovl, tp, e) + _tp_exposed(one, 2.0 * g_out, ovl, tp, e)
        if moe_layer:
            if g_sh_in > 0.0:
                tp_f += _tp_exposed(one, g_sh_in, ovl, tp, e) + _tp_exposed(one, g_sh_out, ovl, tp, e)
                tp_b += (_tp_exposed(one, 2.0 * g_sh_in, ovl, tp, e)
                         + _tp_exposed(one, 2.0 * g_sh_out, ovl, tp, e))
            if etp > 1.0 and disp != K.DISP_ALLGATHER:   # allgather: already gathered over ETP
                one_e = rs_or_ag(hv, routed * h * BF16_BYTES, etp, 1.0, etp, 1.0, 1.0)
                tp_f += 2.0 * one_e
                tp_b += 2.0 * one_e
        else:
            tp_f += _tp_exposed(one, g_mlp_in, ovl, tp, e) + _tp_exposed(one, g_mlp_out, ovl, tp, e)
            tp_b += (_tp_exposed(one, 2.0 * g_mlp_in, ovl, tp, e)
                     + _tp_exposed(one, 2.0 * g_mlp_out, ovl, tp, e))
    out[L_TP_F] = tp_f
    out[L_TP_B] = tp_b

    # -- CP: ring attention passes K,V chunks cp-1 times (dK,dV too in backward), each hop
    # overlapped with the attention on the chunk in hand; the slowest hop is set by the tier
    # the whole group spans
    cp_f = 0.0
    cp_b = 0.0
    if cp > 1.0:
        kv_bytes = T * kv_heads_cp / tp * (dqk + dv) * BF16_BYTES
        if sv[K.S_CP_ALLGATHER] > 0.5:
            # all-gather K,V of the whole sequence before attention, reduce-scatter dK,dV after
            # the backward: on the critical path (Llama 3 paper sec. 3.3.2)
            cp_f = rs_or_ag(hv, cp * kv_bytes, cp, tp, cp, 1.0, 1.0)
            cp_b = rs_or_ag(hv, cp * kv_bytes, cp, tp, cp, 1.0, 1.0)
        else:
            # the ring's members sit tp ranks apart; its farthest hop (the wrap-around from
            # the last member to the first) is tp*(cp-1) ranks, inside the domain iff the
            # group's block of tp*cp ranks is
            hop_f = p2p(hv, kv_bytes, tp * (cp - 1.0))
            hop_b = p2p(hv, 2.0 * kv_bytes, tp * (cp - 1.0))
            cp_f = (cp - 1.0) * max(0.0, hop_f - core_f / cp)
            cp_b = (cp - 1.0) * max(0.0, hop_b - core_b / cp)
    out[L_CP_F] = cp_f
    out[L_CP_B] = cp_b
    out[L_EP_F] = ep_f
    out[L_EP_B] = ep_b
    out[L_FWD] = gpu_f
    out[L_BWD] = gpu_b
    out[L_HOST] = host_f
    out[L_SYNC] = host_sync * sv[K.S_HOST_OP]


@njit(cache=True, error_model="numpy")
def layer_activation_bytes(mv, sv, tp, cp, ep, etp, seq, mbs, rc, prec, moe_layer):
    """Bytes of activations one layer keeps for backward, per micro-batch, per rank.

    Korthikanti et al. 2022, Table 2, generalised to GQA/MLA, gated MLPs and MoE, with no
    dropout: the tensors split over TP (per-head Q/K/V, attention output, MLP intermediate) are
    divided by tp; the hidden-size tensors (norm inputs, GEMM inputs) only with sequence
    parallelism. Flash attention keeps no s x s scores; unfused attention keeps the softmax
    output (2 B per score). fp8/fp4 GEMM inputs are kept in that precision (TE's cast copy).
    MoE experts hold the routed copies of their ETP group's tokens, the intermediate split over
    ETP (expert TP = TP: every TP rank holds all copies of the TP group).
    Full recompute keeps only the layer input."""
    T = mbs * seq / cp
    h = mv[K.M_HIDDEN]
    a = mv[K.M_HEADS]
    kv = mv[K.M_KV_HEADS]
    dqk = mv[K.M_DQK]
    dv = mv[K.M_DV]
    sp = sv[K.S_SP] > 0.5
    rep_div = tp if sp else 1.0
    if prec == K.PREC_FP8:
        gin = 1.0
    elif prec == K.PREC_FP4:
        gin = 0.5
    else:
        gin = BF16_BYTES
    if rc == K.RC_FULL:
        return T * h * BF16_BYTES / rep_div
    up = 2.0 if mv[K.M_ACT] == K.ACT_SWIGLU else 1.0
    if mv[K.M_MLA] > 0.5:
        qkv16 = a * dqk + a * dqk + a * dv          # q, k (nope + rope), v after up-projection
        rep = h * BF16_BYTES + (h + mv[K.M_Q_LORA] + mv[K.M_KV_LORA]) * gin
    else:
        qkv16 = a * dqk + 2.0 * kv * dqk
        rep = h * BF16_BYTES + h * gin              # norm input, QKV-GEMM input
    # output-projection input: kept under selective recompute too (the recomputed attention
    # core regenerates only what lies between Q, K, V and its output; Table 2: 34sbh/t)
    split = qkv16 * BF16_BYTES + a * dv * gin
    rep += h * BF16_BYTES + h * gin                 # MLP norm input, MLP-in GEMM input
    routed = 0.0
    if moe_layer:
        k = mv[K.M_TOPK]
        fe = mv[K.M_FE]
        act_in = 0.0 if (rc == K.RC_SELECTIVE and sv[K.S_SEL_ACT] > 0.5) else up * fe * BF16_BYTES
        routed = etp / tp * k * (h * gin + (act_in + fe * gin) / etp)
        if mv[K.M_SHARED] > 0:
            fsh = mv[K.M_FS] * mv[K.M_SHARED]
            split += up * fsh * BF16_BYTES + fsh * gin
    else:
        f = mv[K.M_FFN]
        split += up * f * BF16_BYTES + f * gin
        if rc == K.RC_SELECTIVE and sv[K.S_SEL_ACT] > 0.5:
            split -= up * f * BF16_BYTES            # the activation's input is recomputed
    total = T * (rep / rep_div + split / tp + routed)
    if sv[K.S_ATTN] == K.ATTN_UNFUSED and rc != K.RC_SELECTIVE:
        total += mbs * (a / tp) * (seq / cp) * seq * BF16_BYTES
    return total


@njit(cache=True, error_model="numpy")
def stage_layout(mv, pp, vpp):
    """(layers, MoE layers, dense layers) on the busiest rank. Layers need not divide into
    pp*vpp stages: a rank holds at most vpp * ceil(L / (pp*vpp)); the busiest rank is taken to
    hold MoE layers first (the expensive ones)."""
    L = mv[K.M_LAYERS]
    per_rank = min(L, vpp * math.ceil(L / (pp * vpp)))
    n_moe = min(per_rank, mv[K.M_N_MOE])
    return per_rank, n_moe, per_rank - n_moe


@njit(cache=True, error_model="numpy")
def head_costs(out, mv, hv, sv, tp, dp, cp, ep, etp, seq, mbs, prec):
    """Fill ``out`` (HD_*): output-layer GEMM (16 bit) and the softmax cross-entropy over the
    vocabulary shard, and one pipeline send (the scatter/gather optimisation of Narayanan et al.
    2021 sends 1/tp of the activations per rank) between stages tp*Din ranks apart."""
    h = mv[K.M_HIDDEN]
    V = mv[K.M_VOCAB]
    T = mbs * seq / cp
    peak16 = hv[K.H_PEAK_BF16] if prec != K.PREC_FP16 else hv[K.H_PEAK_FP16]
    out[HD_LOGITS] = gemm_time(hv, T, V / tp, h, 1.0, peak16, 1.0, BF16_BYTES)
    ce_bytes = T * V / tp * (BF16_BYTES + 2.0 * FP32_BYTES)
    out[HD_CE] = ce_bytes / hv[K.H_HBM_BW] + 2.0 * hv[K.H_KERNEL_S]
    din = inner_block(tp, dp, cp, ep, etp)
    out[HD_P2P] = p2p(hv, T * h * BF16_BYTES / tp, tp * din)
    out[HD_MFT] = model_flops_per_token(mv, seq)
    out[HD_HFT_FULL] = hardware_flops_per_token(mv, seq, K.RC_FULL, 1.0)
    out[HD_HFT_SEL] = hardware_flops_per_token(mv, seq, K.RC_SELECTIVE, 1.0)


@njit(cache=True, error_model="numpy")
def dp_costs(out, mv, hv, sv, tp, pp, dp, cp, ep, etp, vpp):
    """Fill ``out`` (DP_*): parameters on the busiest rank and the data-parallel collectives.

    Dense parameters are replicated over dp*cp ranks, expert parameters over
    tp*dp*cp/(ep*etp) (EP carved out of the data-parallel ranks: dp*cp/ep; folded: 1). Gradients travel at the stack's
    main-gradient width (fp32), parameters at 16 bit."""
    attn, dense_mlp, expert, shared, router, norms, embed, out_layer, total, active = model_params(mv)
    per_rank, n_moe_r, n_dense_r = stage_layout(mv, pp, vpp)
    embed_part = embed + (out_layer if pp == 1.0 else 0.0)
    nonexp = (n_dense_r * (attn + norms + dense_mlp)
              + n_moe_r * (attn + norms + router + shared))
    p_dense = (nonexp + embed_part) / tp
    p_exp = n_moe_r * mv[K.M_EXPERTS] * expert / (ep * etp)
    dp_dense = dp * cp
    dp_exp = tp * dp * cp / (ep * etp)
    din = inner_block(tp, dp, cp, ep, etp)
    dout = dp * cp / din
    s_out = tp * din * pp
    gb = sv[K.S_GRAD_BYTES]
    bucket = sv[K.S_BUCKET]
    rs = 0.0
    ar = 0.0
    ag = 0.0
    rs_t = 0.0
    ar_t = 0.0
    ag_t = 0.0
    ag3 = 0.0
    # gradients and parameters travel in DDP buckets: the bandwidth term is that of the whole
    # tensor, but every bucket is its own collective and pays the ring's step latencies
    # (all-reduce: a tree's 2 log2(n)); the last bucket is the part that cannot hide behind
    # compute. ZeRO-3 gathers parameters at least once per layer.
    for j in range(2):
        if j == 0:
            p_n = p_dense
            grp = dp_dense
            g_s1 = tp
            g_n1 = din
        else:
            p_n = p_exp
            grp = dp_exp
            g_s1 = etp * ep
            g_n1 = tp * din / (etp * ep)
        if p_n <= 0.0 or grp <= 1.0:
            continue
        nb = math.ceil(p_n / bucket)
        b = min(bucket, p_n)
        lat = flat_ring_latency(hv, grp, g_s1, g_n1, s_out, dout)
        lat_tree = lat / (grp - 1.0) * 2.0 * math.log2(grp)
        ag_bw = rs_or_ag(hv, p_n * BF16_BYTES, grp, g_s1, g_n1, s_out, dout)
        rs += rs_or_ag(hv, p_n * gb, grp, g_s1, g_n1, s_out, dout) + (nb - 1.0) * lat
        ag += ag_bw + (nb - 1.0) * lat
        nb3 = max(math.ceil(p_n / sv[K.S_GATHER_BUCKET]), per_rank)
        ag3 += ag_bw + (nb3 - 1.0) * lat
        ar += all_reduce(hv, p_n * gb, grp, g_s1, g_n1, s_out, dout) + (nb - 1.0) * min(2.0 * lat, lat_tree)
        rs_t = max(rs_t, rs_or_ag(hv, b * gb, grp, g_s1, g_n1, s_out, dout))
        ar_t = max(ar_t, all_reduce(hv, b * gb, grp, g_s1, g_n1, s_out, dout))
        ag_t = max(ag_t, rs_or_ag(hv, b * BF16_BYTES, grp, g_s1, g_n1, s_out, dout))
    out[DP_RS] = rs
    out[DP_AR] = ar
    out[DP_AG] = ag
    out[DP_AG3] = ag3
    out[DP_RS_TAIL] = rs_t
    out[DP_AR_TAIL] = ar_t
    out[DP_AG_TAIL] = ag_t
    out[DP_PD] = p_dense
    out[DP_PE] = p_exp
    out[DP_ND] = n_dense_r
    out[DP_NM] = n_moe_r
    dense_layer = (attn + norms + dense_mlp) / tp
    moe_layer = 0.0
    if n_moe_r > 0:
        moe_layer = (attn + norms + router + shared) / tp + mv[K.M_EXPERTS] * expert / (ep * etp)
    out[DP_FSDPW] = 2.0 * max(dense_layer, moe_layer) * BF16_BYTES
    n_nodes = (tp * pp * dp * cp) / hv[K.H_NODE]
    out[DP_STRAG] = hv[K.H_STRAGGLER_CV] * math.sqrt(2.0 * math.log(n_nodes)) if n_nodes > 1.0 else 0.0


@njit(cache=True, error_model="numpy")
def activation_costs(out, mv, sv, tp, cp, ep, etp, seq, mbs, prec):
    """Fill ``out`` (A_*): activation bytes per layer by recompute mode, the extra layer a full
    recompute re-materialises in backward, and the logits of one micro-batch."""
    moe = mv[K.M_N_MOE] > 0
    full_d = layer_activation_bytes(mv, sv, tp, cp, ep, etp, seq, mbs, K.RC_NONE, prec, False)
    full_m = layer_activation_bytes(mv, sv, tp, cp, ep, etp, seq, mbs, K.RC_NONE, prec, True) if moe else 0.0
    for rc in range(3):
        a_d = layer_activation_bytes(mv, sv, tp, cp, ep, etp, seq, mbs, rc, prec, False)
        a_m = layer_activation_bytes(mv, sv, tp, cp, ep, etp, seq, mbs, rc, prec, True) if moe else a_d
        out[2 * rc] = a_d
        out[2 * rc + 1] = a_m
    out[A_FULL_EXTRA] = max(full_d, full_m) - out[2 * K.RC_FULL]   # (reported; assemble uses
    # the layer kinds the busiest rank actually holds)
    out[A_LOGITS] = mbs * seq / cp * mv[K.M_VOCAB] / tp * (BF16_BYTES + FP32_BYTES)


@njit(cache=True, error_model="numpy")
def _host_bound(device, comm, host):
    """Device time of a layer, stretched when the host takes longer to issue it."""
    return device + max(0.0, host - (device + comm))


@njit(cache=True, error_model="numpy")
def _dp_exposed(sv, zero, m, dpv, fwd_win, bwd_win, regather):
    """Data-parallel communication left on the critical path, per ZeRO stage and overlap flags.

    ZeRO-0: gradient all-reduce after the last micro-batch's backward. ZeRO-1 (distributed
    optimizer): reduce-scatter of the full gradient buffer once per step, then all-gather of the
    updated 16-bit parameters. ZeRO-2 (DeepSpeed): a reduce-scatter every micro-batch into the
    gradient shard. ZeRO-3 / FSDP: parameters all-gathered for each micro-batch's forward and
    again for its backward, gradients reduce-scattered every micro-batch; ``regather`` (the
    share of layers fully recomputed, on a stack that releases parameters after the forward)
    more all-gathers run in the backward window for the recompute. Overlapped traffic hides
    behind the backward (or forward) of one micro-batch except its last bucket."""
    g_ovl = sv[K.S_GRAD_OVERLAP] > 0.5
    p_ovl = sv[K.S_PARAM_OVERLAP] > 0.5
    rs = dpv[DP_RS]
    ag = dpv[DP_AG]
    if zero == 0:
        ar = dpv[DP_AR]
        return max(dpv[DP_AR_TAIL], ar - bwd_win) if g_ovl else ar
    if zero == 3:
        ag3 = dpv[DP_AG3]
        n_bwd = 1.0 + regather
        if not (g_ovl and p_ovl):
            return m * ((1.0 + n_bwd) * ag3 + rs)
        return m * (max(dpv[DP_AG_TAIL], ag3 - fwd_win)
                    + max(dpv[DP_AG_TAIL] + dpv[DP_RS_TAIL], n_bwd * ag3 + rs - bwd_win))
    t_ag = max(dpv[DP_AG_TAIL], ag - fwd_win) if p_ovl else ag
    if zero == 2 and sv[K.S_ZERO2_PER_MB] > 0.5:
        t_rs = m * (max(dpv[DP_RS_TAIL], rs - bwd_win) if g_ovl else rs)
    else:
        t_rs = max(dpv[DP_RS_TAIL], rs - bwd_win) if g_ovl else rs
    return t_rs + t_ag


@njit(cache=True, error_model="numpy")
def _degrees(p):
    """(tp, pp, dp, cp, ep, vpp, mbs, seq) of plan row ``p`` as floats."""
    return (float(p[K.P_TP]), float(p[K.P_PP]), float(p[K.P_DP]), float(p[K.P_CP]),
            float(p[K.P_EP]), float(p[K.P_VPP]), float(p[K.P_MBS]), float(p[K.P_SEQ]))


@njit(cache=True, error_model="numpy")
def schedule_costs(out, sv, pp, vpp, epo, ld, lm, hd, dpv):
    """Fill ``out`` (SC_*): one micro-batch's forward and backward on the busiest rank and its
    exposed TP / CP / EP communication, the parts of a plan that do not depend on its
    recompute mode or ZeRO stage."""
    nd = dpv[DP_ND]
    nm = dpv[DP_NM]
    # the host issues each layer's operators while the device runs earlier ones: a small layer
    # on a fast chip waits for the host, so a layer lasts max(device time with its exposed
    # communication, host time); pipeline chunks add their own operators per micro-batch. The
    # MoE dispatcher reads the token counts per expert back to the host (a device-to-host sync
    # that drains the queue), so the operators issued after it are exposed in full.
    chunk = PIPE_CHUNK_OPS * sv[K.S_HOST_OP] * vpp / (nd + nm) if pp > 1.0 else 0.0
    fd = _host_bound(ld[L_FWD], ld[L_TP_F] + ld[L_CP_F], ld[L_HOST] + chunk) + ld[L_SYNC]
    bd = _host_bound(ld[L_BWD], ld[L_TP_B] + ld[L_CP_B], 2.0 * (ld[L_HOST] + chunk))
    fm = _host_bound(lm[L_FWD], lm[L_TP_F] + lm[L_CP_F], lm[L_HOST] + chunk) + lm[L_SYNC]
    bm = _host_bound(lm[L_BWD], lm[L_TP_B] + lm[L_CP_B], 2.0 * (lm[L_HOST] + chunk))
    fwd = nd * fd + nm * fm + hd[HD_LOGITS] + hd[HD_CE]
    bwd = nd * bd + nm * bm + 2.0 * hd[HD_LOGITS] + hd[HD_CE]
    tp_f = nd * ld[L_TP_F] + nm * lm[L_TP_F]
    tp_b = nd * ld[L_TP_B] + nm * lm[L_TP_B]
    cp_f = nd * ld[L_CP_F] + nm * lm[L_CP_F]
    cp_b = nd * ld[L_CP_B] + nm * lm[L_CP_B]
    # MoE all-to-all: exposed whole, or (plan knob) hidden behind another micro-batch's compute
    # of the same layer (Megatron-Core EP overlap / DualPipe-style pairing), keeping the excess;
    # while it hides, its kernels hold a share s of the compute units, so the compute it
    # overlaps runs at 1 - s: s x the hidden time is added
    a2a = nm * (lm[L_EP_F] + lm[L_EP_B])
    if epo == 1:
        busy = fm + bm + lm[L_TP_F] + lm[L_TP_B] + lm[L_CP_F] + lm[L_CP_B]
        t_a2a = lm[L_EP_F] + lm[L_EP_B]
        ep_all = nm * (max(0.0, t_a2a - busy) + sv[K.S_A2A_SHARE] * min(t_a2a, busy))
    else:
        ep_all = a2a
    ep_share_f = lm[L_EP_F] / (lm[L_EP_F] + lm[L_EP_B]) if a2a > 0.0 else 0.0
    ep_f = ep_all * ep_share_f

    out[SC_FD] = fd
    out[SC_FM] = fm
    out[SC_FWD] = fwd
    out[SC_BWD] = bwd
    out[SC_TP_F] = tp_f
    out[SC_TP_B] = tp_b
    out[SC_CP_F] = cp_f
    out[SC_CP_B] = cp_b
    out[SC_EP_ALL] = ep_all
    out[SC_EP_F] = ep_f


@njit(cache=True, error_model="numpy", inline="always")
def assemble(mv, hv, sv, p, o, ld, lm, hd, dpv, act, sc):
    """Put the blocks together for plan ``p``: micro-batches, schedule, overlaps, memory.
    Writes output row ``o`` (kernels.layout O_*) and returns a status code."""
    tp, pp, dp, cp, ep, vpp, mbs, seq = _degrees(p)
    gbs = float(p[K.P_GBS])
    zero = p[K.P_ZERO]
    rc = p[K.P_RECOMPUTE]

    m = gbs / (dp * mbs)                      # micro-batches per step per pipeline
    nd = dpv[DP_ND]
    nm = dpv[DP_NM]
    fd = sc[SC_FD]
    fm = sc[SC_FM]
    fwd = sc[SC_FWD]
    bwd = sc[SC_BWD]
    tp_f = sc[SC_TP_F]
    tp_b = sc[SC_TP_B]
    cp_f = sc[SC_CP_F]
    cp_b = sc[SC_CP_B]
    ep_all = sc[SC_EP_ALL]
    ep_f = sc[SC_EP_F]

    q = 0.0
    rec = 0.0
    rec_comm = 0.0
    if rc == K.RC_FULL:
        per_rank = nd + nm
        quarters = float(p[K.P_RC_Q]) if p[K.P_RC_Q] > 0 else 4.0
        q = min(per_rank, math.ceil(quarters * per_rank / 4.0)) / per_rank
        rec = q * (nd * fd + nm * fm)
        rec_comm = q * (tp_f + cp_f + ep_f)
    elif rc == K.RC_SELECTIVE:
        rec = nd * ld[L_CORE] + nm * lm[L_CORE]
    t_tp = tp_f + tp_b
    t_cp = cp_f + cp_b
    t_mb = fwd + bwd + rec + t_tp + t_cp + ep_all + rec_comm
    fwd_win = fwd
    bwd_win = bwd + rec

    # pipeline: 1F1B bubble (p-1)/(v m) of the m micro-batches (Narayanan et al. 2021)
    bubble = (pp - 1.0) / vpp * t_mb
    pp_comm = 0.0
    if pp > 1.0:
        one = hd[HD_P2P]
        if sv[K.S_P2P_OVERLAP] > 0.5:
            # only the fill/drain chain waits on sends; in the steady state a send hides
            # behind the next virtual stage's compute
            pp_comm = 2.0 * (pp - 1.0) * one + 2.0 * m * vpp * max(0.0, one - t_mb / (2.0 * vpp))
        else:
            pp_comm = 2.0 * (m * vpp + pp - 1.0) * one

    regather = q if sv[K.S_ZERO3_REGATHER] > 0.5 else 0.0
    dp_exposed = _dp_exposed(sv, zero, m, dpv, fwd_win, bwd_win, regather)
    p_dense = dpv[DP_PD]
    p_exp = dpv[DP_PE]
    dp_dense = dp * cp
    etp = plan_etp(p, tp, dp, cp, ep)
    dp_exp = tp * dp * cp / (ep * etp)
    shard = dp_dense if zero >= 1 else 1.0
    shard_e = dp_exp if zero >= 1 else 1.0
    local_master = p_dense / shard + p_exp / shard_e
    optimizer = local_master * ADAM_BYTES_PER_PARAM / hv[K.H_HBM_BW]

    base = m * t_mb + bubble + pp_comm + dp_exposed + optimizer
    strag = base * dpv[DP_STRAG]
    step = base + strag

    o[K.O_T_COMPUTE] = m * (fwd + bwd)
    o[K.O_T_RECOMPUTE] = m * rec
    o[K.O_T_TP] = m * (t_tp + q * tp_f)
    o[K.O_T_CP] = m * (t_cp + q * cp_f)
    o[K.O_T_EP] = m * (ep_all + q * ep_f)
    o[K.O_T_PP] = pp_comm
    o[K.O_T_DP] = dp_exposed
    o[K.O_T_BUBBLE] = bubble
    o[K.O_T_OPTIMIZER] = optimizer
    o[K.O_T_STRAGGLER] = strag
    o[K.O_STEP] = step

    # memory on the busiest rank (the first pipeline stage holds the most micro-batches)
    prec = p[K.P_PREC]
    w_shard = dp_dense if zero == 3 else 1.0
    w_shard_e = dp_exp if zero == 3 else 1.0
    weights = (p_dense / w_shard + p_exp / w_shard_e) * BF16_BYTES
    if zero == 3:
        weights += dpv[DP_FSDPW]
    g_shard = dp_dense if zero >= 2 else 1.0
    g_shard_e = dp_exp if zero >= 2 else 1.0
    grads = (p_dense / g_shard + p_exp / g_shard_e) * sv[K.S_GRAD_BYTES]
    opt = local_master * ADAM_STATE_BYTES
    ac = 2 * rc
    act_mb = nd * act[ac] + nm * act[ac + 1]
    extra = 0.0
    if rc == K.RC_FULL:
        act_mb = q * act_mb + (1.0 - q) * (nd * act[0] + nm * act[1])
        # while a recomputed layer runs its backward its full activations exist again on top of
        # its stored input: the largest kind of layer this rank holds
        biggest = max(act[0] if nd > 0 else 0.0, act[1] if nm > 0 else 0.0)
        extra = max(0.0, biggest - act[2 * K.RC_FULL])
    # the first stage holds the most micro-batches in flight (1F1B: min(m, pp); interleaved:
    # x (1 + (p-1)/(p v)), Korthikanti et al. 2022 sec. 4.2.3); the logits live on the last
    # stage, which holds one micro-batch
    in_flight = min(m, pp)
    interleave = 1.0 + (pp - 1.0) / (pp * vpp) if vpp > 1.0 else 1.0
    if pp > 1.0:
        activ = max(act_mb * in_flight * interleave, act_mb + act[A_LOGITS]) + extra
    else:
        activ = act_mb * in_flight * interleave + extra + act[A_LOGITS]
    o[K.O_MEM_WEIGHTS] = weights
    o[K.O_MEM_GRADS] = grads
    o[K.O_MEM_OPT] = opt
    o[K.O_MEM_ACT] = activ
    o[K.O_MEM_TOTAL] = weights + grads + opt + activ
    status = K.ST_OK
    if o[K.O_MEM_TOTAL] > hv[K.H_HBM_BYTES]:
        status = K.ST_OOM
    if not math.isfinite(step):
        status = K.ST_NO_LINK
    o[K.O_TOKENS_PER_S] = 0.0
    if math.isfinite(step) and step > 0.0:
        o[K.O_TOKENS_PER_S] = gbs * seq / step
    o[K.O_MODEL_FLOPS_TOK] = hd[HD_MFT]
    if rc == K.RC_FULL:
        o[K.O_HW_FLOPS_TOK] = hd[HD_MFT] + q * (hd[HD_HFT_FULL] - hd[HD_MFT])
    elif rc == K.RC_SELECTIVE:
        o[K.O_HW_FLOPS_TOK] = hd[HD_HFT_SEL]
    else:
        o[K.O_HW_FLOPS_TOK] = hd[HD_MFT]
    return status


@njit(cache=True, error_model="numpy")
def _no_precision(hv, p, o):
    prec = p[K.P_PREC]
    if prec == K.PREC_BF16:
        need = hv[K.H_PEAK_BF16]
    elif prec == K.PREC_FP16:
        need = hv[K.H_PEAK_FP16]
    elif prec == K.PREC_FP8:
        need = hv[K.H_PEAK_FP8]
    else:
        need = hv[K.H_PEAK_FP4]
    if need <= 0.0 or hv[K.H_PEAK_BF16] <= 0.0:
        for i in range(K.O_SIZE):
            o[i] = 0.0
        return True
    return False


# ---- per-batch memo: consecutive plans share their blocks ---------------------------------
# The cache holds each block's output next to the knobs it depends on; a block is recomputed
# only when its key changes. Plans are enumerated so that neighbours share keys.
C_LKEY = 0                      # (tp, cp, ep x 4096 + etp, seq, mbs, prec)
C_LD = 6
C_LM = C_LD + L_SIZE
C_HD = C_LM + L_SIZE
C_DKEY = C_HD + HD_SIZE         # (tp, pp, dp, cp, ep, vpp)
C_DP = C_DKEY + 6
C_AKEY = C_DP + DP_SIZE         # (tp, cp, ep x 4096 + etp, seq, mbs, prec)
C_ACT = C_AKEY + 6
C_SKEY = C_ACT + A_SIZE         # (pp, vpp, epo, layers dense, MoE, 0); cleared with the blocks above
C_SC = C_SKEY + 6
C_SIZE = C_SC + SC_SIZE


@njit(cache=True, error_model="numpy")
def _same(c, at, a, b, d, e, f, g):
    return (c[at] == a and c[at + 1] == b and c[at + 2] == d and c[at + 3] == e
            and c[at + 4] == f and c[at + 5] == g)


@njit(cache=True, error_model="numpy")
def _store(c, at, a, b, d, e, f, g):
    c[at] = a
    c[at + 1] = b
    c[at + 2] = d
    c[at + 3] = e
    c[at + 4] = f
    c[at + 5] = g


@njit(cache=True, error_model="numpy", inline="always")
def train_one_memo(mv, hv, sv, p, o, c):
    """:func:`train_one` with the blocks taken from the memo ``c`` when their knobs match."""
    if _no_precision(hv, p, o):
        return K.ST_NO_PRECISION
    tp, pp, dp, cp, ep, vpp, mbs, seq = _degrees(p)
    prec = p[K.P_PREC]
    fprec = float(prec)
    etp = plan_etp(p, tp, dp, cp, ep)
    disp = p[K.P_DISP] if p[K.P_DISP] > 0 else int(sv[K.S_DISP])
    # the layer blocks depend on dp only through etp (and the PP hop span through the inner
    # block, which is fixed by (dp, cp, ep) when folded): key ep, etp and the dispatcher
    # together, exactly
    epk = ep * 4096.0 + etp + (dp * cp if etp < tp else 0.0) * 1.0e7 + disp * 1.0e13
    ld = c[C_LD:C_LD + L_SIZE]
    lm = c[C_LM:C_LM + L_SIZE]
    hd = c[C_HD:C_HD + HD_SIZE]
    if not _same(c, C_LKEY, tp, cp, epk, seq, mbs, fprec):
        layer_costs(ld, mv, hv, sv, tp, cp, ep, etp, seq, mbs, prec, False, disp)
        if mv[K.M_N_MOE] > 0:
            layer_costs(lm, mv, hv, sv, tp, cp, ep, etp, seq, mbs, prec, True, disp)
        head_costs(hd, mv, hv, sv, tp, dp, cp, ep, etp, seq, mbs, prec)
        _store(c, C_LKEY, tp, cp, epk, seq, mbs, fprec)
        c[C_SKEY] = -1.0
    dpv = c[C_DP:C_DP + DP_SIZE]
    if not _same(c, C_DKEY, tp, pp, dp, cp, ep, vpp):
        dp_costs(dpv, mv, hv, sv, tp, pp, dp, cp, ep, etp, vpp)
        _store(c, C_DKEY, tp, pp, dp, cp, ep, vpp)
        c[C_SKEY] = -1.0
    sc = c[C_SC:C_SC + SC_SIZE]
    epo = float(p[K.P_EPO])
    if not _same(c, C_SKEY, pp, vpp, epo, dpv[DP_ND], dpv[DP_NM], 0.0):
        schedule_costs(sc, sv, pp, vpp, p[K.P_EPO], ld, lm, hd, dpv)
        _store(c, C_SKEY, pp, vpp, epo, dpv[DP_ND], dpv[DP_NM], 0.0)
    act = c[C_ACT:C_ACT + A_SIZE]
    if not _same(c, C_AKEY, tp, cp, epk, seq, mbs, fprec):
        activation_costs(act, mv, sv, tp, cp, ep, etp, seq, mbs, prec)
        _store(c, C_AKEY, tp, cp, epk, seq, mbs, fprec)
    return assemble(mv, hv, sv, p, o, ld, lm, hd, dpv, act, sc)


@njit(cache=True, error_model="numpy")
def _fresh_cache():
    c = np.zeros(C_SIZE)
    c[C_LKEY] = -1.0
    c[C_DKEY] = -1.0
    c[C_AKEY] = -1.0
    c[C_SKEY] = -1.0
    return c


@njit(cache=True, error_model="numpy")
def train_one(mv, hv, sv, p, o):
    """Evaluate plan row ``p`` from scratch into output row ``o``; return a status code."""
    return train_one_memo(mv, hv, sv, p, o, _fresh_cache())


@njit(cache=True, parallel=True, error_model="numpy")
def _run_parallel(mv, hv, sv, plans, out, status, block):
    n = plans.shape[0]
    nblocks = (n + block - 1) // block
    for b in prange(nblocks):
        c = _fresh_cache()
        lo = b * block
        hi = min(n, lo + block)
        for i in range(lo, hi):
            status[i] = train_one_memo(mv, hv, sv, plans[i], out[i], c)


def evaluate_training_parallel(mv, hv, sv, plans, out, status, block=4096):
    """prange over blocks of plans on all numba threads; each block keeps its own memo."""
    _run_parallel(mv, hv, sv, plans, out, status, block)


def evaluate_training(mv, hv, sv, plans, out, status, block=4096):
    """The same kernel on one thread (the reference point for speed-ups)."""
    prev = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        _run_parallel(mv, hv, sv, plans, out, status, block)
    finally:
        numba.set_num_threads(prev)


def new_outputs(n):
    """Preallocated output matrix and status vector for n plans."""
    return np.zeros((n, K.O_SIZE)), np.zeros(n, dtype=np.int64)
