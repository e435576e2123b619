"""Assembling a report: analysis results + provenance -> template context. Pure (no I/O).

Every kind shares the cover facts, the data-completeness section and the attachments;
``weekly``, ``stakeholder`` and ``audit`` add their own sections.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from runreview.analysis.leaderboard import metric_direction
from runreview.contract import METRIC_PREFIX, SEVERITY_INFO
from runreview.reports import audit, sections
from runreview.reports.format import Cells, num, when
from runreview.reports.manifest import sha256_hex, snapshot_hash
from runreview.reports.options import ReportOptions, iso
from runreview.reports.snapshot import Snapshot

PREFERRED_WORDS = ("accuracy", "acc", "f1", "auc", "r2", "loss")


@dataclass
class ReportContent:
    """What the renderer needs: the template context, charts and the data files."""

    kind: str
    context: dict[str, Any]
    charts: dict[str, Any] = field(default_factory=dict)
    data_files: dict[str, bytes] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)


def choose_metric(runs: pd.DataFrame) -> str | None:
    """The headline metric when none is given: the best-covered, validation first."""
    columns = [c for c in runs.columns if c.startswith(METRIC_PREFIX)]
    if not columns:
        return None

    def score(column: str) -> tuple[int, int, int, str]:
        name = column.removeprefix(METRIC_PREFIX).lower()
        coverage = int(np.isfinite(pd.to_numeric(runs[column], errors="coerce")).sum())
        preferred = next(
            (len(PREFERRED_WORDS) - i for i, w in enumerate(PREFERRED_WORDS) if w in name), 0
        )
        return (coverage, int("val" in name or "test" in name), preferred, name)

    return max(columns, key=score).removeprefix(METRIC_PREFIX)


def assemble(snapshot: Snapshot, options: ReportOptions) -> ReportContent:
    """The report's context, charts and data files for ``options.kind``."""
    metric = (options.metric or choose_metric(snapshot.runs) or "").removeprefix(METRIC_PREFIX)
    direction = options.goal or (metric_direction(metric) if metric else "max")
    cells = Cells()
    since, until = options.period()
    content = ReportContent(kind=options.kind, context={})
    ctx = content.context
    ctx.update(
        kind=options.kind,
        title=options.display_title(),
        metric=metric,
        direction=direction,
        direction_text="lower is better" if direction == "min" else "higher is better",
        period_text=_period_text(since, until),
        generated_at=iso(options.now_utc),
        generated_text=when(options.now_utc),
        completeness=completeness(snapshot, cells),
        run_count=len(snapshot.runs),
        overlay_caption="",
    )
    builders = {
        "weekly": sections.weekly,
        "stakeholder": sections.stakeholder,
        "audit": audit.audit,
    }
    chart_history = builders[options.kind](snapshot, options, metric, direction, cells, content)
    content.data_files = data_files(snapshot, chart_history)
    content.scope = scope(snapshot, options, since, until)
    ctx["scope"] = content.scope
    ctx["snapshot_sha256"] = snapshot_hash(content.data_files)
    ctx["report_id"] = report_id(options, ctx["snapshot_sha256"])
    ctx["truncated_values"] = cells.truncated
    ctx["missing_glyphs"] = []
    return content


def report_id(options: ReportOptions, snapshot_sha: str) -> str:
    """A short id fixed by the kind, the time and the data (same input, same id)."""
    return sha256_hex(f"{options.kind}|{iso(options.now_utc)}|{snapshot_sha}".encode())[:16]


def _period_text(since: Any, until: Any) -> str:
    if since is None:
        return f"all runs up to {when(until)}"
    return f"{when(since)} to {when(until)}"


def completeness(snapshot: Snapshot, cells: Cells) -> dict[str, Any]:
    """The data-completeness section: every finding, counted, with its location."""
    rows = [
        {
            "severity": f.severity,
            "where": cells(f.path or f.source_uri, "finding location", limit=160),
            "run": cells(f.run_id or "", "finding run", limit=80),
            "position": _position(f.offset, f.record),
            "message": cells(f.message, "finding message", limit=400),
        }
        for f in snapshot.findings
    ]
    problems = [f for f in snapshot.findings if f.severity != SEVERITY_INFO]
    return {
        "complete": not problems,
        "problem_count": len(problems),
        "note_count": len(snapshot.findings) - len(problems),
        "rows": rows,
        "include_deleted": snapshot.include_deleted,
    }


def _position(offset: int | None, record: int | None) -> str:
    parts = []
    if offset is not None:
        parts.append(f"byte {offset}")
    if record is not None:
        parts.append(f"record {record}")
    return ", ".join(parts)


def scope(snapshot: Snapshot, options: ReportOptions, since: Any, until: Any) -> dict[str, Any]:
    """What the report covers; sources are already redacted by the sources."""
    return {
        "sources": snapshot.sources,
        "experiments": list(options.experiments)
        or sorted(set(snapshot.runs["experiment"].astype(str))),
        "filter": options.filter,
        "run_ids": list(options.run_ids),
        "period": {"since": iso(since), "until": iso(until)},
        "metric": options.metric,
        "goal": options.goal,
        "include_deleted": snapshot.include_deleted,
        "runs_in_scope": int(len(snapshot.runs)),
    }


def data_files(snapshot: Snapshot, chart_history: pd.DataFrame) -> dict[str, bytes]:
    """runs.csv (every run in scope), history.csv (the points charted), findings.json."""
    runs = snapshot.runs.sort_values(["source_uri", "run_id"], kind="mergesort")
    history = chart_history.sort_values(
        ["source_uri", "run_id", "metric", "step", "timestamp"], kind="mergesort"
    )
    findings = json.dumps([f.to_dict() for f in snapshot.findings], indent=2, sort_keys=True)
    return {
        "runs.csv": _csv(runs),
        "history.csv": _csv(history),
        "findings.json": (findings + "\n").encode(),
    }


def _csv(frame: pd.DataFrame) -> bytes:
    text = frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ", lineterminator="\n")
    return text.encode("utf-8", "surrogatepass")


def run_rows(runs: pd.DataFrame, metric: str, cells: Cells) -> list[dict[str, str]]:
    """Compact run rows for tables: name, experiment, source, status, start, metric."""
    column = METRIC_PREFIX + metric
    rows = []
    for _, row in runs.iterrows():
        rows.append(
            {
                "name": cells(
                    row["run_name"] or row["run_id"], f"run name of {row['run_id']}", limit=80
                ),
                "run_id": cells(row["run_id"], "run id", limit=80),
                "experiment": cells(row["experiment"], "experiment", limit=60),
                "source": row["source"],
                "status": cells(row["status"], "status", limit=20),
                "start": when(row["start_time"]),
                "value": num(row[column]) if column in runs.columns else "",
            }
        )
    return rows
