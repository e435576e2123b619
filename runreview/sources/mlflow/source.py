"""The MLflow source: sqlite files, tracking servers and mlruns folders, read in place.

``MlflowSource(uri)`` picks a reader by the URI's scheme:

- ``sqlite:///path/mlflow.db`` (or a plain path to an SQLite file): :mod:`.sqlite`, the
  file opened read-only with the stdlib ``sqlite3`` module;
- ``http(s)://host[:port][/prefix]``: :mod:`.http.client`, ``MlflowClient(tracking_uri=...)``
  plus the server's bulk history route, every call time-bounded;
- ``file:///path/mlruns`` (or a plain path to an mlruns folder): :mod:`.files`, our own
  read-only reader of the file-store layout.

The constructor does no I/O beyond checking that a local store exists: runreview never
creates, migrates or writes a store. MLflow itself is imported only when a server is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pandas as pd

from runreview import settings
from runreview.contract import (
    SOURCE_MLFLOW,
    ConfusionData,
    Environment,
    Finding,
    FindingKind,
    Severity,
)
from runreview.progress import Progress
from runreview.redact import redact_uri
from runreview.sources.base import Source, SourceError
from runreview.sources.mlflow.artifacts import ArtifactAccess
from runreview.sources.mlflow.evidence import EnvironmentBuilder, read_confusion, run_env_prefixes
from runreview.sources.mlflow.files import FileStoreBackend, is_mlruns
from runreview.sources.mlflow.tables import MlflowBackend, RunInfo, build_runs_frame

SQLITE_MAGIC = b"SQLite format 3\x00"
HTTP_SCHEMES = ("http", "https")


def parse_store_uri(uri: str) -> tuple[str, Any]:
    """(kind, target) for a tracking URI: ("sqlite", Path), ("http", uri), ("files", Path).

    Raises :class:`SourceError` for schemes runreview does not read.
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise SourceError(f"cannot parse the tracking URI {redact_uri(uri)!r}") from None
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if not uri.lower().startswith("sqlite:///") or len(uri) <= len("sqlite:///"):
            raise SourceError(f"{uri!r} names no sqlite file; use sqlite:///path/to/mlflow.db")
        return "sqlite", Path(unquote(uri[len("sqlite:///") :].split("?", 1)[0]))
    if scheme in HTTP_SCHEMES:
        if parts.query or parts.fragment:
            raise SourceError(
                f"tracking URI {redact_uri(uri)!r} has a query string or fragment; MLflow "
                "appends its API paths to the URI, so a ?token=... would never reach the "
                "server: give credentials as MLFLOW_TRACKING_TOKEN or "
                "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD instead"
            )
        return "http", uri
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise SourceError(f"{redact_uri(uri)!r} names a remote host; use a local path")
        return "files", Path(unquote(parts.path))
    if len(scheme) <= 1:
        return _plain_path(Path(uri).expanduser())
    raise SourceError(
        f"runreview reads MLflow stores as sqlite files, tracking servers (http/https) or "
        f"mlruns folders; {scheme}: ({redact_uri(uri)}) is not supported - point runreview "
        "at the tracking server in front of that database"
    )


def _plain_path(path: Path) -> tuple[str, Path]:
    if path.is_file():
        return "sqlite", path
    return "files", path


def is_sqlite_file(path: Path) -> bool:
    """True when ``path`` is a file starting with SQLite's header."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


class MlflowSource(Source):
    """Runs of one MLflow tracking store, read in place and never written."""

    kind = SOURCE_MLFLOW
    options = frozenset(
        {
            "include_deleted",
            "http_timeout",
            "page_size",
            "history_workers",
            "history_cap",
            "lock_timeout",
        }
    )

    def __init__(
        self,
        uri: str,
        *,
        include_deleted: bool | None = None,
        http_timeout: float | None = None,
        page_size: int = 10_000,
        history_workers: int = 4,
        history_cap: int | None = None,
        lock_timeout: float = 5.0,
    ) -> None:
        """Open (cheaply) the store at ``uri``.

        ``include_deleted`` defaults to RUNREVIEW_INCLUDE_DELETED; ``http_timeout`` (total
        seconds per server call, retries included) to RUNREVIEW_HTTP_TIMEOUT (30 s);
        ``page_size`` (<= 10,000) is the search_runs page; ``history_cap`` lowers the bulk
        history route's 25,000-point response cap (tests); ``lock_timeout`` bounds waiting
        for a locked sqlite file.
        """
        super().__init__()
        self.uri = redact_uri(uri)
        self.include_deleted = (
            settings.include_deleted() if include_deleted is None else bool(include_deleted)
        )
        #: When the latest ``read_runs`` started (UTC): the snapshot time for reports.
        self.read_at: datetime | None = None
        kind, target = parse_store_uri(uri)
        self.store_kind = kind
        self._backend = self._backend_for(
            kind,
            target,
            budget=settings.http_timeout() if http_timeout is None else float(http_timeout),
            page_size=page_size,
            workers=history_workers,
            history_cap=history_cap,
            lock_timeout=lock_timeout,
        )

    def _backend_for(self, kind: str, target: Any, **options: Any) -> MlflowBackend:
        if kind == "sqlite":
            return self._sqlite(target, options["lock_timeout"])
        if kind == "files":
            if not target.is_dir():
                raise SourceError(
                    f"MLflow store not found: {target}. Check the path (runreview never "
                    "creates a store)."
                )
            if not is_mlruns(target):
                raise SourceError(
                    f"{target} is not an MLflow mlruns folder (no experiment folders with "
                    "meta.yaml). Check the path."
                )
            return FileStoreBackend(target, self.uri, self.include_deleted, self.add_finding)
        from runreview.sources.mlflow.http.client import HttpBackend

        return HttpBackend(
            target,
            self.uri,
            self.include_deleted,
            self.add_finding,
            budget=options["budget"],
            page_size=options["page_size"],
            workers=options["workers"],
            history_cap=options["history_cap"],
        )

    def _sqlite(self, path: Path, lock_timeout: float) -> MlflowBackend:
        from runreview.sources.mlflow.sqlite import SqliteBackend

        if not path.exists():
            raise SourceError(
                f"MLflow store not found: {path}. Check the path (runreview never creates a "
                "store; MLflow would silently create an empty one)."
            )
        if not path.is_file():
            raise SourceError(f"{path} is a folder, not an MLflow sqlite file. Check the path.")
        return SqliteBackend(path, self.uri, self.include_deleted, self.add_finding, lock_timeout)

    # --- the Source contract ------------------------------------------------------------

    def read_runs(
        self, experiments: Iterable[str] | None = None, *, progress: Progress | None = None
    ) -> pd.DataFrame:
        """The runs frame: contract columns, ``params.*`` / ``metrics.*`` / ``tags.*``, then
        ``experiment_id``, ``lifecycle_stage`` and ``artifact_uri`` (credentials removed).
        ``progress`` is not called (the store is read in one step)."""
        self.read_at = datetime.now(UTC)
        tables = self._backend.read_tables(_names(experiments))
        return build_runs_frame(tables, self.uri)

    def read_history(
        self,
        metrics: Iterable[str] | None = None,
        run_ids: Iterable[str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> pd.DataFrame:
        """Every logged point (NaN and +/-inf kept), sorted by run, metric, step, time.
        ``progress`` is not called."""
        return self._backend.read_history(_names(metrics), _names(run_ids))

    def read_run_details(self, run_id: str) -> dict[str, Any]:
        """Per-run extras for the audit report: user, artifact location, dataset inputs,
        model versions and logged models made from the run, and the artifact list."""
        info = self._backend.run_info(run_id)
        details: dict[str, Any] = {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "experiment": info.experiment,
            "status": info.status,
            "lifecycle_stage": info.lifecycle_stage,
            "user": info.tags.get("mlflow.user") or info.user_id,
            "artifact_uri": redact_uri(info.artifact_uri),
            "datasets": self._backend.datasets(run_id),
            "model_versions": self._backend.model_versions(run_id),
            "logged_models": [
                {**m, "artifact_location": redact_uri(m["artifact_location"] or "")}
                for m in self._backend.logged_models(info)
            ],
            "artifacts": [],
            "artifacts_truncated": False,
            "artifact_error": None,
        }
        try:
            listing = self._backend.artifacts(
                info.artifact_uri, info.experiment_root, info
            ).listing()
            details["artifacts"] = [{"path": p, "size": s} for p, s in listing.files]
            details["artifacts_truncated"] = listing.truncated
        except SourceError as exc:
            details["artifact_error"] = str(exc)
            self._problem(info, f"artifacts not listed: {exc}")
        return details

    def read_environment(self, run_id: str) -> Environment:
        """The run's environment from environment.json, MLflow tags and logged models."""
        info = self._backend.run_info(run_id)
        builder = EnvironmentBuilder(Environment(self.uri, run_id), self.add_finding)
        artifacts = self._run_artifacts(info)
        if artifacts is not None:
            builder.add_environment_json(artifacts)
        builder.add_tags(info.tags)
        for model in self._backend.logged_models(info):
            access = self._artifacts_at(info, model["artifact_location"] or "")
            if access is not None:
                builder.add_model_files(access, f"logged model {model['name']!r}")
        if artifacts is not None:
            for prefix in run_env_prefixes(artifacts):
                builder.add_model_files(artifacts, "artifact", prefix)
        return builder.env

    def read_confusion(self, run_id: str) -> list[ConfusionData]:
        """Confusion matrices from the run's artifacts (matrices, tables, images)."""
        info = self._backend.run_info(run_id)
        artifacts = self._run_artifacts(info)
        if artifacts is None:
            return []
        return read_confusion(artifacts, self.uri, run_id, self.add_finding)

    def close(self) -> None:
        """Nothing is held open between calls (each read opens and closes its connection)."""
        self._backend.close()

    # --- helpers ------------------------------------------------------------------------

    def _run_artifacts(self, info: RunInfo) -> ArtifactAccess | None:
        return self._artifacts_at(info, info.artifact_uri)

    def _artifacts_at(self, info: RunInfo, location: str) -> ArtifactAccess | None:
        try:
            return self._backend.artifacts(location, info.experiment_root, info)
        except SourceError as exc:
            self._problem(info, f"artifacts not read: {exc}")
            return None

    def _problem(self, info: RunInfo, message: str) -> None:
        self.add_finding(
            Finding(
                Severity.ERROR, self.uri, message, run_id=info.run_id, kind=FindingKind.ARTIFACTS
            )
        )


def _names(items: Iterable[str] | None) -> list[str] | None:
    if items is None:
        return None
    if isinstance(items, str):
        return [items]
    return list(items)
