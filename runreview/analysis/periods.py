"""Review periods: "since 7d" and the runs started in a period versus before it.

Nothing here reads the clock: callers pass ``now``. Every time returned is UTC; a naive
time (given or parsed) is taken to be UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*")
#: Duration units and their length in seconds ("m" is minutes; months are not accepted).
UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 604800),
}
ACCEPTED = "a duration such as 24h, 7d or 2w (units s, m, h, d, w), or an ISO date/datetime"


class PeriodError(ValueError):
    """A period text that cannot be read; the message says what is accepted."""


def to_utc(moment: datetime | pd.Timestamp | str) -> datetime:
    """``moment`` as an aware UTC datetime (naive means UTC)."""
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def parse_since(text: str, now: datetime) -> datetime:
    """The start of a period from ``text``: ``now`` minus a duration, or a date.

    ``"7d"``, ``"2w"``, ``"24h"``, ``"90 min"``, ``"1.5d"`` count back from ``now``; an ISO
    date (``"2026-01-05"``, midnight) or datetime (``"2026-01-05T10:00"``,
    ``"2026-01-05T10:00+02:00"``, ``"...Z"``) is used as is. Raises ``PeriodError``.
    """
    duration = _DURATION.fullmatch(text)
    if duration:
        unit = UNITS.get(duration.group(2).lower())
        if unit is None:
            raise PeriodError(
                f"unknown time unit {duration.group(2)!r} in {text!r}; use {ACCEPTED}"
            )
        return to_utc(now) - timedelta(seconds=float(duration.group(1)) * unit)
    try:
        return to_utc(datetime.fromisoformat(text.strip()))
    except ValueError as error:
        raise PeriodError(f"cannot read {text!r} as a period start; use {ACCEPTED}") from error


@dataclass(frozen=True)
class PeriodSplit:
    """Runs split by when they started (``column``) relative to ``[since, until)``.

    ``in_period`` started in the period, ``before`` before ``since``, ``after`` at or after
    ``until`` (empty without ``until``), ``undated`` have no time in ``column``.
    """

    since: datetime
    until: datetime | None
    column: str
    in_period: pd.DataFrame
    before: pd.DataFrame
    after: pd.DataFrame
    undated: pd.DataFrame

    def description(self) -> str:
        """One line for a report header."""
        end = f" until {_show(self.until)}" if self.until else ""
        counts = f"{len(self.in_period)} in period, {len(self.before)} before"
        if self.until:
            counts += f", {len(self.after)} after"
        if len(self.undated):
            counts += f", {len(self.undated)} without {self.column}"
        return f"Runs by {self.column} from {_show(self.since)}{end}: {counts}"


def _show(moment: datetime | None) -> str:
    """A UTC time as ``2026-01-05 10:00 UTC``."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def split_period(
    runs: pd.DataFrame,
    since: datetime | pd.Timestamp | str,
    until: datetime | pd.Timestamp | str | None = None,
    column: str = "start_time",
) -> PeriodSplit:
    """Split ``runs`` into those started in ``[since, until)``, before, after and undated."""
    start, end = to_utc(since), None if until is None else to_utc(until)
    if end is not None and end < start:
        raise PeriodError(f"the period ends ({_show(end)}) before it starts ({_show(start)})")
    if column not in runs.columns:
        raise ValueError(f"no column {column!r} in the runs frame to split by")
    stamps = pd.to_datetime(runs[column], utc=True)
    dated = stamps.notna()
    before = dated & (stamps < start)
    after = dated & (stamps >= end) if end is not None else dated & False
    return PeriodSplit(
        since=start,
        until=end,
        column=column,
        in_period=runs[dated & ~before & ~after].copy(),
        before=runs[before].copy(),
        after=runs[after].copy(),
        undated=runs[~dated].copy(),
    )
