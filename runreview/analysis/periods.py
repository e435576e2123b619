"""Review periods: "since 7d", and which runs started in a period, before or after it.

Nothing here reads the clock: callers pass ``now``. Every time returned is UTC; a naive
time (given or parsed) is taken to be UTC.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from runreview.contract import RUN_KEY_COLUMNS

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


def utc_timestamp(moment: datetime | pd.Timestamp | str) -> pd.Timestamp:
    """``moment`` as a UTC timestamp (naive means UTC)."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def before(frame: pd.DataFrame, column: str, moment: Any) -> pd.Series:
    """True for rows whose time in ``column`` is before ``moment`` (missing times: False)."""
    return pd.to_datetime(frame[column], utc=True) < moment


def runs_until(runs: pd.DataFrame, until: Any) -> pd.DataFrame:
    """Runs started before ``until`` (undated runs are kept)."""
    start = pd.to_datetime(runs["start_time"], utc=True)
    return runs[start.isna() | (start < pd.Timestamp(until))]


def runs_in_period(runs: pd.DataFrame, since: Any, until: Any) -> pd.DataFrame:
    """Runs started in ``[since, until)`` (all dated runs before ``until`` without since),
    by start time."""
    start = pd.to_datetime(runs["start_time"], utc=True)
    mask = start < pd.Timestamp(until)
    if since is not None:
        mask &= start >= pd.Timestamp(since)
    return runs[mask.fillna(False)].sort_values("start_time", kind="mergesort")


def run_periods(runs: pd.DataFrame, split: pd.Timestamp) -> pd.DataFrame:
    """Run key, start time and ``period``: ``before`` / ``after`` ``split`` by start time
    (``unknown`` without one)."""
    start = pd.to_datetime(runs["start_time"], utc=True)
    period = np.where(start.isna(), "unknown", np.where(start < split, "before", "after"))
    frame = runs[RUN_KEY_COLUMNS].copy()
    frame["start_time"] = start
    frame["period"] = period
    return frame
