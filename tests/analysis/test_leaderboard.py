"""Leaderboards over small literal frames with hand-computed ranks and values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from runreview.analysis.champion import champion_challenger
from runreview.analysis.leaderboard import (
    LEADERBOARD_COLUMNS,
    leaderboard,
    metric_direction,
    rank_change,
    rank_values,
)

A, B = "sqlite:///team.db", "file:///logs"
INF = np.inf


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# (uri, run_id, run_name, start day, params.model, last val_loss, accuracy, val_loss history)
RUNS = [
    (A, "r1", "alpha", "2026-01-01", "rf", 0.32, 0.80, [0.9, 0.31, 0.32]),
    (A, "r2", "beta", "2026-01-02", "rf", 0.30, 0.85, [0.8, 0.3, 0.3]),
    (A, "r5", "epsilon", "2026-01-03", "svm", 0.30, 0.86, [0.7, 0.3]),
    (A, "r3", "gamma", "2026-01-10", "svm", np.nan, np.nan, [INF, -INF, np.nan]),
    (A, "r4", "delta", "2026-01-11", "svm", 0.25, 0.90, [0.6, 0.25]),
    (B, "r1", "alpha", "2026-01-12", None, 0.315, 0.88, [0.315]),
]


@pytest.fixture
def runs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": ["mlflow" if r[0] == A else "tensorboard" for r in RUNS],
            "source_uri": [r[0] for r in RUNS],
            "experiment": "exp",
            "run_id": [r[1] for r in RUNS],
            "run_name": [r[2] for r in RUNS],
            "status": "FINISHED",
            "start_time": [t(r[3]) for r in RUNS],
            "end_time": [t(r[3]) + pd.Timedelta(hours=1) for r in RUNS],
            "params.model": [r[4] for r in RUNS],
            "metrics.val_loss": [r[5] for r in RUNS],
            "metrics.accuracy": [r[6] for r in RUNS],
        }
    )


@pytest.fixture
def history() -> pd.DataFrame:
    rows = [
        {
            "source": "mlflow",
            "source_uri": uri,
            "run_id": run_id,
            "metric": "val_loss",
            "step": step,
            "value": value,
            "timestamp": t(day) + pd.Timedelta(minutes=step),
        }
        for uri, run_id, _, day, _, _, _, values in RUNS
        for step, value in enumerate(values)
    ]
    return pd.DataFrame(rows).astype({"step": "int64", "value": "float64"})


def keys(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["source_uri"], frame["run_id"], strict=True))


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("loss", "min"),
        ("val/loss", "min"),
        ("train_loss", "min"),
        ("valLoss", "min"),
        ("eval_accuracy", "max"),
        ("metrics.val_acc", "max"),
        ("f1", "max"),
        ("macro-F1", "max"),
        ("roc_auc", "max"),
        ("r2", "max"),
        ("mAP@50", "max"),
        ("val_mAP", "max"),
        ("rmse", "min"),
        ("test/mae", "min"),
        ("perplexity", "min"),
        ("wer", "min"),
        ("inference_latency_ms", "min"),
        ("epoch_time", "min"),
        ("error_rate", "min"),
        ("top1_accuracy_error", "min"),
        ("lossless_ratio", "max"),
        ("throughput", "max"),
        ("", "max"),
    ],
)
def test_metric_direction_from_name_tokens(name: str, direction: str) -> None:
    assert metric_direction(name) == direction


def test_best_mode_ranks_ties_and_flags_non_finite(runs, history) -> None:
    board = leaderboard(runs, history, "val_loss")
    assert list(board.columns) == LEADERBOARD_COLUMNS
    assert keys(board) == [(A, "r4"), (A, "r2"), (A, "r5"), (A, "r1"), (B, "r1"), (A, "r3")]
    assert board["rank"].tolist() == [1, 2, 2, 4, 5, 6]
    assert board["value"].tolist()[:5] == [0.25, 0.3, 0.3, 0.31, 0.315]
    assert board["best_step"].tolist()[:5] == [1, 1, 1, 1, 0]
    assert board["finite"].tolist() == [True] * 5 + [False]
    assert np.isnan(board["value"].iloc[5]) and pd.isna(board["best_step"].iloc[5])
    assert board.attrs["direction"] == "min" and board.attrs["mode"] == "best"


def test_best_step_is_first_step_reaching_the_best(runs, history) -> None:
    board = leaderboard(runs, history, "val_loss").set_index(["source_uri", "run_id"])
    # beta logged 0.3 at steps 1 and 2: the first is reported
    assert board.loc[(A, "r2"), "best_step"] == 1
    assert board.loc[(A, "r2"), "last_step"] == 2
    assert board.loc[(A, "r1"), "best_value"] == 0.31
    assert board.loc[(A, "r1"), "last_value"] == 0.32


def test_last_mode_ranks_by_last_value(runs, history) -> None:
    board = leaderboard(runs, history, "metrics.val_loss", mode="last")
    assert keys(board) == [(A, "r4"), (A, "r2"), (A, "r5"), (B, "r1"), (A, "r1"), (A, "r3")]
    assert board["value"].tolist()[:5] == [0.25, 0.3, 0.3, 0.315, 0.32]
    assert board["rank"].tolist() == [1, 2, 2, 4, 5, 6]


def test_infinite_values_are_never_best_in_either_direction(runs, history) -> None:
    for direction in ("min", "max"):
        board = leaderboard(runs, history, "val_loss", direction=direction)
        gamma = board[board["run_id"] == "r3"].iloc[0]
        assert not gamma["finite"]
        assert gamma["rank"] == 6


def test_max_direction_puts_highest_first(runs, history) -> None:
    board = leaderboard(runs, history, "val_loss", direction="max")
    # best (highest) over history: alpha 0.9, beta 0.8, epsilon 0.7, delta 0.6, tb alpha 0.315
    assert board["value"].tolist()[:5] == [0.9, 0.8, 0.7, 0.6, 0.315]
    assert board["best_step"].tolist()[:5] == [0, 0, 0, 0, 0]


def test_same_run_id_in_two_sources_stays_two_runs(runs, history) -> None:
    board = leaderboard(runs, history, "val_loss")
    alphas = board[board["run_id"] == "r1"]
    assert sorted(alphas["source_uri"]) == [B, A]
    assert sorted(alphas["value"]) == [0.31, 0.315]


def test_top_n_keeps_tied_runs(runs, history) -> None:
    board = leaderboard(runs, history, "val_loss", top_n=2)
    assert keys(board) == [(A, "r4"), (A, "r2"), (A, "r5")]
    with pytest.raises(ValueError, match="top_n"):
        leaderboard(runs, history, "val_loss", top_n=0)


def test_group_by_param_keeps_best_run_per_group(runs, history) -> None:
    board = leaderboard(runs, history, "val_loss", group_by="model")
    assert board["group"].tolist() == ["svm", "rf", "(not set)"]
    assert keys(board) == [(A, "r4"), (A, "r2"), (B, "r1")]
    assert board["group_runs"].tolist() == [3, 2, 1]
    assert board["rank"].tolist() == [1, 2, 3]


def test_group_by_unknown_param_names_it(runs, history) -> None:
    with pytest.raises(ValueError, match="params.seed"):
        leaderboard(runs, history, "val_loss", group_by="seed")


def test_without_history_the_runs_frame_value_is_used(runs, history) -> None:
    board = leaderboard(runs, history.iloc[0:0], "accuracy")
    assert board.attrs["direction"] == "max"
    assert board["value"].tolist()[:5] == [0.90, 0.88, 0.86, 0.85, 0.80]
    assert board["best_step"].isna().all()
    assert board["history_points"].eq(0).all()


def test_invalid_direction_and_mode_are_rejected(runs, history) -> None:
    with pytest.raises(ValueError, match="direction"):
        leaderboard(runs, history, "val_loss", direction="up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        leaderboard(runs, history, "val_loss", mode="mean")  # type: ignore[arg-type]


def test_rank_values_ties_share_lowest_rank() -> None:
    ranks = rank_values(pd.Series([0.5, np.nan, 0.5, 0.7, np.inf, 0.1]), "max")
    assert ranks.tolist() == [2, 5, 2, 1, 5, 4]


def test_rank_change_uses_values_as_of_split_time(runs, history) -> None:
    # epsilon started 2026-01-03 00:00 and had only logged 0.7 (step 0) 30 s later
    change = rank_change(runs, history, "val_loss", None, "2026-01-03 00:00:30")
    by_key = change.set_index(["source_uri", "run_id"])
    assert by_key.loc[(A, "r2"), ["rank_before", "rank_now", "change"]].tolist() == [1, 2, -1]
    assert by_key.loc[(A, "r1"), ["rank_before", "rank_now", "change"]].tolist() == [2, 4, -2]
    assert by_key.loc[(A, "r5"), ["rank_before", "rank_now", "change"]].tolist() == [3, 2, 1]
    assert by_key.loc[(A, "r5"), "value_before"] == 0.7
    assert by_key.loc[(A, "r5"), "status"] == "up"
    assert by_key.loc[(A, "r4"), "status"] == "new"
    assert by_key.loc[(A, "r4"), "period"] == "after"
    assert pd.isna(by_key.loc[(A, "r4"), "rank_before"])


def test_champion_challenger_in_period(runs, history) -> None:
    result = champion_challenger(runs, history, "val_loss", "2026-01-05")
    assert (result.champion["source_uri"], result.champion["run_id"]) == (A, "r2")
    assert (result.challenger["source_uri"], result.challenger["run_id"]) == (A, "r4")
    assert result.challenger_wins is True
    deltas = result.deltas.set_index("metric")
    assert deltas.loc["accuracy", "delta"] == pytest.approx(0.05)
    assert deltas.loc["accuracy", "verdict"] == "better"
    assert deltas.loc["val_loss", "delta"] == pytest.approx(-0.05)
    assert deltas.loc["val_loss", "relative"] == pytest.approx(-0.05 / 0.3)
    assert deltas.loc["val_loss", "verdict"] == "better"
    assert result.description == (
        "Challenger delta (val_loss 0.25) beats champion beta (0.3); delta -0.05, lower is better."
    )


def test_champion_holds_when_it_is_still_the_best(runs, history) -> None:
    result = champion_challenger(runs, history, "val_loss", "2026-01-12", pool="all")
    assert result.champion["run_id"] == "r4"
    assert result.same_run
    assert result.challenger_wins is None
    assert "still leads" in result.description


def test_no_challenger_when_period_has_no_finite_run(runs, history) -> None:
    result = champion_challenger(runs, history, "val_loss", "2026-01-05", until="2026-01-11")
    assert result.challenger is None
    assert result.challenger_wins is None
    assert result.deltas.empty
    assert result.description.startswith("No challenger")
