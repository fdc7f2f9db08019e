"""Cluster sizing: how many chips for a job, how many X match N of Y, what a power budget buys.

Every answer is a best plan found by the full plan search (estimate_training). Two rules make
the answers as fine as the questions:

* **A count is answered by the best plan on at most that many chips.** Many counts admit no
  valid plan (a prime factor, a batch that does not divide) or a worse one than a smaller count;
  such a count is answered by the best of the counts below it that drop low bits of its node
  count (``n``, then ``n`` rounded down to 2, 4, 8 ... nodes), and the row says how many chips
  it uses (``chips``) of those asked for (``chips_requested``). Sweeps keep a running best, so
  their answers never fall as the count grows.
* **The smallest count that meets a target is found to the nearest node.** A coarse scan over
  node * 2^a and node * 3 * 2^a finds a count that meets it. Throughput is not monotone in the
  count (data parallelism takes only divisors of the global batch; what is left of a count's
  ranks must go to tensor, context or pipeline parallelism), so the counts between half that
  count and it are grouped by that leftover factor; within a group throughput grows with the
  count, so each group is bisected, the friendliest groups first. Counts no plan can use (a
  prime factor no parallel degree can take) are skipped without a search, and every node
  multiple in the last 1% below the answer is evaluated as well. ``tried`` lists every count
  evaluated, which shows the resolution. Checked against brute force on small cases
  (tests/test_sizing_resolution.py): within one node of the true crossing.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field

from estimator.args import MAX_CHIPS, check, check_derate
from estimator.catalog import Catalog, default_catalog
from estimator.errors import InfeasibleError, InputError, PlanError
from estimator.goodput import (DEFAULT_CKPT_GB_PER_S_PER_NODE, DEFAULT_MTBF_CHIP_H,
                               DEFAULT_RESTART_S, goodput)
from estimator.power import PUE_DEFAULT, cluster_power

MAX_CHIPS_DEFAULT = 200_000
#: after bisection, every node multiple this close below the answer is evaluated as well
_SCAN_FRACTION = 0.01
_SCAN_NODES = 4
#: at most this many full plan searches while narrowing a bracket (beyond the coarse scan)
_REFINE_BUDGET = 64


@dataclass
class JobSpec:
    """What is being trained and how the cluster is costed (shared by size/compare/sweep).

    ``precision`` may be a precision name, ``"auto"`` or None (both: search every precision
    the chip supports). ``tokens`` may be a number or a string such as ``"15T"``.

    >>> from estimator import JobSpec
    >>> JobSpec(model="llama3-8b", gbs=256, seq_len=4096, tokens="1T").tokens
    1000000000000.0
    >>> JobSpec(model="llama3-8b", pue=0.9)
    Traceback (most recent call last):
    ...
    estimator.errors.InputError: pue must be at least 1 (got 0.9)
    """

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
    #: software stack (hwspecs/stacks.yaml); None: the chip class's default
    stack: str | None = None

    def __post_init__(self):
        from estimator.units import parse_count

        check("gbs", self.gbs)
        check("seq_len", self.seq_len)
        if self.tokens is not None:
            self.tokens = parse_count(self.tokens, "tokens")
        check("pue", self.pue)
        check("mtbf_chip_h", self.mtbf_chip_h)
        check("ckpt_gb_per_s_per_node", self.ckpt_gb_per_s_per_node)
        check("restart_s", self.restart_s)
        if self.precision == "auto":
            self.precision = None
        self.overrides = check_derate(self.overrides)


@dataclass
class ClusterRow:
    """One cluster's answer: the best plan, throughput, days (with failures), power, energy.

    ``chips`` is what the answer uses; ``chips_requested`` is set when that is fewer than the
    count asked for (``note`` says why); ``fits`` is False with ``why`` when nothing fits.

    >>> from estimator import JobSpec, evaluate_cluster
    >>> row = evaluate_cluster(JobSpec(model="llama3-8b", gbs=64, seq_len=4096, tokens="1T"), "h100", 16)
    >>> row.fits, row.nodes, row.days_with_failures >= row.days > 0, row.power_mw > 0
    (True, 2, True, True)
    """

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
    #: the count asked for when the answer uses fewer chips (``chips``); else None
    chips_requested: int | None = None
    note: str = ""
    #: what-if multipliers applied to datasheet facts ({} when none)
    derate: dict = field(default_factory=dict)
    #: p10 / p90 of the throughput and of the days (with failures) it implies: the model's
    #: cross-validated error for the chip's class and the spread of its spec figures
    #: (estimator/fitting/bands.py); None where no band applies
    tokens_per_s_p10: float | None = None
    tokens_per_s_p90: float | None = None
    days_with_failures_p10: float | None = None
    days_with_failures_p90: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def band_overlaps(self, other: "ClusterRow") -> bool:
        """True when the two rows' p10-p90 throughput bands overlap: the model cannot tell
        which is faster."""
        if None in (self.tokens_per_s_p10, self.tokens_per_s_p90, other.tokens_per_s_p10,
                    other.tokens_per_s_p90):
            return False
        g1 = self.goodput if self.goodput is not None else 1.0
        g2 = other.goodput if other.goodput is not None else 1.0
        return (self.tokens_per_s_p10 * g1 <= other.tokens_per_s_p90 * g2
                and other.tokens_per_s_p10 * g2 <= self.tokens_per_s_p90 * g1)


def smooth_counts(node: int, max_chips: int, min_chips: int = 1) -> list[int]:
    """Node multiples node * 2^a and node * 3 * 2^a within [min_chips, max_chips], ascending:
    two counts per doubling, both easy to factor into tp * pp * cp * dp (the coarse grid)."""
    ks = set()
    a = 1
    while node * a <= max_chips:
        ks.add(a)
        if a >= 2 and node * a * 3 // 2 <= max_chips:
            ks.add(a * 3 // 2)
        a *= 2
    return sorted(node * k for k in ks if node * k >= min_chips)


def fallback_counts(n: int, node: int) -> list[int]:
    """``n`` and the counts below it that keep whole groups of 2, 4, 8 ... nodes (its node
    count with low bits cleared): the candidates for "the best plan on at most n chips"."""
    out = {n}
    step = node
    while step <= n:
        out.add(n // step * step)
        step *= 2
    return sorted((m for m in out if m > 0), reverse=True)


def evaluate_cluster(job: JobSpec, chip, chips: int, system=None, catalog: Catalog | None = None) -> ClusterRow:
    """Best plan on exactly ``chips`` chips, with power, energy and goodput."""
    from estimator.training import estimate_training  # numba loads on first use

    cat = catalog or default_catalog()
    c = chip if not isinstance(chip, str) else cat.chip(chip)
    s = system if (system is not None and not isinstance(system, str)) else cat.system_for(c, system)
    nodes = math.ceil(chips / s.chips_per_node)
    row = ClusterRow(chip=c.id, system=s.id, chips=chips, nodes=nodes, fits=False, derate=dict(job.overrides))
    try:
        r = estimate_training(job.model, c, chips=chips, gbs=job.gbs, seq_len=job.seq_len, system=s,
                              precision=job.precision, tokens=job.tokens, catalog=cat,
                              overrides=job.overrides, stack=job.stack)
    except (InfeasibleError, PlanError) as e:
        row.why = str(e)
        return row
    row.fits = True
    row.plan = r.plan
    row.tokens_per_s = r.tokens_per_s
    row.tokens_per_s_per_chip = r.tokens_per_s_per_chip
    row.mfu = r.mfu
    row.step_time_s = r.step_time_s
    row.tokens_per_s_p10, row.tokens_per_s_p90 = r.tokens_per_s_p10, r.tokens_per_s_p90
    pw = cluster_power(c, s, chips, job.pue)
    row.power_basis = pw.basis
    if pw.facility_w is not None:
        row.power_mw = pw.facility_w / 1e6
        row.energy_kwh_per_1m_tokens = pw.facility_w / r.tokens_per_s * 1e6 / 3.6e6
    if job.tokens is not None:
        from estimator.describe import model_summary
        params = float(model_summary(cat.model(job.model) if isinstance(job.model, str) else job.model)["params_b"]) * 1e9
        row.days = r.days_to_train
        g = goodput(chips, nodes, params, row.days, job.mtbf_chip_h, job.ckpt_gb_per_s_per_node, job.restart_s)
        row.goodput = g.goodput
        row.days_with_failures = row.days / g.goodput if g.goodput > 0 else math.inf
        if r.days_to_train_p10 is not None:
            for attr, d in (("days_with_failures_p10", r.days_to_train_p10),
                            ("days_with_failures_p90", r.days_to_train_p90)):
                gp = goodput(chips, nodes, params, d, job.mtbf_chip_h, job.ckpt_gb_per_s_per_node,
                             job.restart_s).goodput
                setattr(row, attr, d / gp if gp > 0 else math.inf)
        if pw.facility_w is not None:
            row.energy_mwh_total = pw.facility_w * row.days_with_failures * 24 / 1e6
    return row


def _rate(row: ClusterRow, job: JobSpec | None = None) -> float:
    """Effective tokens/s: with failures when the job length is known."""
    if not row.fits:
        return 0.0
    return row.tokens_per_s * (row.goodput if row.goodput is not None else 1.0)


def _as_answer_for(best: ClusterRow, n: int, own: ClusterRow) -> ClusterRow:
    """``best`` (on fewer chips) as the answer for a request of ``n`` chips, saying why."""
    if best.chips == n:
        return best
    if not best.fits:
        return own
    if not own.fits:
        why = f"no valid plan on {n:,} chips ({own.why})" if own.why else f"no valid plan on {n:,} chips"
    else:
        why = (f"{n:,} chips reach only {_rate(own):,.0f} tokens/s; {best.chips:,} of them reach "
               f"{_rate(best):,.0f}")
    return dataclasses.replace(best, chips_requested=n,
                               note=f"{why}: the best plan on at most {n:,} chips uses {best.chips:,}")


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        if n % p == 0:
            out.append(p)
            while n % p == 0:
                n //= p
        p += 1
    return out + ([n] if n > 1 else [])


def stray_factor(model, ranks: int, gbs: int, seq_len: int) -> int | None:
    """A prime factor of ``ranks`` that no parallel degree can take, or None.

    A necessary condition of the plan rules (estimator.plans): a prime dividing
    tp * pp * cp * dp divides one of them, and tp divides the heads, cp the sequence length,
    dp the global batch, while pp is at most the layer count. Such counts are skipped without
    a search (the search would find no valid plan, only more slowly)."""
    for p in _prime_factors(ranks):
        if p > model.layers and model.heads % p and seq_len % p and gbs % p:
            return p
    return None


class _Counts:
    """Evaluated chip counts for one job, chip and system (each a full plan search, memoised)."""

    def __init__(self, job: JobSpec, chip, system, catalog: Catalog):
        self.job, self.chip, self.system, self.cat = job, chip, system, catalog
        self.node = system.chips_per_node
        self.rows: dict[int, ClusterRow] = {}
        self.model = job.model if not isinstance(job.model, str) else catalog.model(job.model)

    def at(self, n: int) -> ClusterRow:
        if n not in self.rows:
            ranks = n * self.chip.ranks_per_package
            p = stray_factor(self.model, ranks, self.job.gbs, self.job.seq_len)
            if p is not None:
                self.rows[n] = ClusterRow(
                    chip=self.chip.id, system=self.system.id, chips=n,
                    nodes=math.ceil(n / self.node), fits=False, derate=dict(self.job.overrides),
                    why=f"no valid parallel plan: the prime factor {p} of the {ranks:,} ranks divides "
                        f"neither the heads, the sequence length nor the batch, and exceeds the "
                        f"{self.model.layers} layers")
            else:
                self.rows[n] = evaluate_cluster(self.job, self.chip, n, self.system, self.cat)
        return self.rows[n]

    def best_at_most(self, n: int) -> ClusterRow:
        """The best plan on at most ``n`` chips (fewest chips among equals)."""
        rows = [self.at(m) for m in fallback_counts(n, self.node)]
        best = max(rows, key=lambda r: (_rate(r), -r.chips))
        return _as_answer_for(best, n, self.rows[n])

    def meeting(self, target: float) -> list[ClusterRow]:
        return sorted((r for r in self.rows.values() if _rate(r) >= target), key=lambda r: r.chips)

    def tried(self) -> list[ClusterRow]:
        return [self.rows[n] for n in sorted(self.rows)]


def _resolve(chip, system, cat: Catalog):
    c = cat.chip(chip) if isinstance(chip, str) else chip
    s = system if (system is not None and not isinstance(system, str)) else cat.system_for(c, system)
    return c, s


def _awkward(n: int, ranks_per_chip: int, gbs: int) -> int:
    """The factor of a count's ranks that data parallelism cannot take (it divides the global
    batch); tensor, context or pipeline parallelism must take the rest. 1 = pure DP possible."""
    ranks = n * ranks_per_chip
    return ranks // math.gcd(ranks, gbs)


def _refine(ev: "_Counts", hi: int, target: float) -> int:
    """Narrow ``hi`` (a count that meets ``target``) towards the smallest count that does.

    Counts between hi/2 and hi are grouped by how awkward they are for a plan
    (:func:`_awkward`); inside a group, throughput grows with the count, so each group is
    bisected, the friendliest groups first, each bounded by the best answer so far. Counts that
    admit no plan at all (:func:`stray_factor`) are skipped without a search."""
    job, node, rpp = ev.job, ev.node, ev.chip.ranks_per_package
    groups: dict[int, list[int]] = {}
    for m in range(max(node, hi // 2 // node * node), hi, node):
        if stray_factor(ev.model, m * rpp, job.gbs, job.seq_len) is None:
            groups.setdefault(_awkward(m, rpp, job.gbs), []).append(m)
    budget = _REFINE_BUDGET
    for a in sorted(groups):
        members = [m for m in groups[a] if m < hi]
        lo_i, hi_i = 0, len(members)       # the first member that meets lies in [lo_i, hi_i]
        while lo_i < hi_i and budget > 0:
            mid = (lo_i + hi_i) // 2
            budget -= members[mid] not in ev.rows
            if _rate(ev.at(members[mid])) >= target:
                hi_i = mid
            else:
                lo_i = mid + 1
        if hi_i < len(members) and members[hi_i] in ev.rows and _rate(ev.rows[members[hi_i]]) >= target:
            hi = min(hi, members[hi_i])
    return hi


def smallest_meeting(job: JobSpec, chip, target_tokens_per_s: float, system=None,
                     catalog: Catalog | None = None, max_chips: int = MAX_CHIPS_DEFAULT
                     ) -> tuple[ClusterRow, list[ClusterRow]]:
    """Smallest count (to the nearest node) whose best plan reaches ``target_tokens_per_s``.

    Returns (answer, every evaluated count as a row, ascending)."""
    check("max_chips", max_chips)
    cat = catalog or default_catalog()
    c, s = _resolve(chip, system, cat)
    node = s.chips_per_node
    coarse = smooth_counts(node, max_chips)
    if not coarse:
        raise InputError(f"max_chips {max_chips} is below one {s.id} node ({node} chips)", "max_chips")
    ev = _Counts(job, c, s, cat)
    hi = None
    for n in coarse:
        ev.best_at_most(n)
        meeting = ev.meeting(target_tokens_per_s)
        if meeting:
            hi = meeting[0].chips
            break
    if hi is None:
        # the coarse grid falls short; a count between its last point and max_chips may not
        top = max_chips // node * node
        ev.best_at_most(top)
        hi = _refine(ev, top + node, target_tokens_per_s)
        hi = hi if hi <= top else None
    if hi is None:
        best = max(ev.rows.values(), key=lambda r: _rate(r))
        raise InfeasibleError(
            f"no cluster of up to {max_chips:,} {c.id} reaches {target_tokens_per_s:,.0f} tokens/s; "
            f"closest: {best.chips:,} chips at {_rate(best):,.0f} tokens/s"
            + (f" ({best.why})" if not best.fits and best.why else "")
            + "; a larger global batch lets more chips help")
    hi = _refine(ev, hi, target_tokens_per_s)
    # throughput is not monotone between neighbouring counts (a probe with an awkward factor
    # can fall short while a smaller count meets the target): scan every node multiple in the
    # last 1% (at least a few nodes) below the answer, and again below any better answer
    scanned = hi
    while True:
        window = max(_SCAN_NODES * node, int(hi * _SCAN_FRACTION) // node * node)
        for m in range(max(node, hi - window), scanned, node):
            ev.at(m)
        scanned = max(node, hi - window)
        new_hi = ev.meeting(target_tokens_per_s)[0].chips
        if new_hi == hi:
            break
        hi = new_hi
    return ev.rows[hi], ev.tried()


def size_for_time(job: JobSpec, chip, days: float, system=None, catalog=None,
                  max_chips: int = MAX_CHIPS_DEFAULT):
    """Smallest cluster (to the nearest node) that trains ``job.tokens`` in ``days``, failures
    included. Returns (answer row, every evaluated count as a row).

    >>> from estimator import JobSpec, size_for_time
    >>> job = JobSpec(model="llama3-8b", gbs=512, seq_len=4096, tokens="1T")
    >>> row, tried = size_for_time(job, "h100", 10)
    >>> row.days_with_failures <= 10, row.chips % 8
    (True, 0)
    >>> all(r.days_with_failures > 10 for r in tried if r.fits and r.chips < row.chips)
    True
    """
    if job.tokens is None:
        raise InputError("days needs the job's token count (tokens)", "days")
    check("days", days)
    return smallest_meeting(job, chip, job.tokens / (days * 86400.0), system, catalog, max_chips)


def sure_count(job: JobSpec, chip, target_tokens_per_s: float, answer: ClusterRow, system=None,
                catalog=None, max_chips: int = MAX_CHIPS_DEFAULT):
    """The smallest count whose p10 throughput (the pessimistic end of its band) reaches the
    target: the count that meets it with about 90% confidence, where ``answer`` (the p50 answer
    of :func:`smallest_meeting`) meets it half the time. The band's relative width is taken
    from ``answer`` (it depends on the chip class and spec spread, not on the count).
    Returns (row, evaluated rows), or (None, []) when ``answer`` has no band.

    >>> from estimator import JobSpec, size_for_time, sure_count
    >>> job = JobSpec(model="llama3-8b", gbs=512, seq_len=4096, tokens="1T")
    >>> row, _ = size_for_time(job, "h100", 10)
    >>> sure, _ = sure_count(job, "h100", 1e12 / (10 * 86400), row)
    >>> sure.chips >= row.chips
    True
    """
    if not answer.fits or not answer.tokens_per_s_p10:
        return None, []
    widen = answer.tokens_per_s / answer.tokens_per_s_p10
    if widen <= 1.0:
        return answer, []
    try:
        return smallest_meeting(job, chip, target_tokens_per_s * widen, system, catalog, max_chips)
    except InfeasibleError:
        return None, []


def match_cluster(job: JobSpec, chip, ref_chip: str, ref_chips: int, system=None, catalog=None,
                  max_chips: int = MAX_CHIPS_DEFAULT):
    """How many ``chip`` give the training throughput of ``ref_chips`` x ``ref_chip``, to the
    nearest node. Returns (reference row, answer row, evaluated rows).

    >>> from estimator import JobSpec, match_cluster
    >>> job = JobSpec(model="llama3-8b", gbs=256, seq_len=4096)
    >>> ref, row, tried = match_cluster(job, "ascend-910b", "h100-sxm", 64)
    >>> row.tokens_per_s >= ref.tokens_per_s, row.chips > 64
    (True, True)
    """
    check("ref_chips", ref_chips)
    cat = catalog or default_catalog()
    ref = evaluate_cluster(job, ref_chip, ref_chips, None, cat)
    if not ref.fits:
        raise InfeasibleError(f"reference cluster {ref_chips} x {ref_chip}: {ref.why}")
    row, tried = smallest_meeting(job, chip, _rate(ref, job), system, cat, max_chips)
    return ref, row, tried


def chips_within_power(c, s, budget_mw: float, pue: float) -> int:
    """The most chips (whole nodes) whose facility power fits in ``budget_mw``; 0 if none."""
    one = cluster_power(c, s, s.chips_per_node, pue)
    if one.facility_w is None:
        raise InfeasibleError(f"power of {c.id} is unknown: {one.basis}")
    node = s.chips_per_node
    n = int(budget_mw * 1e6 // one.facility_w) * node    # power is linear in whole nodes
    n = min(n, MAX_CHIPS // node * node)
    while n > 0 and cluster_power(c, s, n, pue).facility_w > budget_mw * 1e6:
        n -= node
    return n


def fastest_under_power(job: JobSpec, chip, budget_mw: float, system=None, catalog=None):
    """The fastest cluster of ``chip`` whose facility power fits in ``budget_mw``.

    Returns (answer, evaluated rows). The answer is the best plan on at most the chips the
    budget powers; ``chips_requested`` says how many that is when the answer uses fewer.

    >>> from estimator import JobSpec, fastest_under_power
    >>> row, tried = fastest_under_power(JobSpec(model="llama3-8b", gbs=512, seq_len=4096), "h100", 0.5)
    >>> row.fits, row.power_mw <= 0.5
    (True, True)
    """
    check("power_budget_mw", budget_mw)
    cat = catalog or default_catalog()
    c, s = _resolve(chip, system, cat)
    n_max = chips_within_power(c, s, budget_mw, job.pue)
    if n_max < s.chips_per_node:
        one = cluster_power(c, s, s.chips_per_node, job.pue)
        raise InfeasibleError(f"{budget_mw:g} MW does not power one {s.id} node ({one.facility_w / 1e6:.3f} MW)")
    ev = _Counts(job, c, s, cat)
    ans = ev.best_at_most(n_max)
    for n in smooth_counts(s.chips_per_node, n_max)[-3:]:   # the coarse grid just below
        ev.at(n)
    best = max((r for r in ev.rows.values()), key=lambda r: (_rate(r), -r.chips))
    if _rate(best) > _rate(ans):
        ans = _as_answer_for(best, n_max, ev.rows[n_max])
    if not ans.fits:
        raise InfeasibleError(f"no plan fits on {n_max:,} x {c.id}: {ev.rows[n_max].why}")
    return ans, ev.tried()


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
    nodes; the best plan on at most that many), same facility power, or the smallest cluster
    that finishes in ``days``. ``chips`` entries may be CHIP@SYSTEM.

    >>> from estimator import JobSpec, compare
    >>> rows = compare(JobSpec(model="llama3-8b", gbs=256, seq_len=4096), ["h100", "h20"], cluster_chips=64)
    >>> [r.chip for r in rows], rows[0].ratio_to_first, rows[1].ratio_to_first < 1
    (['h100-sxm', 'h20'], 1.0, True)
    """
    modes = sum(x is not None for x in (cluster_chips, equal_power_mw, days))
    if modes != 1:
        raise InputError("give exactly one of cluster_chips, equal_power_mw, or days (with tokens)",
                         "cluster_chips")
    if cluster_chips is not None:
        check("cluster_chips", cluster_chips)
    if equal_power_mw is not None:
        check("equal_power_mw", equal_power_mw)
    if days is not None:
        check("days", days)
    cat = catalog or default_catalog()
    rows = []
    for i, name in enumerate(chips):
        c, sys_name = split_chip_system(name, cat)
        s = cat.system_for(c, sys_name)
        if cluster_chips is not None:
            n = math.ceil(cluster_chips / s.chips_per_node) * s.chips_per_node
            row = _Counts(job, c, s, cat).best_at_most(n)
        elif equal_power_mw is not None:
            try:
                row, _ = fastest_under_power(job, c, equal_power_mw, s, cat)
            except InfeasibleError as e:
                row = ClusterRow(chip=c.id, system=s.id, chips=0, nodes=0, fits=False, why=str(e),
                                 derate=dict(job.overrides))
        else:
            try:
                row, _ = size_for_time(job, c, days, s, cat, max_chips)
            except InfeasibleError as e:
                row = ClusterRow(chip=c.id, system=s.id, chips=0, nodes=0, fits=False, why=str(e),
                                 derate=dict(job.overrides))
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
                    raise InputError(f"chips range {text!r}: need 0 < low <= high", "chips")
                vals = []
                v = lo
                while v <= hi:
                    vals.append(v)
                    v *= 2
            elif len(parts) == 3:
                lo, hi, step = parts
                if lo <= 0 or hi < lo or step <= 0:
                    raise InputError(f"chips range {text!r}: need 0 < low <= high and step > 0", "chips")
                if (hi - lo) // step >= 200:
                    raise InputError(f"chips {text!r}: {(hi - lo) // step + 1} points; at most 200", "chips")
                vals = list(range(lo, hi + 1, step))
            else:
                raise ValueError
        else:
            vals = [int(t)]
    except ValueError:
        raise InputError(f"chips: cannot read {text!r} (examples: 64:16384, 64:1024:64, 8,16,64)", "chips") from None
    if not vals or any(v <= 0 for v in vals):
        raise InputError(f"chips {text!r}: counts must be positive", "chips")
    if len(vals) > 200:
        raise InputError(f"chips {text!r}: {len(vals)} points; at most 200", "chips")
    for v in vals:
        check("chips", v)
    return vals


def sweep(job: JobSpec, chip, counts: list[int], system=None, catalog: Catalog | None = None,
          progress=None) -> list[ClusterRow]:
    """One row per count (in the order given): the best plan on at most that many chips, so
    tokens/s never falls as the count grows.

    >>> from estimator import JobSpec, sweep
    >>> rows = sweep(JobSpec(model="llama3-8b", gbs=256, seq_len=4096), "h100", [8, 16, 32])
    >>> [r.chips for r in rows], rows[0].tokens_per_s < rows[1].tokens_per_s < rows[2].tokens_per_s
    ([8, 16, 32], True)
    """
    for n in counts:
        check("chips", n)
    cat = catalog or default_catalog()
    c, s = _resolve(chip, system, cat)
    ev = _Counts(job, c, s, cat)
    answers: dict[int, ClusterRow] = {}
    best: ClusterRow | None = None
    for i, n in enumerate(sorted(set(counts))):
        row = ev.best_at_most(n)
        if best is not None and _rate(best) > _rate(row):
            row = _as_answer_for(best, n, ev.rows[n])
        if best is None or _rate(row) > _rate(best):
            best = row
        answers[n] = row
        if progress:
            progress(i + 1, len(set(counts)))
    rows = [dataclasses.replace(answers[n]) for n in counts]
    return with_ratios(rows, job)
