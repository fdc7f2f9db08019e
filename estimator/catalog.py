"""The spec catalog: built-in chips, systems and models, plus user spec folders.

Lookup order for ``--chip/--system/--model NAME``:

1. an id or alias from a user spec folder (``--spec-dir DIR`` first, then each folder in
   ``SUANLI_SPEC_PATH``, separated by ``os.pathsep``); a user spec with a built-in id
   replaces the built-in one;
2. an id or alias from the built-in catalog (``hwspecs/`` shipped with the package);
3. a path to a YAML file.

A spec folder uses the built-in layout: ``chips/*.yaml``, ``systems/*.yaml``,
``models/*.yaml`` (and optionally ``efficiency.yaml``). Two files in one folder that claim the
same id or alias are an error, and so is a folder holding spec YAML files at its top level
(they would be ignored). :meth:`Catalog.provenance` says which file a spec came from and
which built-in spec it replaces.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Generic, TypeVar

from estimator.errors import SpecError, UnknownIdError
from estimator.specs import ChipSpec, EfficiencyFile, ModelSpec, SystemSpec
from estimator.yamlio import load_spec

T = TypeVar("T")

KINDS = {"chip": ("chips", ChipSpec), "system": ("systems", SystemSpec), "model": ("models", ModelSpec)}


def builtin_dir() -> Path:
    return Path(str(resources.files("hwspecs")))


def _spec_id(kind: str, spec) -> str:
    return spec.name if kind == "model" else spec.id


@dataclass
class _Index(Generic[T]):
    kind: str
    by_id: dict[str, T] = field(default_factory=dict)
    alias: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.by_id) + sorted(self.alias)


def _load_folder(kind: str, folder: Path) -> _Index:
    sub, model = KINDS[kind]
    idx: _Index = _Index(kind)
    d = folder / sub
    if not d.is_dir():
        return idx
    for path in sorted(d.glob("*.y*ml")):
        spec = load_spec(model, path)
        sid = _spec_id(kind, spec)
        for key in [sid, *spec.aliases]:
            prev = idx.origin.get(key) or (idx.origin.get(idx.alias[key]) if key in idx.alias else None)
            if prev is not None:
                raise SpecError(str(path), "id" if key == sid else "aliases",
                                f"{kind} id/alias '{key}' is already defined in {prev}")
        idx.by_id[sid] = spec
        idx.origin[sid] = str(path)
        for a in spec.aliases:
            idx.alias[a] = sid
    return idx


def _check_layout(folder: Path) -> None:
    """Refuse a spec folder whose YAML files sit at its top level: they would be ignored."""
    stray = sorted(p.name for p in folder.glob("*.y*ml")
                   if p.suffix in (".yaml", ".yml") and p.name not in ("efficiency.yaml", "efficiency.yml"))
    if stray:
        shown = ", ".join(stray[:3]) + (f" and {len(stray) - 3} more" if len(stray) > 3 else "")
        raise SpecError(str(folder), None,
                        f"YAML files at the top level ({shown}) are not read: put chip specs in "
                        f"{folder / 'chips'}, systems in {folder / 'systems'}, models in {folder / 'models'}")


class Catalog:
    """All specs visible to one command. Cheap to build; folders load on first use.

    ``spec_dirs`` are user folders (layout chips/, systems/, models/) searched before the
    built-in catalog; ``use_env`` adds the folders in ``SUANLI_SPEC_PATH``.

    >>> from estimator import Catalog
    >>> cat = Catalog(use_env=False)
    >>> cat.chip("h100").id, cat.system_for(cat.chip("h100"), None).id
    ('h100-sxm', 'dgx-h100')
    >>> cat.provenance("chip", cat.chip("h100"))["user_spec"]
    False
    """

    def __init__(self, spec_dirs: list[str | os.PathLike] | None = None, use_env: bool = True):
        dirs: list[Path] = [Path(d) for d in (spec_dirs or [])]
        if use_env and os.environ.get("SUANLI_SPEC_PATH"):
            dirs += [Path(d) for d in os.environ["SUANLI_SPEC_PATH"].split(os.pathsep) if d]
        for d in dirs:
            if not d.is_dir():
                raise SpecError(str(d), None, "spec folder does not exist or is not a directory")
            _check_layout(d)
        self.user_dirs = dirs
        self._layers: dict[str, list[_Index]] = {}
        self._eff: EfficiencyFile | None = None

    # -- loading -----------------------------------------------------------------------
    def _indexes(self, kind: str) -> list[_Index]:
        if kind not in self._layers:
            layers = [_load_folder(kind, d) for d in self.user_dirs]
            layers.append(_load_folder(kind, builtin_dir()))
            self._layers[kind] = layers
        return self._layers[kind]

    def all(self, kind: str) -> list:
        """Every spec of a kind, user folders shadowing built-ins, sorted by id."""
        out: dict[str, object] = {}
        for idx in reversed(self._indexes(kind)):
            out.update(idx.by_id)
        return [out[k] for k in sorted(out)]

    def origin(self, kind: str, sid: str) -> str:
        for idx in self._indexes(kind):
            if sid in idx.by_id:
                return idx.origin[sid]
        return ""

    def provenance(self, kind: str, spec) -> dict:
        """Where a spec came from: ``{"file", "user_spec", "replaces"}``.

        ``replaces`` lists the built-in specs ({"id", "file"}) that this user spec hides (same
        id, or an alias equal to a built-in id or alias); empty for built-ins and for specs
        read from a path."""
        sid = _spec_id(kind, spec)
        layers = self._indexes(kind)
        builtin = layers[-1]
        for idx in layers[:-1]:
            if idx.by_id.get(sid) is spec:
                hidden = []
                for key in [sid, *spec.aliases]:
                    bid = key if key in builtin.by_id else builtin.alias.get(key)
                    if bid is not None and all(h["id"] != bid for h in hidden):
                        hidden.append({"id": bid, "file": builtin.origin[bid]})
                return {"file": idx.origin[sid], "user_spec": True, "replaces": hidden}
        if builtin.by_id.get(sid) is spec:
            return {"file": builtin.origin[sid], "user_spec": False, "replaces": []}
        return {"file": None, "user_spec": True, "replaces": []}

    def get(self, kind: str, name: str):
        """Resolve an id, alias or YAML path; raise UnknownIdError with close matches."""
        key = name.strip()
        low = key.lower()
        for idx in self._indexes(kind):
            if low in idx.by_id:
                return idx.by_id[low]
            if low in idx.alias:
                return idx.by_id[idx.alias[low]]
        p = Path(key)
        if key.endswith((".yaml", ".yml")) or os.sep in key or p.is_file():
            if p.exists():
                return load_spec(KINDS[kind][1], p)
            raise SpecError(key, None, "file not found")
        names: set[str] = set()
        for idx in self._indexes(kind):
            names.update(idx.names())
        close = difflib.get_close_matches(low, sorted(names), n=3, cutoff=0.5)
        prefix = sorted(n for n in names if n.startswith(low) and n not in close)
        raise UnknownIdError(kind, key, (close + prefix)[:3])

    def chip(self, name: str) -> ChipSpec:
        return self.get("chip", name)

    def system(self, name: str) -> SystemSpec:
        return self.get("system", name)

    def model(self, name: str) -> ModelSpec:
        return self.get("model", name)

    def system_for(self, chip: ChipSpec, system: str | None) -> SystemSpec:
        """The named system, or the chip's default one. Any chip may be placed in any system
        (a what-if); training results note when the system normally holds another chip."""
        if system:
            return self.system(system)
        if not chip.default_system:
            raise SpecError(self.origin("chip", chip.id) or chip.id, "default_system",
                            f"chip '{chip.id}' has no default system; pass --system")
        return self.system(chip.default_system)

    # -- efficiency ---------------------------------------------------------------------
    def efficiency(self) -> EfficiencyFile:
        if self._eff is None:
            path = builtin_dir() / "efficiency.yaml"
            for d in self.user_dirs:
                if (d / "efficiency.yaml").is_file():
                    path = d / "efficiency.yaml"
                    break
            self._eff = load_spec(EfficiencyFile, path)
        return self._eff


_default: Catalog | None = None


def default_catalog() -> Catalog:
    """A process-wide catalog honouring SUANLI_SPEC_PATH (for notebook use)."""
    global _default
    if _default is None:
        _default = Catalog()
    return _default
