"""Find and load scenario files; check their chip ids and vendors against the catalog.

Lookup of ``--scenario NAME``: a scenario id in a user spec folder (``DIR/scenarios/*.yaml``,
``--spec-dir`` first, then ``SUANLI_SPEC_PATH``), then the built-in ``hwspecs/scenarios/``,
then a path to a YAML file. Errors are one line naming the file and the field.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path

from estimator.catalog import Catalog, builtin_dir
from estimator.errors import SpecError, UnknownIdError
from estimator.scenarios.model import Scenario
from estimator.yamlio import load_spec, read_yaml_mapping, validate_mapping


def scenario_dirs(cat: Catalog) -> list[Path]:
    return [Path(d) / "scenarios" for d in cat.user_dirs] + [builtin_dir() / "scenarios"]


def vendor_matches(wanted: str, vendor: str) -> bool:
    """'Huawei' matches 'Huawei (HiSilicon)'; 'NVIDIA' matches 'NVIDIA'; case-insensitive."""
    a, b = wanted.strip().casefold(), vendor.strip().casefold()
    return b == a or b.startswith(a + " ")


def chip_index(cat: Catalog) -> dict[str, str]:
    """Every chip id and alias -> chip id."""
    idx: dict[str, str] = {}
    for c in cat.all("chip"):
        for k in [c.id, *c.aliases]:
            idx.setdefault(k, c.id)
    return idx


def _chip_id(idx: dict[str, str], name: str, where: str, path: str) -> str:
    key = name.strip().lower()
    if key in idx:
        return idx[key]
    close = difflib.get_close_matches(key, sorted(idx), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise SpecError(path, where, f"unknown chip '{name}'{hint}")


def check_against_catalog(scn: Scenario, cat: Catalog, path: str) -> None:
    """Every chip id must resolve and every vendor must match a catalog chip's vendor."""
    idx = chip_index(cat)
    vendors = sorted({c.vendor for c in cat.all("chip")})
    for i, rule in enumerate(scn.rules):
        for kind in ("allow", "deny"):
            for j, sel in enumerate(getattr(rule, kind)):
                where = f"rules.{i}.{kind}.{j}"
                for name in sel.chips:
                    _chip_id(idx, name, where + ".chips", path)
                for v in sel.vendors:
                    if not any(vendor_matches(v, x) for x in vendors):
                        raise SpecError(path, where + ".vendors",
                                        f"no chip in the catalog has vendor '{v}' (known: {', '.join(vendors)})")
    for i, cap in enumerate(scn.caps):
        for name in cap.chips:
            _chip_id(idx, name, f"caps.{i}.chips", path)


def load_scenario_file(path: str | os.PathLike, cat: Catalog) -> Scenario:
    scn = load_spec(Scenario, path)
    check_against_catalog(scn, cat, str(path))
    return scn


def validate_scenario_mapping(data: dict, path: str, cat: Catalog) -> Scenario:
    scn = validate_mapping(Scenario, data, path)
    check_against_catalog(scn, cat, path)
    return scn


def looks_like_scenario(data: dict) -> bool:
    return "rules" in data and "peak_tflops" not in data and "layers" not in data


def scenario_files(cat: Catalog) -> dict[str, Path]:
    """Scenario id -> file, user folders shadowing the built-in ones."""
    out: dict[str, Path] = {}
    for d in reversed(scenario_dirs(cat)):
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.y*ml")):
            data = read_yaml_mapping(p)
            sid = data.get("id")
            if isinstance(sid, str):
                out[sid.strip().lower()] = p
    return out


def load_scenario(name: str, cat: Catalog) -> tuple[Scenario, str]:
    """(scenario, the file it came from) for an id or a path."""
    key = name.strip()
    files = scenario_files(cat)
    if key.lower() in files:
        p = files[key.lower()]
        return load_scenario_file(p, cat), str(p)
    p = Path(key)
    if key.endswith((".yaml", ".yml")) or os.sep in key or p.is_file():
        if not p.exists():
            raise SpecError(key, None, "file not found")
        return load_scenario_file(p, cat), str(p)
    close = difflib.get_close_matches(key.lower(), sorted(files), n=3, cutoff=0.5)
    raise UnknownIdError("scenario", key, close or sorted(files)[:3])
