"""The demo workspace, built for real once per module (and a second time for determinism)."""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.util import tensor_util

from runreview.demo import (
    DEFAULT_NOW,
    MARKER_FILE,
    METRICS,
    DemoWorkspace,
    accuracy_and_macro_f1,
    build_demo,
    log_loss,
)
from runreview.demo.plan import run_specs
from runreview.demo.training import load_split, train
from runreview.sources.tensorboard.tfrecord.write import EventWriter

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def workspace(demo_workspace: DemoWorkspace) -> DemoWorkspace:
    """The session's demo (seed 0, built once for every test package)."""
    return demo_workspace


@pytest.fixture(scope="module")
def rebuilt_with_progress(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[DemoWorkspace, list[tuple[str, float]]]:
    """Seed 0 again, over an older demo workspace (which ``overwrite`` must clear), and the
    progress calls the build made.

    This process has the older store open, as an app that rebuilds its demo would: MLflow
    keeps its engine (and pooled connections to the deleted file) for the URI.
    """
    target = tmp_path_factory.mktemp("again")
    old = MlflowClient(tracking_uri=f"sqlite:///{target / 'mlflow.db'}")
    old.create_experiment("older-demo", artifact_location=(target / "art").as_uri())
    (target / MARKER_FILE).write_text("{}")
    (target / "stale.txt").write_text("left by an older demo")
    calls: list[tuple[str, float]] = []
    workspace = build_demo(
        target, overwrite=True, progress=lambda message, fraction: calls.append((message, fraction))
    )
    return workspace, calls


@pytest.fixture(scope="module")
def rebuilt(rebuilt_with_progress: tuple[DemoWorkspace, list[Any]]) -> DemoWorkspace:
    return rebuilt_with_progress[0]


@pytest.fixture(scope="module")
def client(workspace: DemoWorkspace) -> MlflowClient:
    return MlflowClient(tracking_uri=workspace.tracking_uri)


@pytest.fixture(scope="module")
def runs(client: MlflowClient) -> list[Run]:
    return all_runs(client)


def all_runs(client: MlflowClient) -> list[Run]:
    """Every MLflow run of the store."""
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, max_results=1000)


def read_records(path: Path) -> list[event_pb2.Event]:
    """Events of a TFRecord file, both CRCs checked with TensorBoard's own implementation."""
    data, pos, events = path.read_bytes(), 0, []
    while pos < len(data):
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack_from("<I", data, pos + 8)
        payload = data[pos + 12 : pos + 12 + length]
        (payload_crc,) = struct.unpack_from("<I", data, pos + 12 + length)
        assert header_crc == masked_crc32c(header), f"{path}: bad length CRC at {pos}"
        assert payload_crc == masked_crc32c(payload), f"{path}: bad data CRC at {pos}"
        events.append(event_pb2.Event.FromString(payload))
        pos += 16 + length
    assert pos == len(data)
    return events


def tb_run_dirs(workspace: DemoWorkspace) -> list[Path]:
    """Directories of the logdir holding event files."""
    return sorted({p.parent for p in workspace.logdir.rglob("events.out.tfevents.*")})


def run_events(run_dir: Path) -> list[event_pb2.Event]:
    """All events of a run, file after file in name order."""
    files = sorted(run_dir.glob("events.out.tfevents.*"))
    return [event for path in files for event in read_records(path)]


def tb_scalars(run_dir: Path) -> dict[tuple[str, int], float]:
    """{(tag, step): value} of a run's scalars, v1 or v2."""
    found = {}
    for event in run_events(run_dir):
        for value in event.summary.value:
            if value.tag in METRICS:
                kind = value.WhichOneof("value")
                number = (
                    value.simple_value
                    if kind == "simple_value"
                    else float(tensor_util.make_ndarray(value.tensor))
                )
                found[(value.tag, event.step)] = number
    return found


def hparams_data(run_dir: Path, tag: str) -> plugin_data_pb2.HParamsPluginData:
    """The hparams plugin data stored under ``tag`` in a run."""
    for event in run_events(run_dir):
        for value in event.summary.value:
            if value.tag == tag:
                assert value.metadata.plugin_data.plugin_name == "hparams"
                return plugin_data_pb2.HParamsPluginData.FromString(
                    value.metadata.plugin_data.content
                )
    raise AssertionError(f"no {tag} in {run_dir}")


def download_json(client: MlflowClient, run_id: str, name: str, dst: Path) -> Any:
    dst.mkdir(parents=True, exist_ok=True)
    return json.loads(Path(client.download_artifacts(run_id, name, str(dst))).read_text())


# --- what is there ----------------------------------------------------------------------


def test_counts(workspace: DemoWorkspace, client: MlflowClient, runs: list[Run]) -> None:
    names = {e.name for e in client.search_experiments()} - {"Default"}

    assert set(workspace.mlflow_experiments) == names and len(names) >= 2
    assert workspace.tensorboard_experiments == ("breast-cancer",)
    assert len(runs) == workspace.mlflow_runs
    assert len(tb_run_dirs(workspace)) == workspace.tensorboard_runs
    assert workspace.total_runs >= 30
    assert workspace.tracking_uri == f"sqlite:///{workspace.directory / 'mlflow.db'}"
    marker = json.loads((workspace.directory / MARKER_FILE).read_text())
    assert marker["complete"] is True and marker["failed_runs"] == workspace.failed_runs


def test_everything_stays_inside_the_demo_directory(
    workspace: DemoWorkspace, client: MlflowClient, runs: list[Run]
) -> None:
    root = workspace.directory.as_uri()
    assert all(e.artifact_location.startswith(root) for e in client.search_experiments())
    assert all(r.info.artifact_uri.startswith(root) for r in runs)


def test_seeds_repeat_each_configuration(runs: list[Run]) -> None:
    per_config = defaultdict(set)
    for run in runs:
        per_config[run.data.tags["config"]].add(run.data.params["seed"])
    assert sum(len(seeds) >= 3 for seeds in per_config.values()) >= 6


def test_a_failed_mlflow_run_and_a_diverged_tensorboard_run(
    workspace: DemoWorkspace, runs: list[Run]
) -> None:
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert failed and all("diverged" in r.data.tags["failure_reason"] for r in failed)
    assert {r.info.status for r in runs} == {"FINISHED", "FAILED"}

    ends = {d.name: hparams_data(d, "_hparams_/session_end_info") for d in tb_run_dirs(workspace)}
    failures = [name for name, data in ends.items() if data.session_end_info.status != 1]
    assert failures == ["mlp-sgd-noscale-s0"]
    assert ends[failures[0]].session_end_info.status == api_pb2.STATUS_FAILURE
    assert workspace.failed_runs == len(failed) + len(failures)


def test_start_times_spread_over_weeks_before_now(
    workspace: DemoWorkspace, runs: list[Run]
) -> None:
    starts = [datetime.fromtimestamp(r.info.start_time / 1000, UTC) for r in runs]
    starts += [
        datetime.fromtimestamp(run_events(d)[0].wall_time, UTC) for d in tb_run_dirs(workspace)
    ]

    assert max(starts) - min(starts) >= timedelta(weeks=3)
    assert DEFAULT_NOW - timedelta(days=36) <= min(starts) and max(starts) < DEFAULT_NOW


def test_metric_history_per_epoch(client: MlflowClient, runs: list[Run]) -> None:
    for run in runs:
        epochs = int(run.data.params["epochs"])
        for key in METRICS:
            history = client.get_metric_history(run.info.run_id, key)
            steps = [m.step for m in history]
            times = [m.timestamp for m in history]
            if run.info.status == "FINISHED":
                assert steps == list(range(1, epochs + 1)), (run.info.run_name, key)
            else:
                assert 1 <= len(steps) < epochs
            assert times == sorted(times)
            assert run.info.start_time < times[0] and times[-1] < run.info.end_time


def test_mlflow_artifacts(client: MlflowClient, runs: list[Run], tmp_path: Path) -> None:
    for run in runs:
        run_id = run.info.run_id
        names = {a.path for a in client.list_artifacts(run_id)}
        env = download_json(client, run_id, "environment.json", tmp_path / run_id)
        assert env["schema"] == "runreview.environment/1"
        assert env["git"]["commit"] == run.data.tags["mlflow.source.git.commit"]
        if run.info.status == "FAILED":
            assert "confusion_matrix.json" not in names
            assert env["git"]["dirty"] is True and "StandardScaler" in env["git"]["diff"]
            continue
        matrix = download_json(client, run_id, "confusion_matrix.json", tmp_path / run_id)
        n_val = {"digits": 450, "wine": 45}[run.data.params["dataset"]]
        assert np.asarray(matrix["matrix"]).sum() == n_val
        assert len(matrix["labels"]) == len(matrix["matrix"])


def test_predictions_images_and_inputs(client: MlflowClient, runs: list[Run]) -> None:
    names = [{a.path for a in client.list_artifacts(r.info.run_id)} for r in runs]
    assert sum("predictions.csv" in n for n in names) >= 1
    assert sum("predictions.json" in n for n in names) >= 1
    assert sum("confusion_matrix.png" in n for n in names) >= 1
    for run in runs:
        inputs = run.inputs.dataset_inputs
        contexts = {t.value for i in inputs for t in i.tags if t.key == "mlflow.data.context"}
        assert contexts == {"training", "validation"}
        assert all(i.dataset.digest and i.dataset.source_type == "http" for i in inputs)


def test_a_logged_sklearn_model_with_its_environment(client: MlflowClient, runs: list[Run]) -> None:
    ids = [e.experiment_id for e in client.search_experiments()]
    models = client.search_logged_models(ids)

    assert len(models) == 1 and models[0].status.name == "READY"
    run = next(r for r in runs if r.info.run_id == models[0].source_run_id)
    assert [o.model_id for o in run.outputs.model_outputs] == [models[0].model_id]
    files = {a.path for a in client.list_logged_model_artifacts(models[0].model_id)}
    assert {"MLmodel", "requirements.txt", "python_env.yaml"} <= files


def test_tensorboard_runs(workspace: DemoWorkspace) -> None:
    v1_runs = v2_runs = 0
    for run_dir in tb_run_dirs(workspace):
        events = run_events(run_dir)
        assert events[0].file_version == "brain.Event:2"
        values = [(e, v) for e in events for v in e.summary.value]
        scalars = [(e, v) for e, v in values if v.tag in METRICS]
        assert {v.tag for _, v in scalars} == set(METRICS)
        if all(v.WhichOneof("value") == "simple_value" for _, v in scalars):
            v1_runs += 1
        else:
            v2_runs += 1
            for path in run_dir.glob("events.out.tfevents.*"):  # first event of each tag only
                tagged = [
                    v.tag
                    for e in read_records(path)
                    for v in e.summary.value
                    if v.tag in METRICS and v.metadata.plugin_data.plugin_name == "scalars"
                ]
                assert sorted(tagged) == sorted(METRICS)
        start = hparams_data(run_dir, "_hparams_/session_start_info").session_start_info
        assert {"learning_rate_init", "hidden_size", "seed"} <= set(start.hparams)
        assert any(
            v.tag == "notes" and v.metadata.plugin_data.plugin_name == "text" for _, v in values
        )
        assert json.loads((run_dir / "environment.json").read_text())["hostname"]
        finished = scalars and max(e.step for e, _ in scalars) == 25
        assert (run_dir / "confusion_matrix.json").exists() == finished
    assert v1_runs >= 3 and v2_runs >= 3


def test_tensorboard_image_tensor_and_resumed_run(workspace: DemoWorkspace) -> None:
    values = [
        (d.name, v) for d in tb_run_dirs(workspace) for e in run_events(d) for v in e.summary.value
    ]
    images = [v.image.encoded_image_string for _, v in values if v.HasField("image")]
    assert images and images[0].startswith(PNG_MAGIC)
    tensors = [v.tensor for _, v in values if v.tag == "confusion_matrix" and v.HasField("tensor")]
    counts = tensor_util.make_ndarray(tensors[0])
    assert counts.shape == (2, 2) and counts.sum() == 143
    multi = [d for d in tb_run_dirs(workspace) if len(list(d.glob("events.out.tfevents.*"))) > 1]
    assert len(multi) == 1
    steps = sorted(step for tag, step in tb_scalars(multi[0]) if tag == "val_loss")
    assert steps == list(range(1, 26))


def test_progress_goes_from_zero_to_one(
    rebuilt_with_progress: tuple[DemoWorkspace, list[Any]],
) -> None:
    fractions = [fraction for _, fraction in rebuilt_with_progress[1]]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert all(isinstance(message, str) and message for message, _ in rebuilt_with_progress[1])


# --- determinism and safety -------------------------------------------------------------


def mlflow_content(workspace: DemoWorkspace, tmp_path: Path) -> dict[str, Any]:
    """Everything about the MLflow runs except ids, by run name."""
    client = MlflowClient(tracking_uri=workspace.tracking_uri)
    content = {}
    for run in all_runs(client):
        history = {
            key: [
                (m.step, m.value, m.timestamp)
                for m in client.get_metric_history(run.info.run_id, key)
            ]
            for key in METRICS
        }
        env = download_json(client, run.info.run_id, "environment.json", tmp_path / run.info.run_id)
        content[run.info.run_name] = (
            run.data.params, run.data.tags, history, env,
            run.info.status, run.info.start_time, run.info.end_time,
        )  # fmt: skip
    return content


def test_same_seed_same_content(
    workspace: DemoWorkspace, rebuilt: DemoWorkspace, tmp_path: Path
) -> None:
    assert not (rebuilt.directory / "stale.txt").exists()
    experiments = MlflowClient(tracking_uri=rebuilt.tracking_uri).search_experiments()
    assert "older-demo" not in {e.name for e in experiments}
    assert mlflow_content(workspace, tmp_path / "a") == mlflow_content(rebuilt, tmp_path / "b")

    def tb_files(ws: DemoWorkspace) -> dict[str, bytes]:
        return {
            str(p.relative_to(ws.logdir)): p.read_bytes()
            for p in ws.logdir.rglob("*")
            if p.is_file()
        }

    first, second = tb_files(workspace), tb_files(rebuilt)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []
    assert tb_scalars(tb_run_dirs(workspace)[0]) == tb_scalars(tb_run_dirs(rebuilt)[0])


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")

    with pytest.raises(FileExistsError, match="not empty"):
        build_demo(tmp_path)
    with pytest.raises(FileExistsError, match="refusing to delete"):
        build_demo(tmp_path, overwrite=True)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_refuses_a_naive_now(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_demo(tmp_path / "x", now=datetime(2026, 1, 1))
    assert not (tmp_path / "x").exists()


def test_event_writer_output_reads_back_with_tensorboard(tmp_path: Path) -> None:
    with EventWriter(tmp_path, 1_700_000_000.0, hostname="h") as writer:
        writer.add_scalar("loss", 0.5, 1, 1_700_000_001.0)
        writer.add_scalar("acc", 0.25, 1, 1_700_000_001.0, v2=True)
        writer.add_tensor("cm", np.array([[3, 1], [0, 4]], dtype=np.int32), 1, 1_700_000_002.0)

    assert writer.path.name == "events.out.tfevents.1700000000.h.1.0"
    events = list(LegacyEventFileLoader(str(writer.path)).Load())  # no v1 -> v2 migration
    assert [e.wall_time for e in events] == [1_700_000_000.0, 1_700_000_001.0, 1_700_000_001.0,
                                             1_700_000_002.0]  # fmt: skip
    assert events[1].summary.value[0].simple_value == 0.5
    assert float(tensor_util.make_ndarray(events[2].summary.value[0].tensor)) == 0.25
    assert tensor_util.make_ndarray(events[3].summary.value[0].tensor).tolist() == [[3, 1], [0, 4]]


def test_numpy_metrics_match_scikit_learn() -> None:
    from sklearn import metrics

    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 4, size=200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 3, size=200))
    proba = rng.dirichlet(np.ones(4), size=200)
    proba[0] = [1.0, 0.0, 0.0, 0.0]  # a zero probability for a true class: clipped

    accuracy, f1 = accuracy_and_macro_f1(y_true, y_pred)

    assert log_loss(y_true, proba) == pytest.approx(metrics.log_loss(y_true, proba), rel=1e-12)
    assert accuracy == pytest.approx(metrics.accuracy_score(y_true, y_pred), rel=1e-12)
    expected_f1 = metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)
    assert f1 == pytest.approx(expected_f1, rel=1e-12)
    only_predicted = accuracy_and_macro_f1(np.array([0, 0, 1]), np.array([0, 2, 1]))[1]
    expected = metrics.f1_score([0, 0, 1], [0, 2, 1], average="macro", zero_division=0)
    assert only_predicted == pytest.approx(expected, rel=1e-12)


def test_a_bad_configuration_raises_instead_of_failing_the_run() -> None:
    spec = next(s for s in run_specs(0, DEFAULT_NOW) if s.experiment.family == "mlp")
    bad = dataclasses.replace(spec, params={**spec.params, "alpha": -1.0})
    split = load_split(spec.experiment.dataset, 0, scaled=True)

    with pytest.raises(ValueError, match="alpha"):
        train(bad, split)
    assert train(spec, split).error is None


GLOBAL_URI_CHECK = """
import os, sys
import mlflow
from runreview.demo.mlflow_writer import global_tracking_uri

uri = sys.argv[1]
default = mlflow.get_tracking_uri()
with global_tracking_uri(uri):
    assert mlflow.get_tracking_uri() == uri
assert mlflow.get_tracking_uri() == default and "MLFLOW_TRACKING_URI" not in os.environ

os.environ["MLFLOW_TRACKING_URI"] = "file:///exported"  # still read after the block
assert mlflow.get_tracking_uri() == "file:///exported"
with global_tracking_uri(uri):
    assert mlflow.get_tracking_uri() == uri
assert mlflow.get_tracking_uri() == os.environ["MLFLOW_TRACKING_URI"] == "file:///exported"

mlflow.set_tracking_uri("file:///explicit")  # an explicit URI is replaced, then set back
with global_tracking_uri(uri):
    assert mlflow.get_tracking_uri() == uri
assert mlflow.get_tracking_uri() == "file:///explicit"
print("ok")
"""


def test_global_tracking_uri_is_put_back(tmp_path: Path) -> None:
    """In a fresh interpreter: MLflow's tracking URI is process-global state that other
    tests in this worker may have set."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(
        [sys.executable, "-c", GLOBAL_URI_CHECK, f"sqlite:///{tmp_path / 'demo.db'}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
