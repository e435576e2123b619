"""Champion vs challenger: the best run before a date against the best run since.

Built on the leaderboard's ranking (:mod:`runreview.analysis.leaderboard`); runs are
identified by ``(source_uri, run_id)``, never by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from runreview.analysis.leaderboard import (
    Direction,
    Mode,
    check_choice,
    is_missing,
    metric_direction,
    ranked,
)
from runreview.analysis.periods import run_periods, utc_timestamp
from runreview.contract import METRIC_PREFIX, RUN_KEY_COLUMNS

DELTA_COLUMNS = ["metric", "direction", "champion", "challenger", "delta", "relative", "verdict"]
#: How a champion or challenger is chosen among runs tied at the same score.
TIE_BREAK = "earliest finish (end time; then earliest start, then run id)"


@dataclass(frozen=True)
class ChampionChallenger:
    """The best run before a date (champion) against the best run since (challenger).

    ``champion`` and ``challenger`` are leaderboard rows as dicts (None when no run
    qualifies). ``deltas`` compares every metric both runs have a finite last value for:
    ``metric``, ``direction``, ``champion``, ``challenger``, ``delta`` (challenger minus
    champion), ``relative`` (delta / |champion|), ``verdict`` (better / worse / equal,
    for the challenger).
    """

    metric: str
    direction: Direction
    mode: Mode
    split_time: pd.Timestamp
    champion: dict[str, Any] | None
    challenger: dict[str, Any] | None
    deltas: pd.DataFrame
    same_run: bool = False
    #: Runs tied at the champion's (challenger's) score, the chosen one included.
    champion_ties: int = 1
    challenger_ties: int = 1
    #: The champion's experiment when the challenger was looked for only there.
    experiment: str | None = None

    @property
    def challenger_wins(self) -> bool | None:
        """True when the challenger's value is strictly better; None if one is missing."""
        if self.champion is None or self.challenger is None or self.same_run:
            return None
        a, b = self.champion["value"], self.challenger["value"]
        return bool(b < a) if self.direction == "min" else bool(b > a)

    @property
    def description(self) -> str:
        """One sentence for a report: who holds, who challenges, by how much."""
        champion, challenger, metric = self.champion, self.challenger, self.metric
        if champion is None or challenger is None:
            missing = "champion (no run before the date)" if champion is None else "challenger"
            return f"No {missing} with a finite {metric}."
        if self.same_run:
            return f"Champion {_name(champion)} ({metric} {champion['value']:.6g}) still leads."
        verb = "beats" if self.challenger_wins else "does not beat"
        better = "lower" if self.direction == "min" else "higher"
        return (
            f"Challenger {_name(challenger)} ({metric} {challenger['value']:.6g}) {verb} "
            f"champion {_name(champion)} ({champion['value']:.6g}); delta "
            f"{challenger['value'] - champion['value']:+.6g}, {better} is better."
        )


def champion_challenger(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    metric: str,
    split_time: datetime | pd.Timestamp | str,
    direction: Direction | None = None,
    mode: Mode = "best",
    until: datetime | pd.Timestamp | str | None = None,
    pool: Literal["period", "all"] = "period",
    directions: Mapping[str, Direction] | None = None,
    same_experiment: bool = False,
) -> ChampionChallenger:
    """Best run started before ``split_time`` vs the best run in the period (or overall).

    The period is ``[split_time, until)`` (open-ended without ``until``); ``pool="all"``
    picks the challenger among all runs, which may be the champion itself (``same_run``).
    Only runs with a finite value can be champion or challenger; among runs tied at the
    best score the one chosen is by :data:`TIE_BREAK` (the tie counts are kept).
    ``same_experiment`` looks for the challenger only in the champion's experiment (runs
    of other experiments are trained on other data). ``directions`` overrides the name
    heuristic per metric in ``deltas``; with ``mode="last"`` the headline row of ``deltas``
    holds the scores the runs were ranked by.
    """
    metric = metric.removeprefix(METRIC_PREFIX)
    direction = direction or metric_direction(metric)
    check_choice("pool", pool, ("period", "all"))
    split = utc_timestamp(split_time)
    board = ranked(runs, history, metric, direction, mode, use_column=None)
    board = board.merge(run_periods(runs, split), on=RUN_KEY_COLUMNS, how="left")
    board = board.merge(_end_times(runs), on=RUN_KEY_COLUMNS, how="left")
    board = board[board["finite"]]
    champion, champion_ties = _pick(board[board["period"] == "before"])
    candidates = board if pool == "all" else _in_period(board, until)
    experiment = None
    if same_experiment and champion is not None:
        experiment = str(champion["experiment"])
        candidates = candidates[candidates["experiment"].astype(str) == experiment]
    challenger, challenger_ties = _pick(candidates)
    same = champion is not None and challenger is not None and _same(champion, challenger)
    deltas = metric_deltas(runs, champion, challenger, directions or {})
    if mode == "last" and not deltas.empty:
        deltas = _headline_as_scored(deltas, metric, champion, challenger)
    return ChampionChallenger(
        metric, direction, mode, split, champion, challenger, deltas, same,
        champion_ties, challenger_ties, experiment,
    )  # fmt: skip


def _end_times(runs: pd.DataFrame) -> pd.DataFrame:
    """Run key and end time (UTC; NaT when unknown)."""
    frame = runs[RUN_KEY_COLUMNS].copy()
    end = runs["end_time"] if "end_time" in runs.columns else pd.Series(pd.NaT, index=runs.index)
    frame["end_time"] = pd.to_datetime(end, utc=True)
    return frame


def _pick(board: pd.DataFrame) -> tuple[dict[str, Any] | None, int]:
    """The best row of a ranked board and how many rows tie at its score; ties are broken
    by :data:`TIE_BREAK` (runs without an end time after those with one)."""
    if board.empty:
        return None, 0
    tied = board[board["value"] == board["value"].iloc[0]]
    order = tied.sort_values(
        ["end_time", "start_time", "run_id", "source_uri"], kind="mergesort", na_position="last"
    )
    return order.iloc[0].to_dict(), len(tied)


def _headline_as_scored(
    deltas: pd.DataFrame, metric: str, champion: Mapping[str, Any], challenger: Mapping[str, Any]
) -> pd.DataFrame:
    """The headline metric's row with the scores the two runs were ranked by, so that one
    run's score is one number wherever it is shown."""
    deltas = deltas.copy()
    rows = deltas["metric"] == metric
    if rows.any():
        direction = deltas.loc[rows, "direction"].iloc[0]
        fixed = _delta_row(metric, direction, float(champion["value"]), float(challenger["value"]))
        for column in DELTA_COLUMNS:
            deltas.loc[rows, column] = fixed[column]
    return deltas


def _in_period(board: pd.DataFrame, until: Any) -> pd.DataFrame:
    """Leaderboard rows of runs started after the split and before ``until`` (if given)."""
    rows = board[board["period"] == "after"]
    return rows if until is None else rows[rows["start_time"] < utc_timestamp(until)]


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two rows are the same run."""
    return all(a[k] == b[k] for k in RUN_KEY_COLUMNS)


def metric_deltas(
    runs: pd.DataFrame,
    champion: Mapping[str, Any] | None,
    challenger: Mapping[str, Any] | None,
    directions: Mapping[str, Direction],
) -> pd.DataFrame:
    """Challenger minus champion for every metric both have a finite last value for."""
    if champion is None or challenger is None:
        return pd.DataFrame(columns=DELTA_COLUMNS)
    a, b = _run_row(runs, champion), _run_row(runs, challenger)
    rows = []
    for column in sorted(c for c in runs.columns if c.startswith(METRIC_PREFIX)):
        va, vb = float(a[column]), float(b[column])
        if np.isfinite(va) and np.isfinite(vb):
            name = column.removeprefix(METRIC_PREFIX)
            rows.append(_delta_row(name, directions.get(name) or metric_direction(name), va, vb))
    return pd.DataFrame(rows, columns=DELTA_COLUMNS)


def _run_row(runs: pd.DataFrame, key: Mapping[str, Any]) -> pd.Series:
    """The runs-frame row of a run key, metrics as floats."""
    match = (runs["source_uri"] == key["source_uri"]) & (runs["run_id"] == key["run_id"])
    row = runs[match].iloc[0]
    return pd.to_numeric(row.filter(like=METRIC_PREFIX), errors="coerce")


def _delta_row(name: str, direction: Direction, champion: float, challenger: float) -> dict:
    """One row of ``metric_deltas``."""
    delta = challenger - champion
    better = delta < 0 if direction == "min" else delta > 0
    verdict = "equal" if delta == 0 else "better" if better else "worse"
    relative = delta / abs(champion) if champion != 0 else float("nan")
    values = [name, direction, champion, challenger, delta, relative, verdict]
    return dict(zip(DELTA_COLUMNS, values, strict=True))


def _name(row: Mapping[str, Any]) -> str:
    """A run's display name: its name, else its id."""
    name = row.get("run_name")
    return str(row["run_id"]) if is_missing(name) or name == "" else str(name)
