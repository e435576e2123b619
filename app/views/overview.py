"""Overview: runs per source and experiment, latest and failed runs, data completeness."""

from __future__ import annotations

import streamlit as st

from runreview import charts
from runreview.analysis.summary import (
    failed_runs,
    latest_runs,
    runs_per_day,
    source_summary,
)
from runreview.app import common, loaders, sourceconfig

scope = common.open_scope("Overview", require_runs=False)
runs = scope.runs
failed = failed_runs(runs)

# Sources as the sidebar lists them: switched on (of all listed), with runs or not.
switched_on, listed = len(scope.config.key()), len(sourceconfig.source_choices())
with_runs = runs["source_uri"].nunique()
counts = st.columns(4)
counts[0].metric("Runs", len(runs))
counts[1].metric(
    "Sources",
    switched_on if switched_on == listed else f"{switched_on} of {listed}",
    help=f"Switched on in the sidebar ({listed} listed); {with_runs} with runs in the "
    "chosen experiments.",
)
counts[2].metric("Experiments", runs["experiment"].nunique())
counts[3].metric("Failed runs", len(failed))

st.subheader("Runs per source and experiment")
summary = source_summary(runs)
st.dataframe(summary, hide_index=True, width="stretch", column_config=common.number_config(summary))
per_day = runs_per_day(runs)
if not per_day.empty:
    common.show_chart(charts.runs_timeline_chart(per_day))

st.subheader("Latest runs")
latest = latest_runs(runs, 10) if len(runs) else runs
st.dataframe(latest, hide_index=True, width="stretch", column_config=common.number_config(latest))

st.subheader("Failed runs")
if failed.empty:
    st.success("No failed or killed runs.")
else:
    st.dataframe(
        failed, hide_index=True, width="stretch", column_config=common.number_config(failed)
    )

st.subheader("Data completeness")
common.show_findings(loaders.findings(scope.config))
