"""Plain-Python reference model of one training step for one parallel plan.

Readable, one formula per line with its source; the numba kernel in
``kernels/training.py`` must agree with it to 1e-9 (tests/test_kernel_vs_reference.py).
Inputs are the packed arrays of :mod:`kernels.layout` (model vector ``mv``, per-rank hardware
vector ``hv``, one plan row ``p``); the output is a dict keyed like the output columns.

Conventions
-----------
* A *rank* is one framework process: a chip, or a die where frameworks run one per die.
* Rank placement (Megatron-style): TP innermost; then an inner data block of size
  ``Din = lcm(cp, ep)`` that holds the CP and EP groups; then PP; then the rest of the
  data-parallel ranks. Groups inside a package use the die link, inside the scale-up domain
  the scale-up link, otherwise the NICs (hierarchical collectives).
* Step time = sum of named parts (compute, recompute, tp/cp/ep/pp/dp communication, bubble,
  optimizer, straggler). MFU uses PaLM's model FLOPs (Chowdhery et al. 2022, App. B):
  6N per token plus 6 * L * heads * (d_qk + d_v) * context (non-causal, full sequence).
"""
from __future__ import annotations

import math

from kernels import layout as K

BF16_BYTES = 2.0
FP32_BYTES = 4.0


# ------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------
def gemm_efficiency(hv, gflop: float) -> float:
    """Achieved fraction of peak vs GEMM size: piecewise-linear in log10(GFLOP), clamped."""
    n = int(hv[K.H_NCURVE])
    x = math.log10(max(gflop, 1e-12))
    xs = [hv[K.H_CURVE_X + i] for i in range(n)]
    ys = [hv[K.H_CURVE_Y + i] for i in range(n)]
    if x <= xs[0]:
        return ys[0]
    if x >= xs[n - 1]:
        return ys[n - 1]
    for i in range(1, n):
        if x <= xs[i]:
            w = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
            return ys[i - 1] + w * (ys[i] - ys[i - 1])
    return ys[n - 1]  # pragma: no cover


def gemm(hv, m: float, n: float, k: float, count: float, peak: float, lp: float,
         w_b: float, a_b: float) -> float:
    """Roofline time of ``count`` GEMMs [m,k] x [k,n] (DESIGN: max(flops/(peak*eff), bytes/bw)).

    Weights are ``w_b`` bytes wide, activations ``a_b``, outputs 16-bit; one launch per batch.
    The efficiency is read at the size of the whole batch of ``count`` GEMMs (grouped GEMM)
    and scaled down for thin weight matrices (see efficiency.yaml, gemm_narrow_dim).
    """
    if m <= 0.0:
        return 0.0
    flops = 2.0 * m * n * k * count
    w = min(n, k)
    eff = gemm_efficiency(hv, flops * 1e-9) * lp * w / (w + hv[K.H_GEMM_D0])
    nbytes = count * (m * k * a_b + k * n * w_b + m * n * BF16_BYTES)
    return max(flops / (peak * eff), nbytes / hv[K.H_HBM_BW]) + hv[K.H_KERNEL_S]


def gemm_time(hv, m: float, n: float, k: float, count: float, peak: float, lp: float,
              in_bytes: float) -> float:
    """Training GEMM: weights and activations at the same width."""
    return gemm(hv, m, n, k, count, peak, lp, in_bytes, in_bytes)


def members_within(block: float, levels) -> float:
    """Members of a group that fall inside a block of ``block`` consecutive ranks.

    ``levels`` = [(stride, size), ...] with nested strides (each level's stride >= the span of
    the level before); members = prod clamp(block // stride, 1, size).
    """
    out = 1.0
    for stride, size in levels:
        out *= max(1.0, min(size, float(block // stride)))
    return out


def tier_sizes(hv, n: float, levels):
    """(g_pkg, g_dom, g_out): members inside a package, extra factor inside the domain, outside."""
    n_pkg = members_within(hv[K.H_RANKS_PKG], levels)
    n_dom = members_within(hv[K.H_DOMAIN], levels)
    return n_pkg, n_dom / n_pkg, n / n_dom


def mesh_factor(hv, g_dom: float) -> float:
    """On a full-mesh scale-up domain a group of g packages can use only the g-1 links among
    themselves: per-rank bandwidth scales by (g-1)/(D-1) (Atlas 800T A2: 7 x 56 GB/s HCCS)."""
    if hv[K.H_MESH] < 0.5:
        return 1.0
    d_pkg = hv[K.H_DOMAIN] / hv[K.H_RANKS_PKG]
    if d_pkg <= 1.0:
        return 1.0
    return min(1.0, (g_dom - 1.0) / (d_pkg - 1.0))


def ring_phase(g: float, nbytes: float, bw: float, lat: float) -> float:
    """Ring reduce-scatter or all-gather over g ranks of an ``nbytes`` tensor: (g-1) steps of
    latency plus (g-1)/g of the tensor through each rank's link (Thakur et al. 2005)."""
    if g <= 1.0:
        return 0.0
    if bw <= 0.0:
        return math.inf
    return (g - 1.0) * lat + (g - 1.0) / g * nbytes / bw


def rs_or_ag(hv, nbytes: float, n: float, levels) -> float:
    """Hierarchical reduce-scatter (or all-gather) of an ``nbytes`` tensor over n ranks:
    ring inside the package, then the domain on 1/g_pkg of it, then across domains."""
    if n <= 1.0:
        return 0.0
    g0, g1, g2 = tier_sizes(hv, n, levels)
    t = ring_phase(g0, nbytes, hv[K.H_BW_DIE], hv[K.H_LAT_DIE])
    t += ring_phase(g1, nbytes / g0, hv[K.H_BW_UP] * mesh_factor(hv, g1), hv[K.H_LAT_UP])
    t += ring_phase(g2, nbytes / (g0 * g1), hv[K.H_BW_OUT], hv[K.H_LAT_OUT])
    return t


def all_to_all(hv, nbytes: float, n: float, levels) -> float:
    """All-to-all of ``nbytes`` per rank over n ranks: the shares that go to peers in the
    package, the domain and outside move in parallel over their links; one latency of the
    outermost tier used."""
    if n <= 1.0:
        return 0.0
    g0, g1, g2 = tier_sizes(hv, n, levels)
    n_dom = g0 * g1
    t = 0.0
    lat = hv[K.H_LAT_DIE]
    if g0 > 1.0:
        t = max(t, _div(nbytes * (g0 - 1.0) / n, hv[K.H_BW_DIE]))
    if n_dom > g0:
        t = max(t, _div(nbytes * (n_dom - g0) / n, hv[K.H_BW_UP] * mesh_factor(hv, g1)))
        lat = hv[K.H_LAT_UP]
    if n > n_dom:
        t = max(t, _div(nbytes * (n - n_dom) / n, hv[K.H_BW_OUT]))
        lat = hv[K.H_LAT_OUT]
    return t + lat


def p2p(hv, nbytes: float, span: float) -> float:
    """Send ``nbytes`` to a rank ``span`` ranks away."""
    if span < hv[K.H_RANKS_PKG]:
        return hv[K.H_LAT_DIE] + _div(nbytes, hv[K.H_BW_DIE])
    if span < hv[K.H_DOMAIN]:
        return hv[K.H_LAT_UP] + _div(nbytes, hv[K.H_BW_UP])
    return hv[K.H_LAT_OUT] + _div(nbytes, hv[K.H_BW_OUT])


def _div(a: float, b: float) -> float:
    if a <= 0.0:
        return 0.0
    return math.inf if b <= 0.0 else a / b


def avg_context(seq: float, window: float, causal: bool) -> float:
    """Mean keys attended per query. Causal full attention: (s+1)/2; a window W < s:
    (W(W+1)/2 + (s-W)W)/s; non-causal (PaLM MFU convention): s, or W."""
    if not causal:
        return seq if window <= 0.0 or window >= seq else window
    if window <= 0.0 or window >= seq:
        return (seq + 1.0) / 2.0
    return (window * (window + 1.0) / 2.0 + (seq - window) * window) / seq


# ------------------------------------------------------------------------------------------
# the model
# ------------------------------------------------------------------------------------------
def model_params(mv) -> dict:
    """Parameter counts by part (no biases; norms counted as 2h per layer + h final)."""
    h = mv[K.M_HIDDEN]
    a = mv[K.M_HEADS]
    kv = mv[K.M_KV_HEADS]
    dqk = mv[K.M_DQK]
    dv = mv[K.M_DV]
    glu = 3.0 if mv[K.M_ACT] == K.ACT_SWIGLU else 2.0  # gated MLPs have 3 matrices
    if mv[K.M_MLA] > 0.5:
        # DeepSeek-V2 (arXiv 2405.04434) sec. 2.1: W_DQ, W_UQ(+rope), W_DKV, W_KR, W_UK, W_UV, W_O
        ql = mv[K.M_Q_LORA]
        kvl = mv[K.M_KV_LORA]
        rope = mv[K.M_ROPE]
        q = (h * ql + ql * a * dqk + ql) if ql > 0 else h * a * dqk
        attn = q + h * (kvl + rope) + kvl + kvl * a * ((dqk - rope) + dv) + a * dv * h
    else:
        attn = h * a * dqk + 2.0 * h * kv * dqk + a * dv * h
    dense_mlp = glu * h * mv[K.M_FFN]
    expert = glu * h * mv[K.M_FE]
    shared = mv[K.M_SHARED] * glu * h * mv[K.M_FS]
    router = h * mv[K.M_EXPERTS] if mv[K.M_N_MOE] > 0 else 0.0
    norms = 2.0 * h
    n_moe = mv[K.M_N_MOE]
    n_dense = mv[K.M_N_DENSE]
    embed = mv[K.M_VOCAB] * h
    out_layer = 0.0 if mv[K.M_TIED] > 0.5 else embed
    total = (n_dense * (attn + dense_mlp + norms)
             + n_moe * (attn + norms + router + shared + mv[K.M_EXPERTS] * expert)
             + embed + out_layer + h)
    active = (n_dense * (attn + dense_mlp + norms)
              + n_moe * (attn + norms + router + shared + mv[K.M_TOPK] * expert)
              + embed + out_layer + h)
    return {"attn": attn, "dense_mlp": dense_mlp, "expert": expert, "shared": shared,
            "router": router, "norms": norms, "embed": embed, "out_layer": out_layer,
            "total": total, "active": active}


def model_flops_per_token(mv, seq: float) -> float:
    """PaLM-style model FLOPs per token: 6 x active matmul params (output layer included,
    input embedding excluded) + 6 L a (d_qk + d_v) ctx, ctx = full sequence (non-causal)."""
    pr = model_params(mv)
    L = mv[K.M_LAYERS]
    matmul = (pr["active"] - pr["embed"] - L * pr["norms"] - mv[K.M_HIDDEN]
              + (pr["embed"] if mv[K.M_TIED] > 0.5 else 0.0))
    a = mv[K.M_HEADS]
    dd = mv[K.M_DQK] + mv[K.M_DV]
    fs = mv[K.M_FRAC_SLIDING]
    ctx = (1.0 - fs) * avg_context(seq, 0.0, False) + fs * avg_context(seq, mv[K.M_WINDOW], False)
    return 6.0 * matmul + 6.0 * L * a * dd * ctx


def hardware_flops_per_token(mv, seq: float, rc: int) -> float:
    """FLOPs executed per token: 6 x active matmul params, causal attention with the
    FlashAttention backward (2 forward + 5 backward matmuls), plus what recompute repeats."""
    pr = model_params(mv)
    L = mv[K.M_LAYERS]
    out_layer = pr["embed"]                      # output layer, tied or not
    matmul = pr["active"] - pr["embed"] - L * pr["norms"] - mv[K.M_HIDDEN] - pr["out_layer"]
    a = mv[K.M_HEADS]
    dd = mv[K.M_DQK] + mv[K.M_DV]
    fs = mv[K.M_FRAC_SLIDING]
    ctx = (1.0 - fs) * avg_context(seq, 0.0, True) + fs * avg_context(seq, mv[K.M_WINDOW], True)
    core_fwd = 2.0 * L * a * dd * ctx
    total = 6.0 * (matmul + out_layer) + 3.5 * core_fwd
    if rc == K.RC_FULL:
        total += 2.0 * matmul + core_fwd
    elif rc == K.RC_SELECTIVE:
        total += core_fwd
    return total


def layer_times(mv, hv, p, moe_layer: bool) -> dict:
    """Forward/backward/recompute time of one layer for one micro-batch on one rank."""
    tp = float(p[K.P_TP]); cp = float(p[K.P_CP]); ep = float(p[K.P_EP])
    seq = float(p[K.P_SEQ]); mbs = float(p[K.P_MBS]); prec = int(p[K.P_PREC])
    h = mv[K.M_HIDDEN]; a = mv[K.M_HEADS]; kv = mv[K.M_KV_HEADS]
    dqk = mv[K.M_DQK]; dv = mv[K.M_DV]
    swiglu = mv[K.M_ACT] == K.ACT_SWIGLU
    up_mult = 2.0 if swiglu else 1.0
    T = mbs * seq / cp                      # tokens this rank processes (CP splits sequence)

    peak16 = hv[K.H_PEAK_BF16] if prec != K.PREC_FP16 else hv[K.H_PEAK_FP16]
    if prec == K.PREC_FP8:
        peak, lp, in_b = hv[K.H_PEAK_FP8], hv[K.H_LP_FP8], 1.0
    elif prec == K.PREC_FP4:
        peak, lp, in_b = hv[K.H_PEAK_FP4], hv[K.H_LP_FP4], 0.5
    else:
        peak, lp, in_b = peak16, 1.0, BF16_BYTES

    g = 0.0   # GEMM time, forward
    quant_elems = 0.0  # GEMM input elements cast to low precision (fp8/fp4 only)
    quant_out = 0.0    # GEMM output elements: their gradients are cast in the backward pass
    # --- attention projections (Megatron TP: column-parallel QKV, row-parallel output) ---
    if mv[K.M_MLA] > 0.5:
        ql = mv[K.M_Q_LORA]; kvl = mv[K.M_KV_LORA]; rope = mv[K.M_ROPE]
        # down-projections are replicated across TP ranks (not split), up-projections split
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

    # --- MLP ---
    elem_mlp = 0.0
    moe_fixed = 0.0
    if moe_layer:
        E = mv[K.M_EXPERTS]; k = mv[K.M_TOPK]; fe = mv[K.M_FE]
        local = E / ep
        te = T * k * ep / E                  # tokens per local expert (balanced routing)
        g += gemm_time(hv, T, E, h, 1.0, peak16, 1.0, BF16_BYTES)          # router
        g += gemm_time(hv, te, up_mult * fe / tp, h, local, peak, lp, in_b)
        g += gemm_time(hv, te, h, fe / tp, local, peak, lp, in_b)
        quant_elems += T * k * (h + fe / tp)
        quant_out += T * k * (up_mult * fe / tp + h)
        elem_mlp += 3.0 * T * k * fe / tp * BF16_BYTES if swiglu else 2.0 * T * k * fe / tp * BF16_BYTES
        # token permute + unpermute copies (read + write, dispatch and combine)
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
        # activation: swiglu reads 2f writes f; gelu/relu2 read f write f
        elem_mlp += (3.0 if swiglu else 2.0) * T * f / tp * BF16_BYTES

    # --- attention core (flash attention; causal; sliding window on some layers) ---
    fs_frac = mv[K.M_FRAC_SLIDING]
    ctx = (1.0 - fs_frac) * avg_context(seq, 0.0, True) + fs_frac * avg_context(seq, mv[K.M_WINDOW], True)
    core_flops = 2.0 * T * ctx * (a / tp) * (dqk + dv)
    core_fwd = core_flops / (peak16 * hv[K.H_ATT_FWD]) + hv[K.H_KERNEL_S]
    # FlashAttention-2 backward: 5 matmuls vs 2 forward -> 2.5x FLOPs (Dao 2023, sec. 3.1)
    core_bwd = 2.5 * core_flops / (peak16 * hv[K.H_ATT_BWD]) + hv[K.H_KERNEL_S]

    # --- memory-bound elementwise work (bytes moved, forward) ---
    # 2 norms (read+write h), 2 residual adds (read 2h write h), rotary on q and k
    # (read+write); with sequence parallelism each rank handles T/tp tokens of these.
    elem = (4.0 * h + 6.0 * h) * T / tp * BF16_BYTES
    elem += 2.0 * (a + kv) * dqk / tp * T * BF16_BYTES
    elem += elem_mlp
    if prec == K.PREC_FP8 or prec == K.PREC_FP4:
        # cast-transpose (Transformer Engine): read 16 bit, write the low-precision copy and its
        # transpose (Hopper fp8 GEMMs take both layouts); the backward does the same to the
        # output gradients
        elem += quant_elems * (BF16_BYTES + 2.0 * in_b)
        quant_bwd = quant_out * (BF16_BYTES + 2.0 * in_b) / hv[K.H_HBM_BW]
    else:
        quant_bwd = 0.0
    n_elem_kernels = 8.0
    elem_fwd = elem / hv[K.H_HBM_BW] + n_elem_kernels * hv[K.H_KERNEL_S]

    fwd = g + core_fwd + elem_fwd + moe_fixed
    bwd = 2.0 * g + core_bwd + 2.0 * elem_fwd + 2.0 * moe_fixed + quant_bwd     # backward: dgrad + wgrad = 2x forward GEMMs

    # --- TP communication (sequence parallel: all-gather before and reduce-scatter after
    #     each of attention and MLP; Korthikanti et al. 2022, sec. 4.2.2) ---
    tp_levels = [(1, tp)]
    act_bytes = T * h * BF16_BYTES
    tp_one = rs_or_ag(hv, act_bytes, tp, tp_levels)
    tp_fwd = 4.0 * tp_one * hv[K.H_TP_EXPOSED]
    tp_bwd = 4.0 * tp_one * hv[K.H_TP_EXPOSED]

    # --- CP communication: ring attention passes K and V around the cp ranks, overlapped
    #     with the attention core; only the excess is exposed (Liu et al. 2023) ---
    cp_fwd = cp_bwd = 0.0
    if cp > 1.0:
        if mv[K.M_MLA] > 0.5:
            kv_bytes = T * a / tp * (dqk + dv) * BF16_BYTES
        else:
            kv_bytes = T * kv / tp * (dqk + dv) * BF16_BYTES
        ring = (cp - 1.0) * p2p(hv, kv_bytes, tp)
        cp_fwd = max(0.0, ring - core_fwd)
        cp_bwd = max(0.0, 2.0 * ring - core_bwd)   # backward also returns dK, dV

    # --- EP communication: all-to-all dispatch + combine of the routed tokens, forward and
    #     backward; exposed (no two-batch overlap assumed) ---
    ep_fwd = ep_bwd = 0.0
    if moe_layer and ep > 1.0:
        a2a_bytes = T * mv[K.M_TOPK] * h * (1.0 if prec == K.PREC_FP8 else BF16_BYTES) / tp
        combine_bytes = T * mv[K.M_TOPK] * h * BF16_BYTES / tp
        ep_levels = [(tp, ep)]
        ep_fwd = all_to_all(hv, a2a_bytes, ep, ep_levels) + all_to_all(hv, combine_bytes, ep, ep_levels)
        ep_bwd = 2.0 * all_to_all(hv, combine_bytes, ep, ep_levels)

    return {"fwd": fwd, "bwd": bwd, "core_fwd": core_fwd, "tp_fwd": tp_fwd, "tp_bwd": tp_bwd,
            "cp_fwd": cp_fwd, "cp_bwd": cp_bwd, "ep_fwd": ep_fwd, "ep_bwd": ep_bwd,
            "gemm_fwd": g, "elem_fwd": elem_fwd}


def layer_activation_bytes(mv, p, moe_layer: bool) -> float:
    """Bytes of activations one layer keeps for backward, per micro-batch, per rank.

    Korthikanti et al. 2022 (Reducing Activation Recomputation), Table 2, generalised to GQA,
    gated MLPs and MoE, with flash attention (no s^2 score matrix kept) and no dropout; all
    terms divided by TP thanks to sequence parallelism, tokens divided by CP. With fp8/fp4
    matmuls the inputs saved for the weight-gradient GEMMs are kept in that precision
    (Transformer Engine keeps the cast copy), everything else in 16 bit.
    """
    tp = float(p[K.P_TP]); cp = float(p[K.P_CP])
    T = float(p[K.P_MBS]) * float(p[K.P_SEQ]) / cp
    h = mv[K.M_HIDDEN]; a = mv[K.M_HEADS]; kv = mv[K.M_KV_HEADS]
    dqk = mv[K.M_DQK]; dv = mv[K.M_DV]
    swiglu = mv[K.M_ACT] == K.ACT_SWIGLU
    rc = int(p[K.P_RECOMPUTE])
    prec = int(p[K.P_PREC])
    gin = 1.0 if prec == K.PREC_FP8 else (0.5 if prec == K.PREC_FP4 else BF16_BYTES)
    if rc == K.RC_FULL:
        return T * h * BF16_BYTES / tp          # only the layer input is kept
    up = 2.0 if swiglu else 1.0
    # attention: norm input (16 bit), QKV-GEMM input, Q K V for the attention backward,
    # output-projection input (recomputed under selective recompute)
    if mv[K.M_MLA] > 0.5:
        ql = mv[K.M_Q_LORA]; kvl = mv[K.M_KV_LORA]
        qkv16 = a * dqk + a * dqk + a * dv      # q, k (nope+rope), v after up-projection
        gemm_in = h + ql + kvl                  # inputs of the down and up projections
    else:
        qkv16 = a * dqk + 2.0 * kv * dqk
        gemm_in = h
    attn = (h + qkv16) * BF16_BYTES + gemm_in * gin
    if rc != K.RC_SELECTIVE:
        attn += a * dv * gin
    # MLP: norm input, up-GEMM input, activation input (16 bit), down-GEMM input
    if moe_layer:
        k = mv[K.M_TOPK]; fe = mv[K.M_FE]
        mlp = h * BF16_BYTES + h * gin + k * (h * gin + up * fe * BF16_BYTES + fe * gin)
        if mv[K.M_SHARED] > 0:
            fs = mv[K.M_FS] * mv[K.M_SHARED]
            mlp += up * fs * BF16_BYTES + fs * gin
    else:
        f = mv[K.M_FFN]
        mlp = h * BF16_BYTES + h * gin + up * f * BF16_BYTES + f * gin
    return T * (attn + mlp) / tp


def recompute_fraction(p, per_rank: float) -> float:
    """Share of a rank's layers that are fully recomputed (Megatron --recompute-num-layers):
    quarters of the layers, rounded up to whole layers; 0 unless recompute is full/partial."""
    if int(p[K.P_RECOMPUTE]) != K.RC_FULL:
        return 0.0
    quarters = float(p[K.P_RC_Q]) if p[K.P_RC_Q] > 0 else 4.0
    return min(per_rank, math.ceil(quarters * per_rank / 4.0)) / per_rank


def stage_layout(mv, p):
    """Layers on the most loaded rank and how many of them are MoE layers.

    Layers need not divide into pp*vpp stages: a rank holds at most vpp * ceil(L/(pp*vpp))
    layers; the busiest rank is assumed to hold MoE layers first (they are the expensive ones).
    """
    L = mv[K.M_LAYERS]
    pp = float(p[K.P_PP]); vpp = float(p[K.P_VPP])
    per_rank = min(L, vpp * math.ceil(L / (pp * vpp)))
    n_moe = min(per_rank, mv[K.M_N_MOE])
    return per_rank, n_moe, per_rank - n_moe


def train_step(mv, hv, p) -> dict:
    """Reference estimate for one plan row ``p``. Returns output columns by name + status."""
    tp = float(p[K.P_TP]); pp = float(p[K.P_PP]); dp = float(p[K.P_DP]); cp = float(p[K.P_CP])
    ep = float(p[K.P_EP]); vpp = float(p[K.P_VPP]); mbs = float(p[K.P_MBS])
    gbs = float(p[K.P_GBS]); seq = float(p[K.P_SEQ]); zero = int(p[K.P_ZERO])
    prec = int(p[K.P_PREC]); rc = int(p[K.P_RECOMPUTE])
    out = {name: 0.0 for name in _OUT_NAMES}
    out["status"] = K.ST_OK

    peak_needed = {K.PREC_BF16: hv[K.H_PEAK_BF16], K.PREC_FP16: hv[K.H_PEAK_FP16],
                   K.PREC_FP8: hv[K.H_PEAK_FP8], K.PREC_FP4: hv[K.H_PEAK_FP4]}[prec]
    if peak_needed <= 0.0 or hv[K.H_PEAK_BF16] <= 0.0:
        out["status"] = K.ST_NO_PRECISION
        return out

    h = mv[K.M_HIDDEN]; V = mv[K.M_VOCAB]
    m = gbs / (dp * mbs)                    # micro-batches per step per pipeline
    T = mbs * seq / cp
    per_rank, n_moe_r, n_dense_r = stage_layout(mv, p)

    # ---------------- time of one micro-batch on the busiest rank ----------------
    lt_d = layer_times(mv, hv, p, False)
    lt_m = layer_times(mv, hv, p, True) if n_moe_r > 0 else lt_d
    def both(key):
        return n_dense_r * lt_d[key] + n_moe_r * lt_m[key]
    fwd = both("fwd"); bwd = both("bwd")
    # output layer + cross-entropy sit on the last stage (with pp == 1, on every rank)
    peak16 = hv[K.H_PEAK_BF16] if prec != K.PREC_FP16 else hv[K.H_PEAK_FP16]
    logits_f = gemm_time(hv, T, V / tp, h, 1.0, peak16, 1.0, BF16_BYTES)
    ce_bytes = T * V / tp * (BF16_BYTES + 2.0 * FP32_BYTES)    # logits -> fp32 softmax -> grad
    ce = ce_bytes / hv[K.H_HBM_BW] + 2.0 * hv[K.H_KERNEL_S]
    fwd += logits_f + ce
    bwd += 2.0 * logits_f + ce
    tp_mb = both("tp_fwd") + both("tp_bwd")
    cp_mb = both("cp_fwd") + both("cp_bwd")
    ep_mb = both("ep_fwd") + both("ep_bwd")
    # recompute: full = whole forward again (incl. its TP/EP traffic); selective = attention core
    q = recompute_fraction(p, per_rank)
    if rc == K.RC_FULL:
        rec_mb = q * both("fwd")
        tp_mb += q * both("tp_fwd")
        ep_mb += q * both("ep_fwd")
        cp_mb += q * both("cp_fwd")
    elif rc == K.RC_SELECTIVE:
        rec_mb = both("core_fwd")
    else:
        rec_mb = 0.0
    t_mb = fwd + bwd + rec_mb + tp_mb + cp_mb + ep_mb
    # the forward and backward phases of one micro-batch (with their exposed communication):
    # the windows that data-parallel communication can hide behind
    fwd_win = fwd + both("tp_fwd") + both("cp_fwd") + both("ep_fwd")
    bwd_win = t_mb - fwd_win

    # ---------------- pipeline ----------------
    # 1F1B bubble (p-1)/(v m) of the ideal time (Narayanan et al. 2021, eq. 2 / sec. 2.2)
    bubble = (pp - 1.0) / vpp * t_mb
    din = float(math.lcm(int(cp), int(ep)))
    pp_span = tp * din
    pp_bytes = T * h * BF16_BYTES / tp          # sequence-parallel activations per boundary
    pp_comm = 0.0
    if pp > 1.0:
        # each micro-batch crosses a stage boundary vpp times forward and backward
        pp_comm = 2.0 * (m * vpp + pp - 1.0) * p2p(hv, pp_bytes, pp_span) * hv[K.H_PP_EXPOSED]

    # ---------------- parameters on the busiest rank ----------------
    pr = model_params(mv)
    # pp == 1: input embedding + output layer (if untied); pp > 1: the first stage holds the
    # embedding and the last the output layer (a copy of the embedding when tied): same size
    embed_part = pr["embed"] + (pr["out_layer"] if pp == 1.0 else 0.0)
    dense_per_layer = pr["attn"] + pr["norms"]
    nonexp = (n_dense_r * (dense_per_layer + pr["dense_mlp"])
              + n_moe_r * (dense_per_layer + pr["router"] + pr["shared"]))
    p_dense_rank = (nonexp + embed_part) / tp
    p_exp_rank = n_moe_r * mv[K.M_EXPERTS] * pr["expert"] / (ep * tp)
    dp_dense = dp * cp                          # ranks holding the same dense weights
    dp_exp = dp * cp / ep                       # ranks holding the same expert weights

    # ---------------- data-parallel gradient sync + optimizer ----------------
    dout = dp * cp / din
    dense_levels = [(tp, din), (tp * din * pp, dout)]
    exp_levels = [(tp * ep, din / ep), (tp * din * pp, dout)]
    # Megatron reduces fp32 main grads (bf16 training) and all-gathers bf16 params
    g_dense = p_dense_rank * FP32_BYTES
    g_exp = p_exp_rank * FP32_BYTES
    rs = rs_or_ag(hv, g_dense, dp_dense, dense_levels) + rs_or_ag(hv, g_exp, dp_exp, exp_levels)
    ag = (rs_or_ag(hv, p_dense_rank * BF16_BYTES, dp_dense, dense_levels)
          + rs_or_ag(hv, p_exp_rank * BF16_BYTES, dp_exp, exp_levels))
    if zero == 0:
        dp_total = 2.0 * rs                     # all-reduce = reduce-scatter + all-gather
        dp_exposed = max(0.0, dp_total - bwd_win)
    elif zero == 3:
        # FSDP: gather params for forward and backward of every micro-batch, prefetched
        # behind compute; reduce-scatter grads once per step behind the last backward
        dp_exposed = (m * max(0.0, ag - fwd_win) + (m - 1.0) * max(0.0, ag - bwd_win)
                      + max(0.0, ag + rs - bwd_win))
    else:
        # distributed optimizer: grad reduce-scatter overlapped with the last backward,
        # param all-gather overlapped with the first forward (Megatron overlap_grad_reduce /
        # overlap_param_gather)
        dp_exposed = max(0.0, rs - bwd_win) + max(0.0, ag - fwd_win)
    # frameworks that never overlap DP traffic expose a fraction f of all of it
    f_dp = hv[K.H_DP_EXPOSED]
    dp_all = 2.0 * rs if zero == 0 else (rs + m * 2.0 * ag if zero == 3 else rs + ag)
    dp_exposed = f_dp * dp_all + (1.0 - f_dp) * dp_exposed
    shard = dp_dense if zero >= 1 else 1.0
    shard_e = dp_exp if zero >= 1 else 1.0
    local_master = p_dense_rank / shard + p_exp_rank / shard_e
    # Adam: read fp32 master, m, v, grad; write master, m, v and the bf16 param (30 B/param)
    # + grad-norm read (4 B)
    optimizer = local_master * 34.0 / hv[K.H_HBM_BW]

    # ---------------- step ----------------
    base = m * t_mb + bubble + pp_comm + dp_exposed + optimizer
    n_nodes = (float(p[K.P_TP]) * pp * dp * cp) / hv[K.H_NODE]
    # stragglers: expected max of n_nodes per-node step times with coefficient of variation
    # cv (Gaussian extreme value ~ sqrt(2 ln n); Gumbel 1958)
    strag = base * hv[K.H_STRAGGLER_CV] * math.sqrt(2.0 * math.log(n_nodes)) if n_nodes > 1.0 else 0.0
    step = base + strag

    out["t_compute"] = m * (fwd + bwd)
    out["t_recompute"] = m * rec_mb
    out["t_tp"] = m * tp_mb
    out["t_cp"] = m * cp_mb
    out["t_ep"] = m * ep_mb
    out["t_pp"] = pp_comm
    out["t_dp"] = dp_exposed
    out["t_bubble"] = bubble
    out["t_optimizer"] = optimizer
    out["t_straggler"] = strag
    out["step"] = step

    # ---------------- memory on the busiest rank ----------------
    w_shard = dp_dense if zero == 3 else 1.0
    w_shard_e = dp_exp if zero == 3 else 1.0
    weights = (p_dense_rank / w_shard + p_exp_rank / w_shard_e) * BF16_BYTES
    if zero == 3:
        # FSDP gathers a layer's full weights before using it and prefetches the next:
        # two of the largest layers stay resident (Zhao et al. 2023, PyTorch FSDP, sec. 3.2)
        dense_layer = (pr["attn"] + pr["norms"] + pr["dense_mlp"]) / tp
        moe_layer = ((pr["attn"] + pr["norms"] + pr["router"] + pr["shared"]) / tp
                     + mv[K.M_EXPERTS] * pr["expert"] / (ep * tp)) if n_moe_r > 0 else 0.0
        weights += 2.0 * max(dense_layer, moe_layer) * BF16_BYTES
    g_shard = dp_dense if zero >= 2 else 1.0
    g_shard_e = dp_exp if zero >= 2 else 1.0
    grads = (p_dense_rank / g_shard + p_exp_rank / g_shard_e) * FP32_BYTES
    opt = local_master * 12.0                   # fp32 master + Adam m + v
    a_d = layer_activation_bytes(mv, p, False)
    a_m = layer_activation_bytes(mv, p, True) if n_moe_r > 0 else a_d
    act_mb = n_dense_r * a_d + n_moe_r * a_m
    if rc == K.RC_FULL:
        # recomputed layers keep their input only, the others everything
        p_none = list(p); p_none[K.P_RECOMPUTE] = K.RC_NONE
        n_d = layer_activation_bytes(mv, p_none, False)
        n_m = layer_activation_bytes(mv, p_none, True) if n_moe_r > 0 else n_d
        act_mb = q * act_mb + (1.0 - q) * (n_dense_r * n_d + n_moe_r * n_m)
    in_flight = min(m, pp)
    interleave = 1.0 + (pp - 1.0) / (pp * vpp) if vpp > 1.0 else 1.0
    act = act_mb * in_flight * interleave
    if rc == K.RC_FULL:
        # the layer being recomputed holds its full activations (its input is already counted)
        act += max(n_d, n_m if n_moe_r > 0 else 0.0) - a_d
    # logits and their fp32 softmax for one micro-batch on the last stage
    act += T * V / tp * (BF16_BYTES + FP32_BYTES)
    out["mem_weights"] = weights
    out["mem_grads"] = grads
    out["mem_opt"] = opt
    out["mem_act"] = act
    out["mem_total"] = weights + grads + opt + act
    if out["mem_total"] > hv[K.H_HBM_BYTES]:
        out["status"] = K.ST_OOM
    if not math.isfinite(step):
        out["status"] = K.ST_NO_LINK

    out["tokens_per_s"] = gbs * seq / step if math.isfinite(step) and step > 0 else 0.0
    out["model_flops_tok"] = model_flops_per_token(mv, seq)
    hf_none = hardware_flops_per_token(mv, seq, K.RC_NONE)
    out["hw_flops_tok"] = (hf_none + q * (hardware_flops_per_token(mv, seq, K.RC_FULL) - hf_none)
                           if rc == K.RC_FULL else hardware_flops_per_token(mv, seq, rc))
    return out


_OUT_NAMES = ("step", "t_compute", "t_recompute", "t_tp", "t_cp", "t_ep", "t_pp", "t_dp",
              "t_bubble", "t_optimizer", "t_straggler", "mem_weights", "mem_grads", "mem_opt",
              "mem_act", "mem_total", "tokens_per_s", "model_flops_tok", "hw_flops_tok")
