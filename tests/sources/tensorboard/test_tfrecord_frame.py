"""The predicted header walk gives exactly what a record-by-record walk gives, on regular
files (where it predicts), irregular ones, and damage inside a predicted stretch."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runreview.sources.tensorboard.tfrecord import frame as fr
from tests.sources import tb_writers as tw


def reference_walk(buf: bytes, pos: int = 0) -> tuple[list[int], int, str]:
    """Data starts, stop position and reason, one record at a time (written out here
    independently of the product code)."""
    starts = []
    n = len(buf)
    while True:
        if pos + 12 > n:
            return starts, pos, "end" if pos == n else "tail"
        length, length_crc = struct.unpack_from("<QI", buf, pos)
        if tw.masked(buf[pos : pos + 8]) != length_crc:
            return starts, pos, "header"
        if length > fr.MAX_RECORD_BYTES:
            return starts, pos, "cap"
        if pos + 16 + length > n:
            return starts, pos, "tail"
        starts.append(pos + 12)
        pos += 16 + length


def _walk(buf: bytes, pos: int = 0) -> tuple[list[int], int, str]:
    starts, stop, reason = fr.walk_headers(buf, pos)
    return starts.tolist(), stop, reason


def _regular(steps: int, tags: int = 7) -> bytes:
    """Records whose lengths repeat with the tags, and change as steps grow longer."""
    events = [tw.scalar_event(f"tag{k}", s, s * 0.5 + k) for s in range(steps) for k in range(tags)]
    return b"".join(tw.frame(e.SerializeToString()) for e in events)


@pytest.fixture(scope="module")
def regular() -> bytes:
    return _regular(3000)  # 21,000 records; step varints grow at 128 (and cross 2 blocks)


def test_regular_file_is_walked_exactly(regular):
    want = reference_walk(regular)
    assert len(want[0]) == 21_000 and want[1:] == (len(regular), "end")
    assert _walk(regular) == want


def test_irregular_lengths_are_walked_exactly():
    rng = np.random.default_rng(3)
    payloads = [rng.bytes(int(n)) for n in rng.integers(0, 300, 5000)]
    buf = b"".join(tw.frame(p) for p in payloads)
    assert _walk(buf) == reference_walk(buf)


@pytest.mark.parametrize("where", [1, 500, 5_000, 20_999])
def test_bad_header_inside_a_predicted_stretch_stops_exactly_there(regular, where):
    offset = tw.record_offsets(regular)[where]
    buf = bytearray(regular)
    buf[offset + 9] ^= 0x40  # the stored length CRC
    got = _walk(bytes(buf))
    assert got == reference_walk(bytes(buf))
    assert got[1:] == (offset, "header") and len(got[0]) == where


def test_different_length_record_inside_a_stretch_is_taken_by_the_exact_walk(regular):
    offsets = tw.record_offsets(regular)
    odd = tw.frame(tw.scalar_event("a-much-longer-tag-than-the-others", 1, 2.0).SerializeToString())
    buf = regular[: offsets[7000]] + odd + regular[offsets[7000] :]
    got = _walk(buf)
    assert got == reference_walk(buf) and len(got[0]) == 21_001


@pytest.mark.parametrize("cut", [1, 11, 12, 30])
def test_torn_last_record_is_a_tail(regular, cut):
    buf = regular[:-cut]
    got = _walk(buf)
    assert got == reference_walk(buf) and got[2] == "tail"


def test_length_above_the_cap_inside_a_stretch(regular):
    offset = tw.record_offsets(regular)[9000]
    header = struct.pack("<Q", fr.MAX_RECORD_BYTES + 1)
    buf = regular[:offset] + header + struct.pack("<I", tw.masked(header)) + regular[offset:]
    assert _walk(buf) == reference_walk(buf) == (_walk(buf)[0], offset, "cap")


def test_data_crc_of_every_predicted_record_is_checked(regular):
    offsets = tw.record_offsets(regular)
    buf = bytearray(regular)
    for i in (3, 4000, 20_000):
        buf[offsets[i] + 14] ^= 0x01  # inside the data
    segment = fr.frame_segment(bytes(buf), 0)
    assert np.flatnonzero(~segment.good).tolist() == [3, 4000, 20_000]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.integers(1, 400),
    tags=st.integers(1, 40),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), max_size=3),
    cut=st.integers(0, 40),
    start=st.integers(0, 3),
)
def test_predicted_walk_equals_the_exact_walk(steps, tags, flips, cut, start):
    buf = bytearray(_regular(steps, tags))
    for where, bit in flips:
        buf[where % len(buf)] ^= 1 << bit
    data = bytes(buf[: len(buf) - min(cut, len(buf))])
    pos = tw.record_offsets(data)[start] if len(tw.record_offsets(data)) > start else 0
    assert _walk(data, pos) == reference_walk(data, pos)
