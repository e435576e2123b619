"""MLflow stores for the benchmarks, filled with ``MlflowClient.log_batch``, and a real
``mlflow server`` in front of one of them.

Stores are sqlite files, made once per shape and kept under the data folder (``meta.json``
beside each says what is in it). An empty store with MLflow's schema is made once and
copied, so the schema migrations run only once per data folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchmarks.common import log

T0_MS = 1_700_000_000_000
EXPERIMENT = "bench"


def _client(db: Path):
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{db}")


def _empty_store(folder: Path) -> Path:
    """An empty store with MLflow's current schema (made once, then copied)."""
    template = folder / "_empty.db"
    if not template.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "_empty.tmp.db"
        tmp.unlink(missing_ok=True)
        _client(tmp).search_experiments()  # creates the schema
        tmp.rename(template)
    return template


def _prepared(folder: Path, name: str, wanted: dict) -> tuple[Path, bool]:
    """(store path, True when it already holds ``wanted``)."""
    store = folder / name / "mlflow.db"
    meta = folder / name / "meta.json"
    if meta.exists() and store.exists() and json.loads(meta.read_text()) == wanted:
        return store, True
    shutil.rmtree(folder / name, ignore_errors=True)
    store.parent.mkdir(parents=True)
    shutil.copyfile(_empty_store(folder), store)
    return store, False


def _done(store: Path, wanted: dict) -> Path:
    (store.parent / "meta.json").write_text(json.dumps(wanted))
    return store


def make_runs_store(folder: Path, runs: int, params: int, metrics: int) -> Path:
    """``runs`` finished runs, each with ``params`` params and ``metrics`` metrics (one
    value each, the "latest values" a runs table shows) and two tags."""
    from mlflow.entities import Metric, Param, RunTag

    wanted = {"kind": "runs", "runs": runs, "params": params, "metrics": metrics}
    store, ready = _prepared(folder, f"runs-{runs}", wanted)
    if ready:
        return store
    client = _client(store)
    exp = client.create_experiment(EXPERIMENT)
    rng = np.random.default_rng(1)
    for i in range(runs):
        if i % 1000 == 0:
            log(f"mlflow runs store: {i:,}/{runs:,} runs")
        run = client.create_run(exp, start_time=T0_MS + i * 1000, run_name=f"run-{i:05d}")
        values = rng.random(metrics)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(f"m{k:02d}", float(values[k]), T0_MS + i, 0) for k in range(metrics)],
            params=[Param(f"p{k:02d}", str((i * 7 + k) % 13)) for k in range(params)],
            tags=[RunTag("team", f"t{i % 5}"), RunTag("purpose", "benchmark")],
        )
        client.set_terminated(run.info.run_id, end_time=T0_MS + i * 1000 + 500)
    return _done(store, wanted)


def make_history_store(
    folder: Path, runs: int, metrics: int, steps: int, params: int = 5, name: str = "history"
) -> Path:
    """``runs`` finished runs, each logging ``metrics`` metrics at ``steps`` steps."""
    from mlflow.entities import Metric, Param

    wanted = {"kind": name, "runs": runs, "metrics": metrics, "steps": steps, "params": params}
    store, ready = _prepared(folder, f"{name}-{runs}x{metrics}x{steps}", wanted)
    if ready:
        return store
    client = _client(store)
    exp = client.create_experiment(EXPERIMENT)
    for i in range(runs):
        if i % 200 == 0:
            log(f"mlflow {name} store: {i:,}/{runs:,} runs")
        run = client.create_run(exp, start_time=T0_MS + i * 60_000, run_name=f"run-{i:04d}")
        rid = run.info.run_id
        client.log_batch(rid, params=[Param(f"p{k}", str((i + k) % 4)) for k in range(params)])
        points = _points(i, metrics, steps)
        for lo in range(0, len(points), 1000):  # log_batch takes at most 1000 metrics
            client.log_batch(rid, metrics=[Metric(*m) for m in points[lo : lo + 1000]])
        client.set_terminated(rid, end_time=T0_MS + i * 60_000 + steps * 1000)
    return _done(store, wanted)


def _points(run: int, metrics: int, steps: int) -> list[tuple[str, float, int, int]]:
    """(key, value, timestamp, step) of every point of one run: Metric's argument order."""
    rng = np.random.default_rng(run)
    out = []
    for k in range(metrics):
        values = np.exp(-np.arange(steps) / (20.0 + k)) + rng.normal(0, 0.01, steps)
        out += [(f"m{k:02d}", float(values[s]), T0_MS + s * 1000, s) for s in range(steps)]
    return out


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(
    store: Path, work: Path, workers: int = 4, timeout: float = 300.0
) -> Iterator[str]:
    """A real ``mlflow server`` over ``store`` on 127.0.0.1; yields its URL. Always stopped
    (its whole process group) on exit."""
    port = free_port()
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    artifacts = work / "server-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    command = [
        str(mlflow_bin),
        "server",
        "--backend-store-uri",
        f"sqlite:///{store}",
        "--artifacts-destination",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    logfile = open(work / "mlflow-server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        command, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True, cwd=work
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, timeout)
        yield url
    finally:
        _stop(proc)
        logfile.close()


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode} (see its log)")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"mlflow server at {url} not healthy after {timeout:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
