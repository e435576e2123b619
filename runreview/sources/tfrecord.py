"""Reading the TFRecord framing of TensorBoard event files without trusting it.

Each record on disk is::

    uint64 length (little-endian)
    uint32 masked CRC32C of the 8 length bytes
    bytes  data[length]
    uint32 masked CRC32C of data

where ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2**32)``.

:func:`scan_records` walks a buffer holding a file (or the new bytes of a growing file),
checks both CRCs of every record and returns where the good records are, plus findings
for everything that could not be read. It never stops silently:

- a data-CRC mismatch skips that record's payload (its length CRC is valid, so the next
  header is where the length says) and reading goes on; later records are flagged;
- a length-CRC mismatch makes the rest "unreadable from byte N"; a resync scan then looks
  for the next position where both CRCs hold and, if it finds one, reading goes on there;
- a length above :data:`MAX_RECORD_BYTES` is rejected without allocating anything;
- a last record cut short is an "incomplete tail", not corruption: ``next_offset`` points
  at its header, so a later read of the grown file returns it exactly once.

:func:`decode_scalar_events` is the fast path for the commonest event shapes (one
``simple_value`` per event, as tensorboardX and torch write it; one scalar float/double
tensor per event, as TF2 writes it after the first event of a tag): it decodes the
protobuf wire bytes of many records at once with numpy and leaves every other record to
protobuf.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

import google_crc32c
import numpy as np

from runreview.contract import SEVERITY_ERROR, SEVERITY_INFO, SEVERITY_WARNING, Finding

# --- constants --------------------------------------------------------------------------

HEADER_BYTES = 12
FOOTER_BYTES = 4
#: Records declaring more than this are refused before anything is allocated.
MAX_RECORD_BYTES = 256 * 1024 * 1024
MASK_DELTA = 0xA282EAD8
#: Most bytes examined per step of a resync scan (bounds its temporary memory).
RESYNC_WINDOW = 4 * 1024 * 1024
#: Data-CRC mismatches reported one by one per scan; the rest are counted in one finding.
MAX_REPORTED_RECORDS = 100

# Finding kinds (``Finding.kind``), one per way a file can be damaged.
KIND_EMPTY = "empty_file"
KIND_NOT_EVENT_FILE = "not_event_file"
KIND_COMPRESSED = "compressed_file"
KIND_INCOMPLETE_TAIL = "incomplete_tail"
KIND_ZERO_TAIL = "zero_filled_tail"
KIND_DATA_CRC = "data_crc_mismatch"
KIND_UNREADABLE = "unreadable"
KIND_LENGTH_CAP = "record_too_long"
KIND_RESYNC = "resync"
KIND_AFTER_CORRUPT = "after_corrupt_record"
KIND_IO = "io_error"

_HEADER = struct.Struct("<QI")
_U32_MASK = 0xFFFFFFFF
_CAP_LABEL = f"{MAX_RECORD_BYTES // (1024 * 1024)} MiB"
_STOP_END, _STOP_TAIL, _STOP_HEADER, _STOP_CAP = "end", "tail", "header", "cap"


def masked_crc32c(data: bytes) -> int:
    """The masked CRC32C that TFRecord stores after the length and after the data."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & _U32_MASK


_ZERO_HEADER_IS_INVALID = masked_crc32c(bytes(8)) != 0


# --- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanContext:
    """Where the bytes came from, used to name the file in findings."""

    path: str | None = None
    source_uri: str = ""
    run_id: str | None = None

    def finding(
        self,
        severity: str,
        kind: str,
        message: str,
        offset: int | None = None,
        record: int | None = None,
    ) -> Finding:
        """A finding about this file."""
        return Finding(
            severity=severity,
            source_uri=self.source_uri,
            message=message,
            path=self.path,
            offset=offset,
            record=record,
            run_id=self.run_id,
            kind=kind,
        )


@dataclass
class ScanResult:
    """What :func:`scan_records` found in one buffer.

    ``starts``/``ends`` are positions *in the scanned buffer* of the data of every record
    whose both CRCs hold (``buf[starts[i]:ends[i]]``); add ``base_offset`` for file
    offsets. ``indexes`` are record numbers in the file (counted from its first record;
    after a resync they count from the resync point, see the resync finding).
    ``after_corrupt`` marks records read after a damaged one.

    ``findings`` are about bytes before ``next_offset`` and stay true when the file grows;
    ``status`` is about the bytes from ``next_offset`` on (incomplete tail, unreadable
    rest, empty file) and is replaced by the next scan. Continue a growing file with
    ``scan_records(new_bytes, base_offset=next_offset, first_index=next_index,
    after_corrupt=corrupt)``.
    """

    base_offset: int
    starts: np.ndarray
    ends: np.ndarray
    indexes: np.ndarray
    after_corrupt: np.ndarray
    next_offset: int
    next_index: int
    corrupt: bool
    findings: list[Finding] = field(default_factory=list)
    status: list[Finding] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Number of good records."""
        return int(self.starts.size)


def payloads(buf: bytes, result: ScanResult) -> list[bytes]:
    """The data of every good record of ``result`` (copies; for small scans and tests)."""
    return [buf[s:e] for s, e in zip(result.starts.tolist(), result.ends.tolist(), strict=True)]


# --- framing ----------------------------------------------------------------------------


def _frame(buf: bytes, pos: int, starts: list[int], crcs: list[int]) -> tuple[int, str]:
    """Walk records from ``pos`` while their length CRCs hold; the hot loop.

    Appends each record's data start and the raw CRC32C of its data; data CRCs are
    compared afterwards in one vectorised step, and each record's end is the next one's
    start minus the framing. Returns where it stopped (the header of the first record
    not taken, or the end of ``buf``) and why.
    """
    n = len(buf)
    limit = n - HEADER_BYTES
    crc = google_crc32c.value
    unpack = _HEADER.unpack_from
    add_start, add_crc = starts.append, crcs.append
    known: dict[int, int] = {}  # length -> masked CRC of its 8 bytes (same length, same CRC)
    while pos <= limit:
        length, length_crc = unpack(buf, pos)
        if known.get(length) != length_crc:
            c = crc(buf[pos : pos + 8])
            if (((c >> 15) | (c << 17)) + MASK_DELTA) & _U32_MASK != length_crc:
                return pos, _STOP_HEADER
            if length > MAX_RECORD_BYTES:
                return pos, _STOP_CAP
            known[length] = length_crc
        start = pos + HEADER_BYTES
        pos = start + length + FOOTER_BYTES
        if pos > n:
            return start - HEADER_BYTES, _STOP_TAIL
        add_start(start)
        add_crc(crc(buf[start : pos - FOOTER_BYTES]))
    return pos, (_STOP_END if pos == n else _STOP_TAIL)


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


def _stored_data_crcs(buf: bytes, ends: np.ndarray) -> np.ndarray:
    """The masked data CRCs stored after each record, as uint64."""
    if ends.size == 0:
        return np.zeros(0, dtype=np.uint64)
    return unaligned_view(buf, "<u4")[ends].astype(np.uint64)


def _mask_crcs(crcs: np.ndarray) -> np.ndarray:
    """Vectorised TFRecord CRC masking of uint64 CRC values."""
    return ((((crcs >> 15) | (crcs << 17)) & _U32_MASK) + MASK_DELTA) & _U32_MASK


@dataclass
class _Segment:
    """Records framed by one uninterrupted run of :func:`_frame`."""

    starts: np.ndarray
    ends: np.ndarray
    good: np.ndarray
    stop: int
    reason: str


def _frame_segment(buf: bytes, pos: int) -> _Segment:
    starts: list[int] = []
    crcs: list[int] = []
    stop, reason = _frame(buf, pos, starts, crcs)
    s = np.array(starts, dtype=np.int64)
    e = np.empty_like(s)
    if s.size:
        e[:-1] = s[1:] - HEADER_BYTES - FOOTER_BYTES
        e[-1] = stop - FOOTER_BYTES
    good = _mask_crcs(np.array(crcs, dtype=np.uint64)) == _stored_data_crcs(buf, e)
    return _Segment(s, e, good, stop, reason)


# --- resync -----------------------------------------------------------------------------


def _record_at(buf: bytes, pos: int) -> bool:
    """True when a complete record with both CRCs valid starts at ``pos``."""
    n = len(buf)
    if pos + HEADER_BYTES > n:
        return False
    length, length_crc = _HEADER.unpack_from(buf, pos)
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
    if _ZERO_HEADER_IS_INVALID:
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
            if _record_at(buf, pos):
                return pos
        lo, window = hi, min(window * 4, RESYNC_WINDOW)
    return None


# --- classification of a bad start --------------------------------------------------------


def compression_of(head: bytes) -> str | None:
    """``"gzip"`` or ``"zlib"`` when ``head`` starts like a compressed stream, else None."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib"
    return None


def _bad_start_status(buf: bytes, ctx: ScanContext) -> Finding | None:
    """A finding when a file does not even start with a valid record header."""
    kind = compression_of(buf[:2])
    if kind:
        return ctx.finding(
            SEVERITY_ERROR,
            KIND_COMPRESSED,
            f"compressed event files not supported ({kind} stream, {len(buf)} bytes); "
            "decompress it next to the original to read it",
            offset=0,
        )
    return None


# --- the scan ---------------------------------------------------------------------------


class _Scan:
    """State of one :func:`scan_records` call (keeps the helpers small)."""

    def __init__(self, buf: bytes, base: int, first_index: int, corrupt: bool, ctx: ScanContext):
        self.buf = buf
        self.base = base
        self.index = first_index
        self.corrupt = corrupt
        self.ctx = ctx
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.findings: list[Finding] = []
        self.status: list[Finding] = []
        self.bad_records = 0

    def add_segment(self, seg: _Segment) -> None:
        """Keep the good records of ``seg``; report every data-CRC mismatch."""
        count = seg.starts.size
        indexes = np.arange(self.index, self.index + count, dtype=np.int64)
        flags = np.full(count, self.corrupt, dtype=bool)
        bad = np.flatnonzero(~seg.good)
        for i in bad.tolist():
            if self.bad_records < MAX_REPORTED_RECORDS:
                self._report_data_crc(int(seg.starts[i]), int(seg.ends[i]), self.index + i)
            self.bad_records += 1
        if bad.size:
            flags[bad[0] + 1 :] = True
            self._report_after_corrupt(int(indexes[bad[0]]), count - int(bad[0]) - 1, bad.size)
            self.corrupt = True
        keep = seg.good
        self.parts.append((seg.starts[keep], seg.ends[keep], indexes[keep], flags[keep]))
        self.index += count

    def _report_data_crc(self, start: int, end: int, record: int) -> None:
        offset = self.base + start - HEADER_BYTES
        self.findings.append(
            self.ctx.finding(
                SEVERITY_ERROR,
                KIND_DATA_CRC,
                f"data CRC mismatch in record {record} at byte {offset} "
                f"({end - start} bytes): record skipped, reading went on (length CRC valid)",
                offset=offset,
                record=record,
            )
        )

    def _report_after_corrupt(self, record: int, following: int, bad: int) -> None:
        if following <= 0:
            return
        self.findings.append(
            self.ctx.finding(
                SEVERITY_WARNING,
                KIND_AFTER_CORRUPT,
                f"{following} records after corrupt record {record} were read "
                f"(each with valid CRCs) and are flagged as following a corrupt record; "
                f"{bad} record(s) in this stretch failed their data CRC",
                record=record,
            )
        )

    def stop_finding(self, pos: int, reason: str, recovered: int | None) -> Finding:
        """The finding for a stop at ``pos`` that is not a plain end or tail."""
        offset = self.base + pos
        rest = len(self.buf) - pos
        if reason == _STOP_CAP:
            length = _HEADER.unpack_from(self.buf, pos)[0]
            what = (
                f"record {self.index} at byte {offset} declares length {length}, above the "
                f"cap of {_CAP_LABEL} (record length exceeds cap); not read"
            )
            kind = KIND_LENGTH_CAP
        else:
            what = f"length CRC mismatch at byte {offset} (record {self.index})"
            kind = KIND_UNREADABLE
        before = f"{self.index} records before it"
        if recovered is None:
            tail = "no valid record found after it (resync scan)"
        else:
            tail = f"resync: next valid record at byte {self.base + recovered}, reading went on"
        message = f"unreadable from byte {offset} ({rest} bytes): {what}; {before}; {tail}"
        return self.ctx.finding(SEVERITY_ERROR, kind, message, offset=offset, record=self.index)

    def result(self, next_pos: int) -> ScanResult:
        """Assemble the result; ``next_pos`` is where the next scan should begin."""
        if self.bad_records > MAX_REPORTED_RECORDS:
            more = self.bad_records - MAX_REPORTED_RECORDS
            self.findings.append(
                self.ctx.finding(
                    SEVERITY_ERROR,
                    KIND_DATA_CRC,
                    f"{more} more records failed their data CRC and were skipped "
                    f"({self.bad_records} in all; the first {MAX_REPORTED_RECORDS} are listed)",
                )
            )
        if self.parts:
            starts, ends, indexes, flags = (
                np.concatenate(p) for p in zip(*self.parts, strict=True)
            )
        else:
            starts = ends = indexes = np.zeros(0, dtype=np.int64)
            flags = np.zeros(0, dtype=bool)
        return ScanResult(
            base_offset=self.base,
            starts=starts,
            ends=ends,
            indexes=indexes,
            after_corrupt=flags,
            next_offset=self.base + next_pos,
            next_index=self.index,
            corrupt=self.corrupt,
            findings=self.findings,
            status=self.status,
        )


def _tail_status(scan: _Scan, pos: int) -> Finding:
    rest = len(scan.buf) - pos
    offset = scan.base + pos
    return scan.ctx.finding(
        SEVERITY_WARNING,
        KIND_INCOMPLETE_TAIL,
        f"incomplete tail at byte {offset} ({rest} bytes): the last record is not complete "
        "(still being written, or the writer stopped mid-record); not corruption",
        offset=offset,
        record=scan.index,
    )


def _zero_tail_status(scan: _Scan, pos: int) -> Finding:
    rest = len(scan.buf) - pos
    offset = scan.base + pos
    return scan.ctx.finding(
        SEVERITY_WARNING,
        KIND_ZERO_TAIL,
        f"zero-filled tail at byte {offset} ({rest} bytes, typical after a crash); "
        f"{scan.index} records before it",
        offset=offset,
        record=scan.index,
    )


def _is_zero(buf: bytes, pos: int) -> bool:
    return buf.count(0, pos) == len(buf) - pos


def _empty_status(scan: _Scan) -> list[Finding]:
    if scan.base == 0 and not scan.buf:
        return [scan.ctx.finding(SEVERITY_INFO, KIND_EMPTY, "empty event file (0 bytes)")]
    return []


def scan_records(
    buf: bytes,
    *,
    base_offset: int = 0,
    first_index: int = 0,
    after_corrupt: bool = False,
    context: ScanContext | None = None,
) -> ScanResult:
    """Find every readable record in ``buf``, which holds file bytes from ``base_offset``.

    Checks the length CRC and the data CRC of every record. Never raises on bad bytes:
    every problem becomes a finding (see the module docstring); ``next_offset`` and
    ``next_index`` say where to continue when the file grows. ``buf`` must be ``bytes``.
    """
    scan = _Scan(buf, base_offset, first_index, after_corrupt, context or ScanContext())
    scan.status.extend(_empty_status(scan))
    if base_offset == 0 and len(buf) >= HEADER_BYTES and not _record_header_ok(buf, 0):
        bad = _bad_start_status(buf, scan.ctx)
        if bad is not None:
            scan.status.append(bad)
            return scan.result(0)
    pos = 0
    while True:
        seg = _frame_segment(buf, pos)
        scan.add_segment(seg)
        pos = seg.stop
        if seg.reason == _STOP_END:
            return scan.result(pos)
        if seg.reason == _STOP_TAIL:
            scan.status.append(_tail_status(scan, pos))
            return scan.result(pos)
        if _is_zero(buf, pos):
            scan.status.append(_zero_tail_status(scan, pos))
            return scan.result(pos)
        pos = _handle_bad_header(scan, pos, seg.reason)
        if pos < 0:
            return scan.result(-pos - 1)


def _record_header_ok(buf: bytes, pos: int) -> bool:
    length, length_crc = _HEADER.unpack_from(buf, pos)
    return masked_crc32c(buf[pos : pos + 8]) == length_crc


def _handle_bad_header(scan: _Scan, pos: int, reason: str) -> int:
    """Report a bad header at ``pos`` and resync; returns where to go on, or ``-pos-1``."""
    found = find_next_record(scan.buf, pos + 1)
    if found is None:
        if pos == 0 and scan.base == 0 and scan.index == 0 and reason == _STOP_HEADER:
            scan.status.append(_not_event_file(scan))
        else:
            scan.status.append(scan.stop_finding(pos, reason, None))
        return -pos - 1
    scan.findings.append(scan.stop_finding(pos, reason, found))
    scan.findings.append(
        scan.ctx.finding(
            SEVERITY_WARNING,
            KIND_RESYNC,
            f"resync: skipped {found - pos} unreadable bytes from byte {scan.base + pos}; "
            f"records from byte {scan.base + found} on are numbered from {scan.index} "
            "(records lost in the gap are not counted) and flagged as following a "
            "corrupt record",
            offset=scan.base + found,
            record=scan.index,
        )
    )
    scan.corrupt = True
    return found


def _not_event_file(scan: _Scan) -> Finding:
    return scan.ctx.finding(
        SEVERITY_ERROR,
        KIND_NOT_EVENT_FILE,
        f"not an event file: no valid TFRecord header at byte 0 and no valid record "
        f"anywhere in its {len(scan.buf)} bytes",
        offset=0,
        record=0,
    )


# --- files ------------------------------------------------------------------------------


def read_from(path: str, offset: int = 0) -> tuple[bytes, os.stat_result]:
    """All bytes of ``path`` from ``offset`` (one read) and the stat of the opened file.

    The stat comes from the same open file descriptor, so it describes exactly the file
    that was read even when the name is replaced meanwhile. Raises ``OSError``.
    """
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        fh.seek(offset)
        data = fh.read()
    return data, st


def read_records(
    path: str,
    *,
    offset: int = 0,
    first_index: int = 0,
    after_corrupt: bool = False,
    source_uri: str = "",
    run_id: str | None = None,
) -> tuple[bytes, ScanResult]:
    """Read ``path`` from ``offset`` and scan it; returns the bytes read and the result.

    I/O problems (missing file, permission denied, a directory) become a status finding
    instead of an exception.
    """
    ctx = ScanContext(path=path, source_uri=source_uri, run_id=run_id)
    try:
        data, _ = read_from(path, offset)
    except OSError as exc:
        empty = _Scan(b"", offset, first_index, after_corrupt, ctx)
        empty.status.append(
            ctx.finding(SEVERITY_ERROR, KIND_IO, f"cannot read: {exc.strerror or exc}")
        )
        return b"", empty.result(0)
    return data, scan_records(
        data,
        base_offset=offset,
        first_index=first_index,
        after_corrupt=after_corrupt,
        context=ctx,
    )


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
