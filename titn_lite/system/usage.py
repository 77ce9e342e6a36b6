"""Mistakes in what was asked (a setting, a name, a path), told apart from bugs.

A ``UsageError`` says what was wrong and what to do instead; the ``titn-lite`` command prints
it as one line and exits with status 2. Every other exception is a bug or a failure of the
machine, and keeps its traceback. It subclasses ``ValueError``, so ``except ValueError``
around the kit's calls still catches it.
"""

from __future__ import annotations

from typing import Any


class UsageError(ValueError):
    """A value the user gave is not one the kit can use; the message says what would be."""


def check_positive_int(name: str, value: Any, *, unit: str = "", minimum: int = 1) -> int:
    """``value`` if it is a whole number of at least ``minimum`` (``True`` is not one),
    else ``UsageError`` naming the setting. Returns the value, so a check reads as an assignment."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive whole number" if minimum == 1 else f"a whole number of at least {minimum}"
        raise UsageError(f"{name} must be {what}{f' of {unit}' if unit else ''}, got {value!r}")
    return value
