"""Analysis gives the same answers on a TensorBoard history (Categorical text columns) as
on the same history with plain ``str`` columns (what MLflow sources return)."""

from __future__ import annotations

import pandas as pd
import pytest

from runreview.analysis.leaderboard import leaderboard
from runreview.analysis.overlay import band_frame, overlay_frame
from runreview.sources.tensorboard import TensorBoardSource
from tests.sources import tb_writers as tw

TEXT = ["source", "source_uri", "run_id", "metric"]


@pytest.fixture
def frames(tmp_path):
    logdir = tmp_path / "logs"
    for seed in range(3):
        for lr in ("0.1", "0.01"):
            run = logdir / f"lr{lr}-s{seed}"
            values = [1.0 / (1 + s * float(lr) * (seed + 1)) for s in range(30)]
            tw.write_records(
                str(_mkdir(run) / "events.out.tfevents.1"),
                [tw.hparams_pb_event({"lr": lr})]
                + [tw.scalar_event("loss", s, v, 1.7e9 + s) for s, v in enumerate(values)]
                + [tw.scalar_event("acc", s, 1 - v, 1.7e9 + s) for s, v in enumerate(values)],
            )
    source = TensorBoardSource(logdir, cache=False)
    history = source.read_history()
    assert isinstance(history["run_id"].dtype, pd.CategoricalDtype)
    return source.read_runs(), history, history.astype({c: "str" for c in TEXT})


def _mkdir(path):
    path.mkdir(parents=True)
    return path


@pytest.mark.parametrize("x", ["step", "relative", "wall"])
def test_overlay_is_the_same(frames, x):
    runs, categorical, plain = frames
    keys = list(zip(runs.source_uri, runs.run_id, strict=True))[::-1]
    a = overlay_frame(categorical, runs, ["acc", "loss"], keys, x=x, max_points=10)
    b = overlay_frame(plain, runs, ["acc", "loss"], keys, x=x, max_points=10)
    pd.testing.assert_frame_equal(
        a.points.astype({c: "str" for c in ["source", "source_uri", "run_id", "metric"]}), b.points
    )
    pd.testing.assert_frame_equal(
        a.series.astype({c: "str" for c in ["source_uri", "run_id", "metric"]}), b.series
    )
    assert a.missing == b.missing == []
    assert a.points.groupby(["run_id", "metric"], observed=True).size().max() <= 10


def test_band_and_leaderboard_are_the_same(frames):
    runs, categorical, plain = frames
    a = band_frame(categorical, runs, "loss", "lr")
    b = band_frame(plain, runs, "loss", "lr")
    pd.testing.assert_frame_equal(a.frame, b.frame)
    board_a = leaderboard(runs, categorical, "loss", "min", mode="best")
    board_b = leaderboard(runs, plain, "loss", "min", mode="best")
    pd.testing.assert_frame_equal(board_a, board_b)
