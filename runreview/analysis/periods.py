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
#: The accepted forms of a date option, for messages.
DATE_FORMS = "an ISO-8601 date or time (2026-11-20, 2026-11-20T09:00Z)"
SPAN_FORMS = "a span before --now (7d, 2w, 24h)"


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


def parse_time(text: str) -> datetime:
    """An ISO-8601 date (midnight) or date and time, in UTC (naive means UTC).

    Unlike :func:`to_utc` nothing else is read ("today", "Nov 20"): raises ``PeriodError``.
    """
    try:
        return to_utc(datetime.fromisoformat(text.strip()))
    except ValueError as error:
        raise PeriodError(f"{text!r} is not a date; use {DATE_FORMS}") from error


def date_option(option: str, text: str, now: datetime | None = None) -> datetime:
    """The time a date option (``--since``, ``--until``, ``--now``) names.

    With ``now``, a span (``7d``) counts back from it, as for :func:`parse_since`; without,
    only an ISO-8601 date or time is read. Raises ``PeriodError`` with one line naming the
    option, the value and the accepted forms.
    """
    try:
        return parse_since(text, now) if now is not None else parse_time(text)
    except PeriodError:
        forms = f"{DATE_FORMS} or {SPAN_FORMS}" if now is not None else DATE_FORMS
        raise PeriodError(f"{option}: {text!r} is not a date; use {forms}") from None


def short_time(moment: datetime) -> str:
    """``2026-11-20T09:00Z`` (seconds only when there are any), UTC."""
    moment = to_utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ" if moment.second else "%Y-%m-%dT%H:%MZ")


def period_problem(
    since: datetime | None,
    until: datetime,
    now: datetime,
    labels: tuple[str, str, str] = ("--since", "--until", "--now"),
) -> str | None:
    """``None`` for a period that can hold runs; else one line on what is wrong with it.

    A period is wrong when it ends after ``now`` or starts at or after its end. ``labels``
    name the three times as the user wrote them (option and value).
    """
    since_label, until_label, now_label = labels
    if until > now:
        return f"{until_label} is after {now_label}"
    if since is not None and since > now:
        return f"{since_label} is after {now_label}"
    if since is not None and since >= until:
        return f"{since_label} is not before {until_label}"
    return None


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
