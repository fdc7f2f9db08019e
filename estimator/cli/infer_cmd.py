"""`suanli infer` and `suanli serve-size`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from estimator.cli.app import JsonOpt, SpecDirOpt, _cat, app
from estimator.cli.render import console, emit_json, kv, table
from estimator.units import parse_derate


@app.command()
def infer(
    model: str = typer.Option(..., "--model"), chip: str = typer.Option(..., "--chip"),
    chips: int = typer.Option(..., "--chips", help="Chips in one replica."),
    input_len: int = typer.Option(..., "--input-len"), output_len: int = typer.Option(..., "--output-len"),
    system: Optional[str] = typer.Option(None, "--system"),
    tp: Optional[int] = typer.Option(None, "--tp"), pp: Optional[int] = typer.Option(None, "--pp"),
    ep: Optional[int] = typer.Option(None, "--ep"),
    dp: Optional[int] = typer.Option(None, "--dp", help="Attention data-parallel groups."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Concurrent sequences (default: best that fits the SLOs)."),
    tpot_slo_ms: Optional[float] = typer.Option(None, "--tpot-slo-ms"),
    ttft_slo_ms: Optional[float] = typer.Option(None, "--ttft-slo-ms"),
    precision: str = typer.Option("bf16", "--precision", help="bf16 | fp16 | fp8 | fp4 | int8 (W8A8) | int4 (W4A16) | w4a8"),
    kv_precision: Optional[str] = typer.Option(None, "--kv-precision", help="bf16 | fp8 | int8 (default fp8 with fp8/fp4 weights)"),
    phase: str = typer.Option("e2e", "--phase", help="prefill | decode | e2e"),
    spec_accept: float = typer.Option(1.0, "--spec-accept", help="Mean tokens emitted per decode step (speculative decoding / MTP)."),
    spec_draft: Optional[int] = typer.Option(None, "--spec-draft", help="Tokens drafted per step (default: the fewest that can emit --spec-accept)."),
    stack: Optional[str] = typer.Option(None, "--stack", help="Serving engine: trt-llm | vllm | sglang | mindie | vllm-ascend (default per chip class)."),
    tbo: Optional[bool] = typer.Option(None, "--tbo/--no-tbo", help="Two-batch overlap of MoE communication (default: searched where the stack has it)."),
    derate: Optional[list[str]] = typer.Option(None, "--derate"),
    spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt,
):
    """Serving estimate: TTFT, TPOT, throughput and memory; omitted knobs are searched."""
    from estimator.inference import estimate_inference

    r = estimate_inference(model, chip, chips=chips, input_len=input_len, output_len=output_len,
                           system=system, tp=tp, pp=pp, ep=ep, dp=dp, batch=batch,
                           tpot_slo_ms=tpot_slo_ms, ttft_slo_ms=ttft_slo_ms, precision=precision,
                           kv_precision=kv_precision, phase=phase, spec_accept=spec_accept,
                           spec_draft=spec_draft, stack=stack,
                           tbo=None if tbo is None else int(tbo),
                           catalog=_cat(spec_dir), overrides=parse_derate(derate))
    if as_json:
        emit_json(r.to_dict())
        return
    p = r.plan
    kv("suanli infer", [
        ("model / chip / system", f"{r.model} on {r.chips} x {r.chip} ({r.system}), {r.phase}"),
        ("serving stack", r.stack),
        ("plan", f"tp{p['tp']} pp{p['pp']} ep{p['ep']} dp{p['dp']} {p['precision']} kv:{p['kv_precision']}"
                 + (" two-batch-overlap" if p["two_batch_overlap"] else "")
                 + (f" spec {p['spec_draft']} drafted / {p['spec_accept']:g} emitted" if p["spec_draft"] else "")),
        ("batch (max by memory)", f"{r.batch} ({r.max_batch_by_memory})"),
        ("TTFT ms", r.ttft_ms), ("TPOT ms", r.tpot_ms),
        ("output tokens/s (replica)", r.output_tokens_per_s),
        ("output tokens/s per chip", r.output_tokens_per_s_per_chip),
        ("input tokens/s per chip (prefill saturated)", r.input_tokens_per_s_per_chip),
        ("MoE max/mean load over EP ranks", r.expert_imbalance),
        ("weights / KV / total GB per chip", f"{r.weights_gb_per_chip:.1f} / {r.kv_cache_gb_per_chip:.1f} / "
                                             f"{r.memory_gb_per_chip:.1f} of {r.memory_capacity_gb_per_chip:.1f}"),
        ("plans / batches evaluated", f"{r.search['plans']} / {r.search['evaluated']}")])
    table("breakdown (ms)", [("part", "part"), ("ms", "ms")],
          [{"part": k, "ms": v} for k, v in r.breakdown_ms.items()], digits=3)
    for n in r.notes:
        console.print(f"note: {n}")


@app.command("serve-size")
def serve_size_cmd(
    model: str = typer.Option(..., "--model"), chip: str = typer.Option(..., "--chip"),
    qps: float = typer.Option(..., "--qps", help="Requests per second to serve."),
    input_len: int = typer.Option(..., "--input-len"), output_len: int = typer.Option(..., "--output-len"),
    tpot_slo_ms: Optional[float] = typer.Option(None, "--tpot-slo-ms"),
    ttft_slo_ms: Optional[float] = typer.Option(None, "--ttft-slo-ms"),
    precision: str = typer.Option("bf16", "--precision"), kv_precision: Optional[str] = typer.Option(None, "--kv-precision"),
    disaggregate: bool = typer.Option(False, "--disaggregate", help="Separate prefill and decode pools."),
    spec_accept: float = typer.Option(1.0, "--spec-accept"),
    stack: Optional[str] = typer.Option(None, "--stack", help="Serving engine (default per chip class)."),
    system: Optional[str] = typer.Option(None, "--system"), pue: float = typer.Option(1.3, "--pue"),
    spec_dir: Optional[list[Path]] = SpecDirOpt, as_json: bool = JsonOpt,
):
    """Fewest chips (and the prefill/decode split) to serve a request rate under SLOs, with power."""
    from estimator.errors import InputError
    from estimator.serving import serve_size

    if pue < 1.0:
        raise InputError(f"--pue must be >= 1 (got {pue})")
    r = serve_size(model, chip, qps=qps, input_len=input_len, output_len=output_len,
                   tpot_slo_ms=tpot_slo_ms, ttft_slo_ms=ttft_slo_ms, precision=precision,
                   kv_precision=kv_precision, disaggregate=disaggregate, spec_accept=spec_accept,
                   system=system, pue=pue, catalog=_cat(spec_dir), stack=stack)
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
