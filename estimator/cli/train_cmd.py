"""`suanli train` and `suanli validate`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from estimator.cli.app import JsonOpt, SpecDirOpt, _cat, app
from estimator.cli.launch_opts import MegatronOpt, apply, with_provenance
from estimator.cli.render import console, emit_json, kv, table
from estimator.errors import InfeasibleError, InputError, PlanError
from estimator.units import parse_count, parse_derate


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
    tp: Optional[int] = typer.Option(None, "--tp"), pp: Optional[int] = typer.Option(None, "--pp"),
    dp: Optional[int] = typer.Option(None, "--dp"), cp: Optional[int] = typer.Option(None, "--cp"),
    ep: Optional[int] = typer.Option(None, "--ep"), vpp: Optional[int] = typer.Option(None, "--vpp"),
    mbs: Optional[int] = typer.Option(None, "--mbs"),
    recompute: Optional[str] = typer.Option(None, "--recompute", help="none | selective | partial | full (partial: full recompute of some layers)"),
    zero: Optional[int] = typer.Option(None, "--zero", help="0-3 (1 = distributed optimizer, 3 = FSDP)"),
    precision: Optional[str] = typer.Option(None, "--precision",
                                            help="bf16 | fp16 | fp8 | fp4 | auto (default: the launch args', "
                                                 "else bf16)"),
    megatron_args: Optional[str] = MegatronOpt,
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Training tokens, e.g. 15T: adds days to train."),
    derate: Optional[list[str]] = typer.Option(None, "--derate",
                                               help="What-if multiplier on a datasheet fact, e.g. hbm_bw=0.8 "
                                                    "(keys: compute, hbm_bw, hbm_capacity, scale_up, scale_out)."),
    top: int = typer.Option(1, "--top", help="Also list the N best plans."),
    stack: Optional[str] = typer.Option(None, "--stack", help="Software stack (hwspecs/stacks.yaml: "
                                        "nemo, megatron-core, megatron-2021, mindspeed, deepspeed, ...); "
                                        "default: the modern stack for the chip's class."),
    spec_dir: Optional[list[Path]] = SpecDirOpt,
    as_json: bool = JsonOpt,
):
    """Estimate step time, tokens/s, MFU and memory; knobs left out are searched."""
    from estimator.training import estimate_training

    for n, v in (("chips", chips), ("gbs", gbs), ("seq-len", seq_len), ("tp", tp), ("pp", pp), ("dp", dp),
                 ("cp", cp), ("ep", ep), ("vpp", vpp), ("mbs", mbs), ("top", top)):
        _pos(n, v)
    tok = parse_count(tokens, "tokens") if tokens is not None else None
    cat = _cat(spec_dir)
    a, merged = apply(megatron_args, dict(model=model, chips=chips, gbs=gbs, seq_len=seq_len, precision=precision,
                                          tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, vpp=vpp, mbs=mbs,
                                          recompute=recompute, zero=zero), cat, chip, {"precision": "bf16"})
    try:
        res = estimate_training(
            a["model"], chip, chips=a["chips"], gbs=a["gbs"], seq_len=a["seq_len"], system=system, tp=a["tp"],
            pp=a["pp"], dp=a["dp"], cp=a["cp"], ep=a["ep"], vpp=a["vpp"], mbs=a["mbs"], recompute=a["recompute"],
            zero=a["zero"], precision=None if a["precision"] == "auto" else a["precision"], tokens=tok,
            catalog=cat, overrides=parse_derate(derate), top=top, stack=stack)
    except (PlanError, InfeasibleError) as e:
        raise with_provenance(e, merged) from None
    d = res.to_dict()
    if merged is not None:
        d["launch_args"] = merged.to_dict()
    if as_json:
        emit_json(d)
        return
    p = res.plan
    plan = (f"tp{p['tp']} pp{p['pp']} dp{p['dp']} cp{p['cp']} ep{p['ep']} vpp{p['vpp']} mbs{p['mbs']} "
            f"gbs{p['gbs']} seq{p['seq_len']} zero{p['zero']} recompute={p['recompute']}"
            + (f"({p['recompute_fraction']:.2f})" if p['recompute'] == 'partial' else '') + f" {p['precision']}"
            + (" ep-overlap" if p.get("ep_overlap") else ""))
    rows = [("model / chip / system", f"{res.model} on {res.chips} x {res.chip} ({res.system})"),
            ("software stack / efficiency class", f"{res.stack} / {res.efficiency_class}"),
            ("plan", plan), ("fits", res.fits),
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
        console.print(f"note: {n}")
    if merged is not None:
        merged.render()


@app.command()
def validate(data: Path = typer.Option(..., "--data", help="Validation CSV (training or inference schema)."),
             cv: Optional[str] = typer.Option(None, "--cv", help="Cross-validate: refit the parameters "
                                              "without each group (source | chip | row) and predict it."),
             spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt):
    """Predicted vs measured for every row of a published-measurements CSV."""
    from estimator.validate import cross_validate_file, validate_file

    if cv is not None:
        rep = cross_validate_file(data, catalog=_cat(spec_dir), by=cv)
    else:
        rep = validate_file(data, catalog=_cat(spec_dir))
    if as_json:
        emit_json(rep)
        return
    table(f"{data}", [("id", "id"), ("chip", "chip"), ("predicted", "predicted"), ("measured", "measured"),
                      ("ape_pct", "APE %")],
          [{**r, "ape_pct": None if r["ape"] is None else 100 * r["ape"]} for r in rep["rows"]])
    for s in rep["skipped"]:
        console.print(f"skipped {s['id']}: {s['reason']}")
    sm = rep["summary"]
    pct = lambda v: None if v is None else 100 * v  # noqa: E731
    title = f"summary (APE %, cross-validated by {cv})" if cv else "summary (APE %, in-sample)"
    kv(title, [("rows", sm["count"]), ("median", pct(sm["median_ape"])), ("mean", pct(sm["mean_ape"])),
               ("p90", pct(sm["p90_ape"])), ("max", pct(sm["max_ape"])), ("skipped", sm["skipped"])])
    if cv and "in_sample_summary" in rep:
        ins = rep["in_sample_summary"]
        kv("in-sample, for comparison (APE %)", [("median", pct(ins["median_ape"])), ("p90", pct(ins["p90_ape"])),
                                                 ("max", pct(ins["max_ape"]))])
    if rep.get("cv_note"):
        console.print(f"note: {rep['cv_note']}")
    for title, key in (("by source", "by_source"), ("by chip", "by_chip")):
        table(title, [("id", "group"), ("count", "rows"), ("median", "median %"), ("p90", "p90 %"), ("max", "max %")],
              [{"id": k, "count": v["count"], "median": pct(v["median_ape"]), "p90": pct(v["p90_ape"]),
                "max": pct(v["max_ape"])} for k, v in rep[key].items()])
