"""Metric history from a tracking server through its bulk route, complete or not at all.

``GET <uri>/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id=..&metric_key=K&max_results=N``
(``mlflow/server/handlers.py: get_metric_history_bulk_handler``, MLflow 3.17) takes at most
100 run ids and one metric key, and returns at most 25,000 points in all, sorted by run id
then timestamp and step, and cut at the cap with no warning. So requests are sized from the
latest step of each run (a hint of its point count), and a response that reaches the cap is
treated as cut: the runs that came before the last run in it are complete, the rest are asked
again; a run that fills a response alone is read with ``MlflowClient.get_metric_history``
(paged to the end). When the route is missing (404), every run is read that way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import pandas as pd

from runreview.contract import Finding, FindingKind, Severity
from runreview.sources.base import SourceError
from runreview.sources.mlflow.http.calls import HttpPlan, mlflow_http_limits, non_json_message
from runreview.sources.mlflow.tables import build_history_frame

BULK_ENDPOINT = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
#: The server's caps (MAX_HISTORY_RESULTS, MAX_RUN_IDS_PER_REQUEST).
BULK_MAX_POINTS = 25_000
BULK_MAX_RUNS = 100

Point = tuple[str, str, int, float, int]  # run_id, key, step, value, timestamp (ms)
T = TypeVar("T")


class HistoryServer(Protocol):
    """What :class:`HistoryReader` needs of a server's backend (``client.HttpBackend``):
    this module does not import the backend, the backend imports this module."""

    source_uri: str
    plan: HttpPlan
    workers: int
    history_cap: int | None
    report: Callable[[Finding], None]

    @property
    def client(self) -> Any: ...

    def call(self, fn: Callable[[], T], what: str, pages: int = 1) -> T: ...

    def host_creds(self) -> Any: ...


def plan_batches(hints: dict[str, int], cap: int) -> tuple[list[list[str]], list[str]]:
    """Split runs into bulk requests of <= 100 runs whose hinted points fit in ``cap``;
    runs hinted above the cap are returned apart (read one by one)."""
    alone = sorted(r for r, h in hints.items() if h > cap)
    batches: list[list[str]] = []
    batch: list[str] = []
    total = 0
    for run_id in sorted(r for r, h in hints.items() if h <= cap):
        hint = hints[run_id]
        if batch and (len(batch) == BULK_MAX_RUNS or total + hint > cap):
            batches.append(batch)
            batch, total = [], 0
        batch.append(run_id)
        total += hint
    if batch:
        batches.append(batch)
    return batches, alone


class HistoryReader:
    """Reads the history of many runs from one server, several requests at a time."""

    def __init__(self, backend: HistoryServer) -> None:
        self.backend = backend
        self.cap = min(backend.history_cap or BULK_MAX_POINTS, BULK_MAX_POINTS)
        self._bulk_available = True
        self._creds: Any = None

    def read(self, hints: dict[str, dict[str, int]]) -> pd.DataFrame:
        """Every point of every (metric, run) in ``hints`` (metric -> {run_id: hint})."""
        tasks: list[tuple[str, list[str], int]] = []
        for key in sorted(hints):
            batches, alone = plan_batches(hints[key], self.cap)
            tasks += [(key, batch, 0) for batch in batches]
            tasks += [(key, [run_id], hints[key][run_id]) for run_id in alone]
        with (
            mlflow_http_limits(self.backend.plan),
            ThreadPoolExecutor(
                max_workers=max(1, self.backend.workers), thread_name_prefix="runreview-history"
            ) as pool,
        ):
            results = list(pool.map(lambda t: self._task(*t), tasks))
        points = [p for result in results for p in result]
        columns = list(zip(*points, strict=True)) if points else [[]] * 5
        run_ids, keys, steps, values, stamps = columns
        return build_history_frame(self.backend.source_uri, run_ids, keys, steps, values, stamps)

    def _task(self, key: str, run_ids: list[str], alone_hint: int) -> list[Point]:
        if alone_hint:
            return self._per_run(run_ids[0], key, alone_hint)
        return self._batch(key, run_ids)

    def _batch(self, key: str, run_ids: list[str]) -> list[Point]:
        points: list[Point] = []
        remaining = list(run_ids)
        while remaining:
            got = self._bulk(key, remaining) if self._bulk_available else None
            if got is None:
                return points + [p for r in remaining for p in self._per_run(r, key, 0)]
            if len(got) < self.cap:
                return points + got
            order = list(dict.fromkeys(p[0] for p in got))
            complete = set(order[:-1])
            points += [p for p in got if p[0] in complete]
            if not complete:  # one run fills a whole response: read it page by page
                points += self._per_run(order[-1], key, self.cap)
                complete = {order[-1]}
            remaining = [r for r in remaining if r not in complete]
        return points

    def _bulk(self, key: str, run_ids: list[str]) -> list[Point] | None:
        from mlflow.utils.rest_utils import http_request

        plan = self.backend.plan
        if self._creds is None:
            self._creds = self.backend.host_creds()
        params = [("run_id", r) for r in run_ids]
        params += [("metric_key", key), ("max_results", str(self.cap))]
        what = f"history of {key!r} for {len(run_ids)} run(s)"
        response = self.backend.call(
            lambda: http_request(
                self._creds,
                BULK_ENDPOINT,
                "GET",
                params=params,
                timeout=plan.timeout,
                max_retries=plan.retries,
                backoff_factor=plan.backoff,
                backoff_jitter=0,
            ),
            what,
        )
        if response.status_code == 404:
            self._route_missing()
            return None
        return self._points(response, key, what)

    def _points(self, response: Any, key: str, what: str) -> list[Point]:
        status = response.status_code
        if status in (401, 403):
            raise SourceError(
                f"not authorised to read {what} at {self.backend.source_uri} (HTTP {status})"
            )
        if status != 200:
            raise SourceError(
                f"MLflow tracking server at {self.backend.source_uri} answered HTTP {status} "
                f"while reading {what}"
            )
        try:
            body = response.json()
            rows = body["metrics"] if body else []
            return [
                (m["run_id"], key, int(m.get("step", 0)), float(m["value"]), int(m["timestamp"]))
                for m in rows
            ]
        except (ValueError, KeyError, TypeError):
            raise SourceError(non_json_message(self.backend.source_uri, what)) from None

    def _route_missing(self) -> None:
        if self._bulk_available:
            self._bulk_available = False
            self.backend.report(
                Finding(
                    Severity.INFO,
                    self.backend.source_uri,
                    "the server has no bulk history route (get-history-bulk); history was read "
                    "run by run (slower, complete)",
                    kind=FindingKind.HISTORY,
                )
            )

    def _per_run(self, run_id: str, key: str, hint: int) -> list[Point]:
        pages = max(1, math.ceil(hint / BULK_MAX_POINTS)) + 1
        metrics = self.backend.call(
            lambda: self.backend.client.get_metric_history(run_id, key),
            f"history of {key!r} for run {run_id}",
            pages=pages,
        )
        return [(run_id, key, int(m.step), float(m.value), int(m.timestamp)) for m in metrics]
