"""The weekly review: new and failed runs, leaderboard, champion vs challenger, overlay,
confusion matrices, environment diff and parameter importance (pure)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from runreview.analysis.champion import champion_challenger
from runreview.analysis.leaderboard import leaderboard
from runreview.analysis.periods import runs_in_period, runs_until
from runreview.contract import STATUS_FAILED, run_keys
from runreview.reports.content import (
    ReportContent,
    add_overlay,
    board_rows,
    confusion_section,
    env_section,
    history_of,
    importance_section,
    key_of,
    run_rows,
)
from runreview.reports.format import Cells, num, run_label, signed
from runreview.reports.options import ReportOptions
from runreview.reports.snapshot import Snapshot


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
    period_runs = runs_in_period(runs, since, until)
    ctx["new_runs"] = run_rows(period_runs, metric, cells)
    ctx["failed_runs"] = run_rows(
        period_runs[period_runs["status"] == STATUS_FAILED], metric, cells
    )
    if not metric or runs.empty:
        ctx.update(leaderboard=[], champion=None, confusion=None, environment=None, importance=None)
        return snapshot.history.iloc[0:0]
    board = leaderboard(runs, snapshot.history, metric, direction, mode="best", top_n=options.top_n)
    new_keys = set(run_keys(period_runs))
    board["is_new"] = [key in new_keys for key in run_keys(board)]
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
    keys = run_keys(board)
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
            "name": run_label(row, cells),
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
