"""Scenario files: which chips a buyer in a region can obtain each year, and the caps on
supply (chips per year) and power (MW). Every rule and cap names a source or says it is an
assumption.

Schema (``hwspecs/scenarios/*.yaml``)::

    id: domestic-only                 # lower-case letters, digits, '.', '-'
    name: "China, domestic chips only"
    region: China                     # optional
    description: "..."
    rules:                            # at least one
      - years: "2023:2030"            # one year (2025) or an inclusive range ("2023:2030")
        allow:                        # a list of selectors; a chip matching any of them is allowed
          - {vendors: [Huawei, Cambricon]}
          - {vendors: [NVIDIA], classes: [none]}    # fields of one selector must all match
          - {chips: [h20]}
        deny: [...]                   # optional; a denied chip is never used (deny beats allow)
        source: "..."                 # or  assumption: "..."
    caps:                             # optional
      - years: 2025
        chips: [ascend-910c]          # optional: the chips the cap applies to (default: every chip)
        max_chips: 200000             # chips obtainable that year: no cluster is larger
        source: "..."                 # or  assumption: "..."
        confidence: estimated         # optional
      - {years: "2023:2030", max_power_mw: 300, assumption: "site limit"}
    notes: "..."                      # optional

Selector fields: ``vendors`` (a chip's vendor, or its first words: 'Huawei' matches 'Huawei
(HiSilicon)'), ``classes`` (export classes from :mod:`estimator.scenarios.export_control`:
3A090.a, 3A090.b, none, unknown), ``chips`` (ids or aliases). Chip ids and vendors are checked
against the catalog when the file is loaded (:mod:`estimator.scenarios.loader`).
"""
from __future__ import annotations

import math
import re
from typing import Optional

from pydantic import Field, field_validator, model_validator

from estimator.scenarios.export_control import CLASSES
from estimator.specs.common import ID_PATTERN, Confidence, Strict

YEAR_MIN, YEAR_MAX = 1990, 2100


def parse_years(v) -> tuple[int, int]:
    """2025 -> (2025, 2025); '2023:2030' -> (2023, 2030). Raises ValueError with the reason."""
    if isinstance(v, bool):
        raise ValueError("years must be a year (2025) or a range ('2023:2030')")
    if isinstance(v, int):
        lo = hi = v
    elif isinstance(v, str) and re.fullmatch(r"\s*\d{4}\s*(:\s*\d{4}\s*)?", v):
        parts = [int(x) for x in v.split(":")]
        lo, hi = parts[0], parts[-1]
    else:
        raise ValueError(f"years must be a year (2025) or a range ('2023:2030'), got {v!r}")
    if not (YEAR_MIN <= lo <= YEAR_MAX and YEAR_MIN <= hi <= YEAR_MAX):
        raise ValueError(f"years must lie in {YEAR_MIN}-{YEAR_MAX} (got {v!r})")
    if hi < lo:
        raise ValueError(f"year range {v!r} runs backwards")
    return lo, hi


class _Dated(Strict):
    years: object
    source: Optional[str] = None
    assumption: Optional[str] = None

    @field_validator("years")
    @classmethod
    def _years(cls, v):
        parse_years(v)
        return v

    @model_validator(mode="after")
    def _provenance(self):
        src = (self.source or "").strip()
        asm = (self.assumption or "").strip()
        if not src and not asm:
            raise ValueError("needs a 'source', or an 'assumption' saying why the figure is assumed")
        return self

    @property
    def span(self) -> tuple[int, int]:
        return parse_years(self.years)

    def covers(self, year: int) -> bool:
        lo, hi = self.span
        return lo <= year <= hi

    def provenance(self) -> str:
        return self.source.strip() if (self.source or "").strip() else f"assumption: {self.assumption.strip()}"


class Selector(Strict):
    vendors: list[str] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)
    chips: list[str] = Field(default_factory=list)

    @field_validator("classes")
    @classmethod
    def _classes(cls, v: list[str]):
        known = {c.lower(): c for c in CLASSES}
        out = []
        for c in v:
            if not isinstance(c, str) or c.strip().lower() not in known:
                raise ValueError(f"unknown export class {c!r} (one of: {', '.join(CLASSES)})")
            out.append(known[c.strip().lower()])
        return out

    @field_validator("vendors", "chips")
    @classmethod
    def _nonempty_names(cls, v: list[str]):
        for x in v:
            if not isinstance(x, str) or not x.strip():
                raise ValueError("names must be non-empty strings")
        return v

    @model_validator(mode="after")
    def _something(self):
        if not (self.vendors or self.classes or self.chips):
            raise ValueError("a selector needs at least one of vendors, classes, chips")
        return self


class Rule(_Dated):
    allow: list[Selector] = Field(default_factory=list)
    deny: list[Selector] = Field(default_factory=list)
    note: Optional[str] = None

    @model_validator(mode="after")
    def _has_effect(self):
        if not self.allow and not self.deny:
            raise ValueError("a rule needs 'allow' or 'deny'")
        return self


class Cap(_Dated):
    chips: list[str] = Field(default_factory=list)
    max_chips: Optional[int] = None
    max_power_mw: Optional[float] = None
    confidence: Optional[Confidence] = None
    note: Optional[str] = None

    @field_validator("max_chips", mode="before")
    @classmethod
    def _whole(cls, v):
        if v is None:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
            raise ValueError(f"max_chips must be a whole number (got {v!r})")
        if v <= 0:
            raise ValueError(f"max_chips must be positive (got {v!r})")
        return int(v)

    @field_validator("max_power_mw", mode="before")
    @classmethod
    def _power(cls, v):
        if v is None:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"max_power_mw must be a number (got {v!r})")
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"max_power_mw must be a positive finite number (got {v!r})")
        return float(v)

    @model_validator(mode="after")
    def _one_limit(self):
        if (self.max_chips is None) == (self.max_power_mw is None):
            raise ValueError("a cap needs exactly one of max_chips, max_power_mw")
        return self


class Scenario(Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str
    region: Optional[str] = None
    description: str
    rules: list[Rule] = Field(min_length=1)
    caps: list[Cap] = Field(default_factory=list)
    notes: Optional[str] = None
