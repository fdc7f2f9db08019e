"""Mixture-of-experts routing arithmetic (numba): load imbalance across expert-parallel ranks,
nodes a token's experts span, and the bytes a dispatch moves per tier.

No per-token time constant: the cost of an MoE layer is its GEMMs at the per-expert token
count, its permutation traffic through HBM and its all-to-all over the links the EP group
spans (kernels/training.py puts them together).
"""
import math

from numba import njit


@njit(cache=True, error_model="numpy")
def ep_imbalance(experts, ep, load_cv):
    """Expected busiest-rank load / mean load over ``ep`` expert-parallel ranks.

    Tokens per expert in a step vary with coefficient of variation ``load_cv`` (the router's
    balance under the recipe's auxiliary loss or bias balancing; a stack parameter). A rank holds
    E/ep experts, so its load varies with cv / sqrt(E/ep) if experts vary independently; the
    expected maximum of ep such loads is mean x (1 + cv_rank sqrt(2 ln ep)) (Gaussian extreme,
    as for stragglers). One rank (ep = 1) is never imbalanced against itself.
    """
    if ep <= 1.0 or load_cv <= 0.0:
        return 1.0
    local = max(1.0, experts / ep)
    return 1.0 + load_cv / math.sqrt(local) * math.sqrt(2.0 * math.log(ep))


@njit(cache=True, error_model="numpy")
def _miss_all(pool, own, picks):
    """Probability that ``picks`` draws without replacement from ``pool`` items avoid a given
    block of ``own`` items: C(pool-own, picks) / C(pool, picks)."""
    if own >= pool:
        return 0.0
    p = 1.0
    i = 0.0
    while i < picks:
        if pool - own - i <= 0.0:
            return 0.0
        p *= (pool - own - i) / (pool - i)
        i += 1.0
    return p


@njit(cache=True, error_model="numpy")
def domains_per_token(experts, top_k, n_dom, groups, group_limit):
    """Expected number of distinct EP domains (nodes) a token's top-k experts fall into, with
    experts placed in contiguous blocks of E/n_dom per domain.

    Free routing: each domain is missed with probability C(E - E/n, k) / C(E, k). Node-limited
    routing (DeepSeek-V3 sec. 2.1.2: n_group groups, a token's experts come from topk_group of
    them; with one group per node block a token reaches at most topk_group nodes): a domain is
    missed when none of its groups is among the chosen ones."""
    if n_dom <= 1.0:
        return 1.0
    if groups > 0.0 and 0.0 < group_limit < groups:
        if n_dom <= groups:
            per = groups / n_dom                      # groups per domain
            return n_dom * (1.0 - _miss_all(groups, per, group_limit))
        # a group spans several domains: the k experts fall in group_limit groups' domains
        span = group_limit * n_dom / groups
        return span * (1.0 - _miss_all(experts * group_limit / groups,
                                       experts * group_limit / groups / span, top_k))
    return n_dom * (1.0 - _miss_all(experts, experts / n_dom, top_k))


@njit(cache=True, error_model="numpy")
def dispatch_bytes(tokens, hidden_bytes, top_k, ep, g_pkg, g_dom, experts, groups,
                   group_limit, dedup):
    """Bytes one rank sends per dispatch (the combine returns the same) by tier:
    (die link, scale-up domain, NICs). ``g_pkg`` / ``g_dom`` = EP members inside the rank's
    package / domain, ``hidden_bytes`` = bytes of one token's hidden state.

    Plain all-to-all (Megatron alltoall dispatcher): each of the k routed copies goes to the
    rank that holds its expert; destinations are uniform over the EP group. DeepEP-style
    (dedup): one copy per remote domain crosses the NICs and is forwarded inside that domain
    over the scale-up links (DeepSeek-V3 sec. 3.2.2), so the NICs carry E[distinct remote
    domains] copies per token instead of k x (remote fraction)."""
    copies = tokens * top_k
    b_pkg = copies * hidden_bytes * (g_pkg - 1.0) / ep
    n_dom = ep / g_dom
    if dedup and n_dom > 1.0:
        remote = domains_per_token(experts, top_k, n_dom, groups, group_limit) * (n_dom - 1.0) / n_dom
        b_out = tokens * hidden_bytes * remote
        # every copy bound for another package travels its target domain's scale-up links once
        b_dom = copies * hidden_bytes * (1.0 - g_pkg / g_dom) if g_dom > g_pkg else 0.0
    else:
        b_out = copies * hidden_bytes * (ep - g_dom) / ep
        b_dom = copies * hidden_bytes * (g_dom - g_pkg) / ep
    return b_pkg, b_dom, b_out
