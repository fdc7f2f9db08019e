"""Alpha-beta collective costs over the package / scale-up / scale-out tiers (numba).

Ranks are placed Megatron-style: TP innermost, then an inner data block (CP/EP), then PP, then
the rest of data parallelism. A group is described by up to two nested levels (stride, size);
the members that fall inside a package (die link), a scale-up domain (NVLink, HCCS, UB, ICI) or
only across NICs decide which links a collective uses. Hierarchical algorithms run one phase per
tier (Thakur et al. 2005 for the ring phases; NCCL's double binary tree for latency-bound
all-reduce across nodes, Sanders et al. 2009).

Link figures in ``hv`` are achieved bytes/s per rank per direction (peak x class fraction):
H_BW_UP is a rank's whole scale-up bandwidth; on a full mesh (Atlas 800T A2 HCCS) a pair of
packages shares one link (H_BW_PAIR_UP), so a group of g packages reaches (g-1) links' worth.
The per-step latency alpha of a tier is the link latency (system spec, or the class default)
plus the collective library's software cost per step (H_LAT_SW).
"""
import math

from numba import njit

from kernels import layout as K


@njit(cache=True, error_model="numpy")
def members_within(block, s1, n1, s2, n2):
    """Members of a group [(stride s1, size n1), (stride s2, size n2)] that fall inside a block
    of ``block`` consecutive ranks: prod clamp(block // stride, 1, size)."""
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
def domain_bw(hv, g_pkgs):
    """Per-rank bandwidth a collective among ``g_pkgs`` packages of one scale-up domain can use.
    Switched / Clos: the rank's whole scale-up bandwidth. Full mesh: the g-1 pair links among the
    members (each pair has one link; the others lead to non-members). Torus: the ring runs over
    neighbour links, 2 per dimension."""
    topo = hv[K.H_TOPO]
    if topo == K.TOPO_MESH:
        return min(hv[K.H_BW_UP], max(1.0, g_pkgs - 1.0) * hv[K.H_BW_PAIR_UP])
    return hv[K.H_BW_UP]


@njit(cache=True, error_model="numpy")
def mesh_factor(hv, g_pkgs):
    """Share of a rank's scale-up bandwidth a group of ``g_pkgs`` packages can use
    (:func:`domain_bw` / H_BW_UP): 1 on a switched domain, (g-1) pair links on a full mesh."""
    full = hv[K.H_BW_UP]
    if full <= 0.0:
        return 1.0
    return domain_bw(hv, g_pkgs) / full


@njit(cache=True, error_model="numpy")
def a2a_domain_bw(hv, g_pkgs):
    """Per-rank bandwidth of an all-to-all among ``g_pkgs`` packages of one domain. A torus is
    limited by its bisection: with side k = g^(1/d), 2 k^(d-1) links per direction cross the
    cut while g/2 * g/2 * S/g bytes must, so the per-rank rate is 8 x link / k (S = bytes per
    rank, link = per-direction rate of one of the 2d links)."""
    topo = hv[K.H_TOPO]
    if topo == K.TOPO_TORUS and g_pkgs > 2.0:
        d = max(1.0, hv[K.H_TORUS_DIMS])
        link = hv[K.H_BW_UP] / (2.0 * d)
        side = g_pkgs ** (1.0 / d)
        return min(hv[K.H_BW_UP], 8.0 * link / side)
    return domain_bw(hv, g_pkgs)


@njit(cache=True, error_model="numpy")
def ring_phase(g, nbytes, bw, lat):
    """Ring reduce-scatter or all-gather over g ranks of an ``nbytes`` tensor: (g-1) steps of
    latency plus (g-1)/g of the tensor through each rank's link."""
    if g <= 1.0:
        return 0.0
    if bw <= 0.0:
        return math.inf
    return (g - 1.0) * lat + (g - 1.0) / g * nbytes / bw


@njit(cache=True, error_model="numpy")
def tier_latencies(hv):
    return (hv[K.H_LAT_DIE] + hv[K.H_LAT_SW], hv[K.H_LAT_UP] + hv[K.H_LAT_SW],
            hv[K.H_LAT_OUT] + hv[K.H_LAT_SW])


@njit(cache=True, error_model="numpy")
def rs_or_ag(hv, nbytes, n, s1, n1, s2, n2):
    """Hierarchical reduce-scatter (or all-gather) of an ``nbytes`` tensor over n ranks:
    ring inside the package, then the domain on 1/g_pkg of it, then across domains."""
    if n <= 1.0:
        return 0.0
    g0, g1, n_dom = tier_sizes(hv, s1, n1, s2, n2)
    g2 = n / n_dom
    l0, l1, l2 = tier_latencies(hv)
    t = ring_phase(g0, nbytes, hv[K.H_BW_DIE], l0)
    t += ring_phase(g1, nbytes / g0, domain_bw(hv, g1), l1)
    t += ring_phase(g2, nbytes / (g0 * g1), hv[K.H_BW_OUT], l2)
    return t


@njit(cache=True, error_model="numpy")
def flat_ring_latency(hv, n, s1, n1, s2, n2):
    """Latency of one ring collective over all n ranks as NCCL / HCCL run it for reduce-scatter
    and all-gather (one ring through every member, n-1 steps, each paced by the slowest hop):
    (n-1) x the alpha of the outermost tier the group spans. The bandwidth term is the
    hierarchical one (multi-channel rings use every NIC), but the step count is not: a group of
    thousands of ranks pays thousands of step latencies per collective."""
    if n <= 1.0:
        return 0.0
    g0, g1, n_dom = tier_sizes(hv, s1, n1, s2, n2)
    l0, l1, l2 = tier_latencies(hv)
    lat = l0
    if n > n_dom:
        lat = l2
    elif n_dom > g0:
        lat = l1
    return (n - 1.0) * lat


@njit(cache=True, error_model="numpy")
def all_reduce(hv, nbytes, n, s1, n1, s2, n2):
    """Hierarchical all-reduce: reduce-scatter and all-gather inside packages and domains; across
    domains the cheaper of a ring (2 phases) and a double binary tree (2 log2(g) latencies and
    about 2 S / bw of traffic; NCCL picks the tree for small messages across nodes)."""
    if n <= 1.0:
        return 0.0
    g0, g1, n_dom = tier_sizes(hv, s1, n1, s2, n2)
    g2 = n / n_dom
    l0, l1, l2 = tier_latencies(hv)
    t = 2.0 * ring_phase(g0, nbytes, hv[K.H_BW_DIE], l0)
    t += 2.0 * ring_phase(g1, nbytes / g0, domain_bw(hv, g1), l1)
    if g2 > 1.0:
        s = nbytes / (g0 * g1)
        ring = 2.0 * ring_phase(g2, s, hv[K.H_BW_OUT], l2)
        bw = hv[K.H_BW_OUT]
        tree = math.inf if bw <= 0.0 else 2.0 * math.log2(g2) * l2 + 2.0 * s / bw
        t += min(ring, tree)
    return t


@njit(cache=True, error_model="numpy")
def _div(a, b):
    if a <= 0.0:
        return 0.0
    if b <= 0.0:
        return math.inf
    return a / b


@njit(cache=True, error_model="numpy")
def tiered_transfer(hv, b_pkg, b_dom, b_out, g_dom_pkgs):
    """Time to move bytes that leave a rank over the die link (b_pkg), the scale-up domain
    (b_dom, among g_dom_pkgs packages) and the NICs (b_out) at once: the slowest tier sets the
    pace, plus one latency of the outermost tier used (all-to-all style exchange)."""
    l0, l1, l2 = tier_latencies(hv)
    t = 0.0
    lat = 0.0
    if b_pkg > 0.0:
        t = max(t, _div(b_pkg, hv[K.H_BW_DIE]))
        lat = l0
    if b_dom > 0.0:
        t = max(t, _div(b_dom, a2a_domain_bw(hv, g_dom_pkgs)))
        lat = l1
    if b_out > 0.0:
        t = max(t, _div(b_out, hv[K.H_BW_OUT]))
        lat = l2
    return t + lat


@njit(cache=True, error_model="numpy")
def all_to_all(hv, nbytes, n, s1, n1, s2, n2):
    """All-to-all of ``nbytes`` per rank over n ranks with uniform destinations: the shares for
    peers in the package, the domain and beyond move in parallel over their own links."""
    if n <= 1.0:
        return 0.0
    g0, g1, n_dom = tier_sizes(hv, s1, n1, s2, n2)
    return tiered_transfer(hv, nbytes * (g0 - 1.0) / n, nbytes * (n_dom - g0) / n,
                           nbytes * (n - n_dom) / n, g1)


@njit(cache=True, error_model="numpy")
def p2p(hv, nbytes, span):
    """Send ``nbytes`` to the rank ``span`` ranks away, over the tier that separates them: one
    pair link on a full mesh or a torus neighbour link, the rank's scale-up bandwidth on a
    switched domain, its NIC share otherwise."""
    l0, l1, l2 = tier_latencies(hv)
    if span < hv[K.H_RANKS_PKG]:
        return l0 + _div(nbytes, hv[K.H_BW_DIE])
    if span < hv[K.H_DOMAIN]:
        topo = hv[K.H_TOPO]
        if topo == K.TOPO_MESH:
            bw = hv[K.H_BW_PAIR_UP]
        elif topo == K.TOPO_TORUS:
            bw = hv[K.H_BW_UP] / (2.0 * max(1.0, hv[K.H_TORUS_DIMS]))
        else:
            bw = hv[K.H_BW_UP]
        return l1 + _div(nbytes, bw)
    return l2 + _div(nbytes, hv[K.H_BW_OUT])
