"""The TFRecord framing reader: intact, live and damaged files (RELIABILITY.md C1-C7, C10,
C13), the vectorised scalar decoder against protobuf, and fuzzing."""

from __future__ import annotations

import gzip
import math
import struct
import tracemalloc
import zlib

import google_crc32c
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as tb_masked_crc
from tensorboard.util import tensor_util

from runreview.contract import FindingKind, Severity
from runreview.sources.tensorboard import tfrecord
from runreview.sources.tensorboard.tfrecord import crc, frame
from runreview.sources.tensorboard.tfrecord import fast as scalar_fast
from tests.sources import tb_writers as tw


def _events(n: int, tag: str = "loss") -> list[event_pb2.Event]:
    return [tw.scalar_event(tag, step, step * 0.25, 1.7e9 + step) for step in range(n)]


def _file(n: int) -> bytes:
    return tw.frame_with_tensorboard(e.SerializeToString() for e in _events(n))


def _steps(buf: bytes, result: tfrecord.ScanResult) -> list[int]:
    return [event_pb2.Event.FromString(p).step for p in tfrecord.payloads(buf, result)]


def _kinds(findings) -> list[str]:
    return [f.kind for f in findings]


# --- CRC and intact files ---------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"a", b"\x00" * 8, bytes(range(256)) * 3])
def test_masked_crc_matches_tensorboards_own(data):
    assert crc.masked_crc32c(data) == tb_masked_crc(data)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 40), st.integers(0, 20), st.randoms(use_true_random=False))
def test_vectorised_crc_rows_match_google_crc32c(width, rows, rnd):
    """The numpy byte table (the event writer's fast path) is CRC-32C, masked or not."""
    data = np.array(
        [[rnd.randrange(256) for _ in range(width)] for _ in range(rows)], dtype=np.uint8
    ).reshape(rows, width)
    expected = [google_crc32c.value(row.tobytes()) for row in data]
    assert crc.crc32c_rows(data).tolist() == expected
    assert crc.masked_crc32c_rows(data).tolist() == [crc.mask(c) for c in expected]
    assert crc.masked_crc32c_rows(data).tolist() == [crc.masked_crc32c(r.tobytes()) for r in data]
    starts = np.arange(rows, dtype=np.int64) * width
    flat = data.tobytes()
    assert crc.crc32c_of_ranges(flat, starts, starts + width).tolist() == expected


def test_intact_file_returns_every_record_in_order():
    buf = _file(50)
    result = tfrecord.scan_records(buf)
    assert _steps(buf, result) == list(range(50))
    assert result.indexes.tolist() == list(range(50))
    assert result.next_offset == len(buf) and result.next_index == 50
    assert not result.findings and not result.status and not result.corrupt
    assert not result.after_corrupt.any()


def test_read_records_reads_a_tensorboardx_file(tmp_path):
    tw.write_tbx_scalars(str(tmp_path), {"acc": [0.5, 0.75, 1.0]})
    path = tw.tbx_event_file(str(tmp_path))
    buf, result = tfrecord.read_records(path)
    events = [event_pb2.Event.FromString(p) for p in tfrecord.payloads(buf, result)]
    assert events[0].file_version == "brain.Event:2"
    assert [(e.step, e.summary.value[0].simple_value) for e in events[1:]] == [
        (0, 0.5),
        (1, 0.75),
        (2, 1.0),
    ]
    assert not result.findings and not result.status


def test_read_records_of_a_missing_file_is_a_finding(tmp_path):
    buf, result = tfrecord.read_records(str(tmp_path / "events.out.tfevents.gone"))
    assert buf == b"" and result.count == 0
    assert _kinds(result.status) == [FindingKind.IO_ERROR]
    assert "cannot read" in result.status[0].message


# --- C1 / C2: incomplete tail, then the writer appends the rest -------------------------


@pytest.mark.parametrize("cut", [1, 4, 15, 20])  # inside the data / footer / header
def test_incomplete_tail_then_append_returns_record_exactly_once(tmp_path, cut):
    whole = _file(10)
    last = tw.record_offsets(whole)[-1]
    path = tmp_path / "events.out.tfevents.live"
    path.write_bytes(whole[:-cut])

    buf, first = tfrecord.read_records(str(path), source_uri="u")
    assert _steps(buf, first) == list(range(9))
    assert _kinds(first.status) == [FindingKind.INCOMPLETE_TAIL]
    tail = first.status[0]
    assert tail.message.startswith(
        f"incomplete tail at byte {last} ({len(whole) - cut - last} bytes)"
    )
    assert tail.severity == Severity.WARNING and tail.path == str(path) and tail.offset == last
    assert "corrupt" not in tail.message.replace("not corruption", "")
    assert not first.findings and first.next_offset == last and first.next_index == 9

    with open(path, "ab") as fh:  # the writer finishes the record
        fh.write(whole[-cut:])
    buf2, second = tfrecord.read_records(
        str(path), offset=first.next_offset, first_index=first.next_index
    )
    assert _steps(buf2, second) == [9]
    assert second.indexes.tolist() == [9]
    assert not second.status and second.next_offset == len(whole)

    buf3, third = tfrecord.read_records(
        str(path), offset=second.next_offset, first_index=second.next_index
    )
    assert third.count == 0 and not third.status


# --- C3: data CRC mismatch in the middle ------------------------------------------------


def test_data_crc_mismatch_in_record_500_of_1000_keeps_every_other_record(tmp_path):
    whole = bytearray(_file(1000))
    offset = tw.record_offsets(bytes(whole))[500]
    whole[offset + tw.HEADER + 3] ^= 0xFF  # a byte of record 500's payload
    path = tmp_path / "events.out.tfevents.bad"
    path.write_bytes(bytes(whole))

    buf, result = tfrecord.read_records(str(path), source_uri="src", run_id="run")
    assert _steps(buf, result) == [s for s in range(1000) if s != 500]
    assert result.indexes.tolist() == [i for i in range(1000) if i != 500]
    assert result.after_corrupt.tolist() == [i > 500 for i in range(1000) if i != 500]
    assert result.corrupt and not result.status and result.next_offset == len(whole)

    bad = [f for f in result.findings if f.kind == FindingKind.DATA_CRC_MISMATCH]
    assert len(bad) == 1
    assert bad[0].severity == Severity.ERROR
    assert (bad[0].path, bad[0].offset, bad[0].record, bad[0].run_id) == (
        str(path),
        offset,
        500,
        "run",
    )
    assert f"record 500 at byte {offset}" in bad[0].message
    flagged = [f for f in result.findings if f.kind == FindingKind.AFTER_CORRUPT_RECORD]
    assert len(flagged) == 1 and flagged[0].message.startswith(
        "499 records after corrupt record 500"
    )


def test_corrupt_flag_carries_over_to_an_incremental_read():
    buf = _file(5)
    result = tfrecord.scan_records(buf, base_offset=1000, first_index=7, after_corrupt=True)
    assert result.after_corrupt.all() and result.corrupt
    assert result.indexes.tolist() == list(range(7, 12))
    assert result.next_offset == 1000 + len(buf)


# --- C4: length CRC mismatch ------------------------------------------------------------


def test_length_crc_mismatch_reports_unreadable_and_resyncs():
    whole = bytearray(_file(20))
    offsets = tw.record_offsets(bytes(whole))
    whole[offsets[12] + 9] ^= 0x01  # the stored length CRC of record 12
    buf = bytes(whole)
    result = tfrecord.scan_records(buf, context=tfrecord.ScanContext(path="f"))

    assert _steps(buf, result) == [s for s in range(20) if s != 12]
    unreadable = [f for f in result.findings if f.kind == FindingKind.UNREADABLE]
    assert len(unreadable) == 1
    message = unreadable[0].message
    assert message.startswith(f"unreadable from byte {offsets[12]}")
    assert "12 records before it" in message
    assert f"resync: next valid record at byte {offsets[13]}" in message
    assert unreadable[0].offset == offsets[12] and unreadable[0].record == 12
    resync = [f for f in result.findings if f.kind == FindingKind.RESYNC]
    assert len(resync) == 1 and resync[0].offset == offsets[13]
    assert result.after_corrupt.tolist() == [i >= 13 for i in range(20) if i != 12]
    assert not result.status


def test_corrupted_length_field_with_no_record_after_it():
    whole = bytearray(_file(6))
    last = tw.record_offsets(bytes(whole))[-1]
    whole[last] ^= 0x40  # the length itself; its CRC no longer matches
    result = tfrecord.scan_records(bytes(whole))
    assert result.count == 5
    assert _kinds(result.status) == [FindingKind.UNREADABLE]
    assert result.status[0].message.startswith(f"unreadable from byte {last}")
    assert "5 records before it; no valid record found after it" in result.status[0].message
    assert result.next_offset == last  # a later read of the grown file looks again


# --- C5: absurd length with a valid length CRC ------------------------------------------


def test_length_2_to_40_with_valid_crc_is_rejected_without_allocating():
    header = struct.pack("<Q", 2**40)
    bogus = header + struct.pack("<I", tw.masked(header)) + b"x" * 64
    buf = _file(3) + bogus
    tracemalloc.start()
    result = tfrecord.scan_records(buf)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 * 1024 * 1024
    assert result.count == 3
    assert _kinds(result.status) == [FindingKind.RECORD_TOO_LONG]
    assert "record length exceeds cap" in result.status[0].message
    assert f"declares length {2**40}" in result.status[0].message


def test_length_above_the_cap_then_good_records_are_found_by_resync():
    header = struct.pack("<Q", frame.MAX_RECORD_BYTES + 1)
    bogus = header + struct.pack("<I", tw.masked(header))
    tail = _file(4)
    buf = _file(2) + bogus + tail
    result = tfrecord.scan_records(buf)
    assert _steps(buf, result) == [0, 1, 0, 1, 2, 3]
    assert FindingKind.RECORD_TOO_LONG in _kinds(result.findings)
    assert FindingKind.RESYNC in _kinds(result.findings)


# --- C10 / C13: not event files ---------------------------------------------------------


def test_empty_file_is_reported_as_empty():
    result = tfrecord.scan_records(b"")
    assert result.count == 0 and _kinds(result.status) == [FindingKind.EMPTY_FILE]
    assert result.status[0].message == "empty event file (0 bytes)"


def test_random_bytes_are_not_an_event_file():
    junk = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    result = tfrecord.scan_records(junk)
    assert result.count == 0
    assert _kinds(result.status) == [FindingKind.NOT_EVENT_FILE]
    assert result.status[0].message.startswith("not an event file")


@pytest.mark.parametrize(("compress", "name"), [(gzip.compress, "gzip"), (zlib.compress, "zlib")])
def test_compressed_event_file_is_reported_not_misparsed(compress, name):
    result = tfrecord.scan_records(compress(_file(30)))
    assert result.count == 0
    assert _kinds(result.status) == [FindingKind.COMPRESSED_FILE]
    assert result.status[0].message.startswith(f"compressed event files not supported ({name}")


def test_zero_filled_tail_after_a_crash():
    buf = _file(4) + bytes(100)
    result = tfrecord.scan_records(buf)
    assert result.count == 4
    assert _kinds(result.status) == [FindingKind.ZERO_FILLED_TAIL]
    assert result.status[0].message.startswith(
        f"zero-filled tail at byte {len(buf) - 100} (100 bytes"
    )


def test_find_next_record_skips_zero_runs_and_finds_the_record():
    buf = bytes(5000) + _file(1)
    assert frame.find_next_record(buf, 0) == 5000
    assert frame.find_next_record(bytes(5000), 0) is None


# --- fast scalar decoder ----------------------------------------------------------------


def _decode_all(events: list[event_pb2.Event]):
    buf = b"".join(tw.frame(e.SerializeToString()) for e in events)
    result = tfrecord.scan_records(buf)
    return buf, result, scalar_fast.decode_scalar_events(buf, result.starts, result.ends)


def _protobuf_number(value) -> float:
    if value.WhichOneof("value") == "simple_value":
        return value.simple_value
    array = tensor_util.make_ndarray(value.tensor)
    assert array.shape == () and array.dtype in (np.float32, np.float64)
    return float(array)


def _assert_matches_protobuf(buf, result, fast) -> None:
    for j, row in enumerate(fast.rows.tolist()):
        event = event_pb2.Event.FromString(buf[result.starts[row] : result.ends[row]])
        (value,) = event.summary.value
        kind = "tensor" if fast.tensor[j] else "simple_value"
        assert value.WhichOneof("value") == kind and not value.HasField("metadata")
        assert fast.tags[fast.tag_codes[j]] == value.tag
        assert fast.step[j] == event.step
        assert fast.wall_time[j] == event.wall_time or (
            math.isnan(fast.wall_time[j]) and math.isnan(event.wall_time)
        )
        got, want = fast.value[j], _protobuf_number(value)
        assert got == want or (math.isnan(got) and math.isnan(want))


def test_fast_decoder_equals_protobuf_on_edge_values():
    events = [
        tw.scalar_event("loss", 0, 0.0, 0.0),  # step and wall_time omitted on the wire
        tw.scalar_event("loss", -5, 1.5),  # negative step: 10-byte varint
        tw.scalar_event("loss", 2**62, float("nan")),
        tw.scalar_event("ünï/cødé ✓", 3, float("inf"), float("nan")),
        tw.scalar_event("x" * scalar_fast.MAX_FAST_TAG_BYTES, 4, -2.5),
        tw.scalar_event("a\x00b", 5, 8.0),
        tw.scalar_event("", 6, 7.0),  # empty tag is omitted on the wire: left to protobuf
    ]
    buf, result, fast = _decode_all(events)
    assert fast.rows.tolist() == list(range(len(events) - 1))
    _assert_matches_protobuf(buf, result, fast)
    assert fast.step.tolist() == [0, -5, 2**62, 3, 4, 5]


def test_fast_decoder_leaves_other_shapes_to_protobuf():
    with_meta = tw.scalar_event("m", 1, 1.0)
    with_meta.summary.value[0].metadata.display_name = "shown"
    two_values = tw.scalar_event("a", 1, 1.0)
    two_values.summary.value.add(tag="b", simple_value=2.0)
    long_tag = tw.scalar_event("y" * (scalar_fast.MAX_FAST_TAG_BYTES + 1), 1, 1.0)
    tensor_with_metadata = tw.tf2_scalar_events("t", [1.0])[0]
    plain = tw.scalar_event("ok", 9, 9.0)
    vector = tw.tensor_event("v", 1, tensor_util.make_tensor_proto(np.ones(2, np.float32)), None)
    integer = tw.tensor_event("i", 1, tensor_util.make_tensor_proto(np.int64(3)), None)
    text = tw.tensor_event("s", 1, tensor_util.make_tensor_proto(b"word"), None)
    events = [with_meta, two_values, long_tag, tensor_with_metadata, plain]
    events += [event_pb2.Event(file_version="v"), vector, integer, text]
    buf, result, fast = _decode_all(events)
    assert fast.rows.tolist() == [4]
    assert fast.tags[fast.tag_codes[0]] == "ok" and fast.value.tolist() == [9.0]


@pytest.mark.parametrize("content", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_decoder_reads_tf2_scalar_tensors(dtype, content):
    values = [0.1, -2.5, float("nan"), 1e30 if dtype == np.float32 else 1e300]
    events = tw.tf2_scalar_events("epoch/loss", values, dtype=dtype, content=content)[1:]
    no_shape = tw.tf2_scalar_events("x", [4.0], dtype=dtype, content=content)[0]
    no_shape.summary.value[0].ClearField("metadata")
    no_shape.summary.value[0].tensor.ClearField("tensor_shape")
    buf, result, fast = _decode_all([*events, no_shape])
    assert fast.rows.tolist() == [0, 1, 2, 3]
    assert fast.tensor.all()
    _assert_matches_protobuf(buf, result, fast)
    expected = np.array([*values[1:], 4.0], dtype=dtype).astype(np.float64)
    np.testing.assert_array_equal(fast.value, expected)


def test_fast_decoder_leaves_invalid_utf8_tags_to_protobuf():
    good = tw.scalar_event("ab", 1, 1.0).SerializeToString()
    bad = good.replace(b"ab", b"a\xff")
    buf = tw.frame(good) + tw.frame(bad)
    result = tfrecord.scan_records(buf)
    fast = scalar_fast.decode_scalar_events(buf, result.starts, result.ends)
    assert fast.rows.tolist() == [0]


def _generated_event(tag: str, step: int, value: float, wall: float, form: str):
    if form == "simple":
        return tw.scalar_event(tag, step, value, wall)
    dtype = np.float32 if form.startswith("f32") else np.float64
    event = tw.tf2_scalar_events(tag, [value], dtype=dtype, content=form.endswith("c"))[0]
    event.summary.value[0].ClearField("metadata")  # as on every event after a tag's first
    event.step, event.wall_time = step, wall
    return event


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=40),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.floats(width=32),
            st.floats(),
            st.sampled_from(["simple", "f32", "f32c", "f64", "f64c"]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_fast_decoder_equals_protobuf_on_generated_events(items):
    events = [_generated_event(*item) for item in items]
    buf, result, fast = _decode_all(events)
    assert fast.rows.tolist() == list(range(len(events)))
    assert fast.tensor.tolist() == [form != "simple" for *_, form in items]
    _assert_matches_protobuf(buf, result, fast)


# --- fuzzing ----------------------------------------------------------------------------


def _check_invariants(buf: bytes, result: tfrecord.ScanResult, base: int = 0) -> None:
    """What every scan promises, whatever the input."""
    assert base <= result.next_offset <= base + len(buf)
    assert result.starts.size == result.ends.size == result.indexes.size
    assert np.all(np.diff(result.indexes) > 0)
    for s, e in zip(result.starts.tolist(), result.ends.tolist(), strict=True):
        assert tw.HEADER <= s <= e <= len(buf) - tw.FOOTER
        assert tw.masked(buf[s:e]) == struct.unpack_from("<I", buf, e)[0]
    for finding in result.findings + result.status:
        assert finding.message and finding.severity in ("error", "warning", "info")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_never_raise(data):
    result = tfrecord.scan_records(data)
    _check_invariants(data, result)
    fast = scalar_fast.decode_scalar_events(data, result.starts, result.ends)
    assert fast.rows.size <= result.count


_VALID = tw.frame_with_tensorboard(
    _generated_event(f"t{i % 3}", i, i / 4, 1.7e9 + i, form).SerializeToString()
    for i, form in enumerate(["simple", "f32", "f32c", "f64", "f64c", "simple"] * 2)
)
_PAYLOADS = set(tfrecord.payloads(_VALID, tfrecord.scan_records(_VALID)))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8
    ),
    st.integers(0, len(_VALID)),
    st.binary(max_size=40),
)
def test_mutated_files_yield_only_original_records(flips, cut, inserted):
    data = bytearray(_VALID)
    for pos, value in flips:
        data[pos] = value
    data = bytes(data[:cut]) + inserted + bytes(data[cut:])
    result = tfrecord.scan_records(data)
    _check_invariants(data, result)
    got = tfrecord.payloads(data, result)
    assert set(got) <= _PAYLOADS | {inserted}
    fast = scalar_fast.decode_scalar_events(data, result.starts, result.ends)
    _assert_matches_protobuf(data, result, fast)


def test_summary_protos_used_here_are_the_tensorboard_ones():
    # guards the field numbers the fast path relies on (tag=1, simple_value=2, summary=5)
    value = summary_pb2.Summary.Value.DESCRIPTOR
    event = event_pb2.Event.DESCRIPTOR
    assert (value.fields_by_name["tag"].number, value.fields_by_name["simple_value"].number) == (
        1,
        2,
    )
    assert (event.fields_by_name["wall_time"].number, event.fields_by_name["step"].number) == (1, 2)
    assert event.fields_by_name["summary"].number == 5


def test_many_data_crc_mismatches_are_listed_up_to_a_cap_then_counted():
    whole = bytearray(_file(300))
    for offset in tw.record_offsets(bytes(whole))[::2]:  # every other record damaged
        whole[offset + tw.HEADER] ^= 0xFF
    buf = bytes(whole)
    result = tfrecord.scan_records(buf)
    assert _steps(buf, result) == list(range(1, 300, 2))
    crc = [f for f in result.findings if f.kind == FindingKind.DATA_CRC_MISMATCH]
    assert len(crc) == tfrecord.MAX_REPORTED_RECORDS + 1
    assert [f.record for f in crc[:3]] == [0, 2, 4]
    assert crc[-1].message.startswith("50 more records failed their data CRC")
    assert "150 in all" in crc[-1].message
