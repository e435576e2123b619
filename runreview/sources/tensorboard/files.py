"""Reading event files incrementally, in memory and through the on-disk cache.

A file's state is kept per path with its identity (device, inode, size, mtime, first and
last bytes, CRC32C). A second read costs one ``stat`` when nothing changed; a grown file
is read from its last offset only; a file that shrank, was replaced (other inode) or
rewritten in place (its first bytes, or the bytes before its previous end, changed; or,
at the same size with a new mtime, its CRC) is read again from the start, with a warning
finding. New bytes are read :data:`READ_CHUNK_BYTES` at a time, each chunk scanned like
the new bytes of a growing file, so a file of any size costs one chunk of memory beyond
what is parsed from it.

When a file is first met, the on-disk cache (:mod:`.cache`) is asked for its state:
an entry is used only when it still describes the file (see :meth:`EventFileCache.load`),
and a grown file then costs only its new bytes.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

import google_crc32c
import numpy as np

from runreview.contract import Finding, FindingKind, Severity
from runreview.sources.tensorboard import tfrecord
from runreview.sources.tensorboard.cache import HEAD_BYTES, TAIL_BYTES, EventFileCache, file_crc
from runreview.sources.tensorboard.decode import parse_chunk
from runreview.sources.tensorboard.state import FileState


@dataclass
class ReadStats:
    """What reading cost so far: event-file bytes read, files parsed, cache use (hits:
    files whose state came from the disk cache, grown ones included), and why the disk
    cache was turned off, if it was."""

    bytes_read: int = 0
    files_parsed: int = 0
    cache_hits: int = 0
    cache_writes: int = 0
    cache_error: str | None = None


#: Event files are read this many bytes at a time (more only while a single record does not
#: fit), so reading a file of any size holds one chunk and what was parsed from it.
READ_CHUNK_BYTES = 16 * 1024 * 1024


@dataclass
class FileRead:
    """A state to use, and how many new bytes were read into it (None: none).

    ``fresh`` is True for a state started from nothing (seeded with the plugins of the
    run's earlier files before its bytes were decoded); ``cached`` for a state loaded
    from the disk cache.
    """

    state: FileState
    bytes_read: int | None
    fresh: bool = False
    cached: bool = False


def open_regular(path: str) -> int:
    """An fd for ``path``; O_NONBLOCK so a FIFO put in place of a file cannot hang us."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags)


def _new_state(
    path: str, run_id: str, st: os.stat_result, head: bytes, seed: dict[str, str]
) -> FileState:
    """A state with nothing read yet, knowing the plugins of the run's earlier files."""
    ident = (path, run_id, st.st_dev, st.st_ino, 0, st.st_mtime_ns, head)
    return FileState(*ident, plugins=dict(seed), seed=dict(seed))


def _changed_how(old: FileState, fd: int, st: os.stat_result, head: bytes) -> str | None:
    """Why ``old`` no longer describes the file open as ``fd`` (replaced, shrank,
    rewritten), or None. A rewrite in place is seen by the first bytes, the bytes before
    the old end (as the disk cache checks them) and, when the size is the same but the
    mtime is not, by the CRC of the whole content."""
    if (old.dev, old.ino) != (st.st_dev, st.st_ino):
        return "replaced by another file (inode changed)"
    if st.st_size < old.size:
        return f"shrank from {old.size} to {st.st_size} bytes"
    n = min(len(head), len(old.head))
    if head[:n] != old.head[:n]:
        return "rewritten in place (its first bytes changed)"
    if old.tail and os.pread(fd, len(old.tail), old.size - len(old.tail)) != old.tail:
        return "rewritten in place (the bytes before its previous end changed)"
    if st.st_size == old.size and file_crc(fd, old.size) != old.crc:
        return "rewritten in place (same size, other content)"
    return None


def _unchanged(old: FileState, st: os.stat_result) -> bool:
    """The identity (inode, size, mtime) still matches: nothing to read."""
    same_file = (old.dev, old.ino) == (st.st_dev, st.st_ino)
    return same_file and st.st_size == old.size and st.st_mtime_ns == old.mtime_ns


def _replaced_finding(state: FileState, why: str, uri: str) -> Finding:
    return Finding(
        Severity.WARNING,
        uri,
        f"file {why} since it was last read: data re-read from the start "
        "(no mixing of old and new offsets)",
        path=state.path,
        run_id=state.run_id,
        kind=FindingKind.FILE_REPLACED,
    )


def read_file(
    path: str,
    run_id: str,
    old: FileState | None,
    uri: str,
    cache: EventFileCache | None = None,
    seed: dict[str, str] | None = None,
    chunk_bytes: int = READ_CHUNK_BYTES,
) -> FileRead | None:
    """The state of ``path`` with its new bytes read into it; None when nothing changed.

    ``old`` is the state in memory (extended in place when the file grew); without one,
    ``cache`` is asked (``seed``: plugins of the run's earlier files, which the entry
    must have been made with, and which a new state starts with). Identity (inode, size,
    first and last bytes) comes from the opened descriptor, so what is read is exactly
    the file that was checked. New bytes are read ``chunk_bytes`` at a time. Raises
    OSError (a state extended in place keeps every chunk read before the error).
    """
    if old is not None and _unchanged(old, os.stat(path)):
        return None
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(21, "not a regular file")
        head = os.pread(fd, HEAD_BYTES, 0)
        fresh = cached = False
        if old is None and cache is not None:
            old = cache.load(path, run_id, uri, seed or {}, fd, st, head)
            cached = old is not None
            if old is not None and st.st_size == old.size:
                return FileRead(old, None, cached=True)
        state = old
        why = None if old is None else _changed_how(old, fd, st, head)
        if old is None or why is not None:
            state, fresh = _new_state(path, run_id, st, head, seed or {}), True
            if why is not None:
                state.problems.append(_replaced_finding(state, why, uri))
        elif st.st_size == old.size:
            old.mtime_ns, old.head = st.st_mtime_ns, head
            return None
        state.head, state.mtime_ns = head, st.st_mtime_ns
        read = _read_chunks(fh, state, uri, st.st_size, chunk_bytes)
        return FileRead(state, read, fresh=fresh, cached=cached)


def _read_chunks(fh: BinaryIO, state: FileState, uri: str, end: int, chunk_bytes: int) -> int:
    """Read the file from ``state.next_offset`` up to ``end`` (its size when opened: what
    is appended meanwhile is read next time) into ``state``, ``chunk_bytes`` at a time.

    Each chunk is scanned like the new bytes of a growing file, so the next one starts at
    the first record not complete in it. While no record is complete in a chunk (a
    longer record, or damage with no valid record after it yet), the chunk doubles.
    Returns the bytes read.
    """
    total, want = 0, chunk_bytes
    while True:
        start = state.next_offset
        count = min(want, max(end - start, 0))
        fh.seek(start)
        data = fh.read(count)
        if not data and total:
            return total
        extend_state(state, data, uri)
        total += len(data)
        if len(data) < count or start + len(data) >= end:  # the end (or the file shrank)
            return total
        want = chunk_bytes if state.next_offset > start else want * 2


def _note_content(state: FileState, data: bytes) -> None:
    """Keep the CRC32C and the last bytes of the file's content [0, size) up to date.

    ``data`` starts at ``state.next_offset``, which is before ``state.size`` when the
    last read ended in an incomplete record: only the part past ``size`` is new.
    """
    skip = state.size - state.next_offset
    new = data[skip:] if skip > 0 else data
    state.crc = google_crc32c.extend(state.crc, new)
    state.tail = (state.tail + new[-TAIL_BYTES:])[-TAIL_BYTES:]


def _count_still_after_corrupt(state: FileState, scan: tfrecord.ScanResult) -> None:
    """Count the records of a scan that began after a corrupt record (read earlier) and
    that none of the scan's own findings covers: those before its first new problem."""
    problems = [f.record for f in scan.findings + scan.status if f.record is not None]
    before = scan.indexes < min(problems) if problems else np.ones(scan.count, dtype=bool)
    if before.any():
        first = int(scan.indexes[np.argmax(before)])
        state.count(FindingKind.AFTER_CORRUPT_RECORD, int(before.sum()), first, None, "")


def extend_state(state: FileState, data: bytes, uri: str) -> None:
    """Scan and decode ``data`` (the file from ``state.next_offset`` on) into ``state``."""
    ctx = tfrecord.ScanContext(path=state.path, source_uri=uri, run_id=state.run_id)
    scan = tfrecord.scan_records(
        data,
        base_offset=state.next_offset,
        first_index=state.next_index,
        after_corrupt=state.corrupt,
        context=ctx,
    )
    for finding in scan.findings:
        state.problem(finding.kind, finding)
    if state.corrupt:
        _count_still_after_corrupt(state, scan)
    state.status = scan.status
    parse_chunk(state, data, scan, uri)
    _note_content(state, data)
    state.size = state.next_offset + len(data)
    state.next_offset, state.next_index, state.corrupt = (
        scan.next_offset,
        scan.next_index,
        scan.corrupt,
    )
    state.version += 1
