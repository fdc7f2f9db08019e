"""Speed of the serving core, reported as ratios and counts measured in one run.

Gates (fail when the core gets ~2x slower than when the gate was set):
* serving kernel vs the same kernel source run un-jitted (plain Python), per plan;
* the serving search for deepseek-v3 on 32 H800 under TPOT/TTFT SLOs, with the kernel jitted vs
  the same search with the kernel un-jitted (everything else identical).
Absolute seconds and plans/s are recorded in the JSON report (extra_info), never asserted:
shared machines are noisy. JIT compilation happens before any timed region.
"""
import time

import numpy as np

import estimator.inference as inference
from estimator.catalog import Catalog
from estimator.inference import estimate_inference
from estimator.packing import pack_model, pack_serving_stack
from kernels import layout as K
from kernels.inference import evaluate_inference_serial, new_inference_outputs
from strategies import hardware
from timing import interleaved_best
from unjitted import pure_kernels

CAT = Catalog(use_env=False)
SEARCH = dict(chips=32, input_len=2000, output_len=500, precision="fp8", tpot_slo_ms=50,
              ttft_slo_ms=2000, catalog=CAT)


def _best(fn, rounds=3):
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _plans(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Serving plans for deepseek-v3 on H800: parallel layouts x batches, TRT-LLM and SGLang."""
    rows = []
    for stack in ("trt-llm", "sglang"):
        flags = pack_serving_stack(CAT.serving_stack(stack, "x")[1])
        for tp, dp in ((1, 32), (2, 16), (4, 8), (8, 4)):
            for ep in (8, 16, 32):
                for b in (32, 64, 128, 256, 512, 1024):
                    for tbo in (0, 1):
                        p = np.zeros(K.I_SIZE, dtype=np.int64)
                        p[[K.I_TP, K.I_PP, K.I_EP, K.I_DP, K.I_TBO]] = (tp, 1, ep, dp, tbo)
                        p[[K.I_BATCH, K.I_IN, K.I_OUT]] = (b * dp, 2000, 500)
                        p[[K.I_WPREC, K.I_KVPREC, K.I_SPEC_X100]] = (K.WP_FP8, K.KV_FP8, 100)
                        for col, v in flags.items():
                            p[col] = v
                        rows.append(p)
    P = np.array(rows)
    reps = -(-n // len(P))
    return pack_model(CAT.model("deepseek-v3")), hardware("h800"), np.tile(P, (reps, 1))[:n]


def test_serving_kernel_vs_unjitted_ratio(benchmark):
    mv, hv, P = _plans(20_000)
    out, st = new_inference_outputs(len(P))
    evaluate_inference_serial(mv, hv, P[:10], out[:10], st[:10])        # compile outside timing
    benchmark.pedantic(evaluate_inference_serial, args=(mv, hv, P, out, st), rounds=3, iterations=1)
    n_kernel, n_ref = 10_000, 200
    pure = pure_kernels().inference
    ro, rs = new_inference_outputs(n_ref)
    t_kernel, t_ref = interleaved_best(
        lambda: evaluate_inference_serial(mv, hv, P[:n_kernel], out[:n_kernel], st[:n_kernel]),
        lambda: pure.evaluate_inference(mv, hv, P[:n_ref], ro, rs), rounds=5)
    per_kernel, per_ref = t_kernel / n_kernel, t_ref / n_ref
    ratio = per_ref / per_kernel
    benchmark.extra_info.update({"plans": len(P), "kernel_plans_per_s": 1 / per_kernel,
                                 "unjitted_plans_per_s": 1 / per_ref, "speedup_vs_unjitted": ratio})
    print(f"\nserving kernel {1 / per_kernel:,.0f} plans/s on one thread; un-jitted "
          f"{1 / per_ref:,.0f} plans/s; x{ratio:,.0f}")
    # measured x110 on the dev machine (80k plans/s per thread); the gate trips at about 2x
    # slower than that
    assert ratio >= 50


def test_serving_search_deepseek_v3_32_chips(benchmark, monkeypatch):
    """Issue #11: batch x parallelism x two-batch-overlap search for deepseek-v3 on 32 H800
    under TPOT and TTFT limits, well under a second warm; ratio against the same search with
    the kernel un-jitted."""
    estimate_inference("deepseek-v3", "h800", **SEARCH)                    # warm: JIT + catalog
    r = benchmark.pedantic(estimate_inference, args=("deepseek-v3", "h800"), kwargs=SEARCH,
                           rounds=3, iterations=1)
    t_jit = benchmark.stats.stats.min
    monkeypatch.setattr(inference, "evaluate_inference", pure_kernels().inference.evaluate_inference)
    t_pure = _best(lambda: estimate_inference("deepseek-v3", "h800", **SEARCH), rounds=1)
    ratio = t_pure / t_jit
    benchmark.extra_info.update({"evaluated": r.search["evaluated"], "plans": r.search["plans"],
                                 "seconds": t_jit, "seconds_unjitted": t_pure,
                                 "speedup_vs_unjitted": ratio})
    print(f"\ndeepseek-v3 / 32 H800 serving search: {r.search['evaluated']:,} evaluations in "
          f"{t_jit:.3f} s warm (un-jitted kernel {t_pure:.1f} s, x{ratio:,.0f})")
    assert r.tpot_ms <= 50 and r.ttft_ms <= 2000 and r.search["evaluated"] > 1000
    # measured x48-x140 on the (shared) dev machine (0.04-0.12 s vs 5.7 s); the gate trips at
    # about 2x slower than the low end
    assert ratio >= 20
