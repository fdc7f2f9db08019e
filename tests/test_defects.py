"""Defects a careful user hit (issue 13, item 6), one test each: numbers, output paths,
reading, provenance, validate, --derate, YAML, help, tables."""
import csv
import inspect
import io
import json
import os
import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml
from typer.models import ArgumentInfo, OptionInfo

from estimator.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
H100 = ROOT / "hwspecs" / "chips" / "h100-sxm.yaml"


def cli(*args, env=None, timeout=300):
    """The real entry point in a fresh process (for reads that could hang, env, exit codes)."""
    return subprocess.run([sys.executable, "-c", "from estimator.cli.app import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def run(capsys, monkeypatch):
    """The real entry point (main) in this process: quicker than a subprocess."""
    from estimator.cli.app import main

    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args):
        old = sys.argv
        sys.argv = ["suanli", *args]
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code
        finally:
            sys.argv = old
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)
    return invoke


def one_line_error(r, *fragments):
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def commands():
    return {(c.name or c.callback.__name__.replace("_", "-")): c.callback for c in app.registered_commands}


def option_infos():
    """(command, parameter name, annotation, OptionInfo/ArgumentInfo) for every parameter."""
    out = []
    for name, fn in commands().items():
        hints = typing.get_type_hints(fn)
        for p in inspect.signature(fn).parameters.values():
            out.append((name, p.name, hints.get(p.name), p.default))
    return out


def _is_float(annotation) -> bool:
    return annotation is float or float in typing.get_args(annotation)


# ------------------------------------------------------------------ numbers
def test_every_float_option_has_the_one_validator():
    from estimator.cli.options import _validator
    floats = [(c, n, info) for c, n, ann, info in option_infos() if _is_float(ann)]
    assert len(floats) >= 20
    ref = _validator("pue", "--pue").__code__
    for c, n, info in floats:
        assert isinstance(info, OptionInfo)
        assert info.callback is not None and info.callback.__code__ is ref, f"{c} {n}"


MINIMAL = {
    "size": ["size", "--model", "llama3-8b", "--chip", "h100", "--tokens", "1T", "--days", "30"],
    "compare": ["compare", "--model", "llama3-8b", "--chips", "h100", "--cluster-chips", "8"],
    "compare-serve": ["compare", "--model", "llama3-8b", "--chips", "h100", "--serve", "--qps", "1",
                      "--input-len", "10", "--output-len", "10"],
    "sweep": ["sweep", "--model", "llama3-8b", "--chip", "h100", "--chips", "8"],
    "infer": ["infer", "--model", "llama3-8b", "--chip", "h100", "--chips", "1", "--input-len", "10",
              "--output-len", "10"],
    "serve-size": ["serve-size", "--model", "llama3-8b", "--chip", "h100", "--qps", "1",
                   "--input-len", "10", "--output-len", "10"],
}
FLOAT_FLAGS = [
    ("size", "--days"), ("size", "--power-budget-mw"), ("size", "--pue"), ("size", "--mtbf-hours"),
    ("size", "--checkpoint-gb-per-s"), ("size", "--restart-s"), ("compare", "--equal-power"),
    ("compare", "--pue"), ("compare", "--days"), ("compare-serve", "--qps"), ("compare-serve", "--tpot-slo-ms"),
    ("sweep", "--pue"), ("sweep", "--mtbf-hours"), ("infer", "--spec-accept"), ("infer", "--ttft-slo-ms"),
    ("serve-size", "--qps"), ("serve-size", "--pue"), ("serve-size", "--tpot-slo-ms"),
]


@pytest.mark.parametrize("cmd,flag", FLOAT_FLAGS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_inf_refused_in_one_line(cmd, flag, value, run):
    args = [a for a in MINIMAL[cmd]]
    if flag in args:                       # replace the value given in the minimal command
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    if cmd == "size" and flag in ("--power-budget-mw",):
        args = [a for a in args if a not in ("--days", "30")]
        args[args.index(flag) + 1] = value
    r = run(*args)
    one_line_error(r, flag)
    assert "finite" in r.stderr


@pytest.mark.parametrize("args,fragment", [
    (MINIMAL["serve-size"][:5] + ["--qps", "1e9", "--input-len", "10", "--output-len", "10"], "--qps"),
    (["size", "--model", "llama3-8b", "--chip", "h100", "--tokens", "1e30", "--days", "3"], "--tokens"),
    (["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "8", "--seq-len", "128",
      "--derate", "compute=1e-300"], "--derate"),
    (["size", "--model", "llama3-8b", "--chip", "h100", "--power-budget-mw", "1e30"], "--power-budget-mw"),
    (["sweep", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--pue", "0.5"], "--pue"),
])
def test_absurd_magnitudes_refused(args, fragment, run):
    one_line_error(run(*args), fragment)


# ------------------------------------------------------------------ output paths
SWEEP = ["sweep", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "64", "--seq-len", "4096"]


@pytest.mark.parametrize("flag", ["--csv", "--plot"])
@pytest.mark.parametrize("where", ["/dev/full", "DIR", "MISSING", "/proc/suanli-x", "/sys/suanli-x"])
def test_unwritable_outputs_refused_before_computing(tmp_path, flag, where, run):
    name = {"DIR": str(tmp_path), "MISSING": str(tmp_path / "no" / "such")}.get(where, where)
    if where not in ("DIR", "/dev/full"):
        name += ".png" if flag == "--plot" else ".csv"
    r = run(*SWEEP, flag, name)
    one_line_error(r, flag)
    assert r.stdout == ""              # refused before the sweep ran and printed its table


def test_csv_dash_writes_csv_to_stdout(run):
    r = run(*SWEEP[:6], "8,16", *SWEEP[7:], "--csv", "-")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [int(x["chips"]) for x in rows] == [8, 16]
    assert all(float(x["tokens_per_s"]) > 0 for x in rows)


def test_compare_plot_path_checked_first(tmp_path, run):
    r = run("compare", "--model", "llama3-8b", "--chips", "h100", "--cluster-chips", "8", "--plot", str(tmp_path))
    one_line_error(r, "--plot", "directory")


# ------------------------------------------------------------------ reading
def _fifo(tmp_path, name):
    p = tmp_path / name
    os.mkfifo(p)
    return p


@pytest.mark.parametrize("source", ["/dev/zero", "/dev/urandom", "FIFO"])
def test_spec_reading_never_hangs(tmp_path, source):
    path = str(_fifo(tmp_path, "spec.yaml")) if source == "FIFO" else source
    for args in (["check", path], ["chip", path], ["model", path],
                 ["train", "--model", path, "--chip", "h100", "--chips", "8", "--gbs", "8", "--seq-len", "128"]):
        r = cli(*args, timeout=30)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
        assert "regular file" in r.stderr, r.stderr


@pytest.mark.parametrize("source", ["/dev/zero", "FIFO"])
def test_csv_reading_never_hangs(tmp_path, source):
    data = str(_fifo(tmp_path, "runs.csv")) if source == "FIFO" else source
    one_line_error(cli("validate", "--data", data, timeout=30), "regular file")
    # a CSV whose model column points at a device: that row is skipped, naming the reason
    p = tmp_path / "runs2.csv"
    p.write_text("id,model,chip,chips,gbs,seq_len,precision,metric,measured\n"
                 "dev,/dev/zero,h100,8,64,4096,bf16,mfu,0.4\n"
                 "ok,llama3-8b,h100,8,64,4096,bf16,mfu,0.4\n")
    r = cli("validate", "--data", str(p), "--json", timeout=60)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert [x["id"] for x in d["rows"]] == ["ok"]
    assert "regular file" in d["skipped"][0]["reason"]


def test_size_cap_enforced_while_reading(tmp_path, monkeypatch):
    """A file that grows past the cap after stat() is cut off while reading."""
    from estimator import yamlio
    from estimator.errors import SpecError
    p = tmp_path / "big.yaml"
    p.write_text("a: 1\n" + "# pad\n" * 50)
    monkeypatch.setattr(yamlio, "MAX_SPEC_BYTES", 100)
    real_stat = os.stat

    def small_stat(path, *a, **k):   # the file claims to be small
        st = real_stat(path, *a, **k)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 10,
                               st.st_atime, st.st_mtime, st.st_ctime))
    monkeypatch.setattr(yamlio.os, "stat", small_stat)
    with pytest.raises(SpecError, match="too large"):
        yamlio.read_yaml_mapping(p)


# ------------------------------------------------------------------ provenance
def _user_dir(tmp_path):
    d = tmp_path / "specs"
    (d / "chips").mkdir(parents=True)
    data = yaml.safe_load(H100.read_text())
    data["memory"]["bandwidth_gb_per_s"]["value"] = 2000
    (d / "chips" / "my-h100.yaml").write_text(yaml.safe_dump(data))
    (d / "models").mkdir()
    shutil.copy(ROOT / "hwspecs" / "models" / "llama3-8b.yaml", d / "models" / "l8.yaml")
    return d


def test_replaced_builtin_says_so(tmp_path, run):
    d = _user_dir(tmp_path)
    j = json.loads(run("chip", "h100", "--spec-dir", str(d), "--json").stdout)
    assert j["origin"]["user_spec"] is True
    assert j["origin"]["file"].endswith("my-h100.yaml")
    assert [x["id"] for x in j["origin"]["replaces"]] == ["h100-sxm"]
    assert j["origin"]["replaces"][0]["file"].endswith("h100-sxm.yaml")
    t = run("chip", "h100", "--spec-dir", str(d))
    assert "replaces the built-in chip h100-sxm" in " ".join(t.stdout.split())
    m = json.loads(run("model", "llama3-8b", "--spec-dir", str(d), "--json").stdout)
    assert m["origin"]["replaces"][0]["id"] == "llama3-8b"
    builtin = json.loads(run("chip", "h100", "--json").stdout)
    assert builtin["origin"] == {"file": builtin["origin"]["file"], "user_spec": False, "replaces": []}
    listing = json.loads(run("chips", "--spec-dir", str(d), "--json").stdout)
    assert next(r for r in listing if r["id"] == "h100-sxm")["origin"]["user_spec"] is True


def test_system_provenance(tmp_path, run):
    d = tmp_path / "s"
    (d / "systems").mkdir(parents=True)
    shutil.copy(ROOT / "hwspecs" / "systems" / "dgx-h100.yaml", d / "systems" / "mine.yaml")
    j = json.loads(run("system", "dgx-h100", "--spec-dir", str(d), "--json").stdout)
    assert j["origin"]["user_spec"] and j["origin"]["replaces"][0]["id"] == "dgx-h100"


def test_spec_dir_with_top_level_yaml_is_reported(tmp_path):
    shutil.copy(H100, tmp_path / "h100-sxm.yaml")
    one_line_error(cli("chips", "--spec-dir", str(tmp_path)), "h100-sxm.yaml", "chips")
    env = {**os.environ, "SUANLI_SPEC_PATH": str(tmp_path)}
    one_line_error(cli("chip", "h100", env=env), "top level")


# ------------------------------------------------------------------ validate
HEADER = "id,model,chip,chips,gbs,seq_len,precision,metric,measured\n"
GOOD = "llama3-8b,h100,8,64,4096,bf16,mfu,0.384\n"


def test_validate_escapes_ids(tmp_path, run):
    p = tmp_path / "v.csv"
    p.write_text(HEADER + "[bold red]evil[/]\x1b[31mX," + GOOD)
    r = run("validate", "--data", str(p))
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout
    flat = "".join(r.stdout.split())
    assert "[boldred]evil[/]" in flat and "\\x1b[31mX" in flat


def test_validate_fails_when_every_row_is_skipped(tmp_path, run):
    p = tmp_path / "v.csv"
    p.write_text(HEADER + "a,llama3-8b,nochip,8,64,4096,bf16,mfu,0.4\n")
    r = run("validate", "--data", str(p))
    one_line_error(r, "every row was skipped")
    r = run("validate", "--data", str(p), "--json")
    assert r.returncode == 2 and json.loads(r.stdout)["summary"]["skipped"] == 1


def test_validate_rejects_mfu_above_one_and_names_short_rows(tmp_path, run):
    p = tmp_path / "v.csv"
    p.write_text(HEADER + "pct," + GOOD.replace("0.384", "38.4") + "short,llama3-8b,h100,8\n" + "ok," + GOOD)
    d = json.loads(run("validate", "--data", str(p), "--json").stdout)
    reasons = {s["id"]: s["reason"] for s in d["skipped"]}
    assert "above 1" in reasons["pct"]
    assert reasons["short"].startswith("short row 3")
    assert [x["id"] for x in d["rows"]] == ["ok"]


def test_validate_shows_mfu_with_more_decimals(tmp_path, run):
    p = tmp_path / "v.csv"
    p.write_text(HEADER + "ok," + GOOD)
    r = run("validate", "--data", str(p))
    assert r.returncode == 0, r.stderr
    assert "0.3840" in r.stdout


# ------------------------------------------------------------------ --derate
TRAIN = ["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "64", "--seq-len", "4096"]


def test_derate_echoed_in_json_and_tables(run):
    d = json.loads(run(*TRAIN, "--derate", "hbm_bw=0.8", "--json").stdout)
    assert d["derate"] == {"hbm_bw": 0.8}
    t = run(*TRAIN, "--derate", "hbm_bw=0.8")
    assert "hbm_bw x 0.8" in t.stdout
    for args in (SWEEP, ["compare", "--model", "llama3-8b", "--chips", "h100", "--cluster-chips", "8",
                         "--gbs", "64", "--seq-len", "4096"]):
        j = json.loads(run(*args, "--derate", "compute=0.9", "--json").stdout)
        assert j["derate"] == {"compute": 0.9} and j["rows"][0]["derate"] == {"compute": 0.9}
        assert "compute x 0.9" in run(*args, "--derate", "compute=0.9").stdout
    i = json.loads(run(*MINIMAL["infer"], "--derate", "hbm_bw=0.5", "--json").stdout)
    assert i["derate"] == {"hbm_bw": 0.5}


# ------------------------------------------------------------------ YAML
def test_yaml_duplicate_keys_rejected(tmp_path, run):
    p = tmp_path / "c.yaml"
    p.write_text(H100.read_text() + "tdp_w: {value: 1, source: x, confidence: official}\n")
    one_line_error(run("check", str(p)), "tdp_w", "duplicate key")


def test_yaml_exponent_numbers_read_as_numbers(tmp_path, run):
    text = H100.read_text()
    for literal in ("7e2", "7.0e2", "1e308", "1.0e308"):
        p = tmp_path / f"c{literal}.yaml"
        p.write_text(re.sub(r"tdp_w: \{value: 700,", f"tdp_w: {{value: {literal},", text))
        r = run("check", str(p), "--json")
        assert r.returncode == 0, (literal, r.stderr)


def test_boolean_in_a_number_field_says_must_be_a_number(tmp_path, run):
    data = yaml.safe_load((ROOT / "hwspecs" / "models" / "llama3-8b.yaml").read_text())
    data["hidden"] = True
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump(data))
    one_line_error(run("check", str(p)), "hidden", "must be a number")


# ------------------------------------------------------------------ help
def test_every_option_and_argument_has_help():
    missing = [(c, n) for c, n, _, info in option_infos()
               if isinstance(info, (OptionInfo, ArgumentInfo)) and not (info.help or "").strip()]
    assert missing == []


def test_mtbf_default_shown_rounded_and_version(run):
    r = run("size", "--help")
    flat = " ".join(r.stdout.split())
    assert "50,677" in flat and "50677.00" not in flat
    v = run("--version")
    assert v.returncode == 0 and re.fullmatch(r"suanli \d+\.\d+\.\d+\S*", v.stdout.strip())


def test_top_level_help_says_what_every_command_is_for(run):
    r = run("--help")
    text = r.stdout
    for name in commands():
        line = next((ln for ln in text.splitlines() if re.search(rf"\s{re.escape(name)}\s+\S", ln)), None)
        assert line is not None, f"{name} has no description in --help"
    assert "serve" in text and "train" in text
    for name, fn in commands().items():
        first = (fn.__doc__ or "").strip().splitlines()[0]
        assert len(first) <= 90 and "\n" not in first and first.endswith("."), (name, first)


def test_readme_chip_template_passes_check(tmp_path, run):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(id: my-accelerator.*?)```", text, re.S).group(1)
    p = tmp_path / "my-chip.yaml"
    p.write_text(block)
    r = run("check", str(p))
    assert r.returncode == 0 and "ok:" in r.stdout, r.stderr


# ------------------------------------------------------------------ tables
def _numbers_intact(rows, text, keys):
    """Every number the JSON gives appears unbroken on one line of the table."""
    from estimator.cli.render import fmt
    for row in rows:
        for k in keys:
            v = row[k]
            if isinstance(v, float):
                s = fmt(v, 2)
                assert any(s in line for line in text.splitlines()), (k, s, text)


@pytest.mark.parametrize("width", [80, 90, 100])
def test_tables_keep_numbers_whole_at_narrow_widths(width):
    from typer.testing import CliRunner
    args = ["compare", "--model", "llama3-8b", "--chips", "h100,ascend-910b,h20", "--cluster-chips", "64",
            "--gbs", "256", "--seq-len", "4096", "--tokens", "1T"]
    runner = CliRunner()
    j = json.loads(runner.invoke(app, [*args, "--json"]).output)
    res = runner.invoke(app, args, env={"COLUMNS": str(width)})
    assert res.exit_code == 0, res.output
    assert max(len(ln) for ln in res.output.splitlines()) <= width
    _numbers_intact(j["rows"], res.output, ["tokens_per_s", "days", "days_with_failures", "power_mw",
                                            "energy_kwh_per_1m_tokens"])


def test_sweep_output_has_no_leading_blank_line_and_one_power_line(run):
    r = run("sweep", "--model", "llama3-8b", "--chip", "h100", "--chips", "8:64", "--gbs", "256", "--seq-len", "4096")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].strip(), repr(r.stdout[:80])
    assert sum(1 for ln in r.stdout.splitlines() if ln.startswith("power h100-sxm")) == 1
