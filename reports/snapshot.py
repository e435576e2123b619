"""Reading what a report shows, once, into a snapshot (the only I/O step of a report)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from runreview.analysis.filtering import filter_runs
from runreview.contract import ConfusionData, Environment, Finding, RunKey, Severity, run_keys
from runreview.progress import Progress
from runreview.settings import include_deleted
from runreview.sources.base import SourceError
from runreview.workspace import Workspace


@dataclass
class Snapshot:
    """Everything a report is made from, read at one moment.

    ``runs`` holds every run in scope (also those before the period, which weekly reports
    compare against); ``history`` every point of those runs.
    """

    runs: pd.DataFrame
    history: pd.DataFrame
    findings: list[Finding]
    sources: list[dict[str, str]]
    environments: dict[RunKey, Environment] = field(default_factory=dict)
    confusions: dict[RunKey, list[ConfusionData]] = field(default_factory=dict)
    details: dict[RunKey, dict[str, Any]] = field(default_factory=dict)
    include_deleted: bool = False
    read_problems: list[Finding] = field(default_factory=list)


def read_snapshot(
    ws: Workspace,
    *,
    experiments: list[str] | None = None,
    run_ids: list[str] | None = None,
    filter_expression: str | None = None,
    detail_runs: Callable[[pd.DataFrame, pd.DataFrame], list[RunKey]] | None = None,
    progress: Progress = lambda message, fraction: None,
    check_runs: Callable[[pd.DataFrame], None] | None = None,
) -> Snapshot:
    """Read the runs in scope, their history, and per-run records for ``detail_runs``.

    ``detail_runs`` picks the runs whose environment, confusion matrices and details are
    read (all runs when None). ``check_runs`` sees the runs of ``experiments`` as read,
    before ``run_ids`` and the filter narrow them and before any history is read; what it
    raises stops the read (the CLI checks the names a user gave there).
    """
    runs = ws.runs(experiments or None, progress=lambda m, f: progress(m, 0.1 + 0.2 * f))
    if check_runs:
        check_runs(runs)
    if run_ids:
        runs = runs[runs["run_id"].isin(run_ids)].reset_index(drop=True)
    if filter_expression:
        runs = filter_runs(runs, filter_expression)
    keys = run_keys(runs)
    history = ws.history(None, sorted(set(runs["run_id"])), lambda m, f: progress(m, 0.3 + 0.3 * f))
    history = _only_runs(history, keys)
    snapshot = Snapshot(
        runs=runs,
        history=history,
        findings=[],
        sources=[{"kind": s.kind, "uri": s.uri} for s in ws.sources],
        include_deleted=include_deleted(),
    )
    chosen = detail_runs(runs, history) if detail_runs else keys
    for i, key in enumerate(chosen):
        progress(f"Reading run {key[1]}", 0.6 + 0.35 * i / max(1, len(chosen)))
        _read_run_records(ws, key, snapshot)
    snapshot.findings = ws.findings() + snapshot.read_problems
    return snapshot


def _only_runs(history: pd.DataFrame, keys: list[RunKey]) -> pd.DataFrame:
    if history.empty:
        return history
    wanted = pd.MultiIndex.from_tuples(keys, names=["source_uri", "run_id"]) if keys else None
    if wanted is None:
        return history.iloc[0:0]
    index = pd.MultiIndex.from_frame(history[["source_uri", "run_id"]])
    return history[index.isin(wanted)].reset_index(drop=True)


def _read_run_records(ws: Workspace, key: RunKey, snapshot: Snapshot) -> None:
    """Environment, confusion matrices and details of one run; a failure is a finding."""
    source = ws.source(key[0])
    readers = {
        "environment": (snapshot.environments, source.read_environment),
        "confusion matrices": (snapshot.confusions, source.read_confusion),
        "run details": (snapshot.details, source.read_run_details),
    }
    for what, (target, read) in readers.items():
        try:
            target[key] = read(key[1])
        except SourceError as exc:
            snapshot.read_problems.append(
                Finding(Severity.ERROR, key[0], f"{what} not read: {exc}", run_id=key[1])
            )
