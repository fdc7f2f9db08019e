"""Parsing of human-typed quantities: token counts ('15T', '300B', '1.5e13'), what-if factors."""
from __future__ import annotations

import re

from estimator.args import DERATE_KEYS, check
from estimator.errors import InputError

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}


def parse_count(text, what: str = "tokens") -> float:
    """'15T' -> 1.5e13; '300B' -> 3e11; '1.5e13' -> 1.5e13; a number passes through.

    Must be positive, finite and within the limit of ``what`` (estimator.args.LIMITS)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(check(what, text))
    s = str(text).strip().replace("_", "").replace(",", "")
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtTpP]?)", s)
    if not m:
        if re.fullmatch(r"-\s*[0-9.].*", s):
            raise InputError(f"{what} must be positive (got {text!r})", what)
        raise InputError(f"{what}: cannot read {text!r} (examples: 15T, 300B, 1.5e13)", what)
    v = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    return float(check(what, v))


def parse_derate(items: list[str] | None) -> dict[str, float]:
    """['compute=0.8', 'hbm_bw=0.8'] -> {'compute': 0.8, ...}: multipliers on datasheet facts."""
    out: dict[str, float] = {}
    for it in items or []:
        if "=" not in it:
            raise InputError(f"derate expects KEY=FACTOR (keys: {', '.join(DERATE_KEYS)}), got {it!r}", "derate")
        k, v = it.split("=", 1)
        k = k.strip().replace("-", "_")
        if k not in DERATE_KEYS:
            raise InputError(f"derate: unknown key {k!r} (keys: {', '.join(DERATE_KEYS)})", "derate")
        try:
            f = float(v)
        except ValueError:
            raise InputError(f"derate {k}: {v!r} is not a number", "derate") from None
        check("derate", f, label=f"derate {k}")
        out[k] = f
    return out


def derate_text(overrides: dict | None) -> str:
    """'hbm_bw x 0.8, compute x 0.9' (empty when no what-if is applied)."""
    return ", ".join(f"{k} x {v:g}" for k, v in (overrides or {}).items())
