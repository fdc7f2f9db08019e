"""Safe YAML reading with one-line, file-and-field errors.

Spec files are read as regular files only (never a FIFO or a device such as /dev/zero), with the
size cap enforced while reading. Duplicate keys are refused (PyYAML keeps the last one
silently), and numbers such as ``1e308`` or ``1.0e308`` read as numbers (YAML 1.2; PyYAML's
YAML 1.1 rules would make them strings).
"""
from __future__ import annotations

import os
import re
import stat
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from estimator.errors import SpecError

try:  # the C parser is ~10x faster; both loaders are "safe" (no arbitrary objects)
    _Base = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Base = yaml.SafeLoader

#: spec files larger than this are refused (a hand-written spec is a few KB)
MAX_SPEC_BYTES = 1_000_000


class _DuplicateKey(Exception):
    def __init__(self, key, mark):
        self.key = key
        self.mark = mark


class _Loader(_Base):
    """Safe loader that refuses duplicate keys and reads YAML 1.2 floats (1e308, 1.0e308)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    dup = key in seen
                except TypeError:  # unhashable key: SafeConstructor reports it
                    dup = False
                if dup:
                    raise _DuplicateKey(key, key_node.start_mark)
                try:
                    seen.add(key)
                except TypeError:
                    pass
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 core-schema floats that YAML 1.1 leaves as strings: an exponent without a sign or a
# mantissa without a dot. Integers (no dot, no exponent) keep their own resolver.
_FLOAT_12 = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))

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


def read_regular_file(path: str | os.PathLike, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or SpecError naming the file.

    Refuses directories, FIFOs, sockets and devices (/dev/zero, /dev/urandom would never end)
    before opening, and stops reading at ``limit + 1`` bytes whatever the file claims."""
    name = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SpecError(name, None, "file not found") from None
    except OSError as e:
        raise SpecError(name, None, f"cannot read file ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise SpecError(name, None, f"is a directory, expected a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise SpecError(name, None, f"not a regular file (a device, FIFO or socket), expected a {what}")
    if st.st_size > limit:
        raise SpecError(name, None, f"file too large ({st.st_size} bytes; limit {limit})")
    try:
        # O_NONBLOCK: should the path be swapped for a FIFO after the check, open() must not hang
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise SpecError(name, None, f"cannot read file ({e.strerror or e})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise SpecError(name, None, f"not a regular file (a device, FIFO or socket), expected a {what}")
        try:
            raw = f.read(limit + 1)
        except OSError as e:
            raise SpecError(name, None, f"cannot read file ({e.strerror or e})") from None
    if len(raw) > limit:
        raise SpecError(name, None, f"file too large (over {limit} bytes)")
    return raw


def read_yaml_mapping(path: str | os.PathLike) -> dict:
    """Read one YAML file that must hold a mapping. Raises SpecError naming the file."""
    name = str(path)
    raw = read_regular_file(path, MAX_SPEC_BYTES, "YAML file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(name, None, f"not UTF-8 text (bad byte at offset {e.start})") from None
    return parse_yaml_mapping(text, name)


def parse_yaml_mapping(text: str, name: str) -> dict:
    try:
        data = yaml.load(text, Loader=_Loader)
    except _DuplicateKey as e:
        raise SpecError(name, str(e.key), f"duplicate key at line {e.mark.line + 1} "
                                          "(each key may appear once)") from None
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
