"""The on-disk cache of parsed TensorBoard event files, outside the logdir.

One entry per event file (and per logdir/run it was read as), in
``settings.cache_dir() / "tensorboard"``, named by a hash of (source URI, run id, absolute
path). An entry holds the whole parsed state of the file (see :class:`.state.FileState`)
and the identity of the bytes it was made from.

**Used only when it still describes the file.** :meth:`EventFileCache.load` compares the
entry with the open file: same device and inode, a size no smaller than the cached one,
the same first 64 bytes and the same 64 bytes before the cached size, and the same
plugins from the run's earlier files. Same size also needs the same mtime; and when the
file had been modified less than :data:`RACY_NS` before the entry was written (a change
within the same mtime tick would go unseen), the CRC32C of the file's bytes is compared
too. A grown file keeps the cached prefix and only its new bytes are read, from the
cached ``next_offset``.

**Format** (no pickle anywhere): a 24-byte prelude (magic, format version, CRC32C of the
rest, header length), a JSON header (identity, parser version, findings, texts, image
references, tags, array directory), then raw little-endian arrays, each 8-byte aligned:
scalar tag codes (dictionary-encoded, the tag names in the header; uint8/uint16), steps
int64, values float64, wall times float64, record numbers (int32 when they fit), and
numeric tensors. Arrays are loaded as zero-copy views of the entry's bytes. Only numeric
dtypes are accepted. Entries of another format or parser version are not used.

**Concurrency.** Entries are written to a temporary file in the same folder and renamed
over the old one (``os.replace``), so readers see a whole old entry or a whole new one. A
missing, truncated or corrupt entry (bad magic, version, CRC, JSON or bounds) is ignored
and the file is parsed again; the entry is then rewritten.

**Size.** When the folder grows past ``max_bytes`` the least recently used entries (by
mtime, refreshed on every hit) are deleted down to 80% of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import struct
import time
from dataclasses import fields
from pathlib import Path

import google_crc32c
import numpy as np

from runreview.contract import Finding, FindingKind
from runreview.sources.tensorboard.state import (
    Count,
    FileState,
    ImageRef,
    Scalars,
    Tensor,
    Text,
    compact_scalars,
)

MAGIC = b"RRTBCACH"
FORMAT_VERSION = 1
#: Bump when decoding changes what a file yields: entries made by other parsers are unused.
PARSER_VERSION = 2  # 2: records after a corrupt one counted across reads
SUBDIR = "tensorboard"
SUFFIX = ".rrtb"
HEAD_BYTES = 64  # compared to notice a file rewritten in place
TAIL_BYTES = 64  # compared to notice a change just before the cached size
#: A file modified this shortly before its entry was written is checked by content.
RACY_NS = 2_000_000_000
DEFAULT_MAX_BYTES = 2 * 1024**3
_PRELUDE = struct.Struct("<8sIIQ")  # magic, version, CRC32C of the rest, header length
_ALIGN = 8
_STALE_TMP_SECONDS = 3600
_FINDING_FIELDS = frozenset(f.name for f in fields(Finding))
_READ_CHUNK = 16 * 1024 * 1024


class CorruptEntry(ValueError):
    """An entry that cannot be used as it is on disk."""


# --- encoding ---------------------------------------------------------------------------


def _state_header(state: FileState, points: Scalars) -> dict:
    return {
        "next_offset": state.next_offset,
        "next_index": state.next_index,
        "corrupt": state.corrupt,
        "plugins": state.plugins,
        "params": state.params,
        "session_starts": state.session_starts,
        "wall_min": state.wall_min,
        "wall_max": state.wall_max,
        "problems": [f.to_dict() for f in state.problems if f.kind != FindingKind.FILE_REPLACED],
        "status": [f.to_dict() for f in state.status],
        "counts": {k: [c.count, c.record, c.offset, c.detail] for k, c in state.counts.items()},
        "tags": points.tags,
        "texts": [[t.tag, t.step, t.wall, t.text, t.record] for t in state.texts],
        "images": [
            [i.tag, i.step, i.wall, i.record, i.offset, i.length, i.value_pos, i.image_pos]
            for i in state.images
        ],
        "tensors": [[t.tag, t.step, t.wall, t.record] for t in state.tensors],
    }


def _key(state: FileState, uri: str, now_ns: int) -> dict:
    racy = now_ns - state.mtime_ns < RACY_NS
    return {
        "uri": uri,
        "run_id": state.run_id,
        "path": state.path,
        "dev": state.dev,
        "ino": state.ino,
        "size": state.size,
        "mtime_ns": state.mtime_ns,
        "head": state.head.hex(),
        "tail": state.tail.hex(),
        "seed": state.seed,
        "racy": racy,
        "crc": state.crc,
        "parser": _parser_id(),
    }


def _parser_id() -> str:
    from runreview.version import __version__

    return f"{__version__}/{PARSER_VERSION}"


def encode_entry(state: FileState, uri: str, now_ns: int) -> list[bytes | np.ndarray]:
    """The pieces of the entry for ``state`` (to be written one after the other)."""
    points = compact_scalars(state.points())
    arrays = {k: getattr(points, k) for k in ("code", "step", "value", "wall", "record")}
    arrays.update(
        {f"tensor{i}": np.ascontiguousarray(t.array) for i, t in enumerate(state.tensors)}
    )
    directory, offset = [], 0
    for name, array in arrays.items():
        directory.append([name, array.dtype.str, list(array.shape), offset, array.nbytes])
        offset += -(-array.nbytes // _ALIGN) * _ALIGN
    header = {"key": _key(state, uri, now_ns), "state": _state_header(state, points)}
    header["arrays"] = directory
    text = json.dumps(header, separators=(",", ":")).encode("ascii")
    text += b" " * (-(len(text) + _PRELUDE.size) % _ALIGN)
    pieces: list[bytes | np.ndarray] = [text]
    for array in arrays.values():
        pieces.append(array.reshape(-1).view(np.uint8))
        pieces.append(bytes(-array.nbytes % _ALIGN))
    crc = 0
    for piece in pieces:
        crc = google_crc32c.extend(crc, piece)
    prelude = _PRELUDE.pack(MAGIC, FORMAT_VERSION, crc, len(text))
    return [prelude, *pieces]


# --- decoding ---------------------------------------------------------------------------


def decode_entry(raw: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and arrays of an entry; raises CorruptEntry when anything is off."""
    if len(raw) < _PRELUDE.size:
        raise CorruptEntry("shorter than its prelude")
    magic, version, crc, header_len = _PRELUDE.unpack_from(raw, 0)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise CorruptEntry("not a cache entry of this version")
    body = np.frombuffer(raw, dtype=np.uint8, offset=_PRELUDE.size)
    if google_crc32c.value(body) != crc or header_len > body.size:
        raise CorruptEntry("checksum mismatch")
    try:
        header = json.loads(raw[_PRELUDE.size : _PRELUDE.size + header_len])
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptEntry(f"header is not JSON: {exc}") from None
    base = _PRELUDE.size + header_len
    return header, {item[0]: _array(raw, base, item) for item in header["arrays"]}


def _array(raw: bytes, base: int, item: list) -> np.ndarray:
    name, dtype_str, shape, offset, nbytes = item
    dtype = np.dtype(dtype_str)
    if dtype.kind not in "biuf" or dtype.hasobject:
        raise CorruptEntry(f"array {name!r} has dtype {dtype_str!r}")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    start = base + int(offset)
    if count * dtype.itemsize != nbytes or start < base or start + nbytes > len(raw):
        raise CorruptEntry(f"array {name!r} is out of bounds")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=start).reshape(shape)


def _findings(items: list[dict]) -> list[Finding]:
    if any(set(d) != _FINDING_FIELDS for d in items):
        raise CorruptEntry("findings do not have the expected fields")
    return [Finding(**d) for d in items]


def _restore(header: dict, arrays: dict[str, np.ndarray]) -> FileState:
    """The FileState an entry describes (raises CorruptEntry, KeyError, TypeError...)."""
    key, s = header["key"], header["state"]
    state = FileState(
        key["path"],
        key["run_id"],
        key["dev"],
        key["ino"],
        key["size"],
        key["mtime_ns"],
        bytes.fromhex(key["head"]),
        next_offset=s["next_offset"],
        next_index=s["next_index"],
        corrupt=s["corrupt"],
        plugins=dict(s["plugins"]),
        params=dict(s["params"]),
        session_starts=[(int(a), int(b)) for a, b in s["session_starts"]],
        wall_min=float(s["wall_min"]),
        wall_max=float(s["wall_max"]),
        problems=_findings(s["problems"]),
        status=_findings(s["status"]),
        counts={k: Count(*v) for k, v in s["counts"].items()},
        seed=dict(key["seed"]),
        tail=bytes.fromhex(key["tail"]),
        crc=int(key["crc"]),
    )
    _restore_items(state, s, arrays)
    points = _restore_points(s["tags"], arrays)
    state.scalars = [points] if points.code.size else []
    return state


def _restore_items(state: FileState, s: dict, arrays: dict[str, np.ndarray]) -> None:
    """Texts, image references and tensors of an entry."""
    path = state.path
    state.texts = [Text(*t) for t in s["texts"]]
    state.images = [
        ImageRef(tag, step, wall, record, path, offset, length, value_pos, image_pos)
        for tag, step, wall, record, offset, length, value_pos, image_pos in s["images"]
    ]
    state.tensors = [
        Tensor(tag, step, wall, arrays[f"tensor{i}"], record, path)
        for i, (tag, step, wall, record) in enumerate(s["tensors"])
    ]


def _restore_points(tags: list[str], arrays: dict[str, np.ndarray]) -> Scalars:
    """The scalar columns of an entry, checked for equal lengths and valid codes."""
    columns = [arrays[k] for k in ("code", "step", "value", "wall", "record")]
    if len({c.size for c in columns}) != 1:
        raise CorruptEntry("scalar columns differ in length")
    code = columns[0]
    if code.size and (not tags or int(code.max()) >= len(tags) or int(code.min()) < 0):
        raise CorruptEntry("tag code out of range")
    return Scalars(list(tags), *columns)


# --- checking an entry against the file -------------------------------------------------


def file_crc(fd: int, size: int) -> int:
    """The CRC32C of the first ``size`` bytes of the file open as ``fd``."""
    crc, offset = 0, 0
    while offset < size:
        chunk = os.pread(fd, min(_READ_CHUNK, size - offset), offset)
        if not chunk:
            break
        crc = google_crc32c.extend(crc, chunk)
        offset += len(chunk)
    return crc


def describes(key: dict, fd: int, st: os.stat_result, head: bytes) -> bool:
    """True when the entry ``key`` still describes the file open as ``fd`` (stat ``st``,
    first bytes ``head``): same file, not shrunk, same first and last cached bytes; when
    the size is unchanged also the same mtime, and for a racy entry the same content."""
    size = key["size"]
    if (key["dev"], key["ino"]) != (st.st_dev, st.st_ino) or st.st_size < size:
        return False
    cached_head, tail = bytes.fromhex(key["head"]), bytes.fromhex(key["tail"])
    if head[: len(cached_head)] != cached_head:
        return False
    if tail and os.pread(fd, len(tail), size - len(tail)) != tail:
        return False
    if st.st_size == size:
        if st.st_mtime_ns != key["mtime_ns"]:
            return False
        if key["racy"] and file_crc(fd, size) != key["crc"]:
            return False
    return True


# --- the cache --------------------------------------------------------------------------


class EventFileCache:
    """Parsed event files on disk (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES):
        self.root = Path(folder)
        self.folder = self.root / SUBDIR
        self.max_bytes = max_bytes
        self.corrupt_entries = 0
        self._written = 0

    def entry_path(self, uri: str, run_id: str, path: str) -> Path:
        """Where the entry of ``path`` read as run ``run_id`` of ``uri`` lives."""
        name = "\0".join((uri, run_id, path)).encode("utf-8", "surrogateescape")
        return self.folder / f"{hashlib.sha256(name).hexdigest()[:40]}{SUFFIX}"

    def load(
        self,
        path: str,
        run_id: str,
        uri: str,
        seed: dict[str, str],
        fd: int,
        st: os.stat_result,
        head: bytes,
    ) -> FileState | None:
        """The cached state of ``path`` when an entry exists and still describes the open
        file ``fd``; None otherwise (also for an unreadable or corrupt entry)."""
        entry = self.entry_path(uri, run_id, path)
        try:
            raw = entry.read_bytes()
        except OSError:
            return None
        try:
            header, arrays = decode_entry(raw)
            key = header["key"]
            if (key["uri"], key["run_id"], key["path"], key["seed"]) != (uri, run_id, path, seed):
                return None
            if key["parser"] != _parser_id():
                return None
            if not describes(key, fd, st, head):
                return None
            state = _restore(header, arrays)
        except (CorruptEntry, KeyError, TypeError, ValueError, IndexError, OSError):
            self.corrupt_entries += 1
            return None
        with contextlib.suppress(OSError):
            os.utime(entry)  # most recently used
        return state

    def save(self, state: FileState, uri: str) -> int:
        """Write the entry of ``state`` (atomically); returns its size. Raises OSError."""
        pieces = encode_entry(state, uri, time.time_ns())
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The name is chosen before the file exists and created inside the try: a Ctrl-C
        # between mkstemp's return and the try used to leave a temp file behind (C15).
        tmp = self.folder / f".tmp-{secrets.token_hex(8)}{SUFFIX}"
        try:
            with open(tmp, "xb") as fh:
                for piece in pieces:
                    fh.write(piece)
                size = fh.tell()
            os.replace(tmp, self.entry_path(uri, state.run_id, state.path))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._written += size
        if self._written > self.max_bytes // 8:
            self.evict()
        return size

    def forget(self, uri: str, run_id: str, path: str) -> None:
        """Delete the entry of one file (missing is fine)."""
        with contextlib.suppress(OSError):
            os.unlink(self.entry_path(uri, run_id, path))

    def evict(self) -> None:
        """Delete least recently used entries while the folder is above ``max_bytes``,
        down to 80% of it; also leftover temporary files of crashed writers."""
        self._written = 0
        entries, total = [], 0
        now = time.time()
        try:
            with os.scandir(self.folder) as it:
                for item in it:
                    with contextlib.suppress(OSError):
                        st = item.stat(follow_symlinks=False)
                        if item.name.startswith(".tmp-"):
                            if now - st.st_mtime > _STALE_TMP_SECONDS:
                                os.unlink(item.path)
                            continue
                        if item.name.endswith(SUFFIX):
                            entries.append((st.st_mtime_ns, st.st_size, item.path))
                            total += st.st_size
        except OSError:
            return
        if total <= self.max_bytes:
            return
        for _, size, path in sorted(entries):
            with contextlib.suppress(OSError):
                os.unlink(path)
                total -= size
            if total <= self.max_bytes * 0.8:
                break
