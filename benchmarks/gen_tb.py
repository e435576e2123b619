"""TensorBoard logdirs for the benchmarks, written with tensorboardX.

Events are tensorboardX's own protos (``Event`` holding a ``Summary.Value`` with a
``simple_value``, exactly what ``SummaryWriter.add_scalar`` writes) framed by
tensorboardX's ``RecordWriter``. ``SummaryWriter`` itself is not used because it passes
every event through a multiprocessing queue (~20k points/s); the synchronous writer makes
the 20M-point logdir in minutes instead of a quarter of an hour. tensorboardX computes
CRC32C in pure Python unless the ``crc32c`` package is installed; it is pointed at
google_crc32c (same checksum) for the same reason.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
from pathlib import Path

import numpy as np

WALL_START = 1_700_000_000.0
FILE_VERSION = "brain.Event:2"


def _writer(path: Path, mode: str):
    import google_crc32c
    import tensorboardX.record_writer as record_writer

    record_writer.crc32c = google_crc32c.value  # same CRC, C speed
    writer = record_writer.RecordWriter.__new__(record_writer.RecordWriter)
    writer._writer = open(path, mode)  # noqa: SIM115 - closed by writer.close()
    return writer


def tag_name(k: int) -> str:
    """The name of the k-th scalar tag."""
    return f"metric/{k:02d}"


def curve(run: int, tag: int, steps: range) -> np.ndarray:
    """Deterministic training-like values (decaying, with noise) for one series."""
    rng = np.random.default_rng(run * 1000 + tag)
    s = np.arange(steps.start, steps.stop, dtype=np.float64)
    return np.exp(-s / (500.0 + 37 * tag)) * (1 + 0.1 * tag) + rng.normal(0, 0.01, s.size)


def event_file(run_dir: Path) -> Path:
    """The single event file of a generated run."""
    return next(run_dir.glob("events.out.tfevents.*"))


def write_run(args: tuple[str, int, int, range, str]) -> int:
    """Write steps ``steps`` of every tag of run ``index`` (a new file, or appended)."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.summary_pb2 import Summary

    root, index, tags, steps, mode = args
    run_dir = Path(root) / f"run_{index:04d}"
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"events.out.tfevents.{int(WALL_START) + index}.bench"
    if mode == "ab":
        path = event_file(run_dir)
    writer = _writer(path, mode)
    if mode == "wb":
        writer.write(Event(wall_time=WALL_START, file_version=FILE_VERSION).SerializeToString())
    values = [curve(index, k, steps).tolist() for k in range(tags)]
    names = [tag_name(k) for k in range(tags)]
    for i, step in enumerate(steps):
        wall = WALL_START + index * 10.0 + step * 0.5
        for k in range(tags):
            value = Summary.Value(tag=names[k], simple_value=values[k][i])
            event = Event(wall_time=wall, step=step, summary=Summary(value=[value]))
            writer.write(event.SerializeToString())
    writer.close()
    return len(steps) * tags


def _pool_map(items: list, workers: int) -> int:
    if workers <= 1 or len(items) < 4:
        return sum(write_run(item) for item in items)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return sum(pool.imap_unordered(write_run, items, chunksize=2))


def make_logdir(root: Path, runs: int, tags: int, steps: int, workers: int = 2) -> Path:
    """A logdir of ``runs`` runs x ``tags`` tags x ``steps`` steps (cached: made once)."""
    meta = root / "meta.json"
    wanted = {"runs": runs, "tags": tags, "steps": steps, "format": 1}
    if meta.exists() and json.loads(meta.read_text()) == wanted:
        return root / "logdir"
    shutil.rmtree(root, ignore_errors=True)
    logdir = root / "logdir"
    logdir.mkdir(parents=True)
    items = [(str(logdir), i, tags, range(steps), "wb") for i in range(runs)]
    _pool_map(items, workers)
    meta.write_text(json.dumps(wanted))
    return logdir


def append_steps(logdir: Path, runs: int, tags: int, steps: range, workers: int = 2) -> int:
    """Append ``steps`` of every tag to every run's file (a live run logging on)."""
    items = [(str(logdir), i, tags, steps, "ab") for i in range(runs)]
    return _pool_map(items, workers)


def copy_logdir(src: Path, dst: Path) -> Path:
    """A private copy of a logdir (for benchmarks that change it)."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    return dst


def one_percent(steps: int) -> int:
    """Steps that add 1% more points (at least one)."""
    return max(1, math.ceil(steps / 100))


def total_bytes(logdir: Path) -> int:
    """Bytes of every event file under ``logdir``."""
    return sum(
        os.path.getsize(os.path.join(d, f))
        for d, _, files in os.walk(logdir)
        for f in files
        if "tfevents" in f
    )
