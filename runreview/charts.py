"""Altair chart builders, one per chart, shared by the app and the PDF reports.

Each builder takes an analysis result and returns an Altair chart with its data inline.
The app shows it with ``st.altair_chart``; reports turn it into SVG with
``runreview.reports.render.chart_svg``. Run names are untrusted text: Vega draws them as
text, never as HTML.

Nothing a reader needs is cut: runs are named by :func:`distinct_labels` (the run name, a
short id only where names repeat), axis and legend labels get room (``LABEL_LIMIT``) and
every chart a margin (``PADDING``: the PDF's fonts can be wider than the ones the SVG was
measured with), and date axes use one explicit format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from runreview.analysis.runlabels import distinct_labels

if TYPE_CHECKING:
    from runreview.analysis.confusion import ConfusionDiff
    from runreview.analysis.importance import ImportanceResult
    from runreview.analysis.overlay import BandResult, OverlayResult
    from runreview.analysis.spread import SpreadResult

WIDTH = 640
HEIGHT = 260
LEGEND_LIMIT = 40  # legends longer than this are cut by Vega with "…N entries"
LABEL_LIMIT = 400  # px: axis and legend labels longer than this end in "…"
PADDING = {"left": 16, "top": 8, "right": 24, "bottom": 8}
DATE_FORMAT = "%d %b"  # "29 Nov": one format for every tick (no "Thu 29" next to "November")
DATE_TIME_FORMAT = "%d %b %H:%M"
#: Confusion-matrix cell text: white on cells darker than this share of the colour range.
DARK_CELL = 0.5
CELL_FONT_SIZE = 11


def series_label(run_name: object, run_id: object) -> str:
    """A legend label that stays unique when run names repeat: ``name [id8]``."""
    name, rid = str(run_name), str(run_id)
    return name if name == rid else f"{name} [{rid[:8]}]"


def _alt():
    import altair as alt

    alt.data_transformers.disable_max_rows()
    return alt


def _run_labels(frame: pd.DataFrame) -> pd.Series:
    """:func:`distinct_labels` of each row's run (rows of one run get one label)."""
    keys = ["source_uri", "run_id"] if "source_uri" in frame.columns else ["run_id"]
    runs = frame[[*keys, "run_name"]].astype(str).drop_duplicates(keys)
    runs["label"] = distinct_labels(runs["run_name"].tolist(), runs["run_id"].tolist())
    return frame[keys].astype(str).merge(runs, on=keys, how="left")["label"].set_axis(frame.index)


def _date_axis(alt, fmt: str = DATE_FORMAT):
    return alt.Axis(format=fmt, labelOverlap="greedy", labelLimit=LABEL_LIMIT)


def overlay_chart(
    result: OverlayResult,
    *,
    log_y: bool = False,
    show_raw: bool = True,
    title: str = "Metric overlay",
    y_title: str = "value",
    panel_labels: bool = True,
):
    """Smoothed lines per run (raw faintly behind), one panel per metric; ``title`` and
    ``y_title`` name the chart and its y axis (plain words in the stakeholder report), and
    ``panel_labels=False`` drops the metric name beside each panel (when the axis says it)."""
    alt = _alt()
    data = result.points.copy()
    data["series"] = _run_labels(data)
    if result.x == "wall":
        data["x"] = pd.to_datetime(data["x"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    data = data[["metric", "series", "step", "x", "value", "smoothed"]]
    data = data.replace([np.inf, -np.inf], np.nan)
    if result.x == "wall":
        x = alt.X("x:T", title=result.x_title, axis=_date_axis(alt, DATE_TIME_FORMAT))
    else:
        x = alt.X("x:Q", title=result.x_title)
    scale = alt.Scale(type="log") if log_y else alt.Scale(zero=False)
    # The legend shows the smoothed lines (full colour, thick); raw lines are thin, faint
    # and dashed, so a raw line is never mistaken for another run's smoothed one.
    legend = alt.Legend(
        symbolLimit=LEGEND_LIMIT,
        labelLimit=LABEL_LIMIT,
        symbolOpacity=1,
        symbolStrokeWidth=2.5,
        symbolDash=[],
    )
    color = alt.Color("series:N", title="run", legend=legend, scale=alt.Scale(scheme="tableau10"))
    base = alt.Chart().encode(x=x, color=color)
    smooth_line = base.mark_line(strokeWidth=2.2).encode(
        y=alt.Y("smoothed:Q", title=y_title, scale=scale),
        tooltip=["series:N", "step:Q", "value:Q", "smoothed:Q"],
    )
    raw_line = base.mark_line(opacity=0.3, strokeWidth=0.8, strokeDash=[2, 2]).encode(y="value:Q")
    layers = [smooth_line, raw_line] if show_raw else [smooth_line]
    chart = alt.layer(*layers, data=data).properties(width=WIDTH, height=HEIGHT)
    heading = alt.TitleParams(text=title, subtitle=[result.caption()])
    header = alt.Header(labels=panel_labels)
    faceted = chart.facet(row=alt.Row("metric:N", title=None, header=header))
    return faceted.properties(title=heading, padding=PADDING).resolve_scale(y="independent")


def band_chart(result: BandResult):
    """Mean line and mean +- std band per group of runs (e.g. seeds)."""
    alt = _alt()
    data = result.frame[["group", "step", "mean", "lower", "upper", "n"]].copy()
    data["group"] = data["group"].astype(str)
    base = alt.Chart(data).encode(
        x=alt.X("step:Q", title="step"),
        color=alt.Color(
            "group:N",
            title=", ".join(result.group_by),
            legend=alt.Legend(labelLimit=LABEL_LIMIT, symbolLimit=LEGEND_LIMIT),
        ),
    )
    band = base.mark_area(opacity=0.2).encode(y=alt.Y("lower:Q", title=result.metric), y2="upper:Q")
    line = base.mark_line().encode(y="mean:Q", tooltip=["group:N", "step:Q", "mean:Q", "n:Q"])
    return alt.layer(band, line).properties(
        width=WIDTH,
        height=HEIGHT,
        title=alt.TitleParams(result.metric, subtitle=[result.description]),
        padding=PADDING,
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
        width=width,
        height=height,
        title=alt.TitleParams(result.metric, fontSize=11),
        padding=PADDING,
    )


def leaderboard_chart(board: pd.DataFrame, metric: str):
    """Horizontal bars of the ranked value, best on top: every bar named (rank and run,
    with a short id where names repeat) and its value written at its end."""
    alt = _alt()
    data = board.reset_index(drop=True).copy()
    names = _run_labels(data)
    data["run"] = [f"{r}. {n}" for r, n in zip(data["rank"], names, strict=True)]
    data["order"] = np.arange(len(data))
    data["value"] = pd.to_numeric(data["value"], errors="coerce")
    data = data.replace([np.inf, -np.inf], np.nan)
    data["text"] = [f"{v:.4g}" if np.isfinite(v) else "no value" for v in data["value"]]
    data["at"] = data["value"].fillna(0.0)
    data = data[["run", "value", "rank", "order", "text", "at"]]
    y = alt.Y(
        "run:N",
        sort=alt.SortField("order"),
        title=None,
        axis=alt.Axis(labelLimit=LABEL_LIMIT, labelOverlap=False),
    )
    base = alt.Chart(data).encode(y=y)
    bars = base.mark_bar().encode(
        x=alt.X("value:Q", title=metric, scale=alt.Scale(zero=True)),
        tooltip=["run:N", "value:Q"],
    )
    text = base.mark_text(align="left", dx=3, fontSize=10).encode(x="at:Q", text="text:N")
    return alt.layer(bars, text).properties(
        width=WIDTH - 200, height=max(60, 20 * len(data)), padding=PADDING
    )


def confusion_chart(
    labels: list[str],
    matrix: np.ndarray,
    title: str,
    *,
    diverging: bool = False,
    counts: bool | None = None,
):
    """A heatmap of a confusion matrix (rows = true class), the value written in each cell
    (white on dark cells): as integers for ``counts`` (None: when every value is whole),
    else with two decimals for shares, three significant digits otherwise."""
    alt = _alt()
    labels = [str(x) for x in labels]
    n = len(labels)
    values = np.asarray(matrix, dtype=float)
    data = pd.DataFrame(
        {"true": np.repeat(labels, n), "predicted": np.tile(labels, n), "value": values.ravel()}
    )
    finite = values[np.isfinite(values)]
    if counts is None:
        counts = finite.size > 0 and bool(np.all(finite == np.round(finite)))
    is_share = not counts and (float(np.max(np.abs(finite))) <= 1.0 if finite.size else False)
    data["text"] = [_cell_text(v, counts, is_share) for v in data["value"]]
    data["dark"] = _dark_cells(data["value"].to_numpy(), diverging)
    if diverging:  # symmetric around zero, and a real range when every cell is 0
        reach = float(np.max(np.abs(finite))) if finite.size else 0.0
        reach = reach or 1.0
        scheme = alt.Scale(scheme="redblue", domain=[-reach, reach], domainMid=0)
    else:
        scheme = alt.Scale(scheme="blues")
    size = max(160, min(420, 34 * n))
    axis = alt.Axis(labelLimit=LABEL_LIMIT)
    base = alt.Chart(data).encode(
        x=alt.X("predicted:N", sort=labels, title="predicted", axis=axis),
        y=alt.Y("true:N", sort=labels, title="true", axis=axis),
    )
    legend = alt.Legend(format="d" if counts else ".2~f")
    rect = base.mark_rect().encode(
        color=alt.Color("value:Q", scale=scheme, title=None, legend=legend)
    )
    # Contrast-aware numbers: white on dark cells, near-black on light ones.
    text = base.mark_text(fontSize=CELL_FONT_SIZE).encode(
        text="text:N",
        color=alt.condition("datum.dark", alt.value("white"), alt.value("#1f1f1f")),
    )
    return alt.layer(rect, text).properties(width=size, height=size, title=title, padding=PADDING)


def _cell_text(value: float, counts: bool, share: bool) -> str:
    """A cell's number: counts as integers, shares with two decimals."""
    if not np.isfinite(value):
        return ""
    if counts:
        return f"{int(round(value)):d}"
    return f"{value:.2f}" if share else f"{value:.3g}"


def _dark_cells(values: np.ndarray, diverging: bool) -> list[bool]:
    """Which cells the colour scale paints dark (far from the light end of the scheme)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return [False] * len(values)
    if diverging:  # light at zero, dark at both ends
        reach = float(np.max(np.abs(finite))) or 1.0
        share = np.abs(values) / reach
    else:
        low, high = float(np.min(finite)), float(np.max(finite))
        share = (values - low) / ((high - low) or 1.0)
    return [bool(np.isfinite(v) and v > DARK_CELL) for v in share]


def confusion_diff_chart(diff: ConfusionDiff):
    """Heatmap of A - B (diverging colours around zero)."""
    return confusion_chart(
        diff.labels, diff.delta, "A - B", diverging=True, counts=not diff.normalised
    )


def importance_chart(result: ImportanceResult):
    """Held-out permutation importance per param, with its interval (low to high).

    Bars are sorted by importance only when the params explain the metric
    (``result.explains``); otherwise by param name, so noise is not drawn as a ranking.
    """
    alt = _alt()
    table = result.table
    if "importance_low" in table.columns:
        data = table[["param", "importance_mean", "importance_low", "importance_high"]]
        data = data.dropna().rename(columns={"importance_low": "low", "importance_high": "high"})
    else:  # mean and std only
        data = table[["param", "importance_mean", "importance_std"]].dropna().copy()
        data["low"] = data["importance_mean"] - data["importance_std"]
        data["high"] = data["importance_mean"] + data["importance_std"]
    ranked = bool(getattr(result, "explains", True))
    y = alt.Y(
        "param:N",
        sort="-x" if ranked else "ascending",
        title=None,
        axis=alt.Axis(labelLimit=LABEL_LIMIT),
    )
    base = alt.Chart(data).encode(y=y)
    bars = base.mark_bar().encode(
        x=alt.X(
            "importance_mean:Q",
            title=f"held-out permutation importance for {result.metric} (95 % interval)",
        ),
        tooltip=["param:N", "importance_mean:Q", "low:Q", "high:Q"],
    )
    rule = base.mark_rule().encode(x="low:Q", x2="high:Q")
    return alt.layer(bars, rule).properties(
        width=WIDTH - 200, height=max(60, 20 * len(data)), padding=PADDING
    )


def progress_chart(progress: pd.DataFrame, metric: str):
    """Best value so far by date: ``progress`` has ``date`` and ``best`` columns."""
    alt = _alt()
    data = progress[["date", "best"]].copy()
    data["date"] = pd.to_datetime(data["date"], utc=True).dt.strftime("%Y-%m-%d")
    return (
        alt.Chart(data)
        .mark_line(point=True, interpolate="step-after")
        .encode(
            x=alt.X("date:T", title="date", axis=_date_axis(alt)),
            y=alt.Y("best:Q", title=f"best {metric} so far", scale=alt.Scale(zero=False)),
        )
        .properties(width=WIDTH, height=200, padding=PADDING)
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
            x=alt.X("date:T", title="start date (UTC)", axis=_date_axis(alt)),
            y=alt.Y(
                "runs:Q",
                title="runs started",
                stack="zero",
                axis=alt.Axis(tickMinStep=1, format="d"),  # whole runs, no "0.5"
            ),
            color=alt.Color("source:N", title="source"),
            tooltip=["date:T", "source:N", "runs:Q"],
        )
        .properties(width=WIDTH, height=160, padding=PADDING)
    )
