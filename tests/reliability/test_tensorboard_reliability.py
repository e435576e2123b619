"""RELIABILITY.md section C (TensorBoard event files): the cases whose required behaviour
no test in ``tests/sources`` asserted. Real event files from real writers
(``runreview.sources.tensorboard.tfrecord.write``, TensorBoard's own ``EventFileWriter``),
real directory trees, the real source, workspace, analysis, chart and CLI; nothing is
mocked. The case -> test table is in this folder's README.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
from tensorboard.summary.writer.event_file_writer import EventFileWriter

import runreview
from runreview.analysis.leaderboard import leaderboard
from runreview.analysis.overlay import DEFAULT_MAX_POINTS, overlay_frame
from runreview.charts import overlay_chart
from runreview.contract import FindingKind, Severity
from runreview.sources.tensorboard import TensorBoardSource
from runreview.sources.tensorboard import cache as tb_cache
from runreview.sources.tensorboard import files as tb_files
from runreview.sources.tensorboard import state as tb_state
from runreview.sources.tensorboard.tfrecord.write import EventWriter
from runreview.workspace import Workspace
from tests.sources import tb_writers as tw

WALL = 1.7e9
REPO = Path(__file__).resolve().parents[2]


def _series(history: pd.DataFrame, run_id: str, metric: str) -> list[tuple[int, float]]:
    rows = history[(history.run_id == run_id) & (history.metric == metric)]
    return list(zip(rows.step.tolist(), rows.value.tolist(), strict=True))


# --- C3: records after a corrupt one, read in a later poll --------------------------------


def test_C3_records_after_a_corrupt_one_read_in_a_later_poll_are_flagged(tmp_path: Path) -> None:
    """The damaged record is the last one of the first read: the records the next poll
    reads follow it and are flagged (before, nothing said so)."""
    path = tmp_path / "logs" / "r" / "events.out.tfevents.1"
    path.parent.mkdir(parents=True)
    data = bytearray(tw.write_records(str(path), [tw.scalar_event("x", s, s) for s in range(10)]))
    last = tw.record_offsets(bytes(data))[-1]
    data[last + tw.HEADER + 2] ^= 0xFF  # data CRC of record 9
    path.write_bytes(bytes(data))
    source = TensorBoardSource(tmp_path / "logs", cache=False)
    assert [s for s, _ in _series(source.read_history(), "r", "x")] == list(range(9))
    assert [f.kind for f in source.findings] == [FindingKind.DATA_CRC_MISMATCH]

    tw.write_records(str(path), [tw.scalar_event("x", s, s) for s in range(10, 15)], mode="ab")
    assert [s for s, _ in _series(source.read_history(), "r", "x")] == [*range(9), *range(10, 15)]
    [flagged] = [f for f in source.findings if f.kind == FindingKind.AFTER_CORRUPT_RECORD]
    assert flagged.record == 10 and flagged.severity == Severity.WARNING
    assert flagged.message.startswith("5 more record(s) after an earlier corrupt record")


# --- C5: a record declaring 2^40 bytes, in a logdir --------------------------------------


def test_C5_huge_declared_length_in_one_run_allocates_nothing_and_other_runs_load(
    tmp_path: Path,
) -> None:
    logdir = tmp_path / "logs"
    with EventWriter(logdir / "good", WALL) as writer:
        writer.add_scalars("loss", [3.0, 2.0, 1.0], [0, 1, 2], [WALL] * 3)
    with EventWriter(logdir / "bad", WALL) as writer:
        writer.add_scalars("loss", [5.0, 4.0], [0, 1], [WALL] * 2)
    header = struct.pack("<Q", 2**40)
    with open(writer.path, "ab") as fh:  # a valid length CRC over an absurd length
        fh.write(header + struct.pack("<I", tw.masked(header)) + b"x" * 64)

    source = TensorBoardSource(logdir, cache=False)
    tracemalloc.start()
    try:
        history = source.read_history()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024
    assert _series(history, "good", "loss") == [(0, 3.0), (1, 2.0), (2, 1.0)]
    assert _series(history, "bad", "loss") == [(0, 5.0), (1, 4.0)]
    [cap] = [f for f in source.findings if f.kind == FindingKind.RECORD_TOO_LONG]
    assert cap.severity == Severity.ERROR and cap.path == str(writer.path)
    assert "record length exceeds cap" in cap.message and f"length {2**40}" in cap.message


# --- C9: 2,000,000 scalar points for one tag ---------------------------------------------

C9_POINTS = 2_000_000
C9_MIN_STEP, C9_MAX_STEP = 1_234_567, 777_777  # not on any regular grid a sampler keeps


def _c9_values() -> np.ndarray:
    """A noisy decreasing loss (float32, as ``simple_value`` stores it), its lowest value
    at step ``C9_MIN_STEP`` and its highest at ``C9_MAX_STEP``."""
    steps = np.arange(C9_POINTS)
    noise = np.random.default_rng(9).normal(0.0, 0.01, C9_POINTS)
    values = (2.0 * np.exp(-steps / 400_000) + 0.5 + noise).astype(np.float32)
    values[C9_MIN_STEP], values[C9_MAX_STEP] = -5.0, 50.0
    return values


def test_C9_bulk_writer_writes_exactly_what_add_scalar_writes(tmp_path: Path) -> None:
    """The writer C9 uses (``EventWriter.add_scalars``) gives the bytes of ``add_scalar``
    one point at a time, and TensorBoard's own loader reads them back."""
    rng = np.random.default_rng(3)
    steps = np.r_[0, 1, -1, 127, 128, 16_384, 2**62, -(2**63), rng.integers(-(2**40), 2**40, 200)]
    values = np.r_[0.0, -0.0, np.nan, np.inf, 1e39, rng.normal(size=steps.size - 5)]
    walls = np.r_[0.0, -0.0, np.nan, -5.0, rng.normal(size=steps.size - 4) * 1e9]
    with EventWriter(tmp_path / "one", WALL) as one, EventWriter(tmp_path / "bulk", WALL) as bulk:
        for v, s, w in zip(values.tolist(), steps.tolist(), walls.tolist(), strict=True):
            one.add_scalar("loss/ünï", v, s, w)
        bulk.add_scalars("loss/ünï", values, steps, walls)
    assert bulk.path.read_bytes() == one.path.read_bytes()
    events = list(LegacyEventFileLoader(str(bulk.path)).Load())[1:]  # after file_version
    assert [e.step for e in events] == steps.tolist()
    got = np.array([e.summary.value[0].simple_value for e in events], dtype=np.float32)
    with np.errstate(over="ignore"):  # 1e39 is inf as a float32, as protobuf stores it
        np.testing.assert_array_equal(got, values.astype(np.float32))


@dataclass
class TwoMillion:
    """A logdir whose run ``train`` logged ``C9_POINTS`` points of ``loss`` (one file)."""

    logdir: Path
    values: np.ndarray


@pytest.fixture(scope="module")
def two_million(tmp_path_factory: pytest.TempPathFactory) -> TwoMillion:
    logdir = tmp_path_factory.mktemp("c9") / "logs"
    values = _c9_values()
    steps = np.arange(C9_POINTS)
    with EventWriter(logdir / "train", WALL) as writer:
        writer.add_scalars("loss", values, steps, WALL + steps * 0.01)
    return TwoMillion(logdir, values)


def test_C9_two_million_points_are_all_read_aggregated_and_plotted_with_a_note(
    two_million: TwoMillion,
) -> None:
    logdir, values = two_million.logdir, two_million.values
    steps = np.arange(C9_POINTS)
    ws = Workspace.open(logdirs=[str(logdir)], cache=False)
    runs, history = ws.runs(), ws.history()
    assert not ws.findings()

    # every point is in the history frame, in order, with its exact value
    assert len(history) == C9_POINTS
    np.testing.assert_array_equal(history.step.to_numpy(), steps)
    np.testing.assert_array_equal(history.value.to_numpy(), values.astype(np.float64))

    # aggregates over all points: the runs frame's last value, the leaderboard's best/last
    assert runs["metrics.loss"].tolist() == [float(values[-1])]
    board = leaderboard(runs, history, "loss").iloc[0]
    assert (board.best_value, board.best_step) == (-5.0, C9_MIN_STEP)
    assert (board.last_value, board.last_step) == (float(values[-1]), C9_POINTS - 1)
    assert board.history_points == C9_POINTS
    highest = leaderboard(runs, history, "loss", direction="max").iloc[0]
    assert (highest.best_value, highest.best_step) == (50.0, C9_MAX_STEP)

    # the overlay plots at most DEFAULT_MAX_POINTS, keeps both extremes and says so
    key = (ws.sources[0].uri, "train")
    result = overlay_frame(history, runs, ["loss"], [key])
    plotted = len(result.points)
    assert plotted <= DEFAULT_MAX_POINTS
    kept = dict(zip(result.points.step.tolist(), result.points.value.tolist(), strict=True))
    assert kept[C9_MIN_STEP] == -5.0 and kept[C9_MAX_STEP] == 50.0
    assert {0, C9_POINTS - 1} <= set(kept)
    [series] = result.series.to_dict("records")
    assert (series["points_total"], series["points_plotted"]) == (C9_POINTS, plotted)
    assert series["caption"] == f"plotted {plotted:,} of 2,000,000 points"
    note = (
        f"TensorBoard debiased EMA, weight 0.6; plotted {plotted:,} of 2,000,000 points "
        "(at most 2,000 per series, extremes kept)"
    )
    assert result.caption() == note  # shown under the chart (app) and in reports
    assert overlay_chart(result).title.subtitle == [note]  # and in the chart's own title


# --- C12: a file rewritten in place between polls ----------------------------------------


def _scalar_file(path: Path, values: list[float]) -> bytes:
    """An event file of ``values`` at steps 0, 1, ...: same first bytes for every call
    whose first value is the same."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with EventWriter(path.parent, WALL) as writer:
        writer.add_scalars("x", values, np.arange(len(values)), WALL + np.arange(len(values)))
    os.replace(writer.path, path)
    return path.read_bytes()


def _rewrite_in_place(path: Path, data: bytes) -> None:
    """Overwrite ``path`` (same inode), as ``rsync --inplace`` or a restarted writer
    reopening the same name would."""
    with open(path, "r+b") as fh:
        fh.write(data)
        fh.truncate(len(data))


@pytest.mark.parametrize(
    "new_values",
    [[1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0, 2.0], [1.0, 1.0, 2.0, 1.0, 1.0]],
    ids=["longer", "same-size-new-end", "same-size-new-middle"],
)
def test_C12_file_rewritten_in_place_is_reread_without_mixing_offsets(
    tmp_path: Path, new_values: list[float]
) -> None:
    path = tmp_path / "logs" / "r" / "events.out.tfevents.1"
    old = _scalar_file(path, [1.0] * 5)
    source = TensorBoardSource(tmp_path / "logs", cache=False)
    assert _series(source.read_history(), "r", "x") == [(s, 1.0) for s in range(5)]
    before = os.stat(path)

    new = _scalar_file(tmp_path / "new" / "f", new_values)
    assert new[:64] == old[:64]  # the first records, so the first bytes, are unchanged
    _rewrite_in_place(path, new)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert os.stat(path).st_ino == before.st_ino

    assert _series(source.read_history(), "r", "x") == list(enumerate(new_values))
    [warning] = [f for f in source.findings if f.kind == FindingKind.FILE_REPLACED]
    assert warning.severity == Severity.WARNING and warning.path == str(path)
    assert "rewritten in place" in warning.message
    assert "data re-read from the start" in warning.message


# --- C14: several event files in one run directory, written at the same time -----------


def test_C14_two_files_written_at_the_same_time_are_both_followed(tmp_path: Path) -> None:
    """TensorBoard's own writer (a background thread per file), two files in one run
    growing together: every poll has every point of both (TensorBoard's watcher would
    stop reading the older file once the newer one has data)."""
    run = tmp_path / "logs" / "r"
    first = EventFileWriter(str(run), filename_suffix=".trainer")
    second = EventFileWriter(str(run), filename_suffix=".evaluator")
    source = TensorBoardSource(tmp_path / "logs", cache=False)
    try:
        for poll in range(3):
            for step in range(poll * 4, poll * 4 + 4):
                first.add_event(tw.scalar_event("train/loss", step, 1.0 / (step + 1)))
                second.add_event(tw.scalar_event("eval/acc", step, step / 16))
            first.flush()
            second.flush()
            history = source.read_history()
            steps = list(range(poll * 4 + 4))
            assert [s for s, _ in _series(history, "r", "train/loss")] == steps
            assert [s for s, _ in _series(history, "r", "eval/acc")] == steps
    finally:
        first.close()
        second.close()
    assert len([n for n in os.listdir(run) if "tfevents" in n]) == 2
    runs = source.read_runs()
    assert runs[["run_id", "metrics.train/loss", "metrics.eval/acc"]].values.tolist() == [
        ["r", pytest.approx(1 / 12), 11 / 16]
    ]


# --- C15: 10^5 run directories -----------------------------------------------------------

C15_DIRS = 100_000
C15_GROUPS = 100  # logs/g000 ... g099, 1,000 run directories each
C15_EVENT_EVERY = 40  # every 40th directory holds a tiny event file: 2,500 runs
C15_RUNS = C15_DIRS // C15_EVENT_EVERY
C15_PEAK_BYTES = 40 * 1024 * 1024  # measured: about 13 MiB (tracemalloc peak)
LISTING = re.compile(r"Listing .*: ([\d,]+) directories, ([\d,]+) runs found")
READING = re.compile(r"Reading run dirs of .*: ([\d,]+) of ([\d,]+)")


class Cancelled(Exception):
    """What a caller's progress callback raises to stop a load."""


@dataclass
class BigLogdir:
    """The logdir, a scratch folder on the same file system, and what it holds."""

    path: Path
    scratch: Path
    last_values: dict[str, float]


def _fast_tmp() -> str | None:
    """A RAM-backed temporary folder when there is one: this machine's disk takes ~35 s
    to remove 10^5 directories (ext4 mounted with ``discard``), tmpfs about 1.5 s."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _build_big_logdir(root: Path) -> BigLogdir:
    """``C15_DIRS`` run directories; every ``C15_EVENT_EVERY``-th gets an event file
    written by ``runreview.sources.tensorboard.tfrecord.write`` (two points of ``loss``)."""
    logdir, last = root / "logs", {}
    logdir.mkdir()
    per_group = C15_DIRS // C15_GROUPS
    for g in range(C15_GROUPS):
        group = logdir / f"g{g:03d}"
        group.mkdir()
        for r in range(per_group):
            os.mkdir(group / f"r{r:03d}")
            i = g * per_group + r
            if i % C15_EVENT_EVERY == 0:
                run_id = f"g{g:03d}/r{r:03d}"
                last[run_id] = float(np.float32(i / C15_DIRS))
                with EventWriter(group / f"r{r:03d}", WALL + i) as writer:
                    writer.add_scalar("loss", 1.0, 0, WALL + i)
                    writer.add_scalar("loss", i / C15_DIRS, 1, WALL + i + 1)
    scratch = root / "scratch"
    scratch.mkdir()
    return BigLogdir(logdir, scratch, last)


@pytest.fixture(scope="module")
def big_logdir() -> Iterator[BigLogdir]:
    root = Path(tempfile.mkdtemp(prefix="rr-c15-", dir=_fast_tmp()))
    try:
        try:
            big = _build_big_logdir(root)
        except OSError:  # a small tmpfs (a container's /dev/shm): build it on disk
            shutil.rmtree(root, ignore_errors=True)
            root = Path(tempfile.mkdtemp(prefix="rr-c15-"))
            big = _build_big_logdir(root)
        yield big
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _assert_complete(runs: pd.DataFrame, big: BigLogdir) -> None:
    assert runs.run_id.tolist() == sorted(big.last_values)
    assert dict(zip(runs.run_id, runs["metrics.loss"], strict=True)) == big.last_values


def _numbers(pattern: re.Pattern[str], messages: list[str]) -> list[tuple[int, int]]:
    found = [pattern.fullmatch(m) for m in messages]
    return [tuple(int(g.replace(",", "")) for g in m.groups()) for m in found if m]


def test_C15_100k_run_dirs_load_with_progress_in_bounded_memory(
    big_logdir: BigLogdir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNREVIEW_CACHE_DIR", str(big_logdir.scratch / "cache-progress"))
    calls: list[tuple[str, float, float]] = []
    start = time.perf_counter()
    tracemalloc.start()
    try:
        runs = runreview.load_runs(
            logdirs=[str(big_logdir.path)],
            progress=lambda m, f: calls.append((m, f, time.perf_counter())),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    end = time.perf_counter()
    _assert_complete(runs, big_logdir)
    assert runs.attrs["findings"] == []

    messages = [m for m, _, _ in calls]
    listed = _numbers(LISTING, messages)
    assert [d for d, _ in listed] == sorted(d for d, _ in listed)
    assert listed[-1][0] >= C15_DIRS and listed[-1][1] >= C15_RUNS - C15_RUNS // C15_GROUPS
    read = _numbers(READING, messages)
    assert read[-1] == (C15_RUNS, C15_RUNS) and len(read) >= C15_RUNS // 100
    fractions = [f for _, f, _ in calls]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert len(calls) < C15_DIRS / 100  # reported every so many directories, not each one
    times = [start] + [t for _, _, t in calls] + [end]
    gaps = np.diff(times)
    assert gaps.max() < 2.0, f"no progress call for {gaps.max():.1f} s: could not be cancelled"
    assert peak < C15_PEAK_BYTES, f"peak {peak / 2**20:.0f} MiB"


def test_C15_history_reports_progress_for_the_whole_logdir_and_for_chosen_runs(
    tmp_path: Path,
) -> None:
    logdir = tmp_path / "logs"
    for i in range(250):
        with EventWriter(logdir / f"r{i:03d}", WALL) as writer:
            writer.add_scalar("loss", i, 0, WALL)
    calls: list[tuple[str, float]] = []
    history = runreview.load_history(
        logdirs=[str(logdir)], progress=lambda m, f: calls.append((m, f))
    )
    assert len(history) == 250
    assert _numbers(READING, [m for m, _ in calls])[-1] == (250, 250)
    assert [f for _, f in calls] == sorted(f for _, f in calls) and calls[-1][1] == 1.0

    source = TensorBoardSource(logdir, cache=False)
    source.read_runs()
    chosen: list[tuple[str, float]] = []
    picked = source.read_history(
        run_ids=[f"r{i:03d}" for i in range(0, 250, 2)],
        progress=lambda m, f: chosen.append((m, f)),
    )
    assert len(picked) == 125
    assert _numbers(READING, [m for m, _ in chosen])[-1] == (125, 125)


def test_C15_a_large_event_file_is_read_in_chunks_in_bounded_memory(
    two_million: TwoMillion,
) -> None:
    """The 2,000,000-point file (88 MB) is read 16 MiB at a time: the peak is what is
    kept, one copy of it while its chunks are joined, and a few chunks; not the file
    (a whole-file read peaked at about 4.5 times the file)."""
    [path] = (two_million.logdir / "train").iterdir()
    source = TensorBoardSource(two_million.logdir, cache=False)
    tracemalloc.start()
    try:
        source.read_runs()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path.stat().st_size > 5 * tb_files.READ_CHUNK_BYTES  # read in 6 chunks
    assert peak < 2 * kept + 4 * tb_files.READ_CHUNK_BYTES, (peak >> 20, kept >> 20)
    assert source.read_runs()["metrics.loss"].tolist() == [float(two_million.values[-1])]


def _mixed_event_file(path: Path) -> bytes:
    """Scalars (v1 and v2), text, images larger than the small chunks below, a tensor,
    hparams, a restart; then damaged: a data-CRC mismatch, a bad length CRC followed by
    good records (resync), a run of zeros inside the file and a torn last record."""
    run = path.parent
    with EventWriter(run, WALL) as writer:
        writer.add_hparams_start({"lr": 0.1, "opt": "sgd"}, ["loss"], start_time=WALL)
        for step in range(300):
            writer.add_scalar("loss", 1 / (step + 1), step, WALL + step)
            writer.add_scalar("acc", step / 300, step, WALL + step, v2=True)
            if step % 60 == 0:
                writer.add_text("note", f"step {step}", step, WALL + step)
                writer.add_image("img", tw.png_bytes(48, 48, step), 48, 48, step, WALL + step)
                writer.add_tensor("cm", np.eye(3) * step, step, WALL + step)
        writer.write_event(tw.session_start_event(100, WALL + 400))
        writer.add_scalars("loss", [9.0] * 50, np.arange(100, 150), WALL + 400 + np.arange(50))
    data = bytearray(writer.path.read_bytes())
    offsets = tw.record_offsets(bytes(data))
    assert len(offsets) == 669
    data[offsets[150] + tw.HEADER + 2] ^= 0xFF  # data CRC
    data[offsets[350] + 9] ^= 0x01  # length CRC: unreadable, then resync
    data[offsets[550] : offsets[560]] = bytes(offsets[560] - offsets[550])  # zeros
    out = bytes(data[:-5])  # torn last record
    path.write_bytes(out)
    writer.path.unlink()
    return out


def _comparable(state: tb_state.FileState) -> dict:
    """What a file's state holds, minus what depends on how its bytes were split: the
    "after corrupt record" counts and the byte counts in resync messages."""
    points = state.points()
    names = np.array(points.tags, dtype=object)[points.code] if points.code.size else []
    problems = tb_state.file_findings(state, "u")
    return {
        "points": list(zip(names, *(getattr(points, f).tolist() for f in ("step", "record")))),
        "values": np.r_[points.value, points.wall].tobytes(),
        "texts": state.texts,
        "images": state.images,
        "tensors": [(t.tag, t.step, t.array.tolist()) for t in state.tensors],
        "params": state.params,
        "restarts": state.session_starts,
        "plugins": state.plugins,
        "where": (state.next_offset, state.next_index, state.corrupt, state.size),
        "content": (state.crc, state.tail, state.wall_min, state.wall_max),
        "status": [f.message for f in state.status],
        "kinds": sorted({f.kind for f in problems} - {FindingKind.AFTER_CORRUPT_RECORD}),
        "after_corrupt": any(f.kind == FindingKind.AFTER_CORRUPT_RECORD for f in problems),
        "problems": sorted(
            (f.kind, f.offset, f.record)
            for f in problems
            if f.kind != FindingKind.AFTER_CORRUPT_RECORD and f.offset is not None
        ),
    }


@pytest.mark.parametrize("chunk", [1000, 4096, 65_536])
@pytest.mark.parametrize("kind", ["mixed", "junk", "huge-length"])
def test_C15_reading_in_chunks_gives_what_one_read_gives(
    tmp_path: Path, kind: str, chunk: int
) -> None:
    path = tmp_path / "r" / "events.out.tfevents.1"
    path.parent.mkdir()
    if kind == "mixed":
        data = _mixed_event_file(path)
    elif kind == "junk":
        data = np.random.default_rng(5).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    else:  # C5: a header declaring 2^40 bytes between good records
        header = struct.pack("<Q", 2**40)
        good = b"".join(tw.frame(tw.scalar_event("x", s, s).SerializeToString()) for s in range(99))
        data = good + header + struct.pack("<I", tw.masked(header)) + good
    path.write_bytes(data)
    whole = tb_files.read_file(str(path), "r", None, "u", chunk_bytes=len(data) + 1)
    parts = tb_files.read_file(str(path), "r", None, "u", chunk_bytes=chunk)
    assert whole.bytes_read == len(data) <= parts.bytes_read
    got, want = _comparable(parts.state), _comparable(whole.state)
    # records after a corrupt one are flagged either way; a chunk that starts after one
    # counts them itself where one read leaves them to the resync finding
    assert got.pop("after_corrupt") >= want.pop("after_corrupt")
    assert got == want


def _cache_files(cache: Path) -> tuple[list[Path], list[Path]]:
    """The entries of a disk cache, and anything else in its folder (temporary files)."""
    folder = cache / tb_cache.SUBDIR
    names = sorted(folder.iterdir()) if folder.exists() else []
    entries = [p for p in names if p.name.endswith(tb_cache.SUFFIX) and p.name[0] != "."]
    return entries, [p for p in names if p not in entries]


def _assert_cache_whole(cache: Path) -> int:
    """No temporary file of an interrupted write is left, and every entry is whole and
    describes a whole event file. Returns the number of entries."""
    entries, leftovers = _cache_files(cache)
    assert leftovers == []
    for entry in entries:
        key = tb_cache.decode_entry(entry.read_bytes())[0]["key"]
        assert os.path.getsize(key["path"]) == key["size"]
    return len(entries)


def test_C15_cancel_while_listing_stops_before_reading_anything(big_logdir: BigLogdir) -> None:
    cache = big_logdir.scratch / "cache-cancel-listing"
    source = TensorBoardSource(big_logdir.path, cache=cache)
    seen: list[str] = []

    def progress(message: str, fraction: float) -> None:
        seen.append(message)
        if LISTING.fullmatch(message):
            raise Cancelled(message)

    with pytest.raises(Cancelled) as stopped:
        Workspace(sources=[source]).runs(progress=progress)
    assert str(stopped.value) == seen[-1]  # nothing ran on after the callback raised
    assert _numbers(LISTING, seen)[0][0] < C15_DIRS
    assert source.stats.files_parsed == 0 and _assert_cache_whole(cache) == 0


def test_C15_stop_while_reading_leaves_nothing_half_written_and_the_next_read_goes_on(
    big_logdir: BigLogdir,
) -> None:
    """The app's cancel path: a report's ``st.progress`` raises Streamlit's StopException
    from inside the callback when the user presses Stop."""
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    cache = big_logdir.scratch / "cache-stop-reading"
    source = TensorBoardSource(big_logdir.path, cache=cache)
    ws = Workspace(sources=[source])
    seen: list[str] = []

    def progress(message: str, fraction: float) -> None:
        seen.append(message)
        read = _numbers(READING, [message])
        if read and read[0][0] >= 1000:
            raise StopException(message)

    with pytest.raises(StopException) as stopped:
        ws.runs(progress=progress)
    assert str(stopped.value) == seen[-1]
    parsed = source.stats.files_parsed
    assert 1000 <= parsed < C15_RUNS
    assert _assert_cache_whole(cache) == source.stats.cache_writes == parsed

    _assert_complete(ws.runs(), big_logdir)  # the same (shared) source goes on
    assert source.stats.files_parsed == C15_RUNS  # each file parsed once, none twice
    fresh = TensorBoardSource(big_logdir.path, cache=cache)  # and so does a new process
    _assert_complete(fresh.read_runs(), big_logdir)
    assert (fresh.stats.cache_hits, fresh.stats.files_parsed) == (C15_RUNS, 0)


def test_C15_ctrl_c_in_the_cli_stops_promptly_and_leaves_no_half_written_entry(
    big_logdir: BigLogdir,
) -> None:
    """SIGINT to ``runreview runs`` while it reads: KeyboardInterrupt wherever it lands
    (not only between runs), exit 2 with "interrupted", no output, a whole cache."""
    cache = big_logdir.scratch / "cache-cli"
    env = {**os.environ, "RUNREVIEW_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "runreview.cli", "runs", "--logdir", str(big_logdir.path)]
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 45
        while len(_cache_files(cache)[0]) < 200:  # it is reading run directories
            assert proc.poll() is None and time.monotonic() < deadline, "no entry written"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 2 and err.strip().endswith("runreview: interrupted"), err
    assert out == "" and took < 5.0
    assert 200 <= _assert_cache_whole(cache) < C15_RUNS
