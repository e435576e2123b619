"""Reading an MLflow tracking server over HTTP(S) with ``MlflowClient(tracking_uri=...)``.

Runs are paged with ``search_runs`` until the page token is empty (never MLflow's 100,000
default stop), at most ``page_size`` (<= 10,000) per request. Page tokens are offsets, so a
store that changes while it is paged can shift runs between pages: pages include deleted
runs (a deletion then shifts nothing), runs are de-duplicated by run id, and a final
re-count reports any change with the time window of the read (B8-B10). History uses the
server's bulk route (see :mod:`.history`). Every call is bounded in time and its
failures become clear :class:`SourceError` messages without credentials (see :mod:`.calls`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pandas as pd

from runreview.contract import Finding, FindingKind, Severity
from runreview.redact import uri_secrets
from runreview.sources.base import SourceError
from runreview.sources.mlflow.artifacts import ArtifactAccess, LocalArtifacts, RepositoryArtifacts
from runreview.sources.mlflow.http.calls import (
    HttpPlan,
    call_with_deadline,
    describe_failure,
    mlflow_http_limits,
    secrets_of,
)
from runreview.sources.mlflow.http.history import HistoryReader
from runreview.sources.mlflow.paths import check_artifact_root
from runreview.sources.mlflow.tables import (
    LIFECYCLE_ACTIVE,
    LIFECYCLE_DELETED,
    RUN_ID_PATTERN,
    MlflowBackend,
    Report,
    RunInfo,
    RunTables,
)

T = TypeVar("T")

#: Largest page runreview asks for (MLflow refuses more than 50,000; B9).
MAX_PAGE_SIZE = 10_000
#: Experiments per search_runs request.
EXPERIMENTS_PER_SEARCH = 100
#: Oldest runs first, so runs created while paging land on later pages (B10).
RUN_ORDER = ["attributes.start_time ASC", "attributes.run_id ASC"]


class HttpBackend(MlflowBackend):
    """A read-only client of one tracking server."""

    def __init__(
        self,
        uri: str,
        source_uri: str,
        include_deleted: bool,
        report: Report,
        *,
        budget: float,
        page_size: int = MAX_PAGE_SIZE,
        workers: int = 4,
        history_cap: int | None = None,
    ) -> None:
        super().__init__(source_uri, include_deleted, report)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
        self._uri = uri  # with credentials: only ever handed to MLflow, never shown
        self.plan = HttpPlan.from_budget(budget)
        self.page_size = page_size
        self.workers = workers
        self.history_cap = history_cap
        self._client_obj: Any = None
        self._hints: dict[str, dict[str, int]] = {}
        self._listed: list[str] | None = None
        self._secrets = uri_secrets(uri)

    # --- calls --------------------------------------------------------------------------

    def call(self, fn: Callable[[], T], what: str, pages: int = 1) -> T:
        """``fn()`` within the time budget (per page, for calls MLflow pages internally);
        failures become :class:`SourceError`."""
        self._ensure_client()  # the first MLflow import takes seconds: not on the server's clock
        with mlflow_http_limits(self.plan):
            try:
                return call_with_deadline(fn, self.plan.deadline * pages)
            except SourceError:
                raise
            except Exception as exc:
                raise self.failure(exc, what) from None

    def failure(self, exc: BaseException, what: str) -> SourceError:
        """The credential-free error for a failed call."""
        return describe_failure(exc, self.source_uri, what, self.plan, secrets_of(self._secrets))

    @property
    def client(self) -> Any:
        """The MlflowClient of this server (created on first use; the constructor is cheap)."""
        return self._ensure_client()

    def _ensure_client(self) -> Any:
        if self._client_obj is None:
            from mlflow import MlflowClient

            self._client_obj = MlflowClient(tracking_uri=self._uri, registry_uri=self._uri)
        return self._client_obj

    def host_creds(self) -> Any:
        """MLflow's host credentials for this server (same auth as MlflowClient)."""
        from mlflow.utils.credentials import get_default_host_creds

        return get_default_host_creds(self._uri)

    # --- experiments and runs -----------------------------------------------------------

    def _view_type(self) -> Any:
        from mlflow.entities import ViewType

        return ViewType.ALL if self.include_deleted else ViewType.ACTIVE_ONLY

    def _experiments(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        token: str | None = None
        page = 0
        while True:
            page += 1
            result = self.call(
                lambda t=token: self.client.search_experiments(
                    view_type=self._view_type(), max_results=self.page_size, page_token=t
                ),
                f"experiments (page {page})",
            )
            for exp in result:
                found[exp.experiment_id] = exp
            token = result.token
            if not token:
                return found

    def read_tables(self, experiments: list[str] | None) -> RunTables:
        """Every run of the selected experiments, paged to the end, de-duplicated and
        re-counted (see :meth:`_search_runs`)."""
        exps = self._experiments()
        selected = self._select(exps, experiments)
        runs: dict[str, Any] = {}
        for start in range(0, len(selected), EXPERIMENTS_PER_SEARCH):
            batch = selected[start : start + EXPERIMENTS_PER_SEARCH]
            self._search_runs(batch, exps, runs)
        if not self.include_deleted:
            runs = {k: r for k, r in runs.items() if r.info.lifecycle_stage != LIFECYCLE_DELETED}
        tables = _tables_from_runs(list(runs.values()), exps)
        self._remember(tables, complete=experiments is None)
        return tables

    def _select(self, exps: dict[str, Any], names: list[str] | None) -> list[str]:
        if names is None:
            return list(exps)
        by_name = {e.name: e.experiment_id for e in exps.values()}
        for name in names:
            if name not in by_name:
                self.report(
                    Finding(
                        Severity.INFO,
                        self.source_uri,
                        f"experiment {name!r} is not on this server (or is deleted)",
                        kind=FindingKind.FILTER,
                    )
                )
        return [by_name[n] for n in dict.fromkeys(names) if n in by_name]

    def _search_runs(self, exp_ids: list[str], exps: dict[str, Any], runs: dict[str, Any]) -> None:
        """Page through the runs of ``exp_ids`` into ``runs`` (by run id).

        Pages include deleted runs (filtered afterwards), so a run deleted while paging does
        not shift the offsets of later pages and make a run be skipped. A run that comes
        back twice (one created with an earlier start time while paging) is kept once, and a
        final re-count checks that the store did not change under the read (B10).
        """
        from mlflow.entities import ViewType

        names = ", ".join(repr(exps[e].name) for e in exp_ids[:3])
        started = datetime.now(UTC)
        received: list[str] = []
        token: str | None = None
        page = 0
        while True:
            page += 1
            result = self.call(
                lambda t=token: self.client.search_runs(
                    experiment_ids=exp_ids,
                    run_view_type=ViewType.ALL,
                    max_results=self.page_size,
                    order_by=RUN_ORDER,
                    page_token=t,
                ),
                f"runs of experiment {names} (page {page})",
            )
            for run in result:
                received.append(run.info.run_id)
                runs[run.info.run_id] = run
            token = result.token
            if not token:
                break
        self._check_consistency(exp_ids, names, received, started)

    def _check_consistency(
        self, exp_ids: list[str], names: str, received: list[str], started: datetime
    ) -> None:
        problems = []
        duplicates = len(received) - len(set(received))
        if duplicates:
            problems.append(f"{duplicates} run(s) came back twice (one copy of each was kept)")
        changed = self._recount(exp_ids, names, received)
        if changed:
            problems.append(changed)
        if not problems:
            return
        window = f"{_clock(started)} and {_clock(datetime.now(UTC))} UTC"
        self.report(
            Finding(
                Severity.WARNING,
                self.source_uri,
                f"the runs of experiment {names} changed while they were read between "
                f"{window}: {'; '.join(problems)}. This snapshot shows the runs as read then; "
                "runs created meanwhile may be missing - read again for a consistent view",
                kind=FindingKind.PAGINATION,
            )
        )

    def _recount(self, exp_ids: list[str], names: str, received: list[str]) -> str:
        """One request at the offset of the last run read: it must return that run alone."""
        from mlflow.entities import ViewType

        offset = max(0, len(received) - 1)
        result = self.call(
            lambda: self.client.search_runs(
                experiment_ids=exp_ids,
                run_view_type=ViewType.ALL,
                max_results=self.page_size,
                order_by=RUN_ORDER,
                page_token=_offset_token(offset) if offset else None,
            ),
            f"runs of experiment {names} (final count)",
        )
        found = [run.info.run_id for run in result]
        expected = received[-1:]
        if found[: len(expected)] != expected:
            return "a final re-count found a different run at the end (runs were removed)"
        extra = len(found) - len(expected)
        if extra or result.token:
            more = f"{extra}+" if result.token else str(extra)
            return f"a final re-count found {more} run(s) created after the read"
        return ""

    def _remember(self, tables: RunTables, *, complete: bool) -> None:
        for key, per_run in tables.metric_hints().items():
            self._hints.setdefault(key, {}).update(per_run)
        if complete:
            self._listed = list(tables.runs["run_id"])

    # --- history ------------------------------------------------------------------------

    def read_history(self, metrics: list[str] | None, run_ids: list[str] | None) -> pd.DataFrame:
        """Every point, through the server's bulk history route (see :mod:`.history`)."""
        wanted = self._history_runs(run_ids)
        hints = {
            key: {r: h for r, h in per_run.items() if r in wanted}
            for key, per_run in self._hints.items()
            if metrics is None or key in metrics
        }
        return HistoryReader(self).read({k: v for k, v in hints.items() if v})

    def _history_runs(self, run_ids: list[str] | None) -> set[str]:
        if run_ids is None:
            if self._listed is None:
                self.read_tables(None)
            return set(self._listed or [])
        known = {r for per_run in self._hints.values() for r in per_run}
        for run_id in dict.fromkeys(run_ids):
            if run_id not in known:
                self._learn_run(run_id)
        return set(run_ids)

    def _learn_run(self, run_id: str) -> None:
        try:
            run = self._get_run(run_id)
        except SourceError as exc:
            self.report(Finding(Severity.WARNING, self.source_uri, str(exc), run_id=run_id))
            return
        exps = {run.info.experiment_id: self._get_experiment(run.info.experiment_id)}
        self._remember(_tables_from_runs([run], exps), complete=False)

    # --- one run ------------------------------------------------------------------------

    def _get_run(self, run_id: str) -> Any:
        if not RUN_ID_PATTERN.match(run_id):
            raise SourceError(f"{run_id!r} is not a valid MLflow run id")
        run = self.call(lambda: self.client.get_run(run_id), f"run {run_id}")
        if run.info.lifecycle_stage == LIFECYCLE_DELETED and not self.include_deleted:
            raise SourceError(
                f"run {run_id!r} is deleted; set include_deleted "
                "(RUNREVIEW_INCLUDE_DELETED=true) to read it"
            )
        return run

    def _get_experiment(self, exp_id: str) -> Any:
        return self.call(lambda: self.client.get_experiment(exp_id), f"experiment {exp_id}")

    def run_info(self, run_id: str) -> RunInfo:
        """The run's info and tags, and its experiment's name and artifact root."""
        run = self._get_run(run_id)
        exp = self._get_experiment(run.info.experiment_id)
        deleted = LIFECYCLE_DELETED in (run.info.lifecycle_stage, exp.lifecycle_stage)
        if deleted and not self.include_deleted:
            raise SourceError(f"run {run_id!r} belongs to a deleted experiment")
        return RunInfo(
            run_id=run_id,
            experiment_id=exp.experiment_id,
            experiment=exp.name,
            artifact_uri=run.info.artifact_uri or "",
            experiment_root=exp.artifact_location,
            user_id=run.info.user_id,
            lifecycle_stage=LIFECYCLE_DELETED if deleted else LIFECYCLE_ACTIVE,
            status=run.info.status,
            tags=dict(run.data.tags),
        )

    def datasets(self, run_id: str) -> list[dict[str, Any]]:
        """Dataset inputs from the run's ``inputs``."""
        run = self._get_run(run_id)
        found = []
        for item in getattr(run.inputs, "dataset_inputs", None) or []:
            tags = {t.key: t.value for t in item.tags}
            ds = item.dataset
            found.append(
                {
                    "name": ds.name,
                    "digest": ds.digest,
                    "source_type": ds.source_type,
                    "source": ds.source,
                    "context": tags.get("mlflow.data.context"),
                }
            )
        return sorted(found, key=lambda d: str(d["name"]))

    def model_versions(self, run_id: str) -> list[dict[str, Any]]:
        """Registered versions whose run_id is this run (search_model_versions)."""
        if not RUN_ID_PATTERN.match(run_id):
            raise SourceError(f"{run_id!r} is not a valid MLflow run id")
        versions = self._optional(
            lambda: self.client.search_model_versions(f"run_id = '{run_id}'"), "model versions"
        )
        found = [{"name": v.name, "version": str(v.version), "status": v.status} for v in versions]
        return sorted(found, key=lambda v: (v["name"], v["version"]))

    def logged_models(self, info: RunInfo) -> list[dict[str, Any]]:
        """Logged models (MLflow 3) of the run's experiment whose source run is this run."""
        models = self._optional(
            lambda: self.client.search_logged_models(
                experiment_ids=[info.experiment_id],
                filter_string=f"source_run_id = '{info.run_id}'",
            ),
            "logged models",
        )
        return [
            {"model_id": m.model_id, "name": m.name, "artifact_location": m.artifact_location}
            for m in models
        ]

    def _optional(self, fn: Callable[[], Any], what: str) -> list[Any]:
        try:
            return list(self.call(fn, what))
        except SourceError as exc:
            self.report(Finding(Severity.WARNING, self.source_uri, f"{what} not read: {exc}"))
            return []

    def artifacts(self, location: str, trusted_root: str | None, run: RunInfo) -> ArtifactAccess:
        """Remote roots through MLflow's repositories; local paths only for a local server."""
        root = check_artifact_root(location, trusted_root)
        if not root.is_local:
            return RepositoryArtifacts(root, self._uri, self.call)
        if not _is_loopback(self._uri):
            raise SourceError(
                f"artifacts of run {run.run_id} are on the tracking server's own disk; start "
                "the server with --serve-artifacts (mlflow-artifacts:) to read them remotely"
            )
        return LocalArtifacts(root)


def _tables_from_runs(runs: list[Any], exps: dict[str, Any]) -> RunTables:
    rows, params, metrics, tags = [], [], [], []
    for run in runs:
        info = run.info
        exp = exps.get(info.experiment_id)
        deleted = LIFECYCLE_DELETED in (info.lifecycle_stage, getattr(exp, "lifecycle_stage", ""))
        rows.append(
            (
                info.experiment_id,
                getattr(exp, "name", None),
                info.run_id,
                info.run_name,
                info.status,
                info.start_time,
                info.end_time,
                LIFECYCLE_DELETED if deleted else info.lifecycle_stage,
                info.artifact_uri,
                info.user_id,
            )
        )
        params += [(info.run_id, k, v) for k, v in run.data.params.items()]
        tags += [(info.run_id, k, v) for k, v in run.data.tags.items()]
        # The run's metrics as the server sent them carry the step of the latest value (a
        # hint for history sizing); RunData.to_proto() is MLflow's public form of them.
        metrics += [(info.run_id, m.key, m.value, m.step) for m in run.data.to_proto().metrics]
    return RunTables.from_rows(rows, params, metrics, tags)


def _offset_token(offset: int) -> str:
    """The page token of ``offset``: MLflow's page tokens are offsets (all its stores)."""
    from mlflow.utils.search_utils import SearchUtils

    token = SearchUtils.create_page_token(offset)
    return token.decode("ascii") if isinstance(token, bytes) else str(token)


def _clock(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _is_loopback(uri: str) -> bool:
    host = urlsplit(uri).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
