"""Plain-Python reference model of LLM serving for one replica and one plan.

A replica has tp * pp * dp ranks: dp attention groups of tp ranks each (attention data
parallel, as SGLang / TensorRT-LLM do for DeepSeek), layers split over pp stages, MoE experts
sharded over ep ranks (ep divides tp * dp; each expert is further split over tp*dp/ep ranks).
The numba kernel kernels/inference.py must agree with this to 1e-9.

* Decode step (one token for each of B sequences): per layer, weights are read once, the KV
  cache of every sequence is read, matmuls run at the weight/activation precision; each op
  is a roofline max(FLOPs / (peak x eff), bytes / (HBM bw x eff)) (Williams et al. 2009).
  MoE reads only the experts the batch touches: E x (1 - (1 - k/E)^B) of them (each token
  picks k of E experts). TP all-reduces per layer; EP dispatch/combine all-to-all.
* Prefill: the forward pass of I tokens (causal attention), compute-bound.
* Offline throughput: each step emits B tokens and retires B/O requests whose I input tokens
  must be prefilled: output tokens/s = B / (t_step + (B/O) x I / prefill tokens/s).
* KV bytes per token: MLA caches the compressed latent + rope key (DeepSeek-V2 sec. 2.1.2),
  not split by TP; GQA caches K and V of each KV head, split by TP (replicated if kv < tp).
"""
from __future__ import annotations

import math

from estimator.reference.training import (BF16_BYTES, all_to_all, avg_context, gemm, model_params,
                                          p2p, rs_or_ag)
from kernels import layout as K


def precision(hv, code: int):
    """(peak FLOP/s, curve factor, weight bytes, activation bytes) of a WP_* code; peak 0 when
    the chip has no such matmul."""
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
    if code == K.WP_INT4:       # W4A16: int4 weights dequantised into 16-bit matmuls
        return p16, 1.0, 0.5, 2.0
    return hv[K.H_PEAK_INT8], hv[K.H_LP_FP8], 0.5, 1.0   # W4A8


def kv_elem_bytes(code: int) -> float:
    return 2.0 if code == K.KV_BF16 else 1.0


def kv_elems_per_token_layer(mv, tp: float) -> float:
    """KV elements one rank stores per token per layer."""
    if mv[K.M_MLA] > 0.5:
        return mv[K.M_KV_LORA] + mv[K.M_ROPE]
    kv = mv[K.M_KV_HEADS]
    return 2.0 * max(kv / tp, 1.0) * mv[K.M_DQK]


def cached_len(mv, ctx: float) -> float:
    """Mean tokens cached per layer for a context of ctx tokens (sliding layers keep W)."""
    w = mv[K.M_WINDOW]
    fs = mv[K.M_FRAC_SLIDING]
    if w <= 0.0 or fs <= 0.0:
        return ctx
    return (1.0 - fs) * ctx + fs * min(ctx, w)


def experts_touched(E: float, k: float, tokens: float) -> float:
    """Expected distinct experts hit when `tokens` tokens each pick k of E experts."""
    if tokens <= 0.0:
        return 0.0
    return E * (1.0 - (1.0 - k / E) ** tokens)


def stage_layers(mv, pp: float):
    L = mv[K.M_LAYERS]
    per = min(L, math.ceil(L / pp))
    n_moe = min(per, mv[K.M_N_MOE])
    return per, n_moe, per - n_moe


def layer_pass(mv, hv, p, tokens: float, ctx: float, decode: bool, moe_layer: bool):
    """(compute-ish time, weight-read time share, kv-read time, comm time) of one layer
    processing ``tokens`` tokens per attention group; ctx = keys per query (mean)."""
    tp = float(p[K.I_TP]); dp = float(p[K.I_DP]); ep = float(p[K.I_EP])
    peak, lp, w_b, a_b = precision(hv, int(p[K.I_WPREC]))
    peak16 = hv[K.H_PEAK_BF16]
    kv_b = kv_elem_bytes(int(p[K.I_KVPREC]))
    h = mv[K.M_HIDDEN]; a = mv[K.M_HEADS]; kv = mv[K.M_KV_HEADS]
    dqk = mv[K.M_DQK]; dv = mv[K.M_DV]
    up = 2.0 if mv[K.M_ACT] == K.ACT_SWIGLU else 1.0
    t = 0.0
    # attention projections
    if mv[K.M_MLA] > 0.5:
        ql = mv[K.M_Q_LORA]; kvl = mv[K.M_KV_LORA]; rope = mv[K.M_ROPE]
        if ql > 0:
            t += gemm(hv, tokens, ql, h, 1.0, peak, lp, w_b, a_b)
            t += gemm(hv, tokens, a * dqk / tp, ql, 1.0, peak, lp, w_b, a_b)
        else:
            t += gemm(hv, tokens, a * dqk / tp, h, 1.0, peak, lp, w_b, a_b)
        t += gemm(hv, tokens, kvl + rope, h, 1.0, peak, lp, w_b, a_b)
        if decode:
            # weight absorption: queries and outputs move through the latent space
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
    # attention core: FLOPs on the 16-bit peak; decode also streams the KV cache
    flops = 2.0 * tokens * ctx * (a / tp) * core_dims
    kv_bytes = tokens * cached_len(mv, ctx) * kv_elems_per_token_layer(mv, tp) * kv_b if decode else 0.0
    core = max(flops / (peak16 * hv[K.H_ATT_FWD]), kv_bytes / hv[K.H_HBM_BW]) + hv[K.H_KERNEL_S]
    kv_t = kv_bytes / hv[K.H_HBM_BW]
    t += core
    # MLP
    comm = 0.0
    a2a = 0.0
    if moe_layer:
        E = mv[K.M_EXPERTS]; k = mv[K.M_TOPK]; fe = mv[K.M_FE]
        etp = tp * dp / ep                     # ranks each expert is split over
        total_tokens = tokens * dp             # the whole replica's tokens meet at the experts
        touched = experts_touched(E, k, total_tokens) / ep
        te = total_tokens * k / (touched * ep) if touched > 0 else 0.0   # tokens per touched expert
        t += gemm(hv, tokens, E, h, 1.0, peak16, 1.0, 2.0, 2.0)        # router
        # routing bookkeeping, permute and unpermute per routed token copy this rank's
        # experts receive (the fitted training parameter moe_dispatch_ns_per_token; forward)
        t += total_tokens * k / ep * hv[K.H_MOE_TOKEN_S]
        t += gemm(hv, te, up * fe / etp, h, touched, peak, lp, w_b, a_b)
        t += gemm(hv, te, h, fe / etp, touched, peak, lp, w_b, a_b)
        if mv[K.M_SHARED] > 0:
            fs = mv[K.M_FS] * mv[K.M_SHARED]
            t += gemm(hv, tokens, up * fs / tp, h, 1.0, peak, lp, w_b, a_b)
            t += gemm(hv, tokens, h, fs / tp, 1.0, peak, lp, w_b, a_b)
        if ep > 1.0:
            per_rank = total_tokens * k / (tp * dp)
            # dispatch at the activation precision, combine in 16 bit; EP spans consecutive ranks
            a2a = (all_to_all(hv, per_rank * h * a_b, ep, [(1, ep)])
                   + all_to_all(hv, per_rank * h * BF16_BYTES, ep, [(1, ep)]))
    else:
        f = mv[K.M_FFN]
        t += gemm(hv, tokens, up * f / tp, h, 1.0, peak, lp, w_b, a_b)
        t += gemm(hv, tokens, h, f / tp, 1.0, peak, lp, w_b, a_b)
    # elementwise: 2 norms, 2 residual adds, activation, rotary (16-bit)
    t += tokens * (10.0 * h / tp + 2.0 * (a + kv) * dqk / tp) * BF16_BYTES / hv[K.H_HBM_BW]
    # TP: all-reduce after attention and after the MLP (reduce-scatter + all-gather)
    if tp > 1.0:
        comm += 2.0 * 2.0 * rs_or_ag(hv, tokens * h * BF16_BYTES, tp, [(1, tp)])
    # two-batch overlap (SGLang / DeepEP, DeepSeek's DualPipe idea): while one half of the batch
    # is in its all-to-all the other half computes, so only the excess is exposed
    if int(p[K.I_TBO]) == 1:
        comm += max(0.0, a2a - t)
    else:
        comm += a2a
    return t, kv_t, comm


def stage_pass(mv, hv, p, tokens: float, ctx: float, decode: bool):
    """(time, kv-stream time, comm time) of one pipeline stage."""
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
    # output layer (16-bit) on the last stage
    h = mv[K.M_HIDDEN]; V = mv[K.M_VOCAB]; tp = float(p[K.I_TP])
    t += gemm(hv, tokens if decode else 1.0, V / tp, h, 1.0, hv[K.H_PEAK_BF16], 1.0, 2.0, 2.0)
    if pp > 1.0:
        comm += p2p(hv, tokens * h * BF16_BYTES, tp * float(p[K.I_DP]))
    return t, kvt, comm


def weights_per_rank(mv, hv, p) -> float:
    """Weight bytes on the busiest rank (output layer and embedding kept in 16 bit)."""
    tp = float(p[K.I_TP]); pp = float(p[K.I_PP]); dp = float(p[K.I_DP]); ep = float(p[K.I_EP])
    _, _, w_b, _ = precision(hv, int(p[K.I_WPREC]))
    pr = model_params(mv)
    per, n_moe, n_dense = stage_layers(mv, pp)
    etp = tp * dp / ep
    dense = n_dense * (pr["attn"] + pr["norms"] + pr["dense_mlp"]) / tp
    moe = n_moe * ((pr["attn"] + pr["norms"] + pr["router"] + pr["shared"]) / tp
                   + mv[K.M_EXPERTS] * pr["expert"] / (ep * etp))
    embed = (pr["embed"] + (pr["out_layer"] if pp == 1.0 else 0.0)) / tp * BF16_BYTES
    return (dense + moe) * w_b + embed


PREFILL_CHUNK = 8192.0   # tokens per forward when prefill runs saturated (batched / chunked)


def serve(mv, hv, p) -> dict:
    """Reference estimate for one inference plan row ``p``."""
    tp = float(p[K.I_TP]); pp = float(p[K.I_PP]); dp = float(p[K.I_DP])
    B = float(p[K.I_BATCH]); I = float(p[K.I_IN]); O = float(p[K.I_OUT])
    acc = float(p[K.I_SPEC_X100]) / 100.0
    out = {k: 0.0 for k in _NAMES}
    peak, _, _, _ = precision(hv, int(p[K.I_WPREC]))
    if peak <= 0.0 or hv[K.H_PEAK_BF16] <= 0.0:
        out["status"] = K.ST_NO_PRECISION
        return out
    out["status"] = K.ST_OK
    h = mv[K.M_HIDDEN]; V = mv[K.M_VOCAB]
    per, _, _ = stage_layers(mv, pp)
    kv_b = kv_elem_bytes(int(p[K.I_KVPREC]))

    # ---- memory per rank ----
    weights = weights_per_rank(mv, hv, p)
    f_w = max(mv[K.M_FFN], mv[K.M_TOPK] * mv[K.M_FE])
    act = PREFILL_CHUNK * (4.0 * h + 3.0 * f_w / tp) * BF16_BYTES + B / dp * V / tp * 4.0
    kv_tok_rank = per * kv_elems_per_token_layer(mv, tp) * kv_b       # bytes per cached token
    free = max(0.0, hv[K.H_HBM_BYTES] - weights - act) * hv[K.H_KV_FRACTION]
    cap_tokens = dp * free / kv_tok_rank                               # whole replica
    seq_len = I + O
    kv_mem = B / dp * cached_len(mv, seq_len) * kv_tok_rank
    out["mem_weights"] = weights
    out["mem_kv"] = kv_mem
    out["mem_act"] = act
    out["mem_total"] = weights + kv_mem + act
    out["kv_cap_tokens"] = cap_tokens
    if weights + act > hv[K.H_HBM_BYTES] or B * cached_len(mv, seq_len) > cap_tokens:
        out["status"] = K.ST_OOM

    # ---- prefill: TTFT of one request, saturated prefill rate ----
    ctx_p = avg_context(I, 0.0, True)
    t1, _, c1 = stage_pass(mv, hv, p, I, ctx_p, False)
    out["p_compute"] = pp * t1
    out["p_comm"] = pp * c1
    out["p_overhead"] = hv[K.H_STEP_S]
    out["ttft"] = pp * (t1 + c1) + hv[K.H_STEP_S]
    chunk = max(I, PREFILL_CHUNK)
    tc, _, cc = stage_pass(mv, hv, p, chunk, ctx_p, False)
    out["in_tok_s"] = dp * chunk / (tc + cc + hv[K.H_STEP_S] / pp)

    # ---- decode step: B sequences, KV at the mean context, pp micro-batches ----
    ctx_d = I + O / 2.0 if O > 0 else I
    b_mb = B / dp / pp                         # sequences per attention group per micro-batch
    tokens = b_mb * acc                        # speculative decoding verifies acc tokens each
    td, kvt, cd = stage_pass(mv, hv, p, tokens, ctx_d, True)
    # pp micro-batches each pass all pp stages: the step takes pp stage-times
    out["d_layers"] = pp * td
    out["d_comm"] = pp * cd
    out["d_overhead"] = hv[K.H_STEP_S]
    step = out["d_layers"] + out["d_comm"] + out["d_overhead"]
    out["d_weights"] = pp * weights / hv[K.H_HBM_BW]    # streaming the weights (part of layers)
    out["d_kv"] = pp * kvt                              # streaming the KV cache (part of layers)
    out["tpot"] = step / acc
    # ---- throughput ----
    if O > 0:
        cycle = step + (B * acc / O) * I / out["in_tok_s"]
        out["out_tok_s"] = B * acc / cycle
    return out


_NAMES = ("ttft", "tpot", "out_tok_s", "in_tok_s", "mem_weights", "mem_kv", "mem_act", "mem_total",
          "kv_cap_tokens", "d_weights", "d_kv", "d_layers", "d_comm", "d_overhead", "p_compute",
          "p_comm", "p_overhead")
