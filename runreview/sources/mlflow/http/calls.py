"""Bounded calls to an MLflow tracking server, and clear errors when they fail.

MLflow's REST client reads its timeout and retry settings from environment variables at
request time (``MLFLOW_HTTP_REQUEST_TIMEOUT``, ``..._MAX_RETRIES``, ``..._BACKOFF_FACTOR``,
``..._BACKOFF_JITTER``, ``MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER``); its defaults let a dead
server hold a page for many minutes. :func:`mlflow_http_limits` sets them for the duration
of runreview's calls only and restores the previous values afterwards. Because environment
variables are process-wide, overlapping users share one setting (the first one's) and other
MLflow calls made by the same process in that window see it too.

Every call also runs under a hard deadline (:func:`call_with_deadline`), so a server that
accepts the connection and then drips bytes cannot hold a caller past the budget.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from runreview.redact import env_secrets, redact_text
from runreview.sources.base import SourceError

T = TypeVar("T")

DEFAULT_BUDGET_S = 30.0
_AUTH_CODES = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403}


@dataclass(frozen=True)
class HttpPlan:
    """Per-attempt timeout and retries that fit inside a total budget (seconds)."""

    budget: float
    timeout: int
    retries: int
    backoff: int

    @classmethod
    def from_budget(cls, budget: float) -> HttpPlan:
        """3 attempts (urllib3 backoff 0 s, then 2 s) for budgets >= 10 s, else one attempt."""
        if budget >= 10:
            return cls(budget, timeout=max(1, int((budget - 2) // 3)), retries=2, backoff=1)
        return cls(budget, timeout=max(1, int(budget)), retries=0, backoff=0)

    def env(self) -> dict[str, str]:
        """The MLflow environment variables that enforce this plan."""
        return {
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(self.timeout),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.retries),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(self.backoff),
            "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
            # A Retry-After of minutes would break the budget; exponential backoff instead.
            "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
        }

    @property
    def deadline(self) -> float:
        """Hard stop for one call: the budget plus a little slack for the last attempt."""
        return self.budget + 1.0


class _EnvScope:
    """Reference-counted setting of environment variables, restored by the last user."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: dict[str, str | None] = {}

    def enter(self, values: dict[str, str]) -> None:
        with self._lock:
            if self._users == 0:
                self._saved = {k: os.environ.get(k) for k in values}
                os.environ.update(values)
            self._users += 1

    def exit(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                for key, value in self._saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
                self._saved = {}


_SCOPE = _EnvScope()


@contextmanager
def mlflow_http_limits(plan: HttpPlan) -> Iterator[None]:
    """Set MLflow's HTTP timeout/retry variables to ``plan`` for the block, then restore."""
    _SCOPE.enter(plan.env())
    try:
        yield
    finally:
        _SCOPE.exit()


class DeadlineExceeded(Exception):
    """A call did not finish within its deadline."""


def call_with_deadline(fn: Callable[[], T], seconds: float) -> T:
    """``fn()`` in a daemon thread; :class:`DeadlineExceeded` if it runs past ``seconds``.

    A call that overruns is abandoned, not killed: it ends on its own socket timeout.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=run, name="runreview-mlflow-http", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise DeadlineExceeded(f"no answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def secrets_of(uri_secrets: list[str]) -> list[str]:
    """Everything to scrub from messages: the URI's secrets and MLflow's credential variables."""
    return [*uri_secrets, *env_secrets()]


def describe_failure(
    exc: BaseException, uri: str, what: str, plan: HttpPlan, secrets: list[str]
) -> SourceError:
    """A clear, credential-free :class:`SourceError` for a failed call to the server."""
    chain = list(_chain(exc))
    text = " ".join(str(e) for e in chain)
    names = {type(e).__name__ for e in chain}
    status = _auth_status(chain)
    if "SSLError" in names or "CERTIFICATE_VERIFY_FAILED" in text:
        message = (
            f"TLS certificate of the MLflow tracking server at {uri} was not accepted while "
            f"reading {what}; runreview never turns verification off: fix the certificate or "
            "point MLFLOW_TRACKING_SERVER_CERT_PATH at its CA bundle"
        )
    elif (
        isinstance(exc, DeadlineExceeded)
        or names & {"Timeout", "ReadTimeout", "ConnectTimeout"}
        or ("timed out" in text.lower())
    ):
        message = (
            f"MLflow tracking server at {uri} did not answer within {plan.budget:g} s while "
            f"reading {what}; check the server, or raise RUNREVIEW_HTTP_TIMEOUT"
        )
    elif status:
        message = (
            f"not authorised to read {what} at {uri} (HTTP {status}); check "
            "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN"
        )
    elif "RetryError" in names or "too many" in text and "error responses" in text:
        message = (
            f"MLflow tracking server at {uri} kept answering with errors (HTTP 5xx/429) while "
            f"reading {what}, retried within {plan.budget:g} s; nothing partial was kept"
        )
    elif "ConnectionError" in names or "Connection refused" in text or "Max retries" in text:
        reason = "connection refused" if "refused" in text.lower() else "connection failed"
        message = (
            f"MLflow tracking server unreachable at {uri}: {reason} (while reading {what}); "
            "check the URL and that the server is running"
        )
    elif "not in a valid JSON format" in text:
        message = non_json_message(uri, what)
    else:
        message = f"MLflow tracking server at {uri} failed while reading {what}: {_short(exc)}"
    return SourceError(redact_text(message, secrets))


def non_json_message(uri: str, what: str) -> str:
    """The message for a 200 answer that is not JSON (typically an SSO login page)."""
    return (
        f"unexpected non-JSON response (auth proxy?) from {uri} while reading {what}: the "
        "server answered with a web page (e.g. a single sign-on login) instead of MLflow's "
        "API; log in through the proxy or give a token (MLFLOW_TRACKING_TOKEN)"
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _auth_status(chain: list[BaseException]) -> int | None:
    for error in chain:
        code = getattr(error, "error_code", None)
        if isinstance(code, str) and code in _AUTH_CODES:
            return _AUTH_CODES[code]
    return None


def _short(exc: BaseException) -> str:
    """The first line of an error, response bodies cut (they may hold tokens)."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    first = re.split(r"Response body:|Response:", first)[0].strip()
    return first[:300]
