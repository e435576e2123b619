"""What every MLflow reader (sqlite, server, mlruns folder) hands to ``MlflowSource``.

A backend returns *long* tables (one row per run, param, latest metric, tag); this module
turns them into the contract's runs frame and builds history frames column by column, so
all three readers produce identical frames for the same store.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from runreview.contract import (
    HISTORY_COLUMNS,
    METRIC_PREFIX,
    PARAM_PREFIX,
    SOURCE_MLFLOW,
    STATUS_FAILED,
    STATUS_FINISHED,
    STATUS_KILLED,
    STATUS_RUNNING,
    STATUS_SCHEDULED,
    TAG_PREFIX,
    TEXT_DTYPE,
    TIME_DTYPE,
    Finding,
    empty_history,
    normalise_history,
    order_run_columns,
)
from runreview.redact import redact_uri
from runreview.sources.mlflow.artifacts import ArtifactAccess

#: SQL stores keep +/-inf as +/- the largest double (SqlAlchemyStore.sanitize_metric_value);
#: runreview turns them back into infinities so every store shows the same values.
SQL_INFINITY = 1.7976931348623157e308
#: MLflow's numeric run statuses (mlflow.entities.RunStatus), as stored in mlruns meta.yaml.
STATUS_BY_NUMBER = {
    1: STATUS_RUNNING,
    2: STATUS_SCHEDULED,
    3: STATUS_FINISHED,
    4: STATUS_FAILED,
    5: STATUS_KILLED,
}
LIFECYCLE_ACTIVE = "active"
LIFECYCLE_DELETED = "deleted"
#: Run ids as MLflow validates them (``_validate_run_id``); anything else is refused.
RUN_ID_PATTERN = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")

RUN_INFO_COLUMNS = [
    "experiment_id",
    "experiment",
    "run_id",
    "run_name",
    "status",
    "start_ms",
    "end_ms",
    "lifecycle_stage",
    "artifact_uri",
    "user_id",
]

Report = Callable[[Finding], None]


@dataclass
class RunTables:
    """Runs and their params, latest metrics and tags as long tables."""

    runs: pd.DataFrame
    params: pd.DataFrame
    metrics: pd.DataFrame
    tags: pd.DataFrame

    @classmethod
    def from_rows(
        cls,
        runs: Sequence[Sequence[Any]],
        params: Sequence[Sequence[Any]],
        metrics: Sequence[Sequence[Any]],
        tags: Sequence[Sequence[Any]],
    ) -> RunTables:
        """Tables from row tuples: runs as RUN_INFO_COLUMNS, params/tags (run_id, key, value),
        metrics (run_id, key, value, step)."""
        return cls(
            runs=pd.DataFrame(list(runs), columns=RUN_INFO_COLUMNS),
            params=pd.DataFrame(list(params), columns=["run_id", "key", "value"]),
            metrics=pd.DataFrame(list(metrics), columns=["run_id", "key", "value", "step"]),
            tags=pd.DataFrame(list(tags), columns=["run_id", "key", "value"]),
        )

    def metric_hints(self) -> dict[str, dict[str, int]]:
        """metric key -> {run_id: latest step + 1}, a hint of how many points were logged."""
        hints: dict[str, dict[str, int]] = {}
        steps = pd.to_numeric(self.metrics["step"], errors="coerce").fillna(0).astype("int64")
        for run_id, key, step in zip(
            self.metrics["run_id"], self.metrics["key"], steps, strict=True
        ):
            hints.setdefault(key, {})[run_id] = max(1, int(step) + 1)
        return hints


@dataclass
class RunInfo:
    """What the per-run readers (details, environment, confusion) need to know of one run."""

    run_id: str
    experiment_id: str
    experiment: str
    artifact_uri: str
    experiment_root: str | None
    user_id: str | None
    lifecycle_stage: str
    status: str
    tags: dict[str, str] = field(default_factory=dict)


class MlflowBackend(ABC):
    """One way of reading an MLflow store. Every method is read-only."""

    def __init__(self, source_uri: str, include_deleted: bool, report: Report) -> None:
        self.source_uri = source_uri
        self.include_deleted = include_deleted
        self.report = report

    @abstractmethod
    def read_tables(self, experiments: list[str] | None) -> RunTables:
        """Runs (of the named experiments, or all) with params, latest metrics and tags."""

    @abstractmethod
    def read_history(self, metrics: list[str] | None, run_ids: list[str] | None) -> pd.DataFrame:
        """Every logged point, as the contract's history frame."""

    @abstractmethod
    def run_info(self, run_id: str) -> RunInfo:
        """One run's info and tags; :class:`SourceError` when it is not in the store."""

    @abstractmethod
    def datasets(self, run_id: str) -> list[dict[str, Any]]:
        """Dataset inputs of the run: name, digest, source_type, source, context."""

    @abstractmethod
    def model_versions(self, run_id: str) -> list[dict[str, Any]]:
        """Registered model versions created from the run: name, version, status."""

    @abstractmethod
    def logged_models(self, info: RunInfo) -> list[dict[str, Any]]:
        """MLflow 3 logged models whose source run is this run: model_id, name,
        artifact_location."""

    @abstractmethod
    def artifacts(self, location: str, trusted_root: str | None, run: RunInfo) -> ArtifactAccess:
        """Checked read access to an artifact location (raises ``UnsafeArtifactPath``)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def restore_infinities(values: np.ndarray) -> np.ndarray:
    """Float values with SQL's +/-max-double sentinels turned back into +/-inf."""
    out = np.asarray(values, dtype="float64").copy()
    out[out >= SQL_INFINITY] = np.inf
    out[out <= -SQL_INFINITY] = -np.inf
    return out


def ms_to_utc(values: Any) -> pd.Series:
    """Epoch milliseconds (None allowed) as UTC timestamps in the contract's TIME_DTYPE."""
    numbers = np.asarray(values)
    if numbers.dtype.kind in "iu":
        stamps = pd.Series(numbers.astype("int64").view("datetime64[ms]")).dt.tz_localize("UTC")
    else:
        series = pd.Series(list(numbers), dtype="object")
        floats = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
        stamps = pd.Series(pd.to_datetime(floats, unit="ms", utc=True))
    return stamps.astype(TIME_DTYPE)


def build_runs_frame(tables: RunTables, source_uri: str) -> pd.DataFrame:
    """The contract's runs frame (oldest run first): base columns, params/metrics/tags, then
    ``artifact_uri`` (credentials removed), ``experiment_id`` and ``lifecycle_stage``."""
    runs = tables.runs.sort_values(["start_ms", "run_id"], na_position="last", kind="stable")
    base = pd.DataFrame(
        {
            "source": SOURCE_MLFLOW,
            "source_uri": source_uri,
            "experiment": runs["experiment"].to_numpy(),
            "run_id": runs["run_id"].to_numpy(),
            "run_name": runs["run_name"].to_numpy(),
            "status": runs["status"].to_numpy(),
            "start_time": ms_to_utc(runs["start_ms"]).array,
            "end_time": ms_to_utc(runs["end_ms"]).array,
            "experiment_id": runs["experiment_id"].astype(str).to_numpy(),
            "lifecycle_stage": runs["lifecycle_stage"].to_numpy(),
            "artifact_uri": [redact_uri(u) if u else u for u in runs["artifact_uri"]],
        },
        index=pd.RangeIndex(len(runs)),
    )
    metrics = tables.metrics.assign(value=restore_infinities(tables.metrics["value"]))
    wide = [
        _pivot(tables.params, PARAM_PREFIX),
        _pivot(metrics, METRIC_PREFIX),
        _pivot(tables.tags, TAG_PREFIX),
    ]
    frame = base.join(pd.concat(wide, axis=1), on="run_id") if len(base) else base
    frame = order_run_columns(frame)
    for col in frame.columns:
        if frame[col].dtype.kind not in "fMm":  # every text column: the contract's TEXT_DTYPE
            frame[col] = frame[col].astype(TEXT_DTYPE)
    return frame


def _pivot(long: pd.DataFrame, prefix: str) -> pd.DataFrame:
    if long.empty:
        return pd.DataFrame(index=pd.Index([], name="run_id"))
    unique = long.drop_duplicates(["run_id", "key"], keep="last")
    wide = unique.pivot(index="run_id", columns="key", values="value")
    wide.columns = [prefix + str(k) for k in wide.columns]
    return wide


def build_history_frame(
    source_uri: str,
    run_ids: Sequence[str] | np.ndarray,
    keys: Sequence[str] | np.ndarray,
    steps: Sequence[int] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    timestamps_ms: Sequence[int] | np.ndarray,
) -> pd.DataFrame:
    """The contract's history frame from columns, sorted by run, metric, step, timestamp."""
    if len(run_ids) == 0:
        return empty_history()
    frame = pd.DataFrame(
        {
            "source": SOURCE_MLFLOW,
            "source_uri": source_uri,
            "run_id": np.asarray(run_ids, dtype="object"),
            "metric": np.asarray(keys, dtype="object"),
            "step": np.asarray(steps, dtype="int64"),
            "value": restore_infinities(np.asarray(values, dtype="float64")),
            "timestamp": ms_to_utc(np.asarray(timestamps_ms, dtype="int64")).array,
        },
        columns=HISTORY_COLUMNS,
    )
    frame = frame.sort_values(["run_id", "metric", "step", "timestamp"], kind="stable")
    return normalise_history(frame)
