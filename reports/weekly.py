"""The weekly review: new and failed runs, leaderboard, champion vs challenger, overlay,
confusion matrices, environment diff and parameter importance (pure)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from runreview.analysis.champion import TIE_BREAK, ChampionChallenger, champion_challenger
from runreview.analysis.leaderboard import leaderboard
from runreview.analysis.periods import runs_in_period, runs_until
from runreview.contract import STATUS_FAILED, RunKey, run_keys
from runreview.reports.content import (
    SCORE_MODE,
    ReportContent,
    add_overlay,
    board_rows,
    confusion_section,
    env_section,
    history_of,
    importance_section,
    key_of,
    run_rows,
    score_text,
)
from runreview.reports.format import Cells, num, run_label, signed, when
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
        ctx.update(leaderboard=[], champion=None, confusion=None, importance=None)
        ctx["environment"] = _environment(snapshot, [], cells)
        return snapshot.history.iloc[0:0]
    board = leaderboard(
        runs, snapshot.history, metric, direction, mode=SCORE_MODE, top_n=options.top_n
    )
    new_keys = set(run_keys(period_runs))
    board["is_new"] = [key in new_keys for key in run_keys(board)]
    ctx["leaderboard"] = board_rows(board, since, cells)
    ctx["leaderboard_description"] = board.attrs.get("description", "")
    best = key_of(board.iloc[0].to_dict()) if not board.empty else None
    previous = None
    pair: list[Any] = []
    if since is not None:
        cc = contest(runs, snapshot.history, options, metric, direction)
        ctx["champion"] = _champion_context(cc, since, runs, cells)
        if cc.champion is not None:
            previous = key_of(cc.champion)
            best = key_of(cc.challenger) if cc.challenger_wins else previous
        pair = [key_of(cc.champion), key_of(cc.challenger)]
    else:
        ctx["champion"] = None
    keys = run_keys(board)
    add_overlay(content, snapshot, keys, metric)
    ctx["confusion"] = confusion_section(snapshot, best, previous, cells)
    if ctx["confusion"]:
        content.charts["confusion"] = ctx["confusion"].pop("chart")
        if ctx["confusion"]["diff"]:
            content.charts["confusion_diff"] = ctx["confusion"]["diff"].pop("chart")
    ctx["environment"] = _environment(snapshot, pair, cells)
    ctx["importance"] = importance_section(runs, metric, content)
    return history_of(snapshot.history, keys, metric)


def contest(
    runs: pd.DataFrame, history: pd.DataFrame, options: ReportOptions, metric: str, direction: str
) -> ChampionChallenger:
    """The weekly report's champion and challenger: by :data:`SCORE_MODE`, the challenger
    from the champion's experiment, among runs started before the period's end."""
    since, until = options.period()
    return champion_challenger(
        runs_until(runs, until), history, metric, since, direction, mode=SCORE_MODE, until=until,
        same_experiment=True,
    )  # fmt: skip


def contest_keys(
    runs: pd.DataFrame, history: pd.DataFrame, options: ReportOptions, metric: str, direction: str
) -> list[RunKey]:
    """The champion's and the challenger's run keys (their records are read for the report)."""
    if options.period()[0] is None or runs.empty:
        return []
    cc = contest(runs, history, options, metric, direction)
    return [key for key in (key_of(cc.champion), key_of(cc.challenger)) if key is not None]


def _environment(snapshot: Snapshot, pair: list[Any], cells: Cells) -> dict[str, Any]:
    """Champion vs challenger environments, or the one sentence saying why there is none."""
    if len(pair) != 2 or None in pair or pair[0] == pair[1]:
        return {"reason": "No environment comparison: it needs a champion and a different "
                "challenger.", "rows": [], "summaries": [], "packages": []}  # fmt: skip
    section = env_section(snapshot, pair, ["champion", "challenger"], cells)
    if section is None:
        return {"reason": "No environment comparison: the champion or the challenger has no "
                "recorded environment.", "rows": [], "summaries": [], "packages": []}  # fmt: skip
    if not (section["rows"] or section["summaries"] or section["packages"]):
        section["reason"] = (
            "The champion's and the challenger's recorded environments are the same."
        )
    else:
        section["reason"] = ""
    return section


def _champion_context(
    cc: ChampionChallenger, since: Any, runs: pd.DataFrame, cells: Cells
) -> dict[str, Any]:
    """The champion-and-challenger sentences and table; every score printed with the same
    formatting, so one run's score is one number in the text and in the table."""
    metric = cc.metric
    statuses = dict(zip(run_keys(runs), runs["status"].astype(str), strict=True))

    def side(row: dict | None) -> dict[str, str] | None:
        if row is None:
            return None
        return {
            "name": run_label(row, cells),
            "value": num(row["value"]),
            "run_id": cells(row["run_id"], "run id", limit=60),
            "experiment": cells(row["experiment"], "experiment", limit=60),
            "status": statuses.get(key_of(row), ""),
        }

    champion, challenger = side(cc.champion), side(cc.challenger)
    sentences = [score_text(metric, cc.direction)]
    if champion is None:
        sentences.append(
            f"No run started before {when(since)} has a finite {metric}, so there is no "
            "champion to challenge."
        )
    else:
        sentences.append(
            f"Champion (best run started before {when(since)}): {champion['name']} in "
            f"{champion['experiment']}, score {champion['value']}."
        )
        if cc.champion_ties > 1:
            sentences.append(
                _tie_sentence(cc.champion_ties, champion["value"], "before the period")
            )
        sentences.append(
            f"The challenger is looked for only in {champion['experiment']}, the champion's "
            "experiment: runs of other experiments are trained on other data."
        )
        if challenger is None:
            sentences.append(
                f"No run of {champion['experiment']} started in this period has a finite "
                f"{metric}, so there is no challenger."
            )
        else:
            sentences.append(
                f"Challenger (best run of {champion['experiment']} started in this period): "
                f"{challenger['name']}, score {challenger['value']}"
                + (
                    f" (status {challenger['status']})."
                    if challenger["status"] == STATUS_FAILED
                    else "."
                )
            )
            if cc.challenger_ties > 1:
                sentences.append(
                    _tie_sentence(cc.challenger_ties, challenger["value"], "this period")
                )
            verdict = "beats" if cc.challenger_wins else "does not beat"
            delta = signed(float(cc.challenger["value"]) - float(cc.champion["value"]), 6)
            sentences.append(f"The challenger {verdict} the champion (delta {delta}).")
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
        "champion": champion,
        "challenger": challenger,
        "wins": cc.challenger_wins,
        "sentences": sentences,
        "deltas": deltas,
    }


def _tie_sentence(count: int, value: str, where: str) -> str:
    return f"{count} runs {where} tie at {value}; ties are broken by {TIE_BREAK}."
