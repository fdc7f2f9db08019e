"""Uncertainty bands: p10 <= value <= p90 on every estimate, honest coverage, and the parts of the
band behave as documented (estimator/fitting/bands.py)."""
import math

import numpy as np
import pytest

from estimator.catalog import Catalog
from estimator.fitting.bands import (Z90, BandTable, ModelBand, between_source_sd, combine,
                                     conformal_quantiles)
from estimator.training import estimate_training
from estimator.validate import cross_validate_file

CAT = Catalog(use_env=False)
MOE = {"deepseek-v3", "gpt-oss-120b", "qwen3-30b-a3b", "qwen3-235b-a22b", "mixtral-8x7b"}


def test_conformal_quantiles_closed_form():
    # n = 19: the ceil(20 x 0.1) = 2nd and ceil(20 x 0.9) = 18th order statistics
    v = list(range(19))
    assert conformal_quantiles(v) == (1.0, 17.0)
    assert conformal_quantiles([0.3]) == (0.3, 0.3)
    assert all(math.isnan(x) for x in conformal_quantiles([]))


def test_between_source_sd_closed_form():
    # two rows per source, no noise inside a source: the sd of the source means
    groups = ["a", "a", "b", "b", "c", "c"]
    x = [0.1, 0.1, -0.1, -0.1, 0.0, 0.0]
    assert between_source_sd(groups, x) == pytest.approx(0.1)
    assert between_source_sd(["a", "b"], [0.1, -0.1]) == 0.0      # too few sources to tell


def test_combine_adds_independent_parts_in_quadrature():
    mb = ModelBand(-0.3, 0.4, 20, True, "test", 0.0)
    lo, hi = combine(100.0, mb, 100.0, 100.0)
    assert lo == pytest.approx(100 * math.exp(-0.3)) and hi == pytest.approx(100 * math.exp(0.4))
    lo2, hi2 = combine(100.0, mb, 100 * math.exp(-0.4), 100 * math.exp(0.3))
    assert lo2 == pytest.approx(100 * math.exp(-0.5)) and hi2 == pytest.approx(100 * math.exp(0.5))
    mb3 = ModelBand(0.0, 0.0, 20, True, "test", 0.1)
    lo3, hi3 = combine(100.0, mb3, 100.0, 100.0)
    assert hi3 == pytest.approx(100 * math.exp(Z90 * 0.1))


@pytest.mark.parametrize("chip", ["h100-sxm", "ascend-910b", "mi300x", "ascend-910c"])
def test_every_training_estimate_carries_its_band(chip):
    r = estimate_training("llama3-8b", chip, chips=64, gbs=256, seq_len=4096, precision="bf16",
                          tokens=1e12, catalog=CAT)
    assert r.tokens_per_s_p10 < r.tokens_per_s < r.tokens_per_s_p90
    assert r.step_time_s_p10 < r.step_time_s < r.step_time_s_p90
    assert r.mfu_p10 < r.mfu < r.mfu_p90
    assert r.days_to_train_p10 < r.days_to_train < r.days_to_train_p90
    assert r.band["model_error"]


def test_an_uncalibrated_class_says_so_and_is_wider():
    """mi300x has no measured runs (generic class): labelled uncalibrated, band at least the
    pooled spread widened, and wider than a calibrated class's on the same job."""
    kw = dict(chips=64, gbs=256, seq_len=4096, precision="bf16", catalog=CAT)
    amd = estimate_training("llama3-8b", "mi300x", **kw)
    nv = estimate_training("llama3-8b", "a100-sxm4-80gb", **kw)
    assert amd.band["calibrated"] is False and nv.band["calibrated"] is True
    assert any("uncalibrated" in n for n in amd.notes)
    width = lambda r: math.log(r.tokens_per_s_p90 / r.tokens_per_s_p10)  # noqa: E731
    assert width(amd) > width(nv)


def test_less_certain_specs_widen_the_band():
    """The same chip with its key figures marked `estimated` instead of `official` gets a wider
    spec part of the band (the plan is re-evaluated at the ends of wider ranges)."""
    from estimator.fitting.bands import spec_spread

    c = CAT.chip("h100-sxm")
    s = CAT.system_for(c, None)
    official = spec_spread(c, s)
    mem = c.memory.model_copy(update={"bandwidth_gb_per_s": c.memory.bandwidth_gb_per_s.model_copy(
        update={"confidence": "estimated"})})
    est = spec_spread(c.model_copy(update={"memory": mem}), s)
    assert est["hbm_bw"] > official["hbm_bw"]


def test_coverage_of_cross_validated_predictions(data_dir):
    """Issue #10: the share of measured values inside [p10, p90] on cross-validated predictions
    is 70-90%. Each source's band is built only from the other sources' cross-validated
    residuals (conformal quantiles plus the between-source shift), as a new source would see."""
    rep = cross_validate_file(data_dir / "validation" / "training.csv", CAT, "source")
    rows, cv = rep["rows"], rep["log_residuals"]["cv"]
    inside = n = 0
    for r, c in zip(rows, cv):
        if not np.isfinite(c):
            continue
        kind = r["model"] in MOE
        others = [(o, x) for o, x in zip(rows, cv)
                  if o["group"] != r["group"] and (o["model"] in MOE) == kind and np.isfinite(x)]
        q10, q90 = conformal_quantiles([-x for _, x in others])
        tau = between_source_sd([o["group"] for o, _ in others], [-x for _, x in others])
        lo = -math.sqrt(min(q10, 0) ** 2 + (Z90 * tau) ** 2)
        hi = math.sqrt(max(q90, 0) ** 2 + (Z90 * tau) ** 2)
        inside += lo <= -c <= hi
        n += 1
    assert n >= 45
    assert 0.70 <= inside / n <= 0.90, inside / n


def test_coverage_of_serving_predictions_leaving_each_source_out(data_dir):
    """Issue #10, serving: each source's band from the other sources' residuals (serving fits
    no parameter, so these are out-of-sample), widened by the between-source shift; with fewer
    than MIN_SHIFT_SOURCES effective sources (Kish) the shift is at least the dense-training one."""
    import csv

    from estimator.fitting.bands import MIN_SHIFT_SOURCES
    from estimator.validate import validate_file

    path = data_dir / "validation" / "inference.csv"
    src = {r["id"]: r["source"] for r in csv.DictReader(open(path, encoding="utf-8"))}
    rep = validate_file(path, CAT)
    rows = [(src[r["id"]], math.log(r["measured"] / r["predicted"])) for r in rep["rows"]]
    ref = CAT.uncertainty().data["kinds"]["training"]["between_source_sd"]
    inside = 0
    for s, x in rows:
        others = [(o, y) for o, y in rows if o != s]
        q10, q90 = conformal_quantiles([y for _, y in others])
        tau = between_source_sd([o for o, _ in others], [y for _, y in others])
        sizes = {}
        for o, _ in others:
            sizes[o] = sizes.get(o, 0) + 1
        if len(others) ** 2 / sum(v * v for v in sizes.values()) < MIN_SHIFT_SOURCES:
            tau = max(tau, ref)
        lo = -math.sqrt(min(q10, 0) ** 2 + (Z90 * tau) ** 2)
        hi = math.sqrt(max(q90, 0) ** 2 + (Z90 * tau) ** 2)
        inside += lo <= x <= hi
    assert len(rows) >= 60
    assert 0.70 <= inside / len(rows) <= 0.90, inside / len(rows)


def test_shipped_band_table_loads_and_covers_every_calibrated_class():
    t = CAT.uncertainty()
    assert isinstance(t, BandTable)
    for cls in ("nvidia-ampere", "nvidia-hopper", "ascend"):
        b = t.model_band("training", cls)
        assert b.calibrated and b.q10 <= 0 <= b.q90 and b.shift_sd > 0


def test_serving_estimates_carry_bands_that_bracket_the_value():
    """Serving: p10 <= value <= p90 for throughput; times run the other way (p10 = fast end);
    TPOT and output tokens/s come from one factor (batch fixed): tokens/s x TPOT is constant."""
    from estimator.inference import estimate_inference

    r = estimate_inference("llama3-70b", "h100", chips=8, input_len=2000, output_len=500, catalog=CAT)
    assert r.output_tokens_per_s_p10 < r.output_tokens_per_s < r.output_tokens_per_s_p90
    assert r.tpot_ms_p10 < r.tpot_ms < r.tpot_ms_p90
    assert r.ttft_ms_p10 < r.ttft_ms < r.ttft_ms_p90
    assert r.input_tokens_per_s_per_chip_p10 < r.input_tokens_per_s_per_chip < r.input_tokens_per_s_per_chip_p90
    k = r.output_tokens_per_s * r.tpot_ms
    assert r.output_tokens_per_s_p10 * r.tpot_ms_p90 == pytest.approx(k, rel=1e-9)
    assert r.output_tokens_per_s_p90 * r.tpot_ms_p10 == pytest.approx(k, rel=1e-9)
    assert r.band["calibrated"] is True and "serving" in r.band["model_error"]


def test_serving_band_of_a_class_without_serving_runs_is_wider():
    from estimator.inference import estimate_inference

    kw = dict(chips=8, input_len=2000, output_len=500, catalog=CAT)
    nv = estimate_inference("llama3-8b", "h100", **kw)
    amd = estimate_inference("llama3-8b", "mi300x", **kw)
    width = lambda r: math.log(r.output_tokens_per_s_p90 / r.output_tokens_per_s_p10)  # noqa: E731
    assert amd.band["calibrated"] is False and width(amd) > width(nv)


def test_validate_serving_rows_carry_bands(data_dir):
    from estimator.validate import validate_file

    rep = validate_file(data_dir / "validation" / "inference.csv", catalog=CAT)
    assert all(x["p10"] <= x["predicted"] <= x["p90"] for x in rep["rows"])
    assert 0.0 < rep["summary"]["coverage"] <= 1.0
