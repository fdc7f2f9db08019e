"""Bad spec files and flags: one clear line naming the file/field, exit code 2, no traceback."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from estimator.catalog import Catalog
from estimator.errors import SpecError, UnknownIdError
from estimator.specs import ChipSpec
from estimator.yamlio import load_spec

ROOT = Path(__file__).resolve().parents[1]
GOOD_CHIP = ROOT / "hwspecs" / "chips" / "h100-sxm.yaml"


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-c", "from estimator.cli.app import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def chip_data() -> dict:
    return yaml.safe_load(GOOD_CHIP.read_text())


def write(tmp_path: Path, data, name="chip.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


def expect_error(path: Path, *fragments: str):
    with pytest.raises(SpecError) as ei:
        load_spec(ChipSpec, path)
    msg = str(ei.value)
    assert str(path) in msg
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, msg
    # and the CLI says the same in one line with exit code 2
    r = run_cli("check", str(path))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert str(path) in r.stderr


def test_missing_field(tmp_path):
    d = chip_data()
    del d["tdp_w"]
    expect_error(write(tmp_path, d), "tdp_w", "required field missing")


def test_wrong_type(tmp_path):
    d = chip_data()
    d["memory"]["capacity_gb"]["value"] = "eighty"
    expect_error(write(tmp_path, d), "memory.capacity_gb.value", "must be a number")


def test_negative_bandwidth(tmp_path):
    d = chip_data()
    d["memory"]["bandwidth_gb_per_s"]["value"] = -3350
    expect_error(write(tmp_path, d), "memory.bandwidth_gb_per_s.value", "positive")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0])
def test_nan_inf_zero(tmp_path, bad):
    d = chip_data()
    d["tdp_w"]["value"] = bad
    expect_error(write(tmp_path, d), "tdp_w.value")


def test_unknown_precision(tmp_path):
    d = chip_data()
    d["peak_tflops"]["fp6"] = {"value": 1, "source": "x", "confidence": "official"}
    expect_error(write(tmp_path, d), "peak_tflops.fp6", "unknown field")


def test_unknown_field(tmp_path):
    d = chip_data()
    d["colour"] = "green"
    expect_error(write(tmp_path, d), "colour", "unknown field")


def test_value_without_confidence(tmp_path):
    d = chip_data()
    del d["tdp_w"]["confidence"]
    expect_error(write(tmp_path, d), "tdp_w", "confidence")


def test_malformed_yaml(tmp_path):
    expect_error(write(tmp_path, "id: x\n  bad: [unclosed\n"), "malformed YAML", "line")


def test_empty_file(tmp_path):
    expect_error(write(tmp_path, ""), "empty file")


def test_not_a_mapping(tmp_path):
    expect_error(write(tmp_path, "- a\n- b\n"), "expected a mapping")


def test_alias_bomb(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi"))
    expect_error(write(tmp_path, bomb), "anchors/aliases")


def test_non_utf8(tmp_path):
    p = tmp_path / "chip.yaml"
    p.write_bytes(b"id: \xff\xfe\n")
    expect_error(p, "not UTF-8")


def test_directory(tmp_path):
    expect_error(tmp_path, "is a directory")


def test_huge_file(tmp_path):
    expect_error(write(tmp_path, "# " + "x" * 1_100_000 + "\n"), "too large")


def test_unknown_id_suggests():
    with pytest.raises(UnknownIdError) as ei:
        Catalog(use_env=False).chip("h10")
    assert "did you mean" in str(ei.value) and "h100" in str(ei.value)
    r = run_cli("chip", "h10")
    assert r.returncode == 2 and "did you mean" in r.stderr and "Traceback" not in r.stderr


def test_duplicate_ids_in_user_folder(tmp_path):
    d = chip_data()
    (tmp_path / "chips").mkdir()
    write(tmp_path / "chips", d, "a.yaml")
    write(tmp_path / "chips", d, "b.yaml")
    with pytest.raises(SpecError) as ei:
        Catalog([tmp_path], use_env=False).chip("h100-sxm")
    assert "already defined" in str(ei.value)


def test_user_spec_dir_and_env(tmp_path):
    d = chip_data()
    d["id"] = "my-chip"
    d["aliases"] = []
    (tmp_path / "chips").mkdir()
    write(tmp_path / "chips", d, "my-chip.yaml")
    assert Catalog([tmp_path], use_env=False).chip("my-chip").id == "my-chip"
    import os
    env = {**os.environ, "SUANLI_SPEC_PATH": str(tmp_path)}
    r = run_cli("chip", "my-chip", "--json", env=env)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args,fragment", [
    (["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "0", "--gbs", "8", "--seq-len", "4096"], "--chips"),
    (["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "8", "--seq-len", "4096", "--tp", "3"], "tp"),
    (["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "8", "--seq-len", "4096", "--tokens", "-1"], "tokens"),
    (["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "8", "--seq-len", "4096", "--tp", "2", "--pp", "2", "--dp", "4"], "must equal"),
    (["train", "--model", "llama3-8b", "--chip", "nochip", "--chips", "8", "--gbs", "8", "--seq-len", "4096"], "unknown chip"),
    (["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "8", "--seq-len", "4096", "--precision", "fp6"], "precision"),
    (["train", "--model", "llama3-8b", "--chip", "ascend-910b", "--chips", "8", "--gbs", "8", "--seq-len", "4096", "--precision", "fp8"], "no fp8"),
    (["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "8", "--seq-len", "4096", "--pp", "64"], "ranks"),
    (["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "8"], "Missing option"),
    (["train", "--model", "llama3-405b", "--chip", "rtx-4090", "--chips", "8", "--gbs", "8", "--seq-len", "4096"], "does not fit"),
    (["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "8", "--seq-len", "4096", "--derate", "hbm_bw=-1"], "derate"),
    (["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "64", "--seq-len", "4096", "--etp", "2"], "mixture-of-experts"),
    (["train", "--model", "mixtral-8x7b", "--chip", "ascend-910b", "--chips", "64", "--gbs", "128", "--seq-len", "32768", "--tp", "8", "--etp", "1"], "must equal tp"),
    (["train", "--model", "qwen3-30b-a3b", "--chip", "h100", "--chips", "16", "--gbs", "512", "--seq-len", "4096", "--etp", "0"], "--etp"),
    (["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "64", "--seq-len", "4096", "--moe-dispatcher", "deepep"], "mixture-of-experts"),
    (["train", "--model", "qwen3-30b-a3b", "--chip", "h100", "--chips", "16", "--gbs", "512", "--seq-len", "4096", "--moe-dispatcher", "scatter"], "--moe-dispatcher"),
    (["train", "--model", "mixtral-8x7b", "--chip", "ascend-910b", "--chips", "64", "--gbs", "128", "--seq-len", "32768", "--moe-dispatcher", "deepep"], "no deepep"),
])
def test_cli_bad_flags_one_line(args, fragment):
    r = run_cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert fragment in lines[0], lines[0]
