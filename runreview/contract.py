"""The data contract every source returns (see DESIGN.md).

Column names follow ``mlflow.search_runs`` so MLflow users recognise them. A run is
identified by ``(source_uri, run_id)``, never by its name.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
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

SEVERITY_ERROR = "error"
SEVERITY_WARNING = "warning"
SEVERITY_INFO = "info"

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


# --- findings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A problem met while reading a source: something skipped, damaged or unreadable.

    Findings are how runreview keeps its "nothing lost" promise: every item that could not
    be read is named here and shown in the app and the reports.
    """

    severity: str
    source_uri: str
    message: str
    path: str | None = None
    offset: int | None = None
    record: int | None = None
    run_id: str | None = None
    kind: str = "problem"

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
