"""Cluster sizing: how many chips for a job, how many X match N of Y, what a power budget buys.

Every answer is a best plan found by the full plan search (estimate_training) at a chip count
that is a whole number of nodes. Chip counts are node multiples node * 2^a and node * 3 * 2^a
(two per doubling, counts a parallel plan can use); the smallest count that meets a target is
found by scanning them upwards, since throughput is not monotone in the count.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from estimator.catalog import Catalog, default_catalog
from estimator.errors import InfeasibleError, InputError, PlanError
from estimator.goodput import (DEFAULT_CKPT_GB_PER_S_PER_NODE, DEFAULT_MTBF_CHIP_H,
                               DEFAULT_RESTART_S, goodput)
from estimator.power import PUE_DEFAULT, cluster_power
from estimator.training import estimate_training

MAX_CHIPS_DEFAULT = 200_000


@dataclass
class JobSpec:
    """What is being trained and how the cluster is costed (shared by size/compare/sweep)."""

    model: object
    gbs: int = 1024
    seq_len: int = 8192
    precision: str | None = "bf16"
    tokens: float | None = None
    pue: float = PUE_DEFAULT
    mtbf_chip_h: float = DEFAULT_MTBF_CHIP_H
    ckpt_gb_per_s_per_node: float = DEFAULT_CKPT_GB_PER_S_PER_NODE
    restart_s: float = DEFAULT_RESTART_S
    overrides: dict = field(default_factory=dict)


@dataclass
class ClusterRow:
    chip: str
    system: str
    chips: int
    nodes: int
    fits: bool
    plan: dict | None = None
    tokens_per_s: float = 0.0
    tokens_per_s_per_chip: float = 0.0
    mfu: float = 0.0
    step_time_s: float = 0.0
    days: float | None = None
    days_with_failures: float | None = None
    goodput: float | None = None
    power_mw: float | None = None
    power_basis: str = ""
    energy_kwh_per_1m_tokens: float | None = None
    energy_mwh_total: float | None = None
    ratio_to_first: float | None = None
    why: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def smooth_counts(node: int, max_chips: int, min_chips: int = 1) -> list[int]:
    """Node multiples node * 2^a and node * 3 * 2^a within [min_chips, max_chips], ascending:
    two counts per doubling, both easy to factor into tp * pp * cp * dp."""
    ks = set()
    a = 1
    while node * a <= max_chips:
        ks.add(a)
        if a >= 2 and node * a * 3 // 2 <= max_chips:
            ks.add(a * 3 // 2)
        a *= 2
    return sorted(node * k for k in ks if node * k >= min_chips)


def evaluate_cluster(job: JobSpec, chip, chips: int, system=None, catalog: Catalog | None = None) -> ClusterRow:
    """Best plan on exactly ``chips`` chips, with power, energy and goodput."""
    cat = catalog or default_catalog()
    c = chip if not isinstance(chip, str) else cat.chip(chip)
    s = system if (system is not None and not isinstance(system, str)) else cat.system_for(c, system)
    nodes = math.ceil(chips / s.chips_per_node)
    row = ClusterRow(chip=c.id, system=s.id, chips=chips, nodes=nodes, fits=False)
    try:
        r = estimate_training(job.model, c, chips=chips, gbs=job.gbs, seq_len=job.seq_len, system=s,
                              precision=job.precision, tokens=job.tokens, catalog=cat,
                              overrides=job.overrides)
    except (InfeasibleError, PlanError) as e:
        row.why = str(e)
        return row
    row.fits = True
    row.plan = r.plan
    row.tokens_per_s = r.tokens_per_s
    row.tokens_per_s_per_chip = r.tokens_per_s_per_chip
    row.mfu = r.mfu
    row.step_time_s = r.step_time_s
    pw = cluster_power(c, s, chips, job.pue)
    row.power_basis = pw.basis
    if pw.facility_w is not None:
        row.power_mw = pw.facility_w / 1e6
        row.energy_kwh_per_1m_tokens = pw.facility_w / r.tokens_per_s * 1e6 / 3.6e6
    if job.tokens is not None:
        from estimator.describe import model_summary
        params = model_summary(cat.model(job.model) if isinstance(job.model, str) else job.model)["params_b"] * 1e9
        row.days = r.days_to_train
        g = goodput(chips, nodes, params, row.days, job.mtbf_chip_h, job.ckpt_gb_per_s_per_node, job.restart_s)
        row.goodput = g.goodput
        row.days_with_failures = row.days / g.goodput if g.goodput > 0 else math.inf
        if pw.facility_w is not None:
            row.energy_mwh_total = pw.facility_w * row.days_with_failures * 24 / 1e6
    return row


def _rate(row: ClusterRow, job: JobSpec) -> float:
    """Effective tokens/s: with failures when the job length is known."""
    if not row.fits:
        return 0.0
    return row.tokens_per_s * (row.goodput if row.goodput is not None else 1.0)


def smallest_meeting(job: JobSpec, chip, target_tokens_per_s: float, system=None,
                     catalog: Catalog | None = None, max_chips: int = MAX_CHIPS_DEFAULT) -> tuple[ClusterRow, list[ClusterRow]]:
    """Smallest node-multiple count whose best plan reaches ``target_tokens_per_s``."""
    cat = catalog or default_catalog()
    c = cat.chip(chip) if isinstance(chip, str) else chip
    s = system if (system is not None and not isinstance(system, str)) else cat.system_for(c, system)
    counts = smooth_counts(s.chips_per_node, max_chips)
    if not counts:
        raise InputError(f"--max-chips {max_chips} is below one {s.id} node ({s.chips_per_node} chips)")
    tried: dict[int, ClusterRow] = {}
    # throughput is not monotone in the count (a count must factor into tp*pp*cp*dp with dp
    # dividing the batch): scan upwards, two counts per doubling, to the first that meets it
    for n in counts:
        row = evaluate_cluster(job, c, n, s, cat)
        tried[n] = row
        if _rate(row, job) >= target_tokens_per_s:
            return row, sorted(tried.values(), key=lambda r: r.chips)
    best = max(tried.values(), key=lambda r: _rate(r, job))
    raise InfeasibleError(
        f"no cluster of up to {max_chips:,} {c.id} reaches {target_tokens_per_s:,.0f} tokens/s; "
        f"closest: {best.chips:,} chips at {_rate(best, job):,.0f} tokens/s"
        + (f" ({best.why})" if not best.fits and best.why else "")
        + "; a larger --gbs lets more chips help")


def size_for_time(job: JobSpec, chip, days: float, system=None, catalog=None,
                  max_chips: int = MAX_CHIPS_DEFAULT):
    if job.tokens is None:
        raise InputError("--days needs --tokens")
    if days <= 0:
        raise InputError(f"--days must be positive (got {days:g})")
    return smallest_meeting(job, chip, job.tokens / (days * 86400.0), system, catalog, max_chips)


def match_cluster(job: JobSpec, chip, ref_chip: str, ref_chips: int, system=None, catalog=None,
                  max_chips: int = MAX_CHIPS_DEFAULT):
    """How many ``chip`` give the training throughput of ``ref_chips`` x ``ref_chip``."""
    cat = catalog or default_catalog()
    ref = evaluate_cluster(job, ref_chip, ref_chips, None, cat)
    if not ref.fits:
        raise InfeasibleError(f"reference cluster {ref_chips} x {ref_chip}: {ref.why}")
    row, tried = smallest_meeting(job, chip, _rate(ref, job), system, cat, max_chips)
    return ref, row, tried


def fastest_under_power(job: JobSpec, chip, budget_mw: float, system=None, catalog=None):
    """The fastest cluster of ``chip`` whose facility power fits in ``budget_mw``."""
    if budget_mw <= 0:
        raise InputError(f"--power-budget-mw must be positive (got {budget_mw:g})")
    cat = catalog or default_catalog()
    c = cat.chip(chip) if isinstance(chip, str) else chip
    s = system if (system is not None and not isinstance(system, str)) else cat.system_for(c, system)
    one = cluster_power(c, s, s.chips_per_node, job.pue)
    if one.facility_w is None:
        raise InfeasibleError(f"power of {c.id} is unknown: {one.basis}")
    per_chip = one.facility_w / s.chips_per_node
    max_chips = int(budget_mw * 1e6 // per_chip)
    counts = [n for n in smooth_counts(s.chips_per_node, max_chips)
              if (cluster_power(c, s, n, job.pue).facility_w or math.inf) <= budget_mw * 1e6]
    if not counts:
        raise InfeasibleError(f"{budget_mw:g} MW does not power one {s.id} node ({one.facility_w / 1e6:.3f} MW)")
    rows = [evaluate_cluster(job, c, n, s, cat) for n in counts[-4:]]
    best = max(rows, key=lambda r: _rate(r, job))
    if not best.fits:
        raise InfeasibleError(f"no plan fits on {counts[-1]} x {c.id}: {best.why}")
    return best, rows


def with_ratios(rows: list[ClusterRow], job: JobSpec) -> list[ClusterRow]:
    base = _rate(rows[0], job) if rows else 0.0
    for r in rows:
        r.ratio_to_first = _rate(r, job) / base if base > 0 else None
    return rows


def split_chip_system(name: str, cat: Catalog):
    """'ascend-910c@atlas-800i-a3' -> (chip spec, 'atlas-800i-a3'); plain ids use the default
    system. Lets one compare the same chip in a supernode and in ordinary nodes."""
    chip, _, system = name.partition("@")
    return cat.chip(chip.strip()), (system.strip() or None)


def compare(job: JobSpec, chips: list[str], *, cluster_chips: int | None = None,
            equal_power_mw: float | None = None, days: float | None = None,
            catalog: Catalog | None = None, max_chips: int = MAX_CHIPS_DEFAULT,
            progress=None) -> list[ClusterRow]:
    """One row per chip under one of three framings: same chip count (rounded up to whole
    nodes), same facility power, or the smallest cluster that finishes in ``days``."""
    modes = sum(x is not None for x in (cluster_chips, equal_power_mw, days))
    if modes != 1:
        raise InputError("give exactly one of --cluster-chips, --equal-power, or --tokens with --days")
    cat = catalog or default_catalog()
    rows = []
    for i, name in enumerate(chips):
        c, sys_name = split_chip_system(name, cat)
        s = cat.system_for(c, sys_name)
        if cluster_chips is not None:
            n = math.ceil(cluster_chips / s.chips_per_node) * s.chips_per_node
            row = evaluate_cluster(job, c, n, s, cat)
        elif equal_power_mw is not None:
            try:
                row, _ = fastest_under_power(job, c, equal_power_mw, s, cat)
            except InfeasibleError as e:
                row = ClusterRow(chip=c.id, system=s.id, chips=0, nodes=0, fits=False, why=str(e))
        else:
            try:
                row, _ = size_for_time(job, c, days, s, cat, max_chips)
            except InfeasibleError as e:
                row = ClusterRow(chip=c.id, system=s.id, chips=0, nodes=0, fits=False, why=str(e))
        rows.append(row)
        if progress:
            progress(i + 1, len(chips))
    return with_ratios(rows, job)


def parse_range(text: str) -> list[int]:
    """'64:16384' -> powers of two from 64 to 16384; '64:1024:64' -> arithmetic steps;
    '8,16,64' -> a list."""
    t = text.strip()
    try:
        if "," in t:
            vals = [int(x) for x in t.split(",") if x.strip()]
        elif ":" in t:
            parts = [int(x) for x in t.split(":")]
            if len(parts) == 2:
                lo, hi = parts
                if lo <= 0 or hi < lo:
                    raise InputError(f"--chips range {text!r}: need 0 < low <= high")
                vals = []
                v = lo
                while v <= hi:
                    vals.append(v)
                    v *= 2
            elif len(parts) == 3:
                lo, hi, step = parts
                if lo <= 0 or hi < lo or step <= 0:
                    raise InputError(f"--chips range {text!r}: need 0 < low <= high and step > 0")
                vals = list(range(lo, hi + 1, step))
            else:
                raise ValueError
        else:
            vals = [int(t)]
    except ValueError:
        raise InputError(f"--chips: cannot read {text!r} (examples: 64:16384, 64:1024:64, 8,16,64)") from None
    if not vals or any(v <= 0 for v in vals):
        raise InputError(f"--chips {text!r}: counts must be positive")
    if len(vals) > 200:
        raise InputError(f"--chips {text!r}: {len(vals)} points; at most 200")
    return vals


def sweep(job: JobSpec, chip, counts: list[int], system=None, catalog: Catalog | None = None,
          progress=None) -> list[ClusterRow]:
    cat = catalog or default_catalog()
    c = cat.chip(chip) if isinstance(chip, str) else chip
    s = cat.system_for(c, system)
    rows = []
    for i, n in enumerate(counts):
        rows.append(evaluate_cluster(job, c, n, s, cat))
        if progress:
            progress(i + 1, len(counts))
    return with_ratios(rows, job)
