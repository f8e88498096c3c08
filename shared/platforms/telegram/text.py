"""Telegram counts text in UTF-16 code units: at most 4096 per message."""

from __future__ import annotations

MESSAGE_LIMIT = 4096


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (characters outside the Basic Multilingual Plane count twice)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-16 units, at a paragraph, line or word
    boundary where one is near the end of the part, never inside a character."""
    parts: list[str] = []
    while utf16_len(text) > limit:
        fit = _longest_prefix(text, limit)
        cut = _boundary(text, fit)
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n ")
    if text or not parts:
        parts.append(text)
    return [part for part in parts if part]


def _longest_prefix(text: str, limit: int) -> int:
    """How many characters fit in ``limit`` units."""
    units = 0
    for index, character in enumerate(text):
        units += 2 if ord(character) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _boundary(text: str, fit: int) -> int:
    """The best place to cut at or before ``fit``: a paragraph, a line, then a space, in its last fifth."""
    floor = fit - fit // 5
    for separator in ("\n\n", "\n", " "):
        found = text.rfind(separator, floor, fit)
        if found > 0:
            return found + len(separator)
    return fit
