"""The on-disk cache of parsed TensorBoard files: warm reopen, grown files, changed files,
corrupt entries, two processes, eviction. Real event files from real writers; every
cached read is compared with a read that does not use the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runreview.contract import FindingKind
from runreview.sources.tensorboard import cache as tb_cache
from runreview.sources.tensorboard.source import TensorBoardSource
from tests.sources import tb_writers as tw

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    """Scalars (tensorboardX and TF2), text, images, tensors, hparams, a restart, a
    damaged file with an incomplete tail, and a TF2 tag whose metadata is in an earlier
    file of its run."""
    root = tmp_path / "logs"
    tw.write_tbx_scalars(str(root / "a"), {"loss": [1.0, 0.5, 0.25], "acc": [0.1, 0.2, 0.9]})
    events = [
        tw.hparams_pb_event({"lr": 0.5, "opt": "sgd"}),
        *tw.tf2_scalar_events("epoch_loss", [0.75, 0.5, 0.375]),
        tw.text_event("eval/confusion/labels", 2, '["cat", "dog"]'),
        tw.matrix_event("eval/confusion", 2, np.array([[3, 1], [0, 4]], dtype=np.int32)),
        tw.image_event("samples", 1, [tw.png_bytes(3, 4, 1)], 4, 3),
        tw.session_start_event(1),
        tw.scalar_event("epoch_loss_v1", 1, 9.0),
    ]
    tw.write_with_event_file_writer(str(root / "b"), events)
    damaged = root / "c" / "events.out.tfevents.damaged"
    damaged.parent.mkdir(parents=True)
    data = bytearray(tw.write_records(str(damaged), [tw.scalar_event("x", s, s) for s in range(9)]))
    data[tw.record_offsets(bytes(data))[4] + 20] ^= 0xFF  # data CRC mismatch in record 4
    damaged.write_bytes(bytes(data[:-7]))  # and a torn last record
    split = tw.tf2_scalar_events("t", [1.5, 2.5, 3.5])
    tw.write_records(str(root / "d" / "events.out.tfevents.1"), split[:1]) if _mkdir(
        root / "d"
    ) else None
    tw.write_records(str(root / "d" / "events.out.tfevents.2"), split[1:])
    return root


def _mkdir(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return True


def _everything(source: TensorBoardSource) -> dict:
    """Every public read of a source, in comparable form."""
    runs = source.read_runs()
    out = {"runs": runs, "history": source.read_history()}
    for run_id in runs.run_id:
        out[run_id] = (
            source.read_texts(run_id),
            [(t, s, a.tolist(), a.dtype.str) for t, s, a in source.read_tensors(run_id)],
            source.read_images(run_id),
            [
                (c.name, c.labels, None if c.counts is None else c.counts.tolist())
                for c in source.read_confusion(run_id)
            ],
        )
    out["findings"] = source.findings
    return out


def _assert_same(got: dict, want: dict) -> None:
    pd.testing.assert_frame_equal(got.pop("runs"), want.pop("runs"))
    pd.testing.assert_frame_equal(got.pop("history"), want.pop("history"))
    assert got == want


def _no_cache(logdir: Path) -> dict:
    return _everything(TensorBoardSource(logdir, cache=False))


def _files(logdir: Path) -> list[Path]:
    return sorted(p for p in logdir.rglob("*") if "tfevents" in p.name)


def test_warm_reopen_parses_nothing_and_reads_the_same(logdir, tmp_path):
    cache = tmp_path / "cache"
    cold = TensorBoardSource(logdir, cache=cache)
    want = _everything(cold)
    assert cold.stats.files_parsed == len(_files(logdir)) == cold.stats.cache_writes
    warm = TensorBoardSource(logdir, cache=cache)
    got = _everything(warm)
    assert (warm.stats.files_parsed, warm.stats.bytes_read) == (0, 0)
    assert warm.stats.cache_hits == len(_files(logdir))
    _assert_same(got, want)
    _assert_same(_everything(TensorBoardSource(logdir, cache=cache)), _no_cache(logdir))


def test_history_text_columns_are_categorical_with_str_categories(logdir, tmp_path):
    history = TensorBoardSource(logdir, cache=tmp_path / "cache").read_history()
    for column in ("source", "source_uri", "run_id", "metric"):
        assert isinstance(history[column].dtype, pd.CategoricalDtype)
        assert history[column].cat.categories.dtype == "str"
    assert history.run_id.cat.categories.tolist() == sorted(set(history.run_id))
    mlflow_like = history.astype({c: "str" for c in ("source", "source_uri", "run_id", "metric")})
    assert pd.concat([history, mlflow_like]).run_id.dtype == "str"


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty", "header"])
def test_corrupt_cache_entries_are_ignored_and_rewritten(logdir, tmp_path, damage):
    cache = tmp_path / "cache"
    want = _everything(TensorBoardSource(logdir, cache=cache))
    entries = sorted((cache / tb_cache.SUBDIR).glob("*" + tb_cache.SUFFIX))
    assert len(entries) == len(_files(logdir))
    for entry in entries:
        raw = bytearray(entry.read_bytes())
        if damage == "flip":
            raw[len(raw) // 2] ^= 0x01
        elif damage == "truncate":
            raw = raw[: len(raw) // 2]
        elif damage == "garbage":
            raw = bytearray(os.urandom(len(raw)))
        elif damage == "empty":
            raw = bytearray()
        else:  # a valid-looking prelude over a header that is not JSON
            raw[tb_cache._PRELUDE.size] = ord("!")
        entry.write_bytes(bytes(raw))
    source = TensorBoardSource(logdir, cache=cache)
    _assert_same(_everything(source), dict(want))
    assert source.stats.files_parsed == len(entries) and source.stats.cache_hits == 0
    assert source.cache.corrupt_entries == len(entries)
    again = TensorBoardSource(logdir, cache=cache)  # the entries were rewritten
    again.read_history()
    assert again.stats.cache_hits == len(entries) and again.stats.files_parsed == 0


def test_grown_file_reads_only_its_new_bytes_from_the_cached_offset(tmp_path):
    logdir = tmp_path / "logs"
    path = logdir / "r" / "events.out.tfevents.live"
    path.parent.mkdir(parents=True)
    data = b"".join(tw.frame(tw.scalar_event("x", s, s / 4).SerializeToString()) for s in range(40))
    cut = len(data) - 9  # the writer is in the middle of record 39
    path.write_bytes(data[:cut])
    cache = tmp_path / "cache"
    first = TensorBoardSource(logdir, cache=cache).read_history()
    assert first.step.tolist() == list(range(39))
    more = tw.write_records(
        str(path), [tw.scalar_event("x", s, s / 4) for s in range(40, 50)], "ab"
    )
    with open(path, "r+b") as fh:  # the writer finishes record 39 in place
        fh.seek(cut)
        fh.write(data[cut:] + more)
    source = TensorBoardSource(logdir, cache=cache)
    history = source.read_history()
    last_record = tw.record_offsets(data)[-1]
    assert source.stats.bytes_read == len(data) + len(more) - last_record
    assert source.stats.cache_hits == 1
    assert history.step.tolist() == list(range(50))
    _assert_same(_everything(source), _no_cache(logdir))


def test_replaced_file_of_the_same_size_is_read_again(tmp_path):
    logdir = tmp_path / "logs"
    path = logdir / "r" / "events.out.tfevents.1"
    path.parent.mkdir(parents=True)
    tw.write_records(str(path), [tw.scalar_event("x", s, 1.0) for s in range(5)])
    cache = tmp_path / "cache"
    TensorBoardSource(logdir, cache=cache).read_history()
    replacement = tmp_path / "new"
    tw.write_records(str(replacement), [tw.scalar_event("x", s, 2.0) for s in range(5)])
    os.replace(replacement, path)  # another inode, same size
    source = TensorBoardSource(logdir, cache=cache)
    assert source.read_history().value.tolist() == [2.0] * 5
    assert source.stats.files_parsed == 1 and source.stats.cache_hits == 0


def test_rewrite_in_place_within_the_same_mtime_is_caught_by_content(tmp_path):
    logdir = tmp_path / "logs"
    path = logdir / "r" / "events.out.tfevents.1"
    path.parent.mkdir(parents=True)
    tw.write_records(str(path), [tw.scalar_event("x", s, 1.0) for s in range(5)])
    soon = time.time_ns() + 60 * 10**9  # modified "just now", however slow this machine is
    os.utime(path, ns=(soon, soon))
    before = os.stat(path)
    cache = tmp_path / "cache"
    TensorBoardSource(logdir, cache=cache).read_history()
    events = [tw.scalar_event("x", s, 3.0 if s == 2 else 1.0) for s in range(5)]
    with open(path, "r+b") as fh:  # same size, same inode, first and last bytes unchanged
        fh.write(b"".join(tw.frame(e.SerializeToString()) for e in events))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same mtime tick
    source = TensorBoardSource(logdir, cache=cache)
    assert source.read_history().value.tolist() == [1.0, 1.0, 3.0, 1.0, 1.0]
    assert source.stats.files_parsed == 1


def test_grown_file_whose_first_bytes_changed_is_read_from_the_start(tmp_path):
    logdir = tmp_path / "logs"
    path = logdir / "r" / "events.out.tfevents.1"
    path.parent.mkdir(parents=True)
    tw.write_records(str(path), [tw.scalar_event("x", s, 1.0) for s in range(5)])
    cache = tmp_path / "cache"
    TensorBoardSource(logdir, cache=cache).read_history()
    tw.write_records(str(path), [tw.scalar_event("x", s, 5.0) for s in range(7)])
    source = TensorBoardSource(logdir, cache=cache)
    assert source.read_history().value.tolist() == [5.0] * 7
    assert source.stats.bytes_read == path.stat().st_size


def test_plugins_from_an_earlier_file_are_part_of_the_key(logdir, tmp_path):
    cache = tmp_path / "cache"
    TensorBoardSource(logdir, cache=cache).read_history()
    first = logdir / "d" / "events.out.tfevents.1"  # held the metadata of tag "t"
    tw.write_records(str(first), [tw.scalar_event("u", 0, 1.0)])
    source = TensorBoardSource(logdir, cache=cache)
    got = _everything(source)
    assert source.stats.files_parsed == 2  # file 2 was cached with other plugins
    assert set(got["history"][got["history"].run_id == "d"].metric) == {"u"}
    _assert_same(got, _no_cache(logdir))


def test_cache_off_writes_nothing_and_the_default_folder_is_the_setting(
    logdir, tmp_path, monkeypatch
):
    folder = tmp_path / "from-env"
    monkeypatch.setenv("RUNREVIEW_CACHE_DIR", str(folder))
    TensorBoardSource(logdir, cache=False).read_history()
    assert not folder.exists()
    source = TensorBoardSource(logdir)
    source.read_history()
    assert source.cache.folder == folder / tb_cache.SUBDIR
    assert len(list(source.cache.folder.iterdir())) == len(_files(logdir))


def test_cache_folder_inside_the_logdir_is_not_used(logdir):
    source = TensorBoardSource(logdir, cache=logdir / ".cache")
    source.read_history()
    assert source.cache is None and not (logdir / ".cache").exists()
    [finding] = [f for f in source.findings if f.kind == FindingKind.CACHE]
    assert "inside the logdir" in finding.message


def test_close_forgets_the_disk_entries(logdir, tmp_path):
    cache = tmp_path / "cache"
    source = TensorBoardSource(logdir, cache=cache)
    source.read_history()
    source.close()
    assert list((cache / tb_cache.SUBDIR).iterdir()) == []


def test_unwritable_cache_folder_turns_the_cache_off_and_reads_as_usual(logdir, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    source = TensorBoardSource(logdir, cache=blocker)
    _assert_same(_everything(source), _no_cache(logdir))
    assert source.cache is None and "cannot write" in source.stats.cache_error


def test_an_entry_with_an_object_dtype_is_refused(logdir, tmp_path):
    cache = tmp_path / "cache"
    TensorBoardSource(logdir, cache=cache).read_history()
    entry = next((cache / tb_cache.SUBDIR).glob("*" + tb_cache.SUFFIX))
    raw = entry.read_bytes()
    _, version, _, header_len = tb_cache._PRELUDE.unpack_from(raw, 0)
    start = tb_cache._PRELUDE.size
    header = json.loads(raw[start : start + header_len])
    header["arrays"][0][1] = "|O"
    text = json.dumps(header, separators=(",", ":")).encode().ljust(header_len)
    assert len(text) == header_len
    body = text + raw[start + header_len :]
    import google_crc32c

    forged = tb_cache._PRELUDE.pack(tb_cache.MAGIC, version, google_crc32c.value(body), header_len)
    with pytest.raises(tb_cache.CorruptEntry, match="dtype"):
        tb_cache.decode_entry(forged + body)


def test_eviction_keeps_the_folder_under_its_bound(tmp_path):
    logdir = tmp_path / "logs"
    for i in range(6):
        run = logdir / f"r{i}"
        run.mkdir(parents=True)
        tw.write_bulk_scalars(str(run / "events.out.tfevents.1"), tags=2, steps=300)
    source = TensorBoardSource(logdir, cache=tmp_path / "cache")
    source.cache.max_bytes = 40_000  # about two entries
    source.read_history()
    source.cache.evict()
    entries = list(source.cache.folder.iterdir())
    assert sum(e.stat().st_size for e in entries) <= 40_000
    assert 0 < len(entries) < 6


def test_two_processes_reading_and_writing_one_cache_agree(logdir, tmp_path):
    cache = tmp_path / "cache"
    script = textwrap.dedent(
        f"""
        import hashlib, sys
        import pandas as pd
        from runreview.sources.tensorboard import TensorBoardSource
        digests = set()
        for _ in range(8):
            history = TensorBoardSource({str(logdir)!r}, cache={str(cache)!r}).read_history()
            rows = pd.util.hash_pandas_object(history.astype(str), index=False).values
            digests.add(hashlib.sha256(rows.tobytes()).hexdigest())
        print(" ".join(sorted(digests)))
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    want = TensorBoardSource(logdir, cache=False).read_history()
    import hashlib

    rows = pd.util.hash_pandas_object(want.astype(str), index=False).values
    assert outputs == [[hashlib.sha256(rows.tobytes()).hexdigest()]] * 2
    for entry in (cache / tb_cache.SUBDIR).glob("*" + tb_cache.SUFFIX):
        tb_cache.decode_entry(entry.read_bytes())  # every entry whole


def test_a_replaced_file_warning_belongs_to_the_source_that_saw_it(tmp_path):
    logdir = tmp_path / "logs"
    path = logdir / "r" / "events.out.tfevents.1"
    path.parent.mkdir(parents=True)
    tw.write_records(str(path), [tw.scalar_event("x", s, 1.0) for s in range(5)])
    cache = tmp_path / "cache"
    live = TensorBoardSource(logdir, cache=cache)
    live.read_history()
    tw.write_records(str(path), [tw.scalar_event("x", s, 2.0) for s in range(3)])  # shrank
    live.read_history()
    assert [f.kind for f in live.findings] == ["file_replaced"]
    fresh = TensorBoardSource(logdir, cache=cache)
    _assert_same(_everything(fresh), _no_cache(logdir))
    assert fresh.stats.cache_hits == 1 and fresh.findings == []


def test_history_categories_are_only_tags_with_points(tmp_path):
    from tensorboard.util import tensor_util

    logdir = tmp_path / "logs"
    (logdir / "r").mkdir(parents=True)
    scalar_shaped = tensor_util.make_tensor_proto(np.float32(2.0))  # no plugin: not a scalar
    events = [tw.scalar_event("loss", 0, 1.0), tw.tensor_event("weird", 0, scalar_shaped, None)]
    tw.write_records(str(logdir / "r" / "events.out.tfevents.1"), events)
    history = TensorBoardSource(logdir, cache=False).read_history()
    assert history.metric.cat.categories.tolist() == ["loss"]
    assert history.metric.tolist() == ["loss"]
