"""Inference: jitted kernel vs the same source un-jitted, properties, closed forms, CLI and bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from estimator.catalog import Catalog
from estimator.errors import InfeasibleError, InputError, PlanError, SpecError, UnknownIdError
from estimator.inference import estimate_inference
from estimator.packing import pack_model, pack_serving_stack
from kernels import layout as K
from kernels.inference import (decode_attention, ep_imbalance, evaluate_inference, experts_touched,
                               new_inference_outputs)
from strategies import CHIPS, hardware, models
from unjitted import pure_kernels

CAT = Catalog(use_env=False)
COLS = {"ttft": K.Q_TTFT, "tpot": K.Q_TPOT, "out_tok_s": K.Q_OUT_TOK_S, "in_tok_s": K.Q_IN_TOK_S,
        "mem_weights": K.Q_MEM_WEIGHTS, "mem_kv": K.Q_MEM_KV, "mem_act": K.Q_MEM_ACT,
        "mem_total": K.Q_MEM_TOTAL, "kv_cap_tokens": K.Q_KV_CAP_TOKENS, "d_weights": K.Q_D_WEIGHTS,
        "d_kv": K.Q_D_KV, "d_layers": K.Q_D_LAYERS, "d_comm": K.Q_D_COMM, "d_overhead": K.Q_D_OVERHEAD,
        "p_compute": K.Q_P_COMPUTE, "p_comm": K.Q_P_COMM, "p_overhead": K.Q_P_OVERHEAD,
        "d_attn": K.Q_D_ATTN, "d_moe_a2a": K.Q_D_MOE_A2A, "d_draft": K.Q_D_DRAFT,
        "d_prefill": K.Q_D_PREFILL, "imbalance": K.Q_IMBALANCE, "seq_kv": K.Q_SEQ_KV,
        "tpot_e2e": K.Q_TPOT_E2E}
assert sorted(COLS.values()) == list(range(K.Q_SIZE))
STACKS = ["trt-llm", "vllm", "sglang", "mindie", "vllm-ascend", "other"]


def stack_row(name: str) -> dict:
    return pack_serving_stack(CAT.serving_stack(name, "x")[1])


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
    d = draw(st.sampled_from([0, 0, 1, 3]))
    p[K.I_DRAFT] = d
    p[K.I_SPEC_X100] = draw(st.sampled_from([100, 100 + 50 * d, 100 + 100 * d]))
    p[K.I_TBO] = draw(st.integers(0, 1))
    for col, v in stack_row(draw(st.sampled_from(STACKS))).items():
        p[col] = v
    # flip some engine flags so every branch is reached
    for col in (K.I_GRAPHS, K.I_OVERLAP, K.I_MIXED, K.I_KV_ADMIT, K.I_CUSTOM_AR, K.I_A2A_LL,
                K.I_FUSED_QUANT, K.I_KV_OF_TOTAL):
        if draw(st.booleans()):
            p[col] = 1 - p[col]
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
    for col in (K.Q_TPOT, K.Q_TTFT, K.Q_TPOT_E2E):
        assert o2[col] <= o1[col] * (1 + 1e-12), col
    assert o2[K.Q_IN_TOK_S] >= o1[K.Q_IN_TOK_S] * (1 - 1e-12)


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
    # decode step parts add up to the step; the e2e cycle adds the prefill owed per step
    acc = p[K.I_SPEC_X100] / 100
    parts = o1[K.Q_D_LAYERS] + o1[K.Q_D_COMM] + o1[K.Q_D_OVERHEAD]
    assert parts == pytest.approx(o1[K.Q_TPOT] * acc, rel=1e-9)
    assert parts + o1[K.Q_D_PREFILL] == pytest.approx(o1[K.Q_TPOT_E2E] * acc, rel=1e-9)


def test_experts_touched_closed_form():
    assert experts_touched(256, 8, 1) == pytest.approx(8)
    assert experts_touched(256, 8, 100_000) == pytest.approx(256)
    assert experts_touched(8, 2, 0) == 0


def test_ep_imbalance_closed_form():
    """max/mean = 1 + sqrt(2 ln ep) * sqrt(1/c + cv^2/e): Poisson noise of c copies per rank
    plus expert popularity spread over e experts per rank (Gaussian extreme of ep ranks)."""
    assert ep_imbalance(100.0, 32.0, 1.0, 0.3) == 1.0
    z = np.sqrt(2 * np.log(8))
    assert ep_imbalance(512.0, 32.0, 8.0, 0.2) == pytest.approx(1 + z * np.sqrt(1 / 512 + 0.04 / 32))
    # more tokens per rank -> closer to balanced; more ranks -> worse
    assert ep_imbalance(4096.0, 4.0, 64.0, 0.0) < ep_imbalance(64.0, 4.0, 64.0, 0.0)
    assert ep_imbalance(512.0, 4.0, 256.0, 0.2) > ep_imbalance(512.0, 4.0, 8.0, 0.2)


def _plan(stack="trt-llm", **kv):
    p = np.zeros(K.I_SIZE, dtype=np.int64)
    base = dict(tp=1, pp=1, ep=1, dp=1, batch=64, inp=1000, out=0, wprec=K.WP_FP8, kvprec=K.KV_FP8,
                spec=100, draft=0, tbo=0)
    base.update(kv)
    cols = dict(tp=K.I_TP, pp=K.I_PP, ep=K.I_EP, dp=K.I_DP, batch=K.I_BATCH, inp=K.I_IN, out=K.I_OUT,
                wprec=K.I_WPREC, kvprec=K.I_KVPREC, spec=K.I_SPEC_X100, draft=K.I_DRAFT, tbo=K.I_TBO)
    for col, v in stack_row(stack).items():
        p[col] = v
    for k, v in base.items():
        p[cols[k]] = v
    return p


def test_speculative_verification_reads_kv_once():
    """Verifying 1 + d tokens per sequence reads the KV cache once: the KV stream time does
    not change with d, the attention FLOPs scale with 1 + d."""
    mv, hv = pack_model(CAT.model("llama3-70b")), hardware("h200-sxm")
    o0, _ = run(mv, hv, _plan(inp=4000))
    o3, _ = run(mv, hv, _plan(inp=4000, draft=3, spec=250))
    assert o3[K.Q_D_KV] == pytest.approx(o0[K.Q_D_KV], rel=1e-12)
    assert o3[K.Q_D_DRAFT] > 0 and o0[K.Q_D_DRAFT] == 0
    # 2.5 tokens per step for a dearer step: TPOT drops, but by less than 2.5x
    assert o0[K.Q_TPOT] / 2.5 < o3[K.Q_TPOT] < o0[K.Q_TPOT]
    p = _plan(stack="trt-llm", inp=4000)
    t1 = decode_attention(mv, hv, p, 64.0, 1.0, 4000.0)
    t4 = decode_attention(mv, hv, p, 64.0, 4.0, 4000.0)
    assert t4 >= t1


def test_kv_admission_policy_closed_form():
    """reserve_full holds input + output tokens per sequence, on_demand the mean over a
    request's life, input + output/2 (non-windowed model, no drafts)."""
    mv, hv = pack_model(CAT.model("llama3-70b")), hardware("h200-sxm")
    full = _plan(stack="trt-llm", inp=1000, out=2000)
    mean = full.copy()
    mean[K.I_KV_ADMIT] = K.KVA_MEAN
    of, _ = run(mv, hv, full)
    om, _ = run(mv, hv, mean)
    assert of[K.Q_SEQ_KV] == 3000 and om[K.Q_SEQ_KV] == 2000
    assert of[K.Q_KV_CAP_TOKENS] == om[K.Q_KV_CAP_TOKENS]
    assert om[K.Q_MEM_KV] == pytest.approx(of[K.Q_MEM_KV] * 2000 / 3000)


def test_tp_attention_moe_has_no_dispatch_but_dp_attention_does():
    """With TP attention every rank holds every token: experts run in place and the TP
    all-reduce combines (no all-to-all). With attention DP the tokens are dispatched."""
    mv, hv = pack_model(CAT.model("deepseek-v3")), hardware("h200-sxm")
    o_tp, _ = run(mv, hv, _plan(tp=8, ep=8, dp=1, batch=64, inp=2000))
    o_dp, _ = run(mv, hv, _plan(tp=1, ep=8, dp=8, batch=512, inp=2000))
    assert o_tp[K.Q_D_MOE_A2A] == 0.0
    assert o_dp[K.Q_D_MOE_A2A] > 0.0


def test_graphs_and_overlap_never_hurt():
    mv, hv = pack_model(CAT.model("llama3-8b")), hardware("b200")
    p = _plan(stack="vllm", batch=1, inp=500, wprec=K.WP_BF16, kvprec=K.KV_BF16)
    eager = p.copy()
    eager[K.I_GRAPHS] = 0
    overlap = p.copy()
    overlap[K.I_OVERLAP] = 1
    o, _ = run(mv, hv, p)
    oe, _ = run(mv, hv, eager)
    oo, _ = run(mv, hv, overlap)
    assert oe[K.Q_TPOT] > o[K.Q_TPOT]          # batch 1, 8B model on B200: eager is host-bound
    assert oo[K.Q_TPOT] <= o[K.Q_TPOT] and oo[K.Q_D_OVERHEAD] <= o[K.Q_D_OVERHEAD]


def test_separate_prefill_iterations_cost_the_saturated_rate():
    """Without mixed batching each decode step owes B * acc * I / O prefill tokens, run at the
    saturated prefill rate (per DP group)."""
    mv, hv = pack_model(CAT.model("llama3-70b")), hardware("h100-sxm")
    p = _plan(stack="sglang", tp=2, batch=128, inp=1500, out=500)
    o, _ = run(mv, hv, p)
    need = 128 * 1500 / 500
    assert o[K.Q_D_PREFILL] == pytest.approx(need / o[K.Q_IN_TOK_S], rel=1e-9)


def test_decode_at_batch_one_is_weight_bound():
    """Llama 3 70B fp8 on one H200 at batch 1: TPOT ~ weights / the class's fp8 weight-stream
    rate (efficiency.yaml serve_weight_stream), plus per-kernel floors."""
    r = estimate_inference("llama3-70b", "h200", chips=1, input_len=128, output_len=128,
                           batch=1, precision="fp8", phase="decode")
    c = CAT.chip("h200")
    eff = CAT.efficiency().for_chip("h200-sxm")[1]
    floor_ms = r.weights_gb_per_chip / (c.hbm_gb_per_s * eff.serve_weight_stream["fp8"]) * 1e3
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
    assert b.plan["spec_draft"] == 1
    assert b.tpot_ms < 0.75 * a.tpot_ms


def test_kv_precision_input_doubles_room():
    a = estimate_inference("llama3-70b", "h100", chips=2, input_len=2000, output_len=500,
                           precision="fp8", tp=2, kv_precision="bf16")
    b = estimate_inference("llama3-70b", "h100", chips=2, input_len=2000, output_len=500,
                           precision="fp8", tp=2, kv_precision="fp8")
    assert a.plan["kv_precision"] == "bf16" and b.plan["kv_precision"] == "fp8"
    assert b.max_batch_by_memory == pytest.approx(2 * a.max_batch_by_memory, rel=0.01)


def test_stack_flags_shape_the_answer():
    kw = dict(chips=2, input_len=2000, output_len=500, precision="fp8", tp=2)
    trt = estimate_inference("llama3-70b", "h100", stack="trt-llm", **kw)
    vllm = estimate_inference("llama3-70b", "h100", stack="vllm", **kw)
    assert trt.stack == "trt-llm" and vllm.stack == "vllm"
    # on-demand paged KV admits more sequences than full-length reservation
    assert vllm.max_batch_by_memory > trt.max_batch_by_memory
    default = estimate_inference("llama3-70b", "h100", **kw)
    assert default.stack == "trt-llm"
    assert estimate_inference("qwen3-32b", "ascend-910b", chips=2, input_len=1000, output_len=200,
                              precision="int8").stack == "mindie"
    other = estimate_inference("llama3-70b", "h100", stack="in-house", **kw)
    assert other.stack == "other" and any("in-house" in n for n in other.notes)


def test_decode_with_zero_output_is_valid():
    r = estimate_inference("llama3-8b", "h100", chips=1, input_len=2000, output_len=0, phase="decode", batch=64)
    assert r.tpot_ms > 0 and r.output_tokens_per_s > 0


def test_prefill_batch_that_cannot_fill_the_pipeline_is_latency_bound():
    """A prefill-only batch of one iteration crosses pp stages one after another."""
    kw = dict(chips=2, input_len=2048, output_len=0, phase="prefill", batch=1, precision="fp8")
    pp2 = estimate_inference("llama3-70b", "h100", pp=2, **kw)
    assert pp2.input_tokens_per_s_per_chip * 2 == pytest.approx(2048 / (pp2.ttft_ms / 1e3), rel=0.05)


@pytest.mark.parametrize("kw,exc,fragment", [
    (dict(phase="e2e", output_len=0), InputError, "output-len > 0"),
    (dict(input_len=-5), InputError, "input-len"),
    (dict(phase="middle"), InputError, "--phase"),
    (dict(tpot_slo_ms=0.01), InfeasibleError, "TPOT SLO"),
    (dict(tp=3), PlanError, "tp"),
    (dict(precision="int3"), InputError, "precision"),
    (dict(spec_accept=3.0, spec_draft=1), InputError, "spec-accept"),
    (dict(spec_accept=float("nan")), InputError, "spec-accept"),
    (dict(stack="tensorrt"), UnknownIdError, "tensorrt"),
    (dict(stack="megatron-core"), SpecError, "not a serving stack"),
    (dict(stack="mindie", precision="fp8"), InputError, "does not serve fp8"),
    (dict(kv_precision="fp4"), InputError, "kv-precision"),
])
def test_bad_input(kw, exc, fragment):
    args = dict(chips=8, input_len=1000, output_len=200)
    args.update(kw)
    with pytest.raises(exc) as e:
        estimate_inference("llama3-70b", "h100", **args)
    assert fragment in str(e.value)


def test_fp8_kv_needs_fp8_support():
    with pytest.raises(InputError) as e:
        estimate_inference("qwen3-32b", "ascend-910b", chips=2, input_len=100, output_len=10,
                           precision="int8", kv_precision="fp8")
    assert "fp8" in str(e.value)


def test_model_that_cannot_fit_says_numbers():
    with pytest.raises(InfeasibleError) as e:
        estimate_inference("llama3-405b", "rtx-4090", chips=1, input_len=100, output_len=10)
    assert "does not fit at batch 1" in str(e.value) and "GB" in str(e.value)


def test_batch_too_big_names_the_kv_room():
    with pytest.raises(InfeasibleError) as e:
        estimate_inference("llama3-70b", "h100", chips=2, input_len=8000, output_len=2000,
                           precision="fp8", tp=2, batch=5000)
    assert "does not fit in memory" in str(e.value) and "--kv-precision" in str(e.value)


def cli(*args):
    return subprocess.run([sys.executable, "-c", "from estimator.cli.app import main; main()", *args],
                          capture_output=True, text=True, timeout=600)


def test_infer_cli_json_schema():
    r = cli("infer", "--model", "llama3-70b", "--chip", "h200", "--chips", "8", "--input-len", "1000",
            "--output-len", "500", "--precision", "fp8", "--tpot-slo-ms", "30", "--stack", "vllm",
            "--spec-accept", "1.7", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for k in ("ttft_ms", "tpot_ms", "batch", "output_tokens_per_s", "output_tokens_per_s_per_chip",
              "input_tokens_per_s_per_chip", "kv_cache_gb_per_chip", "weights_gb_per_chip", "fits",
              "plan", "breakdown_ms", "stack", "expert_imbalance"):
        assert k in d
    assert d["tpot_ms"] <= 30 and d["fits"] and d["stack"] == "vllm"
    assert d["plan"]["spec_draft"] == 1 and d["plan"]["spec_accept"] == pytest.approx(1.7)


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
    (["infer", "--model", "llama3-8b", "--chip", "h100", "--chips", "1", "--input-len", "100", "--output-len", "5",
      "--stack", "nosuch"], "nosuch"),
    (["infer", "--model", "llama3-8b", "--chip", "h100", "--chips", "1", "--input-len", "100", "--output-len", "5",
      "--spec-draft", "99"], "spec-draft"),
    (["serve-size", "--model", "llama3-8b", "--chip", "h100", "--qps", "0", "--input-len", "10", "--output-len", "5"], "qps"),
])
def test_infer_cli_bad_input(args, fragment):
    r = cli(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and fragment in r.stderr, r.stderr
