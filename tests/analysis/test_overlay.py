"""Smoothing (against hand-computed TensorBoard values), downsampling, overlays and bands."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runreview.analysis.overlay import (
    POINT_COLUMNS,
    _bucket_extremes,
    band_frame,
    clamp_weight,
    decimate,
    describe_smoothing,
    overlay_frame,
    smooth,
)

NAN, INF = math.nan, math.inf
URI = "sqlite:///team.db"
TB = "file:///logs"


def tensorboard_reference(points: list[float], weight: float) -> list[float]:
    """A line-by-line transcription of TensorBoard's ``classicSmoothing`` (one series).

    The weight is clamped as the TensorBoard UI does (settings max 0.999), non-finite -> 0.
    """
    weight = 0.0 if not math.isfinite(weight) else min(max(weight, 0.0), 0.999)
    if all(p == points[0] for p in points):  # isConstant (true for an empty series)
        return list(points)
    last = 0.0 if points else NAN
    num_accum = 0
    out = []
    for y in points:
        if not math.isfinite(y):
            out.append(y)
            continue
        last = last * weight + (1 - weight) * y
        num_accum += 1
        debias = 1 if weight == 1 else 1 - math.pow(weight, num_accum)
        out.append(last / debias)
    return out


@pytest.mark.parametrize(
    ("values", "weight", "expected"),
    [
        # last: 0.4, 1.04, 1.824; debias 0.4, 0.64, 0.784
        ([1.0, 2.0, 3.0], 0.6, [1.0, 1.625, 1.824 / 0.784]),
        # NaN passes through and does not count: the 3 is the 2nd accumulated value
        ([1.0, NAN, 3.0], 0.5, [1.0, NAN, 1.75 / 0.75]),
        ([2.0, INF, 4.0, -INF], 0.5, [2.0, INF, 2.5 / 0.75, -INF]),
        ([5.0, 5.0, 5.0], 0.9, [5.0, 5.0, 5.0]),  # constant: returned as is
        ([INF, INF], 0.6, [INF, INF]),  # constant too (inf == inf)
        ([NAN, NAN], 0.6, [NAN, NAN]),  # NaN != NaN: not constant, passed through
        ([1.0, 5.0, 2.0], 0.0, [1.0, 5.0, 2.0]),  # weight 0: no smoothing
        ([0.0, 1.0], 0.999, [0.0, 0.001 / (1 - 0.999**2)]),
        ([0.0, 1.0], 1.0, [0.0, 0.001 / (1 - 0.999**2)]),  # clamped to 0.999
        ([0.0, 1.0], 7.5, [0.0, 0.001 / (1 - 0.999**2)]),  # clamped to 0.999
        ([1.0, 5.0], -0.3, [1.0, 5.0]),  # clamped to 0
        ([1.0, 5.0], NAN, [1.0, 5.0]),  # non-finite weight counts as 0
        ([], 0.6, []),
    ],
)
def test_smooth_matches_hand_computed_tensorboard_values(values, weight, expected) -> None:
    result = smooth(values, weight)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, expected, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(result, tensorboard_reference(values, weight))


def test_constant_series_is_returned_exactly() -> None:
    # smoothing 0.1 five times would drift to 0.10000000000000002 in floating point
    assert smooth([0.1] * 5, 0.6).tolist() == [0.1] * 5
    assert smooth([0.1] * 5 + [0.2], 0.6)[0] == 0.10000000000000002


def test_weight_999_second_value_by_hand() -> None:
    assert smooth([0, 1], 0.999)[1] == pytest.approx(0.5002501250625313, rel=1e-15)


@pytest.mark.parametrize("weight", [0.0, 0.25, 0.6, 0.9, 0.99, 0.999])
def test_smooth_is_bit_identical_to_the_transcription(weight: float) -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(size=50_000)
    values[rng.integers(0, values.size, 200)] = NAN
    values[[10, 20_000]] = [INF, -INF]
    expected = np.array(tensorboard_reference(values.tolist(), weight))
    np.testing.assert_array_equal(smooth(values, weight), expected)


def test_smooth_accepts_lists_of_ints_and_leaves_input_alone() -> None:
    values = np.array([1.0, 2.0, 3.0])
    smooth(values, 0.6)
    assert values.tolist() == [1.0, 2.0, 3.0]
    assert smooth([1, 2, 3], 0.6).tolist() == smooth(values, 0.6).tolist()


def test_clamp_and_description() -> None:
    assert [clamp_weight(w) for w in (-1, 0.6, 1, 2, NAN)] == [0.0, 0.6, 0.999, 0.999, 0.0]
    assert describe_smoothing(0.6) == "TensorBoard debiased EMA, weight 0.6"
    assert describe_smoothing(5) == "TensorBoard debiased EMA, weight 0.999"
    assert describe_smoothing(0) == "no smoothing (weight 0)"


# --- downsampling -----------------------------------------------------------------------


def test_decimate_keeps_everything_when_short() -> None:
    assert decimate([3.0, 1.0, 2.0], 3).tolist() == [0, 1, 2]


def test_decimate_keeps_bucket_extremes_and_ends() -> None:
    # inner points 5 1 2 | 9 3 4 in two buckets: min/max 1,5 and 3,9
    values = [0.0, 5.0, 1.0, 2.0, 9.0, 3.0, 4.0, 8.0]
    assert decimate(values, 6).tolist() == [0, 1, 2, 4, 5, 7]


def test_decimate_keeps_first_non_finite_and_fits_the_budget() -> None:
    # two buckets would need 7 points (NaN kept): one bucket keeps min 1, max 9, the NaN
    values = [0.0, NAN, 1.0, 2.0, 9.0, 3.0, 4.0, 8.0]
    assert decimate(values, 6).tolist() == [0, 1, 2, 4, 7]


def test_decimate_long_series_is_bounded_and_keeps_global_extremes() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=100_000)
    values[5_000] = INF
    kept = decimate(values, 2000)
    assert kept.size <= 2000
    assert kept[0] == 0 and kept[-1] == values.size - 1
    finite = values[np.isfinite(values)]
    assert finite.min() in values[kept] and finite.max() in values[kept]
    assert 5_000 in kept
    assert np.all(np.diff(kept) > 0)


def test_decimate_rejects_a_budget_below_two() -> None:
    with pytest.raises(ValueError, match="max_points"):
        decimate([1.0, 2.0, 3.0], 1)


# --- overlays ---------------------------------------------------------------------------


def t(seconds: float) -> pd.Timestamp:
    return pd.Timestamp("2026-02-01", tz="UTC") + pd.Timedelta(seconds=seconds)


def history_rows(uri: str, run_id: str, metric: str, values: list[float], start: float):
    return [
        {
            "source": "mlflow" if uri == URI else "tensorboard",
            "source_uri": uri,
            "run_id": run_id,
            "metric": metric,
            "step": step * 10,
            "value": value,
            "timestamp": t(start + 5 * step),
        }
        for step, value in enumerate(values)
    ]


@pytest.fixture
def history() -> pd.DataFrame:
    rows = (
        history_rows(URI, "a", "loss", [4.0, 3.0, 2.0, 1.0, 5.0, 0.5, 0.7, 0.6, 0.4, 0.3], 100)
        + history_rows(URI, "a", "acc", [0.1, 0.2], 90)
        + history_rows(TB, "a", "loss", [9.0, 8.0], 0)
        + history_rows(URI, "b", "loss", [2.0, 2.0], 50)
    )
    frame = pd.DataFrame(rows)
    return frame.iloc[::-1].reset_index(drop=True)  # unsorted on purpose


@pytest.fixture
def runs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source_uri": [URI, TB, URI],
            "run_id": ["a", "a", "b"],
            "run_name": ["adam", "adam (tb)", None],
            "params.optimizer": ["adam", "adam", "sgd"],
        }
    )


def test_overlay_orders_series_as_requested_and_smooths_each(history, runs) -> None:
    result = overlay_frame(history, runs, ["loss"], [(TB, "a"), (URI, "a")], weight=0.6)
    points = result.points
    assert list(points.columns) == POINT_COLUMNS
    assert list(zip(points["source_uri"], points["run_id"], strict=True))[:3] == [
        (TB, "a"),
        (TB, "a"),
        (URI, "a"),
    ]
    tb = points[points["source_uri"] == TB]
    assert tb["step"].tolist() == [0, 10]
    assert tb["smoothed"].tolist() == pytest.approx([9.0, (0.4 * 9 * 0.6 + 0.4 * 8) / 0.64])
    assert tb["run_name"].tolist() == ["adam (tb)", "adam (tb)"]
    assert result.caption() == "TensorBoard debiased EMA, weight 0.6; plotted 12 of 12 points"


def test_overlay_relative_and_wall_x(history, runs) -> None:
    relative = overlay_frame(history, runs, ["loss"], [(URI, "a")], x="relative").points
    # run a's first point is its acc at t=90 s; loss starts at 100 s, every 5 s
    assert relative["x"].tolist()[:3] == [10.0, 15.0, 20.0]
    wall = overlay_frame(history, runs, ["loss"], [(URI, "a")], x="wall").points
    assert wall["x"].iloc[0] == t(100)
    result = overlay_frame(history, runs, ["loss"], [(URI, "a")], x="relative")
    assert result.x_title == "relative time (s)"


def test_overlay_downsamples_after_smoothing_on_the_full_series(history, runs) -> None:
    result = overlay_frame(history, runs, ["loss"], [(URI, "a")], weight=0.6, max_points=4)
    full = [4.0, 3.0, 2.0, 1.0, 5.0, 0.5, 0.7, 0.6, 0.4, 0.3]
    points = result.points
    # one bucket over the 8 inner points: min 0.4 (step 80) and max 5.0 (step 40)
    assert points["step"].tolist() == [0, 40, 80, 90]
    assert points["value"].tolist() == [4.0, 5.0, 0.4, 0.3]
    assert points["smoothed"].tolist() == smooth(full, 0.6)[[0, 4, 8, 9]].tolist()
    assert points["smoothed"].iloc[-1] != smooth([4.0, 5.0, 0.4, 0.3], 0.6)[-1]
    series = result.series.iloc[0]
    assert (series["points_total"], series["points_plotted"]) == (10, 4)
    assert series["downsampled"]
    assert series["caption"] == "plotted 4 of 10 points"
    assert result.points_total == 10 and result.points_plotted == 4
    assert result.caption() == (
        "TensorBoard debiased EMA, weight 0.6; plotted 4 of 10 points "
        "(at most 4 per series, extremes kept)"
    )


def test_overlay_reports_missing_series_and_falls_back_to_run_id(history, runs) -> None:
    result = overlay_frame(history, runs, ["loss", "f1"], [(URI, "b"), (URI, "zzz")])
    assert result.points["run_name"].unique().tolist() == ["b"]
    assert result.points["smoothed"].tolist() == [2.0, 2.0]  # constant series untouched
    assert result.missing == [(URI, "b", "f1"), (URI, "zzz", "loss"), (URI, "zzz", "f1")]


def test_overlay_with_nothing_selected_is_empty(history, runs) -> None:
    result = overlay_frame(history, runs, ["nope"], [(URI, "a")])
    assert result.points.empty and result.series.empty
    assert result.points_total == 0
    assert result.caption() == "TensorBoard debiased EMA, weight 0.6; plotted 0 of 0 points"


def test_overlay_rejects_unknown_x(history, runs) -> None:
    with pytest.raises(ValueError, match="x must be one of"):
        overlay_frame(history, runs, ["loss"], [(URI, "a")], x="epoch")  # type: ignore[arg-type]


# --- bands ------------------------------------------------------------------------------


def test_band_mean_std_n_per_step_over_seeds() -> None:
    runs = pd.DataFrame(
        {
            "source_uri": [URI, URI, URI, TB],
            "run_id": ["s1", "s2", "s3", "s1"],
            "params.model": ["x", "x", "y", None],
            "params.seed": ["1", "2", "1", "1"],
        }
    )
    rows = [
        (URI, "s1", 0, 1.0, 0),
        (URI, "s1", 1, 2.0, 1),
        (URI, "s1", 1, 4.0, 2),  # same step logged again later: the last value counts
        (URI, "s2", 0, 3.0, 0),
        (URI, "s2", 1, NAN, 1),  # left out, not counted in n
        (URI, "s3", 0, 5.0, 0),
        (TB, "s1", 0, 7.0, 0),
    ]
    history = pd.DataFrame(
        [
            {"source": "x", "source_uri": u, "run_id": r, "metric": "loss"}
            | {"step": s, "value": v, "timestamp": t(ts)}
            for u, r, s, v, ts in rows
        ]
    )
    band = band_frame(history, runs, "loss", "model")
    frame = band.frame.set_index(["group", "step"])
    assert frame.loc[("model=x", 0), ["mean", "std", "sem", "n"]].tolist() == pytest.approx(
        [2.0, math.sqrt(2), 1.0, 2]
    )
    assert frame.loc[("model=x", 0), ["lower", "upper"]].tolist() == pytest.approx(
        [2 - math.sqrt(2), 2 + math.sqrt(2)]
    )
    assert frame.loc[("model=x", 1), "mean"] == 4.0
    assert frame.loc[("model=x", 1), "n"] == 1
    assert math.isnan(frame.loc[("model=x", 1), "std"])
    assert frame.loc[("model=y", 0), "mean"] == 5.0
    assert frame.loc[("model=(not set)", 0), "mean"] == 7.0
    groups = band.groups.set_index("group")
    assert groups.loc["model=x", "runs"] == 2
    assert groups.loc["model=x", "run_ids"] == ["s1", "s2"]
    assert "mean ± std (sample, ddof=1)" in band.description
    only = band_frame(history, runs, "loss", ["model", "seed"], run_keys=[(URI, "s1")])
    assert only.frame["group"].unique().tolist() == ["model=x, seed=1"]


def test_band_smooths_each_run_before_aggregating() -> None:
    runs = pd.DataFrame({"source_uri": [URI], "run_id": ["a"], "params.model": ["x"]})
    history = pd.DataFrame(
        {"source": "x", "source_uri": URI, "run_id": "a", "metric": "loss"}
        | {"step": [0, 1], "value": [1.0, 2.0], "timestamp": [t(0), t(1)]}
    )
    band = band_frame(history, runs, "loss", "params.model", weight=0.5)
    assert band.frame["mean"].tolist() == pytest.approx([1.0, (0.25 + 1.0) / 0.75])
    assert "TensorBoard debiased EMA, weight 0.5 applied to each run" in band.description


def test_band_unknown_param_names_it() -> None:
    runs = pd.DataFrame({"source_uri": [URI], "run_id": ["a"], "params.model": ["x"]})
    with pytest.raises(ValueError, match="params.lr"):
        band_frame(pd.DataFrame(), runs, "loss", "lr")


def _bucket_extremes_reference(y: np.ndarray, n_buckets: int) -> list[int]:
    """One bucket at a time, in plain Python: the first position of the minimum, the last
    of the maximum (finite values only), and the first non-finite value."""
    kept: list[int] = []
    bucket_of = [i * n_buckets // len(y) for i in range(len(y))]
    for bucket in sorted(set(bucket_of)):
        members = [i for i in range(len(y)) if bucket_of[i] == bucket]
        finite = [i for i in members if math.isfinite(y[i])]
        if finite:
            low = min(y[i] for i in finite)
            high = max(y[i] for i in finite)
            kept.append(next(i for i in finite if y[i] == low))
            kept.append([i for i in finite if y[i] == high][-1])
        bad = [i for i in members if not math.isfinite(y[i])]
        kept += bad[:1]
    return sorted(kept)


@given(
    values=st.lists(
        st.sampled_from([0.0, 1.0, -2.5, 7.0, NAN, INF, -INF]) | st.floats(-1e6, 1e6),
        min_size=1,
        max_size=300,
    ),
    n_buckets=st.integers(1, 80),
)
@settings(max_examples=300, deadline=None)
def test_bucket_extremes_match_a_plain_python_reference(values, n_buckets) -> None:
    y = np.array(values, dtype=np.float64)
    assert sorted(_bucket_extremes(y, n_buckets).tolist()) == _bucket_extremes_reference(
        y, n_buckets
    )
