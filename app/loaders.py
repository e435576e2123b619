"""The app's only caching module: every read of a store goes through here.

Cache keys are explicit and hold no credentials: sources are keyed by their redacted URIs
plus a refresh counter, and the full locations stay in server-side configuration.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.state import SourceConfig
from runreview.contract import ConfusionData, Environment, Finding
from runreview.workspace import Workspace


@st.cache_resource(show_spinner=False, max_entries=8)
def _workspace(key: tuple[str, ...], _config: SourceConfig, refresh: int) -> Workspace:
    """One open workspace per set of sources; ``_config`` is not hashed (it may hold secrets)."""
    return Workspace.open(_config.tracking_uris, _config.logdirs)


def workspace(config: SourceConfig, refresh: int = 0) -> Workspace:
    """The open workspace for ``config`` (shared by every session using the same sources)."""
    return _workspace(config.key(), config, refresh)


@st.cache_data(show_spinner=False, max_entries=16)
def _runs(key: tuple[str, ...], refresh: int, _ws: Workspace) -> pd.DataFrame:
    return _ws.runs()


def load_runs(config: SourceConfig, refresh: int = 0) -> pd.DataFrame:
    """The runs frame of every configured source."""
    return _runs(config.key(), refresh, workspace(config, refresh))


@st.cache_data(show_spinner=False, max_entries=64)
def _history(
    key: tuple[str, ...], refresh: int, metrics: tuple[str, ...] | None, _ws: Workspace
) -> pd.DataFrame:
    return _ws.history(list(metrics) if metrics else None)


def load_history(
    config: SourceConfig, metrics: list[str] | None = None, refresh: int = 0
) -> pd.DataFrame:
    """The history of the given metrics (all when None) across every source."""
    key = tuple(sorted(metrics)) if metrics else None
    return _history(config.key(), refresh, key, workspace(config, refresh))


def load_environment(config: SourceConfig, source_uri: str, run_id: str) -> Environment:
    """The environment record of one run (sources cache their own reads)."""
    return workspace(config).environment(source_uri, run_id)


def load_confusion(config: SourceConfig, source_uri: str, run_id: str) -> list[ConfusionData]:
    """The confusion matrices of one run."""
    return workspace(config).confusion(source_uri, run_id)


def findings(config: SourceConfig, refresh: int = 0) -> list[Finding]:
    """Every problem met while reading the configured sources."""
    return workspace(config, refresh).findings()
