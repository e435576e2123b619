"""The spread of a metric across runs per step: range, median, marked run, step ranges."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from runreview.analysis.spread import SPREAD_COLUMNS, spread_frame
from runreview.charts import spread_chart
from runreview.contract import encode_run_key as run_key

URI = "sqlite:///team.db"
TB = "file:///logs"


def history(rows: list[tuple[str, str, str, int, float]]) -> pd.DataFrame:
    """A history frame from (source_uri, run_id, metric, step, value) rows."""
    frame = pd.DataFrame(rows, columns=["source_uri", "run_id", "metric", "step", "value"])
    frame["step"] = frame["step"].astype("int64")
    return frame


def test_range_median_and_run_count_per_step_over_the_chosen_runs_only():
    frame = history(
        [
            (URI, "a", "loss", 0, 1.0),
            (URI, "b", "loss", 0, 3.0),
            (TB, "a", "loss", 0, 2.0),  # same run id in another source: another run
            (URI, "c", "loss", 0, 100.0),  # not chosen
            (URI, "a", "loss", 1, 0.5),
            (URI, "b", "loss", 1, math.nan),  # left out, not low or high
            (TB, "a", "loss", 1, math.inf),
            (URI, "a", "acc", 0, 0.9),  # another metric
        ]
    )
    result = spread_frame(frame, "loss", [(URI, "a"), (URI, "b"), (TB, "a")])
    assert list(result.frame.columns) == SPREAD_COLUMNS
    assert result.frame.to_dict("records") == [
        {"step": 0, "low": 1.0, "median": 2.0, "high": 3.0, "runs": 3},
        {"step": 1, "low": 0.5, "median": 0.5, "high": 0.5, "runs": 1},
    ]
    assert (result.runs, result.points, result.binned) == (3, 4, False)
    assert result.marked.empty and result.marked_label == ""
    assert "across 3 run(s), from 4 points" in result.caption()


def test_the_marked_run_is_its_own_line_and_named_in_the_caption():
    frame = history(
        [(URI, r, "acc", s, v + s) for r, v in (("a", 0.1), ("b", 0.5)) for s in range(3)]
    )
    keys = [(URI, "a"), (URI, "b")]
    result = spread_frame(frame, "acc", keys, marked=(URI, "b"), marked_label="the best run, b")
    assert result.marked.to_dict("list") == {"step": [0, 1, 2], "value": [0.5, 1.5, 2.5]}
    assert result.caption().endswith("the dark line is the best run, b.")
    # A marked run outside the chosen runs is not drawn and not named.
    other = spread_frame(frame, "acc", [(URI, "a")], marked=(URI, "b"), marked_label="b")
    assert other.marked.empty and "dark line" not in other.caption()


def test_many_steps_are_grouped_into_ranges_that_keep_every_extreme():
    steps = np.arange(100_000)
    values = np.sin(steps / 500.0)
    values[61_234] = 50.0  # a spike a downsampled read would miss
    values[7_777] = -50.0
    frame = pd.DataFrame(
        {"source_uri": URI, "run_id": "a", "metric": "loss", "step": steps, "value": values}
    )
    result = spread_frame(frame, "loss", [(URI, "a")], max_steps=500)
    assert result.binned and len(result.frame) == 500 and result.points == 100_000
    assert result.frame["high"].max() == 50.0 and result.frame["low"].min() == -50.0
    assert result.frame["step"].is_monotonic_increasing and result.frame["step"].iloc[0] == 0
    assert result.frame["step"].is_unique
    assert "500 step ranges" in result.caption()


def test_run_keys_cannot_collide():
    assert run_key(("ab", "c")) != run_key(("a", "bc"))
    assert run_key(("a\x00b", "c")) != run_key(("a", "b\x00c"))


def test_no_points_gives_an_empty_frame_and_the_chart_still_builds():
    result = spread_frame(history([]), "loss", [(URI, "a")])
    assert result.frame.empty and result.runs == 0
    spec = spread_chart(spread_frame(history([(URI, "a", "loss", 0, 1.0)]), "loss", [(URI, "a")]))
    assert spec.to_dict()["title"]["text"] == "loss"


def test_run_keys_read_back_and_keep_the_url_form():
    from runreview.contract import decode_run_key

    assert run_key(("sqlite:///x.db", "abc123")) == "sqlite:///x.db::abc123"  # links as before
    for key in [("a::b", "c"), ("a", "b::c"), ("http://[::1]:5000", "x%3A:y"), ("a:", "")]:
        assert decode_run_key(run_key(key)) == key
    assert run_key(("a::b", "c")) != run_key(("a", "b::c"))
