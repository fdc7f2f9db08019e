"""Typed errors. Every user-facing failure is one of these and renders as one line.

Bugs are ordinary exceptions; bad input (spec files, flags, CSV rows, impossible plans)
raises a subclass of :class:`SuanliError`, which the CLI prints as one line with exit code 2.
"""
from __future__ import annotations


class SuanliError(Exception):
    """Base class for errors caused by user input."""


class SpecError(SuanliError):
    """A spec file (chip, system, model, efficiency) is malformed. Names the file and field."""

    def __init__(self, path: str, field: str | None, message: str):
        self.path = str(path)
        self.field = field
        self.message = message
        where = f"{self.path}: {field}: " if field else f"{self.path}: "
        super().__init__(where + message)


class UnknownIdError(SuanliError):
    """An id that is neither in the catalog nor a readable file."""

    def __init__(self, kind: str, name: str, suggestions: list[str]):
        self.kind = kind
        self.name = name
        self.suggestions = suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown {kind} '{name}'{hint}")


class PlanError(SuanliError):
    """A parallel plan breaks a divisibility or size rule (names the rule)."""


class InfeasibleError(SuanliError):
    """Nothing in the search space fits or meets the target; the message says why."""


class InputError(SuanliError):
    """A bad argument value (negative count, NaN, unparsable token string...).

    ``param`` names the library parameter when the message starts with it (``"chips must be
    positive (got 0)"``); the command line rewrites that name as its flag (``--chips``).
    """

    def __init__(self, message: str, param: str | None = None):
        self.param = param
        super().__init__(message)
