"""The runreview app: the frame around every page (entry script for ``streamlit run``)."""

from __future__ import annotations

import streamlit as st

from app import state

st.set_page_config(page_title="runreview", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", url_path="overview", default=True),
    st.Page("pages/runs.py", title="Runs", url_path="runs"),
]


def sidebar(config: state.SourceConfig) -> None:
    """The sources in use, and a refresh button that re-reads them."""
    with st.sidebar:
        st.caption("Sources")
        if config.is_empty():
            st.warning("No sources configured. Run `runreview demo` or pass --tracking-uri.")
        for label in config.key():
            st.text(label)
        if st.button("Refresh", help="Re-read the stores: new runs and new points"):
            st.session_state["refresh"] = state.refresh_counter() + 1


config = state.configured_sources()
st.session_state["sources"] = config
sidebar(config)
st.navigation(PAGES).run()
