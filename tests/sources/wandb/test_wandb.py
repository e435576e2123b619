"""The W&B source on run folders written by wandb itself (0.17.9 and 0.31.0, offline).

Expected values come from :mod:`tests.wandb_writer`, the script that logged them. Damaged
files are copies of real ones, cut short or with a byte flipped by the test.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runreview.contract import HISTORY_COLUMNS, RUN_COLUMNS
from runreview.sources import open_source, open_wandb_dir
from runreview.sources.base import SourceError
from runreview.sources.wandb import WandbSource, records
from runreview.sources.wandb.framing import BLOCK_BYTES, CHUNK_HEADER_BYTES, scan_log
from tests import wandb_writer as spec
from tests.wandb_fixture import CORE_VERSION, GIT_REMOTE, LEGACY_VERSION, WANDB_VERSIONS

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(params=WANDB_VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    """Each wandb version that wrote run folders."""
    return request.param


@pytest.fixture
def folders(wandb_folders, tmp_path: Path) -> Path:
    """A private copy of every version's run folders (the tests may damage it)."""
    target = tmp_path / "runs"
    shutil.copytree(wandb_folders.root, target, symlinks=True)
    return target


def _row(runs: pd.DataFrame, run_id: str) -> pd.Series:
    rows = runs[runs["run_id"] == run_id]
    assert len(rows) == 1, run_id
    return rows.iloc[0]


def _points(history: pd.DataFrame, run_id: str, metric: str) -> pd.DataFrame:
    return history[(history["run_id"] == run_id) & (history["metric"] == metric)]


def _log_file(folders: Path, version: str, run_id: str) -> Path:
    found = sorted((folders / version / "wandb").glob(f"*-{run_id}/run-{run_id}.wandb"))
    assert found, run_id
    return found[0]


def _kinds(source: WandbSource) -> set[str]:
    return {f.kind for f in source.findings}


# --- what a run holds ---------------------------------------------------------------------


def test_runs_hold_config_summary_tags_and_status(folders, version):
    ids = spec.run_ids(version)
    source = open_wandb_dir(str(folders / version / "wandb"))
    runs = source.read_runs()

    assert list(runs.columns[: len(RUN_COLUMNS)]) == RUN_COLUMNS
    assert sorted(runs["run_id"]) == sorted(ids.values())
    assert set(runs["source"]) == {"wandb"} and set(runs["experiment"]) == {spec.PROJECT}
    base = _row(runs, ids["baseline"])
    assert base["run_name"] == spec.BASELINE_NAME and base["status"] == "FINISHED"
    params = {c.removeprefix("params."): base[c] for c in runs if c.startswith("params.")}
    assert {k: v for k, v in params.items() if isinstance(v, str)} == {
        "lr": "0.001",
        "batch_size": "32",
        "optimizer.name": "adam",
        "optimizer.beta1": "0.9",
        "layers": "[64, 128]",
        "augment": "True",
    }
    last = spec.baseline_point(spec.STEPS - 1)
    assert base["metrics.loss"] == last["loss"] and base["metrics.acc"] == last["acc"]
    assert base["metrics.train.lr"] == last["train"]["lr"]
    assert base["metrics.grad_norm"] == last["grad_norm"]
    assert base["metrics.val/loss"] == last["val/loss"]
    assert base["metrics.best_acc"] == spec.BEST_ACC
    assert not [c for c in runs if c.startswith(("metrics._", "metrics.phase", "metrics.conf"))]
    assert base["tags.wandb.tags"] == ", ".join(spec.BASELINE_TAGS)
    assert base["tags.wandb.notes"] == spec.BASELINE_NOTES
    assert base["tags.wandb.group"] == spec.BASELINE_GROUP
    assert base["tags.wandb.version"] == version
    assert base["start_time"] < base["end_time"]

    failed = _row(runs, ids["failed"])
    assert failed["status"] == "FAILED" and failed["params.lr"] == "0.1"
    assert failed["metrics.loss"] == 7.0


def test_history_holds_every_logged_step_of_every_numeric_key(folders, version):
    ids = spec.run_ids(version)
    source = open_wandb_dir(str(folders / version / "wandb"))
    history = source.read_history(run_ids=[ids["baseline"]])

    assert list(history.columns) == HISTORY_COLUMNS
    assert set(history["metric"]) == {"loss", "acc", "train.lr", "grad_norm", "val/loss"}
    points = [spec.baseline_point(s) for s in range(spec.STEPS)]
    loss = _points(history, ids["baseline"], "loss")
    assert loss["step"].tolist() == list(range(spec.STEPS))
    assert loss["value"].tolist() == [p["loss"] for p in points]
    train_lr = _points(history, ids["baseline"], "train.lr")["value"].tolist()
    assert train_lr == [p["train"]["lr"] for p in points]
    val = _points(history, ids["baseline"], "val/loss")
    assert val["step"].tolist() == [3, 7, 11]
    assert val["value"].tolist() == [points[s]["val/loss"] for s in (3, 7, 11)]
    grad = _points(history, ids["baseline"], "grad_norm")["value"].to_numpy()
    assert math.isnan(grad[5]) and np.isnan(grad).sum() == 1
    assert loss["timestamp"].notna().all() and loss["timestamp"].is_monotonic_increasing
    skipped = [f for f in source.findings if f.kind == "not_numeric"]
    assert len(skipped) == 1 and "phase (12)" in skipped[0].message


def test_both_backends_give_the_same_frames(folders):
    frames = {}
    for version in WANDB_VERSIONS:
        ids = spec.run_ids(version)
        source = open_wandb_dir(str(folders / version / "wandb"))
        runs = source.read_runs().set_index("run_id").loc[[ids["baseline"], ids["long"]]]
        keep = [c for c in runs if c.startswith(("params.", "metrics."))]
        history = source.read_history(run_ids=[ids["baseline"]])
        frames[version] = (
            runs[keep].reset_index(drop=True),
            history[["metric", "step", "value"]].astype({"metric": str}),
        )
    legacy, core = frames[LEGACY_VERSION], frames[CORE_VERSION]
    pd.testing.assert_frame_equal(legacy[0], core[0])
    pd.testing.assert_frame_equal(legacy[1], core[1])


def test_a_record_longer_than_two_blocks_is_read(folders, version):
    ids = spec.run_ids(version)
    path = _log_file(folders, version, ids["long"])
    assert path.stat().st_size > 4 * BLOCK_BYTES
    source = open_wandb_dir(str(folders / version / "wandb"))
    row = _row(source.read_runs(), ids["long"])
    assert row["params.blob"] == "x" * spec.BLOB_CHARS
    loss = _points(source.read_history(metrics=["loss"]), ids["long"], "loss")
    assert loss["step"].tolist() == list(range(spec.LONG_STEPS))
    assert [f for f in source.findings if f.severity != "info"] == []


def test_a_run_resumed_offline_is_one_run_from_both_folders(folders, version):
    run_id = spec.run_ids(version)["resumed"]
    source = open_wandb_dir(str(folders / version / "wandb"))
    row = _row(source.read_runs(), run_id)
    loss = _points(source.read_history(), run_id, "loss")

    expected = [spec.resumed_loss(seg, s) for seg in (0, 1) for s in range(spec.RESUMED_STEPS)]
    assert loss["value"].tolist() == expected
    assert loss["step"].tolist() == list(range(spec.RESUMED_STEPS)) * 2
    assert row["metrics.loss"] == expected[-1] and row["status"] == "FINISHED"
    assert len(row["tags.wandb.folders"].split(", ")) == 2
    second = row["tags.wandb.folders"].split(", ")[1]
    resumed = [f for f in source.findings if f.kind == "resumed"]
    assert len(resumed) == 1 and f"resumed in {second}" in resumed[0].message
    assert "steps start again at 0" in resumed[0].message


def test_environment_comes_from_the_run_folder(folders, version, wandb_folders):
    run_id = spec.run_ids(version)["baseline"]
    env = open_wandb_dir(str(folders / version / "wandb")).read_environment(run_id)
    assert env.get("python") == platform.python_version()
    assert env.get("platform") and env.get("host")
    assert env.get("git.commit") == wandb_folders.git_commit
    assert env.get("git.remote") == GIT_REMOTE
    assert env.get("program").endswith("wandb_writer.py")
    assert env.get("wandb") == version
    if version == CORE_VERSION:  # wandb 0.17 writes no requirements.txt offline
        assert env.packages["wandb"] == version
        assert env.packages_origin.endswith(os.path.join("files", "requirements.txt"))
    else:
        assert env.packages == {} and env.packages_origin is None


def test_confusion_matrix_tables_are_read(folders, version):
    run_id = spec.run_ids(version)["baseline"]
    matrices = open_wandb_dir(str(folders / version / "wandb")).read_confusion(run_id)
    expected = np.zeros((3, 3), dtype=np.int64)
    for true, predicted in zip(spec.Y_TRUE, spec.Y_PRED, strict=True):
        expected[true, predicted] += 1
    assert len(matrices) == 1 and matrices[0].labels == spec.CLASSES
    assert np.array_equal(matrices[0].counts, expected)
    assert matrices[0].origin.endswith(".table.json")


def test_a_folder_above_several_wandb_folders_lists_every_run(folders):
    source = open_source(str(folders / CORE_VERSION / "wandb"))
    assert source.kind == "wandb"
    runs = open_wandb_dir(str(folders)).read_runs()
    expected = {rid for v in WANDB_VERSIONS for rid in spec.run_ids(v).values()}
    assert set(runs["run_id"]) == expected and runs["source_uri"].nunique() == 1
    with pytest.raises(SourceError, match="does not exist"):
        open_wandb_dir(str(folders / "missing"))


# --- damaged and growing files -------------------------------------------------------------


def record_kind(payload: bytes) -> tuple:
    return records.record_kind(payload) or ()


def _records(path: Path) -> list[tuple[int, int, bytes]]:
    return scan_log(path.read_bytes()).records


def _history_record(path: Path, nth: int) -> tuple[int, bytes]:
    """Offset and payload of the ``nth`` history record (the ``run.log`` call of step
    ``nth`` in the long run)."""
    found = [
        (o, p) for o, _, p in _records(path) if record_kind(p)[:1] == (records.RECORD_HISTORY,)
    ]
    return found[nth]


def test_a_file_cut_short_yields_every_complete_record(folders, version):
    run_id = spec.run_ids(version)["long"]
    path = _log_file(folders, version, run_id)
    offset, payload = _history_record(path, 700)
    data = path.read_bytes()
    path.write_bytes(data[: offset + CHUNK_HEADER_BYTES + len(payload) // 2])

    source = WandbSource(folders / version / "wandb")
    row = _row(source.read_runs(), run_id)
    loss = _points(source.read_history(), run_id, "loss")
    assert loss["step"].tolist() == list(range(700))
    assert row["status"] == "RUNNING" and pd.isna(row["end_time"])
    tails = [f for f in source.findings if f.kind == "incomplete_tail"]
    assert len(tails) == 1 and tails[0].offset == offset and tails[0].run_id == run_id
    assert not {"crc_mismatch", "unreadable"} & _kinds(source)

    later = WandbSource(folders / version / "wandb", clock=lambda: time.time() + 3600)
    assert _row(later.read_runs(), run_id)["status"] == "UNKNOWN"
    assert "no_exit_record" in _kinds(later)


def test_a_growing_file_is_read_from_where_it_stopped(folders, version):
    run_id = spec.run_ids(version)["long"]
    path = _log_file(folders, version, run_id)
    offset, payload = _history_record(path, 300)
    full = path.read_bytes()
    cut = offset + CHUNK_HEADER_BYTES + len(payload) // 2
    path.write_bytes(full[:cut])
    source = WandbSource(folders / version / "wandb")
    assert len(_points(source.read_history(), run_id, "loss")) == 300

    with path.open("ab") as fh:
        fh.write(full[cut:])
    loss = _points(source.read_history(), run_id, "loss")
    assert loss["step"].tolist() == list(range(spec.LONG_STEPS))
    assert _row(source.read_runs(), run_id)["status"] == "FINISHED"
    assert "incomplete_tail" not in _kinds(source)


def test_a_flipped_byte_loses_only_its_record(folders, version):
    run_id = spec.run_ids(version)["long"]
    path = _log_file(folders, version, run_id)
    offset, _ = _history_record(path, 500)
    data = bytearray(path.read_bytes())
    data[offset + CHUNK_HEADER_BYTES + 5] ^= 0x40
    path.write_bytes(bytes(data))

    source = WandbSource(folders / version / "wandb")
    loss = _points(source.read_history(), run_id, "loss")
    assert loss["step"].tolist() == [s for s in range(spec.LONG_STEPS) if s != 500]
    bad = [f for f in source.findings if f.kind == "crc_mismatch"]
    assert len(bad) == 1 and bad[0].offset == offset and bad[0].severity == "error"
    after = [f for f in source.findings if f.kind == "after_corrupt_record"]
    assert len(after) == 1 and after[0].offset == offset
    assert _row(source.read_runs(), run_id)["status"] == "FINISHED"


def test_a_damaged_chunk_header_is_skipped_by_resyncing(folders, version):
    run_id = spec.run_ids(version)["long"]
    path = _log_file(folders, version, run_id)
    offset, _ = _history_record(path, 400)
    data = bytearray(path.read_bytes())
    data[offset + 4] ^= 0x7F  # the chunk's length: its CRC no longer covers the right bytes
    path.write_bytes(bytes(data))

    source = WandbSource(folders / version / "wandb")
    steps = _points(source.read_history(), run_id, "loss")["step"].tolist()
    assert 400 not in steps and steps[:400] == list(range(400))
    assert steps[-1] == spec.LONG_STEPS - 1 and len(steps) >= spec.LONG_STEPS - 3
    assert "resync" in _kinds(source) and {"crc_mismatch", "unreadable"} & _kinds(source)


def test_junk_beside_run_folders_is_reported_not_read(folders, tmp_path):
    root = tmp_path / "mixed"
    good = _log_file(folders, CORE_VERSION, spec.run_ids(CORE_VERSION)["failed"]).parent
    shutil.copytree(good, root / good.name)
    (root / "offline-run-20260101_000000-junk0001").mkdir()
    (root / "offline-run-20260101_000000-junk0001" / "run-junk0001.wandb").write_bytes(
        b"PK\x03\x04 not a wandb file" * 10
    )
    (root / "offline-run-20260101_000001-zero0001").mkdir()
    (root / "offline-run-20260101_000001-zero0001" / "run-zero0001.wandb").write_bytes(b"")
    (root / "run-20260101_000002-nofile01").mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "run-x.wandb").write_text("not in a run folder")
    (root / "notes" / "loop").symlink_to(root)
    (root / "dangling").symlink_to(root / "nowhere")

    source = WandbSource(root)
    runs = source.read_runs()
    assert runs["run_id"].tolist() == [spec.run_ids(CORE_VERSION)["failed"]]
    by_run = {(f.run_id, f.kind) for f in source.findings}
    assert {
        ("junk0001", "not_wandb_file"),
        ("junk0001", "no_run_record"),
        ("zero0001", "empty_file"),
        ("nofile01", "no_run_file"),
    } <= by_run
    assert source.read_history()["run_id"].nunique() == 1


def test_a_damaged_middle_chunk_loses_its_record_only(folders, version):
    run_id = spec.run_ids(version)["long"]
    path = _log_file(folders, version, run_id)
    data = bytearray(path.read_bytes())
    assert data[BLOCK_BYTES + CHUNK_HEADER_BYTES - 1] == 3  # a MIDDLE chunk: the 70 kB config
    data[BLOCK_BYTES + CHUNK_HEADER_BYTES + 100] ^= 0x01
    path.write_bytes(bytes(data))

    source = WandbSource(folders / version / "wandb")
    row = _row(source.read_runs(), run_id)
    assert row["experiment"] == "uncategorized" and row["run_name"] == run_id
    assert "params.blob" not in source.read_runs().dropna(axis=1, how="all").columns
    assert len(_points(source.read_history(), run_id, "loss")) == spec.LONG_STEPS
    found = [(f.kind, f.offset) for f in source.findings if f.run_id == run_id]
    assert ("crc_mismatch", BLOCK_BYTES) in found
    assert ("no_run_record", None) in found and "orphan_chunk" not in {k for k, _ in found}
