"""`suanli train` and `suanli validate`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from estimator.cli.app import JsonOpt, SpecDirOpt, _cat, app
from estimator.cli.first_run import compiling
from estimator.cli.launch_opts import MegatronOpt, apply, with_provenance
from estimator.cli.render import emit_json, fmt_sig, kv, say, table
from estimator.errors import InfeasibleError, InputError, PlanError
from estimator.units import derate_text, parse_count, parse_derate

DERATE_HELP = ("What-if multiplier on a datasheet fact, KEY=FACTOR, repeatable, e.g. hbm_bw=0.8 "
               "(keys: compute, hbm_bw, hbm_capacity, scale_up, scale_out).")
STACK_HELP = ("Software stack (hwspecs/stacks.yaml: nemo, megatron-core, megatron-2021, mindspeed, "
              "deepspeed, torchtitan, meta-llama3, ...); default: the modern stack for the chip's class.")


def _band(v, lo, hi) -> str:
    """'1.09M (0.95-1.21M)': a value with its p10-p90 band."""
    from estimator.cli.render import fmt_band

    return fmt_band(v, lo, hi)


def _pos(name: str, v):
    if v is not None and v <= 0:
        raise InputError(f"--{name} must be positive (got {v})")


@app.command()
def train(
    model: Optional[str] = typer.Option(None, "--model", help="Catalog id, alias, YAML path, or a Hugging Face "
                                                             "config.json / model folder."),
    chip: str = typer.Option(..., "--chip", help="Catalog id, alias or YAML path."),
    chips: Optional[int] = typer.Option(None, "--chips", help="Number of chips (packages)."),
    gbs: Optional[int] = typer.Option(None, "--gbs", help="Global batch, sequences."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Tokens per sequence."),
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
    etp: Optional[int] = typer.Option(None, "--etp", help="Expert tensor-parallel degree, MoE (folding stacks; default: searched)."),
    moe_dispatcher: Optional[str] = typer.Option(None, "--moe-dispatcher",
                                                 help="MoE token dispatcher: alltoall | allgather | deepep (as the stack offers; default: the stack's)."),
    precision: Optional[str] = typer.Option(None, "--precision",
                                            help="bf16 | fp16 | fp8 | fp4 | auto (default: the launch args', "
                                                 "else bf16)"),
    megatron_args: Optional[str] = MegatronOpt,
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Training tokens, e.g. 15T: adds days to train."),
    derate: Optional[list[str]] = typer.Option(None, "--derate", help=DERATE_HELP),
    top: int = typer.Option(1, "--top", help="Also list the N best plans."),
    stack: Optional[str] = typer.Option(None, "--stack", help=STACK_HELP),
    spec_dir: Optional[list[Path]] = SpecDirOpt,
    as_json: bool = JsonOpt,
):
    """Training estimate: step time, tokens/s, MFU, memory; omitted knobs are searched."""
    from estimator.api import estimate_training

    for n, v in (("chips", chips), ("gbs", gbs), ("seq-len", seq_len), ("tp", tp), ("pp", pp), ("dp", dp),
                 ("cp", cp), ("ep", ep), ("etp", etp), ("vpp", vpp), ("mbs", mbs), ("top", top)):
        _pos(n, v)
    tok = parse_count(tokens, "tokens") if tokens is not None else None
    overrides = parse_derate(derate)
    cat = _cat(spec_dir)
    a, merged = apply(megatron_args, dict(model=model, chips=chips, gbs=gbs, seq_len=seq_len, precision=precision,
                                          tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, vpp=vpp, mbs=mbs,
                                          recompute=recompute, zero=zero, etp=etp,
                                          moe_dispatcher=moe_dispatcher), cat, chip,
                                     {"precision": "bf16"})
    try:
        with compiling(["kernels.training"]):
            res = estimate_training(
                a["model"], chip, chips=a["chips"], gbs=a["gbs"], seq_len=a["seq_len"], system=system,
                tp=a["tp"], pp=a["pp"], dp=a["dp"], cp=a["cp"], ep=a["ep"], vpp=a["vpp"], mbs=a["mbs"],
                recompute=a["recompute"], zero=a["zero"], precision=a["precision"], tokens=tok,
                catalog=cat, overrides=overrides, top=top, stack=stack, etp=a.get("etp"),
                moe_dispatcher=a.get("moe_dispatcher"))
    except (PlanError, InfeasibleError) as e:
        raise with_provenance(e, merged) from None
    d = {**res.to_dict(), "derate": overrides}
    if merged is not None:
        d["launch_args"] = merged.to_dict()
    if as_json:
        emit_json(d)
        return
    p = res.plan
    plan = (f"tp{p['tp']} pp{p['pp']} dp{p['dp']} cp{p['cp']} ep{p['ep']}"
            + (f" etp{p['etp']}" if p.get("etp", p["tp"]) != p["tp"] else "")
            + f" vpp{p['vpp']} mbs{p['mbs']} "
            f"gbs{p['gbs']} seq{p['seq_len']} zero{p['zero']} recompute={p['recompute']}"
            + (f"({p['recompute_fraction']:.2f})" if p['recompute'] == 'partial' else '') + f" {p['precision']}"
            + (" ep-overlap" if p.get("ep_overlap") else ""))
    rows = [("model / chip / system", f"{res.model} on {res.chips} x {res.chip} ({res.system})"),
            ("software stack / efficiency class", f"{res.stack} / {res.efficiency_class}")]
    if overrides:
        rows.append(("what-if (--derate)", derate_text(overrides)))
    rows += [("plan", plan), ("fits", res.fits),
             ("step time s (p10-p90)", _band(res.step_time_s, res.step_time_s_p10, res.step_time_s_p90)),
             ("tokens/s (p10-p90)", _band(res.tokens_per_s, res.tokens_per_s_p10, res.tokens_per_s_p90)),
             ("tokens/s per chip", _band(res.tokens_per_s_per_chip, res.tokens_per_s_per_chip_p10,
                                         res.tokens_per_s_per_chip_p90)),
             ("MFU (6N + attention, PaLM)", _band(res.mfu, res.mfu_p10, res.mfu_p90)),
             ("HFU (executed FLOPs)", res.hfu)]
    if res.days_to_train is not None:
        rows.append((f"days to train {res.tokens / 1e12:g}T tokens",
                     _band(res.days_to_train, res.days_to_train_p10, res.days_to_train_p90)))
    if res.band:
        rows.append(("band basis", ("" if res.band["calibrated"] else "UNCALIBRATED: ")
                     + res.band["model_error"]))
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
    if merged is not None:
        merged.render()


@app.command()
def validate(data: Path = typer.Option(..., "--data", help="Validation CSV (training or inference schema)."),
             cv: Optional[str] = typer.Option(None, "--cv", help="Cross-validate: refit the parameters "
                                              "without each group (source | chip | row) and predict it."),
             spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt):
    """Predicted vs measured for every row of a CSV of published measurements."""
    from estimator.validate import INFER_MARKERS, cross_validate_file, read_rows, validate_file

    cat = _cat(spec_dir)
    _, cols = read_rows(data)
    kernels = ["kernels.training"] + (["kernels.inference"] if any(c in cols for c in INFER_MARKERS) else [])
    with compiling(kernels):
        rep = (cross_validate_file(data, catalog=cat, by=cv) if cv is not None
               else validate_file(data, catalog=cat))
    if as_json:
        emit_json(rep)
    else:
        _validate_tables(data, rep, cv)
    if not rep["rows"] and rep["skipped"]:
        raise InputError(f"--data {data}: every row was skipped ({len(rep['skipped'])}); nothing was compared")


def _validate_tables(data: Path, rep: dict, cv: str | None = None) -> None:
    sig = {"predicted": fmt_sig, "measured": fmt_sig, "p10": fmt_sig, "p90": fmt_sig}
    table(f"{data}", [("id", "id"), ("chip", "chip"), ("metric", "metric"), ("predicted", "predicted"),
                      ("p10", "p10"), ("p90", "p90"), ("measured", "measured"), ("ape_pct", "APE %")],
          [{**r, "ape_pct": None if r["ape"] is None else 100 * r["ape"]} for r in rep["rows"]],
          formats=sig)
    for s in rep["skipped"]:
        say(f"skipped {s['id']}: {s['reason']}")
    for r in rep["rows"]:
        if r.get("memory_note"):
            say(f"memory miss {r['id']}: {r['memory_note']}")
    sm = rep["summary"]
    pct = lambda v: None if v is None else 100 * v  # noqa: E731
    title = f"summary (APE %, cross-validated by {cv})" if cv else "summary (APE %, in-sample)"
    kv(title, [("rows", sm["count"]), ("median", pct(sm["median_ape"])), ("mean", pct(sm["mean_ape"])),
               ("p90", pct(sm["p90_ape"])), ("max", pct(sm["max_ape"])), ("skipped", sm["skipped"])]
       + ([("memory misses", sm["memory_misses"])] if sm.get("memory_misses") else []))
    if cv and "in_sample_summary" in rep:
        ins = rep["in_sample_summary"]
        kv("in-sample, for comparison (APE %)", [("median", pct(ins["median_ape"])), ("p90", pct(ins["p90_ape"])),
                                                 ("max", pct(ins["max_ape"]))])
    if rep.get("cv_note"):
        say(f"note: {rep['cv_note']}")
    for title, key in (("by source", "by_source"), ("by chip", "by_chip")):
        table(title, [("id", "group"), ("count", "rows"), ("median", "median %"), ("p90", "p90 %"), ("max", "max %")],
              [{"id": k, "count": v["count"], "median": pct(v["median_ape"]), "p90": pct(v["p90_ape"]),
                "max": pct(v["max_ape"])} for k, v in rep[key].items()])
