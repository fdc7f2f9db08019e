"""`suanli train` and `suanli validate`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from estimator.cli.app import JsonOpt, SpecDirOpt, _cat, app
from estimator.cli.first_run import compiling
from estimator.cli.render import emit_json, fmt_sig, kv, say, table
from estimator.errors import InputError
from estimator.units import derate_text, parse_count, parse_derate

DERATE_HELP = ("What-if multiplier on a datasheet fact, KEY=FACTOR, repeatable, e.g. hbm_bw=0.8 "
               "(keys: compute, hbm_bw, hbm_capacity, scale_up, scale_out).")


def _pos(name: str, v):
    if v is not None and v <= 0:
        raise InputError(f"--{name} must be positive (got {v})")


@app.command()
def train(
    model: str = typer.Option(..., "--model", help="Catalog id, alias or YAML path."),
    chip: str = typer.Option(..., "--chip", help="Catalog id, alias or YAML path."),
    chips: int = typer.Option(..., "--chips", help="Number of chips (packages)."),
    gbs: int = typer.Option(..., "--gbs", help="Global batch, sequences."),
    seq_len: int = typer.Option(..., "--seq-len", help="Tokens per sequence."),
    system: Optional[str] = typer.Option(None, "--system", help="System id (default: the chip's)."),
    tp: Optional[int] = typer.Option(None, "--tp", help="Tensor-parallel degree (default: searched)."),
    pp: Optional[int] = typer.Option(None, "--pp", help="Pipeline-parallel stages (default: searched)."),
    dp: Optional[int] = typer.Option(None, "--dp", help="Data-parallel degree (default: searched)."),
    cp: Optional[int] = typer.Option(None, "--cp", help="Context-parallel degree (default: searched)."),
    ep: Optional[int] = typer.Option(None, "--ep", help="Expert-parallel degree, MoE (default: searched)."),
    vpp: Optional[int] = typer.Option(None, "--vpp", help="Virtual pipeline stages per rank, interleaving (default: searched)."),
    mbs: Optional[int] = typer.Option(None, "--mbs", help="Micro-batch size, sequences (default: searched)."),
    recompute: Optional[str] = typer.Option(None, "--recompute", help="none | selective | partial | full (partial: full recompute of some layers)"),
    zero: Optional[int] = typer.Option(None, "--zero", help="0-3 (1 = distributed optimizer, 3 = FSDP)"),
    precision: str = typer.Option("bf16", "--precision", help="bf16 | fp16 | fp8 | fp4 | auto"),
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Training tokens, e.g. 15T: adds days to train."),
    derate: Optional[list[str]] = typer.Option(None, "--derate", help=DERATE_HELP),
    top: int = typer.Option(1, "--top", help="Also list the N best plans."),
    spec_dir: Optional[list[Path]] = SpecDirOpt,
    as_json: bool = JsonOpt,
):
    """Training estimate: step time, tokens/s, MFU, memory; omitted knobs are searched."""
    from estimator.api import estimate_training

    for n, v in (("chips", chips), ("gbs", gbs), ("seq-len", seq_len), ("tp", tp), ("pp", pp), ("dp", dp),
                 ("cp", cp), ("ep", ep), ("vpp", vpp), ("mbs", mbs), ("top", top)):
        _pos(n, v)
    tok = parse_count(tokens, "tokens") if tokens is not None else None
    overrides = parse_derate(derate)
    cat = _cat(spec_dir)
    with compiling(["kernels.training"]):
        res = estimate_training(
            model, chip, chips=chips, gbs=gbs, seq_len=seq_len, system=system, tp=tp, pp=pp, dp=dp,
            cp=cp, ep=ep, vpp=vpp, mbs=mbs, recompute=recompute, zero=zero, precision=precision,
            tokens=tok, catalog=cat, overrides=overrides, top=top)
    d = {**res.to_dict(), "derate": overrides}
    if as_json:
        emit_json(d)
        return
    p = res.plan
    plan = (f"tp{p['tp']} pp{p['pp']} dp{p['dp']} cp{p['cp']} ep{p['ep']} vpp{p['vpp']} mbs{p['mbs']} "
            f"gbs{p['gbs']} seq{p['seq_len']} zero{p['zero']} recompute={p['recompute']}"
            + (f"({p['recompute_fraction']:.2f})" if p['recompute'] == 'partial' else '') + f" {p['precision']}")
    rows = [("model / chip / system", f"{res.model} on {res.chips} x {res.chip} ({res.system})")]
    if overrides:
        rows.append(("what-if (--derate)", derate_text(overrides)))
    rows += [("plan", plan), ("fits", res.fits), ("step time s", res.step_time_s),
            ("tokens/s", res.tokens_per_s), ("tokens/s per chip", res.tokens_per_s_per_chip),
            ("MFU (6N + attention, PaLM)", res.mfu), ("HFU (executed FLOPs)", res.hfu)]
    if res.days_to_train is not None:
        rows.append((f"days to train {res.tokens / 1e12:g}T tokens", res.days_to_train))
    rows.append(("plans evaluated / feasible", f"{res.search['evaluated']:,} / {res.search['feasible']:,}"))
    kv("suanli train", rows)
    total = res.step_time_s
    table("time per step", [("part", "part"), ("s", "seconds"), ("share", "share %")],
          [{"part": k, "s": v, "share": 100 * v / total if total else 0} for k, v in res.breakdown_s.items()],
          digits=3)
    table(f"memory per chip (GB; capacity after reserve {res.memory_capacity_gb_per_chip:.1f})",
          [("part", "part"), ("gb", "GB")],
          [{"part": k, "gb": v} for k, v in res.memory_gb_per_chip.items()])
    if "top" in res.search:
        table("best plans", [("plan", "plan"), ("tokens_per_s", "tokens/s"), ("memory_gb_per_chip", "GB/chip")],
              [{"plan": " ".join(f"{k}={v}" for k, v in t["plan"].items() if k not in ("gbs", "seq_len")),
                "tokens_per_s": t["tokens_per_s"], "memory_gb_per_chip": t["memory_gb_per_chip"]}
               for t in res.search["top"]])
    for n in res.notes:
        say(f"note: {n}")


@app.command()
def validate(data: Path = typer.Option(..., "--data", help="Validation CSV (training or inference schema)."),
             spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt):
    """Predicted vs measured for every row of a CSV of published measurements."""
    from estimator.validate import INFER_MARKERS, read_rows, validate_file

    cat = _cat(spec_dir)
    _, cols = read_rows(data)
    kernels = ["kernels.training"] + (["kernels.inference"] if any(c in cols for c in INFER_MARKERS) else [])
    with compiling(kernels):
        rep = validate_file(data, catalog=cat)
    if as_json:
        emit_json(rep)
    else:
        _validate_tables(data, rep)
    if not rep["rows"] and rep["skipped"]:
        raise InputError(f"--data {data}: every row was skipped ({len(rep['skipped'])}); nothing was compared")


def _validate_tables(data: Path, rep: dict) -> None:
    sig = {"predicted": fmt_sig, "measured": fmt_sig}
    table(f"{data}", [("id", "id"), ("chip", "chip"), ("metric", "metric"), ("predicted", "predicted"),
                      ("measured", "measured"), ("ape_pct", "APE %")],
          [{**r, "ape_pct": 100 * r["ape"]} for r in rep["rows"]], formats=sig)
    for s in rep["skipped"]:
        say(f"skipped {s['id']}: {s['reason']}")
    sm = rep["summary"]
    pct = lambda v: None if v is None else 100 * v  # noqa: E731
    kv("summary (APE %)", [("rows", sm["count"]), ("median", pct(sm["median_ape"])), ("mean", pct(sm["mean_ape"])),
                           ("p90", pct(sm["p90_ape"])), ("max", pct(sm["max_ape"])), ("skipped", sm["skipped"])])
    for title, key in (("by source", "by_source"), ("by chip", "by_chip")):
        table(title, [("id", "group"), ("count", "rows"), ("median", "median %"), ("p90", "p90 %"), ("max", "max %")],
              [{"id": k, "count": v["count"], "median": pct(v["median_ape"]), "p90": pct(v["p90_ape"]),
                "max": pct(v["max_ape"])} for k, v in rep[key].items()])
