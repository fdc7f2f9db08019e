"""Measured runs prepared once for fitting: each row's plan search is packed a single time and
its candidate plans kept, so a parameter change re-evaluates a few plans, not the whole search.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from estimator.catalog import Catalog
from estimator.errors import SuanliError
from estimator.training import PreparedSearch, evaluate_plans, prepare_search
from estimator.validate import INFER_MARKERS, read_rows, train_row_request
from kernels import layout as K
from kernels.training import evaluate_training, new_outputs

#: candidate plans kept per row (the best under the prior parameters, then re-chosen)
CANDIDATES = 48


@dataclass
class FitRow:
    id: str
    rowno: int
    source: str
    chip: str
    eff_class: str
    stack: str
    model: str
    metric: str
    measured: float
    search: PreparedSearch
    candidates: np.ndarray = field(default=None)
    peak_chip_flops: np.ndarray = field(default=None)     # per candidate, for the MFU metric

    def predict(self, hv: np.ndarray, sv: np.ndarray) -> float:
        """The row's metric with the best feasible candidate under (hv, sv); nan if none fits."""
        P = self.candidates
        out, st = new_outputs(len(P))
        evaluate_training(self.search.mv, hv, sv, P, out, st)
        ok = np.flatnonzero(st == K.ST_OK)
        if len(ok) == 0:
            return math.nan
        best = ok[np.argmax(out[ok, K.O_TOKENS_PER_S])]
        return metric_of(self, out[best], best)


def metric_of(row: FitRow, o: np.ndarray, cand: int) -> float:
    tps = float(o[K.O_TOKENS_PER_S])
    chips = row.search.chips
    if row.metric == "tokens_per_s_per_chip":
        return tps / chips
    if row.metric == "step_time_s":
        return float(o[K.O_STEP])
    return tps * float(o[K.O_MODEL_FLOPS_TOK]) / (chips * row.peak_chip_flops[cand])


def _choose_candidates(row: FitRow, hv: np.ndarray, sv: np.ndarray) -> None:
    ps = row.search
    oc = evaluate_plans(ps.mv, hv, sv, ps.plans)
    order = oc.top(CANDIDATES)
    if len(order) == 0:   # nothing fits: keep the plans that come closest, to report the miss
        order = np.argsort(oc.out[:, K.O_MEM_TOTAL])
    keep = order[:CANDIDATES]
    row.candidates = ps.plans[keep].copy()
    from estimator.packing import PREC_NAMES
    c = ps.chip
    peaks = []
    for p in row.candidates:
        prec = PREC_NAMES[int(p[K.P_PREC])]
        pk = c.peak(prec) if c.peak(prec) is not None else c.peak("fp16")
        peaks.append((pk or 0.0) * 1e12)
    row.peak_chip_flops = np.array(peaks)


def load_training_rows(path: str | Path, catalog: Catalog) -> tuple[list[FitRow], list[dict]]:
    """Rows of a training CSV in the validation schema, prepared for fitting; the rows that
    cannot be estimated (unknown chip, null spec, impossible plan) come back as skipped."""
    rows, cols = read_rows(path)
    if all(c in cols for c in INFER_MARKERS):
        raise SuanliError(f"{path}: an inference file; calibration fits training rows")
    base = Path(path).resolve().parent
    out: list[FitRow] = []
    skipped: list[dict] = []
    for i, raw in enumerate(rows, start=2):
        r = {k.strip(): (v if isinstance(v, str) else "") for k, v in raw.items() if k is not None}
        rid = (r.get("id") or f"row{i}").strip()
        try:
            kw, metric, measured = train_row_request(r, i, base)
            ps = prepare_search(kw.pop("model"), kw.pop("chip"), catalog=catalog, **kw)
        except SuanliError as e:
            skipped.append({"id": rid, "row": i, "reason": str(e)})
            continue
        fr = FitRow(id=rid, rowno=i, source=(r.get("source") or "").strip(), chip=ps.chip.id,
                    eff_class=ps.eff_class, stack=ps.stack, model=ps.model.name, metric=metric,
                    measured=measured, search=ps)
        _choose_candidates(fr, ps.hv, ps.sv)
        out.append(fr)
    return out, skipped


def rechoose(rows: list[FitRow], vectors) -> None:
    """Re-select each row's candidate plans under new (hv, sv) (after a fit moved far)."""
    for r in rows:
        hv, sv = vectors(r)
        _choose_candidates(r, hv, sv)
