"""`suanli` command line: parse, call the library, render. Errors: one line, exit code 2."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

try:  # typer >= 0.20 vendors click; older versions depend on it
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover
    from click import exceptions as _cx

from estimator.catalog import Catalog
from estimator.cli.options import cli_message
from estimator.cli.render import emit_json, kv, safe, say, table
from estimator.describe import chip_summary, model_summary, sourced_rows, system_summary
from estimator.errors import InputError, SpecError, SuanliError
from estimator.specs import ChipSpec, ModelSpec, SystemSpec
from estimator.yamlio import load_spec, read_yaml_mapping


def _version(value: bool):
    if value:
        from importlib.metadata import PackageNotFoundError, version
        try:
            v = version("suanli")
        except PackageNotFoundError:  # pragma: no cover  (running from a source tree)
            v = "unknown (not installed)"
        print(f"suanli {v}")
        raise typer.Exit(0)


app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="suanli (算力): how fast clusters of AI accelerators (Chinese domestic, "
                       "Nvidia, AMD, Google) train and serve LLMs, and how big a cluster a job "
                       "needs, with a source and a confidence for every hardware number.")


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.",
                                       callback=_version, is_eager=True)):
    """Estimate training and serving of LLMs on AI accelerator clusters."""


JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")
SpecDirOpt = typer.Option(None, "--spec-dir", help="Folder of user specs (chips/, systems/, models/); repeatable.")


def _cat(spec_dir: Optional[list[Path]]) -> Catalog:
    return Catalog(spec_dirs=spec_dir or [])


def _provenance(cat: Catalog, kind: str, spec, name: str) -> dict:
    """Where a spec shown to the user came from (a path argument counts as a user spec)."""
    prov = cat.provenance(kind, spec)
    if prov["file"] is None and Path(name).exists():
        prov["file"] = name
    return prov


def _say_provenance(kind: str, prov: dict) -> None:
    if not prov["user_spec"]:
        return
    line = f"from user spec {prov['file']}"
    if prov["replaces"]:
        line += "; replaces the built-in " + ", ".join(f"{kind} {r['id']} ({r['file']})" for r in prov["replaces"])
        line += ": the sources and confidences above are as that file states them"
    say(line)


# ---------------------------------------------------------------- catalog listings
def _fields_table(title: str, rows: list[dict]) -> None:
    """Every field of a spec with its value, confidence, source and note."""
    table(title, [("field", "field"), ("value", "value"), ("confidence", "confidence"),
                  ("source", "source"), ("note", "note")], rows, digits=2)


CHIP_COLUMNS = [("id", "id"), ("vendor", "vendor"), ("year", "year"), ("bf16_tflops", "BF16 TFLOP/s"),
                ("fp8_tflops", "FP8 TFLOP/s"), ("hbm_gb", "HBM GB"), ("hbm_tb_per_s", "HBM TB/s"),
                ("scale_up_gb_per_s", "scale-up GB/s"), ("scale_up_domain", "domain"),
                ("tdp_w", "TDP W"), ("confidence", "confidence")]


@app.command()
def chips(vendor: Optional[str] = typer.Option(None, "--vendor", help="Filter by vendor (substring)."),
          sort: str = typer.Option("id", "--sort", help="Sort by a column key, e.g. bf16_tflops, hbm_gb."),
          export: bool = typer.Option(False, "--export", help="Show TPP, performance density and the ECCN 3A090 class."),
          spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt):
    """List accelerators with their key numbers."""
    cat = _cat(spec_dir)
    if export:
        from estimator.cli.export_view import show_chips_export
        return show_chips_export([c for c in cat.all("chip") if not vendor or vendor.lower() in c.vendor.lower()], as_json)
    rows = [{**chip_summary(c, cat), "origin": cat.provenance("chip", c)} for c in cat.all("chip")]
    if vendor:
        rows = [r for r in rows if vendor.lower() in r["vendor"].lower()]
    if rows and sort not in rows[0]:
        raise InputError(f"--sort: unknown column {sort!r} (one of: {', '.join(rows[0])})")
    numeric = sort not in ("id", "vendor", "name", "confidence", "status", "default_system")
    rows.sort(key=lambda r: ((r[sort] is None), -(r[sort] or 0) if numeric else str(r[sort]).lower(), r["id"]))
    if as_json:
        emit_json(rows)
    else:
        table(f"{len(rows)} chips (dense peaks; '-' = not published)", CHIP_COLUMNS, rows)
        _say_user_specs("chip", rows)


def _say_user_specs(kind: str, rows: list[dict]) -> None:
    for r in rows:
        o = r["origin"]
        if o["user_spec"]:
            rep = f", replaces the built-in {', '.join(x['id'] for x in o['replaces'])}" if o["replaces"] else ""
            say(f"{kind} {r.get('id') or r.get('name')}: user spec {o['file']}{rep}")


@app.command()
def chip(chip_id: str = typer.Argument(..., metavar="ID", help="Chip id, alias or YAML path."), spec_dir: Optional[list[Path]] = SpecDirOpt,
         as_json: bool = JsonOpt):
    """Every field of one chip with its source and confidence."""
    from estimator.cli.export_view import chip_export, print_chip_export

    cat = _cat(spec_dir)
    c = cat.chip(chip_id)
    prov = _provenance(cat, "chip", c, chip_id)
    rows = sourced_rows(c)
    eff = cat.efficiency()
    cls, params = eff.for_chip(c.id)
    effd = {"class": cls, "basis": eff.classes[cls].basis, "fitted": eff.classes[cls].fitted,
            "parameters": params.model_dump()}
    if as_json:
        emit_json({"id": c.id, "origin": prov, "summary": chip_summary(c, cat), "fields": rows,
                   "efficiency": effd, "export_control": chip_export(c)})
    else:
        _fields_table(f"{c.name} ({c.id})" + (" [user spec]" if prov["user_spec"] else ""), rows)
        _say_provenance("chip", prov)
        say(f"efficiency class '{cls}' (hwspecs/efficiency.yaml; not datasheet facts): "
            f"{' '.join(effd['basis'].split())}")
        if effd["fitted"]:
            say(f"fitted to public runs: {', '.join(effd['fitted'])}")
        print_chip_export(c)


@app.command()
def systems(spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt):
    """List systems (nodes and scale-up domains)."""
    cat = _cat(spec_dir)
    rows = [{**system_summary(s), "origin": cat.provenance("system", s)} for s in cat.all("system")]
    if as_json:
        emit_json(rows)
    else:
        table(f"{len(rows)} systems", [("id", "id"), ("chip", "chip"), ("chips_per_node", "chips/node"),
                                       ("scale_up_domain", "domain"), ("topology", "topology"),
                                       ("scale_up_gb_per_s_per_chip", "scale-up GB/s"),
                                       ("scale_out_gbit_per_s_per_chip", "NIC Gb/s"),
                                       ("node_overhead_w", "node overhead W")], rows)
        _say_user_specs("system", rows)


@app.command()
def system(system_id: str = typer.Argument(..., metavar="ID", help="System id, alias or YAML path."), spec_dir: Optional[list[Path]] = SpecDirOpt,
           as_json: bool = JsonOpt):
    """Every field of one system, with sources."""
    cat = _cat(spec_dir)
    s = cat.system(system_id)
    prov = _provenance(cat, "system", s, system_id)
    rows = sourced_rows(s)
    if as_json:
        emit_json({"id": s.id, "origin": prov, "summary": system_summary(s), "fields": rows})
    else:
        _fields_table(f"{s.name} ({s.id})" + (" [user spec]" if prov["user_spec"] else ""), rows)
        _say_provenance("system", prov)


@app.command()
def models(spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt):
    """List catalog models with derived parameter counts."""
    cat = _cat(spec_dir)
    rows = [{**model_summary(m), "origin": cat.provenance("model", m)} for m in cat.all("model")]
    if as_json:
        emit_json(rows)
    else:
        table(f"{len(rows)} models", [("name", "name"), ("layers", "layers"), ("hidden", "hidden"),
                                      ("heads", "heads"), ("kv_heads", "kv"), ("attention", "attn"),
                                      ("params_b", "params B"), ("active_params_b", "active B")], rows)
        _say_user_specs("model", rows)


@app.command()
def model(model_id: str = typer.Argument(..., metavar="ID", help="Model id, alias or YAML path."), spec_dir: Optional[list[Path]] = SpecDirOpt,
          as_json: bool = JsonOpt):
    """One model: shape, derived parameter counts, KV-cache bytes per token."""
    cat = _cat(spec_dir)
    m = cat.model(model_id)
    prov = _provenance(cat, "model", m, model_id)
    s = model_summary(m)
    if as_json:
        emit_json({**s, "origin": prov})
    else:
        kv(f"{m.name}" + (" [user spec]" if prov["user_spec"] else ""),
           [(k, v) for k, v in s.items() if k != "moe"] +
           ([("moe", ", ".join(f"{k}={v}" for k, v in s["moe"].items()))] if s["moe"] else []))
        _say_provenance("model", prov)


@app.command()
def check(files: list[Path] = typer.Argument(..., metavar="FILE...", help="Spec YAML files to validate."),
          spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt):
    """Validate user spec files (chip, system, model, scenario). Exit 0 if all are valid, else 2."""
    from estimator.scenarios.loader import looks_like_scenario, validate_scenario_mapping

    results = []
    for f in files:
        try:
            data = read_yaml_mapping(f)
            if looks_like_scenario(data):
                kind = "scenario"
                validate_scenario_mapping(data, str(f), _cat(spec_dir))
                results.append({"file": str(f), "kind": kind, "ok": True, "error": None})
                continue
            if "peak_tflops" in data:
                kind, cls = "chip", ChipSpec
            elif "scale_up" in data and "chip" in data:
                kind, cls = "system", SystemSpec
            elif "layers" in data:
                kind, cls = "model", ModelSpec
            else:
                raise SpecError(str(f), None, "cannot tell the spec kind (expected a chip, system, model or scenario spec)")
            load_spec(cls, f)
            results.append({"file": str(f), "kind": kind, "ok": True, "error": None})
        except SpecError as e:
            results.append({"file": str(f), "kind": None, "ok": False, "error": str(e)})
    bad = [r for r in results if not r["ok"]]
    if as_json:
        emit_json(results)
    else:
        for r in results:
            if r["ok"]:
                say(f"ok: {r['file']} ({r['kind']})")
    for r in bad:
        print(f"suanli: error: {safe(r['error'])}", file=sys.stderr)
    if bad:
        raise typer.Exit(2)


@app.command()
def warmup(as_json: bool = JsonOpt):
    """Compile the estimator's kernels now (once per install; e.g. in a Dockerfile)."""
    from estimator.warm import compile_estimate_s, warmup as run

    rep = run(progress=lambda name, cold: None if as_json or not cold else
              print(f"suanli: compiling {name} (about {compile_estimate_s([name])} s) ...",
                    file=sys.stderr, flush=True))
    if as_json:
        emit_json(rep)
        return
    for name, sec in rep["seconds"].items():
        state = "compiled" if name in rep["cold_before"] else "already compiled, loaded"
        say(f"{name}: {state} in {sec:.1f} s")
    if rep["cold_after"]:
        raise InputError("numba could not cache the compiled kernels (read-only install?): "
                         "set NUMBA_CACHE_DIR to a writable folder and run 'suanli warmup' again")
    say(f"cached in {', '.join(rep['cache_dirs'])}")


from estimator.cli import calibrate_cmd, infer_cmd, roadmap_cmd, size_cmd, train_cmd  # noqa: E402,F401  (register their commands)


def main() -> None:
    """Console entry point: one-line errors, exit code 2, never a traceback for bad input."""
    cmd = typer.main.get_command(app)
    try:
        rv = cmd.main(args=sys.argv[1:], prog_name="suanli", standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        print("suanli: aborted", file=sys.stderr)
        sys.exit(130)
    except _cx.ClickException as e:
        if type(e).__name__ == "NoArgsIsHelpError":
            print(e.format_message())
            sys.exit(0)
        msg = " ".join(e.format_message().split())
        print(f"suanli: error: {safe(msg)}", file=sys.stderr)
        sys.exit(2)
    except SuanliError as e:
        print(f"suanli: error: {safe(cli_message(e))}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("suanli: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)
