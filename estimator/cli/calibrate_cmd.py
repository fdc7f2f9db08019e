"""`suanli calibrate`: fit the efficiency and stack parameters to measured runs."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from estimator.cli.app import JsonOpt, SpecDirOpt, _cat, app
from estimator.cli.render import console, emit_json, kv, table


def _check_out_dir(out: Path) -> None:
    """Refuse an output folder that cannot be written, before any work is done."""
    import os

    from estimator.errors import InputError

    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK) or str(probe.resolve()).startswith(("/proc", "/sys")):
        raise InputError(f"--out {out}: cannot create or write this folder")


def _pct(v):
    return None if v is None else 100 * v


@app.command()
def calibrate(
    data: list[Path] = typer.Option(..., "--data", help="Measured training runs (CSV in the validation "
                                    "schema); repeat for several files."),
    classes: Optional[list[str]] = typer.Option(None, "--class", help="Fit only rows of this efficiency "
                                                "class (repeatable), e.g. ascend."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write DIR/efficiency.yaml, DIR/stacks.yaml and "
                                       "DIR/uncertainty.yaml (use with --spec-dir DIR)."),
    serving_data: Optional[list[Path]] = typer.Option(None, "--serving-data", help="Measured serving runs "
                                                      "whose residuals set the serving bands in "
                                                      "DIR/uncertainty.yaml."),
    spec_dir: Optional[list[Path]] = SpecDirOpt,
    as_json: bool = JsonOpt,
):
    """Fit the parameters marked `fitted` to measured runs; report errors before and after."""
    from estimator.fitting.calibrate import calibrate as run
    from estimator.fitting.write import write_bands, write_calibration

    cat = _cat(spec_dir)
    if out is not None:
        _check_out_dir(out)
    cal = run([str(d) for d in data], cat, classes=classes or None)
    written = [str(p) for p in write_calibration(cal, cat, out)] if out is not None else []
    if out is not None:
        written.append(str(write_bands(cal, out, [str(f) for f in serving_data or []], cat)))
    d = {**cal.to_dict(), "written": written}
    if as_json:
        emit_json(d)
        return
    table("fitted parameters (prior = micro-benchmark value; se from the fit)",
          [("kind", "kind"), ("owner", "class / stack"), ("name", "parameter"), ("prior", "prior"),
           ("value", "fitted"), ("se", "se")], d["parameters"], digits=3)
    table("per class (APE %, in-sample)",
          [("cls", "class"), ("rows", "rows"), ("b_med", "median before"), ("a_med", "median after"),
           ("b_p90", "p90 before"), ("a_p90", "p90 after"), ("a_sig", "median signed after")],
          [{"cls": c, "rows": v["rows"], "b_med": _pct(v["before"]["median_ape"]),
            "a_med": _pct(v["after"]["median_ape"]), "b_p90": _pct(v["before"]["p90_ape"]),
            "a_p90": _pct(v["after"]["p90_ape"]), "a_sig": _pct(v["after"]["median_signed"])}
           for c, v in d["by_class"].items()])
    table("per row (signed error %, predicted vs measured)",
          [("id", "id"), ("class", "class"), ("stack", "stack"), ("b", "before"), ("a", "after")],
          [{"id": r["id"], "class": r["class"], "stack": r["stack"], "b": _pct(r["before"]),
            "a": _pct(r["after"])} for r in d["rows"]])
    for s in d["skipped"]:
        console.print(f"skipped {s['id']}: {s['reason']}")
    kv("calibrate", [("rows fitted", len(cal.rows)), ("fit", d["fit"]["message"]),
                     ("written", ", ".join(written) or "- (no --out)")])
