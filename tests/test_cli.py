"""CLI: every command runs, --json parses, output is deterministic across processes."""
import json
import subprocess
import sys

import pytest


def cli(*args):
    r = subprocess.run([sys.executable, "-c", "from estimator.cli.app import main; main()", *args],
                       capture_output=True, text=True, timeout=300)
    return r


@pytest.mark.parametrize("args", [
    ["chips"], ["chips", "--vendor", "huawei", "--sort", "bf16_tflops"], ["chip", "ascend-910c"],
    ["systems"], ["system", "cloudmatrix-384"], ["models"], ["model", "deepseek-v3"],
])
def test_listing_commands(args):
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    j = cli(*args, "--json")
    assert j.returncode == 0, j.stderr
    json.loads(j.stdout)


def test_chips_json_fields():
    rows = json.loads(cli("chips", "--json").stdout)
    for r in rows:
        for k in ("id", "aliases", "vendor", "bf16_tflops", "hbm_gb", "hbm_tb_per_s", "tdp_w"):
            assert k in r
    h = next(r for r in rows if r["id"] == "h100-sxm")
    assert h["bf16_tflops"] == pytest.approx(989.4)


def test_chip_json_has_sources():
    d = json.loads(cli("chip", "h20", "--json").stdout)
    f = {r["field"]: r for r in d["fields"]}
    assert f["peak_tflops.bf16"]["value"] == 148
    assert f["peak_tflops.bf16"]["confidence"] == "official"
    assert f["peak_tflops.bf16"]["source"]
    assert d["efficiency"]["class"] == "nvidia-hopper" and d["efficiency"]["basis"]
    assert 0 < d["efficiency"]["parameters"]["hbm"] <= 1


TRAIN = ["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "16", "--gbs", "64",
         "--seq-len", "4096", "--tokens", "1T", "--json"]


def test_train_json_schema_and_determinism():
    a = cli(*TRAIN)
    assert a.returncode == 0, a.stderr
    d = json.loads(a.stdout)
    for k in ("step_time_s", "tokens_per_s", "tokens_per_s_per_chip", "mfu", "hfu",
              "model_flops_per_token", "fits", "memory_gb_per_chip", "breakdown_s", "plan",
              "days_to_train"):
        assert k in d
    for k in ("weights", "gradients", "optimizer", "activations", "total"):
        assert k in d["memory_gb_per_chip"]
    for k in ("compute", "recompute", "tp_comm", "cp_comm", "ep_comm", "pp_comm", "dp_comm", "bubble"):
        assert k in d["breakdown_s"]
    for k in ("tp", "pp", "dp", "cp", "ep", "vpp", "mbs", "gbs", "zero", "recompute", "precision"):
        assert k in d["plan"]
    assert d["fits"] is True
    assert sum(d["breakdown_s"].values()) == pytest.approx(d["step_time_s"], rel=1e-9)
    assert 0 < d["mfu"] <= 1
    assert d["days_to_train"] == pytest.approx(1e12 / d["tokens_per_s"] / 86400, rel=1e-9)
    b = cli(*TRAIN)
    assert a.stdout == b.stdout  # bit-identical across processes


def test_train_table_and_fixed_plan():
    r = cli("train", "--model", "llama3-70b", "--chip", "h800", "--chips", "64", "--gbs", "128",
            "--seq-len", "4096", "--tp", "8", "--pp", "2", "--recompute", "selective", "--top", "3")
    assert r.returncode == 0, r.stderr
    assert "tp8 pp2" in r.stdout


def test_ascend_910c_counts_packages():
    d = json.loads(cli("train", "--model", "llama3-70b", "--chip", "ascend-910c", "--chips", "384",
                       "--gbs", "384", "--seq-len", "4096", "--json").stdout)
    assert d["ranks_per_chip"] == 2
    p = d["plan"]
    assert p["tp"] * p["pp"] * p["dp"] * p["cp"] == 768


def test_validate_json(data_dir):
    r = cli("validate", "--data", str(data_dir / "validation" / "training.csv"), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"rows", "summary", "by_source", "by_chip"} <= set(d)
    for k in ("count", "median_ape", "mean_ape", "p90_ape", "max_ape", "skipped"):
        assert k in d["summary"]
    row = d["rows"][0]
    assert {"id", "predicted", "measured", "ape"} <= set(row)


def test_validate_bad_csv(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("id,model,chip\nx,llama3-8b,h100\n")
    r = cli("validate", "--data", str(p))
    assert r.returncode == 2 and "missing column" in r.stderr and "Traceback" not in r.stderr
    e = tmp_path / "empty.csv"
    e.write_text("")
    r = cli("validate", "--data", str(e))
    assert r.returncode == 2 and "empty file" in r.stderr


def test_validate_bad_rows_reported_others_run(tmp_path, data_dir):
    src = (data_dir / "validation" / "training.csv").read_text().splitlines()
    header, rows = src[0], src[1:]
    good = [r for r in rows if r.startswith("T-NEMO2407-05")][0]
    bad_chip = good.replace("h100-sxm", "h999", 1).replace("T-NEMO2407-05", "BAD-CHIP", 1)
    bad_num = good.replace(",16847,", ",lots,", 1).replace("T-NEMO2407-05", "BAD-NUM", 1)
    p = tmp_path / "mixed.csv"
    p.write_text("\n".join([header, good, bad_chip, bad_num]) + "\n")
    d = json.loads(cli("validate", "--data", str(p), "--json").stdout)
    assert [r["id"] for r in d["rows"]] == ["T-NEMO2407-05"]
    reasons = {s["id"]: s["reason"] for s in d["skipped"]}
    assert "row 3" in reasons["BAD-CHIP"] and "unknown chip" in reasons["BAD-CHIP"]
    assert "row 4" in reasons["BAD-NUM"] and "measured" in reasons["BAD-NUM"]


def test_catalog_found_outside_the_source_tree(tmp_path):
    """Specs ship as package data: the CLI works from any folder (importlib.resources)."""
    r = subprocess.run([sys.executable, "-c", "from estimator.cli.app import main; main()",
                        "chips", "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) >= 53


def test_stack_reaches_compare_and_is_reported():
    """--stack on compare/size/sweep goes to the plan search: the 2021 Megatron stack (no
    overlaps, unfused attention, hosts launching every kernel) is slower than the tuned NeMo one."""
    base = ["compare", "--model", "llama3-8b", "--chips", "h100", "--cluster-chips", "64", "--gbs", "256",
            "--seq-len", "4096", "--json"]
    old = json.loads(cli(*base, "--stack", "megatron-2021").stdout)
    new = json.loads(cli(*base, "--stack", "nemo").stdout)
    assert old["stack"] == "megatron-2021" and new["stack"] == "nemo"
    assert old["rows"][0]["tokens_per_s"] < 0.9 * new["rows"][0]["tokens_per_s"]
    bad = cli("sweep", "--model", "llama3-8b", "--chip", "h100", "--chips", "8:16", "--stack", "nope")
    assert bad.returncode == 2 and "unknown stack 'nope'" in bad.stderr and "Traceback" not in bad.stderr
