"""The roadmap: for each year and scenario, the fastest cluster its buyer can build, and the
year (if any) a challenger scenario draws level with a reference one.

For every usable (chip, system) pair of a year (see :mod:`estimator.scenarios.select`) the
cluster size is bounded by the user's framing (``chips``, ``power_mw``, or the scenario's own
supply caps), by the scenario's caps, and by ``max_chips``. A few whole-node counts just under
that bound (node x {1, 3, 5, 7} x 2^a) get the full plan search of
:func:`estimator.training.estimate_training`; power comes from :func:`estimator.power.cluster_power`
and failures from :func:`estimator.goodput.goodput`. Nothing here re-derives the model.

The search is kept cheap: results are cached per (chip, system, count, precision) for the
whole command (parts stay available from year to year), and a pair is skipped when even a
perfect run on it cannot beat the best pair found so far. The bound is count x peak x the
best GEMM efficiency the chip's class reaches (x its low-precision factor if above 1) x 2 /
model FLOPs per token: model FLOPs count attention non-causally (PaLM convention), at most
twice what a causal kernel executes, and every other part of a step only adds time.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from estimator.catalog import Catalog
from estimator.describe import model_summary
from estimator.errors import InfeasibleError, InputError, PlanError, SpecError
from estimator.goodput import (DEFAULT_CKPT_GB_PER_S_PER_NODE, DEFAULT_MTBF_CHIP_H,
                               DEFAULT_RESTART_S, goodput)
from estimator.power import PUE_DEFAULT, cluster_power
from estimator.scenarios.select import Option, ScenarioView
from estimator.specs import ChipSpec, SystemSpec
from estimator.specs.common import Sourced
from estimator.training import estimate_training

#: the reference frontier run behind --flops: a published dense shape, 6ND training FLOPs
REFERENCE_MODEL = "llama3-405b"
REFERENCE_SEQ_LEN = 8192
#: 2048 x 8192 = 16.8M tokens per step, the final batch of the Llama 3 405B run
#: (Dubey et al. 2024, sec. 3.4.1: 16M tokens per batch)
REFERENCE_GBS = 2048
#: model FLOPs per token over the FLOPs a perfect run must execute, at most (see module doc)
PRUNE_MARGIN = 2.0
COUNT_MULTIPLIERS = (1, 3, 5, 7)
COUNTS_TRIED = 3
MAX_CHIPS_DEFAULT = 200_000
_CONF_ORDER = ("official", "reported", "estimated", "roadmap")


def weakest(confs) -> str | None:
    known = [c for c in confs if c in _CONF_ORDER]
    return max(known, key=_CONF_ORDER.index) if known else None


def reference_run(flops: float, cat: Catalog) -> dict:
    """A frontier run of ``flops`` training FLOPs on the reference dense shape (6ND rule)."""
    if not (math.isfinite(flops) and flops > 0):
        raise InputError(f"--flops must be a positive number (got {flops!r})")
    m = cat.model(REFERENCE_MODEL)
    params = model_summary(m)["params_b"] * 1e9
    tokens = flops / (6.0 * params)
    text = (f"{flops:.3g} FLOP = 6 x {params / 1e9:.1f}B parameters x {tokens / 1e12:.1f}T tokens "
            f"(6ND rule, attention FLOPs not counted) on the {m.name} shape, sequence {REFERENCE_SEQ_LEN}, "
            f"global batch {REFERENCE_GBS} sequences")
    return {"model": m.name, "params": params, "tokens": tokens, "flops": flops,
            "seq_len": REFERENCE_SEQ_LEN, "gbs": REFERENCE_GBS, "text": text}


@dataclass
class Query:
    """What is trained, how the cluster is framed, and the what-if switches."""

    model: object
    tokens: float
    gbs: int = REFERENCE_GBS
    seq_len: int = REFERENCE_SEQ_LEN
    precision: str = "bf16"
    pue: float = PUE_DEFAULT
    mtbf_chip_h: float = DEFAULT_MTBF_CHIP_H
    ckpt_gb_per_s_per_node: float = DEFAULT_CKPT_GB_PER_S_PER_NODE
    restart_s: float = DEFAULT_RESTART_S
    chips: int | None = None
    power_mw: float | None = None
    supply: bool = False
    max_chips: int = MAX_CHIPS_DEFAULT
    lag_quarters: int = 0
    derive_bf16: bool = True
    assume_tdp_w: dict = field(default_factory=dict)

    def check(self) -> None:
        modes = (self.chips is not None) + (self.power_mw is not None) + bool(self.supply)
        if modes != 1:
            raise InputError("give exactly one of --chips N, --power-mw P, --supply")
        if self.chips is not None and self.chips <= 0:
            raise InputError(f"--chips must be positive (got {self.chips})")
        if self.power_mw is not None and not (math.isfinite(self.power_mw) and self.power_mw > 0):
            raise InputError(f"--power-mw must be positive (got {self.power_mw})")
        if not (math.isfinite(self.tokens) and self.tokens > 0):
            raise InputError(f"--tokens must be positive (got {self.tokens})")
        if self.precision not in ("bf16", "fp8"):
            raise InputError(f"--precision must be bf16 or fp8 (got {self.precision})")
        if self.max_chips <= 0 or self.max_chips > 10_000_000:
            raise InputError(f"--max-chips must be in 1..10,000,000 (got {self.max_chips})")
        if not 0 <= self.lag_quarters <= 40:
            raise InputError(f"--lag-quarters must be in 0..40 (got {self.lag_quarters})")
        for name, v in (("gbs", self.gbs), ("seq-len", self.seq_len), ("mtbf-hours", self.mtbf_chip_h),
                        ("checkpoint-gb-per-s", self.ckpt_gb_per_s_per_node)):
            if v is None or not v > 0:
                raise InputError(f"--{name} must be positive (got {v})")
        if self.restart_s < 0:
            raise InputError(f"--restart-s must not be negative (got {self.restart_s})")
        if not (math.isfinite(self.pue) and self.pue >= 1.0):
            raise InputError(f"--pue must be >= 1 (got {self.pue})")


# ------------------------------------------------------------------ chip views for what-ifs
def with_derived_bf16(chip: ChipSpec) -> ChipSpec:
    """The chip with a 16-bit peak of FP8 / 2 (estimated), for FP8 training of a part that
    publishes only FP8/FP4 peaks: the FP8 model keeps attention and other ops in BF16."""
    fp8 = chip.peak_tflops.fp8
    bf = Sourced(value=fp8.value / 2.0, source=f"derived: FP8 peak / 2 (FP8: {fp8.source})",
                 confidence="estimated",
                 note="not published; dense FP8 is exactly 2 x dense BF16 on every part here that "
                      "lists both (H100, H200, B200, GB300, MI355X; Ascend 950 simulator profile 432/865)")
    return chip.model_copy(update={"peak_tflops": chip.peak_tflops.model_copy(update={"bf16": bf})})


def with_assumed_tdp(chip: ChipSpec, watts: float) -> ChipSpec:
    tdp = Sourced(value=watts, source="user assumption (--assume-tdp)", confidence="estimated",
                  note="assumed by the user, not a published figure")
    return chip.model_copy(update={"tdp_w": tdp})


def training_precision(chip: ChipSpec, q: Query) -> tuple[str | None, ChipSpec, list[str], str]:
    """(precision, chip view, notes, why-not) for one chip under the query's precision."""
    has16 = chip.peak("bf16") is not None or chip.peak("fp16") is not None
    has8 = chip.peak("fp8") is not None
    notes: list[str] = []
    if q.precision == "fp8" and has8:
        prec = "fp8"
    elif q.precision == "fp8" and has16:
        prec = "bf16"
        notes.append(f"{chip.id}: no FP8 peak published; trains in BF16")
    elif has16:
        prec = "bf16"
    elif has8:
        prec = "fp8"
        notes.append(f"{chip.id}: no BF16 peak published; trains in FP8")
    else:
        return None, chip, notes, "no BF16 or FP8 peak in its spec"
    if prec == "fp8" and not has16:
        if not q.derive_bf16:
            return None, chip, notes, ("FP8 training keeps attention and other ops in BF16 and no 16-bit "
                                       "peak is published (--derive-bf16 would take FP8 / 2)")
        chip = with_derived_bf16(chip)
        notes.append(f"{chip.id}: 16-bit peak for the BF16 parts of FP8 training taken as FP8 / 2 "
                     f"= {chip.peak('bf16'):,.0f} TFLOP/s (estimated)")
    return prec, chip, notes, ""


def counts_upto(node: int, limit: int, n: int = COUNTS_TRIED) -> list[int]:
    """The ``n`` largest whole-node counts node x m x 2^a (m in 1, 3, 5, 7) not above ``limit``."""
    ks = set()
    for m in COUNT_MULTIPLIERS:
        k = m
        while node * k <= limit:
            ks.add(k)
            k *= 2
    return sorted(node * k for k in ks)[-n:] if ks else []


# ------------------------------------------------------------------ evaluation with a cache
@dataclass
class Eval:
    fits: bool
    why: str = ""
    tokens_per_s: float = 0.0
    p10: float | None = None
    p90: float | None = None
    plan: dict | None = None
    mfu: float = 0.0
    model_flops_per_token: float = 0.0


class Evaluator:
    """One training search per (chip, system, count, precision), remembered for the command."""

    def __init__(self, q: Query, cat: Catalog):
        self.q = q
        self.cat = cat
        self.cache: dict[tuple, Eval] = {}
        self.calls = 0
        m = q.model if not isinstance(q.model, str) else cat.model(q.model)
        self.model = m
        self.params = model_summary(m)["params_b"] * 1e9

    def run(self, chip: ChipSpec, system: SystemSpec, count: int, prec: str) -> Eval:
        key = (chip.id, system.id, count, prec)
        if key in self.cache:
            return self.cache[key]
        self.calls += 1
        try:
            r = estimate_training(self.model, chip, chips=count, gbs=self.q.gbs, seq_len=self.q.seq_len,
                                  system=system, precision=prec, tokens=self.q.tokens, catalog=self.cat)
            p10 = getattr(r, "tokens_per_s_p10", None)
            p90 = getattr(r, "tokens_per_s_p90", None)
            e = Eval(True, tokens_per_s=r.tokens_per_s, plan=r.plan, mfu=r.mfu,
                     model_flops_per_token=r.model_flops_per_token,
                     p10=p10 if isinstance(p10, (int, float)) and p10 > 0 else None,
                     p90=p90 if isinstance(p90, (int, float)) and p90 > 0 else None)
        except (InfeasibleError, PlanError) as err:
            e = Eval(False, why=str(err))
        self.cache[key] = e
        return e


# ------------------------------------------------------------------ one year, one scenario
@dataclass
class YearBest:
    scenario: str
    year: int
    found: bool
    why: str = ""
    chip: str | None = None
    system: str | None = None
    chips: int = 0
    nodes: int = 0
    precision: str | None = None
    plan: dict | None = None
    binding: str | None = None          # chips | power | supply | max-chips
    binding_basis: str = ""
    limit_chips: int | None = None
    tokens_per_s: float = 0.0
    mfu: float = 0.0
    goodput: float | None = None
    days: float | None = None            # compute days, no failures
    days_with_failures: float | None = None
    days_p10: float | None = None        # optimistic end of the band (None: band not available)
    days_p90: float | None = None
    power_mw: float | None = None
    power_basis: str = ""
    energy_mwh: float | None = None
    roadmap: bool = False
    confidence: str | None = None
    export_class: str | None = None
    available: str | None = None
    notes: list = field(default_factory=list)
    options: int = 0
    evaluated: int = 0
    pruned: list = field(default_factory=list)
    excluded: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def rate(self) -> float:
        return self.tokens_per_s * (self.goodput if self.goodput is not None else 1.0)


def _row_confidence(chip: ChipSpec, system: SystemSpec, prec: str, power_known_from_tdp: bool) -> str | None:
    peak = getattr(chip.peak_tflops, prec)
    confs = [peak.confidence if peak is not None else None,
             chip.memory.capacity_gb.confidence, chip.memory.bandwidth_gb_per_s.confidence,
             system.scale_up.bandwidth_gb_per_s_per_chip.confidence,
             chip.available.confidence if chip.available else None,
             system.available.confidence if system.available else None]
    if prec == "fp8":
        confs.append(chip.peak_tflops.bf16.confidence if chip.peak_tflops.bf16 is not None else None)
    if power_known_from_tdp:
        confs.append(chip.tdp_w.confidence)
    return weakest(confs)


def _limits(view: ScenarioView, o: Option, chip: ChipSpec, year: int, q: Query):
    """(max chips, binding name, basis, power cap W or None) for one pair, or a why-not text."""
    limits: list[tuple[int, str, str]] = []
    power_w = None
    if q.chips is not None:
        limits.append((q.chips, "chips", f"--chips {q.chips:,}"))
    if q.power_mw is not None:
        power_w = (q.power_mw * 1e6, f"--power-mw {q.power_mw:g}")
    pc = view.power_cap(chip.id, year)
    if pc is not None and (power_w is None or pc[0] * 1e6 < power_w[0]):
        power_w = (pc[0] * 1e6, f"scenario cap {pc[0]:g} MW ({pc[1].provenance()})")
    sc = view.supply_cap(chip.id, year)
    if sc is not None:
        limits.append((sc[0], "supply", f"scenario supply cap {sc[0]:,} chips in {year} ({sc[1].provenance()})"))
    limits.append((q.max_chips, "max-chips", f"--max-chips {q.max_chips:,}"
                   + (" (the scenario sets no supply cap for this chip and year)" if q.supply and sc is None else "")))
    if power_w is not None:
        node = o.system.chips_per_node
        one = cluster_power(chip, o.system, node, q.pue)
        if one.facility_w is None:
            return None, f"power unknown ({one.basis}); a power limit cannot be applied"
        per_chip = one.facility_w / node
        limits.append((int(power_w[0] // per_chip), "power", power_w[1]))
    order = {"power": 0, "supply": 1, "chips": 2, "max-chips": 3}
    n, name, basis = min(limits, key=lambda t: (t[0], order[t[1]]))
    return (n, name, basis, power_w[0] if power_w else None), ""


def _best_efficiency(cat: Catalog, chip_id: str, prec: str) -> float:
    """Largest fraction of peak a GEMM of this chip class can reach in the model."""
    _, eff = cat.efficiency().for_chip(chip_id)
    return max(eff.gemm.efficiency) * max(1.0, eff.low_precision_factor.get(prec, 1.0))


def best_in_year(view: ScenarioView, year: int, q: Query, ev: Evaluator) -> YearBest:
    sid = view.scn.id
    opts, excluded, not_allowed = view.options(year, q.lag_quarters)
    out = YearBest(scenario=sid, year=year, found=False, options=len(opts))
    excl = [e.to_dict() for e in excluded]
    cands = []
    for o in opts:
        chip = o.chip
        if chip.id in q.assume_tdp_w:
            chip = with_assumed_tdp(chip, q.assume_tdp_w[chip.id])
        prec, chip, pnotes, whynot = training_precision(chip, q)
        if prec is None:
            excl.append({"chip": chip.id, "system": o.system.id, "reason": whynot})
            continue
        lim, whynot = _limits(view, o, chip, year, q)
        if lim is None:
            excl.append({"chip": chip.id, "system": o.system.id, "reason": whynot})
            continue
        limit, binding, basis, power_w = lim
        counts = counts_upto(o.system.chips_per_node, limit)
        if power_w is not None:
            counts = [n for n in counts if (cluster_power(chip, o.system, n, q.pue).facility_w or math.inf) <= power_w]
        if not counts:
            excl.append({"chip": chip.id, "system": o.system.id,
                         "reason": f"{binding} limit ({basis}) allows less than one node "
                                   f"({o.system.chips_per_node} chips)"})
            continue
        peak = chip.peak(prec) or chip.peak("fp16") or 0.0
        bound = counts[-1] * peak * 1e12 * PRUNE_MARGIN * _best_efficiency(ev.cat, chip.id, prec)
        cands.append((bound, o, chip, prec, pnotes, counts, limit, binding, basis))
    cands.sort(key=lambda c: (-c[0], c[1].chip.id, c[1].system.id))
    best = None
    mft = None
    handicapped = []
    for bound, o, chip, prec, pnotes, counts, limit, binding, basis in cands:
        if best is not None and mft and bound / mft <= best.rate:
            out.pruned.append(f"{chip.id}@{o.system.id}")
            continue
        try:
            evals = [(n, ev.run(chip, o.system, n, prec)) for n in reversed(counts)]
        except SpecError as err:
            excl.append({"chip": chip.id, "system": o.system.id, "reason": f"cannot be estimated: {err}"})
            continue
        out.evaluated += 1
        dom = o.system.scale_up.domain_chips
        fit = [(n, e) for n, e in evals if e.fits]
        if o.system.scale_out.nic_gbit_per_s_per_chip.value is None and counts[-1] > dom and fit:
            top = max(fit, key=lambda t: t[1].tokens_per_s)
            handicapped.append((chip.id, o.system.id,
                                f"scale-out bandwidth unknown (null): no data crosses its {dom:,}-chip scale-up "
                                f"domains, so a larger cluster gains little (best {top[1].tokens_per_s:,.0f} "
                                f"tokens/s at {top[0]:,} chips)"))
        for n, e in evals:
            if not e.fits:
                continue
            mft = mft or e.model_flops_per_token
            row = _row(view, o, chip, prec, pnotes, n, e, year, q, ev, limit, binding, basis)
            if best is None or (row.rate, -row.chips) > (best.rate, -best.chips):
                best = row
        if all(not e.fits for _, e in evals):
            excl.append({"chip": chip.id, "system": o.system.id,
                         "reason": f"no plan fits at {', '.join(f'{n:,}' for n, _ in evals)} chips: {evals[0][1].why}"})
    if best is None:
        out.why = ("nothing usable: " + (f"{len(opts)} allowed pair(s), none estimable" if opts
                                         else f"no allowed chip is available by {year}"))
        out.excluded = excl
        return out
    best.options, best.evaluated, best.pruned = out.options, out.evaluated, out.pruned
    excl += [{"chip": c, "system": sy, "reason": why} for c, sy, why in handicapped
             if (c, sy) != (best.chip, best.system)]
    if (best.chip, best.system) in {(c, sy) for c, sy, _ in handicapped}:
        best.notes.append(next(why for c, sy, why in handicapped if (c, sy) == (best.chip, best.system)))
    best.excluded = excl
    return best


def _row(view, o: Option, chip: ChipSpec, prec, pnotes, n, e: Eval, year, q: Query, ev: Evaluator,
         limit, binding, basis) -> YearBest:
    s = o.system
    nodes = math.ceil(n / s.chips_per_node)
    days = q.tokens / e.tokens_per_s / 86400.0
    g = goodput(n, nodes, ev.params, days, q.mtbf_chip_h, q.ckpt_gb_per_s_per_node, q.restart_s)
    dwf = days / g.goodput if g.goodput > 0 else math.inf
    pw = cluster_power(chip, s, n, q.pue)
    row = YearBest(scenario=view.scn.id, year=year, found=True, chip=chip.id, system=s.id, chips=n,
                   nodes=nodes, precision=prec, plan=e.plan, binding=binding, binding_basis=basis,
                   limit_chips=limit, tokens_per_s=e.tokens_per_s, mfu=e.mfu, goodput=g.goodput,
                   days=days, days_with_failures=dwf, roadmap=o.roadmap,
                   export_class=o.export.klass,
                   available=" / ".join(x.available.label() for x in (chip, s) if x.available),
                   power_basis=pw.basis, notes=list(pnotes))
    if e.p10 is not None and e.p90 is not None:
        row.days_p10 = dwf * e.tokens_per_s / e.p90
        row.days_p90 = dwf * e.tokens_per_s / e.p10
    if pw.facility_w is not None:
        row.power_mw = pw.facility_w / 1e6
        row.energy_mwh = pw.facility_w * dwf * 24 / 1e6
    row.confidence = _row_confidence(chip, s, prec, chip.tdp_w.value is not None)
    if chip.tdp_w.value is None and pw.facility_w is not None:
        row.confidence = weakest([row.confidence, "estimated"])
    if s.chip != chip.id and s.chip not in chip.aliases:
        row.notes.append(f"what-if: {s.id} normally holds {s.chip}")
    return row


# ------------------------------------------------------------------ parity
def _interval(lo, mid, hi):
    return (lo if lo is not None else mid, hi if hi is not None else mid)


def parity_year(points: list[dict]) -> dict:
    """First year the reference's lead is gone or inside the band.

    ``points``: per year ``{year, a, b, a_lo, a_hi, b_lo, b_hi}`` with days to train of the
    challenger (a) and the reference (b); None where a scenario has no option that year, band
    ends None where no band is available. Parity: a <= b (the lead disappears), or the two
    bands overlap (the lead is inside the band). Returns ``{year, how, lost_again_in}``.
    """
    first, how, lost = None, None, None
    for p in sorted(points, key=lambda p: p["year"]):
        a, b = p.get("a"), p.get("b")
        if a is None or b is None:
            continue
        a_lo, a_hi = _interval(p.get("a_lo"), a, p.get("a_hi"))
        b_lo, b_hi = _interval(p.get("b_lo"), b, p.get("b_hi"))
        level = a <= b
        inside = a_lo <= b_hi and b_lo <= a_hi
        if first is None and (level or inside):
            first = p["year"]
            how = "lead disappears" if level else "lead inside the band"
        elif first is not None and lost is None and not (level or inside):
            lost = p["year"]
    return {"year": first, "how": how, "lost_again_in": lost}


def run_roadmap(views: list[ScenarioView], years: list[int], q: Query, cat: Catalog,
                progress=None) -> dict:
    """Rows per (year, scenario); with two scenarios the ratio per year and the parity year
    of the first (challenger) against the second (reference)."""
    q.check()
    ev = Evaluator(q, cat)
    rows: list[YearBest] = []
    total = len(years) * len(views)
    for i, y in enumerate(years):
        for j, v in enumerate(views):
            rows.append(best_in_year(v, y, q, ev))
            if progress:
                progress(i * len(views) + j + 1, total)
    for v in views:
        mine = [r for r in rows if r.scenario == v.scn.id]
        if not any(r.found for r in mine):
            first = next((r for r in mine), None)
            raise InputError(f"scenario '{v.scn.id}': no allowed chip can be estimated in "
                             f"{years[0]}-{years[-1]}" + (f" ({first.why})" if first and first.why else ""))
    out = {"rows": rows, "evaluations": ev.calls, "ratios": [], "parity": None,
           "band": ("p10-p90 from the estimator" if any(r.days_p10 is not None for r in rows)
                    else "not available")}
    if len(views) == 2:
        a_id, b_id = views[0].scn.id, views[1].scn.id
        pts = []
        for y in years:
            a = next(r for r in rows if r.year == y and r.scenario == a_id)
            b = next(r for r in rows if r.year == y and r.scenario == b_id)
            ad = a.days_with_failures if a.found else None
            bd = b.days_with_failures if b.found else None
            pts.append({"year": y, "a": ad, "b": bd, "a_lo": a.days_p10, "a_hi": a.days_p90,
                        "b_lo": b.days_p10, "b_hi": b.days_p90})
            out["ratios"].append({"year": y, "challenger_days": ad, "reference_days": bd,
                                  "reference_lead": (ad / bd) if (ad and bd) else None})
        par = parity_year(pts)
        if par["year"] is None:
            par["text"] = f"no parity by {years[-1]}"
        else:
            par["text"] = (f"parity in {par['year']} ({par['how']})"
                           + (f"; lost again in {par['lost_again_in']}" if par["lost_again_in"] else ""))
        par["challenger"], par["reference"] = a_id, b_id
        out["parity"] = par
    return out
