"""`suanli roadmap`: year by year, the fastest cluster each scenario's buyer can build, the
lead of one scenario over another, and the parity year."""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Optional

import typer

from estimator.cli.app import JsonOpt, SpecDirOpt, _cat, app
from estimator.cli.options import number
from estimator.cli.render import console, emit_json, plan_text, table
from estimator.errors import InputError
from estimator.goodput import DEFAULT_CKPT_GB_PER_S_PER_NODE, DEFAULT_MTBF_CHIP_H, DEFAULT_RESTART_S
from estimator.power import PUE_DEFAULT
from estimator.units import parse_count


def parse_years(text: str) -> list[int]:
    """'2025:2030' -> [2025..2030]; '2027' -> [2027]."""
    t = text.strip()
    try:
        parts = [int(x) for x in t.split(":")]
    except ValueError:
        raise InputError(f"--years: cannot read {text!r} (examples: 2025:2030, 2027)") from None
    if len(parts) not in (1, 2):
        raise InputError(f"--years: cannot read {text!r} (examples: 2025:2030, 2027)")
    lo, hi = parts[0], parts[-1]
    if not (1990 <= lo <= hi <= 2100):
        raise InputError(f"--years {text!r}: need 1990 <= first <= last <= 2100")
    if hi - lo > 40:
        raise InputError(f"--years {text!r}: at most 41 years")
    return list(range(lo, hi + 1))


def parse_assume_tdp(items: list[str] | None, cat) -> dict[str, float]:
    out: dict[str, float] = {}
    for it in items or []:
        if "=" not in it:
            raise InputError(f"--assume-tdp expects CHIP=WATTS, got {it!r}")
        name, w = it.split("=", 1)
        chip = cat.chip(name.strip())
        try:
            watts = float(w)
        except ValueError:
            raise InputError(f"--assume-tdp {it!r}: {w!r} is not a number") from None
        if not (0 < watts < 100_000):
            raise InputError(f"--assume-tdp {it!r}: watts must be in (0, 100000)")
        out[chip.id] = watts
    return out


def _writable(path: Path | None, flag: str, suffix: str | None = None) -> None:
    if path is None:
        return
    if suffix and path.suffix.lower() != suffix:
        raise InputError(f"{flag} {path}: give a {suffix} file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{flag} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"{flag} {path}: not writable")


CSV_KEYS = ["year", "scenario", "found", "chip", "system", "chips", "nodes", "binding", "limit_chips",
            "precision", "tokens_per_s", "mfu", "goodput", "days", "days_with_failures", "days_p10",
            "days_p90", "power_mw", "energy_mwh", "roadmap", "confidence", "export_class", "available"]


def _write_csv(path: Path, rows: list[dict], leads: dict) -> None:
    try:
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_KEYS + ["reference_lead", "plan", "binding_basis", "notes", "why"])
            for d in rows:
                w.writerow([d[k] for k in CSV_KEYS]
                           + [leads.get((d["year"], d["scenario"])), plan_text(d["plan"], full=False),
                              d["binding_basis"], "; ".join(d["notes"]), d["why"]])
    except OSError as e:
        raise InputError(f"--csv {path}: cannot write ({e.strerror or e})") from None


def _assumptions(q, frame: str, ref: dict | None, result: dict, views) -> list[str]:
    from estimator.scenarios.roadmap import COUNT_MULTIPLIERS

    a = []
    if ref:
        a.append(f"run: {ref['text']}")
    a.append(f"frame: {frame}; facility power = IT power x PUE {q.pue:g}")
    a.append("each year: the fastest cluster among every usable (chip, system) pair, at whole-node counts "
             f"node x {{{', '.join(map(str, COUNT_MULTIPLIERS))}}} x 2^a below the binding limit, "
             "each with the full plan search; goodput with failures (per-chip MTBF "
             f"{q.mtbf_chip_h:,.0f} h, Llama 3 paper) ranks them")
    a.append("a part counts from its availability date (shipment; announced date for roadmap parts); "
             "a date without a quarter counts from Q4" + (f"; plus a {q.lag_quarters}-quarter deployment lag"
                                                         if q.lag_quarters else ""))
    a.extend(dict.fromkeys(n for r in result["rows"] for n in r.notes))
    for v in views:
        for c in v.scn.caps:
            lo, hi = c.span
            what = f"{c.max_chips:,} chips" if c.max_chips is not None else f"{c.max_power_mw:g} MW"
            a.append(f"{v.scn.id} cap {lo}{'' if lo == hi else f'-{hi}'}"
                     f" ({', '.join(c.chips) if c.chips else 'every chip'}): {what}; {c.provenance()}")
    a.append(f"band: {result['band']}" + ("" if result["band"] != "not available" else
                                           " (the estimator gives no p10-p90 for these runs; parity means "
                                           "the challenger is at least as fast)"))
    a.append("confidence of a row = the weakest of its peak, memory, link, power and availability facts "
             "(official < reported < estimated < roadmap)")
    return a


def _exclusions(rows) -> list[str]:
    """Why usable-looking options were left out, one line per (scenario, chip, system, reason)."""
    seen: dict[tuple, list[int]] = {}
    nosys: dict[str, set] = {}
    for r in rows:
        for e in r.excluded:
            if e["reason"].startswith("not available by") or e["reason"].startswith("system not available by"):
                continue
            if e["system"] is None and e["reason"].startswith("no system spec"):
                nosys.setdefault(r.scenario, set()).add(e["chip"])
                continue
            seen.setdefault((r.scenario, e["chip"], e["system"], e["reason"]), []).append(r.year)
    out = []
    for (sid, chip, system, reason), ys in sorted(seen.items(), key=lambda kv: (kv[0][0], min(kv[1]), kv[0][1])):
        span = f"{min(ys)}" if min(ys) == max(ys) else f"{min(ys)}-{max(ys)}"
        name = f"{chip}@{system}" if system else chip
        out.append(f"{sid} {span}: {name}: {reason}")
    for sid, chips in sorted(nosys.items()):
        out.append(f"{sid}: allowed, but no system spec holds them: {', '.join(sorted(chips))}")
    return out


@app.command()
def roadmap(
    scenario: str = typer.Option(..., "--scenario", help="Scenario id (hwspecs/scenarios, or DIR/scenarios with --spec-dir) or a YAML file."),
    vs: Optional[str] = typer.Option(None, "--vs", help="Reference scenario to compare with: ratio per year and parity year."),
    model: Optional[str] = typer.Option(None, "--model", help="Catalog id, alias or YAML path (with --tokens)."),
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Training tokens, e.g. 15T (with --model)."),
    flops: Optional[str] = typer.Option(None, "--flops", help="A frontier run of this many training FLOPs (e.g. 1e26) on a stated reference shape; replaces --model and --tokens."),
    years: str = typer.Option("2025:2030", "--years", help="FIRST:LAST or one year."),
    chips: Optional[int] = typer.Option(None, "--chips", help="Frame: at most this many chips per cluster."),
    power_mw: Optional[float] = number(None, "--power-mw", "Frame: at most this facility power per cluster, MW.",
                                       param="power_budget_mw"),
    supply: bool = typer.Option(False, "--supply", help="Frame: as many chips as the scenario's supply caps allow."),
    max_chips: int = typer.Option(200_000, "--max-chips", help="Largest cluster considered."),
    gbs: Optional[int] = typer.Option(None, "--gbs", help="Global batch, sequences (default 2048)."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Tokens per sequence (default 8192)."),
    precision: str = typer.Option("bf16", "--precision", help="bf16 | fp8 (parts without that peak use the other and say so)."),
    lag_quarters: int = typer.Option(0, "--lag-quarters", help="Quarters from availability to a working cluster."),
    derive_bf16: bool = typer.Option(True, "--derive-bf16/--no-derive-bf16", help="For FP8-only parts, take the BF16 parts of FP8 training at FP8 peak / 2 (estimated)."),
    assume_tdp: Optional[list[str]] = typer.Option(None, "--assume-tdp", help="CHIP=WATTS: your assumption for a chip whose power is unpublished (labelled as such)."),
    pue: float = number(PUE_DEFAULT, "--pue", "Facility power usage effectiveness (1-5)."),
    mtbf: float = number(DEFAULT_MTBF_CHIP_H, "--mtbf-hours", "Per-chip mean time between failures, hours "
                         "(default: Llama 3 paper).", param="mtbf_chip_h"),
    ckpt: float = number(DEFAULT_CKPT_GB_PER_S_PER_NODE, "--checkpoint-gb-per-s",
                         "Checkpoint write bandwidth per node, GB/s.", param="ckpt_gb_per_s_per_node"),
    restart: float = number(DEFAULT_RESTART_S, "--restart-s", "Time to restart after a failure, s."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG: days to train per year and scenario."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Write the rows as CSV."),
    spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt,
):
    """Year by year, the fastest cluster each export/supply scenario allows; parity year.

    For each year: days to train, power and energy of the best buildable cluster per scenario,
    the reference's lead, and when the challenger matches it."""
    from estimator.scenarios.loader import load_scenario
    from estimator.scenarios.roadmap import REFERENCE_GBS, REFERENCE_SEQ_LEN, Query, reference_run, run_roadmap
    from estimator.scenarios.select import ScenarioView

    if flops is not None and (model is not None or tokens is not None):
        raise InputError("--flops replaces --model and --tokens: give one or the other")
    if flops is None and (model is None or tokens is None):
        raise InputError("give --model and --tokens, or --flops")
    _writable(plot, "--plot", ".png")
    _writable(csv_out, "--csv")
    yrs = parse_years(years)
    cat = _cat(spec_dir)
    ref = None
    if flops is not None:
        ref = reference_run(parse_count(flops, "flops"), cat)
        model_name, n_tokens = ref["model"], ref["tokens"]
    else:
        model_name, n_tokens = cat.model(model).name, parse_count(tokens, "tokens")
    scn_a, file_a = load_scenario(scenario, cat)
    views = [ScenarioView(scn_a, cat, file_a)]
    if vs is not None:
        scn_b, file_b = load_scenario(vs, cat)
        if scn_b.id == scn_a.id:
            raise InputError(f"--vs names the same scenario as --scenario ({scn_a.id})")
        views.append(ScenarioView(scn_b, cat, file_b))
    q = Query(model=model_name, tokens=n_tokens, gbs=gbs or REFERENCE_GBS, seq_len=seq_len or REFERENCE_SEQ_LEN,
              precision=precision, pue=pue, mtbf_chip_h=mtbf, ckpt_gb_per_s_per_node=ckpt, restart_s=restart,
              chips=chips, power_mw=power_mw, supply=supply, max_chips=max_chips, lag_quarters=lag_quarters,
              derive_bf16=derive_bf16, assume_tdp_w=parse_assume_tdp(assume_tdp, cat))
    q.check()
    frame = (f"at most {chips:,} chips per cluster" if chips is not None else
             f"at most {power_mw:g} MW facility power per cluster" if power_mw is not None else
             "as many chips as each scenario's supply caps allow")
    from estimator.cli.size_cmd import _progress

    if as_json:
        result = run_roadmap(views, yrs, q, cat)
    else:
        with _progress() as prog:
            task = prog.add_task("roadmap", total=len(yrs) * len(views))
            result = run_roadmap(views, yrs, q, cat, progress=lambda d, t: prog.update(task, completed=d))
    rows = [r.to_dict() for r in result["rows"]]
    leads = {}
    if result["parity"]:
        for x in result["ratios"]:
            leads[(x["year"], views[0].scn.id)] = x["reference_lead"]
    ids = [v.scn.id for v in views]
    title = (f"{model_name}, {n_tokens / 1e12:.1f}T tokens" + (f" ({ref['flops']:.3g} FLOP)" if ref else "")
             + f"; {frame}: " + (" vs ".join(ids)))
    assumptions = _assumptions(q, frame, ref, result, views)
    if csv_out is not None:
        _write_csv(csv_out, rows, leads)
    if plot is not None:
        from estimator.scenarios.plot import plot_roadmap
        plot_roadmap(result, ids, title, plot)
    if as_json:
        emit_json({"question": "roadmap", "model": model_name, "tokens": n_tokens, "reference_run": ref,
                   "frame": {"chips": chips, "power_mw": power_mw, "supply": supply, "max_chips": max_chips,
                             "lag_quarters": lag_quarters, "precision": precision, "pue": pue},
                   "years": yrs,
                   "scenarios": [{"id": v.scn.id, "name": v.scn.name, "file": v.origin,
                                  "description": " ".join(v.scn.description.split())} for v in views],
                   "rows": rows, "ratios": result["ratios"], "parity": result["parity"],
                   "band": result["band"], "evaluations": result["evaluations"],
                   "assumptions": assumptions, "exclusions": _exclusions(result["rows"])})
        return
    view = []
    for d in rows:
        lead = leads.get((d["year"], d["scenario"]))
        band = ("n/a" if d["days_p10"] is None else f"{d['days_p10']:.0f}-{d['days_p90']:.0f}")
        view.append({**d, "cluster": f"{d['chip']} @ {d['system']}" if d["found"] else f"none: {d['why']}",
                     "days_s": None if d["days_with_failures"] is None else round(d["days_with_failures"], 1),
                     "band": band if d["found"] else None, "lead": None if lead is None else f"{lead:.2f}x",
                     "energy_gwh": None if d["energy_mwh"] is None else d["energy_mwh"] / 1000,
                     "flag": "roadmap" if d["roadmap"] else "", "limit": d["binding"],
                     "chips": d["chips"] if d["found"] else None})
    table(title, [("year", "year"), ("scenario", "scenario"), ("cluster", "fastest cluster"),
                  ("chips", "chips"), ("limit", "limit"), ("precision", "prec"), ("days_s", "days"),
                  ("band", "p10-p90"), ("lead", "ref. lead"), ("power_mw", "MW"), ("energy_gwh", "GWh"),
                  ("confidence", "confidence"), ("flag", "rests on")], view, digits=1)
    if result["parity"]:
        p = result["parity"]
        console.print(f"[bold]{p['challenger']} vs {p['reference']}: {p['text']}[/bold] "
                      f"(ref. lead = {p['challenger']} days / {p['reference']} days)")
    console.print("assumptions:")
    for a in assumptions:
        console.print(f"  - {a}")
    ex = _exclusions(result["rows"])
    if ex:
        console.print("left out or held back (allowed and available, but not estimable, or limited by a missing fact):")
        for e in ex:
            console.print(f"  - {e}")
    for path, what in ((csv_out, "CSV"), (plot, "plot")):
        if path is not None:
            console.print(f"{what} written to {path}")
