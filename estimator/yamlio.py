"""Safe YAML reading with one-line, file-and-field errors."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from estimator.errors import SpecError

try:  # the C loader is ~10x faster; both are "safe" (no arbitrary objects)
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

#: spec files larger than this are refused (a hand-written spec is a few KB)
MAX_SPEC_BYTES = 1_000_000

M = TypeVar("M", bound=BaseModel)


def _reject_shared_nodes(obj: Any, path: str) -> None:
    """Aliases make YAML 'billion laughs' bombs; a spec never needs them, so refuse any."""
    seen: set[int] = set()
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, (dict, list)):
            if id(o) in seen:
                raise SpecError(path, None, "YAML anchors/aliases are not allowed in spec files")
            seen.add(id(o))
            stack.extend(o.values() if isinstance(o, dict) else o)


def read_yaml_mapping(path: str | os.PathLike) -> dict:
    """Read one YAML file that must hold a mapping. Raises SpecError naming the file."""
    p = Path(path)
    name = str(path)
    if p.is_dir():
        raise SpecError(name, None, "is a directory, expected a YAML file")
    try:
        size = p.stat().st_size
    except OSError as e:
        raise SpecError(name, None, f"cannot read file ({e.strerror or e})") from None
    if size > MAX_SPEC_BYTES:
        raise SpecError(name, None, f"file too large ({size} bytes; limit {MAX_SPEC_BYTES})")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise SpecError(name, None, f"cannot read file ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(name, None, f"not UTF-8 text (bad byte at offset {e.start})") from None
    return parse_yaml_mapping(text, name)


def parse_yaml_mapping(text: str, name: str) -> dict:
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecError(name, None, f"malformed YAML{where}: {problem}") from None
    except (ValueError, RecursionError, OverflowError) as e:
        raise SpecError(name, None, f"malformed YAML: {e}") from None
    if data is None:
        raise SpecError(name, None, "empty file")
    if not isinstance(data, dict):
        raise SpecError(name, None, f"expected a mapping at top level, got {type(data).__name__}")
    _reject_shared_nodes(data, name)
    return data


def format_validation_error(err: ValidationError) -> tuple[str, str]:
    """(field path, message) of the first error, with a count of the others."""
    errs = err.errors()
    first = errs[0]
    loc = ".".join(str(x) for x in first["loc"]) or None
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    elif first["type"] == "missing":
        msg = "required field missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    inp = first.get("input")
    if first["type"] not in ("missing", "extra_forbidden") and isinstance(inp, (int, float, str)):
        msg += f" (got {inp!r})"
    if len(errs) > 1:
        msg += f" (+{len(errs) - 1} more error{'s' if len(errs) > 2 else ''})"
    return loc or "", msg


def validate_mapping(model: type[M], data: dict, name: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        loc, msg = format_validation_error(e)
        raise SpecError(name, loc or None, msg) from None


def load_spec(model: type[M], path: str | os.PathLike) -> M:
    return validate_mapping(model, read_yaml_mapping(path), str(path))
