"""Building blocks shared by all spec models: strict base class and sourced numbers."""
from __future__ import annotations

import math
import types
import typing
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

#: official: vendor document or vendor-authored paper; reported: reputable media, analysts or
#: benchmark repositories citing the vendor; estimated: derived (the note says how); roadmap:
#: a vendor's announced target for a part not yet shipping
Confidence = Literal["official", "reported", "estimated", "roadmap"]

#: ids and aliases: lower-case letters, digits, '.', '-' (what users type on the command line)
ID_PATTERN = r"^[a-z0-9][a-z0-9.\-]*$"


_KINDS: dict = {}


def _field_kind(cls, name: str) -> type | None:
    """int or float when field ``name`` of ``cls`` holds a number (memoised per class)."""
    key = (cls, name)
    if key not in _KINDS:
        field = cls.model_fields.get(name)
        _KINDS[key] = _number_kind(field.annotation) if field is not None else None
    return _KINDS[key]


def _number_kind(annotation) -> type | None:
    """int or float when a field holds a number (optionally None), else None."""
    if annotation in (int, float):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(kinds) == 1 and kinds[0] in (int, float):
            return kinds[0]
    return None


class Strict(BaseModel):
    """Frozen, no unknown fields, no silent type coercion of strings or booleans to numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, v, info: ValidationInfo):
        kind = _field_kind(cls, info.field_name) if info.field_name else None
        if kind is None or v is None:
            return v
        if isinstance(v, bool):
            raise ValueError("must be a number, not true/false")
        if isinstance(v, str):
            raise ValueError("must be a number, not a string")
        if kind is int and isinstance(v, float):
            if not math.isfinite(v) or not v.is_integer():
                raise ValueError("must be a whole number")
            if abs(v) > 2 ** 53:
                raise ValueError("is too large")
            return int(v)
        return v


def check_finite_nonneg(v: float | None, positive: bool = False) -> float | None:
    if v is None:
        return v
    if isinstance(v, bool):
        raise ValueError("must be a number, not a boolean")
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    if v < 0 or (positive and v == 0):
        raise ValueError("must be positive" if positive else "must not be negative")
    return v


class Sourced(Strict):
    """One hardware number with where it came from.

    ``value`` is null when no usable source gives it; then ``note`` says why.
    """

    value: Optional[float]
    source: str
    confidence: Optional[Confidence] = None
    note: Optional[str] = None

    @field_validator("value", mode="before")
    @classmethod
    def _no_strings(cls, v):
        if isinstance(v, (str, bool)):
            raise ValueError("must be a number or null")
        return v

    @field_validator("value")
    @classmethod
    def _finite_positive(cls, v):
        return check_finite_nonneg(v, positive=True)

    @field_validator("source")
    @classmethod
    def _source_nonempty(cls, v: str):
        if not v.strip():
            raise ValueError("source must not be empty")
        return v

    @model_validator(mode="after")
    def _confidence_or_note(self):
        if self.value is not None and self.confidence is None:
            raise ValueError("a known value needs a confidence (official / reported / estimated / roadmap)")
        if self.value is None and not self.note:
            raise ValueError("an unknown (null) value needs a note saying why")
        return self

    @property
    def known(self) -> bool:
        return self.value is not None


class SourcedLink(Sourced):
    """A link bandwidth; says whether the figure is per direction or both directions."""

    direction: Literal["bidirectional", "unidirectional", "unstated"]


def check_aliases(v: list[str]) -> list[str]:
    import re

    for a in v:
        if not isinstance(a, str) or not re.match(ID_PATTERN, a):
            raise ValueError(f"alias {a!r} must be lower-case letters, digits, '.', '-'")
    return v


class Availability(Strict):
    """When a part can be had: the year (and quarter, when known) of volume shipment, or for a
    part not yet shipping the year and quarter its vendor announced."""

    year: int = Field(ge=1990, le=2100)
    #: 1-4; null when the source gives only the year (or a half: say so in the note)
    quarter: Optional[int] = Field(default=None, ge=1, le=4)
    basis: Literal["shipment", "announcement"]
    source: str
    confidence: Confidence
    note: Optional[str] = None

    @field_validator("year", "quarter", mode="before")
    @classmethod
    def _int_only(cls, v):
        if isinstance(v, (bool, str, float)):
            raise ValueError("must be a whole number")
        return v

    @field_validator("source")
    @classmethod
    def _source_nonempty(cls, v: str):
        if not v.strip():
            raise ValueError("source must not be empty")
        return v

    def label(self) -> str:
        q = f" Q{self.quarter}" if self.quarter else ""
        return f"{self.year}{q} ({self.basis})"


class CatalogEntry(Strict):
    """What every hardware catalog entry (chip, system) starts with."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    vendor: str
    aliases: list[str] = Field(default_factory=list)
    status: Literal["shipping", "roadmap"] = "shipping"
    year: Optional[int] = None
    #: when the part can be had (volume shipment, or the announced date of a roadmap part)
    available: Optional[Availability] = None

    @field_validator("aliases")
    @classmethod
    def _alias_format(cls, v: list[str]):
        return check_aliases(v)
