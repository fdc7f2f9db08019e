"""Rendering: rich tables for people, deterministic JSON for machines.

Tables never break a number: number columns keep their full width and the text columns (the
plan, ids, sources) fold instead; when even that does not fit the terminal, each row is shown
as its own block of "header: value" lines. Text from files (CSV ids, spec fields) is shown
literally: no rich markup, control characters escaped.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
from typing import Any

from rich import box
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text


class _Console(Console):
    """Honours COLUMNS even when stdout is not a terminal; pipes and CI logs get 160."""

    @property
    def size(self) -> ConsoleDimensions:
        cols = os.environ.get("COLUMNS", "")
        if cols.isdigit() and int(cols) > 0:
            return ConsoleDimensions(int(cols), super().size.height)
        if not self.is_terminal:
            return ConsoleDimensions(160, 25)
        return super().size

    @size.setter
    def size(self, new_size) -> None:  # pragma: no cover  (rich API symmetry)
        Console.size.fset(self, new_size)


console = _Console(highlight=False)
#: one-line messages for people (progress, first-run notices) go to stderr
err_console = _Console(highlight=False, stderr=True)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: Any) -> str:
    """``text`` with control characters (terminal escapes) shown as \\xNN."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def say(text: str) -> None:
    """Print one line of our own text plus values from files, literally."""
    console.print(Text(safe(text)))


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
    return safe(v)


def fmt_sig(v: Any, sig: int = 4) -> str:
    """A float with ``sig`` significant digits (at least; large values keep every digit)."""
    if not isinstance(v, float) or not math.isfinite(v) or v == 0:
        return fmt(v)
    mag = math.floor(math.log10(abs(v)))
    return f"{v:,.{max(0, sig - 1 - mag)}f}"


_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?%?$|^-$")


def _is_number_column(cells: list[str]) -> bool:
    return bool(cells) and all(_NUMBER.match(c) for c in cells) and any(c != "-" for c in cells)


def _word_width(s: str) -> int:
    return max((len(w) for w in s.split()), default=0)


# table styles from roomy to tight; width = sum of column widths + per_col * columns + edge
_BOXED = dict(kw=dict(box=box.HEAVY_HEAD, padding=(0, 1)), per_col=3, edge=1)
_SPACED = dict(kw=dict(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False,
                       show_edge=False), per_col=2, edge=-2)
_TIGHT = dict(kw=dict(box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False, show_edge=False),
              per_col=1, edge=-1)


def _layout(headers, cols, numeric, width, style):
    """Column widths that fit ``width`` without narrowing a number column, or None."""
    over = style["per_col"] * len(headers) + style["edge"]
    full = [max([len(c) for c in cols[i]] + [len(headers[i]), 1]) for i in range(len(headers))]
    if sum(full) + over <= width:
        return dict(enumerate(full))
    fixed = {i: max([len(c) for c in cols[i]] + [_word_width(headers[i])]) for i in numeric}
    text = [i for i in range(len(headers)) if i not in numeric]
    natural = {i: full[i] for i in text}
    floor = {i: min(natural[i], max(6, min(12, _word_width(headers[i])))) for i in text}
    room = width - over - sum(fixed.values())
    if room < sum(floor.values()):
        return None
    widths = dict(natural)
    # fold the widest text column first (the plan), one character at a time
    while sum(widths.values()) > room:
        i = max((j for j in text if widths[j] > floor[j]), key=lambda j: widths[j])
        widths[i] -= 1
    return {**fixed, **widths}


def table(title: str, columns: list[tuple[str, str]], rows: list[dict], digits: int = 1,
          formats: dict | None = None) -> None:
    """Print rows as a table. ``formats`` maps a column key to a function value -> str."""
    formats = formats or {}
    headers = [h for _, h in columns]
    cells = [[formats[k](r.get(k)) if k in formats else fmt(r.get(k), digits) for k, _ in columns]
             for r in rows]
    cols = [[row[i] for row in cells] for i in range(len(columns))]
    numeric = {i for i in range(len(columns)) if _is_number_column(cols[i])}
    width = console.width
    natural = sum(max([len(c) for c in cols[i]] + [len(headers[i]), 1]) for i in range(len(columns)))
    # boxed when nothing needs folding; otherwise the lighter styles leave more room to text
    styles = (_BOXED,) if _BOXED["per_col"] * len(columns) + _BOXED["edge"] + natural <= width \
        else (_SPACED, _TIGHT)
    widths = None
    for style in styles:
        widths = _layout(headers, cols, numeric, width, style)
        if widths is not None:
            break
    if widths is None:
        _blocks(title, headers, cells)
        return
    t = Table(title=Text(safe(title)), title_justify="left", **style["kw"])
    for i, h in enumerate(headers):
        t.add_column(Text(h, no_wrap=False, overflow="fold"), justify="right" if i in numeric else "left",
                     width=widths[i], overflow="fold")
    for row in cells:
        t.add_row(*[Text(c, no_wrap=i in numeric, overflow="fold") for i, c in enumerate(row)])
    console.print(t)


def _blocks(title: str, headers: list[str], cells: list[list[str]]) -> None:
    """Very narrow terminals: one "header: value" line per cell, rows apart."""
    say(title)
    for row in cells:
        for h, c in zip(headers, row):
            console.print(Text(f"  {h}: {c}"), overflow="fold")
        console.print()


def kv(title: str, pairs: list[tuple[str, Any]]) -> None:
    t = Table(title=Text(safe(title)), title_justify="left", show_header=False)
    t.add_column("", style="bold", overflow="fold")
    t.add_column("", overflow="fold")
    for k, v in pairs:
        t.add_row(Text(safe(k)), Text(fmt(v, 3) if isinstance(v, float) else fmt(v)))
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


def plan_text(p: dict | None, full: bool = True) -> str:
    """A training plan in one short line: degrees (ep and etp when they matter), then, in full,
    interleaving, micro-batch, ZeRO, recompute and precision; compact keeps ZeRO and recompute."""
    if not p:
        return "-"
    s = f"tp{p['tp']} pp{p['pp']} dp{p['dp']} cp{p['cp']}"
    if p["ep"] > 1:
        s += f" ep{p['ep']}"
    if p.get("etp", p["tp"]) != p["tp"]:
        s += f" etp{p['etp']}"
    if not full:
        return s + f" z{p['zero']} {p['recompute']}"
    if p["vpp"] > 1:
        s += f" v{p['vpp']}"
    return s + f" mbs{p['mbs']} z{p['zero']} {p['recompute']} {p['precision']}"

