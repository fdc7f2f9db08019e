"""Inference kernel (numba): a line-by-line port of estimator/reference/inference.py.
Keep the two in step (tests/test_inference.py checks agreement to 1e-9)."""
import math

import numba
import numpy as np
from numba import njit, prange

from kernels import layout as K
from kernels.collectives import all_to_all, p2p, rs_or_ag
from kernels.gemm import gemm
from kernels.model import avg_context, model_params

BF16_BYTES = 2.0
PREFILL_CHUNK = 8192.0


@njit(cache=True, error_model="numpy")
def precision(hv, code):
    p16 = hv[K.H_PEAK_BF16]
    if code == K.WP_BF16:
        return p16, 1.0, 2.0, 2.0
    if code == K.WP_FP16:
        return hv[K.H_PEAK_FP16], 1.0, 2.0, 2.0
    if code == K.WP_FP8:
        return hv[K.H_PEAK_FP8], hv[K.H_LP_FP8], 1.0, 1.0
    if code == K.WP_FP4:
        return hv[K.H_PEAK_FP4], hv[K.H_LP_FP4], 0.5, 0.5
    if code == K.WP_INT8:
        return hv[K.H_PEAK_INT8], hv[K.H_LP_FP8], 1.0, 1.0
    if code == K.WP_INT4:
        return p16, 1.0, 0.5, 2.0
    return hv[K.H_PEAK_INT8], hv[K.H_LP_FP8], 0.5, 1.0


@njit(cache=True, error_model="numpy")
def kv_elem_bytes(code):
    return 2.0 if code == K.KV_BF16 else 1.0


@njit(cache=True, error_model="numpy")
def kv_elems_per_token_layer(mv, tp):
    if mv[K.M_MLA] > 0.5:
        return mv[K.M_KV_LORA] + mv[K.M_ROPE]
    return 2.0 * max(mv[K.M_KV_HEADS] / tp, 1.0) * mv[K.M_DQK]


@njit(cache=True, error_model="numpy")
def cached_len(mv, ctx):
    w = mv[K.M_WINDOW]
    fs = mv[K.M_FRAC_SLIDING]
    if w <= 0.0 or fs <= 0.0:
        return ctx
    return (1.0 - fs) * ctx + fs * min(ctx, w)


@njit(cache=True, error_model="numpy")
def experts_touched(E, k, tokens):
    if tokens <= 0.0:
        return 0.0
    return E * (1.0 - (1.0 - k / E) ** tokens)


@njit(cache=True, error_model="numpy")
def stage_layers(mv, pp):
    L = mv[K.M_LAYERS]
    per = min(L, math.ceil(L / pp))
    n_moe = min(per, mv[K.M_N_MOE])
    return per, n_moe, per - n_moe


@njit(cache=True, error_model="numpy")
def layer_pass(mv, hv, p, tokens, ctx, decode, moe_layer):
    tp = float(p[K.I_TP])
    dp = float(p[K.I_DP])
    ep = float(p[K.I_EP])
    peak, lp, w_b, a_b = precision(hv, p[K.I_WPREC])
    peak16 = hv[K.H_PEAK_BF16]
    kv_b = kv_elem_bytes(p[K.I_KVPREC])
    h = mv[K.M_HIDDEN]
    a = mv[K.M_HEADS]
    kv = mv[K.M_KV_HEADS]
    dqk = mv[K.M_DQK]
    dv = mv[K.M_DV]
    up = 2.0 if mv[K.M_ACT] == K.ACT_SWIGLU else 1.0
    t = 0.0
    if mv[K.M_MLA] > 0.5:
        ql = mv[K.M_Q_LORA]
        kvl = mv[K.M_KV_LORA]
        rope = mv[K.M_ROPE]
        if ql > 0:
            t += gemm(hv, tokens, ql, h, 1.0, peak, lp, w_b, a_b)
            t += gemm(hv, tokens, a * dqk / tp, ql, 1.0, peak, lp, w_b, a_b)
        else:
            t += gemm(hv, tokens, a * dqk / tp, h, 1.0, peak, lp, w_b, a_b)
        t += gemm(hv, tokens, kvl + rope, h, 1.0, peak, lp, w_b, a_b)
        if decode:
            t += gemm(hv, tokens, a * kvl / tp, dqk - rope, 1.0, peak, lp, w_b, a_b)
            t += gemm(hv, tokens, a * dv / tp, kvl, 1.0, peak, lp, w_b, a_b)
            core_dims = (kvl + rope) + kvl
        else:
            t += gemm(hv, tokens, a * ((dqk - rope) + dv) / tp, kvl, 1.0, peak, lp, w_b, a_b)
            core_dims = dqk + dv
    else:
        t += gemm(hv, tokens, (a + 2.0 * kv) * dqk / tp, h, 1.0, peak, lp, w_b, a_b)
        core_dims = dqk + dv
    t += gemm(hv, tokens, h, a * dv / tp, 1.0, peak, lp, w_b, a_b)
    flops = 2.0 * tokens * ctx * (a / tp) * core_dims
    kv_bytes = 0.0
    if decode:
        kv_bytes = tokens * cached_len(mv, ctx) * kv_elems_per_token_layer(mv, tp) * kv_b
    core = max(flops / (peak16 * hv[K.H_ATT_FWD]), kv_bytes / hv[K.H_HBM_BW]) + hv[K.H_KERNEL_S]
    kv_t = kv_bytes / hv[K.H_HBM_BW]
    t += core
    comm = 0.0
    a2a = 0.0
    if moe_layer:
        E = mv[K.M_EXPERTS]
        k = mv[K.M_TOPK]
        fe = mv[K.M_FE]
        etp = tp * dp / ep
        total_tokens = tokens * dp
        touched = experts_touched(E, k, total_tokens) / ep
        te = total_tokens * k / (touched * ep) if touched > 0 else 0.0
        t += gemm(hv, tokens, E, h, 1.0, peak16, 1.0, 2.0, 2.0)
        t += total_tokens * k / ep * hv[K.H_MOE_TOKEN_S]
        t += gemm(hv, te, up * fe / etp, h, touched, peak, lp, w_b, a_b)
        t += gemm(hv, te, h, fe / etp, touched, peak, lp, w_b, a_b)
        if mv[K.M_SHARED] > 0:
            fs = mv[K.M_FS] * mv[K.M_SHARED]
            t += gemm(hv, tokens, up * fs / tp, h, 1.0, peak, lp, w_b, a_b)
            t += gemm(hv, tokens, h, fs / tp, 1.0, peak, lp, w_b, a_b)
        if ep > 1.0:
            per_rank = total_tokens * k / (tp * dp)
            a2a = (all_to_all(hv, per_rank * h * a_b, ep, 1.0, ep, 1.0, 1.0)
                   + all_to_all(hv, per_rank * h * BF16_BYTES, ep, 1.0, ep, 1.0, 1.0))
    else:
        f = mv[K.M_FFN]
        t += gemm(hv, tokens, up * f / tp, h, 1.0, peak, lp, w_b, a_b)
        t += gemm(hv, tokens, h, f / tp, 1.0, peak, lp, w_b, a_b)
    t += tokens * (10.0 * h / tp + 2.0 * (a + kv) * dqk / tp) * BF16_BYTES / hv[K.H_HBM_BW]
    if tp > 1.0:
        comm += 2.0 * 2.0 * rs_or_ag(hv, tokens * h * BF16_BYTES, tp, 1.0, tp, 1.0, 1.0)
    if p[K.I_TBO] == 1:
        comm += max(0.0, a2a - t)
    else:
        comm += a2a
    return t, kv_t, comm


@njit(cache=True, error_model="numpy")
def stage_pass(mv, hv, p, tokens, ctx, decode):
    pp = float(p[K.I_PP])
    per, n_moe, n_dense = stage_layers(mv, pp)
    td, kd, cd = layer_pass(mv, hv, p, tokens, ctx, decode, False)
    if n_moe > 0:
        tm, km, cm = layer_pass(mv, hv, p, tokens, ctx, decode, True)
    else:
        tm, km, cm = td, kd, cd
    t = n_dense * td + n_moe * tm
    kvt = n_dense * kd + n_moe * km
    comm = n_dense * cd + n_moe * cm
    h = mv[K.M_HIDDEN]
    V = mv[K.M_VOCAB]
    tp = float(p[K.I_TP])
    t += gemm(hv, tokens if decode else 1.0, V / tp, h, 1.0, hv[K.H_PEAK_BF16], 1.0, 2.0, 2.0)
    if pp > 1.0:
        comm += p2p(hv, tokens * h * BF16_BYTES, tp * float(p[K.I_DP]))
    return t, kvt, comm


@njit(cache=True, error_model="numpy")
def weights_per_rank(mv, hv, p):
    tp = float(p[K.I_TP])
    pp = float(p[K.I_PP])
    dp = float(p[K.I_DP])
    ep = float(p[K.I_EP])
    peak, lp, w_b, a_b = precision(hv, p[K.I_WPREC])
    attn, dense_mlp, expert, shared, router, norms, embed, out_layer, total, active = model_params(mv)
    per, n_moe, n_dense = stage_layers(mv, pp)
    etp = tp * dp / ep
    dense = n_dense * (attn + norms + dense_mlp) / tp
    moe = n_moe * ((attn + norms + router + shared) / tp + mv[K.M_EXPERTS] * expert / (ep * etp))
    emb = (embed + (out_layer if pp == 1.0 else 0.0)) / tp * BF16_BYTES
    return (dense + moe) * w_b + emb


@njit(cache=True, error_model="numpy")
def serve_one(mv, hv, p, o):
    for i in range(K.Q_SIZE):
        o[i] = 0.0
    tp = float(p[K.I_TP])
    pp = float(p[K.I_PP])
    dp = float(p[K.I_DP])
    B = float(p[K.I_BATCH])
    I = float(p[K.I_IN])
    O = float(p[K.I_OUT])
    acc = float(p[K.I_SPEC_X100]) / 100.0
    peak, lp, w_b, a_b = precision(hv, p[K.I_WPREC])
    if peak <= 0.0 or hv[K.H_PEAK_BF16] <= 0.0:
        return K.ST_NO_PRECISION
    status = K.ST_OK
    h = mv[K.M_HIDDEN]
    V = mv[K.M_VOCAB]
    per, n_moe, n_dense = stage_layers(mv, pp)
    kv_b = kv_elem_bytes(p[K.I_KVPREC])

    weights = weights_per_rank(mv, hv, p)
    f_w = max(mv[K.M_FFN], mv[K.M_TOPK] * mv[K.M_FE])
    act = PREFILL_CHUNK * (4.0 * h + 3.0 * f_w / tp) * BF16_BYTES + B / dp * V / tp * 4.0
    kv_tok_rank = per * kv_elems_per_token_layer(mv, tp) * kv_b
    free = max(0.0, hv[K.H_HBM_BYTES] - weights - act) * hv[K.H_KV_FRACTION]
    cap_tokens = dp * free / kv_tok_rank
    seq_len = I + O
    kv_mem = B / dp * cached_len(mv, seq_len) * kv_tok_rank
    o[K.Q_MEM_WEIGHTS] = weights
    o[K.Q_MEM_KV] = kv_mem
    o[K.Q_MEM_ACT] = act
    o[K.Q_MEM_TOTAL] = weights + kv_mem + act
    o[K.Q_KV_CAP_TOKENS] = cap_tokens
    if weights + act > hv[K.H_HBM_BYTES] or B * cached_len(mv, seq_len) > cap_tokens:
        status = K.ST_OOM

    ctx_p = avg_context(I, 0.0, True)
    t1, k1, c1 = stage_pass(mv, hv, p, I, ctx_p, False)
    o[K.Q_P_COMPUTE] = pp * t1
    o[K.Q_P_COMM] = pp * c1
    o[K.Q_P_OVERHEAD] = hv[K.H_STEP_S]
    o[K.Q_TTFT] = pp * (t1 + c1) + hv[K.H_STEP_S]
    chunk = max(I, PREFILL_CHUNK)
    tc, kc, cc = stage_pass(mv, hv, p, chunk, ctx_p, False)
    o[K.Q_IN_TOK_S] = dp * chunk / (tc + cc + hv[K.H_STEP_S] / pp)

    ctx_d = I + O / 2.0 if O > 0 else I
    b_mb = B / dp / pp
    tokens = b_mb * acc
    td, kvt, cd = stage_pass(mv, hv, p, tokens, ctx_d, True)
    o[K.Q_D_LAYERS] = pp * td
    o[K.Q_D_COMM] = pp * cd
    o[K.Q_D_OVERHEAD] = hv[K.H_STEP_S]
    step = o[K.Q_D_LAYERS] + o[K.Q_D_COMM] + o[K.Q_D_OVERHEAD]
    o[K.Q_D_WEIGHTS] = pp * weights / hv[K.H_HBM_BW]
    o[K.Q_D_KV] = pp * kvt
    o[K.Q_TPOT] = step / acc
    if O > 0:
        cycle = step + (B * acc / O) * I / o[K.Q_IN_TOK_S]
        o[K.Q_OUT_TOK_S] = B * acc / cycle
    return status


@njit(cache=True, parallel=True, error_model="numpy")
def _run(mv, hv, plans, out, status):
    for i in prange(plans.shape[0]):
        status[i] = serve_one(mv, hv, plans[i], out[i])


def evaluate_inference(mv, hv, plans, out, status):
    """Evaluate serving plans (rows of kernels.layout I_*) on all numba threads."""
    _run(mv, hv, plans, out, status)


def evaluate_inference_serial(mv, hv, plans, out, status):
    prev = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        _run(mv, hv, plans, out, status)
    finally:
        numba.set_num_threads(prev)


def new_inference_outputs(n):
    return np.zeros((n, K.Q_SIZE)), np.zeros(n, dtype=np.int64)
