"""Training-step kernel (numba). A line-by-line port of estimator/reference/training.py:
keep the two in step (tests/test_kernel_vs_reference.py checks agreement to 1e-9).

``evaluate_training(mv, hv, plans, out, status)`` fills one output row and one status code
per plan row; ``evaluate_training_parallel`` is the same over ``prange``.
"""
import math

import numba
import numpy as np
from numba import njit, prange

from kernels import layout as K
from kernels.collectives import all_to_all, p2p, rs_or_ag
from kernels.gemm import gemm_time
from kernels.model import avg_context, hardware_flops_per_token, model_flops_per_token, model_params

BF16_BYTES = 2.0
FP32_BYTES = 4.0


@njit(cache=True, error_model="numpy")
def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


@njit(cache=True, error_model="numpy")
def layer_times(mv, hv, tp, cp, ep, seq, mbs, prec, moe_layer):
    """(fwd, bwd, core_fwd, tp_fwd, tp_bwd, cp_fwd, cp_bwd, ep_fwd, ep_bwd)"""
    h = mv[K.M_HIDDEN]
    a = mv[K.M_HEADS]
    kv = mv[K.M_KV_HEADS]
    dqk = mv[K.M_DQK]
    dv = mv[K.M_DV]
    swiglu = mv[K.M_ACT] == K.ACT_SWIGLU
    up_mult = 2.0 if swiglu else 1.0
    T = mbs * seq / cp
    peak16 = hv[K.H_PEAK_BF16] if prec != K.PREC_FP16 else hv[K.H_PEAK_FP16]
    if prec == K.PREC_FP8:
        peak = hv[K.H_PEAK_FP8]
        lp = hv[K.H_LP_FP8]
        in_b = 1.0
    elif prec == K.PREC_FP4:
        peak = hv[K.H_PEAK_FP4]
        lp = hv[K.H_LP_FP4]
        in_b = 0.5
    else:
        peak = peak16
        lp = 1.0
        in_b = BF16_BYTES

    g = 0.0
    quant_elems = 0.0
    quant_out = 0.0
    if mv[K.M_MLA] > 0.5:
        ql = mv[K.M_Q_LORA]
        kvl = mv[K.M_KV_LORA]
        rope = mv[K.M_ROPE]
        if ql > 0:
            g += gemm_time(hv, T, ql, h, 1.0, peak, lp, in_b)
            g += gemm_time(hv, T, a * dqk / tp, ql, 1.0, peak, lp, in_b)
            quant_elems += T * h + T * ql
            quant_out += T * ql + T * a * dqk / tp
        else:
            g += gemm_time(hv, T, a * dqk / tp, h, 1.0, peak, lp, in_b)
            quant_elems += T * h
            quant_out += T * a * dqk / tp
        g += gemm_time(hv, T, kvl + rope, h, 1.0, peak, lp, in_b)
        g += gemm_time(hv, T, a * ((dqk - rope) + dv) / tp, kvl, 1.0, peak, lp, in_b)
        quant_elems += T * h + T * kvl
        quant_out += T * (kvl + rope) + T * a * ((dqk - rope) + dv) / tp
    else:
        g += gemm_time(hv, T, (a + 2.0 * kv) * dqk / tp, h, 1.0, peak, lp, in_b)
        quant_elems += T * h
        quant_out += T * (a + 2.0 * kv) * dqk / tp
    g += gemm_time(hv, T, h, a * dv / tp, 1.0, peak, lp, in_b)
    quant_elems += T * a * dv / tp
    quant_out += T * h

    elem_mlp = 0.0
    moe_fixed = 0.0
    if moe_layer:
        E = mv[K.M_EXPERTS]
        k = mv[K.M_TOPK]
        fe = mv[K.M_FE]
        local = E / ep
        te = T * k * ep / E
        g += gemm_time(hv, T, E, h, 1.0, peak16, 1.0, BF16_BYTES)
        g += gemm_time(hv, te, up_mult * fe / tp, h, local, peak, lp, in_b)
        g += gemm_time(hv, te, h, fe / tp, local, peak, lp, in_b)
        quant_elems += T * k * (h + fe / tp)
        quant_out += T * k * (up_mult * fe / tp + h)
        if swiglu:
            elem_mlp += 3.0 * T * k * fe / tp * BF16_BYTES
        else:
            elem_mlp += 2.0 * T * k * fe / tp * BF16_BYTES
        elem_mlp += 4.0 * T * k * h * BF16_BYTES
        # per routed token copy: router bookkeeping, permute, unpermute (fitted, see efficiency.yaml)
        moe_fixed = T * k * hv[K.H_MOE_TOKEN_S]
        if mv[K.M_SHARED] > 0:
            fs = mv[K.M_FS] * mv[K.M_SHARED]
            g += gemm_time(hv, T, up_mult * fs / tp, h, 1.0, peak, lp, in_b)
            g += gemm_time(hv, T, h, fs / tp, 1.0, peak, lp, in_b)
            quant_elems += T * (h + fs / tp)
            quant_out += T * (up_mult * fs / tp + h)
            elem_mlp += (3.0 if swiglu else 2.0) * T * fs / tp * BF16_BYTES
    else:
        f = mv[K.M_FFN]
        g += gemm_time(hv, T, up_mult * f / tp, h, 1.0, peak, lp, in_b)
        g += gemm_time(hv, T, h, f / tp, 1.0, peak, lp, in_b)
        quant_elems += T * (h + f / tp)
        quant_out += T * (up_mult * f / tp + h)
        elem_mlp += (3.0 if swiglu else 2.0) * T * f / tp * BF16_BYTES

    fs_frac = mv[K.M_FRAC_SLIDING]
    ctx = (1.0 - fs_frac) * avg_context(seq, 0.0, True) + fs_frac * avg_context(seq, mv[K.M_WINDOW], True)
    core_flops = 2.0 * T * ctx * (a / tp) * (dqk + dv)
    core_fwd = core_flops / (peak16 * hv[K.H_ATT_FWD]) + hv[K.H_KERNEL_S]
    core_bwd = 2.5 * core_flops / (peak16 * hv[K.H_ATT_BWD]) + hv[K.H_KERNEL_S]

    elem = (4.0 * h + 6.0 * h) * T / tp * BF16_BYTES
    elem += 2.0 * (a + kv) * dqk / tp * T * BF16_BYTES
    elem += elem_mlp
    if prec == K.PREC_FP8 or prec == K.PREC_FP4:
        elem += quant_elems * (BF16_BYTES + 2.0 * in_b)
        quant_bwd = quant_out * (BF16_BYTES + 2.0 * in_b) / hv[K.H_HBM_BW]
    else:
        quant_bwd = 0.0
    n_elem_kernels = 8.0
    elem_fwd = elem / hv[K.H_HBM_BW] + n_elem_kernels * hv[K.H_KERNEL_S]

    fwd = g + core_fwd + elem_fwd + moe_fixed
    bwd = 2.0 * g + core_bwd + 2.0 * elem_fwd + 2.0 * moe_fixed + quant_bwd

    act_bytes = T * h * BF16_BYTES
    tp_one = rs_or_ag(hv, act_bytes, tp, 1.0, tp, 1.0, 1.0)
    tp_fwd = 4.0 * tp_one * hv[K.H_TP_EXPOSED]
    tp_bwd = 4.0 * tp_one * hv[K.H_TP_EXPOSED]

    cp_fwd = 0.0
    cp_bwd = 0.0
    if cp > 1.0:
        if mv[K.M_MLA] > 0.5:
            kv_bytes = T * a / tp * (dqk + dv) * BF16_BYTES
        else:
            kv_bytes = T * kv / tp * (dqk + dv) * BF16_BYTES
        ring = (cp - 1.0) * p2p(hv, kv_bytes, tp)
        cp_fwd = max(0.0, ring - core_fwd)
        cp_bwd = max(0.0, 2.0 * ring - core_bwd)

    ep_fwd = 0.0
    ep_bwd = 0.0
    if moe_layer and ep > 1.0:
        a2a_bytes = T * mv[K.M_TOPK] * h * (1.0 if prec == K.PREC_FP8 else BF16_BYTES) / tp
        combine_bytes = T * mv[K.M_TOPK] * h * BF16_BYTES / tp
        ep_fwd = (all_to_all(hv, a2a_bytes, ep, tp, ep, 1.0, 1.0)
                  + all_to_all(hv, combine_bytes, ep, tp, ep, 1.0, 1.0))
        ep_bwd = 2.0 * all_to_all(hv, combine_bytes, ep, tp, ep, 1.0, 1.0)
    return fwd, bwd, core_fwd, tp_fwd, tp_bwd, cp_fwd, cp_bwd, ep_fwd, ep_bwd


@njit(cache=True, error_model="numpy")
def layer_activation_bytes(mv, tp, cp, seq, mbs, rc, prec, moe_layer):
    T = mbs * seq / cp
    h = mv[K.M_HIDDEN]
    a = mv[K.M_HEADS]
    kv = mv[K.M_KV_HEADS]
    dqk = mv[K.M_DQK]
    dv = mv[K.M_DV]
    swiglu = mv[K.M_ACT] == K.ACT_SWIGLU
    if prec == K.PREC_FP8:
        gin = 1.0
    elif prec == K.PREC_FP4:
        gin = 0.5
    else:
        gin = BF16_BYTES
    if rc == K.RC_FULL:
        return T * h * BF16_BYTES / tp
    up = 2.0 if swiglu else 1.0
    if mv[K.M_MLA] > 0.5:
        ql = mv[K.M_Q_LORA]
        kvl = mv[K.M_KV_LORA]
        qkv16 = a * dqk + a * dqk + a * dv
        gemm_in = h + ql + kvl
    else:
        qkv16 = a * dqk + 2.0 * kv * dqk
        gemm_in = h
    attn = (h + qkv16) * BF16_BYTES + gemm_in * gin
    if rc != K.RC_SELECTIVE:
        attn += a * dv * gin
    if moe_layer:
        k = mv[K.M_TOPK]
        fe = mv[K.M_FE]
        mlp = h * BF16_BYTES + h * gin + k * (h * gin + up * fe * BF16_BYTES + fe * gin)
        if mv[K.M_SHARED] > 0:
            fs = mv[K.M_FS] * mv[K.M_SHARED]
            mlp += up * fs * BF16_BYTES + fs * gin
    else:
        f = mv[K.M_FFN]
        mlp = h * BF16_BYTES + h * gin + up * f * BF16_BYTES + f * gin
    return T * (attn + mlp) / tp


# ---- per-batch memo: consecutive plans often share their layer-level results --------------
C_LKEY = 0      # (tp, cp, ep, seq, mbs, prec)
C_LD = 6        # 9 dense-layer times
C_LM = 15       # 9 MoE-layer times
C_LOGITS = 24   # logits GEMM time, cross-entropy time
C_CKEY = 26     # (tp, pp, dp, cp, ep, vpp)
C_RS = 32
C_AG = 33
C_PD = 34       # dense params on the busiest rank
C_PE = 35       # expert params on the busiest rank
C_FKEY = 36     # seq
C_MFT = 37      # model FLOPs per token
C_HFT = 38      # executed FLOPs per token, one per recompute mode
C_AKEY = 41     # (tp, cp, seq, mbs, prec, 0)
C_ACT = 47      # per recompute mode: dense-layer bytes, MoE-layer bytes, extra (full recompute)
C_P2P = 56      # one pipeline send of a micro-batch's activations
C_STRAG = 57    # cv * sqrt(2 ln nodes)
C_NDENSE = 58   # dense layers on the busiest rank
C_NMOE = 59     # MoE layers on the busiest rank
C_FSDPW = 60    # FSDP working set: two gathered layers
C_SIZE = 61


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


@njit(cache=True, error_model="numpy")
def _fill_layers(mv, hv, c, tp, cp, ep, seq, mbs, prec):
    r = layer_times(mv, hv, tp, cp, ep, seq, mbs, prec, False)
    for j in range(9):
        c[C_LD + j] = r[j]
    if mv[K.M_N_MOE] > 0:
        r = layer_times(mv, hv, tp, cp, ep, seq, mbs, prec, True)
    for j in range(9):
        c[C_LM + j] = r[j]
    h = mv[K.M_HIDDEN]
    V = mv[K.M_VOCAB]
    T = mbs * seq / cp
    peak16 = hv[K.H_PEAK_BF16] if prec != K.PREC_FP16 else hv[K.H_PEAK_FP16]
    c[C_LOGITS] = gemm_time(hv, T, V / tp, h, 1.0, peak16, 1.0, BF16_BYTES)
    ce_bytes = T * V / tp * (BF16_BYTES + 2.0 * FP32_BYTES)
    c[C_LOGITS + 1] = ce_bytes / hv[K.H_HBM_BW] + 2.0 * hv[K.H_KERNEL_S]
    icp = int(cp)
    iep = int(ep)
    din = float(icp * iep // _gcd(icp, iep))
    c[C_P2P] = p2p(hv, T * h * BF16_BYTES / tp, tp * din)
    _store(c, C_LKEY, tp, cp, ep, seq, mbs, float(prec))


@njit(cache=True, error_model="numpy")
def _fill_comm(mv, hv, c, tp, pp, dp, cp, ep, vpp, icp, iep):
    attn, dense_mlp, expert, shared, router, norms, embed, out_layer, total, active = model_params(mv)
    L = mv[K.M_LAYERS]
    per_rank = min(L, vpp * math.ceil(L / (pp * vpp)))
    n_moe_r = min(per_rank, mv[K.M_N_MOE])
    n_dense_r = per_rank - n_moe_r
    embed_part = embed + (out_layer if pp == 1.0 else 0.0)
    dense_per_layer = attn + norms
    nonexp = (n_dense_r * (dense_per_layer + dense_mlp)
              + n_moe_r * (dense_per_layer + router + shared))
    p_dense_rank = (nonexp + embed_part) / tp
    p_exp_rank = n_moe_r * mv[K.M_EXPERTS] * expert / (ep * tp)
    dp_dense = dp * cp
    dp_exp = dp * cp / ep
    din = float(icp * iep // _gcd(icp, iep))
    dout = dp * cp / din
    s_out = tp * din * pp
    c[C_RS] = (rs_or_ag(hv, p_dense_rank * FP32_BYTES, dp_dense, tp, din, s_out, dout)
               + rs_or_ag(hv, p_exp_rank * FP32_BYTES, dp_exp, tp * ep, din / ep, s_out, dout))
    c[C_AG] = (rs_or_ag(hv, p_dense_rank * BF16_BYTES, dp_dense, tp, din, s_out, dout)
               + rs_or_ag(hv, p_exp_rank * BF16_BYTES, dp_exp, tp * ep, din / ep, s_out, dout))
    c[C_PD] = p_dense_rank
    c[C_PE] = p_exp_rank
    c[C_NDENSE] = n_dense_r
    c[C_NMOE] = n_moe_r
    dense_layer = (attn + norms + dense_mlp) / tp
    moe_layer = 0.0
    if n_moe_r > 0:
        moe_layer = (attn + norms + router + shared) / tp + mv[K.M_EXPERTS] * expert / (ep * tp)
    c[C_FSDPW] = 2.0 * max(dense_layer, moe_layer) * BF16_BYTES
    n_nodes = (tp * pp * dp * cp) / hv[K.H_NODE]
    c[C_STRAG] = hv[K.H_STRAGGLER_CV] * math.sqrt(2.0 * math.log(n_nodes)) if n_nodes > 1.0 else 0.0
    _store(c, C_CKEY, tp, pp, dp, cp, ep, vpp)


@njit(cache=True, error_model="numpy")
def _fill_act(mv, c, tp, cp, seq, mbs, prec):
    moe = mv[K.M_N_MOE] > 0
    full_d = layer_activation_bytes(mv, tp, cp, seq, mbs, K.RC_NONE, prec, False)
    full_m = layer_activation_bytes(mv, tp, cp, seq, mbs, K.RC_NONE, prec, True) if moe else 0.0
    for rc in range(3):
        a_d = layer_activation_bytes(mv, tp, cp, seq, mbs, rc, prec, False)
        a_m = layer_activation_bytes(mv, tp, cp, seq, mbs, rc, prec, True) if moe else a_d
        c[C_ACT + 3 * rc] = a_d
        c[C_ACT + 3 * rc + 1] = a_m
        c[C_ACT + 3 * rc + 2] = max(full_d, full_m) - a_d if rc == K.RC_FULL else 0.0
    _store(c, C_AKEY, tp, cp, seq, mbs, float(prec), 0.0)


@njit(cache=True, error_model="numpy")
def train_one(mv, hv, p, o, c):
    """Evaluate plan row ``p`` into output row ``o``; return a status code.

    ``c`` is the memo (:func:`new_cache`) shared by consecutive calls of one batch.
    """
    tp = float(p[K.P_TP])
    pp = float(p[K.P_PP])
    dp = float(p[K.P_DP])
    cp = float(p[K.P_CP])
    ep = float(p[K.P_EP])
    vpp = float(p[K.P_VPP])
    mbs = float(p[K.P_MBS])
    gbs = float(p[K.P_GBS])
    seq = float(p[K.P_SEQ])
    zero = p[K.P_ZERO]
    prec = p[K.P_PREC]
    rc = p[K.P_RECOMPUTE]

    if prec == K.PREC_BF16:
        peak_needed = hv[K.H_PEAK_BF16]
    elif prec == K.PREC_FP16:
        peak_needed = hv[K.H_PEAK_FP16]
    elif prec == K.PREC_FP8:
        peak_needed = hv[K.H_PEAK_FP8]
    else:
        peak_needed = hv[K.H_PEAK_FP4]
    if peak_needed <= 0.0 or hv[K.H_PEAK_BF16] <= 0.0:
        for i in range(K.O_SIZE):
            o[i] = 0.0
        return K.ST_NO_PRECISION

    m = gbs / (dp * mbs)
    if not _same(c, C_CKEY, tp, pp, dp, cp, ep, vpp):
        _fill_comm(mv, hv, c, tp, pp, dp, cp, ep, vpp, int(cp), int(ep))
    n_moe_r = c[C_NMOE]
    n_dense_r = c[C_NDENSE]

    if not _same(c, C_LKEY, tp, cp, ep, seq, mbs, float(prec)):
        _fill_layers(mv, hv, c, tp, cp, ep, seq, mbs, prec)
    fwd = n_dense_r * c[C_LD + 0] + n_moe_r * c[C_LM + 0]
    bwd = n_dense_r * c[C_LD + 1] + n_moe_r * c[C_LM + 1]
    logits_f = c[C_LOGITS]
    ce = c[C_LOGITS + 1]
    fwd += logits_f + ce
    bwd += 2.0 * logits_f + ce
    tp_fwd_all = n_dense_r * c[C_LD + 3] + n_moe_r * c[C_LM + 3]
    cp_fwd_all = n_dense_r * c[C_LD + 5] + n_moe_r * c[C_LM + 5]
    ep_fwd_all = n_dense_r * c[C_LD + 7] + n_moe_r * c[C_LM + 7]
    tp_mb = tp_fwd_all + n_dense_r * c[C_LD + 4] + n_moe_r * c[C_LM + 4]
    cp_mb = cp_fwd_all + n_dense_r * c[C_LD + 6] + n_moe_r * c[C_LM + 6]
    ep_mb = ep_fwd_all + n_dense_r * c[C_LD + 8] + n_moe_r * c[C_LM + 8]
    q = 0.0
    if rc == K.RC_FULL:
        per_rank = n_dense_r + n_moe_r
        quarters = float(p[K.P_RC_Q]) if p[K.P_RC_Q] > 0 else 4.0
        q = min(per_rank, math.ceil(quarters * per_rank / 4.0)) / per_rank
        rec_mb = q * (n_dense_r * c[C_LD + 0] + n_moe_r * c[C_LM + 0])
        tp_mb += q * tp_fwd_all
        ep_mb += q * ep_fwd_all
        cp_mb += q * cp_fwd_all
    elif rc == K.RC_SELECTIVE:
        rec_mb = n_dense_r * c[C_LD + 2] + n_moe_r * c[C_LM + 2]
    else:
        rec_mb = 0.0
    t_mb = fwd + bwd + rec_mb + tp_mb + cp_mb + ep_mb
    fwd_win = fwd + tp_fwd_all + cp_fwd_all + ep_fwd_all
    bwd_win = t_mb - fwd_win

    bubble = (pp - 1.0) / vpp * t_mb
    pp_comm = 0.0
    if pp > 1.0:
        pp_comm = 2.0 * (m * vpp + pp - 1.0) * c[C_P2P] * hv[K.H_PP_EXPOSED]

    rs = c[C_RS]
    ag = c[C_AG]
    p_dense_rank = c[C_PD]
    p_exp_rank = c[C_PE]
    dp_dense = dp * cp
    dp_exp = dp * cp / ep
    if zero == 0:
        dp_exposed = max(0.0, 2.0 * rs - bwd_win)
    elif zero == 3:
        dp_exposed = (m * max(0.0, ag - fwd_win) + (m - 1.0) * max(0.0, ag - bwd_win)
                      + max(0.0, ag + rs - bwd_win))
    else:
        dp_exposed = max(0.0, rs - bwd_win) + max(0.0, ag - fwd_win)
    f_dp = hv[K.H_DP_EXPOSED]
    if zero == 0:
        dp_all = 2.0 * rs
    elif zero == 3:
        dp_all = rs + m * 2.0 * ag
    else:
        dp_all = rs + ag
    dp_exposed = f_dp * dp_all + (1.0 - f_dp) * dp_exposed
    shard = dp_dense if zero >= 1 else 1.0
    shard_e = dp_exp if zero >= 1 else 1.0
    local_master = p_dense_rank / shard + p_exp_rank / shard_e
    optimizer = local_master * 34.0 / hv[K.H_HBM_BW]

    base = m * t_mb + bubble + pp_comm + dp_exposed + optimizer
    strag = base * c[C_STRAG]
    step = base + strag

    o[K.O_T_COMPUTE] = m * (fwd + bwd)
    o[K.O_T_RECOMPUTE] = m * rec_mb
    o[K.O_T_TP] = m * tp_mb
    o[K.O_T_CP] = m * cp_mb
    o[K.O_T_EP] = m * ep_mb
    o[K.O_T_PP] = pp_comm
    o[K.O_T_DP] = dp_exposed
    o[K.O_T_BUBBLE] = bubble
    o[K.O_T_OPTIMIZER] = optimizer
    o[K.O_T_STRAGGLER] = strag
    o[K.O_STEP] = step

    w_shard = dp_dense if zero == 3 else 1.0
    w_shard_e = dp_exp if zero == 3 else 1.0
    weights = (p_dense_rank / w_shard + p_exp_rank / w_shard_e) * BF16_BYTES
    if zero == 3:
        weights += c[C_FSDPW]
    g_shard = dp_dense if zero >= 2 else 1.0
    g_shard_e = dp_exp if zero >= 2 else 1.0
    grads = (p_dense_rank / g_shard + p_exp_rank / g_shard_e) * FP32_BYTES
    opt = local_master * 12.0
    if not _same(c, C_AKEY, tp, cp, seq, mbs, float(prec), 0.0):
        _fill_act(mv, c, tp, cp, seq, mbs, prec)
    ac = C_ACT + 3 * rc
    act_mb = n_dense_r * c[ac] + n_moe_r * c[ac + 1]
    if rc == K.RC_FULL:
        act_mb = q * act_mb + (1.0 - q) * (n_dense_r * c[C_ACT] + n_moe_r * c[C_ACT + 1])
    in_flight = min(m, pp)
    interleave = 1.0 + (pp - 1.0) / (pp * vpp) if vpp > 1.0 else 1.0
    act = act_mb * in_flight * interleave + c[ac + 2]
    act += mbs * seq / cp * mv[K.M_VOCAB] / tp * (BF16_BYTES + FP32_BYTES)
    o[K.O_MEM_WEIGHTS] = weights
    o[K.O_MEM_GRADS] = grads
    o[K.O_MEM_OPT] = opt
    o[K.O_MEM_ACT] = act
    o[K.O_MEM_TOTAL] = weights + grads + opt + act
    status = K.ST_OK
    if o[K.O_MEM_TOTAL] > hv[K.H_HBM_BYTES]:
        status = K.ST_OOM
    if not math.isfinite(step):
        status = K.ST_NO_LINK
    o[K.O_TOKENS_PER_S] = 0.0
    if math.isfinite(step) and step > 0.0:
        o[K.O_TOKENS_PER_S] = gbs * seq / step
    if c[C_FKEY] != seq:
        c[C_MFT] = model_flops_per_token(mv, seq)
        for r in range(3):
            c[C_HFT + r] = hardware_flops_per_token(mv, seq, r, 1.0)
        c[C_FKEY] = seq
    o[K.O_MODEL_FLOPS_TOK] = c[C_MFT]
    if rc == K.RC_FULL:
        o[K.O_HW_FLOPS_TOK] = c[C_HFT] + q * (c[C_HFT + 2] - c[C_HFT])
    else:
        o[K.O_HW_FLOPS_TOK] = c[C_HFT + rc]
    return status


@njit(cache=True, error_model="numpy")
def _fresh_cache():
    c = np.zeros(C_SIZE)
    c[C_LKEY] = -1.0
    c[C_CKEY] = -1.0
    c[C_FKEY] = -1.0
    c[C_AKEY] = -1.0
    return c


@njit(cache=True, parallel=True, error_model="numpy")
def _run_parallel(mv, hv, plans, out, status, block):
    n = plans.shape[0]
    nblocks = (n + block - 1) // block
    for b in prange(nblocks):
        c = _fresh_cache()
        lo = b * block
        hi = min(n, lo + block)
        for i in range(lo, hi):
            status[i] = train_one(mv, hv, plans[i], out[i], c)


def evaluate_training_parallel(mv, hv, plans, out, status, block=4096):
    """prange over blocks of plans on all numba threads; each block keeps its own memo."""
    _run_parallel(mv, hv, plans, out, status, block)


def evaluate_training(mv, hv, plans, out, status, block=4096):
    """The same kernel on one thread (the reference point for speed-ups)."""
    prev = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        _run_parallel(mv, hv, plans, out, status, block)
    finally:
        numba.set_num_threads(prev)


def new_outputs(n):
    """Preallocated output matrix and status vector for n plans."""
    return np.zeros((n, K.O_SIZE)), np.zeros(n, dtype=np.int64)
