"""Year-by-year selection: which (chip, system) pairs a scenario's buyer can use in a year.

A pair is usable in year Y when the chip is allowed by a rule covering Y and denied by none,
and both the chip and the system are available by the end of Y (after an optional deployment
lag in quarters). An availability without a quarter counts from the year's last quarter (the
conservative reading). A deny by export class also removes chips whose class is unknown but
could be the denied one; an allow by class does not admit them.
"""
from __future__ import annotations

from dataclasses import dataclass

from estimator.catalog import Catalog
from estimator.scenarios.export_control import CLASS_UNKNOWN, ExportClass, classify
from estimator.scenarios.loader import chip_index, vendor_matches
from estimator.scenarios.model import Cap, Scenario, Selector
from estimator.specs import ChipSpec, SystemSpec
from estimator.specs.common import Availability


def quarter_index(av: Availability) -> int:
    return av.year * 4 + (av.quarter or 4) - 1


def usable_in(av: Availability | None, year: int, lag_quarters: int = 0) -> bool:
    """True when a part available at ``av`` can be in a cluster built by the end of ``year``."""
    if av is None:
        return False
    return quarter_index(av) + lag_quarters <= year * 4 + 3


def is_roadmap(chip: ChipSpec, system: SystemSpec) -> bool:
    return (chip.status == "roadmap" or system.status == "roadmap"
            or any(x.available is not None and x.available.confidence == "roadmap" for x in (chip, system)))


@dataclass
class Option:
    chip: ChipSpec
    system: SystemSpec
    export: ExportClass
    roadmap: bool
    allowed_by: str


@dataclass
class Excluded:
    chip: str
    system: str | None
    reason: str

    def to_dict(self) -> dict:
        return {"chip": self.chip, "system": self.system, "reason": self.reason}


def _describe(sel: Selector) -> str:
    parts = []
    if sel.vendors:
        parts.append("vendors " + "/".join(sel.vendors))
    if sel.classes:
        parts.append("classes " + "/".join(sel.classes))
    if sel.chips:
        parts.append("chips " + "/".join(sel.chips))
    return " and ".join(parts)


class ScenarioView:
    """A scenario bound to a catalog: export classes, rule matching, options per year, caps."""

    def __init__(self, scn: Scenario, cat: Catalog, origin: str = ""):
        self.scn = scn
        self.cat = cat
        self.origin = origin
        self._idx = chip_index(cat)
        self._classes: dict[str, ExportClass] = {}

    def export(self, chip: ChipSpec) -> ExportClass:
        if chip.id not in self._classes:
            self._classes[chip.id] = classify(chip)
        return self._classes[chip.id]

    def _ids(self, names: list[str]) -> set[str]:
        return {self._idx.get(n.strip().lower(), n.strip().lower()) for n in names}

    def _match(self, sel: Selector, chip: ChipSpec) -> str:
        """'yes', 'no', or 'maybe' (the selector names classes and the chip's class is unknown)."""
        if sel.chips and chip.id not in self._ids(sel.chips):
            return "no"
        if sel.vendors and not any(vendor_matches(v, chip.vendor) for v in sel.vendors):
            return "no"
        if sel.classes:
            ec = self.export(chip)
            if ec.klass in sel.classes:
                return "yes"
            if ec.klass == CLASS_UNKNOWN and ec.possible() & set(sel.classes):
                return "maybe"
            return "no"
        return "yes"

    def allowed(self, chip: ChipSpec, year: int) -> tuple[bool, str]:
        """(allowed, why): deny beats allow; an unknown class is denied when it could match."""
        rules = [(i, r) for i, r in enumerate(self.scn.rules) if r.covers(year)]
        for i, r in rules:
            for sel in r.deny:
                m = self._match(sel, chip)
                if m == "yes":
                    return False, f"denied in {year} by rules.{i} ({_describe(sel)})"
                if m == "maybe":
                    return False, (f"denied in {year} by rules.{i} ({_describe(sel)}): its class is unknown "
                                   f"({'; '.join(self.export(chip).missing)}) and could be a denied one")
        maybe = None
        for i, r in rules:
            for sel in r.allow:
                m = self._match(sel, chip)
                if m == "yes":
                    return True, f"rules.{i}: {r.provenance()}"
                if m == "maybe" and maybe is None:
                    maybe = (f"rules.{i} allows {_describe(sel)}, but its class is unknown "
                             f"({'; '.join(self.export(chip).missing)})")
        if maybe:
            return False, maybe
        return False, f"no rule allows it in {year}"

    def systems_for(self, chip: ChipSpec) -> list[SystemSpec]:
        return [s for s in self.cat.all("system") if self._idx.get(s.chip, s.chip) == chip.id]

    def options(self, year: int, lag_quarters: int = 0) -> tuple[list[Option], list[Excluded], int]:
        """(usable pairs, allowed chips or pairs that cannot be used and why, number of chips
        the scenario does not allow that year), sorted by chip then system id."""
        opts: list[Option] = []
        excl: list[Excluded] = []
        not_allowed = 0
        for chip in self.cat.all("chip"):
            ok, why = self.allowed(chip, year)
            if not ok:
                not_allowed += 1
                if "class is unknown" in why:
                    excl.append(Excluded(chip.id, None, why))
                continue
            if not usable_in(chip.available, year, lag_quarters):
                when = chip.available.label() if chip.available else "no availability date in its spec"
                excl.append(Excluded(chip.id, None, f"not available by {year}: {when}"
                                     + (f" + {lag_quarters} quarter(s) lag" if lag_quarters else "")))
                continue
            systems = self.systems_for(chip)
            if not systems:
                excl.append(Excluded(chip.id, None, "no system spec holds it (a cluster needs one)"))
                continue
            for s in systems:
                if not usable_in(s.available, year, lag_quarters):
                    when = s.available.label() if s.available else "no availability date in its spec"
                    excl.append(Excluded(chip.id, s.id, f"system not available by {year}: {when}"))
                    continue
                opts.append(Option(chip, s, self.export(chip), is_roadmap(chip, s), why))
        return opts, excl, not_allowed

    def _caps(self, chip_id: str, year: int, attr: str) -> tuple[float, Cap] | None:
        best = None
        for cap in self.scn.caps:
            v = getattr(cap, attr)
            if v is None or not cap.covers(year):
                continue
            if cap.chips and chip_id not in self._ids(cap.chips):
                continue
            if best is None or v < best[0]:
                best = (v, cap)
        return best

    def supply_cap(self, chip_id: str, year: int) -> tuple[int, Cap] | None:
        c = self._caps(chip_id, year, "max_chips")
        return None if c is None else (int(c[0]), c[1])

    def power_cap(self, chip_id: str, year: int) -> tuple[float, Cap] | None:
        return self._caps(chip_id, year, "max_power_mw")
