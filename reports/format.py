"""Display formatting for report cells: numbers, times, untrusted text with truncation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from runreview.reports.text import (
    MAX_CELL_CHARS,
    alterations,
    cell,
    clean_text,
    full_hash,
    was_truncated,
)

#: Shown for a missing or undefined number (NaN); the report says what it means nearby.
MISSING = "\u2014"
#: Non-zero numbers smaller than this in magnitude are shown as "< 0.0001" / "> -0.0001".
SMALLEST = 1e-4


def num(value: Any, digits: int = 6) -> str:
    """A number for people: ``digits`` significant digits in plain notation (never ``e-05``),
    trailing zeros dropped; tiny non-zero values as ``< 0.0001`` (``> -0.0001``), NaN as
    :data:`MISSING`, infinities spelled out, a missing value blank."""
    if value is None:
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return clean_text(value)
    if math.isnan(number):
        return MISSING
    if math.isinf(number):
        return "+inf" if number > 0 else "-inf"
    if number == 0:
        return "0"
    if abs(number) < SMALLEST:
        return f"< {SMALLEST:.4f}" if number > 0 else f"> -{SMALLEST:.4f}"
    rounded = float(f"{number:.{digits}g}")
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    text = f"{rounded:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def signed(value: Any, digits: int = 4) -> str:
    """A delta with its sign, formatted like :func:`num`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    text = num(number, digits)
    if math.isnan(number) or math.isinf(number) or text.startswith(("-", "<", ">")):
        return text
    return "\u00b10" if number == 0 else f"+{text}"


def when(value: Any) -> str:
    """A UTC time as ``YYYY-MM-DD HH:MM UTC`` (empty when missing)."""
    if value is None or value is pd.NaT:
        return ""
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return ""
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def day(value: datetime | None) -> str:
    """A date as ``YYYY-MM-DD``."""
    return "" if value is None else pd.Timestamp(value).strftime("%Y-%m-%d")


@dataclass
class Cells:
    """Makes untrusted values printable and remembers which were cut or altered (appendix).

    ``truncated`` lists one entry per value shown shortened or with characters replaced:
    where it was, its length, the SHA-256 of the original and what was done to it.
    """

    limit: int = MAX_CELL_CHARS
    truncated: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, value: Any, where: str = "", limit: int | None = None) -> str:
        """``value`` cleaned and cut at the limit with a visible marker."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        size = limit or self.limit
        notes = alterations(value)
        if was_truncated(value, size):
            notes.insert(0, "shortened")
        if notes:
            self.note(where, value, "; ".join(notes))
        return cell(value, size)

    def note(self, where: str, value: Any, what: str) -> None:
        """Record a value shown other than in full (``what`` says how)."""
        self.truncated.append(
            {
                "where": clean_text(where)[:200],
                "chars": len(str(value)),
                "sha256": full_hash(value),
                "what": what,
            }
        )


def run_label(row: Any, cells: Cells) -> str:
    """A run's display name (its name, else its id), cleaned."""
    name = row.get("run_name") if hasattr(row, "get") else None
    if name is None or (isinstance(name, float) and math.isnan(name)) or name == "":
        name = row["run_id"]
    return cells(name, f"run name of {row['run_id']}", limit=80)
