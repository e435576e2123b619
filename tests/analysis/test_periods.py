"""Review periods: parsing "since" text against a given now, and splitting runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from runreview.analysis.periods import PeriodError, parse_since, split_period, to_utc

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
            "run_id": ["a", "b", "c", "d", "e"],
            "start_time": [pd.Timestamp(s, tz="UTC") if s else pd.NaT for s in stamps],
        }
    )


def test_split_period_with_end(runs) -> None:
    split = split_period(runs, "2026-03-03", "2026-03-08")
    assert split.before["run_id"].tolist() == ["a"]
    assert split.in_period["run_id"].tolist() == ["b"]  # since is inclusive
    assert split.after["run_id"].tolist() == ["d", "e"]  # until is exclusive
    assert split.undated["run_id"].tolist() == ["c"]
    assert split.description() == (
        "Runs by start_time from 2026-03-03 00:00 UTC until 2026-03-08 00:00 UTC: "
        "1 in period, 1 before, 2 after, 1 without start_time"
    )


def test_split_period_open_ended_from_parse_since(runs) -> None:
    split = split_period(runs, parse_since("7d", NOW))
    assert split.since == datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert split.in_period["run_id"].tolist() == ["d", "e"]
    assert split.before["run_id"].tolist() == ["a", "b"]
    assert split.after.empty and split.until is None
    assert split.description() == (
        "Runs by start_time from 2026-03-03 12:00 UTC: 2 in period, 2 before, 1 without start_time"
    )


def test_split_period_rejects_reversed_bounds_and_unknown_column(runs) -> None:
    with pytest.raises(PeriodError, match="ends"):
        split_period(runs, "2026-03-08", "2026-03-01")
    with pytest.raises(ValueError, match="end_time"):
        split_period(runs, "2026-03-01", column="end_time")
