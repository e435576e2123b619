"""What is kept of one event file once read: columnar scalars, other items, findings.

A :class:`FileState` holds everything read so far from one file, plus where to continue
when the file grows. Scalars are columnar (:class:`Scalars`: one array per field, tags as
codes into a list of names). Problems are kept per kind, the first
:data:`MAX_FINDINGS_PER_KIND` one by one and the rest counted.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from runreview.contract import Finding, FindingKind, Severity

PLUGIN_SCALARS = "scalars"
PLUGIN_IMAGES = "images"
PLUGIN_TEXT = "text"
PLUGIN_HPARAMS = "hparams"
#: Plugins whose tensors are not "2-D tensors" even when they have rank 2.
OTHER_TENSOR_PLUGINS = frozenset(
    {"histograms", "pr_curves", "audio", "mesh", "custom_scalars", "graph", "projector"}
)
#: Tensors declaring more elements than this are not materialised.
MAX_TENSOR_ELEMENTS = 10_000_000
#: Individual findings of one kind per file; the rest are counted in one more finding.
MAX_FINDINGS_PER_KIND = 20


SERIALS = itertools.count()  # identifies file states in run cache keys
WALL_LIMIT = 9.2e9  # seconds; datetime64[ns] cannot hold more


@dataclass
class Scalars:
    """Columnar scalar points; ``tags[code[i]]`` is the tag of point ``i``."""

    tags: list[str]
    code: np.ndarray
    step: np.ndarray
    value: np.ndarray
    wall: np.ndarray
    record: np.ndarray


@dataclass
class Text:
    """One text summary."""

    tag: str
    step: int
    wall: float
    text: str
    record: int


@dataclass
class ImageRef:
    """Where an encoded image is: re-read on demand, so images never pile up in memory."""

    tag: str
    step: int
    wall: float
    record: int
    path: str
    offset: int  # file offset of the record data
    length: int
    value_pos: int  # position in Summary.value
    image_pos: int  # -1: v1 ``image`` field; else index into ``string_val[2:]``


@dataclass
class Tensor:
    """One rank-2 numeric tensor summary."""

    tag: str
    step: int
    wall: float
    array: np.ndarray
    record: int
    path: str


@dataclass
class Count:
    """Occurrences of one kind of problem in a file, with the first one named."""

    count: int
    record: int
    offset: int | None
    detail: str


@dataclass
class FileState:
    """Everything read so far from one event file."""

    path: str
    run_id: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    head: bytes
    next_offset: int = 0
    next_index: int = 0
    corrupt: bool = False
    version: int = 0
    plugins: dict[str, str] = field(default_factory=dict)
    scalars: list[Scalars] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    images: list[ImageRef] = field(default_factory=list)
    tensors: list[Tensor] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    session_starts: list[tuple[int, int]] = field(default_factory=list)  # (step, record)
    wall_min: float = math.nan
    wall_max: float = math.nan
    problems: list[Finding] = field(default_factory=list)
    status: list[Finding] = field(default_factory=list)
    counts: dict[str, Count] = field(default_factory=dict)
    seed: dict[str, str] = field(default_factory=dict)  # plugins of the run's earlier files
    tail: bytes = b""  # the last bytes of [0, size)
    crc: int = 0  # CRC32C of [0, size)
    saved_size: int = 0  # size when last written to the disk cache (0: never)
    saved_at: float = 0.0  # time.monotonic() then
    serial: int = field(default_factory=lambda: next(SERIALS))

    def count(self, kind: str, n: int, record: int, offset: int | None, detail: str) -> None:
        """Add ``n`` occurrences of ``kind``; the first one seen is kept as an example."""
        if n <= 0:
            return
        if kind in self.counts:
            self.counts[kind].count += n
        else:
            self.counts[kind] = Count(n, record, offset, detail)

    def problem(self, kind: FindingKind, finding: Finding) -> None:
        """Keep ``finding`` unless this file already has many of its kind (then count it).

        Findings about no single record (summaries such as "N more ...") are always kept.
        """
        if (
            finding.record is None
            or sum(1 for f in self.problems if f.kind == kind) < MAX_FINDINGS_PER_KIND
        ):
            self.problems.append(finding)
        else:
            self.count(f"more:{kind}", 1, finding.record or 0, finding.offset, kind)

    def points(self) -> Scalars:
        """All scalar points of the file in one :class:`Scalars`; its chunks are joined
        (and kept joined, so a file that grew many times is not joined again each time)."""
        if len(self.scalars) == 1:
            return self.scalars[0]
        joined = join_scalars(self.scalars)
        self.scalars = [compact_scalars(joined)] if joined.code.size else []
        return self.scalars[0] if self.scalars else joined


def compact_scalars(points: Scalars) -> Scalars:
    """The same points with the smallest safe dtypes for tag codes (uint8/uint16) and
    record numbers (int32): 36 bytes a point become 29."""
    count = len(points.tags)
    code_dtype = np.uint8 if count <= 256 else np.uint16 if count <= 65536 else np.int32
    record = points.record
    if record.size and record.min() >= 0 and record.max() < 2**31:
        record = record.astype(np.int32, copy=False)
    return Scalars(
        points.tags,
        points.code.astype(code_dtype, copy=False),
        points.step.astype(np.int64, copy=False),
        points.value.astype(np.float64, copy=False),
        points.wall.astype(np.float64, copy=False),
        record,
    )


def empty_scalars() -> Scalars:
    """Scalars without points."""
    i64, f64 = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    return Scalars([], np.zeros(0, dtype=np.int32), i64, f64, f64.copy(), i64.copy())


def merge_scalars(a: Scalars, b: Scalars) -> Scalars:
    """Points of ``a`` and ``b`` (disjoint records) together, in record order."""
    return join_scalars([a, b])


def join_scalars(chunks: list[Scalars]) -> Scalars:
    """The points of ``chunks`` (disjoint records) in one :class:`Scalars`, in record
    order; tags in order of first appearance. Each column is concatenated once."""
    chunks = [c for c in chunks if c.code.size]
    if not chunks:
        return empty_scalars()
    if len(chunks) == 1:
        return chunks[0]
    codes: dict[str, int] = {}
    parts = []
    for chunk in chunks:
        remap = np.array([codes.setdefault(t, len(codes)) for t in chunk.tags], dtype=np.int32)
        parts.append(remap[chunk.code])
    columns = [np.concatenate(parts)]
    columns += [
        np.concatenate([getattr(c, name) for c in chunks])
        for name in ("step", "value", "wall", "record")
    ]
    record = columns[-1]
    if not (record[1:] >= record[:-1]).all():  # stable argsort of sorted records: no-op
        order = np.argsort(record, kind="stable")
        columns = [c[order] for c in columns]
    return Scalars(list(codes), *columns)


_FRIENDLY_NAMES = {
    "histo": "histogram",
    "obsolete_old_style_histogram": "histogram",
    "histograms": "histogram",
    "graph_def": "graph",
    "meta_graph_def": "meta graph",
    "tagged_run_metadata": "run metadata",
    "log_message": "log message",
    "pr_curves": "PR curve",
}
_COUNT_MESSAGES = {
    FindingKind.NAN_WALL_TIME: (
        "{n} event(s) with NaN wall_time (first: record {r}): kept, with an empty timestamp "
        "(TensorBoard drops them)"
    ),
    FindingKind.NEGATIVE_WALL_TIME: (
        "{n} event(s) with a negative or out-of-range wall_time (first: record {r}): kept"
    ),
    FindingKind.NEGATIVE_STEP: "{n} point(s) with a negative step (first: record {r}): kept",
    FindingKind.AFTER_CORRUPT_RECORD: (
        "{n} more record(s) after an earlier corrupt record were read in later reads of the "
        "file (from record {r}; the file grew, or was read in chunks), each with valid CRCs, "
        "and are flagged as following a corrupt record"
    ),
}


def _count_finding(state: FileState, kind: str, c: Count, uri: str) -> Finding:
    if kind.startswith("skip:"):
        what = kind.removeprefix("skip:")
        what = _FRIENDLY_NAMES.get(what, what)
        message = f"{c.count} {what} item(s) not read (not supported; first: {c.detail})"
        severity, kind = Severity.INFO, FindingKind.NOT_READ
    elif kind.startswith("more:"):
        message = f"{c.count} more {c.detail} problem(s) in this file, not listed one by one"
        severity, kind = Severity.ERROR, c.detail
    else:
        message = _COUNT_MESSAGES[kind].format(n=c.count, r=c.record)
        severity = Severity.WARNING
    return Finding(
        severity,
        uri,
        message,
        path=state.path,
        offset=c.offset,
        record=c.record,
        run_id=state.run_id,
        kind=kind,
    )


def file_findings(state: FileState, uri: str) -> list[Finding]:
    """Every finding about one file: problems, counted kinds, then its current status."""
    counted = [_count_finding(state, k, c, uri) for k, c in state.counts.items()]
    return state.problems + counted + state.status
