"""Fuzzed loaders (no exception but our typed errors escapes) and numbers at the edges."""
import csv
import math
import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from estimator.errors import SuanliError
from estimator.specs import ChipSpec, ModelSpec, SystemSpec
from estimator.training import estimate_training
from estimator.validate import validate_file
from estimator.yamlio import parse_yaml_mapping, validate_mapping

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
trees = st.recursive(scalars, lambda ch: st.one_of(st.lists(ch, max_size=4),
                                                     st.dictionaries(st.text(string.ascii_lowercase + "_", max_size=12), ch, max_size=5)),
                     max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_fuzz_yaml_text(text):
    try:
        data = parse_yaml_mapping(text, "fuzz.yaml")
        for model in (ChipSpec, SystemSpec, ModelSpec):
            try:
                validate_mapping(model, data, "fuzz.yaml")
            except SuanliError:
                pass
    except SuanliError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["id", "name", "vendor", "layers", "hidden", "heads", "kv_heads",
                                        "ffn_hidden", "ffn_act", "vocab", "source", "peak_tflops", "memory",
                                        "tdp_w", "scale_up", "scale_out", "moe", "attention", "chip"]), trees,
                       max_size=12))
def test_fuzz_spec_mappings(data):
    text = yaml.safe_dump(data)
    for model in (ChipSpec, SystemSpec, ModelSpec):
        try:
            validate_mapping(model, parse_yaml_mapping(text, "f.yaml"), "f.yaml")
        except SuanliError as e:
            assert "f.yaml" in str(e) and "\n" not in str(e)


HEADER = "id,model,chip,system,chips,tp,pp,dp,cp,ep,vpp,mbs,gbs,seq_len,precision,recompute,zero,metric,measured,source,notes"
cells = st.one_of(st.just(""), st.text(string.printable.replace(",", "").replace("\n", "").replace("\r", ""), max_size=8),
                  st.integers(-5, 100).map(str), st.sampled_from(["llama3-8b", "h100-sxm", "bf16", "fp8", "full",
                                                                   "tokens_per_s_per_chip", "mfu", "1e999", "nan"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(cells, min_size=21, max_size=21), min_size=1, max_size=3))
def test_fuzz_validation_csv(tmp_path, rows):
    p = tmp_path / "fuzz.csv"
    with open(p, "w", newline="") as f:    # csv.writer quotes cells with quotes or commas
        f.write(HEADER + "\n")
        csv.writer(f).writerows(rows)
    try:
        rep = validate_file(p)
    except SuanliError:
        return
    assert rep["summary"]["count"] + rep["summary"]["skipped"] == len(rows)
    for r in rep["rows"]:
        assert math.isfinite(r["predicted"]) and r["predicted"] > 0


@pytest.mark.parametrize("kw", [
    dict(chips=1, gbs=1, seq_len=1),
    dict(chips=1, gbs=8, seq_len=4096),
    dict(chips=100_000, gbs=100_000, seq_len=4096),
    dict(chips=64, gbs=64, seq_len=1_048_576),
])
def test_edges_give_finite_answers_or_clear_infeasibility(kw):
    try:
        r = estimate_training("llama3-8b", "h100-sxm", **kw)
    except SuanliError as e:
        msg = str(e)
        assert "\n" not in msg and ("does not fit" in msg or "plan" in msg), msg
        return
    d = r.to_dict()
    for v in [d["step_time_s"], d["tokens_per_s"], d["mfu"], d["hfu"], *d["breakdown_s"].values(),
              *d["memory_gb_per_chip"].values()]:
        assert math.isfinite(v) and v >= 0
    assert 0 < d["mfu"] <= 1 and d["fits"]


def test_million_token_context_fits_with_context_parallel():
    r = estimate_training("llama3-8b", "h100-sxm", chips=64, gbs=64, seq_len=1_048_576)
    assert r.plan["cp"] >= 8 and r.fits


def test_determinism_in_process():
    a = estimate_training("deepseek-v3", "h800", chips=256, gbs=512, seq_len=4096, precision="fp8").to_dict()
    b = estimate_training("deepseek-v3", "h800", chips=256, gbs=512, seq_len=4096, precision="fp8").to_dict()
    assert a == b
