"""The MLflow source against real stores: a sqlite file, a real tracking server, an mlruns
folder (built by real MLflow in ``conftest``), plus damaged copies and fake servers of our
own for the failure cases. No mocks of MLflow."""

from __future__ import annotations

import hashlib
import math
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runreview.contract import (
    ENV_GIT_BRANCH,
    ENV_GIT_COMMIT,
    ENV_PYTHON,
    RUN_COLUMNS,
    TEXT_DTYPE,
    TIME_DTYPE,
)
from runreview.sources import is_mlflow_uri, open_source
from runreview.sources.base import SourceError
from runreview.sources.mlflow import MlflowSource
from runreview.sources.mlflow.artifacts import LocalArtifacts
from runreview.sources.mlflow.http.history import plan_batches
from runreview.sources.mlflow.paths import (
    ArtifactRoot,
    UnsafeArtifactPath,
    check_artifact_root,
    check_relative_path,
)
from tests.sources.conftest import free_port
from tests.sources.mlflow_fixtures import BIG_POINTS, CONFUSION, MANY_RUNS, REPEATS, tiny_png

SECRET = "S3cr3t"


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def without_uri(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["source_uri"]).reset_index(drop=True)


def messages(source: MlflowSource) -> str:
    return "\n".join(f.line() for f in source.findings)


# --- the same frames from every path ------------------------------------------------------


def test_sqlite_server_and_mlflow_client_return_the_same_runs(mlflow_stores, sqlite_copy):
    from mlflow import MlflowClient

    local = MlflowSource(sqlite_uri(sqlite_copy)).read_runs()
    served = MlflowSource(mlflow_stores.server_uri).read_runs()
    pd.testing.assert_frame_equal(without_uri(local), without_uri(served))

    client = MlflowClient(tracking_uri=mlflow_stores.server_uri)
    exp_ids = [e.experiment_id for e in client.search_experiments()]
    expected = {r.info.run_id: r for r in client.search_runs(exp_ids, max_results=1000)}
    assert set(local["run_id"]) == set(expected)
    for row in local.to_dict("records"):
        run = expected[row["run_id"]]
        assert {k: row[f"params.{k}"] for k in run.data.params} == run.data.params
        assert {k: row[f"tags.{k}"] for k in run.data.tags} == run.data.tags
        for key, value in run.data.metrics.items():
            ours = row[f"metrics.{key}"]
            # SQL stores keep +/-inf as +/-max double; runreview shows the infinity.
            assert (
                ours == value
                or (math.isinf(ours) and abs(value) == 1.7976931348623157e308)
                or (math.isnan(ours) and math.isnan(value))
            )
        assert row["status"] == run.info.status
        assert row["start_time"] == pd.Timestamp(run.info.start_time, unit="ms", tz="UTC")


def test_mlruns_reader_agrees_with_mlflows_file_store(mlruns_copy, monkeypatch):
    from mlflow import MlflowClient

    ours = MlflowSource(str(mlruns_copy)).read_runs()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=mlruns_copy.as_uri())
    exp_ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(exp_ids, max_results=1000)
    assert sorted(ours["run_id"]) == sorted(r.info.run_id for r in runs)
    for run in runs:
        row = ours.set_index("run_id").loc[run.info.run_id]
        assert row["status"] == run.info.status
        assert row["run_name"] == run.info.run_name
        for key, value in run.data.params.items():
            assert row[f"params.{key}"] == value
        for key, value in run.data.metrics.items():
            assert row[f"metrics.{key}"] == value or (
                math.isnan(value) and math.isnan(row[f"metrics.{key}"])
            )


def test_runs_frame_follows_the_contract(mlflow_stores, sqlite_copy):
    runs = MlflowSource(sqlite_uri(sqlite_copy)).read_runs().set_index("run_id", drop=False)
    assert list(runs.columns[: len(RUN_COLUMNS)]) == RUN_COLUMNS
    assert set(runs["source"]) == {"mlflow"}
    assert set(runs["experiment"]) == {"exp-a", "exp-many"}
    good = runs.loc[mlflow_stores.run("good")]
    assert good["run_name"] == "good-1" and good["status"] == "FINISHED"
    assert good["params.lr"] == "0.1" and good["params.depth"] == "3"
    assert good["metrics.loss"] == pytest.approx(0.1)
    assert good["metrics.val/loss"] == pytest.approx(0.2)
    assert math.isnan(good["metrics.nan_metric"])
    assert good["metrics.inf_metric"] == math.inf and good["metrics.neg_inf_metric"] == -math.inf
    assert good["tags.team"] == "vision"
    assert good["end_time"] == pd.Timestamp(1_700_000_060_000, unit="ms", tz="UTC")
    assert str(runs["start_time"].dtype) == TIME_DTYPE
    assert runs["params.lr"].dtype == TEXT_DTYPE and runs["run_name"].dtype == TEXT_DTYPE
    assert runs.loc[mlflow_stores.run("failed"), "status"] == "FAILED"
    running = runs.loc[mlflow_stores.run("running")]
    assert running["status"] == "RUNNING" and pd.isna(running["end_time"])
    assert runs["metrics.loss"].dtype == "float64"


# --- deleted runs, filters ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["sqlite", "server", "files"])
def test_deleted_runs_and_experiments_are_left_out_unless_asked(
    path, mlflow_stores, sqlite_copy, mlruns_copy
):
    location, manifest = {
        "sqlite": (sqlite_uri(sqlite_copy), mlflow_stores.server_manifest),
        "server": (mlflow_stores.server_uri, mlflow_stores.server_manifest),
        "files": (str(mlruns_copy), mlflow_stores.files_manifest),
    }[path]
    hidden = {manifest["runs"]["deleted"], manifest["runs"]["in_deleted_experiment"]}
    default = MlflowSource(location, include_deleted=False).read_runs()
    assert hidden.isdisjoint(default["run_id"])
    everything = MlflowSource(location, include_deleted=True).read_runs()
    assert hidden <= set(everything["run_id"])
    assert set(everything.set_index("run_id").loc[list(hidden), "lifecycle_stage"]) == {"deleted"}


def test_experiment_filter_by_name(sqlite_copy):
    source = MlflowSource(sqlite_uri(sqlite_copy))
    runs = source.read_runs(["exp-many", "no-such-experiment"])
    assert set(runs["experiment"]) == {"exp-many"} and len(runs) == MANY_RUNS
    assert "'no-such-experiment' is not in this store" in messages(source)


def test_history_is_every_point_with_nan_and_inf(mlflow_stores, sqlite_copy):
    good = mlflow_stores.run("good")
    history = MlflowSource(sqlite_uri(sqlite_copy)).read_history(run_ids=[good])
    loss = history[history["metric"] == "loss"]
    assert list(loss["step"]) == list(range(10))
    assert np.allclose(loss["value"], [1 / (s + 1) for s in range(10)])
    assert set(history["metric"]) == {
        "loss",
        "val/loss",
        "acc",
        "nan_metric",
        "inf_metric",
        "neg_inf_metric",
    }
    nan_points = history[history["metric"] == "nan_metric"]["value"].tolist()
    assert nan_points[0] == 1.0 and math.isnan(nan_points[1])
    assert history[history["metric"] == "inf_metric"]["value"].tolist() == [math.inf]
    assert str(history["timestamp"].dtype) == TIME_DTYPE
    narrowed = MlflowSource(sqlite_uri(sqlite_copy)).read_history(metrics=["val/loss"])
    assert set(narrowed["metric"]) == {"val/loss"} and len(narrowed) == 10


def test_history_of_mlruns_matches_sqlite_shape(mlflow_stores, mlruns_copy):
    good = mlflow_stores.files_manifest["runs"]["good"]
    history = MlflowSource(str(mlruns_copy)).read_history(run_ids=[good])
    assert len(history[history["metric"] == "val/loss"]) == 10
    assert history[history["metric"] == "neg_inf_metric"]["value"].tolist() == [-math.inf]


# --- never create, never write ------------------------------------------------------------


def test_missing_sqlite_store_is_an_error_and_nothing_is_created(tmp_path):
    missing = tmp_path / "typo.db"
    with pytest.raises(SourceError, match="MLflow store not found: .*typo.db. Check the path"):
        open_source(sqlite_uri(missing))
    assert list(tmp_path.iterdir()) == []


def test_missing_mlruns_folder_is_an_error_and_nothing_is_created(tmp_path):
    with pytest.raises(SourceError, match="MLflow store not found"):
        MlflowSource((tmp_path / "mlruns").as_uri())
    with pytest.raises(SourceError, match="not found"):
        open_source(str(tmp_path / "mlruns"))
    assert list(tmp_path.iterdir()) == []


def test_reading_leaves_the_sqlite_file_byte_identical(mlflow_stores, sqlite_copy):
    before = sha256(sqlite_copy)
    source = MlflowSource(sqlite_uri(sqlite_copy), include_deleted=True)
    source.read_runs()
    source.read_history()
    for role in ("good", "trained", "failed"):
        run_id = mlflow_stores.run(role)
        source.read_run_details(run_id)
        source.read_environment(run_id)
        source.read_confusion(run_id)
    assert sha256(sqlite_copy) == before
    assert sorted(p.name for p in sqlite_copy.parent.iterdir()) == ["mlflow.db"]


def test_reading_mlruns_creates_nothing(mlflow_stores, mlruns_copy):
    (mlruns_copy / ".trash").rename(mlruns_copy.parent / "trash-aside")  # FileStore recreates it
    before = sorted((str(p), p.stat().st_mtime_ns) for p in mlruns_copy.rglob("*"))
    source = MlflowSource(str(mlruns_copy))
    source.read_runs()
    source.read_history()
    good = mlflow_stores.files_manifest["runs"]["good"]
    source.read_run_details(good)
    source.read_environment(good)
    after = sorted((str(p), p.stat().st_mtime_ns) for p in mlruns_copy.rglob("*"))
    assert after == before


# --- schema versions and damaged sqlite files ---------------------------------------------


def _set_schema_version(path: Path, version: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (version,))
    conn.close()


def test_newer_schema_version_is_refused_and_the_file_left_alone(sqlite_copy):
    _set_schema_version(sqlite_copy, "ffffffffffff")
    before = sha256(sqlite_copy)
    with pytest.raises(SourceError) as caught:
        MlflowSource(sqlite_uri(sqlite_copy)).read_runs()
    text = str(caught.value)
    assert "store schema version ffffffffffff, this runreview expects" in text
    assert "mlflow db upgrade" in text
    assert sha256(sqlite_copy) == before


def test_older_known_schema_with_every_column_is_read(sqlite_copy):
    from runreview.sources.mlflow.sqlite import known_schema

    revisions, heads = known_schema()
    older = sorted(revisions - heads)[0]
    _set_schema_version(sqlite_copy, older)
    source = MlflowSource(sqlite_uri(sqlite_copy))
    assert len(source.read_runs()) > 0
    assert f"store schema version {older} is older" in messages(source)


def test_not_a_database_and_truncated_files_are_clear_errors(sqlite_copy, tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(SourceError, match="not an SQLite database"):
        MlflowSource(sqlite_uri(garbage)).read_runs()
    data = sqlite_copy.read_bytes()
    sqlite_copy.write_bytes(data[: len(data) // 3])
    with pytest.raises(SourceError, match="damaged or truncated|not an MLflow tracking store"):
        source = MlflowSource(sqlite_uri(sqlite_copy))
        source.read_runs()
        source.read_history()


def test_locked_store_fails_after_a_bounded_wait(sqlite_copy):
    writer = sqlite3.connect(sqlite_copy, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(SourceError, match="locked by another process"):
            MlflowSource(sqlite_uri(sqlite_copy), lock_timeout=0.6).read_runs()
        assert time.monotonic() - started < 5
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_wal_mode_store_is_read_without_creating_side_files(sqlite_copy):
    with sqlite3.connect(sqlite_copy) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    assert sorted(p.name for p in sqlite_copy.parent.iterdir()) == ["mlflow.db"]
    before = sha256(sqlite_copy)
    assert len(MlflowSource(sqlite_uri(sqlite_copy)).read_runs()) > 0
    assert sorted(p.name for p in sqlite_copy.parent.iterdir()) == ["mlflow.db"]
    assert sha256(sqlite_copy) == before


# --- tracking server: paging, history, failures -------------------------------------------


def test_small_pages_read_every_run_once(mlflow_stores, sqlite_copy):
    paged = MlflowSource(mlflow_stores.server_uri, page_size=7).read_runs()
    expected = MlflowSource(sqlite_uri(sqlite_copy)).read_runs()
    assert len(paged) == len(expected) > 7
    assert paged["run_id"].is_unique
    pd.testing.assert_frame_equal(without_uri(paged), without_uri(expected))


def test_page_size_above_the_limit_is_refused():
    with pytest.raises(ValueError, match="page_size"):
        MlflowSource("http://127.0.0.1:1", page_size=50_001)


def test_long_history_comes_back_complete_through_the_server(mlflow_stores, sqlite_copy):
    big = mlflow_stores.run("big")
    served = MlflowSource(mlflow_stores.server_uri).read_history(metrics=["long"], run_ids=[big])
    assert len(served) == BIG_POINTS
    assert list(served["step"]) == list(range(BIG_POINTS))
    local = MlflowSource(sqlite_uri(sqlite_copy)).read_history(metrics=["long"], run_ids=[big])
    pd.testing.assert_frame_equal(without_uri(served), without_uri(local))


def test_cut_bulk_responses_are_completed(mlflow_stores, sqlite_copy):
    # Each "many" run logged REPEATS points at step 0: the step hint (1) underestimates,
    # so with a 7-point cap the server cuts responses and the reader must notice.
    many = mlflow_stores.server_manifest["many"]
    source = MlflowSource(mlflow_stores.server_uri, history_cap=7)
    source.read_runs(["exp-many"])
    served = source.read_history(metrics=["repeat", "loss"], run_ids=many)
    local = MlflowSource(sqlite_uri(sqlite_copy)).read_history(metrics=["repeat", "loss"])
    local = local[local["run_id"].isin(many)]
    assert len(served) == MANY_RUNS * (REPEATS + 3)
    pd.testing.assert_frame_equal(without_uri(served), without_uri(local))


def test_whole_history_through_the_server_equals_the_sqlite_read(mlflow_stores, sqlite_copy):
    served = MlflowSource(mlflow_stores.server_uri).read_history()
    local = MlflowSource(sqlite_uri(sqlite_copy)).read_history()
    pd.testing.assert_frame_equal(without_uri(served), without_uri(local))


def test_batches_respect_the_run_and_point_caps():
    hints = {f"r{i:03d}": 10 for i in range(250)} | {"huge": 30_000}
    batches, alone = plan_batches(hints, cap=25_000)
    assert alone == ["huge"]
    assert all(len(b) <= 100 for b in batches)
    assert sorted(r for b in batches for r in b) == sorted(r for r in hints if r != "huge")
    batches, _ = plan_batches({"a": 600, "b": 500, "c": 1}, cap=1000)
    assert batches == [["a"], ["b", "c"]]


def test_dead_server_fails_fast_with_a_clear_error():
    uri = f"http://alice:{SECRET}@127.0.0.1:{free_port()}"
    source = MlflowSource(uri, http_timeout=2)
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        source.read_runs()
    assert time.monotonic() - started < 8
    text = str(caught.value)
    assert "MLflow tracking server unreachable at http://***@127.0.0.1" in text
    assert SECRET not in text and SECRET not in source.uri


def test_hanging_server_times_out_within_the_budget():
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(SourceError, match="did not answer within 2 s"):
            MlflowSource(uri, http_timeout=2).read_runs()
        assert time.monotonic() - started < 8


def test_http_limits_are_restored_after_reading(mlflow_stores, monkeypatch):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    MlflowSource(mlflow_stores.server_uri).read_runs(["exp-many"])
    import os

    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"


@contextmanager
def fake_server(status: int, body: bytes, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A tiny HTTP server of our own answering every request with ``status`` and ``body``."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def forwarding_proxy(
    target: str, *, block_bulk: bool = False, fail_first: int = 0
) -> Iterator[str]:
    """A proxy of our own in front of a real server: it can answer 404 for /ajax-api/ and
    503 for the first ``fail_first`` requests."""
    failures = {"left": fail_first}

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if failures["left"] > 0:
                failures["left"] -= 1
                self.send_error(503)
                return
            if block_bulk and self.path.startswith("/ajax-api/"):
                self.send_error(404)
                return
            headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
            request = urllib.request.Request(
                target + self.path, data=body, headers=headers, method=self.command
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, data = response.status, response.read()
            except urllib.error.HTTPError as exc:
                status, data = exc.code, exc.read()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _forward

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_transient_server_errors_are_retried_within_the_budget(mlflow_stores):
    with forwarding_proxy(mlflow_stores.server_uri, fail_first=2) as uri:
        runs = MlflowSource(uri, http_timeout=10).read_runs(["exp-many"])
    assert len(runs) == MANY_RUNS


def test_persistent_server_errors_name_the_failed_page():
    with fake_server(503, b"busy") as uri, pytest.raises(SourceError) as caught:
        MlflowSource(uri, http_timeout=10).read_runs()
    text = str(caught.value)
    assert "kept answering with errors" in text and "experiments (page 1)" in text


def test_history_without_the_bulk_route_is_read_run_by_run(mlflow_stores, sqlite_copy):
    runs = [mlflow_stores.run("good"), *mlflow_stores.server_manifest["many"][:3]]
    with forwarding_proxy(mlflow_stores.server_uri, block_bulk=True) as uri:
        source = MlflowSource(uri)
        served = source.read_history(run_ids=runs)
    local = MlflowSource(sqlite_uri(sqlite_copy)).read_history(run_ids=runs)
    pd.testing.assert_frame_equal(without_uri(served), without_uri(local))
    assert "no bulk history route" in messages(source)


def test_untrusted_tls_certificate_is_an_error_not_a_fallback(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with fake_server(200, b"{}", tls=context) as uri, pytest.raises(SourceError) as caught:
        MlflowSource(uri, http_timeout=5).read_runs()
    assert "TLS certificate" in str(caught.value) and "never turns verification off" in str(
        caught.value
    )


def test_html_login_page_is_reported_as_an_auth_proxy():
    page = b"<html><body>Sign in <input name=token value=tok-123></body></html>"
    with fake_server(200, page) as uri, pytest.raises(SourceError) as caught:
        MlflowSource(uri, http_timeout=5).read_runs()
    text = str(caught.value)
    assert "unexpected non-JSON response (auth proxy?)" in text
    assert "tok-123" not in text and "<html" not in text


def test_unauthorised_answer_names_the_problem_without_credentials():
    with fake_server(401, b"<html>denied</html>") as uri:
        host = uri.removeprefix("http://")
        with pytest.raises(SourceError) as caught:
            MlflowSource(f"http://alice:{SECRET}@{host}", http_timeout=5).read_runs()
    text = str(caught.value)
    assert "not authorised" in text and "HTTP 401" in text
    assert SECRET not in text


def test_credentials_in_the_uri_are_used_but_never_shown(mlflow_stores):
    host = mlflow_stores.server_uri.removeprefix("http://")
    source = MlflowSource(f"http://alice:{SECRET}@{host}")
    runs = source.read_runs(["exp-many"])
    assert len(runs) == MANY_RUNS
    assert SECRET not in source.uri and set(runs["source_uri"]) == {source.uri}
    assert SECRET not in runs.to_csv()


# --- per-run details, environment, confusion ----------------------------------------------


@pytest.mark.parametrize("path", ["sqlite", "server"])
def test_run_details(path, mlflow_stores, sqlite_copy):
    location = sqlite_uri(sqlite_copy) if path == "sqlite" else mlflow_stores.server_uri
    source = MlflowSource(location)
    good = source.read_run_details(mlflow_stores.run("good"))
    assert good["experiment"] == "exp-a"
    assert good["datasets"] == [
        {"name": "train", "digest": good["datasets"][0]["digest"], "source_type": "s3",
         "source": '{"uri": "s3://bucket/train.csv"}', "context": "training"}
    ]  # fmt: skip
    paths = {a["path"]: a["size"] for a in good["artifacts"]}
    assert {"environment.json", "confusion_matrix.json", "eval/predictions.csv"} <= set(paths)
    assert paths["plots/confusion_plot.png"] == len(tiny_png())
    trained = source.read_run_details(mlflow_stores.run("trained"))
    assert trained["model_versions"] == [{"name": "clf", "version": "1", "status": "READY"}]
    assert [m["name"] for m in trained["logged_models"]] == ["model"]


def test_environment_from_environment_json_and_tags(mlflow_stores, sqlite_copy):
    env = MlflowSource(sqlite_uri(sqlite_copy)).read_environment(mlflow_stores.run("good"))
    assert env.values[ENV_PYTHON] == ("3.11.9", "artifact environment.json")
    assert env.get(ENV_GIT_COMMIT) == "0123456789abcdef0123456789abcdef01234567"
    assert env.packages == {"numpy": "2.4.0", "scikit-learn": "1.9.1"}
    assert env.values["source.name"] == ("train.py", "tag mlflow.source.name")


@pytest.mark.parametrize("path", ["sqlite", "server"])
def test_environment_from_a_logged_model(path, mlflow_stores, sqlite_copy):
    location = sqlite_uri(sqlite_copy) if path == "sqlite" else mlflow_stores.server_uri
    env = MlflowSource(location).read_environment(mlflow_stores.run("trained"))
    # MLflow adds itself to the pins it was given.
    assert env.packages == {
        "mlflow": env.packages["mlflow"],
        "scikit-learn": "1.9.1",
        "numpy": "2.4.0",
    }
    assert env.packages_origin == "logged model 'model' requirements.txt"
    python, origin = env.values[ENV_PYTHON]
    assert python.count(".") == 2 and origin == "logged model 'model' python_env.yaml"


def test_environment_from_requirements_in_the_run_artifacts(mlflow_stores, sqlite_copy):
    env = MlflowSource(sqlite_uri(sqlite_copy)).read_environment(mlflow_stores.run("failed"))
    assert env.packages == {"pandas": "3.1.1", "pyyaml": ">=6"}
    assert env.packages_origin == "artifact model/requirements.txt"


def test_environment_from_a_file_store(mlflow_stores, mlruns_copy):
    good = mlflow_stores.files_manifest["runs"]["good"]
    env = MlflowSource(str(mlruns_copy)).read_environment(good)
    assert env.values[ENV_GIT_BRANCH] == ("main", "artifact environment.json (git.branch)")


@pytest.mark.parametrize("path", ["sqlite", "server", "files"])
def test_confusion_from_matrix_tables_and_images(path, mlflow_stores, sqlite_copy, mlruns_copy):
    location, good = {
        "sqlite": (sqlite_uri(sqlite_copy), mlflow_stores.run("good")),
        "server": (mlflow_stores.server_uri, mlflow_stores.run("good")),
        "files": (str(mlruns_copy), mlflow_stores.files_manifest["runs"]["good"]),
    }[path]
    found = {c.name: c for c in MlflowSource(location).read_confusion(good)}
    assert list(found) == [
        "confusion_matrix.json", "eval/predictions.csv", "eval/preds_table.json",
        "plots/confusion_plot.png",
    ]  # fmt: skip
    matrix = found["confusion_matrix.json"]
    assert matrix.labels == CONFUSION["labels"]
    assert matrix.counts.tolist() == CONFUSION["matrix"]
    table = found["eval/predictions.csv"]
    assert table.labels == ["cat", "dog", "fox"]
    assert table.counts.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert found["eval/preds_table.json"].counts.tolist() == [[2, 0], [1, 1]]
    image = found["plots/confusion_plot.png"]
    assert image.counts is None and image.image == tiny_png()


def test_confusion_through_the_servers_artifact_proxy(mlflow_stores):
    run_id = mlflow_stores.server_manifest["many"][0]
    source = MlflowSource(mlflow_stores.server_uri)
    assert source.read_run_details(run_id)["artifact_uri"].startswith("mlflow-artifacts:")
    [matrix] = source.read_confusion(run_id)
    assert matrix.counts.tolist() == CONFUSION["matrix"]


def test_sqlite_store_says_where_server_artifacts_can_be_read(mlflow_stores, sqlite_copy):
    source = MlflowSource(sqlite_uri(sqlite_copy))
    assert source.read_confusion(mlflow_stores.server_manifest["many"][0]) == []
    assert "open the store through its tracking server" in messages(source)


# --- unsafe artifact locations (B18) ------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc",
        "/etc/ssl",
        "../../..",
        "%2e%2e%2f%2e%2e%2fetc",
        "mlflow-artifacts:/x#/../../etc",
        "s3://bucket/run/../../other",
        "C:\\Users\\x",
        "\\\\host\\share\\x",
        "file:///tmp/run\x00/artifacts",
        "file:///tmp/run\n/artifacts",
        "file://evil.example.com/share",
        "ftp://host/x",
        "relative/artifacts",
    ],
)
def test_unsafe_artifact_locations_are_refused(uri):
    with pytest.raises(UnsafeArtifactPath):
        check_artifact_root(uri, "file:///tmp")


def test_artifact_root_must_lie_inside_its_experiment(tmp_path):
    exp = (tmp_path / "exp").as_uri()
    assert (
        check_artifact_root(f"{exp}/abc/artifacts", exp).local_path
        == (tmp_path / "exp" / "abc" / "artifacts").resolve()
    )
    with pytest.raises(UnsafeArtifactPath, match="outside its experiment"):
        check_artifact_root((tmp_path / "other").as_uri(), exp)
    assert not check_artifact_root(
        "mlflow-artifacts:/1/abc/artifacts", "mlflow-artifacts:/1"
    ).is_local
    with pytest.raises(UnsafeArtifactPath, match="outside"):
        check_artifact_root("mlflow-artifacts:/2/abc/artifacts", "mlflow-artifacts:/1")


@pytest.mark.parametrize(
    "path", ["../x", "%2e%2e/x", "a/%252e%252e/b", "/etc/passwd", "a\\b", "a#b"]
)
def test_unsafe_relative_artifact_paths_are_refused(path):
    with pytest.raises(UnsafeArtifactPath):
        check_relative_path(path)


def test_symlinks_out_of_the_artifact_folder_are_not_followed(tmp_path):
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "ok.json").write_text("{}")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    (root / "link.txt").symlink_to(secret)
    access = LocalArtifacts(ArtifactRoot(uri=root.as_uri(), local_path=root))
    assert access.listing().files == [("ok.json", 2)]
    with pytest.raises(UnsafeArtifactPath):
        access.read_bytes("link.txt")


def test_run_with_a_hostile_artifact_uri_is_refused_not_read(mlflow_stores, sqlite_copy):
    good = mlflow_stores.run("good")
    with sqlite3.connect(sqlite_copy) as conn:
        conn.execute("UPDATE runs SET artifact_uri = 'file:///etc' WHERE run_uuid = ?", (good,))
    conn.close()
    source = MlflowSource(sqlite_uri(sqlite_copy))
    assert source.read_confusion(good) == []
    details = source.read_run_details(good)
    assert details["artifacts"] == [] and "refused" in details["artifact_error"]
    assert "refused" in messages(source)


# --- damaged mlruns folders (B11-B13) -----------------------------------------------------


def _many_run_dirs(mlruns: Path, manifest: dict) -> list[Path]:
    exp = manifest["experiments"]["exp-many"]
    return [mlruns / exp / run_id for run_id in manifest["many"]]


def test_damaged_run_metadata_is_reported_and_other_runs_load(mlflow_stores, mlruns_copy):
    dirs = _many_run_dirs(mlruns_copy, mlflow_stores.files_manifest)
    (dirs[0] / "meta.yaml").unlink()
    (dirs[1] / "meta.yaml").write_text("run_id: [unclosed\n  : :")
    meta = (dirs[2] / "meta.yaml").read_text()
    (dirs[2] / "meta.yaml").write_text(meta.replace("experiment_id: '", "experiment_id: '9"))
    (dirs[3] / "meta.yaml").write_bytes(bytes(range(256)) * 4)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    (dirs[4] / "meta.yaml").write_text(bomb + "run_id: *i\n")
    source = MlflowSource(str(mlruns_copy))
    started = time.monotonic()
    runs = source.read_runs(["exp-many"])
    assert time.monotonic() - started < 10
    assert sorted(runs["run_id"]) == sorted(d.name for d in dirs[5:])
    text = messages(source)
    assert f"run {dirs[0].name} unreadable: missing meta.yaml" in text
    assert f"run {dirs[1].name} unreadable: invalid YAML" in text
    assert f"run {dirs[2].name} unreadable: metadata is in invalid state" in text
    assert dirs[3].name in text and dirs[4].name in text


def test_bad_metric_lines_are_counted_and_good_points_kept(mlflow_stores, mlruns_copy):
    run_dir = _many_run_dirs(mlruns_copy, mlflow_stores.files_manifest)[0]
    metric = run_dir / "metrics" / "loss"
    metric.write_text(
        metric.read_text()
        + "1700000100099 notanumber 7\n1700000100100 nan 8\n1700000100101 inf 9\n17000"
    )
    source = MlflowSource(str(mlruns_copy))
    history = source.read_history(metrics=["loss"], run_ids=[run_dir.name])
    assert list(history["step"]) == [0, 1, 2, 8, 9]
    assert math.isnan(history["value"].iloc[3]) and history["value"].iloc[4] == math.inf
    [finding] = [f for f in source.findings if f.run_id == run_dir.name]
    assert "2 unreadable line(s)" in finding.message and finding.path.endswith("loss:4")
    row = source.read_runs(["exp-many"]).set_index("run_id").loc[run_dir.name]
    assert row["metrics.loss"] == math.inf  # the latest step (9) as MLflow defines it


def test_copied_mlruns_reads_its_own_artifact_folder(mlflow_stores, mlruns_copy):
    # Artifacts of exp-many runs live inside mlruns; the copy's meta still points at the
    # original, so delete the original's folder view by renaming the original experiment.
    exp = mlflow_stores.files_manifest["experiments"]["exp-many"]
    run_id = mlflow_stores.files_manifest["many"][0]
    original = mlflow_stores.mlruns / exp / run_id / "artifacts"
    aside = original.with_name("artifacts-aside")
    original.rename(aside)
    try:
        source = MlflowSource(str(mlruns_copy))
        [matrix] = source.read_confusion(run_id)
        assert matrix.labels == CONFUSION["labels"]
        assert "the store was probably moved" in messages(source)
    finally:
        aside.rename(original)


# --- the registry -------------------------------------------------------------------------


def test_registry_picks_the_source_by_scheme(mlflow_stores, sqlite_copy, mlruns_copy, tmp_path):
    for location in (
        sqlite_uri(sqlite_copy),
        str(sqlite_copy),
        mlflow_stores.server_uri,
        str(mlruns_copy),
        mlruns_copy.as_uri(),
    ):
        source = open_source(location)
        assert isinstance(source, MlflowSource) and source.kind == "mlflow", location
    logdir = tmp_path / "tb"
    logdir.mkdir()
    assert open_source(str(logdir), include_deleted=True).kind == "tensorboard"


def test_is_mlflow_uri(mlruns_copy, sqlite_copy, tmp_path):
    assert is_mlflow_uri("sqlite:///x.db") and is_mlflow_uri("https://mlflow.corp/prefix")
    assert is_mlflow_uri(str(mlruns_copy)) and is_mlflow_uri(str(sqlite_copy))
    assert not is_mlflow_uri(str(tmp_path)) and not is_mlflow_uri("gs://bucket/logs")


def test_unsupported_scheme_is_refused_without_credentials():
    with pytest.raises(SourceError) as caught:
        open_source(f"postgresql://alice:{SECRET}@db/mlflow")
    assert "postgresql" in str(caught.value) and SECRET not in str(caught.value)
    with pytest.raises(SourceError) as caught:
        MlflowSource(f"postgresql://alice:{SECRET}@db/mlflow")
    assert "tracking server" in str(caught.value) and SECRET not in str(caught.value)
