"""The jitted training kernel equals the same source run un-jitted (relative 1e-9), on
generated models, chips and plans; the parallel runner and the per-batch memo never change an
answer. (Physics is tested against closed forms in tests/test_closed_forms.py.)"""
import math

import numpy as np
from hypothesis import given, settings, strategies as st

from estimator.packing import pack_model
from kernels import layout as K
from kernels.training import evaluate_training, evaluate_training_parallel, new_outputs
from strategies import CHIPS, STACKS, hardware, models, plans, stack_vector
from unjitted import pure_kernels


def close(a, b):
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-30)


@settings(max_examples=300, deadline=None)
@given(models(), st.sampled_from(CHIPS), st.sampled_from(STACKS),
       st.lists(plans(), min_size=1, max_size=8))
def test_jitted_equals_unjitted(model, chip, stack, plan_list):
    pure = pure_kernels().training
    mv = pack_model(model)
    hv = hardware(chip)
    sv = stack_vector(stack)
    P = np.array(plan_list)
    out, status = new_outputs(len(P))
    evaluate_training(mv, hv, sv, P, out, status)
    ref, ref_status = new_outputs(len(P))
    pure.evaluate_training(mv, hv, sv, P, ref, ref_status)
    assert np.array_equal(status, ref_status)
    for i in range(len(P)):
        if status[i] == K.ST_NO_PRECISION:
            continue
        for col in range(K.O_SIZE):
            assert close(ref[i, col], out[i, col]), (col, ref[i, col], out[i, col], P[i])


def test_parallel_kernel_equals_serial():
    from estimator.catalog import Catalog
    from estimator.plans import Workload, enumerate_plans

    m = Catalog(use_env=False).model("llama3-70b")
    P = enumerate_plans(m, Workload(512, 1024, 8192), {}, ["bf16", "fp8"])
    hv = hardware("h100-sxm")
    mv = pack_model(m)
    sv = stack_vector()
    a, sa = new_outputs(len(P))
    b, sb = new_outputs(len(P))
    evaluate_training(mv, hv, sv, P, a, sa)
    evaluate_training_parallel(mv, hv, sv, P, b, sb)
    assert np.array_equal(a, b) and np.array_equal(sa, sb)


def test_memo_never_changes_an_answer():
    """The kernel reuses layer-level results between consecutive plans; shuffling the plans
    (other neighbours) or evaluating each plan alone must give bit-identical outputs."""
    from estimator.catalog import Catalog
    from estimator.plans import Workload, enumerate_plans

    for name in ("llama3-70b", "deepseek-v3"):
        m = Catalog(use_env=False).model(name)
        P = enumerate_plans(m, Workload(256, 512, 4096), {}, ["bf16", "fp8"])
        mv, hv, sv = pack_model(m), hardware("h800"), stack_vector()
        a, sa = new_outputs(len(P))
        evaluate_training(mv, hv, sv, P, a, sa)
        perm = np.random.default_rng(0).permutation(len(P))
        b, sb = new_outputs(len(P))
        evaluate_training(mv, hv, sv, P[perm], b, sb)
        assert np.array_equal(a[perm], b) and np.array_equal(sa[perm], sb)
        c, sc = new_outputs(len(P))
        evaluate_training_parallel(mv, hv, sv, P, c, sc, block=1)
        assert np.array_equal(a, c) and np.array_equal(sa, sc)
        # and the memo-free evaluation of each plan alone agrees exactly
        from kernels.training import train_one
        for i in range(0, len(P), max(1, len(P) // 50)):
            o = np.zeros(a.shape[1])
            assert train_one(mv, hv, sv, P[i], o) == sa[i]
            assert np.array_equal(o, a[i])
