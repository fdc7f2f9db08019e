"""Plain-data views of specs for listings and JSON (no rich, no typer here)."""
from __future__ import annotations

from pydantic import BaseModel

from estimator.catalog import Catalog
from estimator.specs import ChipSpec, ModelSpec, SystemSpec
from estimator.specs.common import Availability, Sourced

_CONF_RANK = {"official": 0, "reported": 1, "estimated": 2, "roadmap": 3, None: 4}


def _v(s: Sourced | None):
    return None if s is None else s.value


def chip_summary(chip: ChipSpec, cat: Catalog) -> dict:
    """One row of `suanli chips`: key numbers; confidence = the weakest of the key fields."""
    domain = None
    if chip.default_system:
        try:
            domain = cat.system(chip.default_system).scale_up.domain_chips
        except Exception:  # a dangling default system is reported by `suanli check`
            domain = None
    key = [chip.peak_tflops.bf16, chip.memory.capacity_gb, chip.memory.bandwidth_gb_per_s]
    confs = [s.confidence for s in key if s is not None and s.value is not None]
    conf = max(confs, key=lambda c: _CONF_RANK[c]) if confs else None
    bw = chip.hbm_gb_per_s
    return {
        "id": chip.id, "aliases": list(chip.aliases), "vendor": chip.vendor, "name": chip.name,
        "year": chip.year, "status": chip.status,
        "bf16_tflops": chip.peak("bf16"), "fp16_tflops": chip.peak("fp16"),
        "fp8_tflops": chip.peak("fp8"), "fp4_tflops": chip.peak("fp4"),
        "int8_tops": chip.peak("int8"),
        "hbm_gb": chip.hbm_gb, "hbm_tb_per_s": None if bw is None else bw / 1000.0,
        "scale_up_gb_per_s": chip.scale_up.bandwidth_gb_per_s.value,
        "scale_up_direction": chip.scale_up.bandwidth_gb_per_s.direction,
        "scale_up_domain": domain, "tdp_w": chip.tdp_w.value,
        "dies_per_package": chip.dies_per_package, "ranks_per_package": chip.ranks_per_package,
        "default_system": chip.default_system, "confidence": conf,
    }


def sourced_rows(spec: BaseModel, prefix: str = "") -> list[dict]:
    """Every field of a spec, flattened: {field, value, unit?, confidence, source, note}."""
    rows: list[dict] = []
    for name, value in spec:
        path = f"{prefix}{name}"
        if isinstance(value, Sourced):
            row = {"field": path, "value": value.value, "confidence": value.confidence,
                   "source": value.source, "note": value.note}
            if hasattr(value, "direction"):
                row["direction"] = value.direction
            rows.append(row)
        elif isinstance(value, Availability):
            rows.append({"field": path, "value": value.label(), "confidence": value.confidence,
                         "source": value.source, "note": value.note})
        elif isinstance(value, BaseModel):
            rows.extend(sourced_rows(value, path + "."))
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            for i, item in enumerate(value):
                rows.extend(sourced_rows(item, f"{path}.{i}."))
        else:
            rows.append({"field": path, "value": value, "confidence": None, "source": None,
                         "note": None})
    return rows


def model_summary(m: ModelSpec) -> dict:
    from estimator.packing import pack_model
    from kernels.model import model_params

    pr = model_params(pack_model(m))
    kv_bytes = kv_cache_bytes_per_token(m, 2.0)
    return {
        "name": m.name, "aliases": list(m.aliases), "layers": m.layers, "hidden": m.hidden,
        "heads": m.heads, "kv_heads": m.kv_heads, "ffn_act": m.ffn_act, "vocab": m.vocab,
        "attention": "mla" if m.attention else ("mha" if m.kv_heads == m.heads else "gqa"),
        "moe": None if m.moe is None else m.moe.model_dump(),
        "params_b": pr[8] / 1e9, "active_params_b": pr[9] / 1e9,
        "kv_cache_bytes_per_token_bf16": kv_bytes,
        "published_params_b": m.published_params_b,
        "published_active_params_b": m.published_active_params_b,
        "source": m.source, "notes": m.notes,
    }


def kv_cache_bytes_per_token(m: ModelSpec, bytes_per_elem: float) -> float:
    """KV-cache bytes per token over all layers. MLA caches the compressed latent plus the
    decoupled rope key (DeepSeek-V2 sec. 2.1.2); GQA caches K and V of the kv heads; sliding
    layers cache at most the window (counted here as full length: an upper bound per token)."""
    if m.attention is not None:
        per_layer = m.attention.kv_lora_rank + m.attention.qk_rope_head_dim
    else:
        per_layer = 2 * m.kv_heads * m.head_dim_eff
    return float(m.layers * per_layer * bytes_per_elem)


def system_summary(s: SystemSpec) -> dict:
    return {
        "id": s.id, "aliases": list(s.aliases), "vendor": s.vendor, "name": s.name,
        "status": s.status, "chip": s.chip, "chips_per_node": s.chips_per_node,
        "scale_up_domain": s.scale_up.domain_chips, "topology": s.scale_up.topology,
        "scale_up_gb_per_s_per_chip": s.scale_up.bandwidth_gb_per_s_per_chip.value,
        "scale_up_direction": s.scale_up.bandwidth_gb_per_s_per_chip.direction,
        "scale_out_gbit_per_s_per_chip": s.scale_out.nic_gbit_per_s_per_chip.value,
        "node_overhead_w": s.node_overhead_w.value,
    }
