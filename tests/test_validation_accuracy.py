"""Published measurements: shared/data/validation/training.csv copied into tests/data (with a
`stack` column taken from each row's source). Figures here are IN-SAMPLE: the fitted parameters
(hwspecs/efficiency.yaml, stacks.yaml) come from `suanli calibrate` on these same rows. The
honest, cross-validated figure is tested in tests/test_cross_validation.py.

Bars: all rows median APE <= 8%; dense-model rows p90 <= 20% and no row above 35%; MoE rows
(fine-grained experts, routing, host-bound layers) median <= 25% - their p90/max are a known
gap, reported in the README. Sources: Narayanan et al. 2021 (Megatron-LM, SC'21), Jiang et al.
2024 (MegaScale, NSDI'24), NVIDIA NeMo 24.07 and Megatron-Bridge 25.11 performance summaries,
Ascend MindSpeed-LLM README, MindSpore MindFormers guide, BAAI FlagPerf.
"""
import pytest

from estimator.catalog import Catalog
from estimator.validate import validate_file

MOE = {"deepseek-v3", "gpt-oss-120b", "qwen3-30b-a3b", "qwen3-235b-a22b", "mixtral-8x7b",
       "flagperf-qwen1.5-moe-8e-top2"}


@pytest.fixture(scope="module")
def report(data_dir):
    return validate_file(data_dir / "validation" / "training.csv", catalog=Catalog(use_env=False))


def _pct(values, q):
    s = sorted(values)
    x = q * (len(s) - 1)
    lo = int(x)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (x - lo)


def test_training_accuracy_bar(report):
    s = report["summary"]
    worst = sorted(report["rows"], key=lambda r: -r["ape"])[:3]
    detail = ", ".join(f"{r['id']} {100 * r['ape']:.1f}%" for r in worst)
    assert s["count"] >= 45
    assert s["median_ape"] <= 0.08, detail
    dense = [r["ape"] for r in report["rows"] if r["model"] not in MOE]
    moe = [r["ape"] for r in report["rows"] if r["model"] in MOE]
    assert len(dense) >= 40 and len(moe) >= 6
    assert _pct(dense, 0.9) <= 0.20, detail
    assert max(dense) <= 0.35, detail
    assert _pct(moe, 0.5) <= 0.25, detail


def test_skipped_rows_say_why(report):
    # the MetaX C500 rows need an HBM bandwidth no public source gives: skipped, with the reason;
    # no run that really ran is refused for memory
    for sk in report["skipped"]:
        assert sk["reason"]
        assert "metax-c500" in sk["reason"] and "null" in sk["reason"], sk
    assert len(report["skipped"]) <= 3
    # T-MF-01 (MindFormers Llama 2 13B) recomputes 4 of stage 0's 20 layers in full and the rest
    # selectively, which the CSV's single recompute column cannot say ("selective"): the memory
    # model puts that plan 2% over the 910B's 61 GiB. It is predicted and reported as a memory
    # miss; no other row may be.
    misses = [r["id"] for r in report["rows"] if r["memory_note"]]
    assert misses in ([], ["T-MF-01"]), misses


def test_inference_accuracy_bar(data_dir):
    """Bar (issue #5): median APE <= 15%, p90 <= 35% on shared/data/validation/inference.csv
    (TensorRT-LLM performance overview, TensorRT-LLM DeepSeek-R1 guide, LMSYS/SGLang large-scale
    EP blog, SGLang Ascend best practice)."""
    rep = validate_file(data_dir / "validation" / "inference.csv")
    s = rep["summary"]
    assert s["count"] >= 60 and s["skipped"] == 0
    worst = ", ".join(f"{r['id']} {100 * r['ape']:.0f}%" for r in sorted(rep["rows"], key=lambda r: -r["ape"])[:3])
    assert s["median_ape"] <= 0.15, worst
    assert s["p90_ape"] <= 0.35, worst


def test_llama3_paper_runs(data_dir):
    """Llama 3 405B on 8K-16K H100 in BF16 (Dubey et al. 2024, Table 4): published runs outside
    the shared validation set, used as an independent check. Tolerance 20% per row."""
    rep = validate_file(data_dir / "validation" / "llama3_paper.csv")
    assert rep["summary"]["count"] == 3
    for r in rep["rows"]:
        assert r["ape"] <= 0.20, (r["id"], r["predicted"], r["measured"])


def test_a_run_the_memory_model_refuses_is_still_predicted_and_flagged(tmp_path):
    """A published run ran; if the memory model says its plan does not fit, validate still
    predicts its time (with the plan closest to fitting) and reports the memory miss."""
    p = tmp_path / "runs.csv"
    p.write_text("id,model,chip,chips,tp,pp,dp,mbs,gbs,seq_len,precision,recompute,zero,metric,measured\n"
                 "oom,llama3-70b,h100-sxm,8,8,1,1,1,8,8192,bf16,none,0,tokens_per_s_per_chip,300\n"
                 "ok,llama3-8b,h100-sxm,8,1,1,8,1,64,8192,bf16,,,tokens_per_s_per_chip,9000\n")
    rep = validate_file(p, Catalog(use_env=False))
    rows = {r["id"]: r for r in rep["rows"]}
    assert set(rows) == {"oom", "ok"} and rep["skipped"] == []
    assert rows["oom"]["predicted"] > 0 and "memory model: the plan needs" in rows["oom"]["memory_note"]
    assert rows["ok"]["memory_note"] is None
    assert rep["summary"]["memory_misses"] == 1
