"""Leaderboards: rank runs by a metric, knowing whether lower or higher is better.

A run's score is either its best value over all logged steps (``mode="best"``, with the
step where it was first reached) or its last value (``mode="last"``). NaN and infinite
values are never a best value; runs without a finite score rank last and are flagged
(``finite`` is False). Ties share a rank (pandas' ``method="min"``: 1, 2, 2, 4).

Runs are identified by ``(source_uri, run_id)``, never by name.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from runreview.analysis.periods import before, run_periods, utc_timestamp
from runreview.contract import METRIC_PREFIX, PARAM_PREFIX, RUN_KEY_COLUMNS, TAG_PREFIX

Direction = Literal["min", "max"]
Mode = Literal["best", "last"]

RUN_INFO_COLUMNS = ["source", "source_uri", "experiment", "run_id", "run_name"]
LEADERBOARD_COLUMNS = [
    *RUN_INFO_COLUMNS, "rank", "value", "finite", "best_value", "best_step", "last_value",
    "last_step", "history_points",
]  # fmt: skip

#: Name tokens meaning "lower is better" (matched on word boundaries, case-insensitive).
LOWER_IS_BETTER = frozenset(
    {
        "loss", "losses", "error", "errors", "err", "mae", "mse", "rmse", "rmsle", "mape",
        "nll", "perplexity", "ppl", "wer", "cer", "time", "latency", "duration", "runtime",
    }
)  # fmt: skip
#: Name tokens meaning "higher is better".
HIGHER_IS_BETTER = frozenset(
    {
        "accuracy", "acc", "f1", "auc", "auroc", "roc", "precision", "recall", "r2", "map",
        "iou", "miou", "bleu", "rouge", "dice",
    }
)  # fmt: skip
#: The direction of a metric whose name has no known token.
DEFAULT_DIRECTION: Direction = "max"

NOT_SET = "(not set)"
#: Words that make a metric the headline when coverage ties (earlier: preferred).
PREFERRED_WORDS = ("accuracy", "acc", "f1", "auc", "r2", "loss")


def metric_direction(name: str) -> Direction:
    """Whether lower (``"min"``) or higher (``"max"``) values of metric ``name`` are better.

    The name is split into words on any non-alphanumeric character (``val/loss``,
    ``eval_accuracy``, ``mAP@50``); if no word is known, camelCase is split too
    (``valLoss``). Words must match whole, so ``lossless`` is not a loss. When several
    known words occur the last one wins (``accuracy_error`` -> ``"min"``). Unknown names
    give ``DEFAULT_DIRECTION`` (``"max"``, the scikit-learn convention that a higher score
    is better); pass ``direction`` explicitly where that is wrong.
    """
    name = name.removeprefix(METRIC_PREFIX)
    for tokens in (_words(name), _words(_split_camel_case(name))):
        for token in reversed(tokens):
            if token in LOWER_IS_BETTER:
                return "min"
            if token in HIGHER_IS_BETTER:
                return "max"
    return DEFAULT_DIRECTION


def _words(text: str) -> list[str]:
    """Lower-case alphanumeric words of ``text``."""
    return [t for t in re.split(r"[^a-z0-9]+", text.lower()) if t]


def _split_camel_case(text: str) -> str:
    """``"valTopKAccuracy"`` -> ``"val Top K Accuracy"``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return re.sub(r"([A-Z])([A-Z][a-z])", r"\1 \2", spaced)


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


def describe_ranking(metric: str, direction: Direction, mode: Mode) -> str:
    """A sentence saying how a leaderboard was ranked (for charts and reports)."""
    better = "lower" if direction == "min" else "higher"
    how = "best value over all logged steps" if mode == "best" else "last logged value"
    return (
        f"Ranked by the {how} of {metric} ({better} is better); ties share a rank; "
        "runs without a finite value (missing, not a number or infinite) rank last."
    )


def leaderboard(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    metric: str,
    direction: Direction | None = None,
    mode: Mode = "best",
    top_n: int | None = None,
    group_by: str | None = None,
) -> pd.DataFrame:
    """Rank ``runs`` by ``metric``; one row per run (or per group), best first.

    ``metric`` is a metric name with or without the ``metrics.`` prefix. ``direction``
    defaults to ``metric_direction(metric)``. ``top_n`` keeps rows with ``rank <= top_n``
    (so tied runs are all kept). ``group_by`` names a param (``"model"`` or
    ``"params.model"``, or any ``tags.`` column): the best run of each group is kept, its
    group in column ``group`` and the group's run count in ``group_runs``, then re-ranked.

    Columns: ``LEADERBOARD_COLUMNS`` (plus ``group``, ``group_runs``). ``value`` is
    ``best_value`` or ``last_value`` per ``mode``; ``best_step`` is the first step where the
    best value was logged (NA without history). ``frame.attrs`` holds ``metric``,
    ``direction``, ``mode`` and ``description``.
    """
    metric = metric.removeprefix(METRIC_PREFIX)
    direction = direction or metric_direction(metric)
    check_choice("direction", direction, ("min", "max"))
    check_choice("mode", mode, ("best", "last"))
    board = ranked(runs, history, metric, direction, mode, use_column=None)
    if group_by is not None:
        board = _best_per_group(board, runs, group_by, direction)
    if top_n is not None:
        if top_n < 1:
            raise ValueError(f"top_n must be at least 1, got {top_n}")
        board = board[board["rank"] <= top_n].reset_index(drop=True)
    board.attrs = _attrs(metric, direction, mode)
    return board


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise a ValueError naming the bad value and the allowed ones."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _attrs(metric: str, direction: Direction, mode: Mode) -> dict[str, str]:
    """Metadata a renderer shows next to the table."""
    return {
        "metric": metric,
        "direction": direction,
        "mode": mode,
        "description": describe_ranking(metric, direction, mode),
    }


def ranked(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    metric: str,
    direction: Direction,
    mode: Mode,
    use_column: pd.Series | None,
) -> pd.DataFrame:
    """Scores of every run, ranked and sorted best first."""
    scores = run_scores(runs, history, metric, direction, use_column=use_column)
    scores["value"] = scores["best_value"] if mode == "best" else scores["last_value"]
    scores["finite"] = np.isfinite(scores["value"].to_numpy(dtype="float64"))
    scores["rank"] = rank_values(scores["value"], direction)
    scores = scores.sort_values(["rank", "run_name", "source_uri", "run_id"], kind="mergesort")
    return scores[LEADERBOARD_COLUMNS].reset_index(drop=True)


def rank_values(values: pd.Series, direction: Direction) -> pd.Series:
    """Ranks 1..n of the finite values (ties share the lowest rank); others rank n + 1."""
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    finite = np.isfinite(numbers.to_numpy())
    ranks = numbers.where(finite).rank(method="min", ascending=direction == "min")
    return ranks.fillna(int(finite.sum()) + 1).astype("int64")


def run_scores(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    metric: str,
    direction: Direction,
    use_column: pd.Series | None = None,
) -> pd.DataFrame:
    """Per run: best value and step, last value and step, and the number of history points.

    The last value is the runs frame's ``metrics.<metric>`` where ``use_column`` allows it
    (default: everywhere) and it is known, else the history's point with the highest step
    (then latest timestamp). The best is the min/max over the finite history values, or
    the last value when the run has no finite history.
    """
    base = runs[[c for c in RUN_INFO_COLUMNS if c in runs.columns]].copy()
    for col in RUN_INFO_COLUMNS:
        if col not in base.columns:
            base[col] = None
    points = _metric_points(history, metric)
    base = base.merge(_last_points(points), on=RUN_KEY_COLUMNS, how="left")
    base = base.merge(_best_points(points, direction), on=RUN_KEY_COLUMNS, how="left")
    counts = points.groupby(RUN_KEY_COLUMNS).size().rename("history_points")
    base = base.merge(counts, on=RUN_KEY_COLUMNS, how="left")
    base["history_points"] = base["history_points"].fillna(0).astype("int64")
    base["last_value"] = _last_value(runs, metric, base["last_value"], use_column)
    return _best_from_last(base)


def _best_from_last(base: pd.DataFrame) -> pd.DataFrame:
    """Where no finite history value exists, the best is the last value (if finite)."""
    last = base["last_value"].astype("float64")
    fill = base["best_value"].isna() & np.isfinite(last)
    base["best_value"] = base["best_value"].astype("float64").where(~fill, last)
    base["best_step"] = base["best_step"].where(~fill, base["last_step"])
    return base


def _last_value(
    runs: pd.DataFrame, metric: str, from_history: pd.Series, use_column: pd.Series | None
) -> pd.Series:
    """The runs frame's last value where allowed and known, else the history's."""
    column = METRIC_PREFIX + metric
    history_values = from_history.astype("float64").reset_index(drop=True)
    if column not in runs.columns:
        return history_values
    values = pd.to_numeric(runs[column], errors="coerce").astype("float64")
    allowed = pd.Series(True, index=runs.index) if use_column is None else use_column
    values = values.where(allowed.reindex(runs.index, fill_value=False).astype(bool))
    values = values.reset_index(drop=True)
    return values.where(values.notna(), history_values)


def _metric_points(history: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The history rows of ``metric`` in step order (then timestamp, then input order)."""
    cols = [*RUN_KEY_COLUMNS, "step", "value", "timestamp"]
    if history.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols}).astype(
            {"source_uri": object, "run_id": object}
        )
    points = history.loc[history["metric"] == metric, cols]
    # Categorical keys (TensorBoard histories) as plain str, like the runs frame's keys
    points = points.astype({"value": "float64", "source_uri": "str", "run_id": "str"})
    return points.sort_values(
        [*RUN_KEY_COLUMNS, "step", "timestamp"], kind="mergesort"
    ).reset_index(drop=True)


def _last_points(points: pd.DataFrame) -> pd.DataFrame:
    """Per run: the value and step of its last point."""
    return _named_points(points.groupby(RUN_KEY_COLUMNS, sort=False).tail(1), "last")


def _best_points(points: pd.DataFrame, direction: Direction) -> pd.DataFrame:
    """Per run: the best finite value and the first step where it was logged."""
    finite = points[np.isfinite(points["value"].to_numpy(dtype="float64"))]
    ordered = finite.sort_values("value", ascending=direction == "min", kind="mergesort")
    return _named_points(ordered.groupby(RUN_KEY_COLUMNS, sort=False).head(1), "best")


def _named_points(rows: pd.DataFrame, name: str) -> pd.DataFrame:
    """Run key, ``<name>_value`` and ``<name>_step`` (nullable integer)."""
    out = rows[[*RUN_KEY_COLUMNS, "value", "step"]]
    out = out.rename(columns={"value": f"{name}_value", "step": f"{name}_step"})
    return out.astype({f"{name}_step": "Int64"})


def _group_column(runs: pd.DataFrame, group_by: str) -> str:
    """The runs-frame column for a ``group_by`` name; raises when the column is absent."""
    prefixed = group_by.startswith((PARAM_PREFIX, TAG_PREFIX)) or group_by in runs.columns
    column = group_by if prefixed else PARAM_PREFIX + group_by
    if column not in runs.columns:
        params = sorted(c for c in runs.columns if c.startswith(PARAM_PREFIX))
        raise ValueError(f"cannot group by {group_by!r}: no column {column!r}; params: {params}")
    return column


def group_labels(runs: pd.DataFrame, group_by: str) -> pd.DataFrame:
    """Run key and group label (the column's text, ``NOT_SET`` when missing) per run."""
    column = _group_column(runs, group_by)
    labels = runs[column].map(lambda v: NOT_SET if is_missing(v) else str(v))
    return pd.DataFrame(
        {"source_uri": runs["source_uri"], "run_id": runs["run_id"], "group": labels}
    )


def is_missing(value: Any) -> bool:
    """True for None, NaN and pandas' NA."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _best_per_group(
    board: pd.DataFrame, runs: pd.DataFrame, group_by: str, direction: Direction
) -> pd.DataFrame:
    """The first (best) row of each group, re-ranked among the groups."""
    labelled = board.merge(group_labels(runs, group_by), on=RUN_KEY_COLUMNS, how="left")
    labelled["group_runs"] = labelled.groupby("group")["run_id"].transform("size")
    best = labelled.drop_duplicates("group", keep="first").copy()
    best["rank"] = rank_values(best["value"], direction).to_numpy()
    best = best.sort_values(["rank", "group"], kind="mergesort")
    return best.reset_index(drop=True)


# --- changes over time ------------------------------------------------------------------


def rank_change(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    metric: str,
    direction: Direction | None,
    split_time: datetime | pd.Timestamp | str,
    mode: Mode = "best",
) -> pd.DataFrame:
    """How the ranking moved since ``split_time``: rank then, rank now, and the change.

    ``rank_before`` ranks the runs started before ``split_time`` with the values they had
    then: history points logged before ``split_time`` (runs that had ended by then may
    also use the runs frame's last value). ``rank_now`` ranks all runs with all points.
    ``change = rank_before - rank_now`` (positive: moved up). ``period`` says whether the
    run started ``before`` or ``after`` the split (``unknown`` without a start time);
    ``status`` is ``new`` (no rank before), ``up``, ``down`` or ``same``.
    """
    metric = metric.removeprefix(METRIC_PREFIX)
    direction = direction or metric_direction(metric)
    split = utc_timestamp(split_time)
    then = _ranked_as_of(runs, history, metric, direction, mode, split)
    now = ranked(runs, history, metric, direction, mode, use_column=None)
    out = now.rename(columns={"value": "value_now", "rank": "rank_now"})
    out = out.merge(then, on=RUN_KEY_COLUMNS, how="left")
    out["rank_before"] = out["rank_before"].astype("Int64")
    out["change"] = out["rank_before"] - out["rank_now"]
    out["status"] = out["change"].map(_status_word)
    out = out.merge(
        run_periods(runs, split)[[*RUN_KEY_COLUMNS, "period"]], on=RUN_KEY_COLUMNS, how="left"
    )
    out.attrs = _attrs(metric, direction, mode) | {"split_time": split.isoformat()}
    return out


def _ranked_as_of(
    runs: pd.DataFrame,
    history: pd.DataFrame,
    metric: str,
    direction: Direction,
    mode: Mode,
    split: pd.Timestamp,
) -> pd.DataFrame:
    """Run key, ``value_before`` and ``rank_before`` of the runs started before ``split``.

    Only history logged before ``split`` counts; the runs frame's last value only for runs
    that had ended by then.
    """
    before_runs = runs[before(runs, "start_time", split)]
    ended = before(before_runs, "end_time", split)
    early = history[before(history, "timestamp", split)]
    then = ranked(before_runs, early, metric, direction, mode, use_column=ended)
    renamed = {"value": "value_before", "rank": "rank_before"}
    return then[[*RUN_KEY_COLUMNS, "value", "rank"]].rename(columns=renamed)


def _status_word(change: Any) -> str:
    """``new``, ``up``, ``down`` or ``same`` for a rank change."""
    if pd.isna(change):
        return "new"
    return "up" if change > 0 else "down" if change < 0 else "same"
