"""Small-message collectives for serving (numba): all-reduce by algorithm and size, and the
low-latency all-to-all of MoE decode.

Decode moves kilobytes to a few megabytes per collective, where latency, not bandwidth, sets
the time. Training's ring model (kernels/collectives.py) charges (n-1) latency steps; serving
engines run other algorithms, each with its own latency and bandwidth term:

* one-shot (custom kernel): every rank pushes its whole buffer to the n-1 peers and reduces
  locally: alpha_c + (n-1) S / bw. TensorRT-LLM, vLLM and SGLang ship one (custom all-reduce).
* two-shot (custom kernel): reduce-scatter then all-gather, one direct step each:
  2 alpha_c + 2 (n-1)/n S / bw.
* ring (library, NCCL / HCCL): alpha_lib + (n-1) beta + 2 (n-1)/n S / bw, beta the latency
  each further rank adds.
* NVLS (library, NVSwitch with in-network reduction): each rank sends its data once into the
  switch and receives the reduced shard and the gathered result: alpha_lib + (n-1) beta +
  (1 + 1/n) S / bw (the library's latency, measured with NVLS on, as for the ring).

The engine (and NCCL's tuner) picks the fastest available one, so the time is the minimum over
the algorithms the stack and the switch offer. Parameters are per chip class
(efficiency.yaml serve_*): alpha_c and alpha_lib from measured latency at the smallest sizes,
bw = the bytes/s per rank per direction that all-reduce reaches at serving sizes (AIConfigurator
nccl-tests and custom all-reduce tables: well below the large-message bus bandwidth).
Groups that leave the scale-up domain use the hierarchical ring of kernels.collectives.
"""
import math

from numba import njit

from kernels import layout as K
from kernels.collectives import _div, mesh_factor, rs_or_ag, tier_sizes


@njit(cache=True, error_model="numpy")
def oneshot(alpha, nbytes, n, bw):
    return alpha + (n - 1.0) * nbytes / bw


@njit(cache=True, error_model="numpy")
def twoshot(alpha, nbytes, n, bw):
    return 2.0 * alpha + 2.0 * (n - 1.0) / n * nbytes / bw


@njit(cache=True, error_model="numpy")
def ring_ar(alpha, step_lat, nbytes, n, bw):
    return alpha + (n - 1.0) * step_lat + 2.0 * (n - 1.0) / n * nbytes / bw


@njit(cache=True, error_model="numpy")
def nvls_ar(alpha, step_lat, nbytes, n, bw):
    return alpha + (n - 1.0) * step_lat + (1.0 + 1.0 / n) * nbytes / bw


@njit(cache=True, error_model="numpy")
def allreduce(hv, nbytes, n, custom):
    """Seconds for an all-reduce of ``nbytes`` per rank over ``n`` consecutive ranks (a TP
    group), by the fastest algorithm available. ``custom`` = the engine has one-shot /
    two-shot kernels."""
    if n <= 1.0 or nbytes <= 0.0:
        return 0.0
    g0, g1, n_dom = tier_sizes(hv, 1.0, n, 1.0, 1.0)
    if n > n_dom:
        # spans scale-up domains: hierarchical ring (reduce-scatter + all-gather over tiers)
        return 2.0 * rs_or_ag(hv, nbytes, n, 1.0, n, 1.0, 1.0)
    if g1 <= 1.0:
        # inside one package: the die-to-die link
        bw = hv[K.H_BW_DIE]
        if bw <= 0.0:
            return math.inf
        return oneshot(hv[K.H_LAT_DIE], nbytes, n, bw)
    bw = hv[K.H_SV_COLL_BW] * mesh_factor(hv, g1)
    if bw <= 0.0:
        return math.inf
    t = ring_ar(hv[K.H_SV_AR_LIB_S], hv[K.H_SV_AR_STEP_S], nbytes, n, bw)
    if hv[K.H_SV_NVLS] > 0.5:
        t = min(t, nvls_ar(hv[K.H_SV_AR_LIB_S], hv[K.H_SV_AR_STEP_S], nbytes, n, bw))
    if custom:
        t = min(t, oneshot(hv[K.H_SV_AR_CUSTOM_S], nbytes, n, bw))
        t = min(t, twoshot(hv[K.H_SV_AR_CUSTOM_S], nbytes, n, bw))
    return t


@njit(cache=True, error_model="numpy")
def ll_all_to_all(hv, nbytes, n, low_latency):
    """Seconds for one MoE dispatch (or combine) in decode: each rank sends ``nbytes`` spread
    evenly over the ``n`` ranks of the EP group (consecutive ranks, TP innermost). The share
    for ranks in the same package, the same scale-up domain and beyond moves in parallel over
    its own tier; the slowest tier sets the time (DeepEP low-latency kernels send straight to
    every peer, no node forwarding). Latency: the low-latency kernel's own (``low_latency``),
    else the library's all-to-all (alpha_lib plus a step per tier crossed)."""
    if n <= 1.0 or nbytes <= 0.0:
        return 0.0
    g0, g1, n_dom = tier_sizes(hv, 1.0, n, 1.0, 1.0)
    t = 0.0
    if g0 > 1.0:
        t = max(t, _div(nbytes * (g0 - 1.0) / n, hv[K.H_BW_DIE]))
    if n_dom > g0:
        t = max(t, _div(nbytes * (n_dom - g0) / n, hv[K.H_BW_UP] * mesh_factor(hv, g1)))
    if n > n_dom:
        t = max(t, _div(nbytes * (n - n_dom) / n, hv[K.H_BW_OUT]))
    if low_latency:
        return t + hv[K.H_SV_A2A_S]
    lat = hv[K.H_SV_AR_LIB_S] + (min(n, n_dom) - 1.0) * hv[K.H_SV_AR_STEP_S]
    if n > n_dom:
        lat += hv[K.H_LAT_OUT]
    return t + lat


@njit(cache=True, error_model="numpy")
def dedup_all_to_all(hv, tokens, k, token_bytes, n):
    """Seconds for one MoE dispatch (or combine) in prefill with node deduplication (DeepEP
    normal kernels; DeepSeek-V3, arXiv 2412.19437, sec. 3.2.2): each of a rank's ``tokens``
    crosses the scale-out network once per remote scale-up domain that hosts one of its ``k``
    experts, then fans out inside that domain over the scale-up links. With G domains and
    uniform routing a token hits G (1 - (1 - 1/G)^k) distinct domains, (G-1)/G of them remote.
    Inside one domain it is a plain all-to-all of the k copies."""
    if n <= 1.0 or tokens <= 0.0:
        return 0.0
    g0, g1, n_dom = tier_sizes(hv, 1.0, n, 1.0, 1.0)
    copies = tokens * k * token_bytes
    if n <= n_dom:
        return ll_all_to_all(hv, copies, n, False)
    G = n / n_dom
    remote = G * (1.0 - (1.0 - 1.0 / G) ** k) * (G - 1.0) / G
    t_out = _div(tokens * remote * token_bytes, hv[K.H_BW_OUT])
    t_up = _div(copies * (n_dom - 1.0) / n_dom, hv[K.H_BW_UP] * mesh_factor(hv, g1))
    return max(t_out, t_up) + hv[K.H_SV_AR_LIB_S] + (n_dom - 1.0) * hv[K.H_SV_AR_STEP_S] + hv[K.H_LAT_OUT]
