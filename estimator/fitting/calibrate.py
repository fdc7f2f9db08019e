"""`suanli calibrate`: fit the parameters marked `fitted` for the classes and stacks that
measured runs touch, report the error before and after per row and per class, and write a spec
folder (efficiency.yaml, stacks.yaml) usable with --spec-dir."""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from estimator.catalog import Catalog
from estimator.errors import InputError
from estimator.fitting.data import FitRow, load_training_rows, rechoose
from estimator.fitting.fit import FitResult, Vectors, fit
from estimator.fitting.params import Param, make_params
from estimator.fitting.priors import PriorCatalog


@dataclass
class Calibration:
    result: FitResult
    rows: list[FitRow]
    skipped: list[dict]
    data: list[str]
    classes: list[str]
    catalog: object = None        # the prior view the fit started from

    def row_report(self) -> list[dict]:
        out = []
        for r, b, a in zip(self.rows, self.result.before, self.result.after):
            out.append({"id": r.id, "source": r.source, "chip": r.chip, "class": r.eff_class,
                        "stack": r.stack, "metric": r.metric, "measured": r.measured,
                        "before": _signed(b), "after": _signed(a)})
        return out

    def class_report(self) -> dict:
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(self.rows):
            groups.setdefault(r.eff_class, []).append(i)
        return {c: {"rows": len(ix), "before": summary(self.result.before[ix]),
                    "after": summary(self.result.after[ix])} for c, ix in sorted(groups.items())}

    def parameters(self) -> list[dict]:
        return [{"kind": p.kind, "owner": p.owner, "name": p.name, "prior": p.prior,
                 "prior_sd_log": p.sd, "value": float(v), "se": float(s)}
                for p, v, s in zip(self.result.params, self.result.values, self.result.se)]

    def to_dict(self) -> dict:
        return {"data": self.data, "classes": self.classes, "fit": {
                    "success": self.result.success, "message": self.result.message,
                    "evaluations": self.result.nfev},
                "parameters": self.parameters(), "by_class": self.class_report(),
                "rows": self.row_report(), "skipped": self.skipped}


def _signed(logr: float) -> float | None:
    return None if not np.isfinite(logr) else float(math.exp(logr) - 1.0)


def summary(logr) -> dict:
    """Median / p90 / max absolute percentage error and median signed error of log residuals."""
    v = np.asarray([x for x in logr if np.isfinite(x)])
    if len(v) == 0:
        return {"count": 0, "median_ape": None, "p90_ape": None, "max_ape": None, "median_signed": None}
    ape = np.abs(np.exp(v) - 1.0)
    return {"count": int(len(v)), "median_ape": float(np.median(ape)),
            "p90_ape": float(np.percentile(ape, 90)), "max_ape": float(ape.max()),
            "median_signed": float(np.median(np.exp(v) - 1.0))}


def params_for(rows: list[FitRow], catalog: Catalog) -> list[Param]:
    """The fitted parameters of the classes and stacks the rows touch."""
    ef = catalog.efficiency()
    sf = catalog.stacks()
    classes = {r.eff_class: list(ef.classes[r.eff_class].fitted) for r in rows}
    stacks = {r.stack: list(sf.stacks[r.stack].fitted) for r in rows}
    cvals = {c: ef.classes[c].model_dump() for c in classes}
    svals = {s: sf.stacks[s].training.params.model_dump() for s in stacks}
    return make_params(classes, stacks, cvals, svals)


def fit_rows(rows: list[FitRow], catalog: Catalog) -> FitResult:
    """Fit, then re-choose each row's candidate plans at the fitted values and fit once more
    (the best plan can change when the parameters move)."""
    params = params_for(rows, catalog)
    res = fit(rows, params)
    if params and res.nfev > 0:
        vec = Vectors(rows, params)
        rechoose(rows, lambda r: vec(r, res.values))
        res2 = fit(rows, params)
        res2.before = res.before
        res = res2
    return res


def load_rows(data: list[str | Path], catalog: Catalog) -> tuple[list[FitRow], list[dict], PriorCatalog]:
    pcat = PriorCatalog(catalog)
    rows: list[FitRow] = []
    skipped: list[dict] = []
    for d in data:
        r, s = load_training_rows(d, pcat)
        rows += r
        skipped += [{**x, "file": str(d)} for x in s]
    return rows, skipped, pcat


def calibrate(data: list[str | Path], catalog: Catalog, classes: list[str] | None = None) -> Calibration:
    """Fit the public parameters to the runs in ``data`` (training CSVs, validation schema).

    Raises InputError with one line for: no usable rows, no rows for a requested class, a class
    whose every parameter is fixed."""
    rows, skipped, pcat = load_rows(data, catalog)
    known = set(pcat.efficiency().classes)
    for c in classes or []:
        if c not in known:
            raise InputError(f"--class {c}: unknown efficiency class (known: {', '.join(sorted(known))})")
    if classes:
        rows = [r for r in rows if r.eff_class in classes]
        for c in classes:
            if not any(r.eff_class == c for r in rows):
                raise InputError(f"--class {c}: the data has no usable rows for this class")
    if not rows:
        why = f"; first: {skipped[0]['reason']}" if skipped else ""
        raise InputError(f"no usable rows in {', '.join(map(str, data))} ({len(skipped)} skipped{why})")
    params = params_for(rows, pcat)
    touched = sorted({r.eff_class for r in rows})
    if not any(p.kind == "class" for p in params):
        raise InputError(f"class(es) {', '.join(touched)}: every parameter is fixed (the class's "
                         "`fitted` list is empty); nothing to calibrate")
    res = fit_rows(rows, pcat)
    if not np.isfinite(res.before).any():
        raise InputError("no row fits in memory under any candidate plan: nothing to calibrate")
    return Calibration(res, rows, skipped, [str(d) for d in data], touched, pcat)


def today() -> str:
    return _dt.date.today().isoformat()
