"""Inference: jitted kernel vs the same source un-jitted, properties, closed forms, CLI and bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from estimator.catalog import Catalog
from estimator.errors import InfeasibleError, InputError, PlanError
from estimator.inference import estimate_inference
from estimator.packing import pack_model
from kernels.inference import experts_touched
from kernels import layout as K
from kernels.inference import evaluate_inference, new_inference_outputs
from strategies import CHIPS, hardware, models
from unjitted import pure_kernels

CAT = Catalog(use_env=False)
COLS = {"ttft": K.Q_TTFT, "tpot": K.Q_TPOT, "out_tok_s": K.Q_OUT_TOK_S, "in_tok_s": K.Q_IN_TOK_S,
        "mem_weights": K.Q_MEM_WEIGHTS, "mem_kv": K.Q_MEM_KV, "mem_act": K.Q_MEM_ACT,
        "mem_total": K.Q_MEM_TOTAL, "kv_cap_tokens": K.Q_KV_CAP_TOKENS, "d_weights": K.Q_D_WEIGHTS,
        "d_kv": K.Q_D_KV, "d_layers": K.Q_D_LAYERS, "d_comm": K.Q_D_COMM, "d_overhead": K.Q_D_OVERHEAD,
        "p_compute": K.Q_P_COMPUTE, "p_comm": K.Q_P_COMM, "p_overhead": K.Q_P_OVERHEAD}
assert sorted(COLS.values()) == list(range(K.Q_SIZE))


@st.composite
def serve_plans(draw):
    p = np.zeros(K.I_SIZE, dtype=np.int64)
    tp = draw(st.sampled_from([1, 2, 4, 8]))
    dp = draw(st.sampled_from([1, 2, 8]))
    p[K.I_TP], p[K.I_DP] = tp, dp
    p[K.I_PP] = draw(st.sampled_from([1, 2, 4]))
    p[K.I_EP] = draw(st.sampled_from([e for e in (1, 2, 4, 8) if (tp * dp) % e == 0]))
    p[K.I_BATCH] = dp * draw(st.integers(1, 512))
    p[K.I_IN] = draw(st.sampled_from([1, 128, 2000, 32768]))
    p[K.I_OUT] = draw(st.sampled_from([0, 1, 500, 4096]))
    p[K.I_WPREC] = draw(st.integers(0, 6))
    p[K.I_KVPREC] = draw(st.integers(0, 2))
    p[K.I_SPEC_X100] = draw(st.sampled_from([100, 150, 300]))
    p[K.I_TBO] = draw(st.integers(0, 1))
    return p


def run(mv, hv, p):
    out, s = new_inference_outputs(1)
    evaluate_inference(mv, hv, p.reshape(1, -1), out, s)
    return out[0], int(s[0])


@settings(max_examples=300, deadline=None)
@given(models(), st.sampled_from(CHIPS), serve_plans())
def test_jitted_equals_unjitted(model, chip, p):
    mv, hv = pack_model(model), hardware(chip)
    o, s = run(mv, hv, p)
    ref, rs = new_inference_outputs(1)
    pure_kernels().inference.evaluate_inference(mv, hv, p.reshape(1, -1), ref, rs)
    assert int(rs[0]) == s
    if s == K.ST_NO_PRECISION:
        return
    for name, col in COLS.items():
        a, b = ref[0, col], o[col]
        assert abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-30), (name, a, b)


@settings(max_examples=200, deadline=None)
@given(models(), st.sampled_from(CHIPS), serve_plans(),
       st.sampled_from(["compute", "hbm_bw", "scale_up", "scale_out"]), st.floats(1.0, 4.0))
def test_more_hardware_never_slower(model, chip, p, key, factor):
    mv = pack_model(model)
    o1, s1 = run(mv, hardware(chip), p)
    o2, _ = run(mv, hardware(chip, {key: factor}), p)
    assume(s1 != K.ST_NO_PRECISION)
    assert o2[K.Q_TPOT] <= o1[K.Q_TPOT] * (1 + 1e-12)
    assert o2[K.Q_TTFT] <= o1[K.Q_TTFT] * (1 + 1e-12)


@settings(max_examples=150, deadline=None)
@given(models(), st.sampled_from(CHIPS), serve_plans())
def test_more_memory_more_kv_room_and_bigger_batch_slower_step(model, chip, p):
    mv = pack_model(model)
    o1, s1 = run(mv, hardware(chip), p)
    o2, s2 = run(mv, hardware(chip, {"hbm_capacity": 2.0}), p)
    assume(s1 != K.ST_NO_PRECISION)
    assert o2[K.Q_KV_CAP_TOKENS] >= o1[K.Q_KV_CAP_TOKENS]
    if s1 == K.ST_OK:
        assert s2 == K.ST_OK
    q = p.copy()
    q[K.I_BATCH] = p[K.I_BATCH] * 2
    o3, _ = run(mv, hardware(chip), q)
    assert o3[K.Q_TPOT] >= o1[K.Q_TPOT] * (1 - 1e-12)
    # decode step parts add up
    parts = o1[K.Q_D_LAYERS] + o1[K.Q_D_COMM] + o1[K.Q_D_OVERHEAD]
    assert parts == pytest.approx(o1[K.Q_TPOT] * p[K.I_SPEC_X100] / 100, rel=1e-9)


def test_experts_touched_closed_form():
    assert experts_touched(256, 8, 1) == pytest.approx(8)
    assert experts_touched(256, 8, 100_000) == pytest.approx(256)
    assert experts_touched(8, 2, 0) == 0


def test_decode_at_batch_one_is_weight_bound():
    """Llama 3 70B fp8 on one H200 at batch 1: TPOT ~ weights / achieved HBM bandwidth."""
    r = estimate_inference("llama3-70b", "h200", chips=1, input_len=128, output_len=128,
                           batch=1, precision="fp8", phase="decode")
    c = CAT.chip("h200")
    eff = CAT.efficiency().for_chip("h200-sxm")[1]
    floor_ms = r.weights_gb_per_chip / (c.hbm_gb_per_s * eff.hbm) * 1e3
    assert floor_ms <= r.tpot_ms <= 1.35 * floor_ms


def test_mla_kv_is_smaller_than_gqa_equivalent():
    v3 = estimate_inference("deepseek-v3", "h200", chips=8, input_len=4096, output_len=1024,
                            precision="fp8", tp=1, dp=8, ep=8)
    assert v3.max_batch_by_memory > 1000   # 70 KB/token of latent KV, not MB


def test_slo_respected_and_relaxing_it_helps():
    a = estimate_inference("llama3-8b", "h100", chips=1, input_len=1000, output_len=500, tpot_slo_ms=15)
    b = estimate_inference("llama3-8b", "h100", chips=1, input_len=1000, output_len=500, tpot_slo_ms=60)
    assert a.tpot_ms <= 15 and b.tpot_ms <= 60
    assert b.output_tokens_per_s >= a.output_tokens_per_s


def test_speculative_decoding_cuts_tpot():
    a = estimate_inference("llama3-70b", "h200", chips=1, input_len=512, output_len=256, batch=1, precision="fp8")
    b = estimate_inference("llama3-70b", "h200", chips=1, input_len=512, output_len=256, batch=1, precision="fp8",
                           spec_accept=2.0)
    assert b.tpot_ms < 0.6 * a.tpot_ms


def test_decode_with_zero_output_is_valid():
    r = estimate_inference("llama3-8b", "h100", chips=1, input_len=2000, output_len=0, phase="decode", batch=64)
    assert r.tpot_ms > 0 and r.output_tokens_per_s > 0


@pytest.mark.parametrize("kw,exc,fragment", [
    (dict(phase="e2e", output_len=0), InputError, "output-len > 0"),
    (dict(input_len=-5), InputError, "input-len"),
    (dict(phase="middle"), InputError, "--phase"),
    (dict(tpot_slo_ms=0.01), InfeasibleError, "TPOT SLO"),
    (dict(tp=3), PlanError, "tp"),
    (dict(precision="int3"), InputError, "precision"),
])
def test_bad_input(kw, exc, fragment):
    args = dict(chips=8, input_len=1000, output_len=200)
    args.update(kw)
    with pytest.raises(exc) as e:
        estimate_inference("llama3-70b", "h100", **args)
    assert fragment in str(e.value)


def test_model_that_cannot_fit_says_numbers():
    with pytest.raises(InfeasibleError) as e:
        estimate_inference("llama3-405b", "rtx-4090", chips=1, input_len=100, output_len=10)
    assert "does not fit at batch 1" in str(e.value) and "GB" in str(e.value)


def cli(*args):
    return subprocess.run([sys.executable, "-c", "from estimator.cli.app import main; main()", *args],
                          capture_output=True, text=True, timeout=600)


def test_infer_cli_json_schema():
    r = cli("infer", "--model", "llama3-70b", "--chip", "h200", "--chips", "8", "--input-len", "1000",
            "--output-len", "500", "--precision", "fp8", "--tpot-slo-ms", "30", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for k in ("ttft_ms", "tpot_ms", "batch", "output_tokens_per_s", "output_tokens_per_s_per_chip",
              "input_tokens_per_s_per_chip", "kv_cache_gb_per_chip", "weights_gb_per_chip", "fits",
              "plan", "breakdown_ms"):
        assert k in d
    assert d["tpot_ms"] <= 30 and d["fits"]


def test_serve_size_cli_disaggregated():
    r = cli("serve-size", "--model", "llama3-70b", "--chip", "h100", "--qps", "10", "--input-len", "2000",
            "--output-len", "300", "--tpot-slo-ms", "50", "--ttft-slo-ms", "3000", "--precision", "fp8",
            "--disaggregate", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["prefill_chips"] > 0 and d["decode_chips"] > 0
    assert d["chips"] == d["prefill_chips"] + d["decode_chips"]
    assert d["kv_transfer_ms"] > 0 and d["ttft_ms"] <= 3000


@pytest.mark.parametrize("args,fragment", [
    (["infer", "--model", "llama3-8b", "--chip", "h100", "--chips", "1", "--input-len", "10", "--output-len", "0"], "output-len"),
    (["infer", "--model", "llama3-8b", "--chip", "h100", "--chips", "1", "--input-len", "-1", "--output-len", "5"], "input-len"),
    (["infer", "--model", "llama3-8b", "--chip", "h100", "--chips", "1", "--input-len", "100", "--output-len", "5",
      "--tpot-slo-ms", "0.001"], "SLO"),
    (["serve-size", "--model", "llama3-8b", "--chip", "h100", "--qps", "0", "--input-len", "10", "--output-len", "5"], "qps"),
])
def test_infer_cli_bad_input(args, fragment):
    r = cli(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and fragment in r.stderr, r.stderr
