"""Rendering: rich tables for people, deterministic JSON for machines."""
from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

# pipes and CI logs get a wide, fixed width instead of rich's 80 columns
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _clean(o: Any):
    """JSON-safe copy: no NaN/inf (become null), tuples to lists, keys to str."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if hasattr(o, "item") and callable(o.item):  # numpy scalars
        return _clean(o.item())
    return o


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(_clean(obj), indent=2, allow_nan=False) + "\n")


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        if abs(v) >= 1e5:
            return f"{v:,.0f}"
        return f"{v:,.{digits}f}"
    return str(v)


def table(title: str, columns: list[tuple[str, str]], rows: list[dict], digits: int = 1) -> None:
    t = Table(title=title, title_justify="left")
    for key, header in columns:
        t.add_column(header, justify="left" if key in ("id", "vendor", "name", "field",
                                                        "source", "note", "chip", "topology",
                                                        "confidence", "attention", "ffn_act",
                                                        "plan", "status") else "right",
                     overflow="fold")
    for r in rows:
        t.add_row(*[fmt(r.get(k), digits) for k, _ in columns])
    console.print(t)


def kv(title: str, pairs: list[tuple[str, Any]]) -> None:
    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    for k, v in pairs:
        t.add_row(k, fmt(v, 3) if isinstance(v, float) else fmt(v))
    console.print(t)


def _si(v: float) -> str:
    a = abs(v)
    for div, suf in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:.3g}{suf}"
    return f"{v:.3g}"


def fmt_band(v, lo, hi) -> str:
    """A value with its p10-p90 band: '1.09M (0.95M-1.21M)'; the value alone without a band."""
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "-"
    if lo is None or hi is None:
        return _si(v)
    return f"{_si(v)} ({_si(lo)}-{_si(hi)})"
