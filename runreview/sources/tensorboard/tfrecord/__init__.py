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

The framing itself (header walk, resync) is in :mod:`.frame`, the CRCs in :mod:`.crc`;
the vectorised decoder of scalar events in :mod:`.fast`; the event writer in
:mod:`.write`.

:func:`decode_scalar_events` is the fast path for the commonest event shapes (one
``simple_value`` per event, as tensorboardX and torch write it; one scalar float/double
tensor per event, as TF2 writes it after the first event of a tag): it decodes the
protobuf wire bytes of many records at once with numpy and leaves every other record to
protobuf.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from runreview.contract import FileContext, Finding, FindingKind, Severity
from runreview.sources.tensorboard.tfrecord.crc import masked_crc32c
from runreview.sources.tensorboard.tfrecord.frame import (
    HEADER,
    HEADER_BYTES,
    MAX_RECORD_BYTES,
    STOP_CAP,
    STOP_END,
    STOP_HEADER,
    STOP_TAIL,
    Segment,
    find_next_record,
    frame_segment,
)

# --- constants --------------------------------------------------------------------------

#: Data-CRC mismatches reported one by one per scan; the rest are counted in one finding.
MAX_REPORTED_RECORDS = 100


_CAP_LABEL = f"{MAX_RECORD_BYTES // (1024 * 1024)} MiB"


# --- results ----------------------------------------------------------------------------


#: Where the bytes came from (names the file in findings).
ScanContext = FileContext


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
            Severity.ERROR,
            FindingKind.COMPRESSED_FILE,
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

    def add_segment(self, seg: Segment) -> None:
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
                Severity.ERROR,
                FindingKind.DATA_CRC_MISMATCH,
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
                Severity.WARNING,
                FindingKind.AFTER_CORRUPT_RECORD,
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
        if reason == STOP_CAP:
            length = HEADER.unpack_from(self.buf, pos)[0]
            what = (
                f"record {self.index} at byte {offset} declares length {length}, above the "
                f"cap of {_CAP_LABEL} (record length exceeds cap); not read"
            )
            kind = FindingKind.RECORD_TOO_LONG
        else:
            what = f"length CRC mismatch at byte {offset} (record {self.index})"
            kind = FindingKind.UNREADABLE
        before = f"{self.index} records before it"
        if recovered is None:
            tail = "no valid record found after it (resync scan)"
        else:
            tail = f"resync: next valid record at byte {self.base + recovered}, reading went on"
        message = f"unreadable from byte {offset} ({rest} bytes): {what}; {before}; {tail}"
        return self.ctx.finding(Severity.ERROR, kind, message, offset=offset, record=self.index)

    def result(self, next_pos: int) -> ScanResult:
        """Assemble the result; ``next_pos`` is where the next scan should begin."""
        if self.bad_records > MAX_REPORTED_RECORDS:
            more = self.bad_records - MAX_REPORTED_RECORDS
            self.findings.append(
                self.ctx.finding(
                    Severity.ERROR,
                    FindingKind.DATA_CRC_MISMATCH,
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
        Severity.WARNING,
        FindingKind.INCOMPLETE_TAIL,
        f"incomplete tail at byte {offset} ({rest} bytes): the last record is not complete "
        "(still being written, or the writer stopped mid-record); not corruption",
        offset=offset,
        record=scan.index,
    )


def _zero_tail_status(scan: _Scan, pos: int) -> Finding:
    rest = len(scan.buf) - pos
    offset = scan.base + pos
    return scan.ctx.finding(
        Severity.WARNING,
        FindingKind.ZERO_FILLED_TAIL,
        f"zero-filled tail at byte {offset} ({rest} bytes, typical after a crash); "
        f"{scan.index} records before it",
        offset=offset,
        record=scan.index,
    )


def _is_zero(buf: bytes, pos: int) -> bool:
    return buf.count(0, pos) == len(buf) - pos


def _empty_status(scan: _Scan) -> list[Finding]:
    if scan.base == 0 and not scan.buf:
        return [
            scan.ctx.finding(Severity.INFO, FindingKind.EMPTY_FILE, "empty event file (0 bytes)")
        ]
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
        seg = frame_segment(buf, pos)
        scan.add_segment(seg)
        pos = seg.stop
        if seg.reason == STOP_END:
            return scan.result(pos)
        if seg.reason == STOP_TAIL:
            scan.status.append(_tail_status(scan, pos))
            return scan.result(pos)
        if _is_zero(buf, pos):
            scan.status.append(_zero_tail_status(scan, pos))
            return scan.result(pos)
        pos = _handle_bad_header(scan, pos, seg.reason)
        if pos < 0:
            return scan.result(-pos - 1)


def _record_header_ok(buf: bytes, pos: int) -> bool:
    length, length_crc = HEADER.unpack_from(buf, pos)
    return masked_crc32c(buf[pos : pos + 8]) == length_crc


def _handle_bad_header(scan: _Scan, pos: int, reason: str) -> int:
    """Report a bad header at ``pos`` and resync; returns where to go on, or ``-pos-1``."""
    found = find_next_record(scan.buf, pos + 1)
    if found is None:
        if pos == 0 and scan.base == 0 and scan.index == 0 and reason == STOP_HEADER:
            scan.status.append(_not_event_file(scan))
        else:
            scan.status.append(scan.stop_finding(pos, reason, None))
        return -pos - 1
    scan.findings.append(scan.stop_finding(pos, reason, found))
    scan.findings.append(
        scan.ctx.finding(
            Severity.WARNING,
            FindingKind.RESYNC,
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
        Severity.ERROR,
        FindingKind.NOT_EVENT_FILE,
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
            ctx.finding(Severity.ERROR, FindingKind.IO_ERROR, f"cannot read: {exc.strerror or exc}")
        )
        return b"", empty.result(0)
    return data, scan_records(
        data,
        base_offset=offset,
        first_index=first_index,
        after_corrupt=after_corrupt,
        context=ctx,
    )
