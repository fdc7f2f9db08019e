"""Export-control classification of a chip under ECCN 3A090 (US EAR, October 2023 rule).

Rule: BIS, "Implementation of Additional Export Controls: Certain Advanced Computing Items;
Supercomputer and Semiconductor End Use; Updates and Corrections", 88 FR 73458 (Federal
Register doc. 2023-23055, published 2023-10-25, effective 2023-11-17), ECCN 3A090 and its
technical notes. The thresholds below are as transcribed by secondary sources (a Han Kun Law
summary quoted in peaklau2008.github.io ai.md; arthurchiao.art "GPU data sheets"), collected
in the project's hardware facts of 2026-11 (confidence: reported).

- TPP ("total processing performance") = 2 x MacTOPS x bit length of the operation, the
  maximum over the operations the chip performs. A vendor's dense TFLOP/s (TOP/s) figure
  already counts 2 operations per multiply-accumulate, so TPP = dense peak x bit length.
- Performance density = TPP / applicable die area (mm^2). The rule counts every logic die made
  on a non-planar (FinFET or later) process; here the area is ``die_area_mm2`` (one compute
  die) x ``dies_per_package``, so where a package also holds I/O dies the density is an upper
  bound, and the chip's die-area note says so.
- 3A090.a: TPP >= 4800, or TPP >= 1600 and density >= 5.92.
- 3A090.b: 2400 <= TPP < 4800 and 1.6 <= density < 5.92, or TPP >= 1600 and
  3.2 <= density < 5.92.

This is the performance test only. Whether the rule reaches a part also depends on its origin
(US-origin or a foreign direct product), the buyer and the licence exceptions, none of which is
modelled here; Chinese-made parts are classified by their numbers for comparison. The rule's
treatment of parts not designed or marketed for data centres is not modelled either.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from estimator.specs import ChipSpec

RULE = "ECCN 3A090, 88 FR 73458 (Oct 2023), thresholds as transcribed by secondary sources"

#: bit length of each listed operation, in the order ties are reported. TF32 is counted at the
#: 32 bits its operands occupy; at half the 16-bit rate (every chip here) it only ties the
#: 16-bit TPP, and a tie is reported under the first precision in this order.
BITS = {"bf16": 16, "fp16": 16, "fp8": 8, "int8": 8, "fp4": 4, "tf32": 32, "fp32": 32}

TPP_A = 4800.0
TPP_B = 2400.0
TPP_FLOOR = 1600.0
DENSITY_A = 5.92
DENSITY_B_LOW = 1.6
DENSITY_B_HIGH = 3.2

CLASS_A = "3A090.a"
CLASS_B = "3A090.b"
CLASS_NONE = "none"
CLASS_UNKNOWN = "unknown"
CLASSES = (CLASS_A, CLASS_B, CLASS_NONE, CLASS_UNKNOWN)

_CONF_ORDER = ("official", "reported", "estimated", "roadmap")


def _weakest(confs) -> str | None:
    known = [c for c in confs if c is not None]
    return max(known, key=_CONF_ORDER.index) if known else None


def classify_numbers(tpp: float | None, density: float | None) -> tuple[str, str]:
    """(class, reason) from TPP and performance density; either may be None (unknown)."""
    if tpp is None:
        return CLASS_UNKNOWN, "TPP unknown (no dense peak)"
    if tpp >= TPP_A:
        return CLASS_A, f"TPP >= {TPP_A:,.0f}"
    if tpp < TPP_FLOOR:
        return CLASS_NONE, f"TPP < {TPP_FLOOR:,.0f}"
    if density is None:
        return CLASS_UNKNOWN, (f"TPP in {TPP_FLOOR:,.0f}-{TPP_A:,.0f}: the class turns on density, "
                               "and the die area is unknown")
    if density >= DENSITY_A:
        return CLASS_A, f"TPP >= {TPP_FLOOR:,.0f} and density >= {DENSITY_A}"
    if tpp >= TPP_B and density >= DENSITY_B_LOW:
        return CLASS_B, f"TPP in {TPP_B:,.0f}-{TPP_A:,.0f} and density in {DENSITY_B_LOW}-{DENSITY_A}"
    if density >= DENSITY_B_HIGH:
        return CLASS_B, f"TPP >= {TPP_FLOOR:,.0f} and density in {DENSITY_B_HIGH}-{DENSITY_A}"
    return CLASS_NONE, (f"below both 3A090.b bands (TPP >= {TPP_B:,.0f} with density >= {DENSITY_B_LOW}; "
                        f"density >= {DENSITY_B_HIGH})")


@dataclass
class ExportClass:
    chip: str
    tpp: float | None
    tpp_basis: str | None
    die_area_mm2: float | None          # applicable area: per-die area x dies per package
    density: float | None               # TPP per mm^2
    klass: str
    reason: str
    missing: list = field(default_factory=list)
    confidence: str | None = None       # weakest confidence of the figures used
    notes: list = field(default_factory=list)

    def possible(self) -> set[str]:
        """Classes the chip may be in: one when known; every class when a fact is missing."""
        if self.klass != CLASS_UNKNOWN:
            return {self.klass}
        return {CLASS_A, CLASS_B, CLASS_NONE}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["class"] = d.pop("klass")
        d["rule"] = RULE
        return d


def tpp_of(chip: ChipSpec) -> tuple[float, str, str | None] | None:
    """(TPP, basis text, confidence) from the chip's dense peaks, or None when none is known."""
    best = None
    for prec, bits in BITS.items():
        s = getattr(chip.peak_tflops, prec)
        if s is None or s.value is None:
            continue
        v = s.value * bits
        if best is None or v > best[0] + 1e-9:
            best = (v, f"{prec} {s.value:g} TFLOP/s x {bits} bit", s.confidence)
    return best


def classify(chip: ChipSpec) -> ExportClass:
    """TPP, performance density and 3A090 class of one chip, naming any missing fact."""
    missing, notes = [], []
    t = tpp_of(chip)
    tpp, basis, tconf = (t if t is not None else (None, None, None))
    if t is None:
        missing.append("peak_tflops (no dense peak known)")
    area = None
    aconf = None
    da = chip.die_area_mm2
    if da is not None and da.value is not None:
        area = da.value * chip.dies_per_package
        aconf = da.confidence
        if da.note:
            notes.append(f"die area: {da.note}")
    else:
        missing.append("die_area_mm2" + (f" ({da.note})" if da is not None and da.note else ""))
    density = tpp / area if (tpp is not None and area) else None
    klass, reason = classify_numbers(tpp, density)
    # the class rests on the die area only where TPP alone does not decide it
    on_density = tpp is not None and TPP_FLOOR <= tpp < TPP_A and density is not None
    used = [tconf, aconf] if on_density else [tconf]
    return ExportClass(chip=chip.id, tpp=tpp, tpp_basis=basis, die_area_mm2=area, density=density,
                       klass=klass, reason=reason, missing=missing, confidence=_weakest(used),
                       notes=notes)
