"""Reading a legacy MLflow file store (an ``mlruns`` folder) with our own read-only reader.

MLflow 3.17's ``FileStore`` refuses to open without ``MLFLOW_ALLOW_FILE_STORE=true`` and
creates ``.trash`` (or a whole default experiment) when they are missing, so runreview reads
the documented layout itself and never writes:

    mlruns/<exp_id>/meta.yaml                   experiment (deleted ones under .trash/)
    mlruns/<exp_id>/<run_id>/meta.yaml          run info (status as a number)
    mlruns/<exp_id>/<run_id>/params|tags/<key>  one value per file (keys may hold "/")
    mlruns/<exp_id>/<run_id>/metrics/<key>      lines "timestamp value [step [dataset digest]]"
    mlruns/<exp_id>/<run_id>/inputs/<id>/meta.yaml, mlruns/<exp_id>/datasets/<id>/meta.yaml
    mlruns/<exp_id>/models/<model_id>/meta.yaml logged models (MLflow 3)
    mlruns/models/<name>/version-<n>/meta.yaml  model registry

Problems with one run (missing or invalid meta.yaml, a wrong experiment id, bad metric
lines) become findings; the other runs still load.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from runreview.contract import Finding, FindingKind, Severity
from runreview.sources.base import SourceError
from runreview.sources.mlflow.artifacts import ArtifactAccess, LocalArtifacts
from runreview.sources.mlflow.paths import ArtifactRoot, check_artifact_root
from runreview.sources.mlflow.tables import (
    LIFECYCLE_ACTIVE,
    LIFECYCLE_DELETED,
    RUN_ID_PATTERN,
    STATUS_BY_NUMBER,
    MlflowBackend,
    Report,
    RunInfo,
    RunTables,
    build_history_frame,
)

TRASH = ".trash"
META = "meta.yaml"
#: Folders inside an experiment folder that are not runs (FileStore.RESERVED_EXPERIMENT_FOLDERS).
RESERVED = frozenset({"tags", "datasets", "traces", "models"})
#: Largest meta.yaml read (they are a few hundred bytes; a bigger one is damaged or hostile).
MAX_META_BYTES = 256 * 1024
#: Largest param/tag value file read.
MAX_VALUE_BYTES = 1024 * 1024


class MetaError(Exception):
    """A meta.yaml that cannot be used."""


def is_mlruns(path: Path) -> bool:
    """True when ``path`` looks like an MLflow file store (cheap: a few stat calls)."""
    if not path.is_dir():
        return False
    if (path / TRASH).is_dir() or (path / "0" / META).is_file():
        return True
    try:
        children = [c for _, c in zip(range(50), path.iterdir(), strict=False)]
    except OSError:
        return False
    return any(c.name.isdigit() and (c / META).is_file() for c in children)


def load_meta(path: Path) -> dict[str, Any]:
    """A meta.yaml as a mapping of scalars (safe loader, size-capped, no nested values used)."""
    if not path.is_file():
        raise MetaError("missing meta.yaml")
    if path.stat().st_size > MAX_META_BYTES:
        raise MetaError(f"meta.yaml is larger than {MAX_META_BYTES} bytes")
    try:
        data = yaml.load(path.read_bytes(), Loader=_SafeLoader)  # noqa: S506 - safe loader
    except (yaml.YAMLError, ValueError) as exc:
        raise MetaError(f"invalid YAML in meta.yaml ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise MetaError("meta.yaml is not a mapping")
    return data


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _scalar(meta: dict[str, Any], key: str) -> Any:
    """A scalar field; nested values (e.g. YAML alias bombs) are refused, never walked."""
    value = meta.get(key)
    if value is not None and not isinstance(value, str | int | float | bool):
        raise MetaError(f"meta.yaml field {key!r} is not a plain value")
    return value


@dataclass
class Experiment:
    """One experiment folder."""

    id: str
    name: str
    path: Path
    artifact_location: str | None
    lifecycle_stage: str


@dataclass
class MetricFile:
    """The parsed lines of one metric file."""

    key: str
    timestamps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)

    def latest(self) -> tuple[float, int] | None:
        """(value, step) MLflow calls latest: the max of (step, timestamp, value)."""
        if not self.values:
            return None
        points = zip(self.steps, self.timestamps, self.values, strict=True)
        step, _, value = max(points, key=lambda p: (p[0], p[1], p[2]))
        return value, step


class FileStoreBackend(MlflowBackend):
    """A read-only reader of one mlruns folder."""

    def __init__(self, root: Path, source_uri: str, include_deleted: bool, report: Report) -> None:
        super().__init__(source_uri, include_deleted, report)
        self.root = root

    # --- scanning -----------------------------------------------------------------------

    def _experiments(self) -> list[Experiment]:
        if not self.root.is_dir():
            raise SourceError(f"MLflow store not found: {self.root}. Check the path.")
        parents = [self.root] + ([self.root / TRASH] if self.include_deleted else [])
        found = []
        for parent in parents:
            for folder in _subdirs(parent):
                if folder.name.startswith(".") or folder.name == "models":
                    continue
                exp = self._experiment(folder, deleted=parent.name == TRASH)
                if exp is not None:
                    found.append(exp)
        return found

    def _experiment(self, folder: Path, *, deleted: bool) -> Experiment | None:
        try:
            meta = load_meta(folder / META)
            exp_id = str(_scalar(meta, "experiment_id"))
            if exp_id != folder.name:
                raise MetaError(f"metadata is in invalid state (experiment_id {exp_id!r})")
            stage = _scalar(meta, "lifecycle_stage") or LIFECYCLE_ACTIVE
            return Experiment(
                id=exp_id,
                name=str(_scalar(meta, "name")),
                path=folder,
                artifact_location=_scalar(meta, "artifact_location"),
                lifecycle_stage=LIFECYCLE_DELETED if deleted else str(stage),
            )
        except MetaError as exc:
            self._problem(f"experiment {folder.name} unreadable: {exc}", folder / META)
            return None

    def _runs(self, exp: Experiment) -> Iterator[tuple[Path, dict[str, Any]]]:
        for folder in _subdirs(exp.path):
            if folder.name in RESERVED:
                continue
            if not RUN_ID_PATTERN.match(folder.name):
                self._problem(f"folder {folder.name!r} is not a run id; skipped", folder)
                continue
            try:
                meta = self._run_meta(folder, exp)
            except MetaError as exc:
                self._problem(f"run {folder.name} unreadable: {exc}", folder / META, folder.name)
                continue
            if meta["lifecycle_stage"] == LIFECYCLE_DELETED and not self.include_deleted:
                continue
            yield folder, meta

    @staticmethod
    def _run_meta(folder: Path, exp: Experiment) -> dict[str, Any]:
        meta = load_meta(folder / META)
        run_id = str(_scalar(meta, "run_id") or _scalar(meta, "run_uuid") or "")
        exp_id = str(_scalar(meta, "experiment_id"))
        if run_id != folder.name or exp_id != exp.id:
            raise MetaError(
                f"metadata is in invalid state (run_id {run_id!r}, experiment_id {exp_id!r} "
                f"in folder {exp.id}/{folder.name})"
            )
        status = _scalar(meta, "status")
        stage = _scalar(meta, "lifecycle_stage") or LIFECYCLE_ACTIVE
        return {
            "run_id": run_id,
            "run_name": _scalar(meta, "run_name"),
            "status": STATUS_BY_NUMBER.get(status, str(status))
            if isinstance(status, int)
            else status,
            "start_ms": _scalar(meta, "start_time"),
            "end_ms": _scalar(meta, "end_time"),
            "lifecycle_stage": LIFECYCLE_DELETED
            if exp.lifecycle_stage == LIFECYCLE_DELETED
            else stage,
            "artifact_uri": _scalar(meta, "artifact_uri") or "",
            "user_id": _scalar(meta, "user_id"),
        }

    def _problem(self, message: str, path: Path, run_id: str | None = None) -> None:
        self.report(
            Finding(Severity.ERROR, self.source_uri, message, path=str(path), run_id=run_id)
        )

    # --- runs ---------------------------------------------------------------------------

    def read_tables(self, experiments: list[str] | None) -> RunTables:
        """Every readable run with params, latest metrics and tags."""
        runs, params, metrics, tags = [], [], [], []
        for exp in self._selected(experiments):
            for folder, meta in self._runs(exp):
                run_id = meta["run_id"]
                runs.append(
                    (
                        exp.id,
                        exp.name,
                        run_id,
                        meta["run_name"],
                        meta["status"],
                        meta["start_ms"],
                        meta["end_ms"],
                        meta["lifecycle_stage"],
                        meta["artifact_uri"],
                        meta["user_id"],
                    )
                )
                params += [(run_id, k, v) for k, v in self._values(folder / "params", run_id)]
                tags += [(run_id, k, v) for k, v in self._values(folder / "tags", run_id)]
                for metric in self._metric_files(folder, run_id):
                    latest = metric.latest()
                    if latest is not None:
                        metrics.append((run_id, metric.key, latest[0], latest[1]))
        return RunTables.from_rows(runs, params, metrics, tags)

    def _selected(self, names: list[str] | None) -> list[Experiment]:
        experiments = self._experiments()
        if names is None:
            return experiments
        by_name = {e.name: e for e in experiments}
        for name in names:
            if name not in by_name:
                self.report(
                    Finding(
                        Severity.INFO,
                        self.source_uri,
                        f"experiment {name!r} is not in this store (or is deleted)",
                        kind=FindingKind.FILTER,
                    )
                )
        return [by_name[n] for n in dict.fromkeys(names) if n in by_name]

    def _values(self, folder: Path, run_id: str) -> Iterator[tuple[str, str]]:
        for key, path in _key_files(folder):
            if path.stat().st_size > MAX_VALUE_BYTES:
                self._problem(f"value of {key!r} larger than {MAX_VALUE_BYTES} bytes", path, run_id)
                continue
            yield key, path.read_bytes().decode("utf-8", errors="replace")

    def _metric_files(self, run_folder: Path, run_id: str) -> Iterator[MetricFile]:
        for key, path in _key_files(run_folder / "metrics"):
            metric = parse_metric_file(key, path)
            if metric.bad_lines:
                first = metric.bad_lines[0]
                self.report(
                    Finding(
                        Severity.WARNING,
                        self.source_uri,
                        f"metric {key!r}: {len(metric.bad_lines)} unreadable line(s), first at "
                        f"{path}:{first}; the other points were kept",
                        path=f"{path}:{first}",
                        run_id=run_id,
                    )
                )
            yield metric

    # --- history ------------------------------------------------------------------------

    def read_history(self, metrics: list[str] | None, run_ids: list[str] | None) -> pd.DataFrame:
        """Every point of the selected metrics and runs, read from the metric files."""
        wanted_runs = None if run_ids is None else set(run_ids)
        wanted_keys = None if metrics is None else set(metrics)
        cols: tuple[list[Any], ...] = ([], [], [], [], [])
        for exp in self._experiments():
            for folder, meta in self._runs(exp):
                if wanted_runs is not None and meta["run_id"] not in wanted_runs:
                    continue
                for metric in self._metric_files(folder, meta["run_id"]):
                    if wanted_keys is None or metric.key in wanted_keys:
                        _extend(cols, meta["run_id"], metric)
        run_col, key_col, step_col, value_col, ts_col = cols
        return build_history_frame(self.source_uri, run_col, key_col, step_col, value_col, ts_col)

    # --- one run ------------------------------------------------------------------------

    def _find_run(self, run_id: str) -> tuple[Experiment, Path, dict[str, Any]]:
        if not RUN_ID_PATTERN.match(run_id):
            raise SourceError(f"{run_id!r} is not a valid MLflow run id")
        for exp in self._experiments():
            folder = exp.path / run_id
            if folder.is_dir():
                try:
                    meta = self._run_meta(folder, exp)
                except MetaError as exc:
                    raise SourceError(f"run {run_id} unreadable: {exc}") from None
                if meta["lifecycle_stage"] == LIFECYCLE_DELETED and not self.include_deleted:
                    break
                return exp, folder, meta
        raise SourceError(f"run {run_id!r} not found in {self.source_uri} (or it is deleted)")

    def run_info(self, run_id: str) -> RunInfo:
        """The run's info and tags."""
        exp, folder, meta = self._find_run(run_id)
        return RunInfo(
            run_id=run_id,
            experiment_id=exp.id,
            experiment=exp.name,
            artifact_uri=meta["artifact_uri"],
            experiment_root=exp.artifact_location,
            user_id=meta["user_id"],
            lifecycle_stage=meta["lifecycle_stage"],
            status=meta["status"],
            tags=dict(self._values(folder / "tags", run_id)),
        )

    def datasets(self, run_id: str) -> list[dict[str, Any]]:
        """Dataset inputs: inputs/<id>/meta.yaml pointing at <exp>/datasets/<id>/meta.yaml."""
        exp, folder, _ = self._find_run(run_id)
        found = []
        for input_dir in _subdirs(folder / "inputs"):
            try:
                link = load_meta(input_dir / META)
                if _scalar(link, "source_type") != "DATASET":
                    continue
                dataset_id = str(_scalar(link, "source_id"))
                if not RUN_ID_PATTERN.match(dataset_id):
                    raise MetaError(f"bad dataset id {dataset_id!r}")
                data = load_meta(exp.path / "datasets" / dataset_id / META)
                tags = link.get("tags") if isinstance(link.get("tags"), dict) else {}
                found.append(_dataset(data, tags))
            except MetaError as exc:
                self._problem(f"dataset input unreadable: {exc}", input_dir / META, run_id)
        return sorted(found, key=lambda d: str(d["name"]))

    def model_versions(self, run_id: str) -> list[dict[str, Any]]:
        """Registered versions in mlruns/models/<name>/version-<n>/meta.yaml with this run_id."""
        found = []
        for model_dir in _subdirs(self.root / "models"):
            for version_dir in _subdirs(model_dir):
                try:
                    meta = load_meta(version_dir / META)
                    if str(_scalar(meta, "run_id")) == run_id:
                        found.append(
                            {
                                "name": _scalar(meta, "name"),
                                "version": str(_scalar(meta, "version")),
                                "status": _scalar(meta, "status"),
                            }
                        )
                except MetaError:
                    continue
        return sorted(found, key=lambda v: (str(v["name"]), v["version"]))

    def logged_models(self, info: RunInfo) -> list[dict[str, Any]]:
        """Logged models of the run's experiment whose source_run_id is the run."""
        exp, _, _ = self._find_run(info.run_id)
        found = []
        for model_dir in _subdirs(exp.path / "models"):
            try:
                meta = load_meta(model_dir / META)
            except MetaError:
                continue
            if str(_scalar(meta, "source_run_id")) == info.run_id:
                found.append(
                    {
                        "model_id": _scalar(meta, "model_id"),
                        "name": _scalar(meta, "name"),
                        "artifact_location": _scalar(meta, "artifact_location"),
                    }
                )
        return found

    def artifacts(self, location: str, trusted_root: str | None, run: RunInfo) -> ArtifactAccess:
        """Local artifacts; a store that was moved is read from its own folder."""
        root = check_artifact_root(location, trusted_root)
        if not root.is_local:
            raise SourceError(
                f"artifacts of run {run.run_id} are stored remotely; runreview reads only local "
                "artifacts of an mlruns folder"
            )
        access = LocalArtifacts(root)
        if not access.exists():
            moved = self._moved_root(location, run)
            if moved is not None:
                return LocalArtifacts(moved)
        return access

    def _moved_root(self, location: str, run: RunInfo) -> ArtifactRoot | None:
        """<root>/<exp>/<run>/artifacts when the store was copied and the recorded path is
        gone (only this exact folder inside the store, never a path the store names)."""
        if location != run.artifact_uri:
            return None
        candidate = self.root / run.experiment_id / run.run_id / "artifacts"
        if not candidate.is_dir():
            return None
        self.report(
            Finding(
                Severity.INFO,
                self.source_uri,
                f"artifact location {location} is not readable here; read the store's own "
                f"folder {candidate} instead (the store was probably moved)",
                run_id=run.run_id,
            )
        )
        return ArtifactRoot(uri=candidate.as_uri(), local_path=candidate.resolve())


def parse_metric_file(key: str, path: Path) -> MetricFile:
    """All points of a metric file; unparseable lines are counted by line number."""
    metric = MetricFile(key)
    text = path.read_bytes().decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) not in (2, 3, 5):
                raise ValueError
            timestamp, value = int(parts[0]), float(parts[1])
            step = int(parts[2]) if len(parts) >= 3 else 0
        except ValueError:
            metric.bad_lines.append(number)
            continue
        metric.timestamps.append(timestamp)
        metric.values.append(value)
        metric.steps.append(step)
    return metric


def _extend(cols: tuple[list[Any], ...], run_id: str, metric: MetricFile) -> None:
    count = len(metric.values)
    cols[0].extend([run_id] * count)
    cols[1].extend([metric.key] * count)
    cols[2].extend(metric.steps)
    cols[3].extend(metric.values)
    cols[4].extend(metric.timestamps)


def _dataset(data: dict[str, Any], tags: dict[str, Any]) -> dict[str, Any]:
    context = tags.get("mlflow.data.context")
    return {
        "name": _scalar(data, "name"),
        "digest": _scalar(data, "digest"),
        "source_type": _scalar(data, "source_type"),
        "source": _scalar(data, "source"),
        "context": context if isinstance(context, str) else None,
    }


def _subdirs(folder: Path) -> list[Path]:
    """Sub-folders (not symlinks), sorted; none when ``folder`` is missing."""
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _key_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(key, file) under ``folder``; nested folders make keys with "/" (e.g. "val/loss")."""
    if not folder.is_dir():
        return
    for here, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = Path(here) / name
            if not path.is_symlink():
                yield path.relative_to(folder).as_posix(), path
