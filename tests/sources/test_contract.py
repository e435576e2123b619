"""One contract, every kind of source: the same assertions over each.

sqlite store, tracking server on sqlite, tracking server on PostgreSQL, legacy mlruns folder,
TensorBoard logdir and W&B run folders (written by wandb 0.17 and 0.31) all return frames a
caller can use without knowing where they came from.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tensorboardX import SummaryWriter

from runreview.contract import HISTORY_COLUMNS, RUN_COLUMNS, TIME_DTYPE, Environment
from runreview.sources import open_logdir, open_source, open_wandb_dir
from runreview.sources.base import Source

# Marked by the session fixture each kind asks for at run time (see tests/conftest.py).
KINDS = [
    pytest.param("sqlite", marks=pytest.mark.mlflow_server),
    pytest.param("server", marks=pytest.mark.mlflow_server),
    pytest.param("postgres-server", marks=pytest.mark.postgres),
    pytest.param("mlruns", marks=pytest.mark.mlflow_server),
    "tensorboard",
    pytest.param("wandb", marks=pytest.mark.wandb),
]


def _tensorboard_logdir(folder: Path) -> Path:
    logdir = folder / "tb"
    for run, scale in (("a", 1.0), ("nested/b", 2.0)):
        with SummaryWriter(str(logdir / run)) as writer:
            for step in range(20):
                writer.add_scalar("loss", scale / (step + 1), step)
                writer.add_scalar("accuracy", 1 - scale / (step + 2), step)
            writer.add_hparams({"lr": 0.1 * scale, "opt": "sgd"}, {"hp/final": 0.5}, name="hparams")
    return logdir


def _tree_hash(path: Path) -> str:
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for item in files:
        digest.update(str(item.relative_to(path.parent)).encode())
        digest.update(item.read_bytes())
    return digest.hexdigest()


@pytest.fixture(params=KINDS)
def source_and_files(request, tmp_path) -> tuple[Source, Path | None]:
    """A source of each kind, and the local files it reads (to check they stay unchanged)."""
    kind = request.param
    if kind == "sqlite":
        db = request.getfixturevalue("sqlite_copy")
        return open_source(f"sqlite:///{db}"), db
    if kind == "server":
        return open_source(request.getfixturevalue("mlflow_stores").server_uri), None
    if kind == "postgres-server":
        return open_source(request.getfixturevalue("postgres_mlflow").uri), None
    if kind == "mlruns":
        folder = request.getfixturevalue("mlruns_copy")
        return open_source(str(folder)), folder
    if kind == "wandb":
        folder = tmp_path / "wandb-runs"
        shutil.copytree(request.getfixturevalue("wandb_folders").root, folder, symlinks=True)
        return open_wandb_dir(str(folder)), folder
    logdir = _tensorboard_logdir(tmp_path)
    return open_logdir(str(logdir)), logdir


def test_frames_follow_the_contract(source_and_files):
    source, files = source_and_files
    before = _tree_hash(files) if files else None
    runs = source.read_runs()
    history = source.read_history()

    assert len(runs) >= 2
    assert list(runs.columns[: len(RUN_COLUMNS)]) == RUN_COLUMNS
    assert set(runs["source"]) == {source.kind}
    assert set(runs["source_uri"]) == {source.uri}
    assert runs["run_id"].is_unique and (runs["run_id"].str.len() > 0).all()
    assert str(runs["start_time"].dtype) == TIME_DTYPE == str(runs["end_time"].dtype)
    metric_cols = [c for c in runs.columns if c.startswith("metrics.")]
    assert metric_cols and all(runs[c].dtype == np.float64 for c in metric_cols)
    assert [c for c in runs.columns if c.startswith("params.")]

    assert list(history.columns) == HISTORY_COLUMNS
    assert history["step"].dtype == np.int64 and history["value"].dtype == np.float64
    assert str(history["timestamp"].dtype) == TIME_DTYPE
    run_keys = set(zip(runs["source_uri"], runs["run_id"], strict=True))
    assert set(zip(history["source_uri"], history["run_id"], strict=True)) <= run_keys
    _assert_last_values_match_history(runs, history)
    if files is not None:
        assert _tree_hash(files) == before, "reading changed the store"


def _assert_last_values_match_history(runs: pd.DataFrame, history: pd.DataFrame) -> None:
    """``metrics.<k>`` is a value logged at the run's last step of ``k``."""
    checked = 0
    for (run_id, metric), points in history.groupby(["run_id", "metric"]):
        column = f"metrics.{metric}"
        if column not in runs.columns:
            continue
        value = runs.loc[runs["run_id"] == run_id, column].iloc[0]
        at_last_step = points.loc[points["step"] == points["step"].max(), "value"].to_numpy()
        if np.isnan(value):
            assert np.isnan(at_last_step).any(), (run_id, metric)
        else:
            assert np.isclose(at_last_step, value, rtol=1e-9, equal_nan=False).any(), (
                run_id,
                metric,
                value,
            )
        checked += 1
    assert checked >= 2


def test_narrowing_history_by_metric_and_run(source_and_files):
    source, _ = source_and_files
    history = source.read_history()
    metric = history["metric"].iloc[0]
    run_id = history["run_id"].iloc[-1]
    only_metric = source.read_history(metrics=[metric])
    assert set(only_metric["metric"]) == {metric}
    assert len(only_metric) == (history["metric"] == metric).sum()
    only_run = source.read_history(run_ids=[run_id])
    assert set(only_run["run_id"]) == {run_id}
    assert len(only_run) == (history["run_id"] == run_id).sum()


def test_per_run_records_have_the_contract_types(source_and_files):
    source, _ = source_and_files
    for run_id in source.read_runs()["run_id"]:
        env = source.read_environment(run_id)
        assert (
            isinstance(env, Environment) and env.run_id == run_id and env.source_uri == source.uri
        )
        for matrix in source.read_confusion(run_id):
            assert matrix.run_id == run_id
            if matrix.counts is not None:
                assert np.asarray(matrix.counts).shape == (len(matrix.labels), len(matrix.labels))
