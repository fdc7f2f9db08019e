"""Held-out validation files (tests/data/validation/heldout_*.csv, HELDOUT.md): well-formed data.

These rows are a check on runs the estimator was never tuned on; nothing here compares
predictions with measurements (that is `suanli validate --data ...`). The tests only make sure
that every row names a model, chip and system the catalog resolves, carries a source, notes and
a known stack label, and uses the schema's vocabulary, so a broken row fails here instead of
silently turning into a 'skipped' line in a validation report.
"""
import csv
import math

import pytest

from estimator.catalog import Catalog

TRAIN_STACKS = {"megatron-2021", "megatron-core", "mindspeed", "deepspeed", "megascale", "nemo",
                "torchtitan", "other"}
INFER_STACKS = {"trt-llm", "vllm", "sglang", "mindie", "other"}
TRAIN_METRICS = {"tokens_per_s_per_chip", "step_time_s", "mfu"}
INFER_METRICS = {"output_tokens_per_s_per_chip", "input_tokens_per_s_per_chip", "tpot_ms", "ttft_ms"}
PRECISIONS = {"bf16", "fp16", "fp8", "fp4", "int8", "int4"}


def _rows(data_dir, name):
    path = data_dir / "validation" / name
    with path.open(newline="", encoding="utf-8") as f:
        return path, list(csv.DictReader(f))


@pytest.fixture(scope="module")
def cat():
    return Catalog()


@pytest.mark.parametrize("name,stacks,metrics", [
    ("heldout_training.csv", TRAIN_STACKS, TRAIN_METRICS),
    ("heldout_inference.csv", INFER_STACKS, INFER_METRICS),
])
def test_heldout_rows_resolve(data_dir, cat, name, stacks, metrics):
    path, rows = _rows(data_dir, name)
    assert len(rows) >= 40
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate row ids"
    for r in rows:
        rid = r["id"]
        assert r["source"].strip() and r["notes"].strip(), rid
        assert r["stack"] in stacks, (rid, r["stack"])
        assert r["metric"] in metrics, rid
        assert r["precision"] in PRECISIONS, rid
        m = float(r["measured"])
        assert math.isfinite(m) and m > 0, rid
        ref = r["model"]
        model = cat.model(str(path.parent / ref) if ref.endswith(".yaml") else ref)
        assert model.name, rid
        chip = cat.chip(r["chip"])
        cat.system_for(chip, r["system"] or None)
        assert int(r["chips"]) > 0, rid


def test_heldout_rows_not_in_the_tuning_files(data_dir):
    """The held-out set shares no row id with the files the estimator is calibrated on."""
    seen = set()
    for name in ("training.csv", "inference.csv", "llama3_paper.csv"):
        seen |= {r["id"] for r in _rows(data_dir, name)[1]}
    for name in ("heldout_training.csv", "heldout_inference.csv"):
        assert not seen & {r["id"] for r in _rows(data_dir, name)[1]}


def test_heldout_model_files_load(data_dir, cat):
    for p in sorted((data_dir / "validation" / "models").glob("*.yaml")):
        spec = cat.model(str(p))
        assert spec.source.strip(), p.name
