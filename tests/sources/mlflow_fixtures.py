"""Real MLflow stores for the tests, written by the real MLflow client.

Run as a script in a child process (``python mlflow_fixtures.py server|files OUTDIR [URI]``)
so the fluent API's process-global tracking URI and ``MLFLOW_ALLOW_FILE_STORE`` never leak
into the test process. It writes ``manifest.json`` (run ids by role) into OUTDIR.

``server`` builds the sqlite store *through* a real ``mlflow server`` whose backend is that
sqlite file: the server's slow start (tens of seconds here) then overlaps the building, and
the tests read copies of the same file directly. ``files`` builds a legacy mlruns folder.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

BIG_POINTS = 30_000
MANY_RUNS = 20
REPEATS = 4  # points logged at step 0 per "many" run: a history hint (1) that underestimates

CONFUSION = {"labels": ["cat", "dog", "fox"], "matrix": [[5, 1, 0], [2, 7, 1], [0, 0, 4]]}
PREDICTIONS_CSV = "y_true,y_pred\ncat,cat\ncat,dog\ndog,dog\nfox,fox\ndog,cat\n"
ENVIRONMENT = {
    "schema": "runreview.environment/1",
    "python": "3.11.9",
    "platform": "Linux-6.1-x86_64",
    "packages": {"numpy": "2.4.0", "scikit-learn": "1.9.1"},
    "cuda": "12.4",
    "gpu": "NVIDIA A10G",
    "git": {
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "branch": "main",
        "dirty": True,
        "diff": "--- a/train.py\n+++ b/train.py\n",
        "remote": "https://example.com/team/repo.git",
    },
}


def build_store(kind: str, out: Path, uri: str | None) -> dict:
    """Build a store of ``kind`` ("server" or "files") under ``out``; return its manifest."""
    import mlflow

    if kind == "server":
        wait_for_health(uri, timeout=240)
    else:
        uri = (out / "mlruns").as_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    manifest: dict = {"uri": uri, "runs": {}}
    exp_a = client.create_experiment("exp-a", artifact_location=(out / "art-a").as_uri())
    manifest["runs"]["good"] = _good_run(mlflow, client, exp_a, out)
    if kind == "server":
        manifest["runs"]["trained"] = _trained_run(mlflow, exp_a)
    failed = _simple_run(client, exp_a, "failed-1", "FAILED", lr="0.5")
    client.log_text(failed, "pandas==3.1.1\nPyYAML>=6  # comment\n", "model/requirements.txt")
    manifest["runs"]["failed"] = failed
    manifest["runs"]["running"] = _simple_run(client, exp_a, "running-1", None, lr="0.01")
    deleted = _simple_run(client, exp_a, "deleted-1", "FINISHED", lr="0.9")
    client.delete_run(deleted)
    manifest["runs"]["deleted"] = deleted
    if kind == "server":
        manifest["runs"]["big"] = _big_run(client, exp_a)
    # No artifact location: on the server these runs keep artifacts behind mlflow-artifacts:.
    exp_many = client.create_experiment("exp-many")
    manifest["many"] = [
        _simple_run(client, exp_many, f"many-{i:02d}", "FINISHED", lr=str(i / 100), points=3)
        for i in range(MANY_RUNS)
    ]
    client.log_dict(manifest["many"][0], CONFUSION, "confusion_matrix.json")
    exp_gone = client.create_experiment("exp-gone")
    manifest["runs"]["in_deleted_experiment"] = _simple_run(
        client, exp_gone, "orphan", "FINISHED", lr="1"
    )
    client.delete_experiment(exp_gone)
    manifest["experiments"] = {"exp-a": exp_a, "exp-many": exp_many, "exp-gone": exp_gone}
    return manifest


def wait_for_health(uri: str, timeout: float) -> None:
    """Wait until ``uri``/health answers (raises TimeoutError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{uri} did not become healthy within {timeout} s")


def _good_run(mlflow, client, exp_id: str, out: Path) -> str:
    from mlflow.entities import Metric

    run = client.create_run(exp_id, run_name="good-1", tags={"team": "vision"})
    rid = run.info.run_id
    client.log_param(rid, "lr", "0.1")
    client.log_param(rid, "depth", "3")
    client.set_tag(rid, "mlflow.source.git.commit", "fedcba9876543210fedcba9876543210fedcba98")
    client.set_tag(rid, "mlflow.source.git.branch", "feature/x")
    client.set_tag(rid, "mlflow.source.name", "train.py")
    t0 = 1_700_000_000_000
    metrics = []
    for step in range(10):
        metrics.append(Metric("loss", 1.0 / (step + 1), t0 + step, step))
        metrics.append(Metric("val/loss", 2.0 / (step + 1), t0 + step, step))
        metrics.append(Metric("acc", step / 10, t0 + step, step))
    metrics.append(Metric("nan_metric", 1.0, t0, 0))
    metrics.append(Metric("nan_metric", math.nan, t0 + 1, 1))
    metrics.append(Metric("inf_metric", math.inf, t0, 0))
    metrics.append(Metric("neg_inf_metric", -math.inf, t0, 0))
    client.log_batch(rid, metrics=metrics)
    client.log_dict(rid, ENVIRONMENT, "environment.json")
    client.log_dict(rid, CONFUSION, "confusion_matrix.json")
    client.log_text(rid, PREDICTIONS_CSV, "eval/predictions.csv")
    client.log_table(
        rid,
        data={"label": ["a", "b", "b", "a"], "prediction": ["a", "b", "a", "a"]},
        artifact_file="eval/preds_table.json",
    )
    client.log_text(rid, "not a table", "notes.txt")
    _log_png(client, rid, out)
    _log_dataset(mlflow, rid)
    client.set_terminated(rid, "FINISHED", end_time=t0 + 60_000)
    return rid


def _log_png(client, rid: str, out: Path) -> None:
    png = out / "confusion_plot.png"
    png.write_bytes(tiny_png())
    client.log_artifact(rid, str(png), "plots")


def tiny_png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _log_dataset(mlflow, rid: str) -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]})
    dataset = mlflow.data.from_pandas(frame, source="s3://bucket/train.csv", name="train")
    with mlflow.start_run(run_id=rid):
        mlflow.log_input(dataset, context="training")


def _trained_run(mlflow, exp_id: str) -> str:
    """A run whose environment is known only from its logged (and registered) model."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]})
    model = LogisticRegression().fit(frame[["x"]], frame["y"])
    with mlflow.start_run(experiment_id=exp_id, run_name="trained") as run:
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="clf",
            pip_requirements=["scikit-learn==1.9.1", "numpy==2.4.0"],
        )
    return run.info.run_id


def _simple_run(client, exp_id: str, name: str, status: str | None, *, lr: str, points: int = 5):
    from mlflow.entities import Metric

    run = client.create_run(exp_id, run_name=name)
    rid = run.info.run_id
    t0 = 1_700_000_100_000
    client.log_batch(
        rid,
        params=[_param("lr", lr)],
        metrics=[Metric("loss", 1.0 + s, t0 + s, s) for s in range(points)]
        + [Metric("repeat", float(r), t0 + r, 0) for r in range(REPEATS)],
    )
    if status:
        client.set_terminated(rid, status, end_time=t0 + 1000)
    return rid


def _param(key: str, value: str):
    from mlflow.entities import Param

    return Param(key, value)


def _big_run(client, exp_id: str) -> str:
    from mlflow.entities import Metric

    run = client.create_run(exp_id, run_name="big")
    rid = run.info.run_id
    t0 = 1_700_000_200_000
    client.log_batch(rid, metrics=[Metric("long", s * 0.5, t0 + s, s) for s in range(BIG_POINTS)])
    client.set_terminated(rid, "FINISHED", end_time=t0 + BIG_POINTS)
    return rid


def start_child(kind: str, out: Path, uri: str | None = None) -> subprocess.Popen:
    """Start building a store in a child process (see :func:`finish_child`)."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MLFLOW_ALLOW_FILE_STORE="true", GIT_PYTHON_REFRESH="quiet")
    env.pop("MLFLOW_TRACKING_URI", None)
    # -P: the script's folder is not put on sys.path, so tests/sources/mlflow (a test
    # package) cannot shadow the mlflow package.
    args = [sys.executable, "-P", __file__, kind, str(out)] + ([uri] if uri else [])
    return subprocess.Popen(
        args, cwd=out, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish_child(proc: subprocess.Popen, out: Path) -> dict:
    """Wait for a build started by :func:`start_child`; return its manifest."""
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"building a store failed:\n{err[-4000:]}")
    return json.loads((out / "manifest.json").read_text())


if __name__ == "__main__":
    kind_arg, out_arg = sys.argv[1], Path(sys.argv[2])
    uri_arg = sys.argv[3] if len(sys.argv) > 3 else None
    result = build_store(kind_arg, out_arg, uri_arg)
    (out_arg / "manifest.json").write_text(json.dumps(result, indent=2))
