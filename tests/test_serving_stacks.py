"""Serving stacks (hwspecs/stacks.yaml `serving:`), the optional inference CSV columns, the
Atlas 300I Duo entries and serve-size's choice of the fewest chips."""
import math
import subprocess
import sys
from pathlib import Path

import pytest

from estimator.catalog import Catalog, builtin_dir
from estimator.errors import SpecError, UnknownIdError
from estimator.inference import estimate_inference
from estimator.packing import pack_serving_stack
from estimator.serving import replica_sizes, serve_size
from estimator.validate import validate_file
from kernels import layout as K

CAT = Catalog(use_env=False)
SERVING = ["trt-llm", "vllm", "sglang", "mindie", "vllm-ascend", "other"]


@pytest.mark.parametrize("sid", SERVING)
def test_serving_stacks_load_with_a_basis(sid):
    rid, spec = CAT.serving_stack(sid, "x")
    assert rid == sid and spec.serving is not None and len(spec.basis) > 80
    row = pack_serving_stack(spec)
    assert set(row) >= {K.I_GRAPHS, K.I_OVERLAP, K.I_MIXED, K.I_CHUNK, K.I_KV_ADMIT, K.I_CUSTOM_AR}
    assert row[K.I_CHUNK] >= 64 and 0 < row[K.I_KV_FRAC_PM] <= 1000


def test_default_serving_stack_per_class():
    sf = CAT.stacks()
    assert sf.default_serving_for("nvidia-hopper") == "trt-llm"
    assert sf.default_serving_for("ascend") == "mindie"
    assert sf.default_serving_for("amd-cdna") == "vllm"


def test_training_stack_is_not_a_serving_stack():
    with pytest.raises(SpecError) as e:
        CAT.serving_stack("megatron-core", "x")
    assert "not a serving stack" in str(e.value) and "trt-llm" in str(e.value)
    with pytest.raises(UnknownIdError):
        CAT.serving_stack("tensorrt", "x")


def _user_stacks(tmp_path: Path, edit) -> Catalog:
    d = tmp_path / "specs"
    d.mkdir()
    text = (builtin_dir() / "stacks.yaml").read_text()
    (d / "stacks.yaml").write_text(edit(text))
    return Catalog(spec_dirs=[d], use_env=False)


@pytest.mark.parametrize("edit,fragment", [
    (lambda t: t.replace("kv_admission: reserve_full", "kv_admission: sometimes", 1), "kv_admission"),
    (lambda t: t.replace("prefill_chunk_tokens: 8192", "prefill_chunk_tokens: 0", 1), "prefill_chunk_tokens"),
    (lambda t: t.replace("ascend: mindie", "ascend: mindspeed", 1), "default_serving"),
    (lambda t: t.replace("        graphs: true\n", "", 1), "graphs"),
    (lambda t: t.replace("precisions: [bf16, fp16, fp8, fp4, int8, int4, w4a8]",
                         "precisions: [bf16, fp3]", 1), "precisions"),
])
def test_bad_serving_stack_file_names_the_field(tmp_path, edit, fragment):
    cat = _user_stacks(tmp_path, edit)
    with pytest.raises(SpecError) as e:
        cat.stacks()
    assert fragment in str(e.value) and "stacks.yaml" in str(e.value)


def test_user_stacks_file_changes_the_answer(tmp_path):
    cat = _user_stacks(tmp_path, lambda t: t.replace(
        "kv_admission: reserve_full", "kv_admission: on_demand", 1))
    kw = dict(chips=2, input_len=2000, output_len=2000, precision="fp8", tp=2, stack="trt-llm")
    a = estimate_inference("llama3-70b", "h100", catalog=CAT, **kw)
    b = estimate_inference("llama3-70b", "h100", catalog=cat, **kw)
    # input + output reserved vs input + output/2 held on average
    assert b.max_batch_by_memory == pytest.approx(a.max_batch_by_memory * 4000 / 3000, rel=0.01)


def test_atlas_300i_duo_is_a_card_of_two_ranks():
    c = CAT.chip("atlas-300i-duo")
    s = CAT.system_for(c, None)
    assert c.ranks_per_package == 2 and c.dies_per_package == 2
    assert c.peak("fp16") == 140 and c.peak("int8") == 280 and c.peak("bf16") is None
    assert c.hbm_gb == 96 and c.hbm_gb_per_s == 408
    assert s.id == "atlas-800-3000-duo" and s.chips_per_node == 4
    assert CAT.efficiency().for_chip(c.id)[0] == "ascend"
    r = estimate_inference("qwen3-8b", "atlas-300i-duo", chips=1, input_len=1000, output_len=200,
                           precision="int8")
    assert r.ranks_per_chip == 2 and r.stack == "mindie"
    assert r.memory_capacity_gb_per_chip <= 96


def _csv(tmp_path, rows, extra_cols):
    cols = ["id", "model", "chip", "system", "chips", "tp", "pp", "ep", "dp", "precision",
            "input_len", "output_len", "batch", "tpot_slo_ms", "ttft_slo_ms", "phase", "metric",
            "measured", "source", "notes"] + extra_cols
    lines = [",".join(cols)]
    for r in rows:
        lines.append(",".join(str(r.get(c, "")) for c in cols))
    p = tmp_path / "inf.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_optional_columns_are_read(tmp_path):
    base = dict(model="llama3-70b", chip="h100-sxm", system="dgx-h100", chips=2, tp=2,
                precision="fp8", input_len=2000, output_len=500, phase="e2e",
                metric="output_tokens_per_s_per_chip", measured=1000, source="test")
    rows = [dict(base, id="A", stack="trt-llm"), dict(base, id="B", stack="vllm"),
            dict(base, id="C", stack="trt-llm", kv_precision="bf16"),
            dict(base, id="D", stack="trt-llm", spec_accept=1.8),
            dict(base, id="E", stack="trt-llm", spec_accept=0.5),
            dict(base, id="F", stack="nosuch")]
    rep = validate_file(_csv(tmp_path, rows, ["stack", "kv_precision", "spec_accept"]), CAT)
    got = {r["id"]: r for r in rep["rows"]}
    assert got["A"]["plan"]["stack"] == "trt-llm" and got["B"]["plan"]["stack"] == "vllm"
    assert got["A"]["predicted"] != got["B"]["predicted"]
    assert got["C"]["plan"]["kv_precision"] == "bf16" and got["A"]["plan"]["kv_precision"] == "fp8"
    assert got["D"]["plan"]["spec_accept"] == pytest.approx(1.8) and got["D"]["plan"]["spec_draft"] == 1
    skipped = {s["id"]: s["reason"] for s in rep["skipped"]}
    assert "spec_accept" in skipped["E"] and "nosuch" in skipped["F"]


def test_missing_optional_columns_mean_defaults(tmp_path):
    row = dict(id="A", model="llama3-70b", chip="h100-sxm", chips=2, tp=2, precision="fp8",
               input_len=2000, output_len=500, phase="e2e", metric="output_tokens_per_s_per_chip",
               measured=1000, source="test")
    rep = validate_file(_csv(tmp_path, [row], []), CAT)
    assert rep["rows"][0]["plan"]["stack"] == "trt-llm" and rep["rows"][0]["plan"]["spec_accept"] == 1.0


def test_serve_size_picks_the_fewest_chips():
    """The answer is the replica size with the fewest chips for the load, not the best
    throughput per chip: checked against every candidate size evaluated one by one."""
    kw = dict(input_len=2000, output_len=500, tpot_slo_ms=50, ttft_slo_ms=2000, precision="int8")
    qps = 20
    r = serve_size("deepseek-v3", "ascend-910c", qps=qps, catalog=CAT, **kw)
    c = CAT.chip("ascend-910c")
    s = CAT.system_for(c, None)
    best = None
    for n in replica_sizes(s.chips_per_node, c.ranks_per_package, 128):
        try:
            e = estimate_inference("deepseek-v3", c, chips=n, system=s, catalog=CAT, **kw)
        except Exception:
            continue
        total = n * math.ceil(qps * 500 / e.output_tokens_per_s - 1e-9)
        best = total if best is None else min(best, total)
    assert r.chips == best
    assert r.replicas * r.replica_chips == r.chips
    assert r.output_tokens_per_s >= qps * 500


def test_serve_size_cli_has_stack_and_json():
    out = subprocess.run([sys.executable, "-c", "from estimator.cli.app import main; main()",
                          "serve-size", "--model", "llama3-8b", "--chip", "h100", "--qps", "5",
                          "--input-len", "500", "--output-len", "200", "--stack", "sglang", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert '"stack": "sglang"' in out.stdout
