"""Argument checks shared by the library and the command line: one rule per quantity.

Every number a user can pass (a library argument or a CLI option) is checked here: it must be
a finite number inside a sane range. Errors name the library parameter (``qps must be
positive``); the command line rewrites the name as its flag (``--qps``).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from estimator.errors import InputError

#: the largest cluster any command reasons about (the same bound ``train`` applies)
MAX_CHIPS = 10_000_000


@dataclass(frozen=True)
class Limit:
    lo: float
    hi: float
    lo_closed: bool = False      # True: ``lo`` itself is allowed
    why: str = ""                # shown when a value is above ``hi``
    integer: bool = False


_CLUSTER = "beyond any cluster this tool can reason about"
_LEN = "beyond any sequence this tool can reason about"

#: name -> allowed range; names are the library's parameter names
LIMITS: dict[str, Limit] = {
    # counts
    "chips": Limit(1, MAX_CHIPS, True, _CLUSTER, True),
    "cluster_chips": Limit(1, MAX_CHIPS, True, _CLUSTER, True),
    "max_chips": Limit(1, MAX_CHIPS, True, _CLUSTER, True),
    "ref_chips": Limit(1, MAX_CHIPS, True, _CLUSTER, True),
    "gbs": Limit(1, 100_000_000, True, "beyond any batch this tool can reason about", True),
    "seq_len": Limit(1, 100_000_000, True, _LEN, True),
    "input_len": Limit(1, 100_000_000, True, _LEN, True),
    "output_len": Limit(0, 100_000_000, True, _LEN, True),
    "top": Limit(1, 100_000, True, "more plans than anyone reads", True),
    # workload and targets
    "tokens": Limit(0, 1e16, False, "10,000T tokens, hundreds of times the largest published run"),
    "flops": Limit(0, 1e32, False, "a million times the largest training run on record"),
    "days": Limit(0, 36_500, False, "a century"),
    "qps": Limit(0, 1e7, False, "ten million requests per second"),
    "power_budget_mw": Limit(0, 1e5, False, "100 GW"),
    "equal_power_mw": Limit(0, 1e5, False, "100 GW"),
    "tpot_slo_ms": Limit(0, 1e7, False, "about three hours per token"),
    "ttft_slo_ms": Limit(0, 1e8, False, "about a day to the first token"),
    "spec_accept": Limit(1, 16, True, "accepted tokens per decode step"),
    # facility and failures
    "pue": Limit(1, 5, True, "no data centre is that inefficient"),
    "mtbf_chip_h": Limit(1, 1e9, True, "a hundred thousand years per chip"),
    "ckpt_gb_per_s_per_node": Limit(1e-3, 1e5, True, "100 TB/s per node"),
    "restart_s": Limit(0, 1e7, True, "about four months"),
    # what-if multipliers on datasheet facts
    "derate": Limit(0.01, 10, True, "a what-if beyond 10x a datasheet fact"),
}

DERATE_KEYS = ("compute", "hbm_bw", "hbm_capacity", "scale_up", "scale_out")


def _show(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _bound(v: float) -> str:
    return f"{v:,.0f}" if v == int(v) and abs(v) < 1e9 else f"{v:g}"


def check(name: str, value, limit: Limit | None = None, label: str | None = None):
    """Return ``value`` if it is a finite number within its limit; else raise InputError.

    ``label`` is the name the message uses (default: ``name``)."""
    lim = limit or LIMITS[name]
    who = label or name
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{who} must be a number (got {value!r})", name)
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        raise InputError(f"{who} must be a finite number (got {_show(value)})", name)
    if lim.integer and v != int(v):
        raise InputError(f"{who} must be a whole number (got {_show(value)})", name)
    if v <= 0 and lim.lo >= 0 and not (lim.lo == 0 and lim.lo_closed):
        raise InputError(f"{who} must be positive (got {_show(value)})", name)
    if v < lim.lo or (v == lim.lo and not lim.lo_closed):
        raise InputError(f"{who} must be at least {_bound(lim.lo)} (got {_show(value)})", name)
    if v > lim.hi:
        why = f": {lim.why}" if lim.why else ""
        raise InputError(f"{who} must be at most {_bound(lim.hi)} (got {_show(value)}{why})", name)
    return value


def check_optional(name: str, value, label: str | None = None):
    """Like :func:`check`, but ``None`` (not given) passes."""
    return None if value is None else check(name, value, label=label)


def check_derate(overrides: dict | None) -> dict:
    """Validate what-if multipliers {key: factor}; returns a plain dict (empty if None)."""
    out: dict[str, float] = {}
    if overrides is None:
        return out
    if not isinstance(overrides, dict):
        raise InputError(f"overrides must be a dict of {{key: factor}} (keys: {', '.join(DERATE_KEYS)})",
                         "overrides")
    for k, v in overrides.items():
        if k not in DERATE_KEYS:
            raise InputError(f"overrides: unknown key {k!r} (keys: {', '.join(DERATE_KEYS)})", "overrides")
        try:
            check("derate", v, label=f"overrides[{k!r}]")
        except InputError as e:
            raise InputError(str(e), "overrides") from None
        out[k] = float(v)
    return out
