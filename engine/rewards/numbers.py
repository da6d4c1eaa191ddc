"""Reading numeric answers ("42", "-3.5", "1,234.5", "3,5", "2e3") the same way for every scorer.

Commas are resolved before anything else: a comma that groups digits in threes ("1,000",
"12,345.67") is a thousands separator and is dropped; a single comma anywhere else ("3,5") is a
decimal comma and becomes a point. The released VideoRFT code counted every comma as a decimal
mark and then deleted it, so "1,000" lost against "1000" and "3,5" read as 35; both are fixed
here on purpose.
"""

from __future__ import annotations

import math
import re

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-", "\uff0d": "-"})


def normalise_number(text: str) -> str:
    """`text` stripped, with Unicode minus signs made ASCII and commas resolved (see module doc)."""
    t = text.strip().translate(_MINUS_SIGNS)
    if _GROUPED.fullmatch(t):
        return t.replace(",", "")
    if t.count(",") == 1 and "." not in t:
        return t.replace(",", ".")
    return t


def parse_number(text: str) -> float | None:
    """The finite float written in `text` (after `normalise_number`), or None.

    Only a plain number is accepted: units, percent signs, words and "nan"/"inf" give None, so a
    malformed answer scores 0 rather than raising inside a training step.
    """
    t = normalise_number(text)
    if not _NUMBER.fullmatch(t):
        return None
    value = float(t)
    return value if math.isfinite(value) else None


def has_decimal_point(text: str) -> bool:
    """True when the normalised number is written with a decimal point ("3.0", "3,5" but not "1,000")."""
    return "." in normalise_number(text)
