"""Model arithmetic shared by training and serving: parameter counts and FLOPs per token (numba).

Inputs are the packed model vector of :mod:`kernels.layout` (``M_*``).
"""
from numba import njit

from kernels import layout as K


@njit(cache=True, error_model="numpy")
def avg_context(seq, window, causal):
    """Mean keys attended per query. Causal full attention: (s+1)/2; a window W < s:
    (W(W+1)/2 + (s-W)W)/s; non-causal (PaLM MFU convention): s, or W."""
    if not causal:
        if window <= 0.0 or window >= seq:
            return seq
        return window
    if window <= 0.0 or window >= seq:
        return (seq + 1.0) / 2.0
    return (window * (window + 1.0) / 2.0 + (seq - window) * window) / seq


@njit(cache=True, error_model="numpy")
def model_params(mv):
    """Parameter counts by part (no biases; norms 2h per layer + h final):
    (attn, dense_mlp, expert, shared, router, norms, embed, out_layer, total, active)."""
    h = mv[K.M_HIDDEN]
    a = mv[K.M_HEADS]
    kv = mv[K.M_KV_HEADS]
    dqk = mv[K.M_DQK]
    dv = mv[K.M_DV]
    glu = 3.0 if mv[K.M_ACT] == K.ACT_SWIGLU else 2.0   # gated MLPs have 3 matrices
    if mv[K.M_MLA] > 0.5:
        # DeepSeek-V2 (arXiv 2405.04434) sec. 2.1: W_DQ, W_UQ(+rope), W_DKV, W_KR, W_UK, W_UV, W_O
        ql = mv[K.M_Q_LORA]
        kvl = mv[K.M_KV_LORA]
        rope = mv[K.M_ROPE]
        if ql > 0:
            q = h * ql + ql * a * dqk + ql
        else:
            q = h * a * dqk
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
    return attn, dense_mlp, expert, shared, router, norms, embed, out_layer, total, active


@njit(cache=True, error_model="numpy")
def matmul_params_per_token(mv):
    """Active parameters a token passes through in matrix multiplies: every layer's weights
    (routed experts: top-k of them) and the output layer; the input embedding is a lookup."""
    attn, dense_mlp, expert, shared, router, norms, embed, out_layer, total, active = model_params(mv)
    in_layers = active - embed - out_layer - mv[K.M_LAYERS] * norms - mv[K.M_HIDDEN]
    return in_layers + embed          # + the V x h output projection, tied or not


@njit(cache=True, error_model="numpy")
def attention_flops_fwd(mv, seq, causal):
    """Forward FLOPs per token of the attention core (QK^T and AV) over all layers:
    2 * L * heads * (d_qk + d_v) * context (sliding-window layers see at most the window)."""
    fs = mv[K.M_FRAC_SLIDING]
    ctx = (1.0 - fs) * avg_context(seq, 0.0, causal) + fs * avg_context(seq, mv[K.M_WINDOW], causal)
    return 2.0 * mv[K.M_LAYERS] * mv[K.M_HEADS] * (mv[K.M_DQK] + mv[K.M_DV]) * ctx


@njit(cache=True, error_model="numpy")
def model_flops_per_token(mv, seq):
    """Model FLOPs per token, PaLM convention (Chowdhery et al. 2022, App. B): 6 x active
    matmul parameters (output layer included, input embedding excluded) + 3 x the non-causal
    attention-core forward FLOPs (6 L a (d_qk + d_v) s)."""
    return 6.0 * matmul_params_per_token(mv) + 3.0 * attention_flops_fwd(mv, seq, False)


@njit(cache=True, error_model="numpy")
def hardware_flops_per_token(mv, seq, rc, q):
    """FLOPs executed per token, in the MFU convention plus what recomputation repeats: full
    recompute of a share ``q`` of the layers repeats their forward (2 x matmul params + the
    attention core), selective recompute repeats the attention core. The output layer is never
    recomputed. Same attention convention as MFU, so HFU >= MFU always."""
    attn, dense_mlp, expert, shared, router, norms, embed, out_layer, total, active = model_params(mv)
    layer_matmul = matmul_params_per_token(mv) - embed
    core = attention_flops_fwd(mv, seq, False)
    tot = model_flops_per_token(mv, seq)
    if rc == K.RC_FULL:
        tot += q * (2.0 * layer_matmul + core)
    elif rc == K.RC_SELECTIVE:
        tot += core
    return tot
