"""`suanli roadmap`, `chips --export`, `chip`, `check` on scenarios: JSON shape, files written,
determinism, and one clear line with exit code 2 for each bad input."""
import csv
import json
import sys
import textwrap
from pathlib import Path

import pytest

from estimator.cli.app import main

SMALL = """\
id: {id}
name: test scenario {id}
description: a few parts
rules:
  - years: "2020:2035"
    allow:
      - chips: [{chips}]
    source: test
"""


def run(args, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["suanli", *map(str, args)])
    with pytest.raises(SystemExit) as ex:
        main()
    out = capsys.readouterr()
    return ex.value.code, out.out, out.err


def scenario(tmp_path, sid, chips, extra=""):
    p = tmp_path / f"{sid}.yaml"
    p.write_text(textwrap.dedent(SMALL.format(id=sid, chips=chips)) + extra)
    return p


BASE = ["roadmap", "--model", "llama3-8b", "--tokens", "1T", "--chips", "64", "--gbs", "256",
        "--seq-len", "4096", "--years", "2024:2026"]


def test_roadmap_json_plot_csv(tmp_path, capsys, monkeypatch):
    a = scenario(tmp_path, "slow", "h20, ascend-910c")
    b = scenario(tmp_path, "fast", "h100-sxm, gb200, rubin")
    png, table = tmp_path / "r.png", tmp_path / "r.csv"
    code, out, err = run(BASE + ["--scenario", a, "--vs", b, "--json", "--plot", png, "--csv", table],
                         capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    for k in ("question", "model", "tokens", "frame", "years", "scenarios", "rows", "ratios", "parity",
              "band", "assumptions", "exclusions"):
        assert k in d
    assert d["years"] == [2024, 2025, 2026]
    assert len(d["rows"]) == 6 and {r["scenario"] for r in d["rows"]} == {"slow", "fast"}
    for r in d["rows"]:
        for k in ("year", "chip", "system", "chips", "binding", "plan", "days", "days_with_failures",
                  "days_p10", "days_p90", "power_mw", "energy_mwh", "confidence", "roadmap", "notes"):
            assert k in r
    assert [x["year"] for x in d["ratios"]] == [2024, 2025, 2026]
    assert "text" in d["parity"] and (d["parity"]["year"] is None or 2024 <= d["parity"]["year"] <= 2026)
    assert d["band"] in ("not available", "p10-p90 from the estimator")
    assert any(r["roadmap"] for r in d["rows"] if r["year"] == 2026 and r["scenario"] == "fast") or \
        all(r["chip"] != "rubin" for r in d["rows"])
    assert png.stat().st_size > 1000
    rows = list(csv.DictReader(open(table)))
    assert len(rows) == 6 and {"year", "scenario", "chip", "days_with_failures", "reference_lead"} <= set(rows[0])


def test_roadmap_same_inputs_same_answer(tmp_path, capsys, monkeypatch):
    a = scenario(tmp_path, "one", "h100-sxm, h20")
    outs = [run(BASE + ["--scenario", a, "--json"], capsys, monkeypatch) for _ in range(2)]
    assert outs[0][0] == outs[1][0] == 0
    assert outs[0][1] == outs[1][1]


def test_roadmap_table_mentions_band_and_roadmap(tmp_path, capsys, monkeypatch):
    a = scenario(tmp_path, "rm", "rubin, h100-sxm")
    code, out, err = run(BASE + ["--scenario", a], capsys, monkeypatch)
    assert code == 0, err
    assert "band:" in out and "roadmap" in out


@pytest.mark.parametrize("extra,fragment", [
    (["--flops", "1e26"], "--flops replaces --model"),                           # flops with model
    (["--power-mw", "10"], "exactly one of --chips"),                             # two frames
    (["--years", "2030:2025"], "--years"),
    (["--years", "1995:1996"], "no allowed chip"),                                # nothing available
    (["--plot", "no/such/dir/x.png"], "does not exist"),
    (["--plot", "x.jpg"], ".png"),
    (["--assume-tdp", "h20"], "CHIP=WATTS"),
    (["--precision", "fp4"], "bf16 or fp8"),
])
def test_roadmap_bad_flags_one_line(tmp_path, capsys, monkeypatch, extra, fragment):
    a = scenario(tmp_path, "one", "h100-sxm, h20")
    code, out, err = run(BASE + ["--scenario", a] + extra, capsys, monkeypatch)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in err


def test_flops_without_model_and_missing_run(capsys, monkeypatch):
    code, _, err = run(["roadmap", "--scenario", "domestic-only", "--chips", "64"], capsys, monkeypatch)
    assert code == 2 and "--flops" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("extra,fragment", [
    ("", None),                                                               # good file
    ("caps:\n  - {years: 2025, max_chips: 0, source: x}\n", "caps.0.max_chips"),
    ("caps:\n  - {years: 2025, max_power_mw: -4, source: x}\n", "caps.0.max_power_mw"),
    ("rules: [oops\n", "malformed YAML"),
])
def test_check_and_roadmap_on_scenario_files(tmp_path, capsys, monkeypatch, extra, fragment):
    p = scenario(tmp_path, "chk", "h100-sxm", extra)
    code, out, err = run(["check", p], capsys, monkeypatch)
    if fragment is None:
        assert code == 0 and "scenario" in out
        return
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err
    code, out, err = run(BASE + ["--scenario", p], capsys, monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err


def test_scenario_with_unknown_chip(tmp_path, capsys, monkeypatch):
    p = scenario(tmp_path, "typo", "h100-sxm, b2000")
    for args in (["check", p], BASE + ["--scenario", p]):
        code, _, err = run(args, capsys, monkeypatch)
        assert code == 2 and "unknown chip 'b2000'" in err and len(err.strip().splitlines()) == 1


def test_builtin_scenarios_check(capsys, monkeypatch):
    root = Path(__file__).resolve().parent.parent / "hwspecs" / "scenarios"
    files = sorted(root.glob("*.yaml"))
    assert len(files) >= 3
    code, out, err = run(["check", *files], capsys, monkeypatch)
    assert code == 0, err


def test_chips_export_and_chip(capsys, monkeypatch):
    code, out, _ = run(["chips", "--export", "--json"], capsys, monkeypatch)
    assert code == 0
    rows = {r["id"]: r for r in json.loads(out)}
    assert rows["a100-sxm4-80gb"]["tpp"] == pytest.approx(312 * 16, abs=0.5)      # datasheet 312 dense BF16
    assert rows["h20"]["class"] == "none"
    for r in rows.values():
        assert r["class"] in ("3A090.a", "3A090.b", "none", "unknown")
        if r["class"] == "unknown":
            assert r["missing"]                      # says which fact is missing
    code, out, _ = run(["chip", "h100-sxm", "--json"], capsys, monkeypatch)
    d = json.loads(out)
    assert d["export_control"]["tpp"] == pytest.approx(1979 * 8, rel=5e-3)
    code, out, _ = run(["chip", "b200"], capsys, monkeypatch)
    assert code == 0 and "TPP" in out and "density unknown" in out


def test_flops_reference_run(tmp_path, capsys, monkeypatch):
    """--flops alone: the reference shape (Llama 3 405B) with tokens = FLOPs / (6 x params)."""
    a = scenario(tmp_path, "one", "h100-sxm")
    code, out, err = run(["roadmap", "--flops", "1e25", "--scenario", a, "--chips", "1024", "--years", "2025",
                          "--json"], capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    ref = d["reference_run"]
    assert ref["flops"] == pytest.approx(1e25)
    assert d["tokens"] == pytest.approx(1e25 / (6 * ref["params"]), rel=1e-6)


@pytest.mark.parametrize("value,fragment", [("abc", "cannot read"), ("1e40", "flops"), ("-5", "positive")])
def test_bad_flops_one_line(tmp_path, capsys, monkeypatch, value, fragment):
    a = scenario(tmp_path, "one", "h100-sxm")
    code, out, err = run(["roadmap", "--flops", value, "--scenario", a, "--chips", "64"], capsys, monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
