"""Serving kernel (numba): one serving plan -> TTFT, TPOT, throughput, memory and the parts.

Written once, as readable ``@njit`` functions (DESIGN: Modelling / Inference); the same source
run un-jitted is the reference for numba semantics (tests/unjitted.py). A plan row (layout
``I_*``) carries the parallel degrees, the workload, the precisions and the serving stack's
feature flags; ``hv`` is the per-rank hardware vector (slots 48-63: serving-side terms).

One engine step per rank is a sum of kernels:

* GEMMs: the roofline of kernels/gemm.py at the rows of this step, with the weights streamed at
  the rate decode GEMMs of that precision reach (efficiency.yaml serve_weight_stream: fp8 and
  fp4 kernels stream their weights at a lower fraction of HBM than 16-bit ones) and, unless the
  stack fuses it, one activation-quantisation kernel per low-precision GEMM;
* attention at decode: the paged KV cache read once per sequence per step at the decode-
  attention bandwidth, or its FLOPs at the decode-attention fraction of peak when compute-bound
  (MLA absorbed decode, speculative verification), above a per-call floor; prefill attention
  (causal, chunk tokens attending their average context) at the fused-attention fraction;
* MoE: router, permute/unpermute as HBM traffic, grouped expert GEMMs at the per-expert token
  count of the most loaded EP rank (routing imbalance), dispatch/combine as latency-bound
  all-to-all over the tiers the EP group spans (kernels/allreduce.py);
* TP all-reduce by algorithm and size (kernels/allreduce.py), PP sends.

Engine behaviour (the stack): continuous batching admits sequences at the KV they hold under
the stack's policy (reserve input + output, or the mean occupancy input + output/2); prefill
rides in decode steps (mixed batching, bounded by the chunk) or runs as separate iterations;
host scheduling is exposed unless the stack overlaps it; without graph capture each operator
costs a host dispatch and the step is max(device, host). Speculative decoding verifies
1 + d tokens per sequence per step (compute scales with them, the KV cache is read once) and
runs d draft passes; ``accepted`` tokens are emitted per step on average.
"""
import math

import numba
import numpy as np
from numba import njit, prange

from kernels import layout as K
from kernels.allreduce import allreduce, dedup_all_to_all, ll_all_to_all
from kernels.collectives import all_to_all, p2p
from kernels.gemm import gemm_efficiency
from kernels.model import avg_context, model_params

BF16_BYTES = 2.0
NVFP4_W_BYTES = 0.5 + 1.0 / 16.0      # 4-bit values + one fp8 scale per 16 (NVFP4 block format)
INT4_W_BYTES = 0.5 + 2.0 / 128.0      # 4-bit values + one 16-bit scale per group of 128 (AWQ/GPTQ)
ELEMENTWISE_KERNELS = 3.0             # per layer after fusion: add+norm twice, activation
ROOFLINE_P = 2.0                      # smooth roofline exponent of serving GEMMs (see _gemm_core)
# decode attention: KV-cache append, split-KV attention and the split reduction. Three tiny
# kernels give the per-call floor AIConfigurator measures (generation attention, smallest
# calls: 11-13 us on H100 / H200 / B200 / GB200 = 3 x 3.7-4.1 us)
ATTN_DECODE_KERNELS = 3.0


@njit(cache=True, error_model="numpy")
def precision(hv, code):
    """(peak, curve factor, weight bytes, activation bytes, weight-stream bytes/s, quantised
    activations) for a WP_* code. Serving GEMMs use the class's serving factors on its GEMM
    curve (efficiency.yaml serve_gemm_plateau / serve_gemm_factor); W4A16 computes at 16 bits."""
    p16 = hv[K.H_PEAK_BF16]
    l16 = hv[K.H_SV_LP_16]
    if code == K.WP_BF16:
        return p16, l16, 2.0, 2.0, hv[K.H_SV_WS_16], 0.0
    if code == K.WP_FP16:
        return hv[K.H_PEAK_FP16], l16, 2.0, 2.0, hv[K.H_SV_WS_16], 0.0
    if code == K.WP_FP8:
        return hv[K.H_PEAK_FP8], hv[K.H_SV_LP_8], 1.0, 1.0, hv[K.H_SV_WS_8], 1.0
    if code == K.WP_FP4:
        return hv[K.H_PEAK_FP4], hv[K.H_SV_LP_4], NVFP4_W_BYTES, NVFP4_W_BYTES, hv[K.H_SV_WS_4], 1.0
    if code == K.WP_INT8:
        return hv[K.H_PEAK_INT8], hv[K.H_SV_LP_8], 1.0, 1.0, hv[K.H_SV_WS_8], 1.0
    if code == K.WP_INT4:
        return p16, l16, INT4_W_BYTES, 2.0, hv[K.H_SV_WS_4], 0.0
    return hv[K.H_PEAK_INT8], hv[K.H_SV_LP_8], INT4_W_BYTES, 1.0, hv[K.H_SV_WS_4], 1.0


@njit(cache=True, error_model="numpy")
def kv_elem_bytes(code):
    return 2.0 if code == K.KV_BF16 else 1.0


@njit(cache=True, error_model="numpy")
def kv_elems_per_token_layer(mv, tp):
    """KV elements one token stores per layer on one TP rank (MLA: the compressed latent and the
    rope key, replicated over TP; GQA: K and V of the rank's KV heads, at least one head)."""
    if mv[K.M_MLA] > 0.5:
        return mv[K.M_KV_LORA] + mv[K.M_ROPE]
    return 2.0 * max(mv[K.M_KV_HEADS] / tp, 1.0) * mv[K.M_DQK]


@njit(cache=True, error_model="numpy")
def cached_len(mv, ctx):
    """Tokens kept in the KV cache for a context of ``ctx``: sliding-window layers keep at most
    the window."""
    w = mv[K.M_WINDOW]
    fs = mv[K.M_FRAC_SLIDING]
    if w <= 0.0 or fs <= 0.0:
        return ctx
    return (1.0 - fs) * ctx + fs * min(ctx, w)


@njit(cache=True, error_model="numpy")
def experts_touched(E, k, tokens):
    """Expected distinct experts hit by ``tokens`` tokens routed uniformly to k of E."""
    if tokens <= 0.0:
        return 0.0
    return E * (1.0 - (1.0 - k / E) ** tokens)


@njit(cache=True, error_model="numpy")
def ep_imbalance(copies_per_rank, experts_per_rank, ep, load_cv):
    """Max over mean routed copies per EP rank in one step. A rank's load sums its experts'
    counts: Poisson noise (variance = mean) plus expert popularity (CV ``load_cv`` per expert
    left after placement, averaged over the rank's experts); the most loaded of ``ep`` ranks sits
    sqrt(2 ln ep) standard deviations above the mean (Gaussian extreme)."""
    if ep <= 1.0 or copies_per_rank <= 0.0:
        return 1.0
    rel = math.sqrt(1.0 / copies_per_rank + load_cv * load_cv / max(experts_per_rank, 1.0))
    return 1.0 + math.sqrt(2.0 * math.log(ep)) * rel


@njit(cache=True, error_model="numpy")
def stage_layers(mv, pp):
    L = mv[K.M_LAYERS]
    per = min(L, math.ceil(L / pp))
    n_moe = min(per, mv[K.M_N_MOE])                  # the slowest stage: MoE layers first
    return per, n_moe, per - n_moe


@njit(cache=True, error_model="numpy")
def _gemm_core(hv, p, m, n, k, count):
    """``count`` GEMMs [m,k]x[k,n] in the plan's weight precision, one launch: the compute time
    on the class curve (kernels.gemm.gemm_efficiency, read at the size of all of them, narrow
    penalty, 8/4-bit serving factor) and the memory time with the weights streamed at the
    precision's measured decode rate (serve_weight_stream), joined smoothly rather than by
    max(): decode GEMMs run near the ridge, where both limits bind at once.

    t = (t_c^P + t_m^P)^(1/P) + launch, P = ROOFLINE_P. Fitted on NVIDIA AIConfigurator's GEMM
    tables (M 16-4096, N,K >= 2048): P = 2.5-3 on H100/H200 BF16/FP8, 1.5-2.5 on B200 and A100,
    and the fit beats max() on every chip and precision (log-RMS 0.076 vs 0.084 H100 BF16, 0.098
    vs 0.116 B200 BF16, 0.129 vs 0.150 B200 FP8, 0.119 vs 0.157 A100 BF16)."""
    peak, lp, w_b, a_b, ws, quant = precision(hv, p[K.I_WPREC])
    flops = 2.0 * m * n * k * count
    w = min(n, k)
    eff = gemm_efficiency(hv, flops * 1e-9) * lp * w / (w + hv[K.H_GEMM_D0])
    t_c = flops / (peak * eff)
    t_m = count * (m * k * a_b + m * n * BF16_BYTES) / hv[K.H_HBM_BW] + count * k * n * w_b / ws
    return (t_c ** ROOFLINE_P + t_m ** ROOFLINE_P) ** (1.0 / ROOFLINE_P) + hv[K.H_SV_KERNEL_S]


@njit(cache=True, error_model="numpy")
def _quant(hv, p):
    """One activation-quantisation kernel before a low-precision GEMM, unless the stack fuses it
    into the preceding kernel."""
    peak, lp, w_b, a_b, ws, quant = precision(hv, p[K.I_WPREC])
    if quant > 0.5 and p[K.I_FUSED_QUANT] == 0:
        return hv[K.H_SV_QUANT_S]
    return 0.0


@njit(cache=True, error_model="numpy")
def serve_gemm(hv, p, m, n, k, count):
    """Time of ``count`` GEMMs [m,k]x[k,n] in the plan's weight precision (one launch; the
    efficiency read at the size of all of them, as kernels.gemm does)."""
    if m <= 0.0:
        return 0.0
    return _gemm_core(hv, p, m, n, k, count) + _quant(hv, p)


@njit(cache=True, error_model="numpy")
def grouped_gemm(hv, p, m, n, k, count):
    """One grouped GEMM over ``count`` experts of ``m`` tokens each: every expert's GEMM sits on
    the efficiency curve at its own size (small per-expert M sits low on it), one launch.

    Known to be pessimistic: training reads the curve at the size of the whole call
    (kernels.gemm.grouped_gemm), which matches NVIDIA AIConfigurator's TRT-LLM MoE sweeps within
    ~10% for Qwen3-30B-like experts where this reading is 1.5-2.6x slow. Switching serving too
    made the TensorRT-LLM perf-overview Qwen3-30B-A3B rows (already 20-110% too fast) 70-180% too
    fast, so an engine-side cost of small-MoE serving is missing (candidates: per-sequence host
    work, the checkpoint's KV precision, trtllm-bench's batch and token caps); until it is
    modelled the per-expert reading stays here."""
    if m <= 0.0 or count <= 0.0:
        return 0.0
    one = _gemm_core(hv, p, m, n, k, 1.0)
    return count * (one - hv[K.H_SV_KERNEL_S]) + hv[K.H_SV_KERNEL_S] + _quant(hv, p)


@njit(cache=True, error_model="numpy")
def bf16_gemm(hv, m, n, k):
    """A 16-bit GEMM (router, output layer) on the same smooth roofline as _gemm_core."""
    if m <= 0.0:
        return 0.0
    flops = 2.0 * m * n * k
    w = min(n, k)
    eff = gemm_efficiency(hv, flops * 1e-9) * hv[K.H_SV_LP_16] * w / (w + hv[K.H_GEMM_D0])
    t_c = flops / (hv[K.H_PEAK_BF16] * eff)
    t_m = (m * k + m * n) * BF16_BYTES / hv[K.H_HBM_BW] + k * n * BF16_BYTES / hv[K.H_SV_WS_16]
    return (t_c ** ROOFLINE_P + t_m ** ROOFLINE_P) ** (1.0 / ROOFLINE_P) + hv[K.H_SV_KERNEL_S]


@njit(cache=True, error_model="numpy")
def decode_attention(mv, hv, p, n_seq, q, ctx):
    """One layer's decode attention on one TP rank: ``n_seq`` sequences, ``q`` query tokens
    each (1 + drafted tokens), KV of ``ctx`` tokens read once per sequence."""
    if n_seq <= 0.0:
        return 0.0
    tp = float(p[K.I_TP])
    a = mv[K.M_HEADS]
    if mv[K.M_MLA] > 0.5:
        dims = (mv[K.M_KV_LORA] + mv[K.M_ROPE]) + mv[K.M_KV_LORA]   # absorbed: scores + values
    else:
        dims = mv[K.M_DQK] + mv[K.M_DV]
    keys = cached_len(mv, ctx)
    flops = 2.0 * n_seq * q * keys * (a / tp) * dims
    kv_bytes = n_seq * keys * kv_elems_per_token_layer(mv, tp) * kv_elem_bytes(p[K.I_KVPREC])
    t_mem = kv_bytes / hv[K.H_SV_KV_BW]
    t_cmp = flops / (hv[K.H_PEAK_BF16] * hv[K.H_SV_ATT_DEC])
    return max(t_mem, t_cmp) + ATTN_DECODE_KERNELS * hv[K.H_SV_KERNEL_S]


@njit(cache=True, error_model="numpy")
def prefill_attention(mv, hv, p, tokens, ctx):
    """Causal prefill attention of ``tokens`` query tokens attending ``ctx`` keys on average
    (FlashAttention class kernel at its fraction of the 16-bit peak)."""
    if tokens <= 0.0:
        return 0.0
    tp = float(p[K.I_TP])
    eff = hv[K.H_ATT3_FWD] if hv[K.H_ATT3_FWD] > 0.0 else hv[K.H_ATT_FWD]
    flops = 2.0 * tokens * cached_len(mv, ctx) * (mv[K.M_HEADS] / tp) * (mv[K.M_DQK] + mv[K.M_DV])
    return flops / (hv[K.H_PEAK_BF16] * eff) + hv[K.H_SV_KERNEL_S]


@njit(cache=True, error_model="numpy")
def layer_pass(mv, hv, p, n_seq, q, ctx, m_pre, ctx_pre, moe_layer, decode):
    """One layer on one rank for ``n_seq`` decoding sequences (``q`` tokens each, context
    ``ctx``) plus ``m_pre`` prefill tokens (average context ``ctx_pre``).

    Returns (compute s, attention s, TP comm s, MoE dispatch+combine s, operators, imbalance)."""
    tp = float(p[K.I_TP])
    dp = float(p[K.I_DP])
    ep = float(p[K.I_EP])
    peak, lp, w_b, a_b, ws, quant = precision(hv, p[K.I_WPREC])
    h = mv[K.M_HIDDEN]
    a = mv[K.M_HEADS]
    kv = mv[K.M_KV_HEADS]
    dqk = mv[K.M_DQK]
    dv = mv[K.M_DV]
    up = 2.0 if mv[K.M_ACT] == K.ACT_SWIGLU else 1.0
    m_dec = n_seq * q
    m = m_dec + m_pre
    t = 0.0
    ops = 0.0
    # -- attention projections
    if mv[K.M_MLA] > 0.5:
        # DeepSeek-V2 (arXiv 2405.04434) sec. 2.1; decode absorbs W_UK / W_UV into the query
        # and output (FlashMLA), prefill up-projects the latent
        ql = mv[K.M_Q_LORA]
        kvl = mv[K.M_KV_LORA]
        rope = mv[K.M_ROPE]
        if ql > 0:
            t += serve_gemm(hv, p, m, ql, h, 1.0)
            t += serve_gemm(hv, p, m, a * dqk / tp, ql, 1.0)
            ops += 2.0
        else:
            t += serve_gemm(hv, p, m, a * dqk / tp, h, 1.0)
            ops += 1.0
        t += serve_gemm(hv, p, m, kvl + rope, h, 1.0)
        t += serve_gemm(hv, p, m_dec, a * kvl / tp, dqk - rope, 1.0)
        t += serve_gemm(hv, p, m_dec, a * dv / tp, kvl, 1.0)
        t += serve_gemm(hv, p, m_pre, a * ((dqk - rope) + dv) / tp, kvl, 1.0)
        ops += 3.0
    else:
        t += serve_gemm(hv, p, m, (a + 2.0 * kv) * dqk / tp, h, 1.0)
        ops += 1.0
    t += serve_gemm(hv, p, m, h, a * dv / tp, 1.0)
    ops += 1.0
    # -- attention core
    t_att = decode_attention(mv, hv, p, n_seq, q, ctx) + prefill_attention(mv, hv, p, m_pre, ctx_pre)
    ops += (1.0 if n_seq > 0.0 else 0.0) + (1.0 if m_pre > 0.0 else 0.0)
    t += t_att
    # -- FFN / MoE
    a2a = 0.0
    imb = 1.0
    if moe_layer:
        E = mv[K.M_EXPERTS]
        k = mv[K.M_TOPK]
        fe = mv[K.M_FE]
        etp = tp * dp / ep
        t_tot = m * dp                                   # distinct tokens in the replica
        copies = t_tot * k / ep                          # routed copies per EP rank (mean)
        epr = max(E / ep, 1.0)                           # ep > E: one expert (a replica) per rank
        imb = ep_imbalance(copies, epr, ep, float(p[K.I_LOAD_CV_PM]) / 1000.0)
        load = min(copies * imb, t_tot * min(epr, k))
        touched = epr * experts_touched(E, k, t_tot) / E     # expected local experts hit
        te = load / touched if touched > 0.0 else 0.0
        t += bf16_gemm(hv, m, E, h)                      # router
        # permute (copy activations per route) and unpermute (weighted scatter-add), HBM bound
        t += load * h * (2.0 * a_b + 2.0 * BF16_BYTES) / hv[K.H_HBM_BW] + 2.0 * hv[K.H_SV_KERNEL_S]
        t += grouped_gemm(hv, p, te, up * fe / etp, h, touched)
        t += grouped_gemm(hv, p, te, h, fe / etp, touched)
        ops += 5.0
        if mv[K.M_SHARED] > 0:
            fs = mv[K.M_FS] * mv[K.M_SHARED]
            t += serve_gemm(hv, p, m, up * fs / tp, h, 1.0)
            t += serve_gemm(hv, p, m, h, fs / tp, 1.0)
            ops += 2.0
        if ep > 1.0 and dp > 1.0:
            # attention data parallel: each rank holds its own tokens, dispatched to the experts'
            # ranks and combined back (with TP attention every rank already holds every token:
            # experts run on them in place and the TP all-reduce below combines the outputs)
            sent = m / tp * k * h * imb                  # copies leaving (arriving at) a rank
            if decode:
                ll = p[K.I_A2A_LL] == 1
                a2a = (ll_all_to_all(hv, sent * a_b, ep, ll)
                       + ll_all_to_all(hv, sent * BF16_BYTES, ep, ll))
            elif p[K.I_A2A_LL] == 1:
                # prefill with DeepEP-class normal kernels: one copy per remote domain
                a2a = (dedup_all_to_all(hv, m / tp * imb, k, h * a_b, ep)
                       + dedup_all_to_all(hv, m / tp * imb, k, h * BF16_BYTES, ep))
            else:
                a2a = (all_to_all(hv, sent * a_b, ep, 1.0, ep, 1.0, 1.0)
                       + all_to_all(hv, sent * BF16_BYTES, ep, 1.0, ep, 1.0, 1.0))
            ops += 2.0
    else:
        f = mv[K.M_FFN]
        t += serve_gemm(hv, p, m, up * f / tp, h, 1.0)
        t += serve_gemm(hv, p, m, h, f / tp, 1.0)
        ops += 2.0
    # -- norms, residual adds, rope, activation: HBM traffic above a launch floor per kernel
    elem = m * (10.0 * h / tp + 2.0 * (a + kv) * dqk / tp) * BF16_BYTES / hv[K.H_HBM_BW]
    t += max(elem, ELEMENTWISE_KERNELS * hv[K.H_SV_KERNEL_S])
    ops += ELEMENTWISE_KERNELS
    # -- TP all-reduce after attention and after the FFN / shared experts
    comm = 0.0
    if tp > 1.0:
        comm = 2.0 * allreduce(hv, m * h * BF16_BYTES, tp, p[K.I_CUSTOM_AR] == 1)
        ops += 2.0
    return t, t_att, comm, a2a, ops, imb


@njit(cache=True, error_model="numpy")
def stage_pass(mv, hv, p, n_seq, q, ctx, m_pre, ctx_pre, decode):
    """Every layer of one pipeline stage plus the output layer, for one micro-batch.

    Returns (compute, attention, comm, exposed MoE a2a, operators, imbalance). With two-batch
    overlap the micro-batch runs as two halves, each half's dispatch/combine hidden behind the
    other half's compute."""
    pp = float(p[K.I_PP])
    per, n_moe, n_dense = stage_layers(mv, pp)
    halves = 2.0 if (p[K.I_TBO] == 1 and n_moe > 0) else 1.0
    ns = n_seq / halves
    mp = m_pre / halves
    td, ad, cd, xd, od, imb = layer_pass(mv, hv, p, ns, q, ctx, mp, ctx_pre, False, decode)
    t = n_dense * td
    att = n_dense * ad
    comm = n_dense * cd
    ops = n_dense * od
    a2a = 0.0
    if n_moe > 0:
        tm, am, cm, xm, om, imb = layer_pass(mv, hv, p, ns, q, ctx, mp, ctx_pre, True, decode)
        t += n_moe * tm
        att += n_moe * am
        comm += n_moe * cm
        ops += n_moe * om
        if halves > 1.0:
            a2a = n_moe * max(0.0, xm - tm)
            if not decode:
                # prefill dispatch/combine kernels run on SMs taken from the overlapped compute
                # (DeepSeek-V3 sec. 3.2.2: 20 of 132 SMs); low-latency decode kernels occupy none
                f = float(p[K.I_A2A_SM_PM]) / 1000.0
                t += n_moe * min(xm, tm) * f / (1.0 - f)
        else:
            a2a = n_moe * xm
    t *= halves
    att *= halves
    comm *= halves
    ops *= halves
    a2a *= halves
    h = mv[K.M_HIDDEN]
    tp = float(p[K.I_TP])
    rows = n_seq * q + (1.0 if m_pre > 0.0 else 0.0)
    t += bf16_gemm(hv, rows, mv[K.M_VOCAB] / tp, h)
    ops += 1.0
    if pp > 1.0:
        comm += p2p(hv, (n_seq * q + m_pre) * h * BF16_BYTES, tp * float(p[K.I_DP]))
    return t, att, comm, a2a, ops, imb


@njit(cache=True, error_model="numpy")
def draft_pass(mv, hv, p, n_seq, ctx):
    """One draft step (MTP module / EAGLE-style head): one layer of the model's kind and the
    output layer for one token per sequence."""
    moe = mv[K.M_N_MOE] > 0
    t, att, comm, a2a, ops, imb = layer_pass(mv, hv, p, n_seq, 1.0, ctx, 0.0, 0.0, moe, True)
    t += bf16_gemm(hv, n_seq, mv[K.M_VOCAB] / float(p[K.I_TP]), mv[K.M_HIDDEN])
    return t + comm + a2a, ops + 1.0


@njit(cache=True, error_model="numpy")
def weights_per_rank(mv, hv, p):
    tp = float(p[K.I_TP])
    pp = float(p[K.I_PP])
    dp = float(p[K.I_DP])
    ep = float(p[K.I_EP])
    peak, lp, w_b, a_b, ws, quant = precision(hv, p[K.I_WPREC])
    attn, dense_mlp, expert, shared, router, norms, embed, out_layer, total, active = model_params(mv)
    per, n_moe, n_dense = stage_layers(mv, pp)
    etp = tp * dp / ep
    dense = n_dense * (attn + norms + dense_mlp) / tp
    local = max(mv[K.M_EXPERTS] / ep, 1.0) * expert / etp    # ep > experts: one replica per rank
    moe = n_moe * ((attn + norms + router + shared) / tp + local)
    extra = 0.0
    if p[K.I_DRAFT] > 0:   # the draft module: one more layer
        if mv[K.M_N_MOE] > 0:
            extra = (attn + norms + router + shared) / tp + local
        else:
            extra = (attn + norms + dense_mlp) / tp
    emb = (embed + (out_layer if pp == 1.0 else 0.0)) / tp * BF16_BYTES
    return (dense + moe + extra) * w_b + emb


@njit(cache=True, error_model="numpy")
def host_exposed(p, device_s, seqs):
    """Host scheduling per engine step (scheduler, sampling, bookkeeping) left on the critical
    path: all of it, or what the device step does not cover when the stack overlaps it."""
    host = float(p[K.I_HOST_US]) * 1e-6 + float(p[K.I_HOST_SEQ_NS]) * 1e-9 * seqs
    if p[K.I_OVERLAP] == 1:
        return max(0.0, host - device_s)
    return host


@njit(cache=True, error_model="numpy")
def launch_bound(p, device_s, ops, graphed):
    """Device time of a step, or the host's operator dispatch when it cannot keep up (no graph
    capture: each operator costs a host dispatch; launches are asynchronous, so the larger of
    the two sets the step)."""
    if graphed:
        return device_s
    return max(device_s, ops * float(p[K.I_HOST_OP_NS]) * 1e-9)


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
    d = float(p[K.I_DRAFT])
    q = 1.0 + d
    chunk = max(float(p[K.I_CHUNK]), 1.0)
    peak, lp, w_b, a_b, ws, quant = precision(hv, p[K.I_WPREC])
    if peak <= 0.0 or hv[K.H_PEAK_BF16] <= 0.0:
        return K.ST_NO_PRECISION
    status = K.ST_OK
    h = mv[K.M_HIDDEN]
    V = mv[K.M_VOCAB]
    per, n_moe, n_dense = stage_layers(mv, pp)

    # ---- memory: weights, workspace, KV cache under the stack's admission policy
    weights = weights_per_rank(mv, hv, p)
    f_w = max(mv[K.M_FFN], mv[K.M_TOPK] * mv[K.M_FE])
    act = max(chunk, I) * (4.0 * h + 3.0 * f_w / tp) * BF16_BYTES + B / dp * q * V / tp * 4.0
    kv_tok_rank = per * kv_elems_per_token_layer(mv, tp) * kv_elem_bytes(p[K.I_KVPREC])
    frac = float(p[K.I_KV_FRAC_PM]) / 1000.0
    free = max(0.0, hv[K.H_HBM_BYTES] - weights - act)
    if p[K.I_KV_OF_TOTAL] == 1:
        kv_mem = max(0.0, min(frac * hv[K.H_HBM_TOTAL] - weights - act, free))
    else:
        kv_mem = frac * free
    cap_tokens = dp * kv_mem / kv_tok_rank
    held = I + O if p[K.I_KV_ADMIT] == K.KVA_FULL else I + O / 2.0
    seq_tokens = cached_len(mv, held) + d
    o[K.Q_MEM_WEIGHTS] = weights
    o[K.Q_MEM_KV] = B / dp * seq_tokens * kv_tok_rank
    o[K.Q_MEM_ACT] = act
    o[K.Q_MEM_TOTAL] = weights + o[K.Q_MEM_KV] + act
    o[K.Q_KV_CAP_TOKENS] = cap_tokens
    o[K.Q_SEQ_KV] = seq_tokens
    if weights + act > hv[K.H_HBM_BYTES] or B * seq_tokens > cap_tokens:
        status = K.ST_OOM

    # ---- prefill: one request alone (TTFT) and saturated iterations (input tokens/s)
    ctx_p = avg_context(I, 0.0, True)
    t1, a1, c1, x1, o1, i1 = stage_pass(mv, hv, p, 0.0, 1.0, 0.0, I, ctx_p, False)
    dev1 = launch_bound(p, t1 + c1 + x1, o1, False)
    o[K.Q_P_COMPUTE] = pp * t1
    o[K.Q_P_COMM] = pp * (dev1 - t1)
    o[K.Q_P_OVERHEAD] = host_exposed(p, 0.0, 1.0)
    o[K.Q_TTFT] = pp * dev1 + o[K.Q_P_OVERHEAD]
    t_it = max(chunk, I)
    if O == 0.0:
        t_it = min(B / dp * I, t_it)                     # prefill-only: the batch given
    tc, ac, cc, xc, oc, ic = stage_pass(mv, hv, p, 0.0, 1.0, 0.0, t_it, ctx_p, False)
    devc = launch_bound(p, tc + cc + xc, oc, False)
    # a pipeline is full only with pp iterations in flight; a prefill-only batch that fills
    # fewer iterations traverses the stages one after another
    in_flight = max(1.0, math.floor(B / dp * I / t_it)) if O == 0.0 else pp
    stage_time = devc * max(1.0, pp / in_flight)
    o[K.Q_IN_TOK_S] = dp * t_it / (stage_time + host_exposed(p, stage_time, t_it / I))

    # ---- decode step: each of pp micro-batches of b sequences per DP group
    ctx_d = I + O / 2.0 if O > 0 else I
    b = B / dp / pp
    td, ad, cd, xd, od, imb = stage_pass(mv, hv, p, b, q, ctx_d, 0.0, 0.0, True)
    draft = 0.0
    if d > 0.0:
        tdr, odr = draft_pass(mv, hv, p, b, ctx_d)
        draft = d * launch_bound(p, tdr, odr, p[K.I_GRAPHS] == 1)
    dev_stage = launch_bound(p, td + cd + xd, od, p[K.I_GRAPHS] == 1) + draft
    device = pp * dev_stage
    over = host_exposed(p, device, B / dp)
    step = device + over
    o[K.Q_D_LAYERS] = pp * (dev_stage - cd - xd)
    o[K.Q_D_COMM] = pp * (cd + xd)
    o[K.Q_D_OVERHEAD] = over
    o[K.Q_D_WEIGHTS] = pp * weights / hv[K.H_HBM_BW]
    o[K.Q_D_KV] = pp * per * b * cached_len(mv, ctx_d) * kv_elems_per_token_layer(mv, tp) \
        * kv_elem_bytes(p[K.I_KVPREC]) / hv[K.H_SV_KV_BW]
    o[K.Q_D_ATTN] = pp * ad
    o[K.Q_D_MOE_A2A] = pp * xd
    o[K.Q_D_DRAFT] = pp * draft
    o[K.Q_IMBALANCE] = imb
    o[K.Q_TPOT] = step / acc
    o[K.Q_TPOT_E2E] = o[K.Q_TPOT]

    # ---- whole requests: every step also owes the prefill of the requests that replace the
    # ones finishing (B * acc / O per step on average)
    if O > 0:
        need = B / dp * acc * I / O                     # prefill tokens per step per DP group
        cycle = step
        if p[K.I_MIXED] == 1:
            room = max(0.0, pp * (chunk - b * q))
            mixed = min(need, room)
            if mixed > 0.0:
                # the mixed step replaces the decode step (not graph-captured: eager launch)
                tm, am, cm, xm, om, im = stage_pass(mv, hv, p, b, q, ctx_d, mixed / pp, ctx_p, True)
                dev_m = pp * (launch_bound(p, tm + cm + xm, om, False) + draft)
                cycle = dev_m + host_exposed(p, dev_m, B / dp)
            need -= mixed
        cycle += need * dp / o[K.Q_IN_TOK_S]
        o[K.Q_D_PREFILL] = cycle - step
        o[K.Q_TPOT_E2E] = cycle / acc
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
