"""Parsing of human-typed quantities: token counts ('15T', '300B', '1.5e13'), ranges."""
from __future__ import annotations

import math
import re

from estimator.errors import InputError

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}


def parse_count(text: str, what: str = "tokens") -> float:
    """'15T' -> 1.5e13; '300B' -> 3e11; '1.5e13' -> 1.5e13. Must be positive and finite."""
    s = str(text).strip().replace("_", "").replace(",", "")
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtTpP]?)", s)
    if not m:
        raise InputError(f"--{what}: cannot read {text!r} (examples: 15T, 300B, 1.5e13)")
    v = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"--{what} must be positive (got {text!r})")
    return v


def parse_derate(items: list[str] | None) -> dict[str, float]:
    """['compute=0.8', 'hbm_bw=0.8'] -> {'compute': 0.8, ...}: multipliers on datasheet facts."""
    keys = ("compute", "hbm_bw", "hbm_capacity", "scale_up", "scale_out")
    out: dict[str, float] = {}
    for it in items or []:
        if "=" not in it:
            raise InputError(f"--derate expects KEY=FACTOR (keys: {', '.join(keys)}), got {it!r}")
        k, v = it.split("=", 1)
        k = k.strip().replace("-", "_")
        if k not in keys:
            raise InputError(f"--derate: unknown key {k!r} (keys: {', '.join(keys)})")
        try:
            f = float(v)
        except ValueError:
            raise InputError(f"--derate {k}: {v!r} is not a number") from None
        if not math.isfinite(f) or f <= 0 or f > 10:
            raise InputError(f"--derate {k} must be in (0, 10] (got {v})")
        out[k] = f
    return out
