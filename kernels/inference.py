"""Inference kernel: temporary pure-Python stand-in until the numba port lands (same API)."""
import numpy as np

from kernels import layout as K


def new_inference_outputs(n):
    return np.zeros((n, K.Q_SIZE)), np.zeros(n, dtype=np.int64)


_MAP = {"ttft": K.Q_TTFT, "tpot": K.Q_TPOT, "out_tok_s": K.Q_OUT_TOK_S, "in_tok_s": K.Q_IN_TOK_S,
        "mem_weights": K.Q_MEM_WEIGHTS, "mem_kv": K.Q_MEM_KV, "mem_act": K.Q_MEM_ACT,
        "mem_total": K.Q_MEM_TOTAL, "kv_cap_tokens": K.Q_KV_CAP_TOKENS, "d_weights": K.Q_D_WEIGHTS,
        "d_kv": K.Q_D_KV, "d_layers": K.Q_D_LAYERS, "d_comm": K.Q_D_COMM, "d_overhead": K.Q_D_OVERHEAD,
        "p_compute": K.Q_P_COMPUTE, "p_comm": K.Q_P_COMM, "p_overhead": K.Q_P_OVERHEAD}


def evaluate_inference(mv, hv, plans, out, status):
    from estimator.reference.inference import serve
    for i in range(len(plans)):
        r = serve(mv, hv, plans[i])
        status[i] = r["status"]
        for k, j in _MAP.items():
            out[i, j] = r[k]
