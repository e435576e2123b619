"""The ``runreview`` command run as a subprocess, as a user runs it."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from tensorboardX import SummaryWriter

from runreview.contract import HISTORY_COLUMNS, RUN_COLUMNS
from tests.sources.tb_writers import record_offsets


def runreview(
    *args: str, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter."""
    import os

    full_env = {
        k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "RUNREVIEW_LOGDIR"}
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "runreview.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def test_runs_lists_mlflow_and_tensorboard_runs_together(demo_workspace):
    from mlflow import MlflowClient

    out = runreview(
        "runs",
        "--tracking-uri",
        demo_workspace.tracking_uri,
        "--logdir",
        str(demo_workspace.logdir),
        "--format",
        "csv",
    )
    assert out.returncode == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout), dtype=str, keep_default_na=False)
    assert list(frame.columns[: len(RUN_COLUMNS)]) == RUN_COLUMNS
    assert (frame["source"] == "mlflow").sum() == demo_workspace.mlflow_runs
    assert (frame["source"] == "tensorboard").sum() == demo_workspace.tensorboard_runs

    # MLflow rows agree with MLflow's own client: params and last metric values.
    client = MlflowClient(tracking_uri=demo_workspace.tracking_uri)
    experiments = client.search_experiments()
    expected = client.search_runs([e.experiment_id for e in experiments], max_results=1000)
    rows = frame[frame["source"] == "mlflow"].set_index("run_id")
    assert set(rows.index) == {r.info.run_id for r in expected}
    for run in expected:
        row = rows.loc[run.info.run_id]
        for key, value in run.data.params.items():
            assert row[f"params.{key}"] == value
        for key, value in run.data.metrics.items():
            assert float(row[f"metrics.{key}"]) == pytest.approx(value, rel=1e-12, nan_ok=True)


def test_tensorboard_rows_agree_with_tensorboards_own_reader(demo_workspace):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = runreview("runs", "--logdir", str(demo_workspace.logdir), "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = {r["run_id"]: r for r in json.loads(out.stdout)}
    assert len(rows) == demo_workspace.tensorboard_runs
    checked = 0
    for run_id, row in rows.items():
        acc = EventAccumulator(
            str(Path(demo_workspace.logdir) / run_id), size_guidance={"scalars": 0, "tensors": 0}
        )
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            events = acc.Scalars(tag)
            assert row[f"metrics.{tag}"] == pytest.approx(events[-1].value, rel=1e-6)
            checked += 1
    # TF2-style runs keep scalars as tensors, which EventAccumulator does not list as scalars;
    # at least the v1 runs must have been compared.
    assert checked >= 10


def test_history_csv_has_the_contract_columns(demo_workspace):
    out = runreview(
        "history", "--logdir", str(demo_workspace.logdir), "--metric", "val_loss", "--format", "csv"
    )
    assert out.returncode == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout))
    assert list(frame.columns) == HISTORY_COLUMNS
    assert set(frame["metric"]) == {"val_loss"}
    assert frame.groupby("run_id").size().min() >= 2


def test_json_runs_have_contract_column_names(demo_workspace):
    out = runreview("runs", "--tracking-uri", demo_workspace.tracking_uri, "--format", "json")
    records = json.loads(out.stdout)
    assert list(records[0])[: len(RUN_COLUMNS)] == RUN_COLUMNS
    assert records[0]["start_time"].endswith("Z")


def _damaged_logdir(tmp_path: Path) -> tuple[Path, Path, int, int]:
    """A logdir with one run of 100 scalar records, record 50's data bytes flipped."""
    logdir = tmp_path / "logs"
    with SummaryWriter(str(logdir / "run-a")) as writer:
        for step in range(100):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
    with SummaryWriter(str(logdir / "run-b")) as writer:
        writer.add_scalar("loss", 0.5, 0)
    path = next((logdir / "run-a").glob("*tfevents*"))
    data = bytearray(path.read_bytes())
    offsets = record_offsets(bytes(data))
    record = 50
    data[offsets[record] + 12 + 3] ^= 0xFF  # a byte inside the record's payload
    path.write_bytes(bytes(data))
    return logdir, path, offsets[record], record


def test_check_names_file_offset_and_record_of_a_bad_crc(tmp_path):
    logdir, path, offset, record = _damaged_logdir(tmp_path)
    out = runreview("check", "--logdir", str(logdir))
    assert out.returncode == 1
    lines = [line for line in out.stdout.splitlines() if str(path) in line]
    assert lines, out.stdout
    assert any(f"offset {offset}" in line and f"record {record}" in line for line in lines), lines


def test_every_other_record_is_read_around_a_bad_crc(tmp_path):
    logdir, _, _, _ = _damaged_logdir(tmp_path)
    out = runreview("history", "--logdir", str(logdir), "--run", "run-a", "--format", "csv")
    assert out.returncode == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout))
    # 100 scalar points were written; the damaged record held one of them.
    assert len(frame) == 99
    assert 99 in set(frame["step"]) and 0 in set(frame["step"])
    assert "problem" in out.stderr  # the user is told something was not read


def test_check_on_clean_sources_exits_0(tmp_path):
    with SummaryWriter(str(tmp_path / "logs" / "ok")) as writer:
        writer.add_scalar("loss", 0.5, 0)
    out = runreview("check", "--logdir", str(tmp_path / "logs"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == ""


def test_missing_sqlite_store_is_an_error_and_nothing_is_created(tmp_path):
    db = tmp_path / "typo.db"
    out = runreview("runs", "--tracking-uri", f"sqlite:///{db}")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "typo.db" in out.stderr
    assert not db.exists()
    assert list(tmp_path.iterdir()) == []


def test_missing_logdir_is_an_error(tmp_path):
    out = runreview("runs", "--logdir", str(tmp_path / "nope"))
    assert out.returncode == 2
    assert "nope" in out.stderr
    assert not (tmp_path / "nope").exists()


def test_no_sources_says_what_to_do():
    out = runreview("runs")
    assert out.returncode == 2
    assert "--tracking-uri" in out.stderr and "runreview demo" in out.stderr


def test_credentials_are_never_printed_for_an_unreachable_server():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when we call
    started = time.monotonic()
    out = runreview(
        "runs",
        "--tracking-uri",
        f"http://alice:S3cr3t@127.0.0.1:{port}",
        env={"RUNREVIEW_HTTP_TIMEOUT": "5"},
        timeout=120,
    )
    assert out.returncode == 2
    assert time.monotonic() - started < 60
    assert "S3cr3t" not in out.stdout + out.stderr
    assert "unreachable" in out.stderr


def test_environment_variables_name_the_sources(demo_workspace):
    out = runreview("runs", "--format", "csv", env={"RUNREVIEW_LOGDIR": str(demo_workspace.logdir)})
    assert out.returncode == 0, out.stderr
    assert len(pd.read_csv(io.StringIO(out.stdout))) == demo_workspace.tensorboard_runs
