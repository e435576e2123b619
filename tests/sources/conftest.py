"""Session fixtures for the MLflow source tests: real stores and a real tracking server.

Built once per session, only when an MLflow test asks for them: a real ``mlflow server``
on 127.0.0.1 backed by a sqlite file, filled through that server by the real MLflow client
(see ``mlflow_fixtures``), and a legacy mlruns folder written by MLflow's FileStore. Each
test reads its own copy of the sqlite file or mlruns folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.sources import mlflow_fixtures, postgres


@dataclass
class MlflowStores:
    """What the session built."""

    server_uri: str
    server_db: Path
    pristine_db: Path
    server_manifest: dict
    mlruns: Path
    files_manifest: dict

    def run(self, role: str) -> str:
        """The run id of a run by its role in the fixture ("good", "deleted", ...)."""
        return self.server_manifest["runs"][role]


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(folder: Path, port: int, backend: str | None = None) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    log = (folder / "server.log").open("wb")
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend or f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(folder / "mlartifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    # No background job runner: one process less to start (and to stop) on 2 cores.
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server we started (its own process group: uvicorn has child processes)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def mlflow_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowStores]:
    """The session's server and stores (the server is stopped at the end)."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = _start_server(root / "server", port)
    try:
        files = mlflow_fixtures.start_child("files", root / "files")
        built = mlflow_fixtures.start_child("server", root / "built", uri)
        files_manifest = mlflow_fixtures.finish_child(files, root / "files")
        try:
            server_manifest = mlflow_fixtures.finish_child(built, root / "built")
        except RuntimeError as exc:
            log = (root / "server" / "server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{exc}\nserver log:\n{log}") from None
        pristine = root / "pristine.db"
        shutil.copyfile(root / "server" / "mlflow.db", pristine)
        yield MlflowStores(
            server_uri=uri,
            server_db=root / "server" / "mlflow.db",
            pristine_db=pristine,
            server_manifest=server_manifest,
            mlruns=root / "files" / "mlruns",
            files_manifest=files_manifest,
        )
    finally:
        _stop(server)


@pytest.fixture
def sqlite_copy(mlflow_stores: MlflowStores, tmp_path: Path) -> Path:
    """This test's own copy of the session's sqlite store."""
    target = tmp_path / "mlflow.db"
    shutil.copyfile(mlflow_stores.pristine_db, target)
    return target


@pytest.fixture
def mlruns_copy(mlflow_stores: MlflowStores, tmp_path: Path) -> Path:
    """This test's own copy of the session's mlruns folder (artifacts stay where they are)."""
    target = tmp_path / "mlruns"
    shutil.copytree(mlflow_stores.mlruns, target, symlinks=True)
    return target


@dataclass
class PostgresServer:
    """An MLflow tracking server backed by a real PostgreSQL, filled like the sqlite one."""

    uri: str
    manifest: dict


@pytest.fixture(scope="session")
def postgres_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """PostgreSQL (Debian's package) + ``mlflow server`` on it, both on 127.0.0.1.

    Fails (never skips) when PostgreSQL is missing: the scale-out path must run in CI.
    """
    root = tmp_path_factory.mktemp("postgres-mlflow")
    pg = postgres.start_postgres(free_port())
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = _start_server(root / "server", port, backend=pg.uri())
    try:
        built = mlflow_fixtures.start_child("server", root / "built", uri)
        try:
            manifest = mlflow_fixtures.finish_child(built, root / "built")
        except RuntimeError as exc:
            log = (root / "server" / "server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{exc}\nserver log:\n{log}") from None
        yield PostgresServer(uri, manifest)
    finally:
        _stop(server)
        postgres.stop_postgres(pg)
