"""Parameter importance: correlations and held-out random-forest permutation importance.

The forest is judged out of sample (cross-validated R², importance on held-out folds with
an interval). When the params explain nothing, the page says so in one sentence and the
table is shown sorted by name with nothing marked significant, not as a ranking.
"""

from __future__ import annotations

import streamlit as st

from runreview import charts
from runreview.app import common, loaders, selection, urlparams
from runreview.contract import encoded_run_keys

NUMBER = st.column_config.NumberColumn(format="%.3f")
P_VALUE = st.column_config.NumberColumn(format="%.2g")
FORMATS = {
    "pearson": NUMBER, "spearman": NUMBER, "importance_mean": NUMBER, "importance_std": NUMBER,
    "importance_low": NUMBER, "importance_high": NUMBER, "pearson_p": P_VALUE,
    "spearman_p": P_VALUE,
}  # fmt: skip

scope = common.open_scope("Parameter importance")
metric = common.metric_choice(scope)
if metric is None:
    st.stop()
left, right = st.columns([3, 1])
params = selection.widget(
    urlparams.IMP_PARAMS,
    left.multiselect,
    "Params",
    options=common.param_names(scope.runs),
    placeholder="All params",
)
only_selected = selection.widget(urlparams.IMP_SELECTED, right.toggle, "Only the selected runs")
runs = scope.runs
if only_selected:
    selected = set(selection.get(urlparams.RUNS))
    keys = list(encoded_run_keys(runs))
    runs = runs[[k in selected for k in keys]].reset_index(drop=True)

try:
    with st.spinner(f"Fitting a random forest on {len(runs)} runs ..."):
        result = loaders.load_importance(scope.config, runs, metric, params or None)
except ValueError as error:
    common.show_error("Cannot weigh the params", error)
    st.stop()

for warning in result.warnings:
    st.warning(common.safe_md(warning))
if result.explains:
    st.success(common.safe_md(result.verdict))
else:
    st.info(common.safe_md(result.verdict))
counts = st.columns(3)
counts[0].metric("Runs used", result.n_runs)
counts[1].metric("Model inputs", result.n_features)
counts[2].metric("R² cross-validated", "—" if result.r2_cv is None else f"{result.r2_cv:.3f}")
if result.table["importance_mean"].notna().any():
    common.show_chart(charts.importance_chart(result))
st.dataframe(result.table, hide_index=True, width="stretch", column_config=FORMATS)
st.caption(common.safe_md(result.description))
