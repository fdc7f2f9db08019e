"""Uncertainty bands (p10-p90) for every estimate, from two sources combined:

(a) the model's own error: split-conformal quantiles of the cross-validated residuals
    log(measured / predicted) for the chip's efficiency class and the workload kind (training of
    a dense model, training of a mixture-of-experts model, serving), taken from ``uncertainty.yaml`` (written by ``suanli calibrate``). A class with too
    few calibration rows uses the pooled residuals; a class with none is "uncalibrated" and uses
    the pooled spread widened by ``UNCALIBRATED_WIDEN``;
(a') a new source (another team, cluster or software release) shifts every one of its runs
    together: the between-source standard deviation of the cross-validated residuals (random
    effect, method of moments) and the standard error of the class's fitted GEMM scale are added
    at the z-score of the band's quantile;
(b) the spread of the spec values themselves: a datasheet figure marked ``reported`` may be off
    by about 10%, ``estimated`` 25%, ``roadmap`` 35% (``official`` 3%); the chosen plan is
    re-evaluated with the chip's compute, memory bandwidth and link figures at the ends of those
    ranges.

The two are combined in log space, one side at a time, in quadrature (independent errors).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from estimator.errors import SpecError
from estimator.yamlio import read_yaml_mapping

#: half-width (relative) of a datasheet figure by its confidence
CONFIDENCE_SPREAD = {"official": 0.03, "reported": 0.10, "estimated": 0.25, "roadmap": 0.35, None: 0.25}
#: a class with no calibration rows: pooled quantiles widened by this factor
UNCALIBRATED_WIDEN = 1.5
#: fewer rows than this in a class: its quantiles are the pooled ones
MIN_CLASS_ROWS = 8
#: fewer effective sources than this (Kish: (sum n)^2 / sum n^2): a kind's between-source
#: spread is at least the dense-training one (a variance from a handful of means is noise)
MIN_SHIFT_SOURCES = 6
#: the lower and upper band quantiles
QUANTILES = (0.10, 0.90)


def conformal_quantiles(logr) -> tuple[float, float]:
    """Split-conformal (q10, q90) of log residuals log(measured / predicted): the
    ceil((n+1) q)-th order statistics, clamped to the sample."""
    v = np.sort(np.asarray([x for x in logr if np.isfinite(x)], dtype=float))
    n = len(v)
    if n == 0:
        return (math.nan, math.nan)
    lo = max(0, min(n - 1, int(math.floor((n + 1) * QUANTILES[0])) - 1))
    hi = max(0, min(n - 1, int(math.ceil((n + 1) * QUANTILES[1])) - 1))
    return float(v[lo]), float(v[hi])


#: z-score of the 90th percentile (one side of a p10-p90 band)
Z90 = 1.2816


@dataclass(frozen=True)
class ModelBand:
    q10: float            # log(measured / predicted), 10th percentile
    q90: float
    rows: int
    calibrated: bool
    basis: str
    shift_sd: float = 0.0  # log sd of a whole source's shift (between sources + fitted scale)


class BandTable:
    """Residual quantiles by workload kind and efficiency class (uncertainty.yaml)."""

    def __init__(self, data: dict, path: str = "uncertainty.yaml"):
        self.data = data
        self.path = path
        for kind, block in data.get("kinds", {}).items():
            if "pooled" not in block:
                raise SpecError(path, f"kinds.{kind}", "needs a 'pooled' entry")

    @classmethod
    def load(cls, path: str | Path) -> "BandTable":
        return cls(read_yaml_mapping(path), str(path))

    def model_band(self, kind: str, eff_class: str) -> ModelBand:
        block = self.data.get("kinds", {}).get(kind)
        if block is None:
            return ModelBand(-0.5, 0.5, 0, False, f"no {kind} residuals: +-50% by default")
        pooled = block["pooled"]
        c = block.get("classes", {}).get(eff_class)
        src = self.data.get("source", "")
        tau = float(block.get("between_source_sd", 0.0))
        se = float((c or {}).get("fit_se", 0.0))
        shift = math.sqrt(tau * tau + se * se)
        if c is not None and c.get("rows", 0) >= MIN_CLASS_ROWS:
            return ModelBand(c["q10"], c["q90"], c["rows"], True,
                             f"{kind}, class {eff_class}: {c['rows']} rows, {src}", shift)
        if c is not None and c.get("rows", 0) > 0:
            return ModelBand(pooled["q10"], pooled["q90"], c["rows"], True,
                             f"{kind}, class {eff_class}: {c['rows']} rows (too few; pooled "
                             f"{pooled['rows']} rows), {src}", shift)
        w = UNCALIBRATED_WIDEN
        return ModelBand(pooled["q10"] * w, pooled["q90"] * w, 0, False,
                         f"{kind}, class {eff_class}: uncalibrated (no measured runs); pooled "
                         f"spread x{w}, {src}", tau * w)


def combine(value: float, model: ModelBand, spec_lo: float, spec_hi: float) -> tuple[float, float]:
    """(p10, p90) of a quantity estimated as ``value``. ``spec_lo`` / ``spec_hi`` are the
    value re-evaluated with the spec figures at the low / high ends of their ranges (for a time,
    pass them swapped so that lo <= hi)."""
    if not (value > 0 and math.isfinite(value)):
        return (value, value)
    a = min(model.q10, 0.0)
    b = max(model.q90, 0.0)
    z = Z90 * model.shift_sd
    s_lo = math.log(min(spec_lo, value) / value) if spec_lo > 0 else 0.0
    s_hi = math.log(max(spec_hi, value) / value) if spec_hi > 0 else 0.0
    lo = -math.sqrt(a * a + z * z + s_lo * s_lo)
    hi = math.sqrt(b * b + z * z + s_hi * s_hi)
    return value * math.exp(lo), value * math.exp(hi)


def spec_spread(chip, system) -> dict[str, float]:
    """Relative half-widths of the datasheet figures behind an estimate, by confidence:
    {compute, hbm_bw, scale_up, scale_out}."""
    def conf(s):
        return CONFIDENCE_SPREAD.get(getattr(s, "confidence", None), CONFIDENCE_SPREAD[None])

    pk = chip.peak_tflops
    peak = next((getattr(pk, p) for p in ("bf16", "fp16", "fp8") if getattr(pk, p) is not None
                 and getattr(pk, p).value is not None), None)
    return {"compute": conf(peak) if peak is not None else CONFIDENCE_SPREAD[None],
            "hbm_bw": conf(chip.memory.bandwidth_gb_per_s),
            "scale_up": conf(system.scale_up.bandwidth_gb_per_s_per_chip),
            "scale_out": conf(system.scale_out.nic_gbit_per_s_per_chip)}


def spec_overrides(spread: dict[str, float], side: int, base: dict | None = None) -> dict[str, float]:
    """Derate multipliers putting every figure at the low (side=-1) or high (+1) end."""
    out = dict(base or {})
    for k, w in spread.items():
        out[k] = out.get(k, 1.0) * (1.0 + side * w)
    return out


def between_source_sd(groups: list[str], logr) -> float:
    """Random-effect sd of a source's mean residual (method of moments): the variance of the
    source means less the part their within-source noise explains."""
    by: dict[str, list[float]] = {}
    for g, x in zip(groups, logr):
        if np.isfinite(x):
            by.setdefault(g, []).append(float(x))
    if len(by) < 3:
        return 0.0
    means = [np.mean(v) for v in by.values()]
    within = [np.var(v, ddof=1) / len(v) if len(v) > 1 else 0.0 for v in by.values()]
    return float(math.sqrt(max(0.0, np.var(means, ddof=1) - np.mean(within))))


def build_band_table(train_rows, train_cv, serving_rows=None, source: str = "",
                     fit_se: dict[str, float] | None = None, serving_sources=None) -> dict:
    """uncertainty.yaml content from cross-validated training residuals (rows with their
    efficiency class; ``train_cv`` = log(predicted / measured) per row) and, optionally, serving
    rows [(eff_class, log(predicted / measured))] with their sources (serving fits no parameter
    of its own, but its mechanisms were built while looking at these rows: a new source's shift
    is covered by the between-source spread, as for training)."""
    def block(pairs, groups=None):
        pooled = [-x for _, x in pairs if np.isfinite(x)]
        q10, q90 = conformal_quantiles(pooled)
        out = {"pooled": {"q10": round(q10, 4), "q90": round(q90, 4), "rows": len(pooled)},
               "between_source_sd": round(between_source_sd(groups, [x for _, x in pairs]), 4)
               if groups else 0.0,
               "classes": {}}
        classes = sorted({c for c, _ in pairs})
        for c in classes:
            v = [-x for cc, x in pairs if cc == c and np.isfinite(x)]
            a, b = conformal_quantiles(v)
            out["classes"][c] = {"q10": round(a, 4), "q90": round(b, 4), "rows": len(v),
                                 "fit_se": round(float((fit_se or {}).get(c, 0.0)), 4)}
        return out

    def floor_shift(b, groups, ref):
        # a handful of sources cannot estimate a between-source variance (method of moments on
        # a few means is mostly noise, often 0). Sources count by Kish's effective number,
        # (sum n_g)^2 / sum n_g^2, so one source holding most rows counts as about one: below
        # MIN_SHIFT_SOURCES the kind takes at least the dense-training spread, the same
        # variation between teams, clusters and software releases
        sizes: dict = {}
        for g in groups or []:
            sizes[g] = sizes.get(g, 0) + 1
        tot = sum(sizes.values())
        n_eff = tot * tot / sum(v * v for v in sizes.values()) if sizes else 0.0
        if n_eff < MIN_SHIFT_SOURCES and b["between_source_sd"] < ref:
            b["between_source_sd"] = ref
            b["between_source_basis"] = (f"{len(sizes)} sources, {n_eff:.1f} effective: at least "
                                         f"the dense-training spread ({ref:.4f})")
        return b

    pairs = list(zip(train_rows, train_cv))
    dense = [(r.eff_class, x) for r, x in pairs if r.search.model.moe is None]
    moe = [(r.eff_class, x) for r, x in pairs if r.search.model.moe is not None]
    kinds = {"training": block(dense, [r.source for r, _ in pairs if r.search.model.moe is None])}
    ref = kinds["training"]["between_source_sd"]
    if moe:
        g = [r.source for r, _ in pairs if r.search.model.moe is not None]
        kinds["training-moe"] = floor_shift(block(moe, g), g, ref)
    if serving_rows:
        kinds["serving"] = floor_shift(block(serving_rows, serving_sources), serving_sources, ref)
    return {"source": source, "quantiles": list(QUANTILES), "kinds": kinds,
            "method": "split-conformal quantiles of log(measured / predicted): training from "
                      "leave-one-source-out cross-validation, serving from the model's residuals "
                      "(no serving parameter is fitted); classes with fewer than "
                      f"{MIN_CLASS_ROWS} rows use the pooled quantiles, classes with none the "
                      f"pooled ones x{UNCALIBRATED_WIDEN}; kinds with fewer than "
                      f"{MIN_SHIFT_SOURCES} effective sources take at least the dense-training "
                      "between-source spread"}
