"""The stakeholder summary: headline metric, progress over time, top models, what changed;
no ids or hashes (pure)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from runreview import charts
from runreview.analysis.leaderboard import leaderboard
from runreview.analysis.periods import runs_in_period, runs_until
from runreview.contract import STATUS_FAILED, run_keys
from runreview.reports.content import ReportContent, add_overlay, history_of
from runreview.reports.format import Cells, day, num, run_label, signed
from runreview.reports.options import ReportOptions
from runreview.reports.snapshot import Snapshot


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
    period_runs = runs_in_period(runs, since, until)
    ctx["changes"] = _changes(period_runs)
    ctx.update(headline=None, top_models=[])
    if not metric or runs.empty:
        return snapshot.history.iloc[0:0]
    board = leaderboard(runs, snapshot.history, metric, direction, mode="best")
    finite = board[board["finite"]]
    if finite.empty:
        return snapshot.history.iloc[0:0]
    top = finite.head(options.top_n)
    starts = dict(zip(run_keys(runs), runs["start_time"], strict=True))
    ctx["top_models"] = [
        {
            "rank": str(r["rank"]),
            "name": run_label(r, cells),
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
    keys = run_keys(top)
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
        "name": run_label(best, cells),
    }
    if since is not None:
        before = runs_until(runs, since)
        keys = set(run_keys(before))
        earlier = finite[[key in keys for key in run_keys(finite)]]
        if not earlier.empty:
            delta = float(best["value"]) - float(earlier.iloc[0]["value"])
            headline["previous"] = num(earlier.iloc[0]["value"], 4)
            headline["delta"] = signed(delta)
            headline["improved"] = bool(delta < 0 if direction == "min" else delta > 0)
    return headline
