"""The calibration program: shipped values come from it, it never makes the fitted rows worse,
a user's own runs calibrate end to end, and bad calibration inputs get one line and exit 2."""
import json
import math
import subprocess
import sys

import pytest

from estimator.catalog import Catalog
from estimator.errors import InputError
from estimator.fitting.calibrate import calibrate

CAT = Catalog(use_env=False)


@pytest.fixture(scope="module")
def public(data_dir):
    return calibrate([str(data_dir / "validation" / "training.csv")], CAT)


def test_shipped_values_are_reproduced_within_their_standard_errors(public):
    """hwspecs/efficiency.yaml and stacks.yaml hold the output of `suanli calibrate` on the
    public training rows (their `calibration` blocks); re-running it must land within one
    standard error of every shipped value (hand edits would not)."""
    ef, sf = CAT.efficiency(), CAT.stacks()
    checked = 0
    for p, v in zip(public.result.params, public.result.values):
        block = (ef.classes[p.owner].calibration if p.kind == "class"
                 else sf.stacks[p.owner].calibration)
        assert block is not None, f"{p.owner} carries no calibration record"
        shipped = block["values"][p.name]
        assert abs(v - shipped["value"]) <= max(shipped["se"], 1e-3), (p.key, v, shipped)
        checked += 1
    assert checked >= 8


def test_calibration_never_makes_the_fitted_rows_worse(public):
    for cls, rep in public.class_report().items():
        assert rep["after"]["median_ape"] <= rep["before"]["median_ape"] + 1e-9, cls
    before = [abs(x) for x in public.result.before if math.isfinite(x)]
    after = [abs(x) for x in public.result.after if math.isfinite(x)]
    assert sum(after) < sum(before)


def test_priors_pull_parameters_towards_the_micro_benchmarks(public):
    """Each fitted value stays inside its physical bounds and within about three prior widths
    of its micro-benchmark value: a handful of rows cannot drag it somewhere absurd."""
    for p, v in zip(public.result.params, public.result.values):
        assert p.lo <= v <= p.hi
        assert abs(math.log(v / p.prior)) <= 3.0 * p.sd + 1e-9, (p.key, v, p.prior)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", "from estimator.cli.app import main; main()", *args],
                          capture_output=True,
                          text=True, cwd=cwd)


def test_ascend_rows_alone_calibrate_then_train_end_to_end(tmp_path, data_dir):
    out = tmp_path / "cal"
    r = _cli("calibrate", "--data", str(data_dir / "validation" / "training.csv"), "--class", "ascend",
             "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["classes"] == ["ascend"] and {p["owner"] for p in d["parameters"] if p["kind"] == "class"} == {"ascend"}
    assert (out / "efficiency.yaml").is_file() and (out / "stacks.yaml").is_file()
    rep = d["by_class"]["ascend"]
    assert rep["after"]["median_ape"] <= rep["before"]["median_ape"]
    r = _cli("train", "--model", "llama2-70b", "--chip", "ascend-910b", "--chips", "32", "--gbs", "1024",
             "--seq-len", "4096", "--spec-dir", str(out), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["fits"] and res["tokens_per_s_per_chip"] > 0


def _csv(tmp_path, rows, name="runs.csv"):
    head = "id,model,chip,system,chips,tp,pp,dp,cp,ep,vpp,mbs,gbs,seq_len,precision,recompute,zero,metric,measured,source\n"
    p = tmp_path / name
    p.write_text(head + "".join(r + "\n" for r in rows))
    return p


ROW = "R{i},llama2-7b,{chip},,8,1,1,8,,,,1,256,4096,bf16,,1,tokens_per_s_per_chip,{m},test"


@pytest.mark.parametrize("case,args,msg", [
    ("no rows for the class", ["--class", "nvidia-ampere"], "no usable rows for this class"),
    ("unknown class", ["--class", "nvidia-kepler"], "unknown efficiency class"),
])
def test_bad_class_requests(tmp_path, case, args, msg):
    p = _csv(tmp_path, [ROW.format(i=1, chip="h100-sxm", m=10000)])
    r = _cli("calibrate", "--data", str(p), *args)
    assert r.returncode == 2 and msg in r.stderr and r.stderr.count("\n") == 1, (case, r.stderr)


def test_every_parameter_fixed(tmp_path):
    # an Ada part: its class has no fitted parameter (no published training runs on Ada)
    p = _csv(tmp_path, [ROW.format(i=1, chip="l40s", m=3000)])
    r = _cli("calibrate", "--data", str(p))
    assert r.returncode == 2 and "every parameter is fixed" in r.stderr and r.stderr.count("\n") == 1


def test_nan_measurements_and_rows_that_all_fail(tmp_path):
    p = _csv(tmp_path, [ROW.format(i=1, chip="h100-sxm", m="nan"), ROW.format(i=2, chip="h100-sxm", m="-3")])
    r = _cli("calibrate", "--data", str(p))
    assert r.returncode == 2 and "no usable rows" in r.stderr and r.stderr.count("\n") == 1
    with pytest.raises(InputError):
        calibrate([str(p)], CAT)


def test_calibrate_refuses_an_unwritable_output_folder(tmp_path, data_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = _cli("calibrate", "--data", str(data_dir / "validation" / "training.csv"), "--out", str(blocker))
    assert r.returncode == 2 and "--out" in r.stderr and r.stderr.count("\n") == 1
