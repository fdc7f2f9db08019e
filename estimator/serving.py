"""Serving capacity: the fewest chips for a request rate under TPOT/TTFT SLOs, optionally with
prefill/decode disaggregation (separate pools, KV cache shipped between them over the
scale-out network)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from estimator.args import MAX_CHIPS, check, check_optional
from estimator.catalog import Catalog, default_catalog
from estimator.describe import kv_cache_bytes_per_token
from estimator.errors import InfeasibleError, InputError, SuanliError
from estimator.inference import KV_CODES, default_kv_precision, estimate_inference
from estimator.power import PUE_DEFAULT, cluster_power


def auto_serving_precision(chip) -> str:
    """What ``precision="auto"`` means for serving: the narrowest weight/activation format the
    chip has a datasheet peak for, among fp8, int8 (W8A8) and bf16."""
    if chip.peak("fp8") is not None:
        return "fp8"
    if chip.peak("int8") is not None:
        return "int8"
    return "bf16"


@dataclass
class ServePlan:
    """Chips to serve a request rate: replicas (or prefill and decode pools), plan, latencies
    and power.

    >>> from estimator import serve_size
    >>> p = serve_size("llama3-8b", "h100", qps=5, input_len=1000, output_len=200, tpot_slo_ms=50)
    >>> p.chips == p.replicas * p.replica_chips, p.tpot_ms <= 50
    (True, True)
    """

    chip: str
    system: str
    qps: float
    disaggregated: bool
    chips: int
    replicas: int
    replica_chips: int
    prefill_chips: int | None
    decode_chips: int | None
    prefill_decode_ratio: float | None
    plan: dict
    batch: int
    ttft_ms: float
    tpot_ms: float
    kv_transfer_ms: float | None
    output_tokens_per_s: float
    power_mw: float | None
    power_basis: str
    stack: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def replica_sizes(node: int, ranks_per_chip: int, limit: int = 128) -> list[int]:
    sizes = [1, 2, 4]
    n = node
    while n <= limit:
        sizes.append(n)
        n *= 2
    return sorted(set(s for s in sizes if s <= limit))


def _fewest(sizes, cat, model, chip, need, per_replica, **kw):
    """Replica size with the fewest chips for the load: chips(n) = n * ceil(need / rate(n)),
    ties broken by the better throughput per chip. Returns (result, size, replicas)."""
    best, best_key = None, None
    errors = []
    for n in sizes:
        try:
            r = estimate_inference(model, chip, chips=n, catalog=cat, **kw)
        except SuanliError as e:
            errors.append(f"{n} chips: {e}")
            continue
        rate = per_replica(r)
        if rate <= 0:
            continue
        replicas = math.ceil(need / rate - 1e-9)
        key = (replicas * n, -rate / n)
        if best_key is None or key < best_key:
            best, best_key = (r, n, replicas), key
    if best is None:
        raise InfeasibleError("no replica size works: " + (errors[-1] if errors else "no candidates"))
    return best


def _check_size(chips: int, qps: float, chip_id: str) -> None:
    if chips > MAX_CHIPS:
        raise InfeasibleError(f"serving {qps:g} requests/s needs {chips:,} x {chip_id}, beyond the "
                              f"{MAX_CHIPS:,} chips any cluster this tool reasons about")


def serve_size(model, chip, *, qps: float, input_len: int, output_len: int, tpot_slo_ms=None,
               ttft_slo_ms=None, precision="bf16", kv_precision=None, disaggregate=False,
               spec_accept=1.0, system=None, pue=PUE_DEFAULT, catalog: Catalog | None = None,
               max_replica_chips: int = 128, stack: str | None = None) -> ServePlan:
    """Chips to serve ``qps`` requests/s of ``input_len`` + ``output_len`` tokens under the
    TPOT/TTFT SLOs: the replica size (and, disaggregated, the prefill and decode pool sizes)
    needing the fewest chips, then the best throughput per chip among equals. ``precision="auto"``: fp8, else
    int8, else bf16, as the chip has.

    >>> from estimator import serve_size
    >>> p = serve_size("llama3-8b", "h20", qps=20, input_len=2000, output_len=500,
    ...                tpot_slo_ms=50, precision="auto", disaggregate=True)
    >>> p.chips == p.prefill_chips + p.decode_chips, p.plan["decode"]["precision"]
    (True, 'fp8')
    """
    check("qps", qps)
    check("input_len", input_len)
    check("output_len", output_len)
    if output_len == 0:
        raise InputError("output_len must be positive for serving (got 0)", "output_len")
    check_optional("tpot_slo_ms", tpot_slo_ms)
    check_optional("ttft_slo_ms", ttft_slo_ms)
    check("spec_accept", spec_accept)
    check("pue", pue)
    cat = catalog or default_catalog()
    c = chip if not isinstance(chip, str) else cat.chip(chip)
    s = system if (system is not None and not isinstance(system, str)) else cat.system_for(c, system)
    if precision == "auto":
        precision = auto_serving_precision(c)
    sizes = replica_sizes(s.chips_per_node, c.ranks_per_package, max_replica_chips)
    common = dict(input_len=input_len, precision=precision, kv_precision=kv_precision,
                  spec_accept=spec_accept, system=s, stack=stack)
    if not disaggregate:
        r, n, replicas = _fewest(sizes, cat, model, c, qps * output_len,
                                 lambda x: x.output_tokens_per_s, output_len=output_len,
                                 tpot_slo_ms=tpot_slo_ms, ttft_slo_ms=ttft_slo_ms, phase="e2e",
                                 **common)
        chips = replicas * n
        _check_size(chips, qps, c.id)
        pw = cluster_power(c, s, chips, pue)
        return ServePlan(c.id, s.id, qps, False, chips, replicas, n, None, None, None,
                         r.plan, r.batch, r.ttft_ms, r.tpot_ms, None,
                         replicas * r.output_tokens_per_s,
                         None if pw.facility_w is None else pw.facility_w / 1e6, pw.basis,
                         r.stack)
    # prefill pool: saturated prompt throughput; decode pool: generation, KV held as the stack admits
    rp, n_p, reps_p = _fewest(sizes, cat, model, c, qps * input_len,
                              lambda x: x.input_tokens_per_s_per_chip * x.chips, output_len=0,
                              ttft_slo_ms=ttft_slo_ms, phase="prefill", **common)
    rd, n_d, reps_d = _fewest(sizes, cat, model, c, qps * output_len, lambda x: x.output_tokens_per_s,
                              output_len=output_len, tpot_slo_ms=tpot_slo_ms, phase="decode",
                              **common)
    prefill_chips = reps_p * n_p
    decode_chips = reps_d * n_d
    m = cat.model(model) if isinstance(model, str) else model
    kvp = kv_precision or default_kv_precision(precision)
    kv_bytes = input_len * kv_cache_bytes_per_token(m, 2.0 if KV_CODES[kvp] == 0 else 1.0)
    nic = s.scale_out.nic_gbit_per_s_per_chip.value
    # the prompt's KV leaves the prefill replica over its chips' NICs in parallel
    kv_ms = kv_bytes / (nic / 8 * 1e9 * n_p) * 1e3 if nic else None
    chips = prefill_chips + decode_chips
    _check_size(chips, qps, c.id)
    pw = cluster_power(c, s, chips, pue)
    ttft = rp.ttft_ms + (kv_ms or 0.0)
    if ttft_slo_ms is not None and ttft > ttft_slo_ms:
        raise InfeasibleError(f"TTFT {ttft:.0f} ms (prefill {rp.ttft_ms:.0f} + KV transfer "
                              f"{kv_ms or 0:.0f}) exceeds the SLO {ttft_slo_ms:g} ms")
    return ServePlan(c.id, s.id, qps, True, chips, 0, 0, prefill_chips, decode_chips,
                     prefill_chips / decode_chips, {"prefill": rp.plan, "decode": rd.plan},
                     rd.batch, ttft, rd.tpot_ms, kv_ms, qps * output_len,
                     None if pw.facility_w is None else pw.facility_w / 1e6, pw.basis, rd.stack)
