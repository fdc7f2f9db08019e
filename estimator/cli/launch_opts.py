"""`--megatron-args`: turn launch arguments into keyword arguments for the estimator.

Explicit command-line flags win over the launch arguments; every knob taken from the
arguments, every one overridden, and every flag not used is reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import typer

from estimator.catalog import Catalog
from estimator.cli.render import console, kv
from estimator.errors import InputError
from estimator.importers import LaunchArgs, load_launch_args, parse_launch_args, shape_diff
from estimator.specs import ModelSpec

MegatronOpt = typer.Option(
    None, "--megatron-args",
    help="Megatron-LM / MindSpeed-LLM launch arguments, quoted, or @script.sh: fill the plan, global batch, "
         "sequence length, precision, chip count (--nnodes x --nproc_per_node) and, without --model, the model. "
         "Explicit flags win.")

PLAN_KNOBS = ("tp", "pp", "cp", "ep", "etp", "moe_dispatcher", "vpp", "mbs", "recompute", "zero")


def read_megatron_args(value: str) -> LaunchArgs:
    """`@path` reads a launch script; anything else is the argument string itself."""
    if value.startswith("@"):
        path = value[1:]
        if not path:
            raise InputError("--megatron-args: '@' needs a file name, e.g. @pretrain.sh")
        return load_launch_args(path)
    return parse_launch_args(value, source="--megatron-args")


@dataclass
class Merged:
    """Keyword arguments for estimate_training / search_plans and where each came from."""

    la: LaunchArgs
    model: ModelSpec
    chips: int
    gbs: int
    seq_len: int
    precision: Optional[str]                     # None: not given anywhere (caller's default)
    knobs: dict = field(default_factory=dict)    # plan knobs from the args (explicit flags removed)
    launch_knobs: dict = field(default_factory=dict)   # every knob the launch fixes
    from_args: dict = field(default_factory=dict)      # knob -> origin text
    overridden: dict = field(default_factory=dict)     # knob -> "flag over args" text
    notes: list = field(default_factory=list)
    #: False where the command does not fix the plan knobs (search ranks the launch's plan)
    pinned: bool = True

    def to_dict(self) -> dict:
        return {**self.la.to_dict(), "model": self.model.name, "from_args": self.from_args,
                "overridden": self.overridden, "notes": self.la.notes + self.notes}

    def render(self) -> None:
        rows = [(k, v) for k, v in self.from_args.items()]
        rows += [(f"{k} (overridden)", v) for k, v in self.overridden.items()]
        title = f"from the launch args ({self.la.source})"
        if not self.pinned:
            title += "; plan knobs: the launch's own plan, evaluated above (the search is not limited to it)"
        kv(title, rows)
        la = self.la
        if la.not_modelled:
            console.print(f"launch args recognised but not modelled: {', '.join(la.not_modelled)}")
        if la.unknown:
            console.print(f"launch args not understood (not used): {', '.join(la.unknown)}")
        if la.assumed or la.ignored:
            console.print(f"launch args with no effect on the estimate: {len(la.assumed)} the estimator assumes "
                          f"anyway, {len(la.ignored)} others (see --json)")
        for n in la.notes + self.notes:
            console.print(f"launch args note: {n}")


def _twin(m: ModelSpec, cat: Catalog) -> Optional[str]:
    for spec in cat.all("model"):
        if not shape_diff(m, spec):
            return spec.name
    return None


def merge(la: LaunchArgs, cli: dict, cat: Catalog, chip: str) -> Merged:
    """Combine launch args with the explicit flags in ``cli`` (None = not given)."""
    notes: list[str] = []
    from_args: dict = {}
    overridden: dict = {}
    if cli.get("model") is not None:
        m = cli["model"] if isinstance(cli["model"], ModelSpec) else cat.model(cli["model"])
        if la.model is not None:
            diff = shape_diff(la.model, m)
            if diff:
                overridden["model"] = (f"--model {m.name} over the launch args' shape flags "
                                       f"(they differ: {'; '.join(diff[:4])})")
    elif la.model is not None:
        m = la.model
        twin = _twin(m, cat)
        from_args["model"] = (f"shape flags ({m.layers} layers, hidden {m.hidden}"
                              + (f"; same shape as catalog model {twin})" if twin else
                                 "; no catalog model has this shape)"))
    else:
        raise InputError("no --model given and the launch args do not describe the model: missing "
                         + ", ".join(la.model_missing))
    knobs, origin, knob_notes = la.knobs(m, pp=cli.get("pp"))
    notes += knob_notes
    chosen: dict = {}
    for k in PLAN_KNOBS:
        v = cli.get(k)
        if k not in knobs:
            continue
        if v is not None:
            if v != knobs[k]:
                overridden[k] = f"--{k} {v} over {origin[k]}"
            continue
        chosen[k] = knobs[k]
        from_args[k] = f"{knobs[k]}: {origin[k]}"
    c = cat.chip(chip)
    rpp = c.ranks_per_package
    chips = cli.get("chips")
    if la.world_size is not None:
        src = " x ".join(la.text(f) for f in ("nnodes", "nproc-per-node") if la.has(f))
        if chips is None:
            if la.world_size % rpp:
                raise InputError(f"the launch args describe {la.world_size} ranks ({src}), not a whole number of "
                                 f"{c.id} packages ({rpp} ranks each); give --chips")
            chips = la.world_size // rpp
            from_args["chips"] = f"{chips}: {src}" + (f" = {la.world_size} ranks / {rpp} per {c.id}" if rpp > 1 else "")
        elif chips * rpp != la.world_size:
            overridden["chips"] = f"--chips {chips} over {la.world_size} ranks ({src})"
    if chips is None:
        raise InputError("--chips is required (the launch args give no --nnodes / --nproc_per_node)")
    gbs = cli.get("gbs")
    if gbs is None:
        if la.gbs is not None:
            gbs = la.gbs
            from_args["gbs"] = la.text("global-batch-size")
        else:
            full = {**knobs, **{k: cli[k] for k in PLAN_KNOBS if cli.get(k) is not None}}
            gbs = la.default_gbs(chips * rpp, full)
            if gbs is not None:
                from_args["gbs"] = f"{gbs}: no --global-batch-size, Megatron's default mbs x dp"
    elif la.gbs is not None and gbs != la.gbs:
        overridden["gbs"] = f"--gbs {gbs} over {la.text('global-batch-size')}"
    seq = cli.get("seq_len")
    if seq is None:
        if la.seq_len is not None:
            seq = la.seq_len
            from_args["seq_len"] = la.text("seq-length" if la.has("seq-length") else "encoder-seq-length")
    elif la.seq_len is not None and seq != la.seq_len:
        overridden["seq_len"] = f"--seq-len {seq} over --seq-length {la.seq_len}"
    prec = cli.get("precision")
    if prec is None:
        if la.precision is not None:
            prec = la.precision
            flag = {"fp4": "fp4-format", "fp8": "fp8-format"}.get(la.precision, la.precision)
            from_args["precision"] = la.text(flag)
        else:
            notes.append("the launch args set none of --bf16 / --fp16 / --fp8-format (Megatron would train in "
                         "fp32, which suanli does not model)")
    elif la.precision is not None and prec != la.precision:
        overridden["precision"] = f"--precision {prec} over {la.precision}"
    return Merged(la, m, chips, gbs, seq, prec, chosen, knobs, from_args, overridden, notes)


REQUIRED = {"model": "--model", "chips": "--chips", "gbs": "--gbs", "seq_len": "--seq-len"}


def apply(megatron_args: Optional[str], cli: dict, cat: Catalog, chip: str,
          defaults: Optional[dict] = None) -> tuple[dict, Optional[Merged]]:
    """The keyword arguments a command passes on, with launch args merged in (explicit flags
    win), then ``defaults`` for what is still unset. Raises InputError for a required value
    that neither gives."""
    out = dict(cli)
    merged = None
    if megatron_args is not None:
        merged = merge(read_megatron_args(megatron_args), cli, cat, chip)
        out.update(model=merged.model, chips=merged.chips, gbs=merged.gbs, seq_len=merged.seq_len,
                   precision=merged.precision, **merged.knobs)
    for k, v in (defaults or {}).items():
        if out.get(k) is None:
            out[k] = v
    for k, flag in REQUIRED.items():
        if k in out and out[k] is None:
            hint = " (or give it in --megatron-args)" if megatron_args is None else \
                " (the launch args do not give it)"
            raise InputError(f"Missing option '{flag}'{hint}")
    return out, merged


def with_provenance(err: Exception, merged: Optional[Merged]) -> Exception:
    """The same error, saying which knobs came from the launch args (one line)."""
    if merged is None:
        return err
    knobs = ", ".join(f"{k} {merged.knobs[k]}" for k in PLAN_KNOBS if k in merged.knobs)
    return type(err)(f"{err} (plan from the launch args: {knobs})") if knobs else err


def launch_plan_row(merged: Merged, chip: str, system, cat: Catalog, overrides, precision, rep: dict,
                    stack: Optional[str] = None) -> dict:
    """The launch args' own plan, evaluated on the searched workload, next to the best plan."""
    from estimator.errors import InfeasibleError, PlanError
    from estimator.training import estimate_training

    try:
        r = estimate_training(merged.model, chip, chips=rep["chips"], gbs=rep["gbs"], seq_len=rep["seq_len"],
                              system=system, precision=precision, catalog=cat, overrides=overrides,
                              require_fit=False, stack=stack, **merged.launch_knobs)
    except (PlanError, InfeasibleError, InputError) as e:
        return {"error": f"not valid here: {e}"}
    best = rep["top"][0]["tokens_per_s"] if rep["top"] else 0.0
    tps = r.tokens_per_s if r.fits else 0.0
    return {"plan": r.plan, "fits": bool(r.fits), "tokens_per_s": r.tokens_per_s,
            "tokens_per_s_per_chip": r.tokens_per_s_per_chip, "mfu": r.mfu,
            "memory_gb_per_chip": r.memory_gb_per_chip.get("total"),
            "ratio_to_best": tps / best if best else None}
