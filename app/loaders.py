"""The app's only caching module: every read of a store goes through here.

Cache keys are explicit and hold no credentials: sources are keyed by
``SourceConfig.cache_key()`` (redacted URIs, plus a keyed hash where credentials were
removed), the viewer (``viewer.current_principal()``: two viewers with different
permissions never share an entry, RELIABILITY.md D5) and a generation number that the
sidebar's Refresh raises for every session at once. Full locations are passed as unhashed
``_`` arguments and never stored in a key.

Open workspaces are kept across refreshes: a refresh re-reads runs and history through the
same sources, which pick up new runs and new points of live runs incrementally
(TensorBoard files are read from their last offset). A workspace whose sources could not
all be opened or read is opened again on refresh.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from runreview.analysis.importance import ImportanceResult, param_importance
from runreview.app.jobs import JobBoard
from runreview.app.markdown import safe_md
from runreview.app.sourceconfig import SourceConfig
from runreview.app.viewer import current_principal
from runreview.contract import ConfusionData, Environment, Finding, RunKey, run_keys
from runreview.progress import Progress
from runreview.workspace import Workspace

CacheKey = tuple[str, ...]


@dataclass
class _Generations:
    """Refresh counters per set of sources, shared by every session of the server."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    data: dict[CacheKey, int] = field(default_factory=dict)
    reopen: dict[CacheKey, int] = field(default_factory=dict)


@st.cache_resource(show_spinner=False)
def _generations() -> _Generations:
    return _Generations()


def generation(config: SourceConfig) -> int:
    """How many times the sources of ``config`` were refreshed (part of every data key)."""
    return _generations().data.get(config.cache_key(), 0)


def refresh(config: SourceConfig) -> None:
    """Make the next read of ``config``'s sources fetch new runs and points."""
    gens, key = _generations(), config.cache_key()
    ws = workspace(config)
    failed = bool(ws.open_errors or ws.read_errors)  # errors stick to a workspace: reopen
    with gens.lock:
        gens.data[key] = gens.data.get(key, 0) + 1
        if failed:
            gens.reopen[key] = gens.reopen.get(key, 0) + 1


@st.cache_resource(show_spinner=False, max_entries=8)
def _workspace(key: CacheKey, reopen: int, _config: SourceConfig) -> Workspace:
    """One open workspace per set of sources; ``_config`` (full locations) is not hashed.

    Shared by viewers: it holds connections made with the sources' own credentials (part
    of ``key``), not a viewer's; what is read through it is cached per viewer below."""
    return Workspace.open(_config.tracking_uris, _config.logdirs, _config.wandb_dirs)


def workspace(config: SourceConfig) -> Workspace:
    """The open workspace for ``config`` (shared by every session using the same sources)."""
    key = config.cache_key()
    return _workspace(key, _generations().reopen.get(key, 0), config)


def fresh_workspace(config: SourceConfig) -> Workspace:
    """A newly opened workspace (not cached): a report reads its own consistent snapshot,
    exactly as ``runreview report`` does. Close it when done."""
    return Workspace.open(config.tracking_uris, config.logdirs, config.wandb_dirs)


def _scope(config: SourceConfig) -> tuple[CacheKey, str, int]:
    """The leading key of every cached read: the sources, the viewer (D5) and the sources'
    generation (Refresh). Every ``load_*`` passes it, so none can leave the viewer out."""
    return config.cache_key(), current_principal(), generation(config)


@contextmanager
def _progress_bar() -> Iterator[Progress]:
    """A progress bar for one read, removed when the read ends.

    Made inside the cached function, so Streamlit replays it (created and removed) on a
    cache hit. Its updates are also where the page's Stop lands: Streamlit raises its stop
    exception from an element call, which ends the read between two runs or directories.
    """
    bar = st.empty()

    def report(message: str, fraction: float) -> None:
        bar.progress(min(1.0, max(0.0, fraction)), text=safe_md(message))

    try:
        yield report
    finally:
        bar.empty()


@st.cache_data(show_spinner=False, max_entries=16)
def _runs(key: CacheKey, principal: str, gen: int, _ws: Workspace) -> pd.DataFrame:
    with _progress_bar() as progress:
        frame = _ws.runs(progress=progress)
    frame.attrs["read_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return frame


def load_runs(config: SourceConfig) -> pd.DataFrame:
    """The runs frame of every source of ``config`` (all experiments)."""
    return _runs(*_scope(config), workspace(config))


@st.cache_data(show_spinner=False, max_entries=64)
def _history(
    key: CacheKey,
    principal: str,
    gen: int,
    metrics: tuple[str, ...] | None,
    run_ids: tuple[str, ...] | None,
    _ws: Workspace,
) -> pd.DataFrame:
    with _progress_bar() as progress:
        return _ws.history(
            list(metrics) if metrics else None,
            list(run_ids) if run_ids is not None else None,
            progress=progress,
        )


def load_history(
    config: SourceConfig, metrics: list[str] | None = None, run_ids: list[str] | None = None
) -> pd.DataFrame:
    """Every point of ``metrics`` (all when None) of ``run_ids`` (all when None)."""
    metric_key = tuple(sorted(set(metrics))) if metrics else None
    run_key = tuple(sorted(set(run_ids))) if run_ids is not None else None
    return _history(
        *_scope(config),
        metric_key,
        run_key,
        workspace(config),
    )


@st.cache_data(show_spinner=False, max_entries=256)
def _environment(
    key: CacheKey, principal: str, gen: int, source_uri: str, run_id: str, _ws: Workspace
) -> Environment:
    return _ws.environment(source_uri, run_id)


def load_environment(config: SourceConfig, source_uri: str, run_id: str) -> Environment:
    """The environment record of one run."""
    return _environment(
        *_scope(config),
        source_uri,
        run_id,
        workspace(config),
    )


@st.cache_data(show_spinner=False, max_entries=256)
def _confusion(
    key: CacheKey, principal: str, gen: int, source_uri: str, run_id: str, _ws: Workspace
) -> list[ConfusionData]:
    return _ws.confusion(source_uri, run_id)


def load_confusion(config: SourceConfig, source_uri: str, run_id: str) -> list[ConfusionData]:
    """The confusion matrices of one run (possibly none)."""
    return _confusion(
        *_scope(config),
        source_uri,
        run_id,
        workspace(config),
    )


@st.cache_data(show_spinner=False, max_entries=32)
def _importance(
    key: CacheKey,
    principal: str,
    gen: int,
    metric: str,
    run_keys: tuple[RunKey, ...],
    params: tuple[str, ...] | None,
    _runs: pd.DataFrame,
) -> ImportanceResult:
    return param_importance(_runs, metric, list(params) if params else None, random_state=0)


def load_importance(
    config: SourceConfig, runs: pd.DataFrame, metric: str, params: list[str] | None
) -> ImportanceResult:
    """Parameter importance of ``metric`` over ``runs`` (keyed by their run keys)."""
    keys = tuple(run_keys(runs))
    chosen = tuple(params) if params else None
    return _importance(*_scope(config), metric, keys, chosen, runs)


def findings(config: SourceConfig) -> list[Finding]:
    """Every problem met so far while reading ``config``'s sources (not cached: live)."""
    return workspace(config).findings()


def source_errors(config: SourceConfig) -> list[Finding]:
    """The sources of ``config`` that could not be opened, or not read at all."""
    ws = workspace(config)
    return list(ws.open_errors) + [f for f in ws.read_errors if f not in ws.open_errors]


@st.cache_resource(show_spinner=False)
def job_board() -> JobBoard:
    """This server's report jobs (one board for every session: a job outlives its tab)."""
    return JobBoard()
