"""Maximum-a-posteriori fit of the efficiency and stack parameters to measured runs.

Model: log(measured) = log(predicted(theta)) + e, with e of typical size SIGMA and a robust
(soft-L1) cost so one odd row cannot drag the fit; each parameter has a log-normal prior centred
on its micro-benchmark value (estimator/fitting/params.py). Minimised with
scipy.optimize.least_squares in log-parameter space within physical bounds. Standard errors come
from the Jacobian at the optimum (Laplace approximation of the posterior).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from estimator.fitting.data import FitRow
from estimator.fitting.params import Param, apply_class, apply_stack

#: typical model error in log units (about 10%): weighs the data against the priors
SIGMA = 0.10
#: soft-L1 knee in log units: residuals beyond ~20% count linearly, not quadratically
F_SCALE = 0.20
#: penalty residual (log units) for a row that no candidate plan fits under some parameters
INFEASIBLE = math.log(10.0)


def _least_squares():
    """scipy.optimize.least_squares, imported here: scipy is the optional ``fit`` extra (numba
    loads scipy.linalg on its first kernel call whenever scipy is installed, ~0.5 s of start-up)."""
    try:
        from scipy.optimize import least_squares
    except ImportError:
        from estimator.errors import InputError
        raise InputError("fitting needs scipy: pip install 'suanli[fit]' (or pip install scipy)") from None
    return least_squares


def _robust(r: np.ndarray) -> np.ndarray:
    """Signed residuals whose squares are the soft-L1 cost 2 f^2 (sqrt(1 + (r/f)^2) - 1)."""
    f = F_SCALE
    return np.sign(r) * np.sqrt(2.0 * f * f * (np.sqrt(1.0 + (r / f) ** 2) - 1.0))


class Vectors:
    """Packed (hv, sv) of each row under a parameter vector: the prior vectors with the fitted
    parameters written in."""

    def __init__(self, rows: list[FitRow], params: list[Param]):
        self.rows = rows
        self.params = params
        self.by_class: dict[str, list[int]] = {}
        self.by_stack: dict[str, list[int]] = {}
        for j, p in enumerate(params):
            (self.by_class if p.kind == "class" else self.by_stack).setdefault(p.owner, []).append(j)

    def __call__(self, row: FitRow, x: np.ndarray):
        hv = row.search.hv.copy()
        sv = row.search.sv.copy()
        for j in self.by_class.get(row.eff_class, ()):
            apply_class(hv, row.search.hv, self.params[j].name, x[j])
        for j in self.by_stack.get(row.stack, ()):
            apply_stack(sv, self.params[j].name, x[j])
        return hv, sv


def predict(rows: list[FitRow], vec: Vectors, x: np.ndarray) -> np.ndarray:
    return np.array([r.predict(*vec(r, x)) for r in rows])


@dataclass
class FitResult:
    params: list[Param]
    values: np.ndarray
    se: np.ndarray
    rows: list[FitRow]
    before: np.ndarray            # log(predicted / measured) under the priors
    after: np.ndarray             # ... and under the fitted values
    success: bool
    message: str
    nfev: int
    extra: dict = field(default_factory=dict)

    def value(self, kind: str, owner: str, name: str, default: float | None = None) -> float | None:
        for p, v in zip(self.params, self.values):
            if (p.kind, p.owner, p.name) == (kind, owner, name):
                return float(v)
        return default


def log_residuals(rows: list[FitRow], pred: np.ndarray) -> np.ndarray:
    meas = np.array([r.measured for r in rows])
    return np.log(np.where(np.isfinite(pred) & (pred > 0), pred, np.nan) / meas)


def fit(rows: list[FitRow], params: list[Param], max_nfev: int = 400) -> FitResult:
    """Fit ``params`` to ``rows`` (rows whose prior prediction is infeasible are left out)."""
    vec = Vectors(rows, params)
    x0 = np.array([p.prior for p in params], dtype=float)
    before = log_residuals(rows, predict(rows, vec, x0))
    use = [i for i, r in enumerate(before) if np.isfinite(r)]
    fit_rows = [rows[i] for i in use]
    if not params or not fit_rows:
        return FitResult(params, x0, np.zeros(len(params)), rows, before, before.copy(), True,
                         "nothing to fit", 0)
    y0 = np.log(x0)
    lo = np.log([p.lo for p in params])
    hi = np.log([p.hi for p in params])
    y0 = np.clip(y0, lo + 1e-9, hi - 1e-9)
    sd = np.array([p.sd for p in params])
    meas = np.log([r.measured for r in fit_rows])

    def resid(y):
        x = np.exp(y)
        pred = np.array([r.predict(*vec(r, x)) for r in fit_rows])
        ok = np.isfinite(pred) & (pred > 0)
        r = np.where(ok, np.log(np.where(ok, pred, 1.0)) - meas, INFEASIBLE)
        return np.concatenate([_robust(r) / SIGMA, (y - np.log(x0)) / sd])

    least_squares = _least_squares()
    sol = least_squares(resid, y0, bounds=(lo, hi), method="trf", x_scale=sd, diff_step=1e-3,
                        max_nfev=max_nfev)
    y = sol.x
    x = np.exp(y)
    # posterior covariance of log-parameters from the Jacobian of the normalised residuals
    J = sol.jac
    try:
        cov = np.linalg.pinv(J.T @ J)
        se = x * np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:  # pragma: no cover
        se = np.full(len(x), np.nan)
    after = log_residuals(rows, predict(rows, vec, x))
    return FitResult(params, x, se, rows, before, after, bool(sol.success), str(sol.message),
                     int(sol.nfev))
