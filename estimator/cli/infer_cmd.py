"""`suanli infer` and `suanli serve-size`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from estimator.cli.app import JsonOpt, SpecDirOpt, _cat, app
from estimator.cli.first_run import compiling
from estimator.cli.options import number
from estimator.cli.render import emit_json, fmt_band, kv, say, table
from estimator.cli.train_cmd import DERATE_HELP
from estimator.power import PUE_DEFAULT
from estimator.units import derate_text, parse_derate

PRECISION_HELP = ("Weights/activations: bf16 | fp16 | fp8 | fp4 | int8 (W8A8) | int4 (W4A16) | w4a8 "
                  "| auto (fp8, else int8, else bf16: what the chip has).")
KV_HELP = "KV cache: bf16 | fp8 | int8 (default fp8 with fp8/fp4 weights, else bf16)."
TPOT_HELP = "Time-per-output-token SLO, ms: batches that decode slower are refused."
TTFT_HELP = "Time-to-first-token SLO, ms: plans whose prefill is slower are refused."
SPEC_HELP = "Accepted tokens per decode step (speculative decoding / MTP), 1-16."
STACK_HELP = "Serving engine: trt-llm | vllm | sglang | mindie | vllm-ascend | other (default per chip class)."


@app.command()
def infer(
    model: str = typer.Option(..., "--model", help="Catalog id, alias or YAML path."),
    chip: str = typer.Option(..., "--chip", help="Catalog id, alias or YAML path."),
    chips: int = typer.Option(..., "--chips", help="Chips in one replica."),
    input_len: int = typer.Option(..., "--input-len", help="Prompt tokens per request."),
    output_len: int = typer.Option(..., "--output-len", help="Generated tokens per request."),
    system: Optional[str] = typer.Option(None, "--system", help="System id (default: the chip's)."),
    tp: Optional[int] = typer.Option(None, "--tp", help="Tensor-parallel degree (default: searched)."),
    pp: Optional[int] = typer.Option(None, "--pp", help="Pipeline-parallel stages (default: searched)."),
    ep: Optional[int] = typer.Option(None, "--ep", help="Expert-parallel degree, MoE (default: searched)."),
    dp: Optional[int] = typer.Option(None, "--dp", help="Attention data-parallel groups."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Concurrent sequences (default: best that fits the SLOs)."),
    tpot_slo_ms: Optional[float] = number(None, "--tpot-slo-ms", TPOT_HELP),
    ttft_slo_ms: Optional[float] = number(None, "--ttft-slo-ms", TTFT_HELP),
    precision: str = typer.Option("bf16", "--precision", help=PRECISION_HELP),
    kv_precision: Optional[str] = typer.Option(None, "--kv-precision", help=KV_HELP),
    phase: str = typer.Option("e2e", "--phase", help="prefill | decode | e2e (both, prefill amortised)."),
    spec_accept: float = number(1.0, "--spec-accept", SPEC_HELP),
    spec_draft: Optional[int] = typer.Option(None, "--spec-draft", min=1, max=16,
                                             help="Tokens drafted per step (default: the fewest that can emit --spec-accept)."),
    stack: Optional[str] = typer.Option(None, "--stack", help=STACK_HELP),
    tbo: Optional[bool] = typer.Option(None, "--tbo/--no-tbo", help="Two-batch overlap of MoE communication (default: searched where the stack has it)."),
    derate: Optional[list[str]] = typer.Option(None, "--derate", help=DERATE_HELP),
    spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt,
):
    """Serving estimate: TTFT, TPOT, throughput and memory; omitted knobs are searched."""
    from estimator.api import estimate_inference

    overrides = parse_derate(derate)
    cat = _cat(spec_dir)
    with compiling(["kernels.inference"]):
        r = estimate_inference(model, chip, chips=chips, input_len=input_len, output_len=output_len,
                               system=system, tp=tp, pp=pp, ep=ep, dp=dp, batch=batch,
                               tpot_slo_ms=tpot_slo_ms, ttft_slo_ms=ttft_slo_ms, precision=precision,
                               kv_precision=kv_precision, phase=phase, spec_accept=spec_accept,
                               spec_draft=spec_draft, stack=stack,
                               tbo=None if tbo is None else int(tbo),
                               catalog=cat, overrides=overrides)
    if as_json:
        emit_json({**r.to_dict(), "derate": overrides})
        return
    p = r.plan
    rows = [("model / chip / system", f"{r.model} on {r.chips} x {r.chip} ({r.system}), {r.phase}"),
            ("serving stack", r.stack)]
    if overrides:
        rows.append(("what-if (--derate)", derate_text(overrides)))
    kv("suanli infer", rows + [
        ("plan", f"tp{p['tp']} pp{p['pp']} ep{p['ep']} dp{p['dp']} {p['precision']} kv:{p['kv_precision']}"
                 + (" two-batch-overlap" if p["two_batch_overlap"] else "")
                 + (f" spec {p['spec_draft']} drafted / {p['spec_accept']:g} emitted" if p["spec_draft"] else "")),
        ("batch (max by memory)", f"{r.batch} ({r.max_batch_by_memory})"),
        ("TTFT ms (p10-p90)", fmt_band(r.ttft_ms, r.ttft_ms_p10, r.ttft_ms_p90)),
        ("TPOT ms (p10-p90)", fmt_band(r.tpot_ms, r.tpot_ms_p10, r.tpot_ms_p90)),
        ("output tokens/s, replica (p10-p90)",
         fmt_band(r.output_tokens_per_s, r.output_tokens_per_s_p10, r.output_tokens_per_s_p90)),
        ("output tokens/s per chip", r.output_tokens_per_s_per_chip),
        ("input tokens/s per chip (prefill saturated)", r.input_tokens_per_s_per_chip),
        ("MoE max/mean load over EP ranks", r.expert_imbalance),
        ("weights / KV / total GB per chip", f"{r.weights_gb_per_chip:.1f} / {r.kv_cache_gb_per_chip:.1f} / "
                                             f"{r.memory_gb_per_chip:.1f} of {r.memory_capacity_gb_per_chip:.1f}"),
        ("plans / batches evaluated", f"{r.search['plans']} / {r.search['evaluated']}")])
    table("breakdown (ms)", [("part", "part"), ("ms", "ms")],
          [{"part": k, "ms": v} for k, v in r.breakdown_ms.items()], digits=3)
    for n in r.notes:
        say(f"note: {n}")
    if r.band:
        say(f"band: {r.band['model_error']}; spec spread by confidence")


@app.command("serve-size")
def serve_size_cmd(
    model: str = typer.Option(..., "--model", help="Catalog id, alias or YAML path."),
    chip: str = typer.Option(..., "--chip", help="Catalog id, alias or YAML path."),
    qps: float = number(..., "--qps", "Requests per second to serve."),
    input_len: int = typer.Option(..., "--input-len", help="Prompt tokens per request."),
    output_len: int = typer.Option(..., "--output-len", help="Generated tokens per request."),
    tpot_slo_ms: Optional[float] = number(None, "--tpot-slo-ms", TPOT_HELP),
    ttft_slo_ms: Optional[float] = number(None, "--ttft-slo-ms", TTFT_HELP),
    precision: str = typer.Option("bf16", "--precision", help=PRECISION_HELP),
    kv_precision: Optional[str] = typer.Option(None, "--kv-precision", help=KV_HELP),
    disaggregate: bool = typer.Option(False, "--disaggregate", help="Separate prefill and decode pools."),
    spec_accept: float = number(1.0, "--spec-accept", SPEC_HELP),
    stack: Optional[str] = typer.Option(None, "--stack", help=STACK_HELP),
    system: Optional[str] = typer.Option(None, "--system", help="System id (default: the chip's)."),
    pue: float = number(PUE_DEFAULT, "--pue", "Facility power usage effectiveness (1-5)."),
    spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt,
):
    """Fewest chips (and prefill/decode split) to serve a request rate under SLOs, with power."""
    from estimator.serving import serve_size

    cat = _cat(spec_dir)
    with compiling(["kernels.inference"]):
        r = serve_size(model, chip, qps=qps, input_len=input_len, output_len=output_len,
                       tpot_slo_ms=tpot_slo_ms, ttft_slo_ms=ttft_slo_ms, precision=precision,
                       kv_precision=kv_precision, disaggregate=disaggregate, spec_accept=spec_accept,
                       system=system, pue=pue, catalog=cat, stack=stack)
    if as_json:
        emit_json(r.to_dict())
        return
    rows = [("model / chip", f"{model} on {r.chip} ({r.system})"), ("serving stack", r.stack),
            ("requests/s", r.qps), ("chips", r.chips)]
    if r.disaggregated:
        rows += [("prefill chips", r.prefill_chips), ("decode chips", r.decode_chips),
                 ("prefill : decode", r.prefill_decode_ratio), ("KV transfer ms", r.kv_transfer_ms)]
    else:
        rows += [("replicas x chips", f"{r.replicas} x {r.replica_chips}")]
    rows += [("batch per replica", r.batch), ("TTFT ms", r.ttft_ms), ("TPOT ms", r.tpot_ms),
             ("power MW", r.power_mw), ("power basis", r.power_basis)]
    kv("suanli serve-size", rows)
