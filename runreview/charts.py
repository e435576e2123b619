"""Altair chart builders, one per chart, shared by the app and the PDF reports.

Each builder takes an analysis result and returns an Altair chart with its data inline.
The app shows it with ``st.altair_chart``; reports turn it into SVG with
``runreview.reports.render.chart_svg``. Run names are untrusted text: Vega draws them as
text, never as HTML.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from runreview.analysis.confusion import ConfusionDiff
    from runreview.analysis.importance import ImportanceResult
    from runreview.analysis.overlay import BandResult, OverlayResult
    from runreview.analysis.spread import SpreadResult

WIDTH = 640
HEIGHT = 260
LEGEND_LIMIT = 40  # legends longer than this are cut by Vega with "…N entries"


def series_label(run_name: object, run_id: object) -> str:
    """A legend label that stays unique when run names repeat: ``name [id8]``."""
    name, rid = str(run_name), str(run_id)
    return name if name == rid else f"{name} [{rid[:8]}]"


def _series_labels(run_name: pd.Series, run_id: pd.Series) -> pd.Series:
    """:func:`series_label` of every row, computed column-wise (charts have ~1e5 rows)."""
    name, rid = run_name.astype(str), run_id.astype(str)
    return name.where(name == rid, name + " [" + rid.str.slice(0, 8) + "]")


def _alt():
    import altair as alt

    alt.data_transformers.disable_max_rows()
    return alt


def overlay_chart(result: OverlayResult, *, log_y: bool = False, show_raw: bool = True):
    """Smoothed lines per run (raw faintly behind), one panel per metric."""
    alt = _alt()
    data = result.points.copy()
    data["series"] = _series_labels(data["run_name"], data["run_id"])
    if result.x == "wall":
        data["x"] = pd.to_datetime(data["x"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    data = data[["metric", "series", "step", "x", "value", "smoothed"]]
    data = data.replace([np.inf, -np.inf], np.nan)
    x_type = "T" if result.x == "wall" else "Q"
    scale = alt.Scale(type="log") if log_y else alt.Scale(zero=False)
    color = alt.Color("series:N", title="run", legend=alt.Legend(symbolLimit=LEGEND_LIMIT))
    base = alt.Chart().encode(x=alt.X(f"x:{x_type}", title=result.x_title), color=color)
    smooth_line = base.mark_line(strokeWidth=1.6).encode(
        y=alt.Y("smoothed:Q", title="value", scale=scale),
        tooltip=["series:N", "step:Q", "value:Q", "smoothed:Q"],
    )
    layers = [base.mark_line(opacity=0.25, strokeWidth=1).encode(y="value:Q"), smooth_line]
    chart = alt.layer(*(layers if show_raw else layers[1:]), data=data).properties(
        width=WIDTH, height=HEIGHT
    )
    title = alt.TitleParams(text="Metric overlay", subtitle=[result.caption()])
    faceted = chart.facet(row=alt.Row("metric:N", title=None))
    return faceted.properties(title=title).resolve_scale(y="independent")


def band_chart(result: BandResult):
    """Mean line and mean +- std band per group of runs (e.g. seeds)."""
    alt = _alt()
    data = result.frame[["group", "step", "mean", "lower", "upper", "n"]].copy()
    data["group"] = data["group"].astype(str)
    base = alt.Chart(data).encode(
        x=alt.X("step:Q", title="step"),
        color=alt.Color("group:N", title=", ".join(result.group_by)),
    )
    band = base.mark_area(opacity=0.2).encode(y=alt.Y("lower:Q", title=result.metric), y2="upper:Q")
    line = base.mark_line().encode(y="mean:Q", tooltip=["group:N", "step:Q", "mean:Q", "n:Q"])
    return alt.layer(band, line).properties(
        width=WIDTH,
        height=HEIGHT,
        title=alt.TitleParams(result.metric, subtitle=[result.description]),
    )


def spread_chart(result: SpreadResult, *, width: int = WIDTH // 2, height: int = 150):
    """Lowest-to-highest band and median line across runs per step, and the marked run."""
    alt = _alt()
    x = alt.X("step:Q", title="step")
    band = (
        alt.Chart(result.frame)
        .mark_area(opacity=0.25, color="#4c78a8")
        .encode(x=x, y=alt.Y("low:Q", title=result.metric), y2="high:Q")
    )
    median = (
        alt.Chart(result.frame).mark_line(color="#4c78a8", strokeWidth=1).encode(x=x, y="median:Q")
    )
    layers = [band, median]
    if not result.marked.empty:
        layers.append(
            alt.Chart(result.marked)
            .mark_line(color="#b45309", strokeWidth=1.5)
            .encode(x=x, y="value:Q")
        )
    return alt.layer(*layers).properties(
        width=width, height=height, title=alt.TitleParams(result.metric, fontSize=11)
    )


def leaderboard_chart(board: pd.DataFrame, metric: str):
    """Horizontal bars of the ranked value, best on top."""
    alt = _alt()
    data = board[["rank", "run_name", "run_id", "value"]].copy()
    data["run"] = [
        f"{r}. {series_label(n, i)}"
        for r, n, i in zip(data["rank"], data.run_name, data.run_id, strict=True)
    ]
    data = data.replace([np.inf, -np.inf], np.nan)
    return (
        alt.Chart(data[["run", "value", "rank"]])
        .mark_bar()
        .encode(
            y=alt.Y("run:N", sort=alt.SortField("rank"), title=None),
            x=alt.X("value:Q", title=metric, scale=alt.Scale(zero=False)),
            tooltip=["run:N", "value:Q"],
        )
        .properties(width=WIDTH - 200, height=max(60, 18 * len(data)))
    )


def confusion_chart(labels: list[str], matrix: np.ndarray, title: str, *, diverging: bool = False):
    """A heatmap of a confusion matrix (rows = true class), the value written in each cell."""
    alt = _alt()
    labels = [str(x) for x in labels]
    n = len(labels)
    values = np.asarray(matrix, dtype=float)
    data = pd.DataFrame(
        {"true": np.repeat(labels, n), "predicted": np.tile(labels, n), "value": values.ravel()}
    )
    is_share = float(np.nanmax(np.abs(values))) <= 1.0 if values.size else False
    data["text"] = [f"{v:.2f}" if is_share else f"{v:g}" for v in data["value"]]
    scheme = alt.Scale(scheme="redblue", domainMid=0) if diverging else alt.Scale(scheme="blues")
    size = max(160, min(420, 34 * n))
    base = alt.Chart(data).encode(
        x=alt.X("predicted:N", sort=labels, title="predicted"),
        y=alt.Y("true:N", sort=labels, title="true"),
    )
    rect = base.mark_rect().encode(color=alt.Color("value:Q", scale=scheme, title=None))
    text = base.mark_text(fontSize=9).encode(text="text:N")
    return alt.layer(rect, text).properties(width=size, height=size, title=title)


def confusion_diff_chart(diff: ConfusionDiff):
    """Heatmap of A - B (diverging colours around zero)."""
    return confusion_chart(diff.labels, diff.delta, "A - B", diverging=True)


def importance_chart(result: ImportanceResult):
    """Permutation importance per param (mean +- std over shuffles)."""
    alt = _alt()
    data = result.table[["param", "importance_mean", "importance_std"]].dropna().copy()
    data["low"] = data["importance_mean"] - data["importance_std"]
    data["high"] = data["importance_mean"] + data["importance_std"]
    base = alt.Chart(data).encode(y=alt.Y("param:N", sort="-x", title=None))
    bars = base.mark_bar().encode(
        x=alt.X("importance_mean:Q", title=f"permutation importance for {result.metric}"),
        tooltip=["param:N", "importance_mean:Q", "importance_std:Q"],
    )
    rule = base.mark_rule().encode(x="low:Q", x2="high:Q")
    return alt.layer(bars, rule).properties(width=WIDTH - 200, height=max(60, 20 * len(data)))


def progress_chart(progress: pd.DataFrame, metric: str):
    """Best value so far by date: ``progress`` has ``date`` and ``best`` columns."""
    alt = _alt()
    data = progress[["date", "best"]].copy()
    data["date"] = pd.to_datetime(data["date"], utc=True).dt.strftime("%Y-%m-%d")
    return (
        alt.Chart(data)
        .mark_line(point=True, interpolate="step-after")
        .encode(
            x=alt.X("date:T", title="date"),
            y=alt.Y("best:Q", title=f"best {metric} so far", scale=alt.Scale(zero=False)),
        )
        .properties(width=WIDTH, height=200)
    )


def runs_timeline_chart(per_day: pd.DataFrame):
    """Runs started per day, stacked by source: ``per_day`` has ``date``, ``source``, ``runs``
    (as made by ``runreview.analysis.summary.runs_per_day``)."""
    alt = _alt()
    data = per_day[["date", "source", "runs"]].copy()
    data["date"] = pd.to_datetime(data["date"], utc=True).dt.strftime("%Y-%m-%d")
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("date:T", title="start date (UTC)"),
            y=alt.Y("runs:Q", title="runs started", stack="zero"),
            color=alt.Color("source:N", title="source"),
            tooltip=["date:T", "source:N", "runs:Q"],
        )
        .properties(width=WIDTH, height=160)
    )
