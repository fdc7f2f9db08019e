"""Typed errors. Every user-facing failure is one of these and renders as one line.

Bugs are ordinary exceptions; bad input (spec files, flags, CSV rows, impossible plans)
raises a subclass of :class:`SuanliError`, which the CLI prints as one line with exit code 2.
"""
from __future__ import annotations


class SuanliError(Exception):
    """Base class for errors caused by user input: catch this to handle every one of them.

    >>> from estimator import SuanliError, estimate_training
    >>> try:
    ...     estimate_training("llama3-8b", "no-such-chip", chips=8, gbs=8, seq_len=4096)
    ... except SuanliError as e:
    ...     print(type(e).__name__)
    UnknownIdError
    """


class SpecError(SuanliError):
    r"""A spec file (chip, system, model, efficiency) is malformed. Names the file and field.

    >>> import tempfile, os
    >>> from estimator import Catalog, SpecError
    >>> path = os.path.join(tempfile.mkdtemp(), "chip.yaml")
    >>> _ = open(path, "w").write("id: x\nid: y\n")
    >>> try:
    ...     Catalog(use_env=False).chip(path)
    ... except SpecError as e:
    ...     print(e.field, "|", e.message)
    id | duplicate key at line 2 (each key may appear once)
    """

    def __init__(self, path: str, field: str | None, message: str):
        self.path = str(path)
        self.field = field
        self.message = message
        where = f"{self.path}: {field}: " if field else f"{self.path}: "
        super().__init__(where + message)


class UnknownIdError(SuanliError):
    """An id that is neither in the catalog nor a readable file; suggests close ids.

    >>> from estimator import Catalog, UnknownIdError
    >>> try:
    ...     Catalog(use_env=False).chip("h10")
    ... except UnknownIdError as e:
    ...     print(e.kind, e.name, "h100" in e.suggestions)
    chip h10 True
    """

    def __init__(self, kind: str, name: str, suggestions: list[str]):
        self.kind = kind
        self.name = name
        self.suggestions = suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown {kind} '{name}'{hint}")


class PlanError(SuanliError):
    """A parallel plan breaks a divisibility or size rule (names the rule).

    >>> from estimator import PlanError, estimate_training
    >>> try:
    ...     estimate_training("llama3-8b", "h100", chips=8, gbs=64, seq_len=4096, tp=3)
    ... except PlanError as e:
    ...     print("tp" in str(e))
    True
    """


class InfeasibleError(SuanliError):
    """Nothing in the search space fits or meets the target; the message says why.

    >>> from estimator import InfeasibleError, estimate_training
    >>> try:
    ...     estimate_training("llama3-405b", "rtx-4090", chips=8, gbs=8, seq_len=4096)
    ... except InfeasibleError as e:
    ...     print("does not fit" in str(e))
    True
    """


class InputError(SuanliError):
    """A bad argument value (negative count, NaN, unparsable token string...).

    ``param`` names the library parameter when the message starts with it (``"chips must be
    positive (got 0)"``); the command line rewrites that name as its flag (``--chips``).

    >>> from estimator import InputError, estimate_training
    >>> try:
    ...     estimate_training("llama3-8b", "h100", chips=8, gbs=64, seq_len=4096, tokens=float("nan"))
    ... except InputError as e:
    ...     print(e.param, "|", e)
    tokens | tokens must be a finite number (got nan)
    """

    def __init__(self, message: str, param: str | None = None):
        self.param = param
        super().__init__(message)
