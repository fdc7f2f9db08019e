"""Write a calibration as a spec folder: efficiency.yaml and stacks.yaml with the fitted values,
the prior (micro-benchmark) values kept beside them, and what the fit used and found."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from estimator.catalog import Catalog
from estimator.errors import SpecError
from estimator.fitting.calibrate import Calibration, today
from estimator.fitting.params import MAX_EFF
from estimator.fitting.priors import CLASS_FIELDS
from estimator.yamlio import read_yaml_mapping


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no anchors or aliases (spec files refuse them), short lists inline."""

    def ignore_aliases(self, data):
        return True


def _dump(data: dict) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True,
                     default_flow_style=None)


def _header(path: Path) -> str:
    """The leading comment block of a YAML file (kept verbatim)."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            lines.append(line)
        else:
            break
    return "\n".join(lines).rstrip() + "\n" if lines else ""


def _class_update(c: dict, name: str, value: float) -> None:
    prior = c.setdefault("prior", {})
    for f in CLASS_FIELDS:            # keep the pre-calibration values once
        if f in c and f not in prior and c[f] is not None:
            prior[f] = copy.deepcopy(c[f])
    if name == "gemm":
        g = prior["gemm"]
        c["gemm"] = {"gflop": list(g["gflop"]),
                     "efficiency": [round(min(MAX_EFF, y * value), 4) for y in g["efficiency"]]}
    elif name == "attention":
        for f in ("attention_fwd", "attention_bwd", "attention3_fwd", "attention3_bwd"):
            if prior.get(f) is not None:
                c[f] = round(min(MAX_EFF, prior[f] * value), 4)
    elif name == "grouped":
        prior.setdefault("grouped_gemm_factor", c.get("grouped_gemm_factor", 1.0))
        c["grouped_gemm_factor"] = round(value, 4)
    elif name == "tp_overlap":
        prior.setdefault("tp_overlap_efficiency", c.get("tp_overlap_efficiency", 0.8))
        c["tp_overlap_efficiency"] = round(value, 4)
    else:
        lp = dict(c.get("low_precision_factor") or {})
        lp[name] = round(value, 4)
        c["low_precision_factor"] = lp


def write_calibration(cal: Calibration, catalog: Catalog, out_dir: str | Path) -> list[Path]:
    """Write DIR/efficiency.yaml and DIR/stacks.yaml; returns the files written."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpecError(str(out), None, f"cannot create output folder ({e.strerror or e})") from None
    written = []
    stamp = {"data": cal.data, "rows": len(cal.rows), "date": today(),
             "method": "MAP fit in log space, soft-L1 data cost, log-normal priors "
                       "(estimator/fitting); se from the Jacobian at the optimum"}
    for fname, kind in (("efficiency.yaml", "class"), ("stacks.yaml", "stack")):
        src = catalog.spec_file(fname)
        data = read_yaml_mapping(src)
        table = data["classes"] if kind == "class" else data["stacks"]
        touched: dict[str, dict] = {}
        for p, v, se in zip(cal.result.params, cal.result.values, cal.result.se):
            if p.kind != kind:
                continue
            entry = table[p.owner]
            if kind == "class":
                _class_update(entry, p.name, float(v))
            else:
                prior = entry.setdefault("prior", {})
                prior.setdefault(p.name, entry["training"]["params"][p.name])
                entry["training"]["params"][p.name] = round(float(v), 4)
            touched.setdefault(p.owner, {})[p.name] = {"value": round(float(v), 4),
                                                       "se": round(float(se), 4)}
        for owner, values in touched.items():
            table[owner]["calibration"] = {**stamp, "values": values,
                                           "rows_of_this_" + kind: sum(
                                               1 for r in cal.rows
                                               if (r.eff_class if kind == "class" else r.stack) == owner)}
        path = out / fname
        try:
            path.write_text(_header(src) + _dump(data), encoding="utf-8")
        except OSError as e:
            raise SpecError(str(path), None, f"cannot write ({e.strerror or e})") from None
        written.append(path)
    return written


def write_bands(cal: Calibration, out_dir: str | Path, serving_data: list[str] | None = None,
                catalog: Catalog | None = None) -> Path:
    """DIR/uncertainty.yaml: conformal quantiles of leave-one-source-out cross-validated
    training residuals (and of serving residuals, when serving runs are given)."""
    import math

    from estimator.fitting.bands import build_band_table
    from estimator.fitting.cv import cross_validate

    res = cross_validate(cal.rows, cal.catalog, "source")
    serving, serving_sources = [], []
    for f in serving_data or []:
        from estimator.validate import read_rows, validate_file

        rep = validate_file(f, catalog=catalog)
        source_of = {r.get("id"): (r.get("source") or r.get("id")) for r in read_rows(f)[0]}
        cls_of = {}
        for r in rep["rows"]:
            if r["chip"] not in cls_of:
                cls_of[r["chip"]] = (catalog or Catalog()).efficiency().for_chip(r["chip"])[0]
            serving.append((cls_of[r["chip"]], math.log(r["predicted"] / r["measured"])))
            serving_sources.append(source_of.get(r["id"], r["id"]))
    fit_se = {p.owner: float(se / v) for p, v, se in zip(cal.result.params, cal.result.values, cal.result.se)
              if p.kind == "class" and p.name == "gemm" and v > 0}
    table = build_band_table(cal.rows, res["cv"], serving, serving_sources=serving_sources,
                             source=f"calibrate {', '.join(cal.data + list(serving_data or []))} on {today()}",
                             fit_se=fit_se)
    path = Path(out_dir) / "uncertainty.yaml"
    head = ("# Residual quantiles behind the p10-p90 band of every estimate (estimator/fitting/bands.py).\n"
            "# Written by `suanli calibrate --out`; log(measured / predicted) at the 10th and 90th percentile.\n")
    try:
        path.write_text(head + _dump(table), encoding="utf-8")
    except OSError as e:
        raise SpecError(str(path), None, f"cannot write ({e.strerror or e})") from None
    return path
