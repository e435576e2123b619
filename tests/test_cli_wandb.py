"""``runreview`` with W&B folders beside MLflow stores and TensorBoard logdirs."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

import runreview
from runreview.contract import RUN_COLUMNS
from tests import wandb_writer as spec
from tests.wandb_fixture import CORE_VERSION, LEGACY_VERSION

SOURCE_VARIABLES = {"MLFLOW_TRACKING_URI", "RUNREVIEW_LOGDIR", "RUNREVIEW_WANDB_DIR"}


def runreview_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter, with no sources from the environment."""
    full_env = {k: v for k, v in os.environ.items() if k not in SOURCE_VARIABLES}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "runreview.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=full_env,
    )


def test_runs_lists_wandb_runs_beside_mlflow_and_tensorboard(demo_workspace, wandb_folders):
    out = runreview_cli(
        "runs",
        "--wandb-dir", str(wandb_folders.wandb_dir(LEGACY_VERSION)),
        "--tracking-uri", demo_workspace.tracking_uri,
        "--logdir", str(demo_workspace.logdir),
        "--wandb-dir", str(wandb_folders.wandb_dir(CORE_VERSION)),
        "--format", "csv",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout), dtype=str, keep_default_na=False)
    assert list(frame.columns[: len(RUN_COLUMNS)]) == RUN_COLUMNS
    counts = frame["source"].value_counts().to_dict()
    assert counts == {
        "mlflow": demo_workspace.mlflow_runs,
        "tensorboard": demo_workspace.tensorboard_runs,
        "wandb": 8,
    }
    for version in (LEGACY_VERSION, CORE_VERSION):
        row = frame[frame["run_id"] == spec.run_ids(version)["baseline"]].iloc[0]
        assert row["source_uri"] == str(wandb_folders.wandb_dir(version))
        assert row["experiment"] == spec.PROJECT and row["status"] == "FINISHED"
        assert row["params.optimizer.name"] == "adam"
        assert float(row["metrics.loss"]) == spec.baseline_point(spec.STEPS - 1)["loss"]


def test_history_and_the_environment_variable(wandb_folders):
    run_id = spec.run_ids(CORE_VERSION)["baseline"]
    out = runreview_cli(
        "history", "--run", run_id, "--metric", "loss", "--format", "json",
        env={"RUNREVIEW_WANDB_DIR": str(wandb_folders.wandb_dir(CORE_VERSION))},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["step"] for r in rows] == list(range(spec.STEPS))
    expected = [spec.baseline_point(s)["loss"] for s in range(spec.STEPS)]
    assert [r["value"] for r in rows] == pytest.approx(expected, rel=1e-9)  # JSON: 10 digits
    assert {r["source"] for r in rows} == {"wandb"}


def test_check_reports_a_damaged_wandb_file(wandb_folders, tmp_path):
    folder = tmp_path / "wandb"
    shutil.copytree(wandb_folders.wandb_dir(LEGACY_VERSION), folder, symlinks=True)
    run_id = spec.run_ids(LEGACY_VERSION)["failed"]
    path = next(folder.glob(f"*-{run_id}/run-{run_id}.wandb"))
    path.write_bytes(path.read_bytes()[:-10])

    out = runreview_cli("check", "--wandb-dir", str(folder))
    assert out.returncode == 1, out.stderr
    assert f"run {run_id}" in out.stdout and "incomplete tail at byte" in out.stdout

    missing = runreview_cli("runs", "--wandb-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_python_api_reads_wandb_dirs(wandb_folders):
    runs = runreview.load_runs(wandb_dirs=[str(wandb_folders.wandb_dir(CORE_VERSION))])
    assert set(runs["run_id"]) == set(spec.run_ids(CORE_VERSION).values())
    history = runreview.load_history(
        wandb_dirs=[str(wandb_folders.root)],
        metrics=["acc"],
        run_ids=[spec.run_ids(LEGACY_VERSION)["long"]],
    )
    assert len(history) == spec.LONG_STEPS and set(history["metric"]) == {"acc"}
