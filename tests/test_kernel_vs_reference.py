"""The numba kernel equals the plain-Python reference model (relative 1e-9)."""
import math

import numpy as np
from hypothesis import given, settings, strategies as st

from estimator.packing import pack_model
from estimator.reference.training import train_step
from kernels import layout as K
from kernels.training import evaluate_training, evaluate_training_parallel, new_outputs
from strategies import CHIPS, hardware, models, plans

COLS = {"step": K.O_STEP, "t_compute": K.O_T_COMPUTE, "t_recompute": K.O_T_RECOMPUTE,
        "t_tp": K.O_T_TP, "t_cp": K.O_T_CP, "t_ep": K.O_T_EP, "t_pp": K.O_T_PP, "t_dp": K.O_T_DP,
        "t_bubble": K.O_T_BUBBLE, "t_optimizer": K.O_T_OPTIMIZER, "t_straggler": K.O_T_STRAGGLER,
        "mem_weights": K.O_MEM_WEIGHTS, "mem_grads": K.O_MEM_GRADS, "mem_opt": K.O_MEM_OPT,
        "mem_act": K.O_MEM_ACT, "mem_total": K.O_MEM_TOTAL, "tokens_per_s": K.O_TOKENS_PER_S,
        "model_flops_tok": K.O_MODEL_FLOPS_TOK, "hw_flops_tok": K.O_HW_FLOPS_TOK}


def close(a, b):
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-30)


@settings(max_examples=300, deadline=None)
@given(models(), st.sampled_from(CHIPS), st.lists(plans(), min_size=1, max_size=8))
def test_kernel_matches_reference(model, chip, plan_list):
    mv = pack_model(model)
    hv = hardware(chip)
    P = np.array(plan_list)
    out, status = new_outputs(len(P))
    evaluate_training(mv, hv, P, out, status)
    for i, p in enumerate(P):
        ref = train_step(mv, hv, p)
        assert ref["status"] == status[i]
        if ref["status"] == K.ST_NO_PRECISION:
            continue
        for name, col in COLS.items():
            assert close(ref[name], out[i, col]), (name, ref[name], out[i, col], p)


def test_parallel_kernel_equals_serial():
    from estimator.catalog import Catalog
    from estimator.plans import Workload, enumerate_plans

    m = Catalog(use_env=False).model("llama3-70b")
    P = enumerate_plans(m, Workload(512, 1024, 8192), {}, ["bf16", "fp8"])
    hv = hardware("h100-sxm")
    mv = pack_model(m)
    a, sa = new_outputs(len(P))
    b, sb = new_outputs(len(P))
    evaluate_training(mv, hv, P, a, sa)
    evaluate_training_parallel(mv, hv, P, b, sb)
    assert np.array_equal(a, b) and np.array_equal(sa, sb)


def test_memo_never_changes_an_answer():
    """The kernel reuses layer-level results between consecutive plans; shuffling the plans
    (other neighbours) or evaluating each plan alone must give bit-identical outputs."""
    from estimator.catalog import Catalog
    from estimator.plans import Workload, enumerate_plans

    for name in ("llama3-70b", "deepseek-v3"):
        m = Catalog(use_env=False).model(name)
        P = enumerate_plans(m, Workload(256, 512, 4096), {}, ["bf16", "fp8"])
        mv, hv = pack_model(m), hardware("h800")
        a, sa = new_outputs(len(P))
        evaluate_training(mv, hv, P, a, sa)
        perm = np.random.default_rng(0).permutation(len(P))
        b, sb = new_outputs(len(P))
        evaluate_training(mv, hv, P[perm], b, sb)
        assert np.array_equal(a[perm], b) and np.array_equal(sa[perm], sb)
        c, sc = new_outputs(len(P))
        evaluate_training_parallel(mv, hv, P, c, sc, block=1)
        assert np.array_equal(a, c) and np.array_equal(sa, sc)
