"""The TFRecord framing: walking record headers, checking both CRCs, resyncing.

Each record on disk is::

    uint64 length (little-endian)
    uint32 masked CRC32C of the 8 length bytes
    bytes  data[length]
    uint32 masked CRC32C of data

with the CRCs of :mod:`.crc`.

:func:`frame_segment` walks headers from a position while their length CRCs hold. Event
files repeat a few record lengths in a fixed cycle (one record per tag per step), so after
a short exact walk it predicts the next thousands of header positions from that cycle and
checks them all at once with numpy: a predicted record is taken only when the length
stored at its header is the predicted one and the stored length CRC is the one already
verified for that length, which is exactly the test the one-by-one walk makes. The first
record that does not match goes back to the one-by-one walk, which decides every stop.
The data CRC of every record is then computed and compared.

:func:`find_next_record` is the resync scan used after a damaged header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from runreview.sources.tensorboard.tfrecord.crc import crc32c_of_ranges, mask_crcs, masked_crc32c

HEADER_BYTES = 12
FOOTER_BYTES = 4
#: Records declaring more than this are refused before anything is allocated.
MAX_RECORD_BYTES = 256 * 1024 * 1024
#: Most bytes examined per step of a resync scan (bounds its temporary memory).
RESYNC_WINDOW = 4 * 1024 * 1024

#: Why a walk stopped: end of the buffer, incomplete last record, bad length CRC, length
#: above the cap.
STOP_END, STOP_TAIL, STOP_HEADER, STOP_CAP = "end", "tail", "header", "cap"

HEADER = struct.Struct("<QI")
_FRAMING = HEADER_BYTES + FOOTER_BYTES
#: Records walked one by one before a prediction is tried (and the longest cycle found).
_WALK_STEP = 64
_MAX_CYCLE = 32
_FIRST_BLOCK, _MAX_BLOCK = 1024, 1 << 16


ZERO_HEADER_IS_INVALID = masked_crc32c(bytes(8)) != 0


def unaligned_view(buf: bytes, dtype: str) -> np.ndarray:
    """A read-only view of ``buf`` with one ``dtype`` value starting at every byte offset.

    ``unaligned_view(buf, "<u4")[i]`` is the little-endian uint32 at byte ``i``; indexing
    it with an array of offsets gathers many fields in one step, with no copy of ``buf``.
    """
    size = np.dtype(dtype).itemsize
    count = max(len(buf) - size + 1, 0)
    if count == 0:
        return np.zeros(0, dtype=dtype)
    return np.ndarray((count,), dtype=dtype, buffer=buf, offset=0, strides=(1,))


# --- walking headers --------------------------------------------------------------------


class _Walk:
    """State of one header walk over ``buf`` from a position."""

    def __init__(self, buf: bytes, pos: int):
        self.buf = buf
        self.n = len(buf)
        self.pos = pos
        self.known: dict[int, int] = {}  # length -> masked CRC of its 8 bytes
        self.parts: list[np.ndarray] = []  # data starts, in order
        self.lengths: list[int] = []  # lengths of the records walked one by one, recent
        self.u64 = unaligned_view(buf, "<u8")
        self.u32 = unaligned_view(buf, "<u4")

    def one_by_one(self, count: int) -> str | None:
        """Walk at most ``count`` records exactly; the stop reason, or None to go on."""
        buf, n, pos, known = self.buf, self.n, self.pos, self.known
        limit = n - HEADER_BYTES
        unpack = HEADER.unpack_from
        starts: list[int] = []
        lengths: list[int] = []
        reason = None
        while len(starts) < count:
            if pos > limit:
                reason = STOP_END if pos == n else STOP_TAIL
                break
            length, length_crc = unpack(buf, pos)
            if known.get(length) != length_crc:
                if masked_crc32c(buf[pos : pos + 8]) != length_crc:
                    reason = STOP_HEADER
                    break
                if length > MAX_RECORD_BYTES:
                    reason = STOP_CAP
                    break
                known[length] = length_crc
            if pos + _FRAMING + length > n:
                reason = STOP_TAIL
                break
            starts.append(pos + HEADER_BYTES)
            lengths.append(length)
            pos += _FRAMING + length
        self.pos = pos
        self.parts.append(np.array(starts, dtype=np.int64))
        self.lengths = (self.lengths + lengths)[-2 * _MAX_CYCLE :]
        return reason

    def cycle(self) -> list[int] | None:
        """The shortest cycle the recent lengths repeat in, or None."""
        lengths = self.lengths
        for period in range(1, min(_MAX_CYCLE, len(lengths) // 2) + 1):
            if lengths[-period:] == lengths[-2 * period : -period]:
                return lengths[-period:]
        return None

    def predicted(self, pattern: list[int], block: int) -> int:
        """Take the next records predicted from ``pattern`` while they check out.

        Returns how many were predicted and taken.
        """
        reps = -(-block // len(pattern))
        lengths = np.tile(np.array(pattern, dtype=np.int64), reps)[:block]
        expected = np.tile(np.array([self.known[x] for x in pattern], dtype=np.uint32), reps)
        expected = expected[:block]
        after = self.pos + np.cumsum(lengths + _FRAMING)  # where each record ends
        header = after - lengths - _FRAMING
        fits = after <= self.n
        at = np.where(fits, header, 0)
        ok = fits & (self.u64[at] == lengths.astype(np.uint64)) & (self.u32[at + 8] == expected)
        taken = int(np.argmin(ok)) if not ok.all() else block
        if taken:
            self.parts.append(header[:taken] + HEADER_BYTES)
            self.pos = int(after[taken - 1])
        return taken

    def starts(self) -> np.ndarray:
        """Data starts of every record walked."""
        if len(self.parts) == 1:
            return self.parts[0]
        return np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int64)


def walk_headers(buf: bytes, pos: int) -> tuple[np.ndarray, int, str]:
    """Data starts of the records from ``pos`` whose length CRCs hold, where the walk
    stopped (the header of the first record not taken, or the end of ``buf``) and why."""
    walk = _Walk(buf, pos)
    step = _WALK_STEP
    while True:
        reason = walk.one_by_one(step)
        if reason is not None:
            return walk.starts(), walk.pos, reason
        pattern = walk.cycle()
        block, taken = _FIRST_BLOCK, _FIRST_BLOCK
        while pattern is not None and taken == block:
            taken = walk.predicted(pattern, block)
            if taken == block:
                block = min(block * 4, _MAX_BLOCK)
                taken = block
        # a cycle that fails at once suggests an irregular file: walk longer before retrying
        step = _WALK_STEP if taken >= _WALK_STEP else min(step * 2, 4096)


def stored_data_crcs(buf: bytes, ends: np.ndarray) -> np.ndarray:
    """The masked data CRCs stored after each record, as uint64."""
    if ends.size == 0:
        return np.zeros(0, dtype=np.uint64)
    return unaligned_view(buf, "<u4")[ends].astype(np.uint64)


@dataclass
class Segment:
    """Records framed by one uninterrupted header walk: data start and end of each,
    whether its data CRC holds, where the walk stopped and why."""

    starts: np.ndarray
    ends: np.ndarray
    good: np.ndarray
    stop: int
    reason: str


def frame_segment(buf: bytes, pos: int) -> Segment:
    """Walk the records from ``pos`` (see :func:`walk_headers`) and check their data CRCs.

    Each record's end is the next one's start minus the framing.
    """
    starts, stop, reason = walk_headers(buf, pos)
    ends = np.empty_like(starts)
    if starts.size:
        ends[:-1] = starts[1:] - _FRAMING
        ends[-1] = stop - FOOTER_BYTES
    good = mask_crcs(crc32c_of_ranges(buf, starts, ends)) == stored_data_crcs(buf, ends)
    return Segment(starts, ends, good, stop, reason)


# --- resync -----------------------------------------------------------------------------


def record_at(buf: bytes, pos: int) -> bool:
    """True when a complete record with both CRCs valid starts at ``pos``."""
    n = len(buf)
    if pos + HEADER_BYTES > n:
        return False
    length, length_crc = HEADER.unpack_from(buf, pos)
    if length > MAX_RECORD_BYTES or masked_crc32c(buf[pos : pos + 8]) != length_crc:
        return False
    end = pos + HEADER_BYTES + length
    if end + FOOTER_BYTES > n:
        return False
    return masked_crc32c(buf[pos + HEADER_BYTES : end]) == struct.unpack_from("<I", buf, end)[0]


def _resync_candidates(u8: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Positions in [lo, hi) whose 8 length bytes could encode a length below the cap.

    The cap is under 2**32, so the top four length bytes must be zero; an all-zero
    12-byte header is never valid (CRC of zeros is not zero) and is skipped, which keeps
    zero-filled regions cheap.
    """
    window = u8[lo : hi + HEADER_BYTES - 1]
    count = hi - lo
    zero = window == 0
    ok = zero[4 : 4 + count] & zero[5 : 5 + count] & zero[6 : 6 + count] & zero[7 : 7 + count]
    if ZERO_HEADER_IS_INVALID:
        all_zero = ok.copy()
        for k in (0, 1, 2, 3, 8, 9, 10, 11):
            all_zero &= zero[k : k + count]
        ok &= ~all_zero
    return np.flatnonzero(ok) + lo


def find_next_record(buf: bytes, start: int) -> int | None:
    """The first position at or after ``start`` where a complete, CRC-valid record begins.

    Scans in windows of :data:`RESYNC_WINDOW` bytes with a vectorised prefilter, so a
    damaged region costs little even when it is large.
    """
    u8 = np.frombuffer(buf, dtype=np.uint8)
    last = len(buf) - HEADER_BYTES - FOOTER_BYTES  # a record needs at least 16 bytes
    lo, window = start, 4096  # small first: the next record is usually close
    while lo <= last:
        hi = min(lo + window, last + 1)
        for pos in _resync_candidates(u8, lo, hi).tolist():
            if record_at(buf, pos):
                return pos
        lo, window = hi, min(window * 4, RESYNC_WINDOW)
    return None
