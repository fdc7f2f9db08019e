"""The library surface (issue 13, item 3): exports, examples, precision='auto', errors that name
parameters, NaN/inf refused with the project's own error types, the README's Library section."""
import doctest
import inspect
import math
from pathlib import Path

import pytest

import estimator
from estimator import (InfeasibleError, InputError, JobSpec, SuanliError, estimate_inference,
                       estimate_training, search_plans)
from estimator.catalog import Catalog

ROOT = Path(__file__).resolve().parents[1]
CAT = Catalog(use_env=False)

EXPECTED = {"estimate_training", "search_plans", "estimate_inference", "serve_size", "size_for_time",
            "match_cluster", "fastest_under_power", "compare", "sweep", "validate_file", "Catalog",
            "JobSpec", "ClusterRow", "TrainingResult", "InferenceResult", "ServePlan", "SuanliError",
            "InputError", "SpecError", "UnknownIdError", "PlanError", "InfeasibleError", "warmup"}


def test_all_lists_the_public_names_and_each_resolves():
    assert EXPECTED <= set(estimator.__all__)
    for name in estimator.__all__:
        assert getattr(estimator, name) is not None, name


def test_import_is_cheap():
    """`import estimator` must not pull in numba (the CLI's listings never need it)."""
    import subprocess
    import sys
    code = "import sys, estimator; from estimator import Catalog, JobSpec; print('numba' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_export_has_a_docstring_with_an_example(name):
    doc = inspect.getdoc(getattr(estimator, name)) or ""
    assert doc.strip(), f"{name} has no docstring"
    assert ">>>" in doc, f"{name}'s docstring has no example"


@pytest.mark.parametrize("name", sorted(EXPECTED - {"warmup"}))
def test_docstring_examples_run(name):
    obj = getattr(estimator, name)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(obj, name, globs={})
    assert tests and any(t.examples for t in tests)
    for t in tests:
        runner.run(t)
    assert runner.failures == 0, f"{name}: {runner.failures} failing example(s)"


def test_readme_library_section_runs():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Library", 1)[1].split("\n## ", 1)[0]
    assert ">>>" in section
    test = doctest.DocTestParser().get_doctest(section, {}, "README Library", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0


def test_precision_auto_in_the_library():
    r = estimate_training("llama3-8b", "h100", chips=8, gbs=64, seq_len=4096, precision="auto", catalog=CAT)
    assert r.fits and r.plan["precision"] in ("bf16", "fp16", "fp8")
    # auto searches at least the bf16 plan: never slower than bf16 alone
    b = estimate_training("llama3-8b", "h100", chips=8, gbs=64, seq_len=4096, precision="bf16", catalog=CAT)
    assert r.tokens_per_s >= b.tokens_per_s
    s = search_plans("llama3-8b", "h100", chips=8, gbs=64, seq_len=4096, precision="auto", top=2, catalog=CAT)
    assert len(s["top"]) == 2
    i = estimate_inference("llama3-8b", "ascend-910b", chips=1, input_len=500, output_len=100,
                           precision="auto", catalog=CAT)
    assert i.plan["precision"] == "int8"           # 910B: no fp8 peak, an int8 one
    job = JobSpec(model="llama3-8b", precision="auto")
    assert job.precision is None


BASE = dict(chips=8, gbs=64, seq_len=4096)


@pytest.mark.parametrize("kw,param", [
    (dict(chips=0), "chips"), (dict(chips=float("nan")), "chips"), (dict(chips=20_000_000), "chips"),
    (dict(gbs=-1), "gbs"), (dict(seq_len=float("inf")), "seq_len"), (dict(tp=0), "tp"),
    (dict(tp=2.5), "tp"), (dict(recompute="most"), "recompute"), (dict(zero=5), "zero"),
    (dict(precision="fp6"), "precision"), (dict(tokens=float("nan")), "tokens"),
    (dict(tokens=1e30), "tokens"), (dict(tokens="lots"), "tokens"), (dict(top=0), "top"),
    (dict(overrides={"compute": float("nan")}), "overrides"), (dict(overrides={"compute": 1e-300}), "overrides"),
    (dict(overrides={"speed": 2.0}), "overrides"),
])
def test_training_errors_name_the_parameter_not_a_flag(kw, param):
    args = {**BASE, **kw}
    with pytest.raises(InputError) as e:
        estimate_training("llama3-8b", "h100", catalog=CAT, **args)
    msg = str(e.value)
    assert msg.startswith(param), msg
    assert "--" not in msg, msg
    assert e.value.param == param


@pytest.mark.parametrize("kw,param", [
    (dict(chips=float("nan")), "chips"), (dict(input_len=0), "input_len"),
    (dict(output_len=-1), "output_len"), (dict(tpot_slo_ms=float("nan")), "tpot_slo_ms"),
    (dict(ttft_slo_ms=float("inf")), "ttft_slo_ms"), (dict(spec_accept=float("nan")), "spec_accept"),
    (dict(spec_accept=40.0), "spec_accept"), (dict(phase="middle"), "phase"),
    (dict(precision="int3"), "precision"), (dict(kv_precision="fp2"), "kv_precision"),
    (dict(output_len=0), "output_len"), (dict(batch=0), "batch"),
])
def test_inference_errors_name_the_parameter(kw, param):
    args = {**dict(chips=8, input_len=1000, output_len=200), **kw}
    with pytest.raises(InputError) as e:
        estimate_inference("llama3-8b", "h100", catalog=CAT, **args)
    assert str(e.value).startswith(param) and "--" not in str(e.value), str(e.value)


@pytest.mark.parametrize("field,value", [
    ("pue", float("nan")), ("pue", 0.5), ("mtbf_chip_h", float("inf")), ("ckpt_gb_per_s_per_node", float("nan")),
    ("restart_s", -1.0), ("gbs", 0), ("tokens", float("inf")), ("overrides", {"hbm_bw": float("nan")}),
])
def test_jobspec_refuses_bad_numbers(field, value):
    with pytest.raises(InputError) as e:
        JobSpec(model="llama3-8b", **{field: value})
    assert "--" not in str(e.value)


def test_sizing_and_serving_refuse_nan_and_absurd_values():
    from estimator import compare, fastest_under_power, serve_size, size_for_time
    job = JobSpec(model="llama3-8b", gbs=64, seq_len=4096, tokens="1T")
    for call in (lambda: size_for_time(job, "h100", float("nan"), catalog=CAT),
                 lambda: fastest_under_power(job, "h100", float("inf"), catalog=CAT),
                 lambda: compare(job, ["h100"], equal_power_mw=float("nan"), catalog=CAT),
                 lambda: serve_size("llama3-8b", "h100", qps=float("nan"), input_len=10, output_len=10, catalog=CAT),
                 lambda: serve_size("llama3-8b", "h100", qps=1e9, input_len=10, output_len=10, catalog=CAT),
                 lambda: serve_size("llama3-8b", "h100", qps=1, input_len=10, output_len=10, pue=float("nan"),
                                    catalog=CAT)):
        with pytest.raises(InputError) as e:
            call()
        assert "--" not in str(e.value) and "nan" not in str(e.value).split("(got")[0]


def test_every_library_error_is_ours():
    """A few hostile inputs: only SuanliError subclasses come out, never ValueError/ZeroDivision."""
    cases = [dict(chips=1, gbs=1, seq_len=1), dict(chips=3, gbs=7, seq_len=5),
             dict(chips=10_000_000, gbs=1, seq_len=8192)]
    for kw in cases:
        try:
            r = estimate_training("llama3-405b", "rtx-4090", catalog=CAT, **kw)
            assert math.isfinite(r.tokens_per_s)
        except SuanliError:
            pass
    with pytest.raises(InfeasibleError):
        estimate_training("llama3-405b", "rtx-4090", chips=8, gbs=8, seq_len=4096, catalog=CAT)


def test_derate_is_noted_in_the_result():
    r = estimate_training("llama3-8b", "h100", catalog=CAT, overrides={"hbm_bw": 0.8}, **BASE)
    assert any("hbm_bw x 0.8" in n for n in r.notes)
    s = search_plans("llama3-8b", "h100", catalog=CAT, overrides={"hbm_bw": 0.8}, **BASE)
    assert s["derate"] == {"hbm_bw": 0.8}
