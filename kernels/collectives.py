"""Alpha-beta collective costs over the package / scale-up / scale-out tiers (numba).

Mirrors estimator/reference/training.py (same names, same formulas); see the citations there.
Groups are described by up to two nested levels (stride, size).
"""
import math

from numba import njit

from kernels import layout as K


@njit(cache=True, error_model="numpy")
def members_within(block, s1, n1, s2, n2):
    a = math.floor(block / s1)
    out = max(1.0, min(n1, a))
    b = math.floor(block / s2)
    out *= max(1.0, min(n2, b))
    return out


@njit(cache=True, error_model="numpy")
def tier_sizes(hv, s1, n1, s2, n2):
    """(members in a package, extra factor inside the domain, members in the domain)."""
    n_pkg = members_within(hv[K.H_RANKS_PKG], s1, n1, s2, n2)
    n_dom = members_within(hv[K.H_DOMAIN], s1, n1, s2, n2)
    return n_pkg, n_dom / n_pkg, n_dom


@njit(cache=True, error_model="numpy")
def mesh_factor(hv, g_dom):
    if hv[K.H_MESH] < 0.5:
        return 1.0
    d_pkg = hv[K.H_DOMAIN] / hv[K.H_RANKS_PKG]
    if d_pkg <= 1.0:
        return 1.0
    return min(1.0, (g_dom - 1.0) / (d_pkg - 1.0))


@njit(cache=True, error_model="numpy")
def ring_phase(g, nbytes, bw, lat):
    if g <= 1.0:
        return 0.0
    if bw <= 0.0:
        return math.inf
    return (g - 1.0) * lat + (g - 1.0) / g * nbytes / bw


@njit(cache=True, error_model="numpy")
def rs_or_ag(hv, nbytes, n, s1, n1, s2, n2):
    if n <= 1.0:
        return 0.0
    g0, g1, n_dom = tier_sizes(hv, s1, n1, s2, n2)
    g2 = n / n_dom
    t = ring_phase(g0, nbytes, hv[K.H_BW_DIE], hv[K.H_LAT_DIE])
    t += ring_phase(g1, nbytes / g0, hv[K.H_BW_UP] * mesh_factor(hv, g1), hv[K.H_LAT_UP])
    t += ring_phase(g2, nbytes / (g0 * g1), hv[K.H_BW_OUT], hv[K.H_LAT_OUT])
    return t


@njit(cache=True, error_model="numpy")
def _div(a, b):
    if a <= 0.0:
        return 0.0
    if b <= 0.0:
        return math.inf
    return a / b


@njit(cache=True, error_model="numpy")
def all_to_all(hv, nbytes, n, s1, n1, s2, n2):
    if n <= 1.0:
        return 0.0
    g0, g1, n_dom = tier_sizes(hv, s1, n1, s2, n2)
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


@njit(cache=True, error_model="numpy")
def p2p(hv, nbytes, span):
    if span < hv[K.H_RANKS_PKG]:
        return hv[K.H_LAT_DIE] + _div(nbytes, hv[K.H_BW_DIE])
    if span < hv[K.H_DOMAIN]:
        return hv[K.H_LAT_UP] + _div(nbytes, hv[K.H_BW_UP])
    return hv[K.H_LAT_OUT] + _div(nbytes, hv[K.H_BW_OUT])
