"""The Python API for notebooks, and `runreview app` serving the app."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

import runreview
from runreview.contract import HISTORY_COLUMNS, RUN_COLUMNS
from runreview.sources.base import SourceError


def test_load_runs_and_history_read_both_kinds(demo_workspace):
    runs = runreview.load_runs(
        tracking_uris=[demo_workspace.tracking_uri], logdirs=[str(demo_workspace.logdir)]
    )
    assert list(runs.columns[: len(RUN_COLUMNS)]) == RUN_COLUMNS
    assert len(runs) == demo_workspace.total_runs
    assert runs.attrs["findings"] == []
    history = runreview.load_history(
        logdirs=[str(demo_workspace.logdir)],
        metrics=["val_accuracy"],
        run_ids=[runs["run_id"].iloc[-1]],
    )
    assert list(history.columns) == HISTORY_COLUMNS
    assert set(history["metric"]) <= {"val_accuracy"}


def test_load_runs_filters_experiments(demo_workspace):
    runs = runreview.load_runs(
        tracking_uris=[demo_workspace.tracking_uri], experiments=["wine-mlp"]
    )
    assert set(runs["experiment"]) == {"wine-mlp"}
    assert len(runs) == 10


def test_load_runs_raises_naming_a_missing_store(tmp_path):
    with pytest.raises(SourceError, match="missing.db"):
        runreview.load_runs(tracking_uris=[f"sqlite:///{tmp_path / 'missing.db'}"])
    assert not (tmp_path / "missing.db").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_runreview_app_serves_the_given_sources(demo_workspace):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runreview.cli", "app", "--port", str(port), "--address", "127.0.0.1",
         "--logdir", str(demo_workspace.logdir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        body = b""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_stcore/health", timeout=2
                ) as r:
                    body = r.read()
                    break
            except OSError:
                time.sleep(0.3)
        assert body == b"ok", (
            proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
