"""Option helpers shared by the commands: one validator for every number option, output paths
checked before any work, library parameter names rewritten as flags."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import typer

from estimator.args import check
from estimator.errors import InputError

#: library parameter -> flag, where the flag is not just the name with dashes
PARAM_FLAGS = {
    "mtbf_chip_h": "--mtbf-hours",
    "ckpt_gb_per_s_per_node": "--checkpoint-gb-per-s",
    "equal_power_mw": "--equal-power",
    "ref_chips": "--match",
    "overrides": "--derate",
}


def flag_for(param: str) -> str:
    return PARAM_FLAGS.get(param, "--" + param.replace("_", "-"))


def cli_message(err: Exception) -> str:
    """The error's text with a leading library parameter name written as its flag."""
    msg = str(err)
    param = getattr(err, "param", None)
    if param and msg.startswith(param) and not msg.startswith("--"):
        msg = flag_for(param) + msg[len(param):]
    return msg


def _validator(param: str, flag: str):
    def validate(value):
        if value is None:
            return value
        try:
            check(param, value, label=flag)
        except InputError as e:
            raise typer.BadParameter(str(e)[len(flag):].strip(), param_hint=f"'{flag}'") from None
        return value
    return validate


def number(default: Any, flag: str, help: str, param: str | None = None, **kw):
    """A number option whose value must be finite and within the limit of ``param``
    (estimator.args.LIMITS; default: the flag's name with underscores)."""
    name = param or flag.lstrip("-").replace("-", "_")
    return typer.Option(default, flag, help=help, callback=_validator(name, flag), **kw)


def _describe(e: OSError) -> str:
    return e.strerror or str(e)


def check_output(flag: str, path: Path | None, suffix: str | None = None) -> Path | None:
    """Refuse an output path that cannot be written, before any computing: a directory, a
    missing folder, a device or FIFO (/dev/full), or a place the OS will not let us create a
    file (/proc, /sys, read-only folders). ``-`` (stdout) passes through."""
    if path is None or str(path) == "-":
        return path
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{flag} {p}: is a directory, expected a file name")
    if suffix and p.suffix.lower() != suffix:
        raise InputError(f"{flag} {p}: give a {suffix} file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise InputError(f"{flag} {p}: folder {parent} does not exist")
    if not parent.is_dir():
        raise InputError(f"{flag} {p}: {parent} is not a folder")
    existed = p.exists() or p.is_symlink()
    if existed:
        try:
            mode = os.stat(p).st_mode
        except OSError as e:
            raise InputError(f"{flag} {p}: cannot write ({_describe(e)})") from None
        if not stat.S_ISREG(mode) and str(p) != os.devnull:
            raise InputError(f"{flag} {p}: not a regular file (a device, FIFO or socket)")
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NONBLOCK", 0), 0o666)
    except OSError as e:
        raise InputError(f"{flag} {p}: cannot write ({_describe(e)})") from None
    os.close(fd)
    if not existed:
        try:  # the probe file goes again until the real output is written
            os.unlink(p)
        except OSError:
            pass
    return p


def write_text_output(flag: str, path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (``-``: stdout); a failure is one line naming the flag."""
    if str(path) == "-":
        sys.stdout.write(text)
        return
    try:
        with open(path, "w", newline="") as f:
            f.write(text)
    except OSError as e:
        raise InputError(f"{flag} {path}: cannot write ({_describe(e)})") from None
