"""The vectorised fast path for TensorBoard events that hold one scalar.

:func:`decode_scalar_events` handles the commonest event shapes (one ``simple_value`` per
event, as tensorboardX and torch write it; one scalar float/double tensor per event, as TF2
writes it after the first event of a tag): it decodes the protobuf wire bytes of many
records at once with numpy and leaves every other record to protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runreview.sources.tensorboard.tfrecord.frame import unaligned_view

# --- fast path: events holding one scalar ------------------------------------------------

#: Tags longer than this are left to protobuf (keeps the vectorised tag pass short).
MAX_FAST_TAG_BYTES = 128
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
# Wire tags (field number << 3 | wire type) of the fields the fast path accepts.
_EVENT_WALL_TIME = 0x09  # Event.wall_time = 1, fixed64
_EVENT_STEP = 0x10  # Event.step = 2, varint
_EVENT_SUMMARY = 0x2A  # Event.summary = 5, length-delimited
_SUMMARY_VALUE = 0x0A  # Summary.value = 1, length-delimited
_VALUE_TAG = 0x0A  # Summary.Value.tag = 1, length-delimited
_VALUE_SIMPLE = 0x15  # Summary.Value.simple_value = 2, fixed32
_VALUE_TENSOR = 0x42  # Summary.Value.tensor = 8, length-delimited
_TENSOR_DTYPE = 0x08  # TensorProto.dtype = 1, varint
_TENSOR_SHAPE = 0x12  # TensorProto.tensor_shape = 2, length-delimited
_TENSOR_CONTENT = 0x22  # TensorProto.tensor_content = 4, bytes
_TENSOR_FLOATS = 0x2A  # TensorProto.float_val = 5, packed
_TENSOR_DOUBLES = 0x32  # TensorProto.double_val = 6, packed
_DT_FLOAT, _DT_DOUBLE = 1, 2


@dataclass
class ScalarEvents:
    """Events decoded by :func:`decode_scalar_events`.

    ``rows`` are positions in the ``starts``/``ends`` arrays that were given; the other
    arrays are aligned with ``rows``. ``tags[tag_codes[i]]`` is the tag of row ``i``.
    ``tensor[i]`` is True when the value came from a scalar tensor rather than a
    ``simple_value``: such a point is a scalar only if its tag's plugin is "scalars"
    (which the caller knows from the tag's metadata in an earlier record).
    """

    rows: np.ndarray
    wall_time: np.ndarray
    step: np.ndarray
    value: np.ndarray
    tag_codes: np.ndarray
    tags: list[str]
    tensor: np.ndarray


class _Rows:
    """Candidate records and a read position in each, narrowed as checks fail."""

    def __init__(self, buf: bytes, starts: np.ndarray, ends: np.ndarray):
        self.u8 = np.frombuffer(buf, dtype=np.uint8)
        self.last = max(len(buf) - 1, 0)
        self.rows = np.arange(starts.size, dtype=np.int64)
        self.pos = starts.astype(np.int64, copy=True)
        self.end = ends.astype(np.int64, copy=True)
        self.cols: dict[str, np.ndarray] = {}

    def byte(self) -> np.ndarray:
        """The byte at each read position (0 where the position is at or past the end)."""
        return self.byte_at(self.pos)

    def byte_at(self, at: np.ndarray) -> np.ndarray:
        """The byte at ``at`` in each row (0 where that is at or past the record's end)."""
        got = self.u8[np.minimum(at, self.last)]
        return np.where(at < self.end, got, 0)

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where ``mask`` is False."""
        if mask.all():
            return
        self.rows, self.pos, self.end = self.rows[mask], self.pos[mask], self.end[mask]
        self.cols = {k: v[mask] for k, v in self.cols.items()}

    def varint(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decode a varint at ``at`` in every row: (value uint64, byte length, ok)."""
        first = self.u8[np.minimum(at, self.last)]
        inside = at < self.end
        done = inside & (first < 0x80)
        value = (first & 0x7F).astype(np.uint64)
        length = done.astype(np.int64)
        todo = np.flatnonzero(inside & ~done)  # most varints here are one byte long
        for k in range(1, 10):
            if todo.size == 0:
                break
            q = at[todo] + k
            inside = q < self.end[todo]
            b = self.u8[np.minimum(q, self.last)].astype(np.uint64)
            value[todo] |= (b & np.uint64(0x7F)) << np.uint64(7 * k)
            finished = inside & (b < 0x80)
            if k == 9:  # protobuf would drop bits past 64; leave such oddities to it
                finished &= b <= 1
            length[todo[finished]] = k + 1
            done[todo[finished]] = True
            todo = todo[inside & ~finished]
        return value, length, done


def _optional_wall_time(r: _Rows, f8: np.ndarray) -> None:
    has = (r.byte() == _EVENT_WALL_TIME) & (r.pos + 9 <= r.end)
    wall = np.zeros(r.pos.size, dtype=np.float64)
    wall[has] = f8[r.pos[has] + 1]
    r.cols["wall"] = wall
    r.pos = r.pos + 9 * has


def _optional_step(r: _Rows) -> None:
    has = r.byte() == _EVENT_STEP
    value, length, ok = r.varint(r.pos + 1)
    r.cols["step"] = np.where(has, value.view(np.int64), 0)
    r.pos = r.pos + np.where(has, 1 + length, 0)
    r.keep(~has | ok)


def _field_to_end(r: _Rows, wire_tag: int) -> None:
    """Require a length-delimited field that runs exactly to the end of the record."""
    r.keep(r.byte() == wire_tag)
    value, length, ok = r.varint(r.pos + 1)
    r.pos = r.pos + 1 + length
    rest = (r.end - r.pos).astype(np.uint64)
    r.keep(ok & (value == rest))


def _tag(r: _Rows) -> None:
    """Require a non-empty ``tag`` of at most MAX_FAST_TAG_BYTES; keep where it is."""
    r.keep(r.byte() == _VALUE_TAG)
    value, length, ok = r.varint(r.pos + 1)
    r.pos = r.pos + 1 + length
    tag_len = np.where(ok, value, np.uint64(0)).astype(np.int64)
    r.cols["tag_len"] = tag_len
    r.keep(ok & (value <= MAX_FAST_TAG_BYTES) & (r.pos + tag_len < r.end))
    r.cols["tag_start"] = r.pos.copy()
    r.pos = r.pos + r.cols["tag_len"]


def _tensor_value(r: _Rows, f4: np.ndarray, f8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the rest is ``tensor { dtype: float|double, [shape {}], one value }`` running
    to the end of the record: (ok, value). The value may be in tensor_content (TF2's C++
    writer) or in a one-element packed float_val/double_val (Python's make_tensor_proto).
    """
    ok = r.byte() == _VALUE_TENSOR
    size, length, good = r.varint(r.pos + 1)
    at = r.pos + 1 + length
    ok &= good & (size == (r.end - at).astype(np.uint64))
    dtype = r.byte_at(at + 1)
    ok &= (r.byte_at(at) == _TENSOR_DTYPE) & ((dtype == _DT_FLOAT) | (dtype == _DT_DOUBLE))
    at = at + 2
    shape = (r.byte_at(at) == _TENSOR_SHAPE) & (r.byte_at(at + 1) == 0)  # rank 0
    at = at + 2 * shape
    field, width = r.byte_at(at), r.byte_at(at + 1)
    f32 = (
        (dtype == _DT_FLOAT)
        & (width == 4)
        & ((field == _TENSOR_CONTENT) | (field == _TENSOR_FLOATS))
    )
    f64 = (
        (dtype == _DT_DOUBLE)
        & (width == 8)
        & ((field == _TENSOR_CONTENT) | (field == _TENSOR_DOUBLES))
    )
    ok &= (f32 | f64) & (at + 2 + width == r.end)
    value = np.zeros(r.pos.size, dtype=np.float64)
    value[ok & f32] = f4[at[ok & f32] + 2]
    value[ok & f64] = f8[at[ok & f64] + 2]
    return ok, value


def _value(r: _Rows, f4: np.ndarray, f8: np.ndarray) -> None:
    """Require ``simple_value`` or a scalar float/double tensor ending the record."""
    simple = (r.byte() == _VALUE_SIMPLE) & (r.pos + 5 == r.end)
    tensor, value = _tensor_value(r, f4, f8)
    value[simple] = f4[r.pos[simple] + 1]
    r.cols["value"] = value
    r.cols["tensor"] = tensor
    r.keep(simple | tensor)


def _tag_words(u64: np.ndarray, start: np.ndarray, length: np.ndarray, k: int) -> np.ndarray:
    """The k-th 8-byte word of every tag, bytes past its end zeroed."""
    word = u64[np.minimum(start + 8 * k, u64.size - 1)]  # past-the-tag words are masked
    remaining = np.clip(length - 8 * k, 0, 8).astype(np.uint64)
    keep_bits = np.where(
        remaining >= 8,
        np.uint64(0xFFFFFFFFFFFFFFFF),
        (np.uint64(1) << (remaining * np.uint64(8))) - np.uint64(1),
    )
    return word & keep_bits


def _tag_codes(buf: bytes, r: _Rows) -> tuple[np.ndarray, list[str]]:
    """Group rows by tag bytes (hash, then exact check); rows that fail are dropped."""
    start, length = r.cols["tag_start"], r.cols["tag_len"]
    u64 = unaligned_view(buf, "<u8")
    words = max(int(length.max(initial=0) + 7) // 8, 1)
    h = _FNV_OFFSET ^ length.astype(np.uint64)
    for k in range(words):
        h = (h ^ _tag_words(u64, start, length, k)) * _FNV_PRIME
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    same = length == length[first][inverse]
    for k in range(words):
        same &= _tag_words(u64, start, length, k) == _tag_words(
            u64, start[first][inverse], length, k
        )
    names, valid = _tag_names(buf, start[first], length[first])
    ok = same & valid[inverse]
    r.cols["code"] = inverse.astype(np.int32)
    r.keep(ok)
    return r.cols["code"], names


def _tag_names(buf: bytes, starts: np.ndarray, lengths: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Decode each distinct tag; tags that are not UTF-8 are left to protobuf."""
    names: list[str] = []
    valid = np.ones(starts.size, dtype=bool)
    for i, (s, n) in enumerate(zip(starts.tolist(), lengths.tolist(), strict=True)):
        try:
            names.append(buf[s : s + n].decode("utf-8"))
        except UnicodeDecodeError:
            names.append("")
            valid[i] = False
    return names, valid


def _no_scalars() -> ScalarEvents:
    empty = np.zeros(0, dtype=np.int64)
    return ScalarEvents(
        rows=empty,
        wall_time=np.zeros(0, dtype=np.float64),
        step=empty,
        value=np.zeros(0, dtype=np.float64),
        tag_codes=np.zeros(0, dtype=np.int32),
        tags=[],
        tensor=np.zeros(0, dtype=bool),
    )


def decode_scalar_events(buf: bytes, starts: np.ndarray, ends: np.ndarray) -> ScalarEvents:
    """Decode, all at once, the records that are exactly an Event with one scalar value.

    Accepted wire layouts (the canonical field order every protobuf serializer emits)::

        [wall_time] [step] summary { value { tag, simple_value } }
        [wall_time] [step] summary { value { tag, tensor { dtype, [shape {}], number } } }

    with nothing else in the record (so no metadata), a non-empty tag of at most
    :data:`MAX_FAST_TAG_BYTES` bytes, and a float or double tensor of rank 0. Such a
    record parses with protobuf to exactly the fields returned here; any other record
    (metadata, other tensors, several values, other field orders, invalid UTF-8 tags) is
    not in ``rows`` and must be parsed by protobuf.
    """
    r = _Rows(buf, starts, ends)
    if r.rows.size == 0 or not buf:
        return _no_scalars()
    _optional_wall_time(r, unaligned_view(buf, "<f8"))
    _optional_step(r)
    _field_to_end(r, _EVENT_SUMMARY)
    _field_to_end(r, _SUMMARY_VALUE)
    _tag(r)
    _value(r, unaligned_view(buf, "<f4"), unaligned_view(buf, "<f8"))
    if r.rows.size == 0:
        return _no_scalars()
    codes, names = _tag_codes(buf, r)
    return ScalarEvents(
        rows=r.rows,
        wall_time=r.cols["wall"],
        step=r.cols["step"],
        value=r.cols["value"],
        tag_codes=codes,
        tags=names,
        tensor=r.cols["tensor"],
    )
