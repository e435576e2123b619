"""The runreview app: the frame around every page (entry script for ``streamlit run``).

The sidebar holds what every page shares: the sources (configured ones from the
environment, ``.streamlit/secrets.toml`` or the demo workspace, plus any added here), the
experiments to include, and Refresh. Pages read the selection from ``runreview.app.selection``.

The sidebar, the page and the sidebar's callbacks run inside ``runreview.app.errors`` guards: an
unexpected exception shows a generic message with a reference, and its redacted traceback
goes to the server log (RELIABILITY.md D4).
"""

from __future__ import annotations

import hashlib

import streamlit as st

from runreview.app import common, errors, loaders, selection, sourceconfig, urlparams
from runreview.redact import redact_uri

st.set_page_config(page_title="runreview", layout="wide")
# .streamlit/config.toml says the same, but Streamlit reads it from the working directory
# only: `runreview app` started elsewhere would show exception details (D4's second line).
st.set_option("client.showErrorDetails", "none")

PAGES = [
    st.Page("views/overview.py", title="Overview", url_path="overview", default=True),
    st.Page("views/runs.py", title="Runs", url_path="runs"),
    st.Page("views/leaderboard.py", title="Leaderboard", url_path="leaderboard"),
    st.Page("views/overlays.py", title="Metric overlays", url_path="overlays"),
    st.Page("views/confusion.py", title="Confusion matrices", url_path="confusion"),
    st.Page("views/environment.py", title="Environment diff", url_path="environment"),
    st.Page("views/importance.py", title="Parameter importance", url_path="importance"),
    st.Page("views/report.py", title="Report", url_path="report"),
]
ADD_KEY = "w.add_source"
NOTICE_KEY = "_source_notice"


@errors.guarded_callback("callback add source")
def _add_source() -> None:
    """Callback of the "add a source" box: store the location and clear the box, or keep
    a rejected location in the box to be corrected (unless it holds credentials: those
    never stay in session state)."""
    typed = st.session_state.get(ADD_KEY, "")
    message = sourceconfig.add_source(typed)
    if not message or redact_uri(typed.strip()) != typed.strip():
        st.session_state[ADD_KEY] = ""
    st.session_state[NOTICE_KEY] = message or ""


@errors.guarded_callback("callback refresh")
def _refresh() -> None:
    """Callback of Refresh (no arguments: a config with credentials is never stored with
    the widget)."""
    loaders.refresh(sourceconfig.active_sources())


@errors.guarded_callback("callback switch source")
def _toggle_source(key: str, widget_key: str) -> None:
    """Callback of a source's checkbox."""
    sourceconfig.set_source_enabled(key, bool(st.session_state[widget_key]))


_remove_source = errors.guarded_callback("callback remove source")(sourceconfig.remove_source)


def source_toggles() -> None:
    """One checkbox per source (its credential-free key), and a box to add one."""
    st.subheader("Sources")
    choices = sourceconfig.source_choices()
    if not choices:
        st.warning(
            "No sources configured: set MLFLOW_TRACKING_URI / RUNREVIEW_LOGDIR / "
            "RUNREVIEW_WANDB_DIR."
        )
    for choice in choices:
        widget_key = "w.src." + hashlib.sha256(choice.key.encode()).hexdigest()[:12]
        left, right = st.columns([5, 1]) if choice.origin == "added" else (st, None)
        left.checkbox(
            common.safe_md(f"{choice.kind}: {choice.key}"),
            value=choice.enabled,
            key=widget_key,
            on_change=_toggle_source,
            args=(choice.key, widget_key),
            help=f"from {choice.origin}",
        )
        if right is not None:
            right.button(
                ":material/close:",
                key=widget_key + ".rm",
                on_click=_remove_source,
                args=(choice.key,),
                help="Remove this source",
                type="tertiary",
            )
    if sourceconfig.extra_sources_allowed():
        st.text_input(
            "Add a tracking URI, logdir or W&B folder",
            key=ADD_KEY,
            on_change=_add_source,
            placeholder="sqlite:///path/mlflow.db, /path/to/logdir or /path/to/wandb",
            help="Locations with credentials must be configured on the server instead.",
        )
    notice = st.session_state.pop(NOTICE_KEY, "")
    if notice:
        st.error(notice)


def experiment_picker(config: sourceconfig.SourceConfig) -> None:
    """The experiments to include, across sources (none chosen: all)."""
    if config.is_empty():
        return
    with st.spinner("Reading runs ..."):
        runs = loaders.load_runs(config)
    counts = runs["experiment"].astype(str).value_counts()
    names = sorted(counts.index)
    selection.widget(
        urlparams.EXPERIMENTS,
        st.multiselect,
        "Experiments",
        options=names,
        format_func=lambda name: f"{name} ({counts.get(name, 0)} runs)",
        placeholder="All experiments",
    )
    common.show_open_errors(loaders.source_errors(config))
    read_at = runs.attrs.get("read_at", "")
    st.button(
        "Refresh",
        on_click=_refresh,
        help="Read the sources again: new runs, and new points of runs still training.",
    )
    if read_at:
        st.caption(f"Runs read {read_at}")


def sidebar() -> None:
    """Sources, experiments and refresh (a failure here leaves the page running)."""
    with st.sidebar, errors.guarded("sidebar"):
        source_toggles()
        experiment_picker(sourceconfig.active_sources())


with errors.guarded("url sync"):
    selection.sync_url()
navigation = st.navigation(PAGES)
sidebar()
with errors.guarded(f"page {navigation.url_path or 'overview'}"):
    navigation.run()
