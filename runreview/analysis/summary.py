"""Summaries of a runs frame for an overview: per source and experiment, latest, failed.

Pure functions over contract frames (see ``runreview.contract``); nothing here reads a
store or the clock. Runs are identified by ``(source_uri, run_id)``, never by name.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from runreview.contract import (
    STATUS_FAILED,
    STATUS_FINISHED,
    STATUS_KILLED,
    STATUS_RUNNING,
    TAG_PREFIX,
    Finding,
    Severity,
)

#: Statuses counted as failed runs.
FAILED_STATUSES = (STATUS_FAILED, STATUS_KILLED)
SUMMARY_COLUMNS = [
    "source",
    "source_uri",
    "experiment",
    "runs",
    "finished",
    "running",
    "failed",
    "other",
    "first_start",
    "last_start",
]
BRIEF_COLUMNS = [
    "run_name",
    "experiment",
    "source",
    "status",
    "start_time",
    "end_time",
    "duration_s",
    "run_id",
    "source_uri",
]
FINDING_COLUMNS = ["severity", "kind", "source_uri", "path", "run_id", "position", "message"]
_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def source_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (source, source_uri, experiment): run counts by status, first/last start.

    ``other`` counts statuses that are not FINISHED, RUNNING, FAILED or KILLED (e.g. the
    ``UNKNOWN`` of TensorBoard runs, which record no status).
    """
    if runs.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    status = runs["status"].astype(str)
    frame = runs[["source", "source_uri", "experiment"]].astype(str).copy()
    frame["runs"] = 1
    frame["finished"] = (status == STATUS_FINISHED).astype(int)
    frame["running"] = (status == STATUS_RUNNING).astype(int)
    frame["failed"] = status.isin(FAILED_STATUSES).astype(int)
    frame["other"] = frame["runs"] - frame[["finished", "running", "failed"]].sum(axis=1)
    frame["first_start"] = runs["start_time"]
    frame["last_start"] = runs["start_time"]
    grouped = frame.groupby(["source", "source_uri", "experiment"], sort=True)
    counts = grouped[["runs", "finished", "running", "failed", "other"]].sum()
    times = grouped.agg(first_start=("first_start", "min"), last_start=("last_start", "max"))
    return counts.join(times).reset_index()[SUMMARY_COLUMNS]


def _brief(runs: pd.DataFrame) -> pd.DataFrame:
    """The columns a short run list shows, with the duration in seconds."""
    out = runs.reindex(columns=[c for c in BRIEF_COLUMNS if c != "duration_s"]).copy()
    start = pd.to_datetime(out["start_time"], utc=True)
    end = pd.to_datetime(out["end_time"], utc=True)
    out.insert(6, "duration_s", (end - start).dt.total_seconds())
    return out


def latest_runs(runs: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` runs that started last (runs without a start time come last)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    ordered = runs.sort_values(
        ["start_time", "run_name", "source_uri", "run_id"],
        ascending=[False, True, True, True],
        na_position="last",
        kind="mergesort",
    )
    return _brief(ordered.head(n)).reset_index(drop=True)


def failed_runs(
    runs: pd.DataFrame, reason_tags: Iterable[str] = ("failure_reason",)
) -> pd.DataFrame:
    """Runs whose status is FAILED or KILLED, latest first.

    Columns ``BRIEF_COLUMNS``, plus ``tags.<name>`` for each of ``reason_tags`` the frame
    has (a tag a training script sets to say why it failed).
    """
    failed = runs[runs["status"].astype(str).isin(FAILED_STATUSES)]
    failed = failed.sort_values("start_time", ascending=False, na_position="last", kind="mergesort")
    out = _brief(failed)
    for name in reason_tags:
        column = TAG_PREFIX + name
        if column in runs.columns:
            out[column] = failed[column].to_numpy()
    return out.reset_index(drop=True)


def runs_per_day(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs started per UTC day and source: ``date`` (midnight UTC), ``source``, ``runs``.

    Runs without a start time are left out.
    """
    start = pd.to_datetime(runs["start_time"], utc=True)
    dated = runs.loc[start.notna(), ["source"]].astype(str).copy()
    if dated.empty:
        return pd.DataFrame(
            {"date": pd.Series(dtype="datetime64[us, UTC]"), "source": [], "runs": []}
        )
    dated["date"] = start[start.notna()].dt.floor("D")
    counts = dated.groupby(["date", "source"], sort=True).size().rename("runs").reset_index()
    return counts[["date", "source", "runs"]]


def findings_table(findings: Iterable[Finding]) -> pd.DataFrame:
    """Findings as a table, errors first: ``FINDING_COLUMNS`` (position = byte / record)."""
    rows = []
    for finding in findings:
        position = []
        if finding.offset is not None:
            position.append(f"byte {finding.offset}")
        if finding.record is not None:
            position.append(f"record {finding.record}")
        rows.append(
            {
                "severity": finding.severity,
                "kind": finding.kind,
                "source_uri": finding.source_uri,
                "path": finding.path or "",
                "run_id": finding.run_id or "",
                "position": ", ".join(position),
                "message": finding.message,
            }
        )
    table = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    order = table["severity"].map(_SEVERITY_ORDER).fillna(len(_SEVERITY_ORDER))
    return (
        table.assign(_order=order)
        .sort_values("_order", kind="mergesort")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """How many findings of each severity (``error``, ``warning``, ``info``)."""
    counts = dict.fromkeys(_SEVERITY_ORDER, 0)
    for finding in findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    return counts
