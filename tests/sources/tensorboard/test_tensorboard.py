"""TensorBoardSource on logdirs written by real writers (tensorboardX, tensorboard's
EventFileWriter), including live, damaged and odd files (RELIABILITY.md section C)."""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from runreview.contract import (
    CONFUSION_FILE,
    ENV_CUDA,
    ENV_GIT_BRANCH,
    ENV_GIT_COMMIT,
    ENV_GIT_DIRTY,
    ENV_GPU,
    ENV_PLATFORM,
    ENV_PYTHON,
    ENVIRONMENT_FILE,
    HISTORY_COLUMNS,
    RUN_COLUMNS,
    FindingKind,
    Severity,
    normalise_history,
)
from runreview.sources.base import SourceError
from runreview.sources.tensorboard import TensorBoardSource, tfrecord
from runreview.sources.tensorboard import source as tb
from runreview.sources.tensorboard.walk import Walker
from tests.sources import tb_writers as tw


def _series(history: pd.DataFrame, run_id: str, metric: str) -> list[tuple[int, float]]:
    rows = history[(history.run_id == run_id) & (history.metric == metric)]
    return list(zip(rows.step.tolist(), rows.value.tolist(), strict=True))


def _kinds(source: TensorBoardSource) -> list[str]:
    return [f.kind for f in source.findings]


def _only(source: TensorBoardSource, kind: str):
    found = [f for f in source.findings if f.kind == kind]
    assert len(found) == 1, [f.line() for f in source.findings]
    return found[0]


@pytest.fixture
def logdir(tmp_path):
    root = tmp_path / "my-experiment"
    root.mkdir()
    return root


# --- opening ----------------------------------------------------------------------------


def test_missing_logdir_raises_naming_it_and_creates_nothing(tmp_path):
    missing = tmp_path / "nope" / "logs"
    with pytest.raises(SourceError) as err:
        TensorBoardSource(missing)
    assert str(missing) in str(err.value) and "does not exist" in str(err.value)
    assert "never creates it" in str(err.value)
    assert not (tmp_path / "nope").exists()


def test_constructor_parses_nothing(logdir, monkeypatch):
    tw.write_tbx_scalars(str(logdir / "a"), {"loss": [1.0]})
    scans = []
    real = tfrecord.scan_records
    monkeypatch.setattr(tfrecord, "scan_records", lambda *a, **k: scans.append(1) or real(*a, **k))
    source = TensorBoardSource(logdir)
    assert scans == [] and source.uri == str(logdir) and source.kind == "tensorboard"
    source.read_runs()
    assert scans == [1]


def test_logdir_removed_after_opening_raises(logdir):
    source = TensorBoardSource(logdir)
    shutil.rmtree(logdir)
    with pytest.raises(SourceError, match="does not exist"):
        source.read_runs()


# --- tensorboardX: scalars, runs frame, history frame ----------------------------------


def test_tensorboardx_scalars_runs_and_history(logdir):
    tw.write_tbx_scalars(str(logdir / "a"), {"loss": [1.0, 0.5, 0.25], "acc": [0.1, 0.2, 0.9]})
    tw.write_tbx_scalars(str(logdir / "b" / "seed1"), {"loss": [2.0, 1.5]})
    source = TensorBoardSource(str(logdir))

    runs = source.read_runs()
    assert list(runs.columns[: len(RUN_COLUMNS)]) == RUN_COLUMNS
    assert runs.run_id.tolist() == ["a", "b/seed1"]
    assert runs.run_name.tolist() == ["a", "b/seed1"]
    # issue #12: a run two folders down belongs to the first folder's experiment
    assert runs.experiment.tolist() == ["my-experiment", "b"] and set(runs.status) == {"UNKNOWN"}
    assert set(runs.source) == {"tensorboard"} and set(runs.source_uri) == {str(logdir)}
    assert runs.set_index("run_id")["metrics.loss"].to_dict() == {"a": 0.25, "b/seed1": 1.5}
    assert runs.set_index("run_id")["metrics.acc"].iloc[0] == pytest.approx(0.9)
    assert math.isnan(runs.set_index("run_id")["metrics.acc"].loc["b/seed1"])
    assert str(runs.start_time.dt.tz) == "UTC"
    assert (runs.start_time <= runs.end_time).all()

    history = source.read_history()
    assert list(history.columns) == HISTORY_COLUMNS
    assert history.step.dtype == "int64" and history.value.dtype == "float64"
    assert str(history.timestamp.dt.tz) == "UTC"
    assert _series(history, "a", "loss") == [(0, 1.0), (1, 0.5), (2, 0.25)]
    assert _series(history, "b/seed1", "loss") == [(0, 2.0), (1, 1.5)]
    assert [v for _, v in _series(history, "a", "acc")] == pytest.approx([0.1, 0.2, 0.9])
    assert len(history) == 8
    pd.testing.assert_frame_equal(history, normalise_history(history))  # contract dtypes
    assert not source.findings


def test_read_history_filters_metrics_and_runs(logdir):
    tw.write_tbx_scalars(str(logdir / "a"), {"loss": [1.0, 0.5], "acc": [0.5, 0.6]})
    tw.write_tbx_scalars(str(logdir / "b"), {"loss": [3.0]})
    source = TensorBoardSource(logdir)
    only = source.read_history(metrics=["loss"], run_ids=["b"])
    assert only[["run_id", "metric", "step", "value"]].values.tolist() == [["b", "loss", 0, 3.0]]
    assert set(source.read_history(metrics=["acc"]).run_id) == {"a"}
    assert source.read_history(run_ids=["no-such-run"]).empty
    assert list(source.read_history(metrics=["nothing"]).columns) == HISTORY_COLUMNS


def test_experiment_filter(logdir):
    tw.write_tbx_scalars(str(logdir), {"loss": [1.0]})
    source = TensorBoardSource(logdir)
    assert source.read_runs(experiments=["my-experiment"]).run_id.tolist() == ["."]
    empty = source.read_runs(experiments=["other"])
    assert empty.empty and list(empty.columns) == RUN_COLUMNS


def test_nan_inf_values_and_negative_steps_are_kept_and_flagged(logdir):
    run = logdir / "r"
    run.mkdir()
    events = [
        tw.scalar_event("x", -1, 1.0),
        tw.scalar_event("x", 0, float("nan")),
        tw.scalar_event("x", 1, float("inf"), wall=float("nan")),
        tw.scalar_event("x", 2, -float("inf"), wall=-5.0),
    ]
    path = str(run / "events.out.tfevents.1")
    tw.write_records(path, events)
    source = TensorBoardSource(logdir)
    history = source.read_history()
    values = history.value.tolist()
    assert history.step.tolist() == [-1, 0, 1, 2]
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2:] == [math.inf, -math.inf]
    assert pd.isna(history.timestamp.iloc[2])
    assert history.timestamp.iloc[3] == pd.Timestamp(-5, unit="s", tz="UTC")
    assert _only(source, FindingKind.NEGATIVE_STEP).message.startswith(
        "1 point(s) with a negative step"
    )
    nan_wall = _only(source, FindingKind.NAN_WALL_TIME)
    assert nan_wall.record == 2 and nan_wall.severity == Severity.WARNING and nan_wall.path == path
    assert _only(source, FindingKind.NEGATIVE_WALL_TIME).record == 3


# --- TF2-style tensor summaries ---------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "content"), [(np.float32, False), (np.float32, True), (np.float64, False)]
)
def test_tf2_tensor_scalars_with_metadata_only_on_first_event(logdir, dtype, content):
    values = [0.5, 0.25, 0.125, 3.0]
    events = tw.tf2_scalar_events("epoch_loss", values, dtype=dtype, content=content)
    assert events[0].summary.value[0].HasField("metadata")
    assert not events[1].summary.value[0].HasField("metadata")
    tw.write_with_event_file_writer(str(logdir / "train"), events)
    source = TensorBoardSource(logdir)
    history = source.read_history()
    assert _series(history, "train", "epoch_loss") == list(enumerate(values))
    assert source.read_runs()["metrics.epoch_loss"].tolist() == [3.0]
    assert not source.findings


def test_scalar_tensors_without_scalars_metadata_are_not_scalars(logdir):
    events = tw.tf2_scalar_events("loss", [1.0, 2.0, 3.0])[1:]  # metadata event lost
    run = logdir / "r"
    run.mkdir()
    tw.write_records(str(run / "events.out.tfevents.1"), events)
    source = TensorBoardSource(logdir)
    assert source.read_history().empty
    not_read = _only(source, FindingKind.NOT_READ)
    assert not_read.message.startswith("2 rank-0 tensor item(s) not read")


def test_tf2_plugin_names_carry_over_to_the_runs_next_file(logdir):
    events = tw.tf2_scalar_events("loss", [1.0, 2.0])
    run = logdir / "r"
    run.mkdir()
    tw.write_records(str(run / "events.out.tfevents.1"), events[:1])
    tw.write_records(str(run / "events.out.tfevents.2"), events[1:])
    history = TensorBoardSource(logdir).read_history()
    assert _series(history, "r", "loss") == [(0, 1.0), (1, 2.0)]


def test_several_event_files_in_one_run_are_all_read(logdir):
    run = logdir / "r"
    run.mkdir()
    tw.write_records(str(run / "events.out.tfevents.100.host.1"), [tw.scalar_event("a", 0, 1.0)])
    tw.write_records(str(run / "events.out.tfevents.100.host.2"), [tw.scalar_event("b", 0, 2.0)])
    runs = TensorBoardSource(logdir).read_runs()
    assert runs[["run_id", "metrics.a", "metrics.b"]].values.tolist() == [["r", 1.0, 2.0]]


def test_runs_at_any_depth_and_the_logdir_itself(logdir):
    tw.write_tbx_scalars(str(logdir), {"top": [1.0]})
    tw.write_tbx_scalars(str(logdir / "a" / "b" / "c"), {"deep": [2.0]})
    (logdir / "empty" / "dir").mkdir(parents=True)
    runs = TensorBoardSource(logdir).read_runs()
    assert runs.run_id.tolist() == [".", "a/b/c"]


# --- hparams ----------------------------------------------------------------------------


def test_tensorboardx_add_hparams_params_belong_to_its_sub_run(logdir):
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(logdir / "run1")) as writer:
        writer.add_scalar("loss", 0.5, 0)
        writer.add_hparams(
            {"lr": 0.01, "layers": 4, "opt": "adam", "bn": True},
            {"hparam/accuracy": 0.875},
            name="trial",
        )
    runs = TensorBoardSource(logdir).read_runs().set_index("run_id")
    assert runs.index.tolist() == ["run1", "run1/trial"]
    trial = runs.loc["run1/trial"]
    assert (
        trial["params.lr"],
        trial["params.layers"],
        trial["params.opt"],
        trial["params.bn"],
    ) == (
        "0.01",
        "4",
        "adam",
        "True",
    )
    assert trial["metrics.hparam/accuracy"] == 0.875
    assert pd.isna(runs.loc["run1", "params.lr"]) and runs.loc["run1", "metrics.loss"] == 0.5


def test_tensorboard_hparams_plugin_session_start_info(logdir):
    event = tw.hparams_pb_event({"dropout": 0.25, "units": 128, "optimizer": "sgd", "aug": False})
    tw.write_with_event_file_writer(str(logdir / "t"), [event, tw.scalar_event("acc", 1, 0.5)])
    runs = TensorBoardSource(logdir).read_runs()
    params = {c: runs[c].iloc[0] for c in runs.columns if c.startswith("params.")}
    assert params == {
        "params.aug": "False",
        "params.dropout": "0.25",
        "params.optimizer": "sgd",
        "params.units": "128",
    }


# --- text, images, tensors, confusion ---------------------------------------------------


def test_texts_and_images_from_tensorboardx(logdir):
    from tensorboardX import SummaryWriter

    pixels = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    with SummaryWriter(str(logdir / "r")) as writer:
        writer.add_text("notes", "first *note*", 0)
        writer.add_text("notes", "second", 5)
        writer.add_image("sample", pixels, 2)
    source = TensorBoardSource(logdir)
    assert source.read_texts("r") == [
        ("notes/text_summary", 0, "first *note*"),
        ("notes/text_summary", 5, "second"),
    ]
    [(tag, step, png)] = source.read_images("r")
    assert (tag, step) == ("sample", 2)
    import io

    from PIL import Image

    decoded = np.asarray(Image.open(io.BytesIO(png)))
    assert decoded.shape == (4, 5, 3)
    assert (decoded[..., 0] == pixels[0]).all()


def test_v2_image_summaries_return_the_exact_png_bytes(logdir):
    pngs = [tw.png_bytes(6, 7, seed) for seed in (1, 2)]
    tw.write_with_event_file_writer(
        str(logdir / "r"), [tw.image_event("samples", 3, pngs, 7, 6), tw.text_event("t", 0, "ok")]
    )
    source = TensorBoardSource(logdir)
    assert source.read_images("r") == [("samples", 3, pngs[0]), ("samples", 3, pngs[1])]
    assert source.read_images("r", tags=["other"]) == []
    assert source.read_texts("r") == [("t", 0, "ok")]


def test_rank2_tensors_and_confusion_with_labels_from_text(logdir):
    first = np.array([[1, 2], [3, 4]], dtype=np.int32)
    last = np.array([[5, 1, 0], [0, 7, 1], [2, 0, 9]], dtype=np.int64)
    events = [
        tw.matrix_event("eval/confusion", 1, first),
        tw.matrix_event("eval/confusion", 2, last),
        tw.text_event("eval/confusion/labels", 2, '["cat", "dog", "eel"]'),
        tw.matrix_event("weights", 2, np.eye(2, dtype=np.float32)),
        tw.matrix_event("pr", 2, np.ones((2, 2), dtype=np.float32), plugin="pr_curves"),
    ]
    tw.write_with_event_file_writer(str(logdir / "r"), events)
    source = TensorBoardSource(logdir)
    tensors = source.read_tensors("r")
    assert [(t, s) for t, s, _ in tensors] == [
        ("eval/confusion", 1),
        ("eval/confusion", 2),
        ("weights", 2),
    ]
    np.testing.assert_array_equal(tensors[0][2], first)
    [matrix] = source.read_confusion("r")
    assert matrix.name == "eval/confusion" and matrix.labels == ["cat", "dog", "eel"]
    np.testing.assert_array_equal(matrix.counts, last)
    assert matrix.counts.dtype == np.int64
    assert matrix.run_id == "r" and "step 2" in matrix.origin and matrix.image is None
    not_read = _only(source, FindingKind.NOT_READ)
    assert not_read.severity == Severity.INFO and "1 PR curve item(s) not read" in not_read.message


def test_confusion_defaults_labels_and_reads_json_and_images(logdir):
    png = tw.png_bytes(8, 8)
    tw.write_with_event_file_writer(
        str(logdir / "r"),
        [
            tw.matrix_event("confusion", 0, np.array([[3, 1], [0, 4]])),
            tw.image_event("confusion_plot", 0, [png], 8, 8),
        ],
    )
    (logdir / "r" / CONFUSION_FILE).write_text(
        json.dumps({"labels": ["no", "yes"], "matrix": [[10, 2], [1, 12]]})
    )
    found = {c.name: c for c in TensorBoardSource(logdir).read_confusion("r")}
    assert set(found) == {"confusion_matrix", "confusion", "confusion_plot"}
    assert found["confusion_matrix"].labels == ["no", "yes"]
    assert found["confusion_matrix"].counts.tolist() == [[10, 2], [1, 12]]
    assert found["confusion_matrix"].origin == str(logdir / "r" / CONFUSION_FILE)
    assert found["confusion"].labels == ["0", "1"]
    assert found["confusion"].counts.tolist() == [[3, 1], [0, 4]]
    assert found["confusion_plot"].counts is None and found["confusion_plot"].image == png


def test_bad_confusion_json_is_a_finding(logdir):
    tw.write_tbx_scalars(str(logdir / "r"), {"x": [1.0]})
    (logdir / "r" / CONFUSION_FILE).write_text('{"matrix": [[1, 2, 3]]}')
    source = TensorBoardSource(logdir)
    assert source.read_confusion("r") == []
    assert "not square" not in _only(source, FindingKind.SIDE_FILE).message
    assert "must be square" in _only(source, FindingKind.SIDE_FILE).message


# --- environment ------------------------------------------------------------------------


def test_environment_json_and_requirements(logdir):
    tw.write_tbx_scalars(str(logdir / "r"), {"x": [1.0]})
    env_file = {
        "python": "3.11.9",
        "platform": "Linux-6.1-x86_64",
        "packages": {"numpy": "2.4.6", "torch": "2.13.0"},
        "cuda": "12.4",
        "cuda_origin": "nvcc --version",
        "gpu": ["NVIDIA A100"],
        "git": {"commit": "abc123", "branch": "main", "dirty": True, "diff": "", "remote": "r"},
        "seed": 42,
    }
    (logdir / "r" / ENVIRONMENT_FILE).write_text(json.dumps(env_file))
    (logdir / "r" / "requirements.txt").write_text("pandas==3.1.1\n")
    env = TensorBoardSource(logdir).read_environment("r")
    origin = str(logdir / "r" / ENVIRONMENT_FILE)
    assert env.values[ENV_PYTHON] == ("3.11.9", origin)
    assert (env.get(ENV_PLATFORM), env.get(ENV_CUDA), env.get(ENV_GPU)) == (
        "Linux-6.1-x86_64",
        "12.4",
        ["NVIDIA A100"],
    )
    assert env.values[ENV_CUDA][1] == f"{origin} (nvcc --version)"
    assert "cuda_origin" not in env.values
    assert (env.get(ENV_GIT_COMMIT), env.get(ENV_GIT_BRANCH), env.get(ENV_GIT_DIRTY)) == (
        "abc123",
        "main",
        True,
    )
    assert env.get("seed") == 42
    assert env.packages == {"numpy": "2.4.6", "torch": "2.13.0"} and env.packages_origin == origin


def test_requirements_txt_alone_gives_packages(logdir):
    tw.write_tbx_scalars(str(logdir / "r"), {"x": [1.0]})
    (logdir / "r" / "requirements.txt").write_text(
        "# pinned\nnumpy==2.4.6\nscikit-learn>=1.5  # ml\n-r other.txt\nrequests\n"
        "pkg @ https://x/y.whl\nuvicorn[standard]==0.30.1 ; python_version>'3'\n"
    )
    env = TensorBoardSource(logdir).read_environment("r")
    assert env.packages == {
        "numpy": "2.4.6",
        "scikit-learn": ">=1.5",
        "requests": "",
        "uvicorn": "0.30.1",
    }
    assert env.packages_origin == str(logdir / "r" / "requirements.txt")
    assert not env.values


def test_environment_of_a_run_without_one_is_empty_and_bad_json_is_a_finding(logdir):
    tw.write_tbx_scalars(str(logdir / "a"), {"x": [1.0]})
    tw.write_tbx_scalars(str(logdir / "b"), {"x": [1.0]})
    (logdir / "b" / ENVIRONMENT_FILE).write_text("{not json")
    source = TensorBoardSource(logdir)
    assert source.read_environment("a").is_empty()
    assert source.read_environment("b").is_empty()
    assert _only(source, FindingKind.SIDE_FILE).path == str(logdir / "b" / ENVIRONMENT_FILE)


@pytest.mark.parametrize("run_id", ["nope", "../my-experiment", "/etc", "a/.."])
def test_unknown_or_escaping_run_ids_are_refused(logdir, run_id):
    tw.write_tbx_scalars(str(logdir / "a"), {"x": [1.0]})
    source = TensorBoardSource(logdir)
    with pytest.raises(SourceError, match="no run"):
        source.read_environment(run_id)


# --- restarts (C8) ----------------------------------------------------------------------


def test_steps_going_backwards_keep_both_segments(logdir):
    tw.write_tbx_scalars(str(logdir / "r"), {"loss": [5.0, 4.0, 3.0, 2.0]})
    tw.write_tbx_scalars(
        str(logdir / "r"), {"loss": [3.5, 2.5, 1.5, 0.5]}, start_step=2, suffix=".restarted"
    )
    source = TensorBoardSource(logdir)
    history = source.read_history()
    assert _series(history, "r", "loss") == [
        (0, 5.0),
        (1, 4.0),
        (2, 3.0),
        (3, 2.0),
        (2, 3.5),
        (3, 2.5),
        (4, 1.5),
        (5, 0.5),
    ]
    restart = _only(source, FindingKind.RESTART)
    assert restart.message.startswith("restart detected at step 2")
    assert restart.severity == Severity.INFO and restart.run_id == "r"
    assert source.read_runs()["metrics.loss"].tolist() == [0.5]


def test_repeated_session_log_start_is_a_restart_without_purge(logdir):
    run = logdir / "r"
    run.mkdir()
    events = [tw.session_start_event(0)]
    events += [tw.scalar_event("x", s, float(s)) for s in range(5)]
    events += [tw.session_start_event(3)]
    events += [tw.scalar_event("y", s, -float(s)) for s in range(3, 6)]
    tw.write_records(str(run / "events.out.tfevents.1"), events)
    source = TensorBoardSource(logdir)
    assert len(source.read_history(metrics=["x"])) == 5
    restart = _only(source, FindingKind.RESTART)
    assert restart.message.startswith("restart detected at step 3: SessionLog START; 2 earlier")


def test_last_value_is_by_step_then_wall_time(logdir):
    run = logdir / "r"
    run.mkdir()
    events = [
        tw.scalar_event("m", 10, 1.0, wall=200.0),
        tw.scalar_event("m", 10, 2.0, wall=100.0),  # same step, older
        tw.scalar_event("m", 3, 9.0, wall=300.0),
    ]
    tw.write_records(str(run / "events.out.tfevents.1"), events)
    assert TensorBoardSource(logdir).read_runs()["metrics.m"].tolist() == [1.0]


# --- live files: incremental reads, cache, replaced files (C2, C12) ----------------------


def test_second_read_does_not_parse_again_and_growth_is_read_incrementally(logdir, monkeypatch):
    run = logdir / "r"
    run.mkdir()
    path = str(run / "events.out.tfevents.1")
    first = tw.write_records(path, [tw.scalar_event("x", s, float(s)) for s in range(3)])
    offsets = []
    real = tfrecord.scan_records
    monkeypatch.setattr(
        tfrecord,
        "scan_records",
        lambda buf, **k: offsets.append((k["base_offset"], len(buf))) or real(buf, **k),
    )
    source = TensorBoardSource(logdir)
    assert len(source.read_history()) == 3
    assert len(source.read_history()) == 3
    assert offsets == [(0, len(first))]
    more = tw.write_records(path, [tw.scalar_event("x", s, float(s)) for s in (3, 4)], mode="ab")
    assert _series(source.read_history(), "r", "x") == [(s, float(s)) for s in range(5)]
    assert offsets == [(0, len(first)), (len(first), len(more))]
    source.close()  # drops the cache: the next read starts cold
    assert len(source.read_history()) == 5
    assert offsets[-1] == (0, len(first) + len(more))


def test_live_file_with_torn_record_then_completed(logdir):
    run = logdir / "r"
    run.mkdir()
    path = run / "events.out.tfevents.live"
    data = b"".join(tw.frame(tw.scalar_event("x", s, s / 2).SerializeToString()) for s in range(4))
    cut = len(data) - 7
    path.write_bytes(data[:cut])
    source = TensorBoardSource(logdir)
    assert _series(source.read_history(), "r", "x") == [(0, 0.0), (1, 0.5), (2, 1.0)]
    tail = _only(source, FindingKind.INCOMPLETE_TAIL)
    last = tw.record_offsets(data)[-1]
    assert tail.message.startswith(f"incomplete tail at byte {last} ({cut - last} bytes)")
    assert tail.run_id == "r" and tail.path == str(path)
    with open(path, "ab") as fh:
        fh.write(data[cut:])
    assert _series(source.read_history(), "r", "x") == [(0, 0.0), (1, 0.5), (2, 1.0), (3, 1.5)]
    assert FindingKind.INCOMPLETE_TAIL not in _kinds(source)


def test_shrunk_or_replaced_file_is_reread_with_a_warning(logdir):
    run = logdir / "r"
    run.mkdir()
    path = str(run / "events.out.tfevents.1")
    tw.write_records(path, [tw.scalar_event("x", s, 1.0) for s in range(5)])
    source = TensorBoardSource(logdir)
    assert len(source.read_history()) == 5
    replacement = path + ".tmp"
    tw.write_records(replacement, [tw.scalar_event("x", s, 2.0) for s in range(2)])
    os.replace(replacement, path)  # rsync without --inplace
    assert _series(source.read_history(), "r", "x") == [(0, 2.0), (1, 2.0)]
    warning = _only(source, FindingKind.FILE_REPLACED)
    assert warning.severity == Severity.WARNING and "data re-read from the start" in warning.message
    with open(path, "r+b") as fh:  # truncated in place
        fh.truncate(0)
    tw.write_records(path, [tw.scalar_event("x", 0, 3.0)], mode="r+b")
    assert _series(source.read_history(), "r", "x") == [(0, 3.0)]
    assert "shrank" in _only(source, FindingKind.FILE_REPLACED).message


# --- damaged and odd files in a logdir (C3-C5, C10, C11, C13) ----------------------------


def test_damaged_logdir_yields_all_readable_data_and_names_every_problem(logdir):
    good = logdir / "good"
    tw.write_tbx_scalars(str(good), {"loss": [1.0, 0.5]})
    bad = logdir / "bad"
    bad.mkdir()
    data = bytearray(
        b"".join(tw.frame(tw.scalar_event("x", s, s).SerializeToString()) for s in range(1000))
    )
    offset = tw.record_offsets(bytes(data))[500]
    data[offset + 20] ^= 0x55
    (bad / "events.out.tfevents.crc").write_bytes(bytes(data))
    odd = logdir / "odd"
    odd.mkdir()
    (odd / "events.out.tfevents.empty").write_bytes(b"")
    (odd / "events.out.tfevents.random").write_bytes(os.urandom(3000))
    (odd / "events.out.tfevents.gz").write_bytes(gzip.compress(bytes(data[:4000])))
    (odd / "events.out.tfevents.x").mkdir()
    (odd / "events.out.tfevents.dangling").symlink_to(odd / "missing")
    (odd / "loop").symlink_to(odd / "loop")
    (odd / "up").symlink_to(logdir)
    os.mkfifo(odd / "events.out.tfevents.fifo")  # would block a plain open()
    undecodable = os.path.join(os.fsencode(odd), b"run\xff").decode("utf-8", "surrogateescape")
    tw.write_tbx_scalars(undecodable, {"x": [1.0]})

    source = TensorBoardSource(logdir)
    runs = source.read_runs()
    assert runs.run_id.tolist() == ["bad", "good", "odd"]
    history = source.read_history()
    assert [s for s, _ in _series(history, "bad", "x")] == [s for s in range(1000) if s != 500]
    assert _series(history, "good", "loss") == [(0, 1.0), (1, 0.5)]

    crc = _only(source, FindingKind.DATA_CRC_MISMATCH)
    assert (crc.path, crc.offset, crc.record, crc.run_id) == (
        str(bad / "events.out.tfevents.crc"),
        offset,
        500,
        "bad",
    )
    assert crc.severity == Severity.ERROR
    assert _only(source, FindingKind.AFTER_CORRUPT_RECORD).record == 500
    assert _only(source, FindingKind.EMPTY_FILE).path.endswith("events.out.tfevents.empty")
    assert _only(source, FindingKind.NOT_EVENT_FILE).path.endswith(".random")
    assert _only(source, FindingKind.COMPRESSED_FILE).path.endswith(".gz")
    by_path = {os.path.basename(f.path): f for f in source.findings if f.path}
    assert "directory named like an event file" in by_path["events.out.tfevents.x"].message
    assert by_path["events.out.tfevents.dangling"].message.startswith("dangling symlink")
    assert by_path["loop"].message == "symlink loop: skipped"
    assert "already visited" in by_path["up"].message
    assert "not a regular file" in by_path["events.out.tfevents.fifo"].message
    assert by_path["run\\xff"].message.startswith("name is not valid UTF-8")


def test_file_deleted_between_listing_and_reading(logdir, monkeypatch):
    tw.write_tbx_scalars(str(logdir / "a"), {"x": [1.0]})
    tw.write_tbx_scalars(str(logdir / "b"), {"x": [2.0]})
    doomed = tw.tbx_event_file(str(logdir / "b"))

    class WalkThenDelete(Walker):
        def walk(self, *args, **kwargs):
            listed = super().walk(*args, **kwargs)
            if os.path.exists(doomed):
                os.remove(doomed)  # the race: listed, then gone before it is opened
            return listed

    monkeypatch.setattr(tb, "Walker", WalkThenDelete)  # where the source looks it up
    source = TensorBoardSource(logdir)
    assert source.read_runs().run_id.tolist() == ["a", "b"]
    gone = _only(source, FindingKind.IO_ERROR)
    assert gone.path == doomed and "deleted between listing and reading" in gone.message


def test_permission_denied_file_and_directory_are_findings():
    with tw.world_readable_tmpdir() as root:
        tw.write_tbx_scalars(os.path.join(root, "ok"), {"x": [1.0]})
        tw.write_tbx_scalars(os.path.join(root, "locked"), {"x": [2.0]})
        locked = tw.tbx_event_file(os.path.join(root, "locked"))
        os.chmod(locked, 0)
        hidden = os.path.join(root, "hidden")
        tw.write_tbx_scalars(os.path.join(hidden, "inner"), {"x": [3.0]})
        os.chmod(hidden, 0)
        try:
            with tw.unprivileged():
                source = TensorBoardSource(root)
                history = source.read_history()
                findings = source.findings
        finally:
            os.chmod(hidden, 0o755)
        assert _series(history, "ok", "x") == [(0, 1.0)]
        assert set(history.run_id) == {"ok"}
        denied = {f.path: f.kind for f in findings if "Permission denied" in f.message}
        assert denied == {locked: FindingKind.IO_ERROR, hidden: FindingKind.WALK}


def test_invalid_event_protobuf_is_reported_per_record(logdir):
    run = logdir / "r"
    run.mkdir()
    good = tw.scalar_event("x", 1, 1.0).SerializeToString()
    deep = b"\xa3\x06" * 10000 + b"\xa4\x06" * 10000  # unknown group nested 10000 deep (C6)
    data = tw.frame(good) + tw.frame(b"\xff\xff\xff") + tw.frame(deep) + tw.frame(good)
    (run / "events.out.tfevents.1").write_bytes(data)
    source = TensorBoardSource(logdir)
    assert len(source.read_history()) == 2
    errors = [f for f in source.findings if f.kind == FindingKind.DECODE_ERROR]
    assert [f.record for f in errors] == [1, 2]
    assert all("not a valid Event protobuf" in f.message for f in errors)


def test_findings_name_the_source(logdir):
    (logdir / "r").mkdir()
    (logdir / "r" / "events.out.tfevents.1").write_bytes(b"")
    source = TensorBoardSource(logdir)
    source.read_runs()
    assert {f.source_uri for f in source.findings} == {str(logdir)}


def test_tensorboardx_and_tf2_writers_give_equal_history(logdir):
    values = [0.75, 0.5, 0.375, 0.25]  # exact in float32, so both writers store the same
    tw.write_tbx_scalars(str(logdir / "tbx"), {"loss": values})
    tw.write_with_event_file_writer(str(logdir / "tf2"), tw.tf2_scalar_events("loss", values))
    history = TensorBoardSource(logdir).read_history()
    by_run = {
        run: frame[["metric", "step", "value"]].reset_index(drop=True)
        for run, frame in history.groupby("run_id")
    }
    pd.testing.assert_frame_equal(by_run["tbx"], by_run["tf2"])
    assert by_run["tbx"].value.tolist() == values


def test_a_single_string_filter_is_one_name(logdir):
    tw.write_tbx_scalars(str(logdir / "ab"), {"loss": [1.0], "l": [2.0]})
    source = TensorBoardSource(logdir)
    assert source.read_history(metrics="loss", run_ids="ab").metric.tolist() == ["loss"]
    assert source.read_runs(experiments="my-experiment").run_id.tolist() == ["ab"]


def test_a_new_run_and_a_new_file_appear_on_the_next_read(logdir):
    tw.write_tbx_scalars(str(logdir / "a"), {"x": [1.0]})
    source = TensorBoardSource(logdir)
    assert source.read_runs().run_id.tolist() == ["a"]
    tw.write_tbx_scalars(str(logdir / "b"), {"x": [2.0]})
    tw.write_tbx_scalars(str(logdir / "a"), {"y": [3.0]}, suffix=".second")
    runs = source.read_runs().set_index("run_id")
    assert runs.index.tolist() == ["a", "b"]
    assert (runs.loc["a", "metrics.x"], runs.loc["a", "metrics.y"]) == (1.0, 3.0)
    assert source.read_texts("b") == [] and source.read_tensors("b") == []
