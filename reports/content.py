"""What every report kind shares: the content type, the cover facts' sections (data
completeness, scope, attached data files) and the rows and sections the kinds build from
(run tables, leaderboard rows, overlay, confusion matrices, environment, importance).

Pure: no I/O. The kinds are :mod:`.weekly`, :mod:`.stakeholder` and :mod:`.audit`;
:mod:`.assemble` picks one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from runreview import charts
from runreview.analysis.confusion import difference, per_class_metrics
from runreview.analysis.envdiff import env_diff
from runreview.analysis.importance import param_importance
from runreview.analysis.overlay import overlay_frame
from runreview.contract import METRIC_PREFIX, RunKey, Severity
from runreview.reports.format import MISSING, Cells, num, run_label, when
from runreview.reports.options import ReportOptions, iso
from runreview.reports.snapshot import Snapshot

MAX_ENV_ROWS = 40
#: The one score every report ranks and compares runs by: the last logged value of the
#: headline metric (the model a run ended with, not its best epoch).
SCORE_MODE = "last"


def score_text(metric: str, direction: str) -> str:
    """The sentence stating the score definition (one per report)."""
    better = "lower" if direction == "min" else "higher"
    return f"Score = last logged value of {metric} ({better} is better)."


def metric_words(name: str) -> str:
    """A metric key in plain words: ``val_accuracy`` -> ``validation accuracy``."""
    words = name.replace(".", " ").replace("/", " ").replace("_", " ").split()
    plain = {"val": "validation", "train": "training", "acc": "accuracy", "f1": "F1 score"}
    return " ".join(plain.get(w.lower(), w) for w in words) or name


@dataclass
class ReportContent:
    """What the renderer needs: the template context, charts and the data files."""

    kind: str
    context: dict[str, Any]
    charts: dict[str, Any] = field(default_factory=dict)
    data_files: dict[str, bytes] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)


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
    problems = [f for f in snapshot.findings if f.severity != Severity.INFO]
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
                "name": run_label(row, cells),
                "run_id": cells(row["run_id"], "run id", limit=80),
                "experiment": cells(row["experiment"], "experiment", limit=60),
                "source": row["source"],
                "status": cells(row["status"], "status", limit=20),
                "start": when(row["start_time"]),
                "value": num(row[column]) if column in runs.columns else "",
            }
        )
    return rows


def board_rows(board: pd.DataFrame, since: Any, cells: Cells) -> list[dict[str, str]]:
    """Leaderboard rows for a table; ``new`` marks runs started in the period."""
    rows = []
    for row in board.to_dict("records"):
        rows.append(
            {
                "rank": str(row["rank"]),
                "name": run_label(row, cells),
                "run_id": cells(row["run_id"], "run id", limit=60),
                "experiment": cells(row["experiment"], "experiment", limit=60),
                "source": str(row["source"]),
                "value": num(row["value"]),
                "best_step": "" if pd.isna(row["best_step"]) else str(int(row["best_step"])),
                "last_value": num(row["last_value"]),
                "best_value": num(row["best_value"]),
                "finite": bool(row["finite"]),
                "new": bool(row.get("is_new", False)),
            }
        )
    return rows


def key_of(row: dict[str, Any] | None) -> RunKey | None:
    """(source_uri, run_id) of a leaderboard row."""
    return None if row is None else (row["source_uri"], row["run_id"])


def history_of(history: pd.DataFrame, keys: list[RunKey], metric: str) -> pd.DataFrame:
    """History points of ``metric`` for ``keys``."""
    if history.empty or not keys:
        return history.iloc[0:0]
    wanted = set(keys)
    in_keys = np.fromiter(
        ((u, r) in wanted for u, r in zip(history["source_uri"], history["run_id"], strict=True)),
        dtype=bool,
        count=len(history),
    )
    mask = (history["metric"] == metric).to_numpy() & in_keys
    return history[mask]


def add_overlay(
    content: ReportContent, snapshot: Snapshot, keys: list[RunKey], metric: str
) -> None:
    """The overlay chart of ``metric`` for the runs ``keys``."""
    result = overlay_frame(snapshot.history, snapshot.runs, [metric], keys, x="step")
    if not result.points.empty:
        content.charts["overlay"] = charts.overlay_chart(result)
        content.context["overlay_caption"] = result.caption()


def confusion_section(
    snapshot: Snapshot, best: RunKey | None, previous: RunKey | None, cells: Cells
) -> dict | None:
    """The best run's confusion matrix, and its difference from the previous best."""
    matrices = (
        [m for m in snapshot.confusions.get(best, []) if m.counts is not None] if best else []
    )
    if not matrices:
        return None
    mine = matrices[0]
    section: dict[str, Any] = {
        "name": cells(mine.name, "confusion name", limit=80),
        "origin": cells(mine.origin, "confusion origin", limit=200),
        "per_class": _metric_rows(per_class_metrics(mine.labels, mine.counts)),
        "chart": charts.confusion_chart(
            mine.labels, np.asarray(mine.counts), "counts (rows = true class)"
        ),
        "diff": None,
    }
    theirs = (
        [m for m in snapshot.confusions.get(previous, []) if m.counts is not None]
        if previous
        else []
    )
    if theirs and previous != best:
        diff = difference(mine, theirs[0], normalised=True)
        section["diff"] = {
            "description": diff.description,
            "chart": charts.confusion_diff_chart(diff),
            "rows": [
                {
                    k: (num(v, 3) if isinstance(v, float) else cells(v, "label", limit=40))
                    for k, v in r.items()
                }
                for r in diff.per_class.to_dict("records")
            ],
            "columns": list(diff.per_class.columns),
        }
    return section


def _metric_rows(frame: pd.DataFrame) -> list[dict[str, str]]:
    return [
        {
            "label": str(r["label"]),
            "precision": num(r["precision"], 3),
            "recall": num(r["recall"], 3),
            "f1": num(r["f1"], 3),
            "support": num(r["support"]),
        }
        for r in frame.to_dict("records")
    ]


def env_section(
    snapshot: Snapshot, keys: list[RunKey], labels: list[str], cells: Cells
) -> dict | None:
    """Environment differences between runs (the first is the baseline)."""
    envs = [snapshot.environments.get(k) for k in keys]
    if len(keys) < 2 or any(e is None or e.is_empty() for e in envs):
        return None
    result = env_diff(envs, only_differences=True)
    rows = []
    for record in result.table.head(MAX_ENV_ROWS).to_dict("records"):
        values = [
            cells(record.get(lbl), f"environment {record['key']}", limit=160)
            for lbl in result.labels
        ]
        rows.append({"key": cells(record["key"], "environment key", limit=60), "values": values})
    changes = []
    for frame in result.package_changes.values():
        changed = frame[frame["change"] != "unchanged"]
        for rec in changed.head(MAX_ENV_ROWS).to_dict("records"):
            changes.append(
                {
                    "package": cells(rec["package"], "package", limit=60),
                    "change": str(rec["change"]),
                    "severity": str(rec["severity"]),
                    "before": cells(rec["version_a"], "version", limit=40),
                    "after": cells(rec["version_b"], "version", limit=40),
                }
            )
    return {
        "labels": labels,
        "rows": rows,
        "summaries": [
            cells(s, "environment summary", limit=400) for s in result.summaries.values()
        ],
        "packages": changes,
        "hidden_rows": result.hidden_rows,
    }


def importance_section(runs: pd.DataFrame, metric: str, content: ReportContent) -> dict | None:
    """Parameter importance for ``metric`` over ``runs``."""
    if not any(c.startswith("params.") for c in runs.columns):
        return None
    try:
        result = param_importance(runs, metric)
    except ValueError as exc:
        return {"error": str(exc), "rows": [], "warnings": [], "has_missing": False}
    if not result.table["importance_mean"].notna().any():
        chart = None
    else:
        chart = charts.importance_chart(result)
    if chart is not None:
        content.charts["importance"] = chart
    rows = [
        {
            "param": str(r["param"]),
            "kind": str(r["kind"]),
            "pearson": num(r["pearson"], 3),
            "spearman": num(r["spearman"], 3),
            "importance": num(r["importance_mean"], 3),
            "low": num(r["importance_low"], 3),
            "high": num(r["importance_high"], 3),
            "significant": "yes" if bool(r["significant"]) else "no",
        }
        for r in result.table.to_dict("records")
    ]
    return {
        "rows": rows,
        "has_missing": any(MISSING in r.values() for r in rows),
        "warnings": list(result.warnings),
        "verdict": result.verdict,
        "explains": result.explains,
        "r2_cv": num(result.r2_cv, 3),
        "description": result.description,
        "error": None,
    }
