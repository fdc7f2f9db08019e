"""Compare estimates with published measurements (schema: shared/data/validation/README.md).

Bad rows (missing cells, unknown ids, non-numeric values) are reported with their row number
and skipped; the other rows still run. Rows of a kind the estimator does not cover yet are
reported as skipped, never dropped silently.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from estimator.catalog import Catalog
from estimator.errors import InfeasibleError, InputError, SpecError, SuanliError
from estimator.training import estimate_training
from estimator.yamlio import read_regular_file

#: validation CSVs larger than this are refused (the shipped ones are a few KB)
MAX_CSV_BYTES = 20_000_000

TRAIN_REQUIRED = ("id", "model", "chip", "chips", "gbs", "seq_len", "precision", "metric", "measured")
INFER_MARKERS = ("input_len", "output_len", "phase")
TRAIN_METRICS = ("tokens_per_s_per_chip", "step_time_s", "mfu")
INFER_METRICS = ("output_tokens_per_s_per_chip", "input_tokens_per_s_per_chip", "tpot_ms", "ttft_ms")


@dataclass
class RowResult:
    id: str
    row: int
    source: str
    chip: str
    model: str
    metric: str
    predicted: float
    measured: float
    ape: float
    plan: dict = field(default_factory=dict)
    p10: float | None = None
    p90: float | None = None
    #: set when the memory model says the published plan does not fit although the run ran:
    #: the time is still predicted (with the plan that comes closest to fitting) and the
    #: memory miss is reported, not hidden
    memory_note: str | None = None


@dataclass
class Skipped:
    id: str
    row: int
    reason: str


def _int(r: dict, key: str, rowno: int, required=False):
    v = (r.get(key) or "").strip()
    if not v:
        if required:
            raise InputError(f"row {rowno}: column '{key}' is blank")
        return None
    try:
        f = float(v)
    except ValueError:
        raise InputError(f"row {rowno}: column '{key}' is not a number ({v!r})") from None
    if not math.isfinite(f) or f != int(f) or f <= 0:
        raise InputError(f"row {rowno}: column '{key}' must be a positive integer ({v!r})")
    return int(f)


def _float(r: dict, key: str, rowno: int) -> float:
    v = (r.get(key) or "").strip()
    if not v:
        raise InputError(f"row {rowno}: column '{key}' is blank")
    try:
        f = float(v)
    except ValueError:
        raise InputError(f"row {rowno}: column '{key}' is not a number ({v!r})") from None
    if not math.isfinite(f) or f <= 0:
        raise InputError(f"row {rowno}: column '{key}' must be a positive number ({v!r})")
    return f


def read_rows(path: str | Path) -> tuple[list[dict], list[str]]:
    """Rows (dicts) and column names of a CSV file: a regular file, read up to a size cap."""
    p = Path(path)
    raw = read_regular_file(p, MAX_CSV_BYTES, "CSV file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError(str(p), None, "not UTF-8 text") from None
    if not text.strip():
        raise SpecError(str(p), None, "empty file")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        cols = [c.strip() for c in (reader.fieldnames or [])]
        rows = list(reader)
    except csv.Error as e:
        raise SpecError(str(p), None, f"malformed CSV at line {reader.line_num}: {e}") from None
    return rows, cols


def _model_ref(r: dict, base: Path) -> str:
    """A catalog id, or a YAML path resolved relative to the CSV's folder (schema)."""
    ref = r["model"].strip()
    return str(base / ref) if ref.endswith((".yaml", ".yml")) else ref


def train_row_request(r: dict, rowno: int, base: Path) -> tuple[dict, str, float]:
    """(estimate_training keyword arguments, metric, measured value) of one training row."""
    model = _model_ref(r, base)
    chip = r["chip"].strip()
    metric = r["metric"].strip()
    if metric not in TRAIN_METRICS:
        raise InputError(f"row {rowno}: unknown metric '{metric}' (known: {', '.join(TRAIN_METRICS)})")
    measured = _float(r, "measured", rowno)
    if metric == "mfu" and measured > 1:
        raise InputError(f"row {rowno}: an MFU of {measured:g} is above 1 (give a fraction, "
                         "e.g. 0.42, not a percentage)")
    chips = _int(r, "chips", rowno, required=True)
    kn = {k: _int(r, k, rowno) for k in ("tp", "pp", "dp", "cp", "ep", "vpp", "mbs")}
    zero = (r.get("zero") or "").strip()
    rec = (r.get("recompute") or "").strip() or None
    stack = (r.get("stack") or "").strip() or None
    # optional column (suanli's own, beside the schema's): the MoE token dispatcher the run used
    disp = (r.get("moe_dispatcher") or "").strip() or None
    kw = dict(model=model, chip=chip, chips=chips, gbs=_int(r, "gbs", rowno, True),
              seq_len=_int(r, "seq_len", rowno, True), system=(r.get("system") or "").strip() or None,
              precision=r["precision"].strip(), recompute=rec, zero=int(zero) if zero else None,
              stack=stack, moe_dispatcher=disp, **kn)
    return kw, metric, measured


def training_metric(res, metric: str) -> float:
    return {"tokens_per_s_per_chip": res.tokens_per_s_per_chip, "step_time_s": res.step_time_s,
            "mfu": res.mfu}[metric]


def training_band(res, metric: str) -> tuple[float | None, float | None]:
    return {"tokens_per_s_per_chip": (res.tokens_per_s_per_chip_p10, res.tokens_per_s_per_chip_p90),
            "step_time_s": (res.step_time_s_p10, res.step_time_s_p90),
            "mfu": (res.mfu_p10, res.mfu_p90)}[metric]


def _train_row(r: dict, rowno: int, base: Path, cat: Catalog) -> RowResult:
    kw, metric, measured = train_row_request(r, rowno, base)
    model, chip = kw.pop("model"), kw.pop("chip")
    note = None
    # a measured run ran: when only memory stands in the way, its time is predicted anyway with
    # the plan closest to fitting and the memory model's miss is reported beside it (one search;
    # with a fitting plan the answer is the same as require_fit=True)
    res = estimate_training(model, chip, catalog=cat, require_fit=False, **kw)
    if not res.fits:
        if res.status != "out of memory" or not res.tokens_per_s > 0:
            # any other refusal: the standard one-line explanation
            estimate_training(model, chip, catalog=cat, **kw)
            raise InfeasibleError(f"{model} on {kw['chips']} x {chip}: no plan can be estimated")
        need, have = res.memory_gb_per_chip["total"], res.memory_capacity_gb_per_chip
        note = (f"memory model: the plan needs {need:.1f} GB per chip, {have:.1f} GB usable; the "
                f"run ran, so the memory estimate is at least {100 * (need / have - 1):.0f}% high")
    pred = training_metric(res, metric)
    p10, p90 = training_band(res, metric)
    return RowResult(id=r["id"], row=rowno, source=(r.get("source") or "").strip(), chip=res.chip,
                     model=res.model, metric=metric, predicted=pred, measured=measured,
                     ape=abs(pred - measured) / measured, plan={**res.plan, "stack": res.stack},
                     p10=p10, p90=p90, memory_note=note)


def _opt_float(r: dict, key: str, rowno: int):
    v = (r.get(key) or "").strip()
    return None if not v else _float(r, key, rowno)


def _infer_row(r: dict, rowno: int, base: Path, cat: Catalog) -> RowResult:
    from estimator.inference import estimate_inference

    model = _model_ref(r, base)
    metric = r["metric"].strip()
    if metric not in INFER_METRICS:
        raise InputError(f"row {rowno}: unknown metric '{metric}' (known: {', '.join(INFER_METRICS)})")
    measured = _float(r, "measured", rowno)
    chips = _int(r, "chips", rowno, required=True)
    phase = (r.get("phase") or "").strip() or "e2e"
    kn = {k: _int(r, k, rowno) for k in ("tp", "pp", "ep", "dp", "batch")}
    out_len = (r.get("output_len") or "").strip()
    try:
        o_len = int(float(out_len)) if out_len else None
    except ValueError:
        raise InputError(f"row {rowno}: column 'output_len' is not a number ({out_len!r})") from None
    if o_len is None or o_len < 0:
        raise InputError(f"row {rowno}: column 'output_len' must be >= 0")
    chip = cat.chip(r["chip"].strip())
    ranks = chips * chip.ranks_per_package
    notes = []
    pp = kn["pp"] or 1
    if kn["tp"] and kn["dp"] and kn["tp"] * kn["dp"] * pp > ranks:
        # "TP8 with attention DP" in engine docs: tp names the world size, attention runs DP
        kn["tp"] = max(1, ranks // (kn["dp"] * pp))
        notes.append("tp read as the world size with attention data parallel")
    # optional columns (validation README): blank = the default
    spec = _opt_float(r, "spec_accept", rowno)
    if spec is not None and spec < 1.0:
        raise InputError(f"row {rowno}: column 'spec_accept' must be >= 1 (mean tokens emitted per step)")
    res = estimate_inference(
        model, chip, chips=chips, input_len=_int(r, "input_len", rowno, True), output_len=o_len,
        system=(r.get("system") or "").strip() or None, tp=kn["tp"], pp=kn["pp"], ep=kn["ep"],
        dp=kn["dp"], batch=kn["batch"], tpot_slo_ms=_opt_float(r, "tpot_slo_ms", rowno),
        ttft_slo_ms=_opt_float(r, "ttft_slo_ms", rowno), precision=r["precision"].strip(),
        kv_precision=(r.get("kv_precision") or "").strip() or None,
        spec_accept=spec if spec is not None else 1.0,
        stack=(r.get("stack") or "").strip() or None, phase=phase, catalog=cat)
    pred = {"output_tokens_per_s_per_chip": res.output_tokens_per_s_per_chip,
            "input_tokens_per_s_per_chip": res.input_tokens_per_s_per_chip,
            "tpot_ms": res.tpot_ms, "ttft_ms": res.ttft_ms}[metric]
    p10, p90 = {"output_tokens_per_s_per_chip": (
        None if res.output_tokens_per_s_p10 is None else res.output_tokens_per_s_p10 / chips,
        None if res.output_tokens_per_s_p90 is None else res.output_tokens_per_s_p90 / chips),
        "input_tokens_per_s_per_chip": (res.input_tokens_per_s_per_chip_p10, res.input_tokens_per_s_per_chip_p90),
        "tpot_ms": (res.tpot_ms_p10, res.tpot_ms_p90), "ttft_ms": (res.ttft_ms_p10, res.ttft_ms_p90)}[metric]
    plan = {**res.plan, "batch": res.batch, "stack": res.stack}
    return RowResult(id=r["id"], row=rowno, source=(r.get("source") or "").strip(), chip=res.chip,
                     model=res.model, metric=metric, predicted=pred, measured=measured,
                     ape=abs(pred - measured) / measured, plan=plan, p10=p10, p90=p90)


def _summary(apes: list[float]) -> dict:
    if not apes:
        return {"count": 0, "median_ape": None, "mean_ape": None, "p90_ape": None, "max_ape": None}
    s = sorted(apes)
    n = len(s)

    def pct(q):  # linear interpolation between order statistics
        x = q * (n - 1)
        lo = int(math.floor(x))
        hi = min(lo + 1, n - 1)
        return s[lo] + (s[hi] - s[lo]) * (x - lo)

    return {"count": n, "median_ape": pct(0.5), "mean_ape": sum(s) / n, "p90_ape": pct(0.9),
            "max_ape": s[-1]}


def validate_file(path: str | Path, catalog: Catalog | None = None, progress=None) -> dict:
    r"""Predicted vs measured for every row of a validation CSV (training or inference schema,
    shared/data/validation/README.md). Bad rows are skipped with their row number and reason.

    Returns {"rows", "skipped", "summary" (APE median/mean/p90/max), "by_source", "by_chip"}.

    >>> from pathlib import Path
    >>> import estimator, tempfile
    >>> p = Path(tempfile.mkdtemp()) / "runs.csv"
    >>> _ = p.write_text("id,model,chip,chips,gbs,seq_len,precision,metric,measured\n"
    ...                  "a,llama3-8b,h100,8,64,4096,bf16,mfu,0.4\n"
    ...                  "b,llama3-8b,h100,8,64,4096,bf16,mfu,40\n")
    >>> rep = estimator.validate_file(p)
    >>> rep["summary"]["count"], [s["reason"][:30] for s in rep["skipped"]]
    (1, ['row 3: an MFU of 40 is above 1'])
    """
    cat = catalog or Catalog()
    rows, cols = read_rows(path)
    base = Path(path).resolve().parent
    is_infer = all(c in cols for c in INFER_MARKERS)
    required = (("id", "model", "chip", "chips", "precision", "input_len", "output_len", "metric",
                 "measured") if is_infer else TRAIN_REQUIRED)
    missing = [c for c in required if c not in cols]
    if missing:
        raise SpecError(str(path), None, f"missing column(s): {', '.join(missing)}")
    results: list[RowResult] = []
    skipped: list[Skipped] = []
    for i, raw in enumerate(rows, start=2):   # row 1 is the header
        # short rows leave None cells, long rows put the surplus under the key None
        r = {k.strip(): (v if isinstance(v, str) else "") for k, v in raw.items() if k is not None}
        rid = (r.get("id") or f"row{i}").strip()
        if progress:
            progress(i - 1, len(rows))
        given = sum(1 for k, v in raw.items() if k is not None and v is not None)
        if given < len(cols):
            skipped.append(Skipped(rid, i, f"short row {i}: {given} of {len(cols)} cells "
                                           "(a missing comma?)"))
            continue
        try:
            if is_infer or (r.get("phase") or "").strip():
                results.append(_infer_row(r, i, base, cat))
            else:
                results.append(_train_row(r, i, base, cat))
        except SuanliError as e:
            msg = str(e)
            skipped.append(Skipped(rid, i, msg if msg.startswith("row ") else f"row {i}: {msg}"))
    summary = _summary([x.ape for x in results])
    summary["skipped"] = len(skipped)
    summary["memory_misses"] = sum(1 for x in results if x.memory_note)
    banded = [x for x in results if x.p10 is not None and x.p90 is not None]
    summary["coverage"] = (sum(1 for x in banded if x.p10 <= x.measured <= x.p90) / len(banded)
                           if banded else None)

    def grouped(key):
        groups: dict[str, list[float]] = {}
        for x in results:
            groups.setdefault(getattr(x, key), []).append(x.ape)
        return {k: _summary(v) for k, v in sorted(groups.items())}

    return {
        "rows": [{"id": x.id, "row": x.row, "chip": x.chip, "model": x.model, "metric": x.metric,
                  "predicted": x.predicted, "p10": x.p10, "p90": x.p90, "measured": x.measured,
                  "ape": x.ape, "plan": x.plan, "memory_note": x.memory_note}
                 for x in results],
        "skipped": [{"id": s.id, "row": s.row, "reason": s.reason} for s in skipped],
        "summary": summary,
        "by_source": grouped("source"),
        "by_chip": grouped("chip"),
    }


def cross_validate_file(path: str | Path, catalog: Catalog | None = None, by: str = "source") -> dict:
    """Grouped cross-validation (estimator/fitting/cv.py): every row predicted by parameters
    fitted without its group (its source, its chip, or itself). Same JSON shape as
    :func:`validate_file` plus ``cv`` (the grouping), the in-sample figure beside it, and
    summaries per efficiency class. A file whose rows no fitted parameter touches (serving)
    has nothing to hold out: its cross-validated figure equals the in-sample one, and says so."""
    from estimator.fitting.cv import GROUPINGS, cv_file, grouped_summary

    if by not in GROUPINGS:
        raise InputError(f"--cv must be one of {', '.join(GROUPINGS)} (got {by})")
    cat = catalog or Catalog()
    _, cols = read_rows(path)
    if all(c in cols for c in INFER_MARKERS):
        rep = validate_file(path, cat)
        rep["cv"] = by
        rep["cv_note"] = ("no serving parameter is fitted to data, so nothing is learned from the "
                          "held-out rows: the cross-validated error equals the in-sample error")
        rep["in_sample_summary"] = dict(rep["summary"])
        return rep
    rows, skipped, res = cv_file([path], cat, by)
    cv = res["cv"]
    out_rows = []
    for r, c, i in zip(rows, cv, res["in_sample"]):
        pred = r.measured * math.exp(c) if math.isfinite(c) else None
        out_rows.append({"id": r.id, "row": r.rowno, "chip": r.chip, "model": r.model,
                         "metric": r.metric, "class": r.eff_class, "stack": r.stack,
                         "predicted": pred, "measured": r.measured,
                         "ape": None if pred is None else abs(pred - r.measured) / r.measured,
                         "in_sample_ape": None if not math.isfinite(i) else abs(math.exp(i) - 1.0),
                         "group": {"source": r.source, "chip": r.chip, "row": r.id}[by]})
    ok = [x for x in out_rows if x["ape"] is not None]
    summary = _summary([x["ape"] for x in ok])
    summary["skipped"] = len(skipped) + len(out_rows) - len(ok)
    ins = _summary([x["in_sample_ape"] for x in out_rows if x["in_sample_ape"] is not None])

    def grouped(key):
        groups: dict[str, list[float]] = {}
        for x, r in zip(out_rows, rows):
            if x["ape"] is not None:
                groups.setdefault(getattr(r, key), []).append(x["ape"])
        return {k: _summary(v) for k, v in sorted(groups.items())}

    return {"cv": by, "groups": res["groups"], "rows": out_rows,
            "skipped": skipped + [{"id": x["id"], "row": x["row"], "reason": "no candidate plan fits"}
                                  for x in out_rows if x["ape"] is None],
            "summary": summary, "in_sample_summary": ins,
            "by_source": grouped("source"), "by_chip": grouped("chip"),
            "by_class": grouped("eff_class"),
            "log_residuals": {"cv": [float(x) for x in cv], "in_sample": [float(x) for x in res["in_sample"]]}}
