"""Overview: runs per source and experiment, latest and failed runs, data completeness."""

from __future__ import annotations

import streamlit as st

from app import loaders, state

config: state.SourceConfig = st.session_state["sources"]
st.title("Overview")
if config.is_empty():
    st.info("No sources configured.")
    st.stop()

with st.spinner("Reading runs ..."):
    runs = loaders.load_runs(config, state.refresh_counter())

left, mid, right = st.columns(3)
left.metric("Runs", len(runs))
mid.metric("Experiments", runs["experiment"].nunique() if not runs.empty else 0)
right.metric("Failed runs", int((runs["status"] == "FAILED").sum()) if not runs.empty else 0)

if not runs.empty:
    st.subheader("Runs per source and experiment")
    counts = runs.groupby(["source", "source_uri", "experiment"]).size().rename("runs")
    st.dataframe(counts.reset_index(), hide_index=True)

st.subheader("Data completeness")
problems = loaders.findings(config, state.refresh_counter())
if problems:
    st.warning(f"{len(problems)} problem(s) while reading; the items below were not read in full.")
    st.dataframe([f.to_dict() for f in problems], hide_index=True)
else:
    st.success("Everything in the configured sources was read.")
