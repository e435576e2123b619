"""Metric overlays: smoothing identical to TensorBoard, x axes, downsampling, seed bands.

Smoothing is TensorBoard's classic debiased exponential moving average
(``classicSmoothing`` in ``tensorboard/webapp/widgets/line_chart_v2/data_transformer.ts``),
computed on the full series before any downsampling. Downsampling keeps the extremes of
each bucket and always the first and last point, and says how many points it dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from runreview.contract import PARAM_PREFIX, RUN_KEY_COLUMNS, TAG_PREFIX, RunKey

XAxis = Literal["step", "relative", "wall"]

SERIES_KEY = ["source_uri", "run_id", "metric"]
#: TensorBoard's largest smoothing weight (``SCALARS_SMOOTHING_MAX``).
SMOOTHING_MAX = 0.999
#: TensorBoard's default smoothing weight (``METRICS_SETTINGS_DEFAULT.scalarSmoothing``).
DEFAULT_WEIGHT = 0.6
DEFAULT_MAX_POINTS = 2000
X_TITLES = {"step": "step", "relative": "relative time (s)", "wall": "wall time (UTC)"}
POINT_COLUMNS = [
    "source",
    "source_uri",
    "run_id",
    "run_name",
    "metric",
    "step",
    "timestamp",
    "x",
    "value",
    "smoothed",
]
SERIES_COLUMNS = [
    "source_uri",
    "run_id",
    "run_name",
    "metric",
    "points_total",
    "points_plotted",
    "downsampled",
    "caption",
]
NOT_SET = "(not set)"


def clamp_weight(weight: float) -> float:
    """The smoothing weight TensorBoard would use: non-finite -> 0, clamped to [0, 0.999]."""
    if not math.isfinite(weight):
        return 0.0
    return min(max(float(weight), 0.0), SMOOTHING_MAX)


def describe_smoothing(weight: float) -> str:
    """The smoothing named with its parameter, for chart captions and reports."""
    weight = clamp_weight(weight)
    if weight == 0:
        return "no smoothing (weight 0)"
    return f"TensorBoard debiased EMA, weight {weight:g}"


def smooth(values: Sequence[float] | np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's classic debiased EMA of ``values`` (a new float64 array).

    As in TensorBoard: a constant series (every value ``==`` the first) is returned as is;
    NaN and inf pass through unchanged and do not enter the average; each finite value
    updates ``last = last * w + (1 - w) * y`` (``last`` starts at 0) and is shown as
    ``last / (1 - w ** k)`` where ``k`` counts the finite values so far. The weight is
    clamped to [0, 0.999] (a non-finite weight counts as 0). The output is bit-identical
    to a line-by-line transcription of TensorBoard's loop (the tests compare them).
    """
    from scipy.signal import lfilter

    y = np.array(values, dtype=np.float64).reshape(-1)
    w = clamp_weight(weight)
    if y.size == 0 or bool(np.all(y == y[0])):
        return y
    finite = np.isfinite(y)
    # lfilter runs exactly TensorBoard's recurrence: y[k] = (1 - w) * x[k] + w * y[k - 1].
    ema = lfilter([1.0 - w], [1.0, -w], y[finite])
    y[finite] = ema / _debias_weights(w, ema.size)
    return y


def _debias_weights(weight: float, count: int) -> np.ndarray:
    """``1 - weight ** k`` for k = 1..count, with the platform's correctly rounded ``pow``.

    ``math.pow`` is used because ``np.power`` may round differently in the last bit. Once
    ``weight ** k`` is below 2**-54 the result is exactly 1.0, so only that many are made.
    """
    if weight == 0.0:
        return np.ones(count)
    exact = min(count, int(math.log(2.0**-54) / math.log(weight)) + 2)
    head = np.fromiter((1.0 - math.pow(weight, k) for k in range(1, exact + 1)), float, exact)
    return np.concatenate([head, np.ones(count - exact)])


# --- downsampling -----------------------------------------------------------------------


def describe_downsampling(max_points: int) -> str:
    """How series were downsampled, for chart captions and reports."""
    return (
        f"series longer than {max_points:,} points are cut into equal buckets; each bucket "
        "keeps its lowest and highest raw value (and its first NaN/inf, if any), and the "
        "first and last points are always kept; smoothing uses the full series"
    )


def decimate(values: Sequence[float] | np.ndarray, max_points: int) -> np.ndarray:
    """Indices (ascending) of at most ``max_points`` points that keep the extremes.

    The points between the first and the last are cut into equal buckets; each bucket
    keeps the positions of its minimum and maximum finite value, plus its first non-finite
    value when it has one (so gaps and spikes to inf stay visible). The number of buckets
    starts at ``(max_points - 2) // 2`` and shrinks until the result fits.
    """
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    if y.size <= max_points:
        return np.arange(y.size)
    ends = np.array([0, y.size - 1])
    n_buckets = (max_points - 2) // 2
    while n_buckets > 0:
        keep = np.union1d(ends, _bucket_extremes(y[1:-1], n_buckets) + 1)
        if keep.size <= max_points:
            return keep
        n_buckets -= max(1, (keep.size - max_points + 1) // 2)
    return ends


def _bucket_extremes(y: np.ndarray, n_buckets: int) -> np.ndarray:
    """Positions of each bucket's min (first of ties) and max (last of ties) finite value
    and first non-finite value. Buckets are contiguous, so one pass of ``reduceat`` finds
    the extremes (no sort: 2M points take ~50 ms)."""
    size = y.size
    starts = np.flatnonzero(np.r_[True, np.diff(np.arange(size) * n_buckets // size) != 0])
    counts = np.diff(np.r_[starts, size])
    bucket = np.repeat(np.arange(starts.size), counts)
    finite = np.isfinite(y)
    low, high = np.where(finite, y, np.inf), np.where(finite, y, -np.inf)
    at_min = np.flatnonzero(finite & (low == np.repeat(np.minimum.reduceat(low, starts), counts)))
    at_max = np.flatnonzero(finite & (high == np.repeat(np.maximum.reduceat(high, starts), counts)))
    bad = np.flatnonzero(~finite)
    return np.concatenate(
        [at_min[_starts(bucket[at_min])], at_max[_ends(bucket[at_max])], bad[_starts(bucket[bad])]]
    )


def _starts(ids: np.ndarray) -> np.ndarray:
    """Mask of the first element of each run of equal ids."""
    return np.r_[True, ids[1:] != ids[:-1]] if ids.size else np.zeros(0, dtype=bool)


def _ends(ids: np.ndarray) -> np.ndarray:
    """Mask of the last element of each run of equal ids."""
    return np.r_[ids[1:] != ids[:-1], True] if ids.size else np.zeros(0, dtype=bool)


# --- overlays ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OverlayResult:
    """Series to draw: raw and smoothed values against the chosen x.

    ``points`` has ``POINT_COLUMNS`` (one row per plotted point, series in the requested
    order); ``series`` has ``SERIES_COLUMNS`` (one row per run and metric with points);
    ``missing`` lists requested (source_uri, run_id, metric) without any point.
    """

    points: pd.DataFrame
    series: pd.DataFrame
    x: XAxis
    x_title: str
    weight: float
    max_points: int
    smoothing: str
    downsampling: str
    missing: list[tuple[str, str, str]]

    @property
    def points_total(self) -> int:
        """Logged points over all series."""
        return int(self.series["points_total"].sum())

    @property
    def points_plotted(self) -> int:
        """Points kept for drawing over all series."""
        return int(self.series["points_plotted"].sum())

    def caption(self) -> str:
        """One line for under a chart: smoothing, and what downsampling dropped."""
        text = f"{self.smoothing}; plotted {self.points_plotted:,} of {self.points_total:,} points"
        if self.points_plotted < self.points_total:
            text += f" (at most {self.max_points:,} per series, extremes kept)"
        return text


def overlay_frame(
    history: pd.DataFrame,
    runs: pd.DataFrame,
    metrics: Iterable[str],
    run_keys: Iterable[RunKey],
    x: XAxis = "step",
    weight: float = DEFAULT_WEIGHT,
    max_points: int = DEFAULT_MAX_POINTS,
) -> OverlayResult:
    """Raw and smoothed series of ``metrics`` for the runs ``run_keys``.

    Each series (run, metric) is ordered by step (then timestamp) and smoothed over all of
    its points; it is then downsampled to at most ``max_points`` points (``decimate``).
    ``x`` is the step, ``relative`` (seconds since the run's first point in ``history``)
    or ``wall`` (the timestamp).
    """
    if x not in X_TITLES:
        raise ValueError(f"x must be one of {', '.join(X_TITLES)}; got {x!r}")
    metrics, keys = list(metrics), [tuple(k) for k in run_keys]
    selected = _select(history, metrics, keys)
    selected["x"] = _x_values(selected, history, x)
    names = _run_names(runs, list(dict.fromkeys(keys)))
    selected["run_name"] = names[selected.pop("_run").to_numpy()] if len(selected) else []
    selected["run_name"] = selected["run_name"].fillna(selected["run_id"])
    points = _series_points(selected, weight, max_points)
    return OverlayResult(
        points=points[POINT_COLUMNS],
        series=_series_table(selected, points),
        x=x,
        x_title=X_TITLES[x],
        weight=clamp_weight(weight),
        max_points=max_points,
        smoothing=describe_smoothing(weight),
        downsampling=describe_downsampling(max_points),
        missing=_missing(selected, keys, metrics),
    )


def _select(history: pd.DataFrame, metrics: list[str], keys: list[RunKey]) -> pd.DataFrame:
    """History rows of the runs and metrics, ordered by request, then step and timestamp
    (then history order), with ``_series`` numbering the series in that order and
    ``_run`` the position of the row's run in ``keys`` (duplicates dropped)."""
    runs = list(dict.fromkeys(keys))
    metric_rank = {m: i for i, m in enumerate(dict.fromkeys(metrics))}
    rows = history[history["metric"].isin(list(metric_rank))]
    if runs:  # each row's position in ``runs`` (-1: not asked for), without a merge
        wanted = pd.MultiIndex.from_tuples(runs)
        run_of = wanted.get_indexer(pd.MultiIndex.from_arrays([rows[c] for c in RUN_KEY_COLUMNS]))
    else:
        run_of = np.full(len(rows), -1)
    asked = run_of >= 0
    rows = rows[asked].assign(_run=run_of[asked], _pos=np.arange(int(asked.sum())))
    rows["_metric"] = rows["metric"].map(metric_rank).astype("int64")
    rows = rows.sort_values(["_run", "_metric", "step", "timestamp", "_pos"], kind="mergesort")
    series = rows["_run"].to_numpy() * len(metric_rank) + rows["_metric"].to_numpy()
    rows["_series"] = np.cumsum(np.r_[False, series[1:] != series[:-1]]) if len(rows) else 0
    return rows.drop(columns=["_metric", "_pos"]).reset_index(drop=True)


def _x_values(rows: pd.DataFrame, history: pd.DataFrame, x: XAxis) -> pd.Series:
    """The x value of each row: step, seconds since the run's first point, or timestamp."""
    if x == "step":
        return rows["step"]
    stamps = pd.to_datetime(rows["timestamp"], utc=True)
    if x == "wall":
        return stamps
    first = history.assign(timestamp=pd.to_datetime(history["timestamp"], utc=True))
    first = (
        first.groupby(RUN_KEY_COLUMNS, observed=True)["timestamp"]
        .min()
        .rename("_first")
        .reset_index()
    )
    starts = rows[RUN_KEY_COLUMNS].merge(first, on=RUN_KEY_COLUMNS, how="left")["_first"]
    return (stamps - starts.set_axis(rows.index)).dt.total_seconds()


def _run_names(runs: pd.DataFrame, keys: list[RunKey]) -> np.ndarray:
    """The run name of each of ``keys`` (None for a run ``runs`` does not have)."""
    if not keys:
        return np.array([], dtype=object)
    table = runs.drop_duplicates(RUN_KEY_COLUMNS)
    where = pd.MultiIndex.from_arrays([table[c] for c in RUN_KEY_COLUMNS]).get_indexer(
        pd.MultiIndex.from_tuples(keys)
    )
    names = table["run_name"].to_numpy(dtype=object)
    return np.array([names[i] if i >= 0 else None for i in where], dtype=object)


def _series_points(selected: pd.DataFrame, weight: float, max_points: int) -> pd.DataFrame:
    """Each series (consecutive rows of one ``_series``) smoothed over all its points,
    then downsampled; one frame in series order."""
    if selected.empty:
        return _empty_points()
    values = selected["value"].to_numpy(dtype=np.float64)
    smoothed = np.empty_like(values)
    bounds = np.flatnonzero(np.r_[True, np.diff(selected["_series"].to_numpy()) != 0, True])
    keep = []
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        smoothed[lo:hi] = smooth(values[lo:hi], weight)
        keep.append(decimate(values[lo:hi], max_points) + lo)
    rows = np.concatenate(keep)
    return selected.iloc[rows].assign(smoothed=smoothed[rows]).reset_index(drop=True)


def _empty_points() -> pd.DataFrame:
    """A points frame without rows."""
    return pd.DataFrame(columns=POINT_COLUMNS)


def _series_table(selected: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """Per series: points logged, points plotted, and a caption."""
    names = selected.groupby(SERIES_KEY, sort=False, observed=True)["run_name"].first()
    total = selected.groupby(SERIES_KEY, sort=False, observed=True).size()
    plotted = points.groupby(SERIES_KEY, sort=False, observed=True).size()
    plotted = plotted.reindex(total.index).fillna(0)
    table = pd.DataFrame(
        {"run_name": names, "points_total": total, "points_plotted": plotted.astype("int64")}
    ).reset_index()
    table["downsampled"] = table["points_plotted"] < table["points_total"]
    table["caption"] = [
        f"plotted {p:,} of {t:,} points"
        for p, t in zip(table["points_plotted"], table["points_total"], strict=True)
    ]
    return table.reindex(columns=SERIES_COLUMNS)


def _missing(
    selected: pd.DataFrame, keys: list[RunKey], metrics: list[str]
) -> list[tuple[str, str, str]]:
    """Requested (source_uri, run_id, metric) that have no point."""
    found = selected[SERIES_KEY].drop_duplicates()
    present = set(zip(found["source_uri"], found["run_id"], found["metric"], strict=True))
    wanted = [(uri, rid, m) for uri, rid in dict.fromkeys(keys) for m in dict.fromkeys(metrics)]
    return [item for item in wanted if item not in present]


# --- bands over seeds -------------------------------------------------------------------


@dataclass(frozen=True)
class BandResult:
    """Mean +- standard deviation per step for groups of runs.

    ``frame`` has ``group``, ``step``, ``mean``, ``std`` (sample, ddof=1; NaN when n < 2),
    ``sem`` (std / sqrt(n)), ``n`` (runs with a finite value at that step), ``lower`` and
    ``upper`` (mean -+ std). ``groups`` has ``group``, ``runs`` and ``run_ids``.
    """

    metric: str
    group_by: list[str]
    frame: pd.DataFrame
    groups: pd.DataFrame
    weight: float
    description: str


def band_frame(
    history: pd.DataFrame,
    runs: pd.DataFrame,
    metric: str,
    group_by: str | Sequence[str],
    run_keys: Iterable[RunKey] | None = None,
    weight: float = 0.0,
) -> BandResult:
    """Group runs by the values of ``group_by`` params and aggregate ``metric`` per step.

    Runs that differ only in other params (typically the seed) fall into one group. Each
    run contributes its last value logged at a step, smoothed first when ``weight > 0``;
    NaN and inf are left out (and not counted in ``n``). Runs come from ``run_keys``, or
    all runs of ``runs``.
    """
    columns = _group_columns(runs, group_by)
    labels = _group_labels(runs, columns)
    if run_keys is not None:
        keys = set(map(tuple, run_keys))
        labels = labels[[k in keys for k in zip(labels.source_uri, labels.run_id, strict=True)]]
    rows = history[history["metric"] == metric].merge(labels, on=RUN_KEY_COLUMNS, how="inner")
    rows = rows.sort_values([*RUN_KEY_COLUMNS, "step", "timestamp"], kind="mergesort")
    rows = rows.drop_duplicates([*RUN_KEY_COLUMNS, "step"], keep="last")
    if clamp_weight(weight) > 0:
        rows["value"] = rows.groupby(RUN_KEY_COLUMNS)["value"].transform(
            lambda v: smooth(v, weight)
        )
    return BandResult(
        metric=metric,
        group_by=columns,
        frame=_band_stats(rows),
        groups=_group_table(labels),
        weight=clamp_weight(weight),
        description=_band_description(metric, columns, weight),
    )


def _group_columns(runs: pd.DataFrame, group_by: str | Sequence[str]) -> list[str]:
    """Runs-frame columns for param names given with or without ``params.``."""
    names = [group_by] if isinstance(group_by, str) else list(group_by)
    columns = [n if n.startswith((PARAM_PREFIX, TAG_PREFIX)) else PARAM_PREFIX + n for n in names]
    absent = [c for c in columns if c not in runs.columns]
    if absent:
        params = sorted(c for c in runs.columns if c.startswith(PARAM_PREFIX))
        raise ValueError(f"cannot group by {absent}: no such column; params: {params}")
    return columns


def _group_labels(runs: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Run key and group label (``k=v, k2=v2``) per run."""
    parts = [runs[c].map(lambda v: NOT_SET if pd.isna(v) else str(v)) for c in columns]
    names = [c.split(".", 1)[1] for c in columns]
    label = [
        ", ".join(f"{n}={v}" for n, v in zip(names, vals, strict=True))
        for vals in zip(*parts, strict=True)
    ]
    return pd.DataFrame(
        {"source_uri": runs["source_uri"], "run_id": runs["run_id"], "group": label}
    )


def _band_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, sem, n, lower and upper per group and step over finite values."""
    finite = rows[np.isfinite(rows["value"].to_numpy(dtype=np.float64))]
    stats = finite.groupby(["group", "step"])["value"].agg(["mean", "std", "count"])
    stats = stats.rename(columns={"count": "n"}).reset_index()
    stats["sem"] = stats["std"] / np.sqrt(stats["n"])
    stats["lower"] = stats["mean"] - stats["std"]
    stats["upper"] = stats["mean"] + stats["std"]
    return stats[["group", "step", "mean", "std", "sem", "n", "lower", "upper"]]


def _group_table(labels: pd.DataFrame) -> pd.DataFrame:
    """Per group: number of runs and their ids."""
    grouped = labels.groupby("group", sort=True)
    return pd.DataFrame(
        {"runs": grouped.size(), "run_ids": grouped["run_id"].agg(list)}
    ).reset_index()


def _band_description(metric: str, columns: list[str], weight: float) -> str:
    """How the band was computed, for captions and reports."""
    names = ", ".join(c.split(".", 1)[1] for c in columns)
    smoothing = "no smoothing"
    if clamp_weight(weight) > 0:
        smoothing = f"{describe_smoothing(weight)} applied to each run before aggregating"
    return (
        f"{metric}: mean ± std (sample, ddof=1) per step across runs grouped by {names}, "
        f"aligned on step; n = runs with a finite value at that step; {smoothing}"
    )
