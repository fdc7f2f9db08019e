"""Speed of the training core, reported as ratios and counts measured in one run.

Gates (fail CI when the core gets ~2x slower than when the gate was set):
* numba kernel vs the same kernel source run un-jitted (plain Python), per plan, for a dense
  model (Llama 3 70B) and a fine-grained MoE (DeepSeek-V3);
* full search for llama3-405b on 16,384 H100 evaluates every valid plan (count recorded).
Absolute plans/s are recorded in the JSON report (extra_info), never asserted: shared
machines are noisy. JIT compilation happens before any timed region.
"""
import time

import numpy as np

from estimator.catalog import Catalog
from estimator.packing import pack_model
from estimator.plans import Workload, enumerate_plans
from estimator.training import estimate_training
from kernels.training import evaluate_training, evaluate_training_parallel, new_outputs
from strategies import hardware, stack_vector
from timing import interleaved_best
from unjitted import pure_kernels

CAT = Catalog(use_env=False)


def _plans(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = CAT.model("llama3-70b")
    P = enumerate_plans(m, Workload(1024, 1024, 8192), {}, ["bf16", "fp8"])
    reps = -(-n // len(P))
    return pack_model(m), hardware("h100-sxm"), stack_vector(), np.tile(P, (reps, 1))[:n]


def _best(fn, rounds=3):
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _jit_ratio(benchmark, mv, hv, sv, P, n_kernel, n_ref, rounds, label):
    """Per-plan time of the jitted kernel vs the same source un-jitted, timed alternately (best
    of ``rounds`` each); the full batch is the benchmark report's figure. Returns the ratio."""
    out, st = new_outputs(len(P))
    evaluate_training(mv, hv, sv, P[:10], out[:10], st[:10])          # compile outside timing
    benchmark.pedantic(evaluate_training, args=(mv, hv, sv, P, out, st), rounds=3, iterations=1)
    pure = pure_kernels().training
    ro, rs = new_outputs(n_ref)
    t_kernel, t_ref = interleaved_best(
        lambda: evaluate_training(mv, hv, sv, P[:n_kernel], out[:n_kernel], st[:n_kernel]),
        lambda: pure.evaluate_training(mv, hv, sv, P[:n_ref], ro, rs), rounds=rounds)
    per_kernel, per_ref = t_kernel / n_kernel, t_ref / n_ref
    ratio = per_ref / per_kernel
    benchmark.extra_info.update({"plans": len(P), "kernel_plans_per_s": 1 / per_kernel,
                                 "unjitted_plans_per_s": 1 / per_ref, "speedup_vs_unjitted": ratio})
    print(f"\n{label}kernel {1 / per_kernel:,.0f} plans/s; un-jitted {1 / per_ref:,.0f} plans/s; x{ratio:,.0f}")
    return ratio


def test_kernel_vs_unjitted_ratio(benchmark):
    ratio = _jit_ratio(benchmark, *_plans(1_000_000), 300_000, 2_000, 7, "")
    # the un-jitted run uses the same per-batch memo, so this is the JIT's own gain. Timed
    # alternately, best of 7 each (~0.1 s per turn). Measured x214-223 on shared 2-core
    # machines since the per-plan path is inlined (x114-186 before); the gate trips at about 2x
    # slower than that
    assert ratio >= 100


def test_moe_kernel_vs_unjitted_ratio(benchmark):
    """The same gate for a fine-grained MoE model (DeepSeek-V3 on 1,024 H100, stack nemo: the
    MoE layer blocks, EP overlap and expert-TP choices in play)."""
    m = CAT.model("deepseek-v3")
    feats = CAT.stack("nemo", "")[1].training.features
    P = enumerate_plans(m, Workload(1024, 4096, 4096), {}, ["bf16", "fp8"], feats)[:400_000]
    mv, hv, sv = pack_model(m), hardware("h100-sxm"), stack_vector("nemo")
    ratio = _jit_ratio(benchmark, mv, hv, sv, P, 200_000, 1_500, 5, "MoE ")
    # measured x238 on a shared 2-core machine (6.5 M plans/s); trips at about 2x slower
    assert ratio >= 100


def test_parallel_scaling(benchmark):
    mv, hv, sv, P = _plans(400_000)
    out, st = new_outputs(len(P))
    evaluate_training(mv, hv, sv, P[:10], out[:10], st[:10])
    evaluate_training_parallel(mv, hv, sv, P[:10], out[:10], st[:10])
    t1 = _best(lambda: evaluate_training(mv, hv, sv, P, out, st))
    benchmark.pedantic(evaluate_training_parallel, args=(mv, hv, sv, P, out, st), rounds=3, iterations=1)
    tp = benchmark.stats.stats.min
    import numba
    benchmark.extra_info.update({"threads": numba.get_num_threads(), "serial_plans_per_s": len(P) / t1,
                                 "parallel_plans_per_s": len(P) / tp, "parallel_speedup": t1 / tp})
    print(f"\nprange speed-up on {numba.get_num_threads()} threads: x{t1 / tp:.2f}")
    assert t1 / tp > 0.5  # never a pathological slowdown


def test_search_llama3_405b_16k_h100(benchmark):
    kw = dict(chips=16384, gbs=2048, seq_len=8192, catalog=CAT)
    estimate_training("llama3-405b", "h100-sxm", **kw)   # warm: JIT + catalog load
    res = benchmark.pedantic(estimate_training, args=("llama3-405b", "h100-sxm"), kwargs=kw,
                             rounds=3, iterations=1)
    n = res.search["evaluated"]
    t = benchmark.stats.stats.min
    benchmark.extra_info.update({"plans_evaluated": n, "plans_per_s": n / t, "best_plan": res.plan})
    print(f"\n405B / 16,384 H100: {n:,} plans in {t:.3f} s warm -> {res.plan}")
    assert n > 10_000 and res.fits
