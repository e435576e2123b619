"""The framing of W&B's ``run-<id>.wandb`` files, read without the wandb package.

The format, as found in files written by wandb 0.17 (the Python backend) to 0.31
(wandb-core), which frame their files identically:

- a 7-byte file header: the ident ``:W&B``, the magic 0xBEE1 (uint16, little-endian) and
  the format version 0 (uint8);
- then LevelDB-log-style blocks of 32 KiB, counted from the start of the file (the file
  header sits in block 0). A block is a run of chunks, each a 7-byte chunk header (CRC
  uint32 LE, data length uint16 LE, chunk type uint8) and its data. A chunk never crosses
  a block boundary; when fewer than 7 bytes are left in a block they are zero padding;
- a record that fits is one FULL chunk (type 1); a longer one is cut into FIRST (2),
  MIDDLE (3) ... and LAST (4) chunks in consecutive blocks;
- the CRC of a chunk is plain CRC-32 (zlib's polynomial, not masked, unlike LevelDB's and
  TFRecord's CRC-32C) over the type byte followed by the data. The length is not covered
  by the CRC: a chunk whose length would cross its block is treated as damaged.

:func:`scan_log` never raises on bad bytes. Every problem becomes a :class:`Finding`, as
for TensorBoard event files (see RELIABILITY.md, section C): an incomplete last record is
an "incomplete tail" (not corruption), a chunk failing its CRC is reported with its byte
offset and skipped, and reading resumes at the next chunk whose header and CRC hold;
records read after a damaged chunk are counted in a warning.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field

from runreview.contract import FileContext, Finding, FindingKind, Severity

FILE_HEADER = struct.Struct("<4sHB")
FILE_IDENT = b":W&B"
FILE_MAGIC = 0xBEE1
FILE_VERSION = 0
FILE_HEADER_BYTES = FILE_HEADER.size  # 7

BLOCK_BYTES = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")  # crc32, data length, chunk type
CHUNK_HEADER_BYTES = CHUNK_HEADER.size  # 7

CHUNK_FULL = 1
CHUNK_FIRST = 2
CHUNK_MIDDLE = 3
CHUNK_LAST = 4
CHUNK_TYPES = (CHUNK_FULL, CHUNK_FIRST, CHUNK_MIDDLE, CHUNK_LAST)

#: CRC-32 of each type byte, the starting value of a chunk's CRC.
_TYPE_CRC = {t: zlib.crc32(bytes([t])) for t in CHUNK_TYPES}
#: Damaged chunks reported one by one per scan; the rest are counted in one finding.
MAX_REPORTED_CHUNKS = 100


_CHUNK_TYPE_BYTE = re.compile(b"[\x01-\x04]")


#: Where the bytes came from (names the file in findings).
LogContext = FileContext


@dataclass
class LogScan:
    """What :func:`scan_log` found in one buffer.

    ``records`` are ``(file offset of the record's first chunk, record index, payload)``
    of every record whose chunks all hold their CRC. ``findings`` are about bytes before
    ``next_offset`` and stay true when the file grows; ``status`` is about the bytes from
    ``next_offset`` on (an incomplete tail, an unreadable rest) and is replaced by the next
    scan. Continue a growing file with ``scan_log(new_bytes, base_offset=next_offset,
    first_index=next_index, after_corrupt=corrupt)``.
    """

    records: list[tuple[int, int, bytes]]
    next_offset: int
    next_index: int
    corrupt: bool
    findings: list[Finding] = field(default_factory=list)
    status: list[Finding] = field(default_factory=list)


class _Scan:
    """State of one :func:`scan_log` call (keeps the helpers small)."""

    def __init__(self, buf: bytes, base: int, index: int, corrupt: bool, ctx: LogContext):
        self.buf, self.base, self.index, self.corrupt, self.ctx = buf, base, index, corrupt, ctx
        self.records: list[tuple[int, int, bytes]] = []
        self.findings: list[Finding] = []
        self.status: list[Finding] = []
        self.pending: list[bytes] = []
        self.pending_start: int | None = None  # buffer position of the FIRST chunk
        self.skipping = False  # the chunks that follow belong to a lost record
        self.damaged = 0
        self.first_damage: int | None = None
        self.after_damage = 0

    # results ---------------------------------------------------------------------------

    def emit(self, start: int, payload: bytes) -> None:
        self.records.append((self.base + start, self.index, payload))
        self.index += 1
        if self.corrupt:
            self.after_damage += 1

    def damage(self, severity: Severity, kind: FindingKind, message: str, pos: int) -> None:
        """Report a damaged stretch at buffer position ``pos`` (capped per scan)."""
        self.damaged += 1
        if self.first_damage is None:
            self.first_damage = self.base + pos
        if self.damaged <= MAX_REPORTED_CHUNKS:
            self.findings.append(
                self.ctx.finding(severity, kind, message, self.base + pos, self.index)
            )
        self.corrupt = True

    def drop_pending(self, why: str) -> None:
        """Report the record being assembled as lost (a later chunk is missing)."""
        if self.pending_start is None:
            return
        start = self.pending_start
        self.damage(
            Severity.ERROR,
            FindingKind.CRC_MISMATCH,
            f"record {self.index} starting at byte {self.base + start} is incomplete: {why}; "
            "record skipped",
            start,
        )
        self.lose_record()

    def lose_record(self) -> None:
        """Count the current record as lost; its remaining chunks are skipped silently."""
        self.index += 1
        self.pending, self.pending_start = [], None
        self.skipping = True

    def result(self, stop: int) -> LogScan:
        """The scan's result; ``stop`` is where the next scan should begin."""
        if self.damaged > MAX_REPORTED_CHUNKS:
            self.findings.append(
                self.ctx.finding(
                    Severity.ERROR,
                    FindingKind.CRC_MISMATCH,
                    f"{self.damaged - MAX_REPORTED_CHUNKS} more damaged chunks skipped "
                    f"({self.damaged} in all; the first {MAX_REPORTED_CHUNKS} are listed)",
                )
            )
        if self.after_damage:
            self.findings.append(
                self.ctx.finding(
                    Severity.WARNING,
                    FindingKind.AFTER_CORRUPT_RECORD,
                    f"{self.after_damage} records after the damaged data at byte "
                    f"{self.first_damage} were read, each with a valid CRC",
                    self.first_damage,
                )
            )
        return LogScan(
            self.records,
            self.base + stop,
            self.index,
            self.corrupt,
            self.findings,
            self.status,
        )


# --- the file header ----------------------------------------------------------------------


def check_file_header(head: bytes, ctx: LogContext) -> Finding | None:
    """A finding when ``head`` (the first bytes of a file) is not a W&B file header.

    Fewer than 7 bytes give None: that is an incomplete tail, reported by the scan.
    """
    if len(head) < FILE_HEADER_BYTES:
        return None
    ident, magic, version = FILE_HEADER.unpack_from(head, 0)
    if ident != FILE_IDENT or magic != FILE_MAGIC:
        return ctx.finding(
            Severity.ERROR,
            FindingKind.NOT_WANDB_FILE,
            f"not a W&B run file: it starts with {head[:7]!r}, not ':W&B' and the magic "
            "0xBEE1; not read",
            offset=0,
        )
    if version != FILE_VERSION:
        return ctx.finding(
            Severity.ERROR,
            FindingKind.UNSUPPORTED_VERSION,
            f"W&B file format version {version} is not supported (this reader knows "
            f"version {FILE_VERSION}); not read",
            offset=0,
        )
    return None


# --- the scan -----------------------------------------------------------------------------


def scan_log(
    buf: bytes,
    *,
    base_offset: int = 0,
    first_index: int = 0,
    after_corrupt: bool = False,
    context: LogContext | None = None,
) -> LogScan:
    """Find every readable record in ``buf``, which holds file bytes from ``base_offset``.

    ``base_offset`` is 0 (the file header is checked) or a chunk boundary returned as
    ``next_offset`` by an earlier scan. Never raises on bad bytes.
    """
    scan = _Scan(buf, base_offset, first_index, after_corrupt, context or LogContext())
    pos = 0
    if base_offset == 0:
        if not buf:
            scan.status.append(
                scan.ctx.finding(Severity.INFO, FindingKind.EMPTY_FILE, "empty file (0 bytes)")
            )
            return scan.result(0)
        bad = check_file_header(buf, scan.ctx)
        if bad is not None:
            scan.status.append(bad)
            return scan.result(0)
        if len(buf) < FILE_HEADER_BYTES:
            scan.status.append(_tail(scan, 0))
            return scan.result(0)
        pos = FILE_HEADER_BYTES
    return scan.result(_walk(scan, pos))


def _walk(scan: _Scan, pos: int) -> int:
    """Read chunks from ``pos``; returns where the next scan should begin."""
    buf, size = scan.buf, len(scan.buf)
    while True:
        left = BLOCK_BYTES - (scan.base + pos) % BLOCK_BYTES
        if left < CHUNK_HEADER_BYTES:
            pos = _skip_padding(scan, pos, left)
            if pos < 0:
                return _stop_at_tail(scan, -pos - 1)
            continue
        if pos == size:
            return _stop_at_end(scan, pos)
        if pos + CHUNK_HEADER_BYTES > size:
            return _stop_at_tail(scan, pos)
        crc, length, kind = CHUNK_HEADER.unpack_from(buf, pos)
        end = pos + CHUNK_HEADER_BYTES + length
        if kind not in _TYPE_CRC or length > left - CHUNK_HEADER_BYTES:
            if _is_zero(buf, pos):
                return _stop_at_zero_tail(scan, pos)
            pos = _bad_header(scan, pos, kind, length)
            if pos < 0:
                return -pos - 1
            continue
        if end > size:
            return _stop_at_tail(scan, pos)
        if zlib.crc32(buf[pos + CHUNK_HEADER_BYTES : end], _TYPE_CRC[kind]) != crc:
            pos = _bad_crc(scan, pos, kind, length)
            if pos < 0:
                return -pos - 1
            continue
        _assemble(scan, pos, kind, buf[pos + CHUNK_HEADER_BYTES : end])
        pos = end


def _assemble(scan: _Scan, pos: int, kind: int, data: bytes) -> None:
    """Add a good chunk to the record being assembled (or emit a FULL one)."""
    if kind in (CHUNK_FULL, CHUNK_FIRST):
        scan.drop_pending("its next chunk is missing")
        scan.skipping = False
        if kind == CHUNK_FULL:
            scan.emit(pos, data)
        else:
            scan.pending, scan.pending_start = [data], pos
        return
    if scan.pending_start is None:
        if not scan.skipping:
            scan.damage(
                Severity.WARNING,
                FindingKind.ORPHAN_CHUNK,
                f"chunk at byte {scan.base + pos} continues a record whose start was lost; skipped",
                pos,
            )
        scan.skipping = scan.skipping and kind == CHUNK_MIDDLE
        return
    scan.pending.append(data)
    if kind == CHUNK_LAST:
        start, payload = scan.pending_start, b"".join(scan.pending)
        scan.pending, scan.pending_start = [], None
        scan.emit(start, payload)


def _skip_padding(scan: _Scan, pos: int, left: int) -> int:
    """Skip the zero padding at a block's end; ``-pos-1`` when the file ends inside it."""
    if pos + left > len(scan.buf):
        return -pos - 1
    if scan.buf.count(0, pos, pos + left) != left:
        scan.findings.append(
            scan.ctx.finding(
                Severity.WARNING,
                FindingKind.BAD_PADDING,
                f"the {left} padding bytes at byte {scan.base + pos} (end of a block) are "
                "not zero; skipped",
                scan.base + pos,
            )
        )
    return pos + left


def _bad_crc(scan: _Scan, pos: int, kind: int, length: int) -> int:
    """Report a chunk failing its CRC and lose its record; returns where to go on."""
    offset = scan.base + pos
    start = scan.base + (pos if scan.pending_start is None else scan.pending_start)
    scan.damage(
        Severity.ERROR,
        FindingKind.CRC_MISMATCH,
        f"CRC mismatch in the chunk at byte {offset} (type {kind}, {length} bytes): "
        f"record {scan.index} (from byte {start}) skipped",
        pos,
    )
    scan.lose_record()
    following = pos + CHUNK_HEADER_BYTES + length
    if following == len(scan.buf) or _valid_chunk(scan.buf, following, scan.base):
        return following
    return _resync(scan, pos)


def _bad_header(scan: _Scan, pos: int, kind: int, length: int) -> int:
    """Report a chunk header that cannot be right and resync; returns where to go on."""
    offset = scan.base + pos
    scan.damage(
        Severity.ERROR,
        FindingKind.UNREADABLE,
        f"invalid chunk header at byte {offset} (type {kind}, length {length}): "
        f"{scan.index} records before it",
        pos,
    )
    if scan.pending_start is not None:
        scan.lose_record()
    scan.skipping = True
    return _resync(scan, pos)


def _resync(scan: _Scan, pos: int) -> int:
    """The next chunk after ``pos`` whose header and CRC hold; ``-pos-1`` when none."""
    found = find_next_chunk(scan.buf, pos + 1, scan.base)
    offset = scan.base + pos
    if found is None:
        rest = len(scan.buf) - pos
        scan.findings.append(
            scan.ctx.finding(
                Severity.ERROR,
                FindingKind.UNREADABLE,
                f"unreadable from byte {offset} ({rest} bytes): no valid chunk after it",
                offset,
                scan.index,
            )
        )
        return -len(scan.buf) - 1
    scan.findings.append(
        scan.ctx.finding(
            Severity.WARNING,
            FindingKind.RESYNC,
            f"resync: skipped {found - pos} unreadable bytes from byte {offset}; reading "
            f"went on at byte {scan.base + found} (records lost in the gap are not counted)",
            scan.base + found,
            scan.index,
        )
    )
    return found


def _valid_chunk(buf: bytes, pos: int, base: int) -> bool:
    left = BLOCK_BYTES - (base + pos) % BLOCK_BYTES
    if left < CHUNK_HEADER_BYTES or pos + CHUNK_HEADER_BYTES > len(buf):
        return False
    crc, length, kind = CHUNK_HEADER.unpack_from(buf, pos)
    end = pos + CHUNK_HEADER_BYTES + length
    if kind not in _TYPE_CRC or length > left - CHUNK_HEADER_BYTES or end > len(buf):
        return False
    return zlib.crc32(buf[pos + CHUNK_HEADER_BYTES : end], _TYPE_CRC[kind]) == crc


def find_next_chunk(buf: bytes, start: int, base: int = 0) -> int | None:
    """The first position from ``start`` where a chunk with a valid header and CRC begins.

    Only positions whose type byte is 1-4 are tried. A false match needs a 32-bit CRC to
    hold by chance.
    """
    for match in _CHUNK_TYPE_BYTE.finditer(buf, start + CHUNK_HEADER_BYTES - 1):
        pos = match.start() - (CHUNK_HEADER_BYTES - 1)
        if _valid_chunk(buf, pos, base):
            return pos
    return None


# --- where a scan stops -------------------------------------------------------------------


def _stop_at_end(scan: _Scan, pos: int) -> int:
    if scan.pending_start is None:
        return pos
    return _stop_at_tail(scan, pos)


def _stop_at_tail(scan: _Scan, pos: int) -> int:
    start = pos if scan.pending_start is None else scan.pending_start
    scan.pending, scan.pending_start = [], None
    scan.status.append(_tail(scan, start))
    return start


def _tail(scan: _Scan, start: int) -> Finding:
    offset, rest = scan.base + start, len(scan.buf) - start
    return scan.ctx.finding(
        Severity.WARNING,
        FindingKind.INCOMPLETE_TAIL,
        f"incomplete tail at byte {offset} ({rest} bytes): the last record is not complete "
        "(still being written, or the run was killed mid-record); not corruption",
        offset,
        scan.index,
    )


def _stop_at_zero_tail(scan: _Scan, pos: int) -> int:
    start = pos if scan.pending_start is None else scan.pending_start
    scan.pending, scan.pending_start = [], None
    offset, rest = scan.base + start, len(scan.buf) - start
    scan.status.append(
        scan.ctx.finding(
            Severity.WARNING,
            FindingKind.ZERO_FILLED_TAIL,
            f"zero-filled tail at byte {offset} ({rest} bytes, typical after a crash); "
            f"{scan.index} records before it",
            offset,
            scan.index,
        )
    )
    return start


def _is_zero(buf: bytes, pos: int) -> bool:
    return buf.count(0, pos) == len(buf) - pos
