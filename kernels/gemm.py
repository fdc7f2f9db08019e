"""Matrix-multiply cost: achieved efficiency vs size and the roofline time of a GEMM (numba).

DESIGN (Modelling): time per op = max(flops / (peak x efficiency(size)), bytes / HBM bw), with
the efficiency read from a per-chip-class breakpoint table (hwspecs/efficiency.yaml `gemm`),
not one constant.
"""
import math

from numba import njit

from kernels import layout as K

BF16_BYTES = 2.0


@njit(cache=True, error_model="numpy")
def gemm_efficiency(hv, gflop):
    """Achieved fraction of peak vs GEMM size: piecewise-linear in log10(GFLOP), clamped at
    both ends of the table."""
    n = int(hv[K.H_NCURVE])
    x = math.log10(max(gflop, 1e-12))
    if x <= hv[K.H_CURVE_X]:
        return hv[K.H_CURVE_Y]
    if x >= hv[K.H_CURVE_X + n - 1]:
        return hv[K.H_CURVE_Y + n - 1]
    for i in range(1, n):
        x1 = hv[K.H_CURVE_X + i]
        if x <= x1:
            x0 = hv[K.H_CURVE_X + i - 1]
            y0 = hv[K.H_CURVE_Y + i - 1]
            w = (x - x0) / (x1 - x0)
            return y0 + w * (hv[K.H_CURVE_Y + i] - y0)
    return hv[K.H_CURVE_Y + n - 1]


@njit(cache=True, error_model="numpy")
def gemm(hv, m, n, k, count, peak, lp, w_b, a_b):
    """Roofline time of ``count`` GEMMs [m,k] x [k,n]: max(flops / (peak x eff), bytes / bw)
    plus one launch. Weights are ``w_b`` bytes wide, activations ``a_b``, outputs 16-bit.

    The efficiency is read at the size of the whole batch of ``count`` GEMMs (grouped GEMM)
    and scaled down for thin weight matrices (efficiency.yaml, gemm_narrow_dim); ``lp`` is the
    low-precision factor of the class for fp8/fp4/int8 kernels.
    """
    if m <= 0.0:
        return 0.0
    flops = 2.0 * m * n * k * count
    w = min(n, k)
    eff = gemm_efficiency(hv, flops * 1e-9) * lp * w / (w + hv[K.H_GEMM_D0])
    nbytes = count * (m * k * a_b + k * n * w_b + m * n * BF16_BYTES)
    return max(flops / (peak * eff), nbytes / hv[K.H_HBM_BW]) + hv[K.H_KERNEL_S]


@njit(cache=True, error_model="numpy")
def gemm_time(hv, m, n, k, count, peak, lp, in_bytes):
    """Training GEMM: weights and activations at the same width."""
    return gemm(hv, m, n, k, count, peak, lp, in_bytes, in_bytes)


@njit(cache=True, error_model="numpy")
def grouped_tile_fill(hv, m):
    """Share of a grouped GEMM's M rows that carry tokens: each expert's ``m`` rows are padded
    up to the kernel's M block (efficiency.yaml grouped_gemm_m_tile); with token counts that vary
    from expert to expert about half a block is padding on average, so m / (m + block / 2)."""
    return m / (m + 0.5 * hv[K.H_GG_MTILE])


@njit(cache=True, error_model="numpy")
def grouped_gemm(hv, m, n, k, count, peak, lp, in_b, grouped):
    """``count`` expert GEMMs [m,k] x [k,n] (m = tokens per expert).

    A grouped-GEMM kernel (``grouped``) is one launch whose tiles cover every expert: its waves
    fill the chip as one GEMM of all ``count`` experts' FLOPs would, so the efficiency is read on
    the curve at the size of the whole call, times the share of rows that are not padding (each
    expert's rows padded to the M block, grouped_tile_fill). DeepGEMM's grouped contiguous
    layout and CUTLASS / Transformer Engine grouped GEMMs work this way; NVIDIA AIConfigurator's
    MoE sweeps (docs/evidence/microbenchmarks.md section 6) agree with it within about 15%
    (log-RMS, H100 / B200, Mixtral-like and Qwen3-30B-like experts, 32-2048 tokens per expert)
    where reading the curve at one expert's size is 1.5-2.6x too slow for fine-grained experts.
    A per-expert loop launches ``count`` GEMMs, each on the curve at its own size. Both are
    scaled for thin expert matrices and by the class's grouped-GEMM factor."""
    if m <= 0.0 or count <= 0.0:
        return 0.0
    flops = 2.0 * m * n * k
    w = min(n, k)
    if grouped:
        curve = gemm_efficiency(hv, count * flops * 1e-9) * grouped_tile_fill(hv, m)
    else:
        curve = gemm_efficiency(hv, flops * 1e-9)
    eff = curve * lp * w / (w + hv[K.H_GEMM_D0] + hv[K.H_GG_D0]) * hv[K.H_GG_FACTOR]
    nbytes = m * k * in_b + k * n * in_b + m * n * BF16_BYTES
    one = max(flops / (peak * eff), nbytes / hv[K.H_HBM_BW])
    launches = 1.0 if grouped else count
    return count * one + launches * hv[K.H_KERNEL_S]
