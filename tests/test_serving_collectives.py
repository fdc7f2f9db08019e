"""Small-message collectives of serving (kernels/allreduce.py): closed forms, algorithm choice,
tiers, the same source un-jitted, and published latencies with stated tolerances."""
import math

import pytest
from hypothesis import given, settings, strategies as st

from kernels import layout as K
from kernels.allreduce import (allreduce, dedup_all_to_all, ll_all_to_all, oneshot, ring_ar,
                               twoshot)
from kernels.collectives import rs_or_ag
from strategies import CHIPS, hardware
from unjitted import pure_kernels


def _hv(chip, **slots):
    hv = hardware(chip).copy()
    for k, v in slots.items():
        hv[getattr(K, k)] = v
    return hv


def test_tiny_message_costs_the_one_shot_latency():
    hv = hardware("h100-sxm")
    S = 256.0
    assert allreduce(hv, S, 8.0, True) == pytest.approx(
        hv[K.H_SV_AR_CUSTOM_S] + 7 * S / hv[K.H_SV_COLL_BW], rel=1e-12)


def test_library_only_ring_closed_form_without_nvls():
    hv = _hv("h100-sxm", H_SV_NVLS=0.0)
    S = 4e6
    ring = hv[K.H_SV_AR_LIB_S] + 7 * hv[K.H_SV_AR_STEP_S] + 2 * 7 / 8 * S / hv[K.H_SV_COLL_BW]
    assert allreduce(hv, S, 8.0, False) == pytest.approx(ring, rel=1e-12)
    # NVLS halves the bandwidth term: (1 + 1/n) S / bw instead of 2 (n-1)/n S / bw
    hv_n = _hv("h100-sxm", H_SV_NVLS=1.0)
    nvls = hv_n[K.H_SV_AR_LIB_S] + 7 * hv_n[K.H_SV_AR_STEP_S] + (1 + 1 / 8) * S / hv_n[K.H_SV_COLL_BW]
    assert allreduce(hv_n, S, 8.0, False) == pytest.approx(min(ring, nvls), rel=1e-12)


def test_one_shot_gives_way_to_two_shot_at_the_closed_form_crossover():
    """one-shot - two-shot = (n-1)(n-2) S / (n bw) - alpha: equal at S* = alpha n bw / ((n-1)(n-2))."""
    a, bw, n = 3e-6, 180e9, 8.0
    s_star = a * n * bw / ((n - 1) * (n - 2))
    assert oneshot(a, s_star, n, bw) == pytest.approx(twoshot(a, s_star, n, bw), rel=1e-12)
    assert oneshot(a, 0.5 * s_star, n, bw) < twoshot(a, 0.5 * s_star, n, bw)
    assert oneshot(a, 2 * s_star, n, bw) > twoshot(a, 2 * s_star, n, bw)
    assert ring_ar(a, 0.0, s_star, n, bw) == pytest.approx(twoshot(a, s_star, n, bw) - a, rel=1e-12)


def test_group_beyond_the_domain_uses_the_hierarchical_ring():
    hv = hardware("h100-sxm")            # 8-GPU NVSwitch domain
    S = 1e6
    assert allreduce(hv, S, 16.0, True) == pytest.approx(
        2 * rs_or_ag(hv, S, 16.0, 1.0, 16.0, 1.0, 1.0), rel=1e-12)


def test_tp_inside_a_910c_package_rides_the_die_link():
    hv = hardware("ascend-910c")         # 2 ranks per package, SIO die link
    S = 64e3
    assert allreduce(hv, S, 2.0, True) == pytest.approx(
        hv[K.H_LAT_DIE] + S / hv[K.H_BW_DIE], rel=1e-12)


def test_full_mesh_group_uses_only_its_own_links():
    """Atlas 800T A2 HCCS full mesh: a TP2 group has one of the 7 links of each NPU."""
    hv = hardware("ascend-910b")
    S = 8e6
    bw_pair = hv[K.H_SV_COLL_BW] / 7
    one = hv[K.H_SV_AR_CUSTOM_S] + S / bw_pair
    two = 2 * hv[K.H_SV_AR_CUSTOM_S] + S / bw_pair
    ring = hv[K.H_SV_AR_LIB_S] + hv[K.H_SV_AR_STEP_S] + S / bw_pair
    assert allreduce(hv, S, 2.0, True) == pytest.approx(min(one, two, ring), rel=1e-12)


def test_low_latency_all_to_all_closed_forms():
    hv = hardware("h800")
    B = 7.3e6                             # 128 tokens x top-8 x 7168 bytes (fp8 dispatch)
    # inside one 8-GPU domain: 7/8 of the bytes over NVLink plus the kernel's latency
    assert ll_all_to_all(hv, B, 8.0, True) == pytest.approx(
        B * 7 / 8 / hv[K.H_BW_UP] + hv[K.H_SV_A2A_S], rel=1e-12)
    # across 8 domains: the remote 56/64 of the bytes over the NIC sets the time
    assert ll_all_to_all(hv, B, 64.0, True) == pytest.approx(
        B * 56 / 64 / hv[K.H_BW_OUT] + hv[K.H_SV_A2A_S], rel=1e-12)


def test_low_latency_all_to_all_against_deepep():
    """DeepEP low-latency kernels on H800 + CX7 (github deepseek-ai/DeepEP, docs/legacy.md):
    128 tokens, top-8, hidden 7168, FP8 dispatch / BF16 combine: dispatch 118 / 173 / 194 us
    and combine 195 / 314 / 360 us at EP16 / 64 / 256. Tolerance 35%."""
    hv = hardware("h800")
    for ep, disp, comb in ((16, 118e-6, 195e-6), (64, 173e-6, 314e-6), (256, 194e-6, 360e-6)):
        d = ll_all_to_all(hv, 128 * 8 * 7168 * 1.0, float(ep), True)
        c = ll_all_to_all(hv, 128 * 8 * 7168 * 2.0, float(ep), True)
        assert abs(d - disp) / disp <= 0.35, (ep, d, disp)
        assert abs(c - comb) / comb <= 0.35, (ep, c, comb)


def test_custom_allreduce_against_aiconfigurator():
    """TensorRT-LLM custom all-reduce, 8 x H100 SXM, BF16 (NVIDIA AIConfigurator database,
    h100_sxm/comm/trtllm/1.3.0rc20, as collected in the project's micro-benchmark evidence):
    3.6 us at 8k elements and 6.2 us at 64k elements; NCCL all-reduce 15.6 us at 512 B.
    Tolerance 35% (the class parameters are fitted on the smallest size and on 64 KB-64 MB)."""
    hv = hardware("h100-sxm")
    for elems, meas in ((8192, 3.6e-6), (65536, 6.2e-6)):
        t = allreduce(hv, elems * 2.0, 8.0, True)
        assert abs(t - meas) / meas <= 0.35, (elems, t, meas)
    t = allreduce(hv, 512.0, 8.0, False)
    assert abs(t - 15.6e-6) / 15.6e-6 <= 0.35


def test_node_dedup_sends_fewer_bytes_across_nodes():
    hv = hardware("h100-sxm")
    tokens, k, tb = 8192.0, 8.0, 7168.0
    for ep in (16.0, 32.0, 64.0):
        G = ep / 8
        remote = G * (1 - (1 - 1 / G) ** k) * (G - 1) / G
        expect_out = tokens * remote * tb / hv[K.H_BW_OUT]
        expect_up = tokens * k * tb * 7 / 8 / hv[K.H_BW_UP]
        lat = hv[K.H_SV_AR_LIB_S] + 7 * hv[K.H_SV_AR_STEP_S] + hv[K.H_LAT_OUT]
        assert dedup_all_to_all(hv, tokens, k, tb, ep) == pytest.approx(
            max(expect_out, expect_up) + lat, rel=1e-12)
        # never more remote traffic than sending every routed copy
        assert remote <= k * (ep - 8) / ep + 1e-12


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CHIPS), st.floats(1.0, 1e9), st.sampled_from([2.0, 4.0, 8.0, 16.0, 32.0]),
       st.booleans(), st.floats(1.0, 8.0))
def test_more_bytes_never_faster_and_unjitted_agrees(chip, S, n, custom, grow):
    hv = hardware(chip)
    a = allreduce(hv, S, n, custom)
    b = allreduce(hv, S * grow, n, custom)
    assert b >= a * (1 - 1e-12)
    assert ll_all_to_all(hv, S * grow, n, custom) >= ll_all_to_all(hv, S, n, custom) * (1 - 1e-12)
    pure = pure_kernels().inference
    for fn, args in ((allreduce, (hv, S, n, custom)), (ll_all_to_all, (hv, S, n, custom)),
                     (dedup_all_to_all, (hv, S / 7168, 8.0, 7168.0, n))):
        x, y = fn(*args), getattr(pure, fn.__name__)(*args)
        assert (math.isinf(x) and math.isinf(y)) or abs(x - y) <= 1e-12 * max(abs(x), 1e-30)
