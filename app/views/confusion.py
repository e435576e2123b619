"""Confusion matrices: runs side by side, per-class metrics, and the difference A - B."""

from __future__ import annotations

import numpy as np
import streamlit as st

from runreview import charts
from runreview.analysis.confusion import difference, normalise, per_class_metrics
from runreview.app import common, loaders, selection, sourceconfig, urlparams
from runreview.contract import ConfusionData, RunKey, encode_run_key

MAX_SHOWN = 6
PER_ROW = 2
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCALES = {"counts": "Counts", "row": "Row-normalised (recall on the diagonal)"}
METRIC_FORMAT = {
    name: st.column_config.ProgressColumn(name, min_value=0.0, max_value=1.0, format="%.3f")
    for name in ("precision", "recall", "f1")
}


def pick_matrix(matrices: list[ConfusionData]) -> ConfusionData:
    """The first matrix with counts, else the first (an image)."""
    return next((m for m in matrices if m.counts is not None), matrices[0])


def show_run(
    config: sourceconfig.SourceConfig, label: str, key: RunKey, scale: str
) -> ConfusionData | None:
    """One run's matrix, or the error that stopped it (the other runs still show)."""
    st.text(label)
    try:
        return draw_run(config, key, scale)
    except Exception as error:
        common.show_error(f"Run {label}", error)
        return None


def draw_run(config: sourceconfig.SourceConfig, key: RunKey, scale: str) -> ConfusionData | None:
    """Chart and per-class table, or the logged image; None when the run has no matrix."""
    with st.spinner("Reading ..."):
        matrices = loaders.load_confusion(config, *key)
    if not matrices:
        st.info("No confusion matrix logged.")
        return None
    data = pick_matrix(matrices)
    if data.counts is None:
        if data.image and data.image.startswith(PNG_SIGNATURE):
            st.image(data.image, width="stretch")
        else:
            st.warning("A logged image of a matrix that is not a PNG; not shown.")
    else:
        table = per_class_metrics(data.labels, data.counts)  # raises for invalid counts
        matrix = normalise(data.counts, "row") if scale == "row" else data.counts
        chart = charts.confusion_chart(data.labels, matrix, data.name, counts=scale != "row")
        common.show_chart(chart)
        st.dataframe(table, hide_index=True, width="stretch", column_config=METRIC_FORMAT)
    others = len(matrices) - 1
    st.caption(common.safe_md(f"from {data.origin}" + (f" (+{others} more)" if others else "")))
    return data


scope = common.open_scope("Confusion matrices")
keys, _ = common.run_choice(scope, common.current_metric(scope), default_count=2)
scale = selection.widget(
    urlparams.CM_NORM,
    st.radio,
    "Show",
    options=list(SCALES),
    format_func=SCALES.get,
    horizontal=True,
)
if len(keys) > MAX_SHOWN:
    st.caption(f"Showing the first {MAX_SHOWN} of {len(keys)} runs.")
shown = keys[:MAX_SHOWN]
found: dict[str, ConfusionData] = {}
for start in range(0, len(shown), PER_ROW):
    columns = st.columns(PER_ROW)
    for column, key in zip(columns, shown[start : start + PER_ROW], strict=False):
        with column:
            data = show_run(scope.config, scope.label(key), key, scale)
        if data is not None and data.counts is not None:
            found[encode_run_key(key)] = data

st.subheader("Difference A - B")
if len(found) < 2:
    st.info("Choose two runs that logged matrix counts (not only an image) to compare them.")
    st.stop()
options = list(found)
left, right = st.columns(2)
a = selection.widget(
    urlparams.CM_A, left.selectbox, "Run A", options=options, format_func=scope.label
)
b = selection.widget(
    urlparams.CM_B,
    right.selectbox,
    "Run B",
    options=options,
    format_func=scope.label,
    fallback=options[1],
)
try:
    diff = difference(found[a], found[b], normalised=scale == "row")
except ValueError as error:
    common.show_error("Difference", error)
    st.stop()
st.caption(common.safe_md(diff.description))
if np.all(diff.delta == 0):
    st.success("No difference: both runs have the same matrix.")
common.show_chart(charts.confusion_diff_chart(diff))
for side, labels in (("A", diff.only_in_a), ("B", diff.only_in_b)):
    if labels:
        st.info(common.safe_md(f"Labels only in {side}: {', '.join(labels)}"))
st.dataframe(diff.per_class, hide_index=True, width="stretch")
