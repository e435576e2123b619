"""The stakeholder summary: headline metric, progress over time, top models, what changed;
no ids or hashes (pure)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from runreview import charts
from runreview.analysis.leaderboard import leaderboard
from runreview.analysis.overlay import overlay_frame
from runreview.analysis.periods import runs_in_period, runs_until
from runreview.contract import STATUS_FAILED, run_keys
from runreview.reports.content import SCORE_MODE, ReportContent, history_of, metric_words
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
    ctx.update(
        headline=None,
        top_models=[],
        metric_words=metric_words(metric),
        score_sentence="",
        progress_takeaway="",
        progress_experiment="",
        progress_others=0,
        overlay_takeaway="",
    )
    if not metric or runs.empty:
        return snapshot.history.iloc[0:0]
    board = leaderboard(runs, snapshot.history, metric, direction, mode=SCORE_MODE)
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
    words = metric_words(metric)
    ctx["metric_words"] = words
    better = "lower" if direction == "min" else "higher"
    ctx["score_sentence"] = f"Each model is scored by its final {words}; {better} is better."
    # Progress is drawn for the champion's experiment only: other experiments are trained
    # on other data, so one running best across them would mix datasets.
    experiment = str(finite.iloc[0]["experiment"])
    shown = cells(experiment, "experiment", limit=60)
    ctx["progress_experiment"] = shown
    others = board.loc[board["finite"], "experiment"].astype(str)
    ctx["progress_others"] = int(others[others != experiment].nunique())
    same = board[board["experiment"].astype(str) == experiment]
    progress = best_so_far(same, runs, direction)
    ctx["progress_takeaway"] = _progress_takeaway(progress, words, shown)
    if not progress.empty:
        content.charts["progress"] = charts.progress_chart(progress, words)
    values = [num(v, 4) for v in (top["value"].min(), top["value"].max())]
    ctx["overlay_takeaway"] = (
        f"The top {len(top)} models end at a {words} of {values[0]}"
        if values[0] == values[1]
        else f"The top {len(top)} models end at a {words} between {values[0]} and {values[1]}"
    ) + "; each line is one model during its training."
    keys = run_keys(top)
    _plain_overlay(content, snapshot, keys, metric, words)
    return history_of(snapshot.history, keys, metric)


def _progress_takeaway(progress: pd.DataFrame, words: str, experiment: str) -> str:
    """One sentence: where the best score in ``experiment`` started and where it is now."""
    if progress.empty:
        return ""
    first, last = progress.iloc[0], progress.iloc[-1]
    start, now = num(first["best"], 4), num(last["best"], 4)
    if start == now:
        return f"The best {words} in {experiment} has been {now} since {day(first['date'])}."
    changed = progress[progress["best"] == last["best"]].iloc[0]
    return (
        f"The best {words} in {experiment} went from {start} ({day(first['date'])}) "
        f"to {now}, reached on {day(changed['date'])}."
    )


def _plain_overlay(
    content: ReportContent, snapshot: Snapshot, keys: list, metric: str, words: str
) -> None:
    """The top models' learning curves in plain words: runs by name only (a repeated name
    numbered), the metric spelled out, no smoothing parameters."""
    result = overlay_frame(snapshot.history, snapshot.runs, [metric], keys, x="step")
    if result.points.empty:
        return
    points = result.points.copy()
    labels: dict[tuple[str, str], str] = {}
    for key in dict.fromkeys(zip(points["source_uri"], points["run_id"], strict=True)):
        name = str(points.loc[(points["source_uri"] == key[0]) & (points["run_id"] == key[1]),
                              "run_name"].iloc[0])  # fmt: skip
        taken = set(labels.values())
        label, n = name, 2
        while label in taken:
            label, n = f"{name} ({n})", n + 1
        labels[key] = label
    shown = [labels[k] for k in zip(points["source_uri"], points["run_id"], strict=True)]
    points["run_name"] = shown
    points["run_id"] = shown  # the legend shows the name alone when it equals the id
    points["metric"] = words
    plain = replace(result, points=points, x_title="training step", smoothing="Lines smoothed")
    content.charts["overlay"] = charts.overlay_chart(
        plain,
        title=f"{words.capitalize()} of the top models during training",
        y_title=words,
        panel_labels=False,
    )


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
