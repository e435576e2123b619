"""Review periods: parsing "since" text against a given now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from runreview.analysis.periods import (
    PeriodError,
    parse_since,
    run_periods,
    runs_in_period,
    runs_until,
    to_utc,
    utc_timestamp,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", datetime(2026, 3, 3, 12, 0, tzinfo=UTC)),
        ("2w", datetime(2026, 2, 24, 12, 0, tzinfo=UTC)),
        ("24h", datetime(2026, 3, 9, 12, 0, tzinfo=UTC)),
        ("90 min", datetime(2026, 3, 10, 10, 30, tzinfo=UTC)),
        ("30m", datetime(2026, 3, 10, 11, 30, tzinfo=UTC)),
        ("45s", datetime(2026, 3, 10, 11, 59, 15, tzinfo=UTC)),
        ("1.5d", datetime(2026, 3, 9, 0, 0, tzinfo=UTC)),
        (" 3 Days ", datetime(2026, 3, 7, 12, 0, tzinfo=UTC)),
        ("0d", NOW),
        ("2026-01-05", datetime(2026, 1, 5, tzinfo=UTC)),
        ("2026-01-05T10:00", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
        ("2026-01-05 10:00:30", datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC)),
        ("2026-01-05T10:00+02:00", datetime(2026, 1, 5, 8, 0, tzinfo=UTC)),
        ("2026-01-05T10:00Z", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    result = parse_since(text, NOW)
    assert result == expected
    assert result.utcoffset() == timedelta(0)


def test_naive_now_is_utc_and_aware_now_is_converted() -> None:
    assert parse_since("1d", datetime(2026, 3, 10, 12, 0)) == datetime(2026, 3, 9, 12, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    now = datetime(2026, 3, 10, 14, 0, tzinfo=plus_two)
    assert parse_since("1h", now) == datetime(2026, 3, 10, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["7x", "yesterday", "", "-3d", "7 d ago", "3 months", "d7"])
def test_unreadable_since_says_what_is_accepted(text: str) -> None:
    with pytest.raises(PeriodError, match="24h, 7d or 2w") as caught:
        parse_since(text, NOW)
    assert repr(text) in str(caught.value)


def test_to_utc() -> None:
    assert to_utc("2026-01-01") == datetime(2026, 1, 1, tzinfo=UTC)
    assert to_utc(pd.Timestamp("2026-01-01 03:00", tz="Europe/Paris")) == datetime(
        2026, 1, 1, 2, 0, tzinfo=UTC
    )


@pytest.fixture
def runs() -> pd.DataFrame:
    stamps = ["2026-03-01", "2026-03-03", None, "2026-03-08", "2026-03-09"]
    return pd.DataFrame(
        {
            "source_uri": "file:///logs",
            "run_id": ["a", "b", "c", "d", "e"],
            "start_time": [pd.Timestamp(s, tz="UTC") if s else pd.NaT for s in stamps],
        }
    )


def test_runs_until_keeps_undated_runs_and_the_period_is_half_open(runs) -> None:
    until = pd.Timestamp("2026-03-08", tz="UTC")
    assert runs_until(runs, until)["run_id"].tolist() == ["a", "b", "c"]
    since = pd.Timestamp("2026-03-03", tz="UTC")
    assert runs_in_period(runs, since, until)["run_id"].tolist() == ["b"]  # since inclusive
    assert runs_in_period(runs, None, until)["run_id"].tolist() == ["a", "b"]  # dated only


def test_run_periods_split_by_start_time(runs) -> None:
    frame = run_periods(runs, utc_timestamp("2026-03-03"))
    assert frame["period"].tolist() == ["before", "after", "unknown", "after", "after"]
