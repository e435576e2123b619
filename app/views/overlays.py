"""Metric overlays: metrics x runs on one chart across sources, smoothed as TensorBoard does."""

from __future__ import annotations

import numpy as np
import streamlit as st

from runreview import charts
from runreview.analysis.overlay import SMOOTHING_MAX, X_TITLES, band_frame, overlay_frame
from runreview.app import common, loaders, selection, urlparams
from runreview.contract import decode_run_key

scope = common.open_scope("Metric overlays")
names = common.metric_names(scope.runs)
if not names:
    st.info("The runs in scope logged no metric.")
    st.stop()
metric = common.current_metric(scope)
metrics = selection.widget(
    urlparams.OV_METRICS,
    st.multiselect,
    "Metrics",
    options=names,
    fallback=[metric],
    placeholder="Choose metrics",
)
if not metrics:
    st.info("Choose at least one metric.")
    st.stop()
band = selection.widget(
    urlparams.OV_BAND,
    st.selectbox,
    "Mean ± std bands, runs grouped by",
    options=["", *common.param_names(scope.runs)],
    format_func=lambda p: p or "(no bands)",
)
# The overlay shows the same runs with bands on or off. Bands need the runs of each
# group: without a selection they aggregate every run in scope, and say so.
keys, chosen = common.run_choice(scope, metrics[0], default_count=5)
band_keys = keys if chosen or not band else [decode_run_key(k) for k in scope.keys]

left, mid, right = st.columns(3)
x = selection.widget(
    urlparams.OV_X, left.radio, "x axis", options=list(X_TITLES), format_func=X_TITLES.get
)
weight = selection.widget(
    urlparams.OV_WEIGHT,
    mid.slider,
    "Smoothing (TensorBoard's EMA weight)",
    min_value=0.0,
    max_value=SMOOTHING_MAX,
    step=0.001,
    format="%.3f",
)
max_points = selection.widget(
    urlparams.OV_POINTS,
    mid.number_input,
    "Points per series at most",
    min_value=50,
    max_value=20000,
    step=50,
    help="Longer series are downsampled; each bucket keeps its extremes.",
)
log_y = selection.widget(urlparams.OV_LOG, right.toggle, "Log y axis")
show_raw = selection.widget(urlparams.OV_RAW, right.toggle, "Raw lines (faint)")

with st.spinner("Reading history ..."):
    run_ids = sorted({rid for _, rid in [*keys, *band_keys]})
    history = loaders.load_history(scope.config, metrics, run_ids)
result = overlay_frame(
    history, scope.runs, metrics, keys, x=x, weight=weight, max_points=int(max_points)
)
if result.points.empty:
    st.warning("None of these runs logged a point of these metrics.")
else:
    if log_y:
        values = result.points[["value", "smoothed"]].to_numpy(dtype="float64")
        hidden = int((values <= 0).any(axis=1).sum())
        if hidden:
            st.warning(f"Log scale: {hidden} point(s) with a value ≤ 0 cannot be drawn.")
    common.show_chart(charts.overlay_chart(result, log_y=log_y, show_raw=show_raw))
st.caption(common.safe_md(result.caption()))
if result.missing:
    missing = ", ".join(f"{scope.label((u, r))} / {m}" for u, r, m in result.missing)
    st.info(common.safe_md(f"No points for: {missing}"))
with st.expander("Series and downsampling"):
    st.caption(common.safe_md(result.downsampling))
    st.dataframe(result.series, hide_index=True, width="stretch")

if band:
    st.subheader("Mean ± std bands")
    if not chosen:
        st.caption(
            f"No runs selected: the bands aggregate all {len(band_keys)} runs in scope, "
            f"the overlay above shows {len(keys)} of them."
        )
    if x != "step":
        st.caption("Bands are aligned on the step, whatever the x axis above.")
    for name in metrics:
        try:
            bands = band_frame(history, scope.runs, name, band, run_keys=band_keys, weight=weight)
        except ValueError as error:
            common.show_error(f"Bands of {name}", error)
            continue
        if bands.frame.empty or not np.isfinite(bands.frame["mean"]).any():
            st.info(common.safe_md(f"No finite points of {name} to aggregate."))
            continue
        common.show_chart(charts.band_chart(bands))
        st.dataframe(bands.groups, hide_index=True, width="stretch")
