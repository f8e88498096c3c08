"""Checks on free text that every request body applies the same way."""

from __future__ import annotations


def no_nul(value: str) -> str:
    """Refuse NUL (U+0000): PostgreSQL cannot store it in text."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


def printable(value: str) -> str:
    """Refuse control characters in names and other one-line text."""
    if any(ch < " " or ch == "\x7f" for ch in value):
        raise ValueError("must not contain control characters")
    return value
