"""The data contract every source returns (see DESIGN.md).

Column names follow ``mlflow.search_runs`` so MLflow users recognise them. A run is
identified by ``(source_uri, run_id)``, never by its name.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum, unique
from typing import Any

import numpy as np
import pandas as pd

# --- vocabulary -------------------------------------------------------------------------

SOURCE_MLFLOW = "mlflow"
SOURCE_TENSORBOARD = "tensorboard"
SOURCE_WANDB = "wandb"

STATUS_RUNNING = "RUNNING"
STATUS_FINISHED = "FINISHED"
STATUS_FAILED = "FAILED"
STATUS_KILLED = "KILLED"
STATUS_SCHEDULED = "SCHEDULED"

PARAM_PREFIX = "params."
METRIC_PREFIX = "metrics."
TAG_PREFIX = "tags."

RUN_COLUMNS = [
    "source",
    "source_uri",
    "experiment",
    "run_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
]
HISTORY_COLUMNS = ["source", "source_uri", "run_id", "metric", "step", "value", "timestamp"]

# Environment keys (values are (value, origin) pairs in Environment.values).
ENV_PYTHON = "python"
ENV_PLATFORM = "platform"
ENV_CUDA = "cuda"
ENV_GPU = "gpu"
ENV_GIT_COMMIT = "git.commit"
ENV_GIT_BRANCH = "git.branch"
ENV_GIT_DIRTY = "git.dirty"
ENV_GIT_DIFF = "git.diff"
ENV_GIT_REMOTE = "git.remote"

ENVIRONMENT_FILE = "environment.json"
CONFUSION_FILE = "confusion_matrix.json"
ENVIRONMENT_SCHEMA = "runreview.environment/1"


# --- the run key ------------------------------------------------------------------------

#: A run's identity: ``(source_uri, run_id)``. Names repeat; this pair does not.
RunKey = tuple[str, str]
#: The columns holding the run key in the runs and history frames.
RUN_KEY_COLUMNS = ["source_uri", "run_id"]
#: Separates the source URI from the run id in a run key's string form.
RUN_KEY_SEP = "::"
_ESCAPES = (("%", "%25"), (":", "%3A"))  # "%" first when escaping, last when unescaping


def encode_run_key(key: RunKey) -> str:
    """A run key as one string (widgets, the app's URL, chart series): ``<source_uri>::<run_id>``.

    The run id's ``%`` and ``:`` are percent-escaped, so the last ``::`` is always the
    separator and two different keys never give the same string (a URI may hold ``::``,
    e.g. an IPv6 host). Run ids of the supported sources seldom hold either character, so
    the string is usually just ``<source_uri>::<run_id>``.
    """
    run_id = str(key[1])
    for char, escaped in _ESCAPES:
        run_id = run_id.replace(char, escaped)
    return f"{key[0]}{RUN_KEY_SEP}{run_id}"


def decode_run_key(text: str) -> RunKey:
    """The run key of :func:`encode_run_key`'s string (a run id written unescaped, as in
    older links, is read as it is unless it holds ``::``)."""
    source_uri, _, run_id = text.rpartition(RUN_KEY_SEP)
    for char, escaped in reversed(_ESCAPES):
        run_id = run_id.replace(escaped, char)
    return source_uri, run_id


def run_keys(frame: pd.DataFrame) -> list[RunKey]:
    """The run keys of a runs (or leaderboard) frame's rows, in order."""
    return list(zip(frame["source_uri"], frame["run_id"], strict=True))


def encoded_run_keys(frame: pd.DataFrame) -> pd.Series:
    """:func:`encode_run_key` of every row of a frame with the run key columns (vectorised)."""
    run_id = frame["run_id"].astype(str)
    for char, escaped in _ESCAPES:
        run_id = run_id.str.replace(char, escaped, regex=False)
    return frame["source_uri"].astype(str) + RUN_KEY_SEP + run_id


# --- findings ---------------------------------------------------------------------------


@unique
class Severity(StrEnum):
    """How bad a :class:`Finding` is. Members are strings: they compare equal to, and
    print and serialise (JSON, CSV, f-strings) as, their plain value."""

    #: Data is lost or cannot be read (damaged records, unreadable files or sources).
    ERROR = "error"
    #: Data was read but something about it is off, or a part was skipped.
    WARNING = "warning"
    #: Worth knowing, nothing lost (an empty file, a filter that matched nothing, ...).
    INFO = "info"


@unique
class FindingKind(StrEnum):
    """What a :class:`Finding` is about: the one list of finding kinds (``Finding.kind``).

    Members are strings: they compare equal to, and print and serialise as, their value,
    which is what the JSON/CSV output and the reports show. Add a kind here, never as a
    string literal where a finding is made.
    """

    # -- any source --------------------------------------------------------------------
    PROBLEM = "problem"  # no more specific kind (the default; most MLflow read problems)
    SOURCE = "source"  # a whole source could not be opened or read
    IO_ERROR = "io_error"  # a file could not be opened or read (missing, denied, ...)
    SIDE_FILE = "side_file"  # an environment / requirements / confusion side file not read
    WALK = "walk"  # an entry of a folder not listed or skipped while walking it
    FILE_REPLACED = "file_replaced"  # a file shrank or was replaced since the last read
    DECODE_ERROR = "decode_error"  # a record with valid framing whose content won't decode
    # -- record framing (TensorBoard event files and W&B run files) --------------------
    EMPTY_FILE = "empty_file"  # a 0-byte file
    INCOMPLETE_TAIL = "incomplete_tail"  # the last record is cut off (being written?)
    ZERO_FILLED_TAIL = "zero_filled_tail"  # the file ends in zero bytes (typical of a crash)
    UNREADABLE = "unreadable"  # bytes from an offset cannot be framed (bad header/length)
    RESYNC = "resync"  # reading went on at the next valid record after unreadable bytes
    AFTER_CORRUPT_RECORD = "after_corrupt_record"  # records read after a corrupt one
    # -- MLflow ------------------------------------------------------------------------
    FILTER = "filter"  # an experiment asked for is not in the store (or is deleted)
    PAGINATION = "pagination"  # a server's runs changed while they were paged through
    HISTORY = "history"  # the server has no bulk history route: read run by run
    ARTIFACTS = "artifacts"  # a run's artifacts could not be listed or read
    ENCODING = "encoding"  # the store holds text that is not UTF-8 (shown as U+FFFD)
    SCHEMA = "schema"  # an older store schema version, read as it is
    # -- TensorBoard -------------------------------------------------------------------
    NOT_EVENT_FILE = "not_event_file"  # no valid TFRecord anywhere in a tfevents file
    COMPRESSED_FILE = "compressed_file"  # a gzip/zlib-compressed event file (not read)
    DATA_CRC_MISMATCH = "data_crc_mismatch"  # a record failing its data CRC (skipped)
    RECORD_TOO_LONG = "record_too_long"  # a record longer than the length cap (not read)
    SYMLINK = "symlink"  # a dangling or looping symlink, or a folder reached twice
    CACHE = "cache"  # the disk cache of parsed event files cannot be used
    RESTART = "restart"  # a run's steps start again (a restart): both segments kept
    NOT_READ = "not_read"  # summaries of an unsupported type (histograms, ...) counted
    NAN_WALL_TIME = "nan_wall_time"  # events with a NaN wall_time (kept, no timestamp)
    NEGATIVE_WALL_TIME = "negative_wall_time"  # events with a negative/out-of-range time
    NEGATIVE_STEP = "negative_step"  # scalar points with a negative step (kept)
    BAD_TENSOR = "bad_tensor"  # a tensor summary that cannot be read as its plugin says
    # -- W&B ---------------------------------------------------------------------------
    NOT_WANDB_FILE = "not_wandb_file"  # a .wandb file without the ':W&B' header
    UNSUPPORTED_VERSION = "unsupported_version"  # a .wandb format version not known here
    CRC_MISMATCH = "crc_mismatch"  # a chunk failing its CRC, or a record missing a chunk
    ORPHAN_CHUNK = "orphan_chunk"  # a chunk continuing a record whose start was lost
    BAD_PADDING = "bad_padding"  # non-zero padding at the end of a 32 KiB block
    NO_RUN_FILE = "no_run_file"  # a run folder without its .wandb file (not listed)
    RESUMED = "resumed"  # a run resumed in another folder (segments joined)
    NOT_NUMERIC = "not_numeric"  # logged values that are not numbers (not in the history)
    NO_RUN_RECORD = "no_run_record"  # no run record: no name or start time for the run
    NO_EXIT_RECORD = "no_exit_record"  # no exit record and the file is stale (killed)


@dataclass(frozen=True)
class Finding:
    """A problem met while reading a source: something skipped, damaged or unreadable.

    Findings are how runreview keeps its "nothing lost" promise: every item that could not
    be read is named here and shown in the app and the reports. ``severity`` and ``kind``
    are :class:`Severity` and :class:`FindingKind` members (findings read back from JSON,
    e.g. the TensorBoard disk cache, hold the equal plain strings).
    """

    severity: Severity
    source_uri: str
    message: str
    path: str | None = None
    offset: int | None = None
    record: int | None = None
    run_id: str | None = None
    kind: FindingKind = FindingKind.PROBLEM

    def line(self) -> str:
        """One human-readable line, as printed by ``runreview check``."""
        where = self.path or self.source_uri
        parts = [f"{self.severity.upper()}: {where}"]
        if self.run_id:
            parts.append(f"run {self.run_id}")
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        if self.record is not None:
            parts.append(f"record {self.record}")
        return ": ".join([", ".join(parts), self.message])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return asdict(self)


@dataclass(frozen=True)
class FileContext:
    """Where bytes being parsed came from, so a reader can name the file in findings."""

    path: str | None = None
    source_uri: str = ""
    run_id: str | None = None

    def finding(
        self,
        severity: Severity,
        kind: FindingKind,
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


# --- per-run records --------------------------------------------------------------------


@dataclass
class Environment:
    """A normalised environment record for one run.

    ``values`` maps a key (``ENV_*`` or any other name found) to ``(value, origin)``, where
    origin says where it was found (an artifact path, a tag name, a file).
    """

    source_uri: str
    run_id: str
    values: dict[str, tuple[Any, str]] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)
    packages_origin: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        """The value for ``key`` without its origin."""
        item = self.values.get(key)
        return default if item is None else item[0]

    def set(self, key: str, value: Any, origin: str, *, overwrite: bool = False) -> None:
        """Record ``value`` for ``key``; the first origin wins unless ``overwrite``."""
        if value is None or value == "":
            return
        if overwrite or key not in self.values:
            self.values[key] = (value, origin)

    def is_empty(self) -> bool:
        """True when nothing at all was found for the run."""
        return not self.values and not self.packages

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "source_uri": self.source_uri,
            "run_id": self.run_id,
            "values": {k: {"value": v, "origin": o} for k, (v, o) in self.values.items()},
            "packages": dict(self.packages),
            "packages_origin": self.packages_origin,
        }


@dataclass
class ConfusionData:
    """A confusion matrix of one run: rows are the true class, columns the prediction.

    ``counts`` is None when the run only logged an image of a matrix (``image`` holds PNG
    bytes then).
    """

    source_uri: str
    run_id: str
    name: str
    labels: list[str]
    counts: np.ndarray | None
    origin: str
    image: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (without image bytes)."""
        return {
            "source_uri": self.source_uri,
            "run_id": self.run_id,
            "name": self.name,
            "labels": list(self.labels),
            "matrix": None if self.counts is None else np.asarray(self.counts).tolist(),
            "origin": self.origin,
            "has_image": self.image is not None,
        }


# --- frames -----------------------------------------------------------------------------


TIME_DTYPE = "datetime64[us, UTC]"
TEXT_DTYPE = "str"


def empty_runs() -> pd.DataFrame:
    """An empty runs frame with the contract's fixed columns and dtypes."""
    frame = pd.DataFrame({c: pd.Series(dtype=TEXT_DTYPE) for c in RUN_COLUMNS})
    for col in ("start_time", "end_time"):
        frame[col] = pd.Series(dtype=TIME_DTYPE)
    return frame


def empty_history() -> pd.DataFrame:
    """An empty history frame with the contract's columns and dtypes."""
    return pd.DataFrame(
        {
            "source": pd.Series(dtype=TEXT_DTYPE),
            "source_uri": pd.Series(dtype=TEXT_DTYPE),
            "run_id": pd.Series(dtype=TEXT_DTYPE),
            "metric": pd.Series(dtype=TEXT_DTYPE),
            "step": pd.Series(dtype="int64"),
            "value": pd.Series(dtype="float64"),
            "timestamp": pd.Series(dtype=TIME_DTYPE),
        }
    )


def order_run_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Fixed column order: the base columns, then params, metrics and tags, each sorted."""
    for col in RUN_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    rest = [c for c in frame.columns if c not in RUN_COLUMNS]
    groups = [
        sorted(c for c in rest if c.startswith(p))
        for p in (PARAM_PREFIX, METRIC_PREFIX, TAG_PREFIX)
    ]
    other = sorted(
        c
        for c in rest
        if not any(c.startswith(p) for p in (PARAM_PREFIX, METRIC_PREFIX, TAG_PREFIX))
    )
    cols = RUN_COLUMNS + groups[0] + groups[1] + groups[2] + other
    frame = frame[cols]
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True).astype(TIME_DTYPE)
    for col in groups[1]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame.reset_index(drop=True)


def normalise_history(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerce a history frame to the contract's column order and dtypes."""
    if frame.empty:
        return empty_history()
    out = frame[HISTORY_COLUMNS].copy()
    out["step"] = out["step"].astype("int64")
    out["value"] = out["value"].astype("float64")
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True).astype(TIME_DTYPE)
    return out.reset_index(drop=True)


def findings_to_json(findings: list[Finding]) -> str:
    """Findings as a JSON array (for the CLI and the reports)."""
    return json.dumps([f.to_dict() for f in findings], indent=2)
