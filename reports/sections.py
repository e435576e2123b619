"""The sections of the weekly review and the stakeholder summary (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from runreview import charts
from runreview.analysis.confusion import difference, per_class_metrics
from runreview.analysis.envdiff import env_diff
from runreview.analysis.importance import param_importance
from runreview.analysis.leaderboard import champion_challenger, leaderboard
from runreview.analysis.overlay import overlay_frame
from runreview.contract import STATUS_FAILED
from runreview.reports.format import Cells, day, num, signed

if TYPE_CHECKING:
    from runreview.reports.assemble import ReportContent
    from runreview.reports.options import ReportOptions
    from runreview.reports.snapshot import Snapshot

RunKey = tuple[str, str]
MAX_ENV_ROWS = 40


def runs_until(runs: pd.DataFrame, until: Any) -> pd.DataFrame:
    """Runs started before ``until`` (undated runs are kept)."""
    start = pd.to_datetime(runs["start_time"], utc=True)
    return runs[start.isna() | (start < pd.Timestamp(until))]


def in_period(runs: pd.DataFrame, since: Any, until: Any) -> pd.DataFrame:
    """Runs started in ``[since, until)`` (all dated runs before ``until`` without since)."""
    start = pd.to_datetime(runs["start_time"], utc=True)
    mask = start < pd.Timestamp(until)
    if since is not None:
        mask &= start >= pd.Timestamp(since)
    return runs[mask.fillna(False)].sort_values("start_time", kind="mergesort")


def board_rows(board: pd.DataFrame, since: Any, cells: Cells) -> list[dict[str, str]]:
    """Leaderboard rows for a table; ``new`` marks runs started in the period."""
    rows = []
    for row in board.to_dict("records"):
        rows.append(
            {
                "rank": str(row["rank"]),
                "name": cells(row["run_name"] or row["run_id"], "run name", limit=80),
                "run_id": cells(row["run_id"], "run id", limit=60),
                "experiment": cells(row["experiment"], "experiment", limit=60),
                "source": str(row["source"]),
                "value": num(row["value"]),
                "best_step": "" if pd.isna(row["best_step"]) else str(int(row["best_step"])),
                "last_value": num(row["last_value"]),
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
        return {"error": str(exc), "rows": [], "warnings": []}
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
            "std": num(r["importance_std"], 3),
        }
        for r in result.table.to_dict("records")
    ]
    return {
        "rows": rows,
        "warnings": list(result.warnings),
        "description": result.description,
        "error": None,
    }


# --- weekly -----------------------------------------------------------------------------


def weekly(
    snapshot: Snapshot,
    options: ReportOptions,
    metric: str,
    direction: str,
    cells: Cells,
    content: ReportContent,
) -> pd.DataFrame:
    """New and failed runs, leaderboard, champion vs challenger, overlay, confusion matrices,
    environment diff and parameter importance."""
    ctx = content.context
    since, until = options.period()
    runs = runs_until(snapshot.runs, until)
    period_runs = in_period(runs, since, until)
    from runreview.reports.assemble import run_rows

    ctx["new_runs"] = run_rows(period_runs, metric, cells)
    ctx["failed_runs"] = run_rows(
        period_runs[period_runs["status"] == STATUS_FAILED], metric, cells
    )
    if not metric or runs.empty:
        ctx.update(leaderboard=[], champion=None, confusion=None, environment=None, importance=None)
        return snapshot.history.iloc[0:0]
    board = leaderboard(runs, snapshot.history, metric, direction, mode="best", top_n=options.top_n)
    new_keys = set(zip(period_runs["source_uri"], period_runs["run_id"], strict=True))
    board["is_new"] = [
        (u, r) in new_keys for u, r in zip(board["source_uri"], board["run_id"], strict=True)
    ]
    ctx["leaderboard"] = board_rows(board, since, cells)
    ctx["leaderboard_description"] = board.attrs.get("description", "")
    best = key_of(board.iloc[0].to_dict()) if not board.empty else None
    previous = None
    if since is not None:
        cc = champion_challenger(runs, snapshot.history, metric, since, direction, until=until)
        ctx["champion"] = _champion_context(cc, cells)
        previous = key_of(cc.champion)
        best = key_of(cc.challenger) if cc.challenger_wins else best
    else:
        ctx["champion"] = None
    keys = list(zip(board["source_uri"], board["run_id"], strict=True))
    add_overlay(content, snapshot, keys, metric)
    ctx["confusion"] = confusion_section(snapshot, best, previous, cells)
    if ctx["confusion"]:
        content.charts["confusion"] = ctx["confusion"].pop("chart")
        if ctx["confusion"]["diff"]:
            content.charts["confusion_diff"] = ctx["confusion"]["diff"].pop("chart")
    pair = [k for k in (previous, best) if k is not None]
    ctx["environment"] = (
        env_section(snapshot, pair, ["previous best", "best"], cells)
        if len(set(pair)) == 2
        else None
    )
    ctx["importance"] = importance_section(runs, metric, content)
    return history_of(snapshot.history, keys, metric)


def _champion_context(cc: Any, cells: Cells) -> dict[str, Any]:
    def side(row: dict | None) -> dict[str, str] | None:
        if row is None:
            return None
        return {
            "name": cells(row["run_name"] or row["run_id"], "run name", limit=80),
            "value": num(row["value"]),
            "run_id": cells(row["run_id"], "run id", limit=60),
        }

    deltas = [
        {
            "metric": cells(r["metric"], "metric", limit=60),
            "champion": num(r["champion"]),
            "challenger": num(r["challenger"]),
            "delta": signed(r["delta"]),
            "verdict": str(r["verdict"]),
        }
        for r in cc.deltas.to_dict("records")
    ]
    return {
        "champion": side(cc.champion),
        "challenger": side(cc.challenger),
        "wins": cc.challenger_wins,
        "description": cells(cc.description, "champion description", limit=600),
        "deltas": deltas,
    }


# --- stakeholder ------------------------------------------------------------------------


def best_so_far(board: pd.DataFrame, runs: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Best value reached by any run started on or before each day: ``date``, ``best``."""
    starts = runs[["source_uri", "run_id", "start_time"]]
    data = board[board["finite"]].merge(starts, on=["source_uri", "run_id"], how="left")
    data = data.dropna(subset=["start_time"]).sort_values("start_time", kind="mergesort")
    if data.empty:
        return pd.DataFrame(columns=["date", "best"])
    running = data["value"].cummin() if direction == "min" else data["value"].cummax()
    frame = pd.DataFrame(
        {"date": pd.to_datetime(data["start_time"], utc=True).dt.floor("D"), "best": running}
    )
    return frame.groupby("date", as_index=False)["best"].last()


def stakeholder(
    snapshot: Snapshot,
    options: ReportOptions,
    metric: str,
    direction: str,
    cells: Cells,
    content: ReportContent,
) -> pd.DataFrame:
    """Headline metric, progress over time, top models, what changed; no ids or hashes."""
    ctx = content.context
    since, until = options.period()
    runs = runs_until(snapshot.runs, until)
    period_runs = in_period(runs, since, until)
    ctx["changes"] = _changes(period_runs)
    ctx.update(headline=None, top_models=[])
    if not metric or runs.empty:
        return snapshot.history.iloc[0:0]
    board = leaderboard(runs, snapshot.history, metric, direction, mode="best")
    finite = board[board["finite"]]
    if finite.empty:
        return snapshot.history.iloc[0:0]
    top = finite.head(options.top_n)
    starts = dict(
        zip(zip(runs["source_uri"], runs["run_id"], strict=True), runs["start_time"], strict=True)
    )
    ctx["top_models"] = [
        {
            "rank": str(r["rank"]),
            "name": cells(r["run_name"] or r["run_id"], "run name", limit=80),
            "experiment": cells(r["experiment"], "experiment", limit=60),
            "value": num(r["value"], 4),
            "date": day(starts.get((r["source_uri"], r["run_id"]))),
        }
        for r in top.to_dict("records")
    ]
    ctx["headline"] = _headline(finite, runs, since, direction, cells)
    progress = best_so_far(board, runs, direction)
    if not progress.empty:
        content.charts["progress"] = charts.progress_chart(progress, metric)
    keys = list(zip(top["source_uri"], top["run_id"], strict=True))
    add_overlay(content, snapshot, keys, metric)
    return history_of(snapshot.history, keys, metric)


def _changes(period_runs: pd.DataFrame) -> list[str]:
    failed = int((period_runs["status"] == STATUS_FAILED).sum())
    experiments = period_runs["experiment"].nunique()
    return [
        f"{len(period_runs)} new run(s) in {experiments} experiment(s) this period.",
        f"{failed} run(s) failed." if failed else "No run failed.",
    ]


def _headline(
    finite: pd.DataFrame, runs: pd.DataFrame, since: Any, direction: str, cells: Cells
) -> dict:
    best = finite.iloc[0]
    headline = {
        "value": num(best["value"], 4),
        "name": cells(best["run_name"] or best["run_id"], "run name", limit=80),
    }
    if since is not None:
        before = runs_until(runs, since)
        keys = set(zip(before["source_uri"], before["run_id"], strict=True))
        earlier = finite[
            [(u, r) in keys for u, r in zip(finite["source_uri"], finite["run_id"], strict=True)]
        ]
        if not earlier.empty:
            delta = float(best["value"]) - float(earlier.iloc[0]["value"])
            headline["previous"] = num(earlier.iloc[0]["value"], 4)
            headline["delta"] = signed(delta)
            headline["improved"] = bool(delta < 0 if direction == "min" else delta > 0)
    return headline
