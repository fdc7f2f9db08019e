"""The spec catalog: built-in chips, systems and models, plus user spec folders.

Lookup order for ``--chip/--system/--model NAME``:

1. an id or alias from a user spec folder (``--spec-dir DIR`` first, then each folder in
   ``SUANLI_SPEC_PATH``, separated by ``os.pathsep``); a user spec with a built-in id
   replaces the built-in one;
2. an id or alias from the built-in catalog (``hwspecs/`` shipped with the package);
3. a path to a YAML file (for models also a Hugging Face ``config.json``, or a model
   folder holding one: see :mod:`estimator.importers.hf_config`).

A spec folder uses the built-in layout: ``chips/*.yaml``, ``systems/*.yaml``,
``models/*.yaml`` (and optionally ``efficiency.yaml``). Two files in one folder that claim the
same id or alias are an error, and so is a folder holding spec YAML files at its top level
(they would be ignored). :meth:`Catalog.provenance` says which file a spec came from and
which built-in spec it replaces.
"""
from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Generic, TypeVar

from estimator.errors import SpecError, UnknownIdError
from estimator.specs import ChipSpec, EfficiencyFile, ModelSpec, StackFile, StackSpec, SystemSpec
from estimator.yamlio import MAX_SPEC_BYTES, load_spec, read_regular_file

T = TypeVar("T")

KINDS = {"chip": ("chips", ChipSpec), "system": ("systems", SystemSpec), "model": ("models", ModelSpec)}


def builtin_dir() -> Path:
    return Path(str(resources.files("hwspecs")))


def _spec_id(kind: str, spec) -> str:
    return spec.name if kind == "model" else spec.id


_ID = r"[a-z0-9][a-z0-9.\-]*"
_ID_LINE = {k: re.compile(rf"^{key}:[ \t]*(['\"]?)({_ID})\1[ \t]*(?:#.*)?$", re.M)
            for k, key in (("chip", "id"), ("system", "id"), ("model", "name"))}
_ALIAS_LINE = re.compile(r"^aliases:[ \t]*(.*)$", re.M)


def _scan(kind: str, path: Path) -> tuple[str, list[str]] | None:
    """A spec's id and aliases read off its text without parsing it (what lookups need);
    None unless both are plainly written (``id: x`` and ``aliases: [a, b]`` lines)."""
    try:
        text = read_regular_file(path, MAX_SPEC_BYTES).decode("utf-8")
    except (SpecError, UnicodeDecodeError):
        return None
    ids = _ID_LINE[kind].findall(text)
    if len(ids) != 1 or "\n---" in text or text.startswith("---"):
        return None
    found = _ALIAS_LINE.findall(text)
    if not found:
        return ids[0][1], []
    v = found[0].split("#", 1)[0].strip() if len(found) == 1 else ""
    if not (v.startswith("[") and v.endswith("]")):
        return None
    items = [x.strip().strip("'\"") for x in v[1:-1].split(",") if x.strip()]
    if not all(re.fullmatch(_ID, x) for x in items):
        return None
    return ids[0][1], items


class _Specs(Mapping):
    """id -> spec, each file validated on first use (a lookup validates one file, a listing
    all of them)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._path: dict[str, Path] = {}
        self._aliases: dict[str, list[str]] = {}
        self._spec: dict[str, object] = {}

    def add(self, sid: str, path: Path, aliases: list[str], spec=None) -> None:
        self._path[sid] = path
        self._aliases[sid] = aliases
        if spec is not None:
            self._spec[sid] = spec

    def __getitem__(self, sid: str):
        if sid not in self._spec:
            path = self._path[sid]
            spec = load_spec(KINDS[self.kind][1], path)
            if _spec_id(self.kind, spec) != sid or list(spec.aliases) != self._aliases[sid]:
                raise SpecError(str(path), "id", "id and aliases must each be on one line of their own "
                                                 "(id: x; aliases: [a, b])")
            self._spec[sid] = spec
        return self._spec[sid]

    def __iter__(self):
        return iter(self._path)

    def __len__(self) -> int:
        return len(self._path)

    def __contains__(self, sid) -> bool:
        return sid in self._path


@dataclass
class _Index(Generic[T]):
    kind: str
    by_id: _Specs = None  # type: ignore[assignment]
    alias: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.by_id is None:
            self.by_id = _Specs(self.kind)

    def names(self) -> list[str]:
        return sorted(self.by_id) + sorted(self.alias)


def _load_folder(kind: str, folder: Path) -> _Index:
    sub, model = KINDS[kind]
    idx: _Index = _Index(kind)
    d = folder / sub
    if not d.is_dir():
        return idx
    for path in sorted(d.glob("*.y*ml")):
        scanned = _scan(kind, path)
        if scanned is None:   # not plainly written: validate now, as before
            spec = load_spec(model, path)
            sid, aliases = _spec_id(kind, spec), list(spec.aliases)
        else:
            spec = None
            sid, aliases = scanned
        for key in [sid, *aliases]:
            prev = idx.origin.get(key) or (idx.origin.get(idx.alias[key]) if key in idx.alias else None)
            if prev is not None:
                raise SpecError(str(path), "id" if key == sid else "aliases",
                                f"{kind} id/alias '{key}' is already defined in {prev}")
        idx.by_id.add(sid, path, aliases, spec)
        idx.origin[sid] = str(path)
        for a in aliases:
            idx.alias[a] = sid
    return idx


#: top-level files a spec folder may hold (efficiency/stacks/uncertainty: calibrate's output)
TOP_LEVEL_SPECS = {f"{n}.{x}" for n in ("efficiency", "stacks", "uncertainty") for x in ("yaml", "yml")}


def _check_layout(folder: Path) -> None:
    """Refuse a spec folder whose YAML files sit at its top level: they would be ignored."""
    stray = sorted(p.name for p in folder.glob("*.y*ml")
                   if p.suffix in (".yaml", ".yml") and p.name not in TOP_LEVEL_SPECS)
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
        self._stacks: StackFile | None = None
        self._bands = None

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
        if kind == "model":  # a Hugging Face config.json, or a model folder holding one
            from estimator.importers.hf_config import is_hf_config_path, model_from_hf_config

            if is_hf_config_path(key):
                return model_from_hf_config(key)
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
                            f"chip '{chip.id}' has no default system; name one (system=... / --system)")
        return self.system(chip.default_system)

    # -- efficiency ---------------------------------------------------------------------
    def spec_file(self, name: str) -> Path:
        """The file a top-level spec (efficiency.yaml, stacks.yaml) comes from: the first user
        folder holding one, else the built-in one."""
        for d in self.user_dirs:
            if (d / name).is_file():
                return d / name
        return builtin_dir() / name

    def efficiency(self) -> EfficiencyFile:
        if self._eff is None:
            self._eff = load_spec(EfficiencyFile, self.spec_file("efficiency.yaml"))
        return self._eff

    # -- software stacks ------------------------------------------------------------------
    def stacks(self) -> StackFile:
        """hwspecs/stacks.yaml, or the first user folder's stacks.yaml (replaces it whole)."""
        if self._stacks is None:
            self._stacks = load_spec(StackFile, self.spec_file("stacks.yaml"))
        return self._stacks

    def uncertainty(self):
        """Residual quantiles behind the p10-p90 bands (uncertainty.yaml, written by
        `suanli calibrate`); an empty table (wide default bands) when there is none."""
        if self._bands is None:
            from estimator.fitting.bands import BandTable

            path = self.spec_file("uncertainty.yaml")
            self._bands = BandTable.load(path) if path.is_file() else BandTable({})
        return self._bands

    def stack(self, name: str | None, eff_class: str) -> tuple[str, StackSpec]:
        """(id, spec) of a training stack by id or alias; None = the default for the class."""
        sf = self.stacks()
        if name and name.strip().lower() == "other":   # a stack the file does not describe
            name = None
        sid = name if name else sf.default_for(eff_class)
        try:
            rid, spec = sf.resolve(sid)
        except KeyError:
            close = difflib.get_close_matches(sid.lower(), sf.names(), n=3, cutoff=0.5)
            raise UnknownIdError("stack", sid, close) from None
        if spec.training is None:
            raise SpecError("stacks", rid, "is not a training stack")
        return rid, spec


    def serving_stack(self, name: str | None, eff_class: str) -> tuple[str, StackSpec]:
        """(id, spec) of a serving stack by id or alias; None = the default for the class."""
        sf = self.stacks()
        sid = name if name else sf.default_serving_for(eff_class)
        if sid is None:
            raise SpecError("stacks", "default_serving", "no default serving stack is defined")
        try:
            rid, spec = sf.resolve(sid)
        except KeyError:
            close = difflib.get_close_matches(sid.lower(), sf.names(), n=3, cutoff=0.5)
            raise UnknownIdError("stack", sid, close) from None
        if spec.serving is None:
            serving = sorted(k for k, v in sf.stacks.items() if v.serving is not None)
            raise SpecError("stacks", rid, "is not a serving stack (serving stacks: "
                            + ", ".join(serving) + ")")
        return rid, spec


_default: Catalog | None = None


def default_catalog() -> Catalog:
    """A process-wide catalog honouring SUANLI_SPEC_PATH (for notebook use)."""
    global _default
    if _default is None:
        _default = Catalog()
    return _default
