"""`suanli search`, `size`, `compare`, `sweep`."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

import typer

from estimator.cli.app import JsonOpt, SpecDirOpt, _cat, app
from estimator.cli.first_run import compiling
from estimator.cli.launch_opts import MegatronOpt, apply, launch_plan_row
from estimator.cli.options import check_output, number, write_text_output
from estimator.cli.render import _si, console, emit_json, kv, plan_text, say, table
from estimator.cli.train_cmd import DERATE_HELP, STACK_HELP
from estimator.errors import InputError
from estimator.goodput import DEFAULT_CKPT_GB_PER_S_PER_NODE, DEFAULT_MTBF_CHIP_H, DEFAULT_RESTART_S
from estimator.power import PUE_DEFAULT
from estimator.units import derate_text, parse_count, parse_derate

TRAINING = ["kernels.training"]

ROW_COLUMNS = [("chip", "chip"), ("system", "system"), ("chips", "chips"), ("plan_s", "best plan"),
               ("tokens_per_s", "tokens/s"), ("tokens_s", "p10-p90"), ("mfu_pct", "MFU %"), ("days", "days"),
               ("days_with_failures", "days w/ failures"), ("days_wf_s", "p10-p90"), ("power_mw", "power MW"),
               ("energy_kwh_per_1m_tokens", "kWh / 1M tok"), ("ratio_to_first", "x first")]


def _job(model, gbs, seq_len, precision, tokens, pue, mtbf, ckpt, restart, derate, stack=None):
    from estimator.sizing import JobSpec

    for name, v in (("gbs", gbs), ("seq-len", seq_len)):
        if v is not None and v <= 0:
            raise InputError(f"--{name} must be positive (got {v})")
    return JobSpec(model=model, gbs=gbs, seq_len=seq_len, precision=precision,
                   tokens=parse_count(tokens, "tokens") if tokens is not None else None,
                   pue=pue, mtbf_chip_h=mtbf, ckpt_gb_per_s_per_node=ckpt, restart_s=restart,
                   overrides=parse_derate(derate), stack=stack)


def _power_lines(data: list[dict]) -> list[str]:
    """One power-basis line per chip: a sweep's rows differ only in their counts."""
    out, seen = [], set()
    for d in data:
        if d["fits"] and d["power_basis"] and d["chip"] not in seen:
            seen.add(d["chip"])
            out.append(f"power {d['chip']}: {d['power_basis']}")
    return out


def _rows_out(rows, title, as_json, extra=None, job=None, compare_bands=False):
    data = [r.to_dict() for r in rows]
    derate = dict(job.overrides) if job is not None else {}
    if as_json:
        more = {}
        if compare_bands and rows:
            more["not_distinguishable_from_first"] = [r.chip for r in rows[1:]
                                                      if r.fits and rows[0].fits and r.band_overlaps(rows[0])]
        emit_json({**(extra or {}), **more, "derate": derate, "stack": job.stack if job else None, "rows": data})
        return
    view = [{**d, "plan_s": plan_text(d["plan"]) if d["fits"] else f"infeasible: {d['why']}",
             "mfu_pct": 100 * d["mfu"] if d["fits"] else None,
             "tokens_s": _band_s(d["tokens_per_s_p10"], d["tokens_per_s_p90"]) if d["fits"] else None,
             "days_wf_s": _days_band(d)} for d in data]
    stack = f" [stack: {job.stack}]" if job is not None and job.stack else ""
    table(title + stack + (f" [what-if: {derate_text(derate)}]" if derate else ""), ROW_COLUMNS, view, digits=2)
    for line in _power_lines(data):
        say(line)
    for d in data:
        if d["note"]:
            say(f"note {d['chip']}: {d['note']}")
    if compare_bands and len(rows) > 1:
        for line in _overlaps(rows):
            say(line)


def _band_s(lo, hi) -> str | None:
    """'605k-1.09M': a p10-p90 band in three significant figures."""
    if lo is None or hi is None:
        return None
    return f"{_si(lo)}-{_si(hi)}"


def _days_band(d: dict) -> str | None:
    lo, hi = d["days_with_failures_p10"], d["days_with_failures_p90"]
    if lo is None or hi is None:
        return None
    return f"{lo:,.0f}-{hi:,.0f}"


def _overlaps(rows) -> list[str]:
    """Rows whose p10-p90 band overlaps the first row's: the model cannot rank them."""
    first = rows[0]
    tied = [r.chip + (f"@{r.system}" if sum(x.chip == r.chip for x in rows) > 1 else "")
            for r in rows[1:] if r.fits and first.fits and r.band_overlaps(first)]
    if not tied:
        return []
    return [f"p10-p90 bands overlap {first.chip}'s: {', '.join(tied)} (the gap is within the model's "
            "error for one run; errors shared across chips make the ratio surer than the bands suggest)"]


def _progress():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


COMMON = dict(
    gbs=typer.Option(1024, "--gbs", help="Global batch, sequences."),
    seq_len=typer.Option(8192, "--seq-len", help="Tokens per sequence."),
    precision=typer.Option("bf16", "--precision", help="bf16 | fp16 | fp8 | fp4 | auto (best the chip has)"),
    pue=number(PUE_DEFAULT, "--pue", "Facility power usage effectiveness (1-5)."),
    mtbf=number(DEFAULT_MTBF_CHIP_H, "--mtbf-hours", "Per-chip mean time between failures, hours "
                "(default: Llama 3 paper, 16,384 GPUs x 54 days / 419 interruptions).",
                param="mtbf_chip_h", show_default=f"{DEFAULT_MTBF_CHIP_H:,.0f}"),
    ckpt=number(DEFAULT_CKPT_GB_PER_S_PER_NODE, "--checkpoint-gb-per-s", "Checkpoint write bandwidth per node, GB/s.",
                param="ckpt_gb_per_s_per_node"),
    restart=number(DEFAULT_RESTART_S, "--restart-s", "Time to restart after a failure, s."),
    stack=typer.Option(None, "--stack", help=STACK_HELP),
)
MODEL_OPT = typer.Option(..., "--model", help="Catalog id, alias or YAML path.")
CHIP_OPT = typer.Option(..., "--chip", help="Catalog id, alias or YAML path.")
SYSTEM_OPT = typer.Option(None, "--system", help="System id (default: the chip's).")


@app.command()
def search(
    model: Optional[str] = typer.Option(None, "--model", help="Catalog id, alias, YAML path, or a Hugging Face "
                                                             "config.json / model folder."),
    chip: str = CHIP_OPT,
    chips: Optional[int] = typer.Option(None, "--chips", help="Number of chips (packages)."),
    gbs: Optional[int] = typer.Option(None, "--gbs", help="Global batch, sequences (default 1024)."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Tokens per sequence (default 8192)."),
    system: Optional[str] = SYSTEM_OPT,
    precision: Optional[str] = typer.Option(None, "--precision",
                                            help="bf16 | fp16 | fp8 | fp4 | auto (default: the launch args', else bf16)"),
    stack: Optional[str] = typer.Option(None, "--stack", help=STACK_HELP),
    megatron_args: Optional[str] = MegatronOpt,
    top: int = typer.Option(10, "--top", help="How many plans to list."),
    derate: Optional[list[str]] = typer.Option(None, "--derate", help=DERATE_HELP),
    spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt,
):
    """All valid plans: the best ones, the Pareto front, rejections by reason.

    The Pareto front is throughput vs memory headroom. With --megatron-args, the workload comes
    from the launch arguments and their own plan is ranked against the best."""
    from estimator.api import search_plans

    if (chips is not None and chips <= 0) or top <= 0:
        raise InputError("--chips and --top must be positive")
    overrides = parse_derate(derate)
    cat = _cat(spec_dir)
    a, merged = apply(megatron_args, dict(model=model, chips=chips, gbs=gbs, seq_len=seq_len, precision=precision),
                      cat, chip, {"gbs": 1024, "seq_len": 8192, "precision": "bf16"})
    if a["model"] is None:
        raise InputError("--model is required (or --megatron-args with the model's shape)")
    if a["chips"] is None:
        raise InputError("--chips is required (or --megatron-args with --nnodes and --nproc_per_node)")
    with compiling(TRAINING):
        rep = search_plans(a["model"], chip, chips=a["chips"], gbs=a["gbs"], seq_len=a["seq_len"], system=system,
                           precision=a["precision"], top=top, catalog=cat, overrides=overrides, stack=stack)
        if merged is not None:
            merged.pinned = False
            rep["launch_args"] = merged.to_dict()
            prec = None if a["precision"] == "auto" else a["precision"]
            rep["launch_plan"] = launch_plan_row(merged, chip, system, cat, overrides, prec, rep, stack=stack)
    if as_json:
        emit_json(rep)
        return
    head = [("model / chip / system", f"{rep['model']} on {rep['chips']} x {rep['chip']} ({rep['system']})")]
    if overrides:
        head.append(("what-if (--derate)", derate_text(overrides)))
    kv("suanli search", head + [("plans evaluated", rep["counts"]["evaluated"]),
                                ("feasible", rep["counts"]["feasible"]),
                                ("rejected: out of memory", rep["counts"]["out_of_memory"]),
                                ("rejected: precision unsupported", rep["counts"]["unsupported_precision"]),
                                ("rejected: unknown link bandwidth", rep["counts"]["unknown_link"])])
    cols = [("plan_s", "plan"), ("tokens_per_s_per_chip", "tokens/s/chip"), ("mfu_pct", "MFU %"),
            ("step_time_s", "step s"), ("memory_gb_per_chip", "GB/chip"), ("headroom_gb", "headroom GB")]
    for title, key in (("best plans", "top"), ("Pareto front: throughput vs memory headroom", "pareto")):
        table(title, cols, [{**r, "plan_s": plan_text(r["plan"]), "mfu_pct": 100 * r["mfu"]} for r in rep[key]], digits=2)
    if merged is not None:
        lp = rep["launch_plan"]
        if lp.get("error"):
            console.print(f"the launch args' own plan: {lp['error']}")
        else:
            console.print(f"the launch args' own plan: {plan_text(lp['plan'])}: {lp['tokens_per_s_per_chip']:,.1f} "
                          f"tokens/s/chip, {lp['memory_gb_per_chip']:.1f} GB/chip"
                          + ("" if lp["fits"] else " (does not fit in memory)")
                          + f", {lp['ratio_to_best']:.2f}x the best plan")
        merged.render()


def _resolution(row, tried) -> str:
    below = [r.chips for r in tried if r.chips < row.chips]
    if not below:
        return f"{len(tried)} counts tried"
    return (f"{len(tried)} counts tried; the next count below, {max(below):,}, falls short "
            f"(resolution {row.chips - max(below):,} chips)")


@app.command()
def size(
    model: str = MODEL_OPT, chip: str = CHIP_OPT,
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Training tokens, e.g. 15T."),
    days: Optional[float] = number(None, "--days", "Deadline, days (with --tokens), failures included."),
    match: Optional[str] = typer.Option(None, "--match", help="CHIP:N, e.g. h100-sxm:1024: the same throughput."),
    power_budget_mw: Optional[float] = number(None, "--power-budget-mw", "Fastest cluster within this facility power, MW."),
    system: Optional[str] = SYSTEM_OPT, gbs: int = COMMON["gbs"],
    seq_len: int = COMMON["seq_len"], precision: str = COMMON["precision"], pue: float = COMMON["pue"],
    mtbf: float = COMMON["mtbf"], ckpt: float = COMMON["ckpt"], restart: float = COMMON["restart"],
    stack: Optional[str] = COMMON["stack"],
    max_chips: int = typer.Option(200_000, "--max-chips", help="Largest cluster considered."),
    derate: Optional[list[str]] = typer.Option(None, "--derate", help=DERATE_HELP),
    spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt,
):
    """Smallest cluster (to the nearest node) for a deadline, a match or a power budget."""
    from estimator import sizing

    modes = sum(x is not None for x in (days, match, power_budget_mw))
    if modes != 1:
        raise InputError("give exactly one of --days (with --tokens), --match CHIP:N, --power-budget-mw")
    if days is not None and tokens is None:
        raise InputError("--days needs --tokens")
    if max_chips <= 0:
        raise InputError(f"--max-chips must be positive (got {max_chips})")
    job = _job(model, gbs, seq_len, precision, tokens, pue, mtbf, ckpt, restart, derate, stack)
    cat = _cat(spec_dir)
    if days is not None:
        with compiling(TRAINING):
            row, tried = sizing.size_for_time(job, chip, days, system, cat, max_chips)
            sure, tried_sure = sizing.sure_count(job, chip, job.tokens / (days * 86400.0), row, system, cat,
                                                 max_chips)
        title = f"smallest {row.chip} cluster for {tokens} tokens in {days:g} days"
        extra = {"question": "deadline", "sure_90": None if sure is None else sure.to_dict()}
        rows = [row]
    elif match is not None:
        if ":" not in match:
            raise InputError(f"--match expects CHIP:N, e.g. h100-sxm:1024 (got {match!r})")
        ref_chip, n = match.rsplit(":", 1)
        try:
            n_ref = int(n)
        except ValueError:
            raise InputError(f"--match {match!r}: {n!r} is not a chip count") from None
        if n_ref <= 0:
            raise InputError(f"--match {match!r}: the chip count must be positive")
        with compiling(TRAINING):
            ref, row, tried = sizing.match_cluster(job, chip, ref_chip, n_ref, system, cat, max_chips)
        rows = sizing.with_ratios([ref, row], job)
        title = f"{row.chips:,} x {row.chip} match {n_ref:,} x {ref.chip}"
        extra = {"question": "match"}
    else:
        with compiling(TRAINING):
            row, tried = sizing.fastest_under_power(job, chip, power_budget_mw, system, cat)
        title = f"fastest {row.chip} cluster within {power_budget_mw:g} MW"
        extra = {"question": "power_budget"}
        rows = [row]
    extra["tried_chip_counts"] = [r.chips for r in tried]
    _rows_out(rows, title, as_json, extra, job)
    if not as_json:
        say(_resolution(row, tried) if extra["question"] != "power_budget"
            else f"{len(tried)} counts tried at or below what the budget powers")
        if extra["question"] == "deadline":
            if sure is None:
                say("90% sure: no count up to --max-chips meets the deadline at the band's p10 throughput")
            elif sure.chips != row.chips:
                say(f"90% sure (p10 throughput meets the deadline): {sure.chips:,} chips "
                    f"({sure.chips / row.chips:.2f}x), p90 days {sure.days_with_failures_p90:,.1f}")


@app.command()
def compare(
    model: str = MODEL_OPT,
    chips: str = typer.Option(..., "--chips", help="Comma-separated chip ids, optionally CHIP@SYSTEM; the first is the reference."),
    cluster_chips: Optional[int] = typer.Option(None, "--cluster-chips", help="Same chip count for every chip."),
    equal_power: Optional[float] = number(None, "--equal-power", "Same facility power for every chip, MW.",
                                          param="equal_power_mw"),
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Training tokens, e.g. 15T: adds days and energy."),
    days: Optional[float] = number(None, "--days", "Deadline, days (with --tokens): the smallest cluster of each chip."),
    gbs: int = COMMON["gbs"], seq_len: int = COMMON["seq_len"], precision: str = COMMON["precision"],
    pue: float = COMMON["pue"], mtbf: float = COMMON["mtbf"], ckpt: float = COMMON["ckpt"],
    restart: float = COMMON["restart"],
    stack: Optional[str] = COMMON["stack"],
    max_chips: int = typer.Option(200_000, "--max-chips", help="Largest cluster considered (with --days)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG bar chart."),
    derate: Optional[list[str]] = typer.Option(None, "--derate", help=DERATE_HELP),
    serve: bool = typer.Option(False, "--serve", help="Compare serving capacity instead of training."),
    qps: Optional[float] = number(None, "--qps", "--serve: requests per second."),
    input_len: Optional[int] = typer.Option(None, "--input-len", help="--serve: prompt tokens."),
    output_len: Optional[int] = typer.Option(None, "--output-len", help="--serve: generated tokens."),
    tpot_slo_ms: Optional[float] = number(None, "--tpot-slo-ms", "--serve: time-per-output-token SLO, ms."),
    ttft_slo_ms: Optional[float] = number(None, "--ttft-slo-ms", "--serve: time-to-first-token SLO, ms."),
    disaggregate: bool = typer.Option(False, "--disaggregate", help="--serve: separate prefill and decode pools."),
    spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt,
):
    """Chips side by side: training (tokens/s, days, power) or serving (--serve)."""
    from estimator import sizing

    names = [c.strip() for c in chips.split(",") if c.strip()]
    if not names:
        raise InputError("--chips: give at least one chip id")
    check_output("--plot", plot, ".png")
    if serve:
        with compiling(["kernels.inference"]):
            _compare_serve(model, names, qps, input_len, output_len, tpot_slo_ms, ttft_slo_ms,
                           precision, disaggregate, pue, _cat(spec_dir), as_json)
        return
    if cluster_chips is not None and cluster_chips <= 0:
        raise InputError(f"--cluster-chips must be positive (got {cluster_chips})")
    if days is not None and tokens is None:
        raise InputError("--days needs --tokens")
    job = _job(model, gbs, seq_len, precision, tokens, pue, mtbf, ckpt, restart, derate, stack)
    cat = _cat(spec_dir)
    for n in names:   # unknown ids fail before any work
        c, sys_name = sizing.split_chip_system(n, cat)
        cat.system_for(c, sys_name)
    with compiling(TRAINING), _progress() as prog:
        task = prog.add_task("comparing", total=len(names))
        rows = sizing.compare(job, names, cluster_chips=cluster_chips, equal_power_mw=equal_power,
                              days=days, catalog=cat, max_chips=max_chips,
                              progress=lambda d, t: prog.update(task, completed=d))
    frame = (f"{cluster_chips:,} chips each" if cluster_chips else
             f"{equal_power:g} MW each" if equal_power else f"{tokens} tokens in {days:g} days")
    title = f"{model}: {frame}"
    _rows_out(rows, title, as_json, {"question": "compare", "frame": frame}, job, compare_bands=True)
    if plot is not None:
        from estimator.plot import plot_compare
        plot_compare(rows, title, plot)
        if not as_json:
            say(f"plot written to {plot}")


CSV_KEYS = ["chip", "system", "chips", "chips_requested", "fits", "tokens_per_s", "tokens_per_s_per_chip",
            "mfu", "step_time_s", "days", "days_with_failures", "power_mw", "energy_kwh_per_1m_tokens", "why", "note"]


def _csv_text(rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_KEYS + ["plan"])
    for r in rows:
        d = r.to_dict()
        w.writerow([d[k] for k in CSV_KEYS] + [plan_text(d["plan"])])
    return buf.getvalue()


@app.command()
def sweep(
    model: str = MODEL_OPT, chip: str = CHIP_OPT,
    chips: str = typer.Option(..., "--chips", help="64:16384 (powers of two), 64:1024:64, or 8,16,64."),
    system: Optional[str] = SYSTEM_OPT,
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Training tokens, e.g. 15T: adds days and energy."),
    gbs: int = COMMON["gbs"], seq_len: int = COMMON["seq_len"], precision: str = COMMON["precision"],
    pue: float = COMMON["pue"], mtbf: float = COMMON["mtbf"], ckpt: float = COMMON["ckpt"],
    restart: float = COMMON["restart"],
    stack: Optional[str] = COMMON["stack"],
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG scaling curve."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Write the rows as CSV ('-': to stdout, instead of the table)."),
    derate: Optional[list[str]] = typer.Option(None, "--derate", help=DERATE_HELP),
    spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt,
):
    """Scaling curve: tokens/s and MFU vs chip count, best plan at each point."""
    from estimator import sizing

    counts = sizing.parse_range(chips)
    if csv_out is not None and str(csv_out) == "-" and as_json:
        raise InputError("--csv - and --json both write to stdout: choose one")
    check_output("--csv", csv_out)
    check_output("--plot", plot, ".png")
    job = _job(model, gbs, seq_len, precision, tokens, pue, mtbf, ckpt, restart, derate, stack)
    cat = _cat(spec_dir)
    with compiling(TRAINING), _progress() as prog:
        task = prog.add_task("sweeping", total=len(counts))
        rows = sizing.sweep(job, chip, counts, system, cat, progress=lambda d, t: prog.update(task, completed=d))
    title = f"{model} on {rows[0].chip}: scaling"
    to_stdout = csv_out is not None and str(csv_out) == "-"
    if not to_stdout:
        _rows_out(rows, title, as_json, {"question": "sweep"}, job)
    if csv_out is not None:
        write_text_output("--csv", csv_out, _csv_text(rows))
    if plot is not None:
        from estimator.plot import plot_sweep
        plot_sweep(rows, title, plot)


def _compare_serve(model, names, qps, input_len, output_len, tpot, ttft, precision, disagg, pue, cat, as_json):
    from estimator.errors import SuanliError
    from estimator.serving import auto_serving_precision, serve_size

    if qps is None or input_len is None or output_len is None:
        raise InputError("--serve needs --qps, --input-len and --output-len")
    for n in names:
        cat.chip(n)
    rows = []
    for n in names:
        c = cat.chip(n)
        prec = auto_serving_precision(c) if precision == "auto" else precision
        try:
            r = serve_size(model, n, qps=qps, input_len=input_len, output_len=output_len,
                           tpot_slo_ms=tpot, ttft_slo_ms=ttft, precision=prec, disaggregate=disagg,
                           pue=pue, catalog=cat)
            rows.append({**r.to_dict(), "fits": True, "why": ""})
        except SuanliError as e:
            rows.append({"chip": c.id, "fits": False, "why": str(e), "chips": None})
    base = rows[0]["chips"] if rows and rows[0]["fits"] else None
    for r in rows:
        r["chips_vs_first"] = (r["chips"] / base) if (base and r["fits"]) else None
    if as_json:
        emit_json({"question": "compare-serve", "rows": rows})
        return

    def plan_s(pl):
        if "prefill" in pl:
            return f"prefill [{plan_s(pl['prefill'])}] decode [{plan_s(pl['decode'])}]"
        return (f"tp{pl['tp']} pp{pl['pp']} ep{pl['ep']} dp{pl['dp']} {pl['precision']}"
                + (" tbo" if pl.get("two_batch_overlap") else ""))

    view = [{**r, "plan_s": (plan_s(r["plan"]) if r["fits"] else f"infeasible: {r['why']}")} for r in rows]
    table(f"{model}: serve {qps:g} req/s of {input_len}+{output_len} tokens"
          + (f", TPOT <= {tpot:g} ms" if tpot else "") + (f", TTFT <= {ttft:g} ms" if ttft else ""),
          [("chip", "chip"), ("chips", "chips"), ("batch", "batch/replica"), ("tpot_ms", "TPOT ms"),
           ("ttft_ms", "TTFT ms"), ("power_mw", "power MW"), ("chips_vs_first", "chips x first"),
           ("plan_s", "plan")], view, digits=2)
