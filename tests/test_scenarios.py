"""Scenario files, year-by-year selection, the roadmap search and the parity logic.

Small clusters and an 8B model keep this fast; no predicted speed is hard-coded: the tests
check mechanisms (availability, classes, caps, pruning, determinism, bands) and invariants.
"""
import math
import textwrap

import pytest

from estimator.catalog import Catalog
from estimator.errors import InputError, SpecError, UnknownIdError
from estimator.scenarios import roadmap as R
from estimator.scenarios.export_control import CLASS_A, CLASS_UNKNOWN
from estimator.scenarios.loader import load_scenario, scenario_files
from estimator.scenarios.select import ScenarioView, quarter_index, usable_in
from estimator.specs.common import Availability

BUILTIN = ("domestic-only", "domestic-plus-licensed", "unrestricted")


@pytest.fixture(scope="module")
def cat():
    return Catalog(use_env=False)


def write(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


SMALL = """\
id: small
name: small test scenario
description: a handful of parts
rules:
  - years: "2020:2035"
    allow:
      - chips: [h100-sxm, h20, gb200, ascend-910c, rubin]
    source: test
"""


def small_query(**kw):
    base = dict(model="llama3-8b", tokens=1e12, gbs=256, seq_len=4096, chips=64)
    base.update(kw)
    return R.Query(**base)


# ------------------------------------------------------------------ loading
def test_builtin_scenarios_load_and_name_sources(cat):
    files = scenario_files(cat)
    for sid in BUILTIN:
        assert sid in files
        scn, origin = load_scenario(sid, cat)
        assert scn.id == sid and origin.endswith(".yaml")
        for item in [*scn.rules, *scn.caps]:
            assert (item.source or "").strip() or (item.assumption or "").strip()


BAD = [
    ("unknown chip", SMALL.replace("h20,", "h2O,"), "rules.0.allow.0.chips", "unknown chip 'h2O'"),
    ("unknown vendor", SMALL.replace("chips: [h100-sxm, h20, gb200, ascend-910c, rubin]", "vendors: [Nvidea]"),
     "rules.0.allow.0.vendors", "Nvidea"),
    ("zero cap", SMALL + "caps:\n  - {years: 2025, max_chips: 0, source: x}\n", "caps.0.max_chips", "positive"),
    ("negative cap", SMALL + "caps:\n  - {years: 2025, max_chips: -5, source: x}\n", "caps.0.max_chips", "positive"),
    ("zero power", SMALL + "caps:\n  - {years: 2025, max_power_mw: 0, source: x}\n", "caps.0.max_power_mw", "positive"),
    ("negative power", SMALL + "caps:\n  - {years: 2025, max_power_mw: -1.5, source: x}\n", "caps.0.max_power_mw", "positive"),
    ("nan power", SMALL + "caps:\n  - {years: 2025, max_power_mw: .nan, source: x}\n", "caps.0.max_power_mw", "finite"),
    ("cap without source", SMALL + "caps:\n  - {years: 2025, max_chips: 10}\n", "caps.0", "assumption"),
    ("cap with two limits", SMALL + "caps:\n  - {years: 2025, max_chips: 10, max_power_mw: 5, source: x}\n",
     "caps.0", "exactly one"),
    ("years backwards", SMALL.replace('"2020:2035"', '"2030:2020"'), "rules.0.years", "backwards"),
    ("bad class", SMALL.replace("chips: [h100-sxm, h20, gb200, ascend-910c, rubin]", "classes: [3A090.z]"),
     "rules.0.allow.0.classes", "unknown export class"),
    ("rule without effect", SMALL.replace("    allow:\n      - chips: [h100-sxm, h20, gb200, ascend-910c, rubin]\n", ""),
     "rules.0", "allow"),
    ("unknown field", SMALL + "colour: red\n", "colour", "unknown field"),
    ("malformed", SMALL.replace("rules:", "rules: [unclosed"), None, "malformed YAML"),
]


@pytest.mark.parametrize("what,text,field,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_scenarios_one_line(cat, tmp_path, what, text, field, fragment):
    p = write(tmp_path, text)
    with pytest.raises(SpecError) as ei:
        load_scenario(str(p), cat)
    msg = str(ei.value)
    assert "\n" not in msg
    assert str(p) in msg
    if field:
        assert f": {field}" in msg
    assert fragment in msg


def test_unknown_scenario_id_suggests(cat):
    with pytest.raises(UnknownIdError) as ei:
        load_scenario("domestic-onyl", cat)
    assert "domestic-only" in str(ei.value)


# ------------------------------------------------------------------ selection
def test_quarters_and_lag():
    av = Availability(year=2026, quarter=4, basis="announcement", source="t", confidence="roadmap")
    assert not usable_in(av, 2025)
    assert usable_in(av, 2026)
    assert not usable_in(av, 2026, lag_quarters=1)
    assert usable_in(av, 2027, lag_quarters=4)
    no_q = Availability(year=2026, basis="shipment", source="t", confidence="reported")
    assert quarter_index(no_q) == quarter_index(av)         # no quarter: counts from Q4
    assert not usable_in(None, 2030)


@pytest.mark.parametrize("sid", BUILTIN)
def test_never_before_available(cat, sid):
    view = ScenarioView(load_scenario(sid, cat)[0], cat)
    for year in range(2019, 2032):
        opts, excluded, _ = view.options(year)
        for o in opts:
            for part in (o.chip, o.system):
                assert part.available is not None
                assert part.available.year <= year, (sid, year, part.id)
                assert usable_in(part.available, year)
        for lag in (2, 5):
            for o in view.options(year, lag)[0]:
                for part in (o.chip, o.system):
                    assert quarter_index(part.available) + lag <= year * 4 + 3


def test_class_deny_never_selected(cat, tmp_path):
    p = write(tmp_path, """\
        id: no-3a090a
        name: controlled parts forbidden
        description: every Nvidia, AMD and Huawei part below 3A090.a
        rules:
          - years: "2020:2035"
            allow:
              - vendors: [NVIDIA, AMD, Huawei]
            deny:
              - classes: [3A090.a]
            source: test
        """)
    view = ScenarioView(load_scenario(str(p), cat)[0], cat)
    seen = set()
    for year in range(2022, 2031):
        opts, excluded, _ = view.options(year)
        for o in opts:
            assert o.export.klass != CLASS_A
            assert CLASS_A not in o.export.possible()        # an unknown class could be 3A090.a
            seen.add(o.chip.id)
    assert "h20" in seen                                     # 2,368 TPP: not 3A090
    assert "h100-sxm" not in seen and "gb200" not in seen


def test_allow_by_class_does_not_admit_unknown(cat, tmp_path):
    spec = tmp_path / "specs"
    (spec / "chips").mkdir(parents=True)
    src = (cat.origin("chip", "h20"))
    text = open(src).read()
    text = text.replace("id: h20\n", "id: h20-blind\n").replace("aliases: [h20-96gb, hgx-h20-gpu]", "aliases: []")
    lines = [ln if not ln.startswith("die_area_mm2:") else
             'die_area_mm2: {value: null, source: "test", note: "hidden for the test"}' for ln in text.splitlines()]
    (spec / "chips" / "h20-blind.yaml").write_text("\n".join(lines) + "\n")
    ucat = Catalog(spec_dirs=[spec], use_env=False)
    p = write(tmp_path, """\
        id: below
        name: below the thresholds
        description: Nvidia parts not in 3A090
        rules:
          - years: "2020:2035"
            allow:
              - vendors: [NVIDIA]
                classes: [none]
            source: test
        """)
    view = ScenarioView(load_scenario(str(p), ucat)[0], ucat)
    assert view.export(ucat.chip("h20-blind")).klass == CLASS_UNKNOWN
    ok, why = view.allowed(ucat.chip("h20-blind"), 2025)
    assert not ok and "class is unknown" in why
    assert view.allowed(ucat.chip("h20"), 2025)[0]


def test_deny_beats_allow(cat, tmp_path):
    p = write(tmp_path, SMALL.replace("    source: test\n", "    deny:\n      - chips: [h20]\n    source: test\n"))
    view = ScenarioView(load_scenario(str(p), cat)[0], cat)
    ok, why = view.allowed(cat.chip("h20"), 2025)
    assert not ok and "denied" in why


# ------------------------------------------------------------------ small pure helpers
def test_counts_upto_by_hand():
    # node 8, limit 100: k = m x 2^a <= 12 -> {1,2,3,4,5,6,7,8,10,12}; top three 8, 10, 12
    assert R.counts_upto(8, 100) == [64, 80, 96]
    assert R.counts_upto(8, 7) == []
    assert R.counts_upto(384, 384) == [384]


def test_fp8_only_part_trains_in_fp8_with_derived_bf16(cat):
    rubin = cat.chip("rubin")
    assert rubin.peak("bf16") is None and rubin.peak("fp8") is not None
    prec, view, notes, why = R.training_precision(rubin, small_query())
    assert prec == "fp8" and why == ""
    assert view.peak("bf16") == pytest.approx(rubin.peak("fp8") / 2)
    assert view.peak_tflops.bf16.confidence == "estimated"
    assert any("FP8" in n for n in notes)
    prec, _, _, why = R.training_precision(rubin, small_query(derive_bf16=False))
    assert prec is None and "16-bit" in why


def test_query_frames_are_exclusive():
    for kw in (dict(chips=64, power_mw=10.0), dict(chips=None), dict(chips=None, supply=True, power_mw=1.0),
               dict(chips=0), dict(chips=None, power_mw=-3.0), dict(precision="fp4")):
        with pytest.raises(InputError):
            small_query(**kw).check()


# ------------------------------------------------------------------ parity on synthetic numbers
def pts(*rows):
    keys = ("year", "a", "b", "a_lo", "a_hi", "b_lo", "b_hi")
    return [dict(zip(keys, r + (None,) * (7 - len(r)))) for r in rows]


def test_parity_never():
    p = R.parity_year(pts((2025, 10.0, 5.0), (2026, 9.0, 4.0), (2027, 8.0, 3.0)))
    assert p["year"] is None


def test_parity_when_lead_disappears():
    p = R.parity_year(pts((2025, 10.0, 5.0), (2026, 8.0, 5.0), (2027, 5.0, 5.0), (2028, 4.0, 5.0)))
    assert p["year"] == 2027 and p["how"] == "lead disappears" and p["lost_again_in"] is None


def test_parity_inside_band():
    # 2026: a 12 (9-15) vs b 8 (6-10): the intervals overlap, though a is slower
    p = R.parity_year(pts((2025, 12.0, 8.0, 11.0, 13.0, 7.0, 9.0), (2026, 12.0, 8.0, 9.0, 15.0, 6.0, 10.0)))
    assert p["year"] == 2026 and p["how"] == "lead inside the band"


def test_parity_skips_missing_years_and_notes_loss():
    p = R.parity_year(pts((2025, None, 5.0), (2026, 4.0, 5.0), (2027, 9.0, 5.0)))
    assert p["year"] == 2026 and p["lost_again_in"] == 2027


# ------------------------------------------------------------------ the search
def run_small(cat, tmp_path, **kw):
    p = write(tmp_path, SMALL, "small.yaml")
    views = [ScenarioView(load_scenario(str(p), cat)[0], cat)]
    return R.run_roadmap(views, list(range(2023, 2028)), small_query(**kw), cat)


def test_rows_respect_availability_and_limits(cat, tmp_path):
    out = run_small(cat, tmp_path)
    assert [r.year for r in out["rows"]] == list(range(2023, 2028))
    for r in out["rows"]:
        assert r.found
        c, s = cat.chip(r.chip), cat.system(r.system)
        assert c.available.year <= r.year and s.available.year <= r.year
        assert 0 < r.chips <= 64 and r.chips % s.chips_per_node == 0
        assert r.binding == "chips"
        assert r.days_with_failures >= r.days > 0
        assert r.confidence in ("official", "reported", "estimated", "roadmap")
        assert r.roadmap == (c.status == "roadmap" or s.status == "roadmap"
                             or "roadmap" in (c.available.confidence, s.available.confidence))
    rates = [r.rate for r in out["rows"]]
    assert all(b >= a * (1 - 1e-12) for a, b in zip(rates, rates[1:]))   # options only accumulate


def test_pruning_never_changes_the_answer(cat, tmp_path, monkeypatch):
    pruned = run_small(cat, tmp_path)
    monkeypatch.setattr(R, "PRUNE_MARGIN", math.inf)
    full = run_small(cat, tmp_path)
    assert full["evaluations"] >= pruned["evaluations"]
    for a, b in zip(pruned["rows"], full["rows"]):
        assert (a.chip, a.system, a.chips, a.tokens_per_s) == (b.chip, b.system, b.chips, b.tokens_per_s)


def test_deterministic(cat, tmp_path):
    a = run_small(cat, tmp_path)
    b = run_small(cat, tmp_path)
    assert [r.to_dict() for r in a["rows"]] == [r.to_dict() for r in b["rows"]]


def test_supply_cap_binds(cat, tmp_path):
    p = write(tmp_path, SMALL + "caps:\n  - {years: \"2020:2035\", max_chips: 40, source: test}\n", "capped.yaml")
    views = [ScenarioView(load_scenario(str(p), cat)[0], cat)]
    out = R.run_roadmap(views, [2025], small_query(chips=None, supply=True), cat)
    r = out["rows"][0]
    assert r.found and r.binding == "supply" and r.chips <= 40 and r.limit_chips == 40


def test_power_limit_respected(cat, tmp_path):
    p = write(tmp_path, SMALL, "small.yaml")
    views = [ScenarioView(load_scenario(str(p), cat)[0], cat)]
    out = R.run_roadmap(views, [2024, 2025], small_query(chips=None, power_mw=0.2), cat)
    for r in out["rows"]:
        assert r.found and r.binding == "power" and r.power_mw <= 0.2 + 1e-9


def test_band_used_when_the_estimator_gives_one(cat, tmp_path, monkeypatch):
    real = R.estimate_training

    def banded(*a, **k):
        r = real(*a, **k)
        r.tokens_per_s_p10 = r.tokens_per_s * 0.8
        r.tokens_per_s_p90 = r.tokens_per_s * 1.1
        return r

    monkeypatch.setattr(R, "estimate_training", banded)
    out = run_small(cat, tmp_path)
    assert out["band"] != "not available"
    for r in out["rows"]:
        assert r.days_p10 == pytest.approx(r.days_with_failures / 1.1)
        assert r.days_p90 == pytest.approx(r.days_with_failures / 0.8)


def test_no_band_says_so(cat, tmp_path):
    probe = R.estimate_training("llama3-8b", "h100-sxm", chips=8, gbs=64, seq_len=4096, catalog=cat)
    out = run_small(cat, tmp_path)
    if getattr(probe, "tokens_per_s_p10", None) is None:      # today's estimator gives no band
        assert out["band"] == "not available"
        assert all(r.days_p10 is None and r.days_p90 is None for r in out["rows"])
    else:                                                     # once it does, the rows carry it
        assert all(r.days_p10 <= r.days_with_failures <= r.days_p90 for r in out["rows"])


def test_two_scenarios_ratio_and_parity(cat, tmp_path):
    a = write(tmp_path, SMALL.replace("id: small", "id: slow").replace(
        "[h100-sxm, h20, gb200, ascend-910c, rubin]", "[h20]"), "slow.yaml")
    b = write(tmp_path, SMALL.replace("id: small", "id: fast").replace(
        "[h100-sxm, h20, gb200, ascend-910c, rubin]", "[h100-sxm, h20]"), "fast.yaml")
    views = [ScenarioView(load_scenario(str(x), cat)[0], cat) for x in (a, b)]
    out = R.run_roadmap(views, [2024, 2025], small_query(), cat)
    for x in out["ratios"]:
        assert x["reference_lead"] == pytest.approx(x["challenger_days"] / x["reference_days"])
        assert x["reference_lead"] >= 1 - 1e-9           # the reference may also use the H20
    assert out["parity"]["challenger"] == "slow" and out["parity"]["reference"] == "fast"
    leads = [x["reference_lead"] for x in out["ratios"]]
    expected = next((y for y, l in zip([2024, 2025], leads) if l <= 1), None)
    assert out["parity"]["year"] == expected


def test_year_range_with_nothing_available(cat):
    view = ScenarioView(load_scenario("domestic-only", cat)[0], cat)
    with pytest.raises(InputError) as ei:
        R.run_roadmap([view], [1995, 1996], small_query(), cat)
    assert "domestic-only" in str(ei.value) and "\n" not in str(ei.value)


def test_reference_run_6nd(cat):
    ref = R.reference_run(1e26, cat)
    assert ref["model"] == R.REFERENCE_MODEL
    assert 6 * ref["params"] * ref["tokens"] == pytest.approx(1e26)
    with pytest.raises(InputError):
        R.reference_run(float("nan"), cat)


@pytest.mark.parametrize("bad,field", [
    ({"year": 2024, "quarter": 5, "basis": "shipment", "source": "s", "confidence": "reported"}, "available.quarter"),
    ({"year": "2024", "basis": "shipment", "source": "s", "confidence": "reported"}, "available.year"),
    ({"year": 2024, "basis": "rumour", "source": "s", "confidence": "reported"}, "available.basis"),
    ({"year": 2024, "basis": "shipment", "source": " ", "confidence": "reported"}, "available.source"),
    ({"year": 2024, "basis": "shipment", "source": "s", "confidence": "guess"}, "available.confidence"),
])
def test_bad_availability_is_one_line(cat, bad, field):
    from estimator.specs import ChipSpec
    from estimator.yamlio import validate_mapping

    d = cat.chip("h20").model_dump(mode="json", exclude_none=True)
    d["available"] = bad
    with pytest.raises(SpecError) as ei:
        validate_mapping(ChipSpec, d, "my-chip.yaml")
    assert f"my-chip.yaml: {field}" in str(ei.value) and "\n" not in str(ei.value)


def test_every_catalog_part_has_a_sourced_availability(cat):
    for kind in ("chip", "system"):
        for x in cat.all(kind):
            assert x.available is not None, x.id
            assert x.available.source.strip()
            if x.status == "roadmap" and x.available.basis == "announcement":
                assert x.available.confidence == "roadmap", x.id
