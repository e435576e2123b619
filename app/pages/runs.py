"""Runs: the unified table of every source."""

from __future__ import annotations

import streamlit as st

from app import loaders, state

config: state.SourceConfig = st.session_state["sources"]
st.title("Runs")
if config.is_empty():
    st.info("No sources configured.")
    st.stop()

runs = loaders.load_runs(config, state.refresh_counter())
st.caption(f"{len(runs)} runs from {len(config.key())} source(s)")
st.dataframe(runs, hide_index=True)
