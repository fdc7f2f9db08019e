"""Per-layer patterns (which layers are MoE, which use a sliding window) expressed in the
catalog schema, which describes them with counts and a period.

The estimator uses only the number of layers of each kind, so a pattern the schema cannot
express exactly is kept with the same counts, and a note says so.
"""
from __future__ import annotations

from typing import Optional


def _ranges(idx: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'"""
    out, start = [], None
    for i, v in enumerate(idx):
        if start is None:
            start = v
        if i + 1 == len(idx) or idx[i + 1] != v + 1:
            out.append(str(start) if start == v else f"{start}-{v}")
            start = None
    if len(out) > 8:
        return ", ".join(out[:6]) + f", ... ({len(out) - 6} more)"
    return ", ".join(out)


#: more layers than any real model; bounds the per-layer lists the importers build
MAX_LAYERS = 10_000


def _progression(pos: list[int], n: int) -> Optional[tuple[int, int]]:
    """(dense, every) when ``pos`` are exactly the positions dense + j*every + every - 1,
    j < (n - dense) // every, else None."""
    m = len(pos)
    if m >= 2:
        every = pos[1] - pos[0]
        candidates = [every] if all(b - a == every for a, b in zip(pos, pos[1:])) else []
    else:
        candidates = list(range(1, pos[0] + 2))
    for every in candidates:
        dense = pos[0] - every + 1
        if dense >= 0 and (n - dense) // every == m:
            return dense, every
    return None


def moe_layout(is_moe: list[bool]) -> Optional[tuple[int, int, Optional[str]]]:
    """(dense_layers, moe_layer_every, note) for a list of per-layer MoE flags, or None when
    no layer is MoE. The schema's pattern: ``dense_layers`` dense layers, then among the
    rest, layer ``dense_layers + j * every + every - 1`` is MoE."""
    n = len(is_moe)
    moe = [i for i, f in enumerate(is_moe) if f]
    m = len(moe)
    if m == 0:
        return None
    found = _progression(moe, n)
    if found is not None:
        return found[0], found[1], None
    note = (f"MoE layers {_ranges(moe)} of {n} do not follow the schema's pattern; kept as "
            f"{n - m} dense then {m} MoE layers (same parameter and FLOP counts, pipeline "
            f"stages may hold a different mix)")
    return n - m, 1, note


def window_layout(is_sliding: list[bool]) -> tuple[bool, Optional[int], Optional[str]]:
    """(any_window, sliding_window_every, note) for per-layer sliding-window flags.
    ``sliding_window_every: N`` means one layer in every N attends to the full context."""
    n = len(is_sliding)
    full = [i for i, s in enumerate(is_sliding) if not s]
    n_full = len(full)
    if n_full == n:
        return False, None, None
    if n_full == 0:
        return True, None, None
    exact = [e for e in range(2, n + 1) if n // e == n_full]
    if exact:
        for every in exact:
            if full[0] < every and all(b - a == every for a, b in zip(full, full[1:])) \
                    and len(range(full[0], n, every)) == n_full:
                return True, every, None
        every = exact[0]
        return True, every, (f"full-attention layers {_ranges(full)} of {n} are not evenly spaced; kept as "
                             f"1 in {every} (same count)")
    every = min(range(1, n + 1), key=lambda e: (abs(n // e - n_full), e))
    return True, every, (f"{n_full} of {n} layers use full attention; the schema's 1-in-N "
                         f"pattern gives {n // every} (1 in {every}), the closest it can express")
