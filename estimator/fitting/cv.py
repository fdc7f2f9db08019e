"""Grouped cross-validation: for each group of rows (a source, a chip, or one row), refit the
parameters on the other groups and predict the held-out group. The honest accuracy of the tool
is the leave-one-source-out figure."""
from __future__ import annotations

import numpy as np

from estimator.catalog import Catalog
from estimator.errors import InputError
from estimator.fitting.calibrate import fit_rows, load_rows, summary
from estimator.fitting.data import FitRow, rechoose
from estimator.fitting.fit import Vectors, log_residuals, predict
from estimator.fitting.priors import PriorCatalog

GROUPINGS = ("source", "chip", "row")


def group_of(r: FitRow, by: str) -> str:
    return {"source": r.source or r.id, "chip": r.chip, "row": r.id}[by]


def cross_validate(rows: list[FitRow], pcat: PriorCatalog, by: str = "source") -> dict:
    """Out-of-group log residuals per row, with the in-sample ones beside them."""
    if by not in GROUPINGS:
        raise InputError(f"--cv must be one of {', '.join(GROUPINGS)} (got {by})")
    full = fit_rows(list(rows), pcat)
    insample = full.after
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(group_of(r, by), []).append(i)
    cv = np.full(len(rows), np.nan)
    for g, ix in groups.items():
        train = [rows[i] for i in range(len(rows)) if i not in set(ix)]
        held = [rows[i] for i in ix]
        if train:
            res = fit_rows(train, pcat)
            vec = Vectors(train, res.params)
            # the held-out rows see the values fitted without them (classes and stacks the
            # training rows never touched stay at their priors)
            rechoose(held, lambda r: vec(r, res.values))
            cv[ix] = log_residuals(held, predict(held, vec, res.values))
        else:
            vec = Vectors(held, [])
            cv[ix] = log_residuals(held, predict(held, vec, np.zeros(0)))
    # restore the candidates chosen under the full fit
    vec = Vectors(rows, full.params)
    rechoose(rows, lambda r: vec(r, full.values))
    return {"by": by, "groups": len(groups), "cv": cv, "in_sample": insample}


def cv_file(data: list, catalog: Catalog, by: str = "source") -> tuple[list[FitRow], list[dict], dict]:
    rows, skipped, pcat = load_rows(data, catalog)
    if not rows:
        raise InputError("no usable rows to cross-validate")
    return rows, skipped, cross_validate(rows, pcat, by)


def grouped_summary(rows: list[FitRow], logr: np.ndarray, key: str) -> dict:
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(getattr(r, key), []).append(i)
    return {g: summary(logr[ix]) for g, ix in sorted(groups.items())}
