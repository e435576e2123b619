"""RELIABILITY.md section B, cases B1-B10: the MLflow source against the session's real
``mlflow server`` on 127.0.0.1, behind a misbehaving proxy of the test's own (``servers``),
and through the real CLI (``runreview.cli.main``, in this process so logging is captured).

The session server is shared with tests/sources: these tests only read it, except B10,
which writes in experiments of its own and deletes them afterwards.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from runreview import load_runs
from runreview.cli import main
from runreview.sources.base import SourceError
from runreview.sources.mlflow import MlflowSource
from tests.reliability import pdfcheck
from tests.reliability.servers import DRIP, HANG, Proxy, Reply, Seen
from tests.sources.conftest import free_port
from tests.sources.mlflow_fixtures import MANY_RUNS

SECRET = "S3cr3t"
NOW = datetime(2025, 11, 21, tzinfo=UTC).isoformat()
RUNS_SEARCH = "/api/2.0/mlflow/runs/search"
JSON = {"Content-Type": "application/json"}
LOGIN_PAGE = b"<html><body>Sign in <input name=token value=tok-98765></body></html>"


def host_of(uri: str) -> str:
    """``127.0.0.1:PORT`` of a URI."""
    return uri.split("://", 1)[1]


def without_uri(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame without the source column (differs between paths to the same store)."""
    return frame.drop(columns=["source_uri"]).sort_values("run_id").reset_index(drop=True)


def truth(sqlite_copy: Path, experiments: list[str] | None = None) -> pd.DataFrame:
    """The runs as read directly from a copy of the server's sqlite file."""
    return MlflowSource(f"sqlite:///{sqlite_copy}").read_runs(experiments)


def runs_page(offset: int):
    """A rule matcher: the runs/search request of the page at ``offset``."""
    return lambda seen: seen.path == RUNS_SEARCH and seen.page_offset == offset


# --- B1: credentials never shown -------------------------------------------------------------


def _auth_rule(seen: Seen) -> Reply | None:
    basic = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    if seen.headers.get("Authorization") in (basic, f"Bearer {SECRET}"):
        return None
    return Reply(401, b'{"error_code": "UNAUTHENTICATED", "message": "login"}', JSON)


def test_B1_secret_never_appears_in_output_logs_errors_or_the_report(
    mlflow_stores, tmp_path, monkeypatch, capsys, caplog
):
    # Session state and cache keys belong to the app (tests/app); not covered here.
    caplog.set_level("DEBUG")
    for name in ("mlflow", "urllib3", "runreview", "reports"):  # MLflow's does not propagate
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
        monkeypatch.setattr(logging.getLogger(name), "level", logging.DEBUG)
    monkeypatch.setenv("RUNREVIEW_HTTP_TIMEOUT", "20")
    seen: list[str] = []
    out = tmp_path / "report.pdf"
    with Proxy(mlflow_stores.server_uri, _auth_rule) as proxy:
        auth = f"http://alice:{SECRET}@{host_of(proxy.uri)}"
        assert main(["runs", "--tracking-uri", auth, "--experiment", "exp-many"]) == 0
        assert main(["history", "--tracking-uri", auth, "--metric", "loss"]) == 0
        assert main(["check", "--tracking-uri", auth]) in (0, 1)
        report = ["report", "--template", "audit", "--tracking-uri", auth]
        assert main([*report, "--experiment", "exp-many", "--now", NOW, "--out", str(out)]) == 0
        wrong = f"http://alice:{SECRET}x@{host_of(proxy.uri)}"
        assert main(["runs", "--tracking-uri", wrong]) == 2
        assert main(["runs", "--tracking-uri", f"{proxy.uri}/?token={SECRET}"]) == 2
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", SECRET)
        assert main(["runs", "--tracking-uri", proxy.uri, "--experiment", "exp-many"]) == 0
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", SECRET + "x")
        assert main(["runs", "--tracking-uri", proxy.uri]) == 2
        monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
        seen.extend(_library_errors(wrong))
        authorised = [r for r in proxy.requests if _auth_rule(r) is None]
    monkeypatch.setenv("RUNREVIEW_HTTP_TIMEOUT", "3")
    assert main(["runs", "--tracking-uri", f"http://alice:{SECRET}@127.0.0.1:{free_port()}"]) == 2
    assert main(["runs", "--tracking-uri", f"postgresql://alice:{SECRET}@db/mlflow"]) == 2
    captured = capsys.readouterr()
    assert len(authorised) > 10  # the credentials were used ...
    seen += [captured.out, captured.err, caplog.text]
    seen += [r.getMessage() for r in caplog.records]
    seen += [pdfcheck.pdftotext(out), *map(repr, pdfcheck.attachments(out).values())]
    assert "not authorised" in captured.err and "query string" in captured.err
    assert any(r.name.startswith("urllib3") for r in caplog.records)  # DEBUG was captured
    assert [s for s in seen if SECRET in s] == []  # ... and never shown


def _library_errors(uri: str) -> list[str]:
    with pytest.raises(SourceError) as caught:
        load_runs([uri])
    exc = caught.value
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


# --- B2, B3: no server, a hanging server ----------------------------------------------------


def test_B2_server_down_is_a_clear_error_within_the_budget_and_no_report(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("RUNREVIEW_HTTP_TIMEOUT", "5")
    out = tmp_path / "report.pdf"
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    code = main(["report", "--template", "weekly", "--tracking-uri", uri, "--out", str(out)])
    assert code == 2 and time.monotonic() - started < 20
    err = capsys.readouterr().err
    assert f"MLflow tracking server unreachable at {uri}: connection refused" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("behaviour", [HANG, DRIP], ids=["accept-then-hang", "drip"])
def test_B3_hanging_or_dripping_server_times_out_within_the_budget(behaviour):
    with Proxy(None, lambda seen: behaviour) as proxy:
        started = time.monotonic()
        with pytest.raises(SourceError, match="did not answer within 3 s"):
            MlflowSource(proxy.uri, http_timeout=3).read_runs()
        assert time.monotonic() - started < 10
        assert len(proxy.requests) >= 1  # the server was reached, and held the line


# --- B4: transient and persistent errors ----------------------------------------------------


def _failing(match, status: int, times: int | None):
    left = {"n": times}

    def rule(seen: Seen) -> Reply | None:
        if not match(seen) or left["n"] == 0:
            return None
        if left["n"] is not None:
            left["n"] -= 1
        return Reply(status, b"<html>busy</html>", {"Retry-After": "120"})

    return rule


@pytest.mark.parametrize("status", [502, 503, 429])
def test_B4_errors_on_page_4_of_7_are_retried_within_the_budget(mlflow_stores, sqlite_copy, status):
    with Proxy(mlflow_stores.server_uri, _failing(runs_page(9), status, 2)) as proxy:
        started = time.monotonic()
        runs = MlflowSource(proxy.uri, http_timeout=20, page_size=3).read_runs(["exp-many"])
        assert time.monotonic() - started < 25  # Retry-After: 120 is not waited for
    pd.testing.assert_frame_equal(without_uri(runs), without_uri(truth(sqlite_copy, ["exp-many"])))
    assert sum(runs_page(9)(r) for r in proxy.requests) == 3  # 2 failures, 1 success


def test_B4_persistent_errors_name_the_failed_page_and_no_report_is_written(
    mlflow_stores, tmp_path, monkeypatch, capsys
):
    with Proxy(mlflow_stores.server_uri, _failing(runs_page(9), 503, None)) as proxy:
        started = time.monotonic()
        with pytest.raises(SourceError) as caught:
            MlflowSource(proxy.uri, http_timeout=10, page_size=3).read_runs(["exp-many"])
        assert time.monotonic() - started < 15
        assert sum(runs_page(9)(r) for r in proxy.requests) <= 3  # bounded retries
    assert "kept answering with errors" in str(caught.value)
    assert "(page 4)" in str(caught.value) and "exp-many" in str(caught.value)

    monkeypatch.setenv("RUNREVIEW_HTTP_TIMEOUT", "5")  # one attempt per call: retries are above
    history = _failing(lambda seen: seen.path.startswith("/ajax-api/"), 503, None)
    out = tmp_path / "report.pdf"
    with Proxy(mlflow_stores.server_uri, history) as proxy:
        args = ["--tracking-uri", proxy.uri, "--experiment", "exp-many", "--out", str(out)]
        assert main(["report", "--template", "weekly", "--now", NOW, *args]) == 2
    assert "no report written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no half report


# --- B5, B6: answers that are not MLflow's --------------------------------------------------


def test_B5_html_login_page_is_a_clear_error_without_the_page(mlflow_stores, capsys):
    with Proxy(None, lambda seen: Reply(200, LOGIN_PAGE)) as proxy:
        assert main(["runs", "--tracking-uri", proxy.uri]) == 2
    err = capsys.readouterr().err
    assert "unexpected non-JSON response (auth proxy?)" in err

    def html_on_history(seen: Seen) -> Reply | None:
        return Reply(200, LOGIN_PAGE) if "/ajax-api/" in seen.path else None

    with (
        Proxy(mlflow_stores.server_uri, html_on_history) as proxy,
        pytest.raises(SourceError) as caught,
    ):
        MlflowSource(proxy.uri, http_timeout=20).read_history(metrics=["loss"])
    for text in (err, str(caught.value)):
        assert "unexpected non-JSON response (auth proxy?)" in text
        assert "tok-98765" not in text and "<html" not in text and "Sign in" not in text


def test_B6_unauthorised_is_named_with_the_experiment_and_never_retried(mlflow_stores):
    with Proxy(None, lambda seen: Reply(401, LOGIN_PAGE)) as proxy:
        with pytest.raises(SourceError) as denied:
            MlflowSource(f"http://alice:{SECRET}@{host_of(proxy.uri)}", http_timeout=20).read_runs()
        assert len(proxy.requests) == 1  # no retry storm

    def forbidden(seen: Seen) -> Reply | None:
        return Reply(403, LOGIN_PAGE) if seen.path == RUNS_SEARCH else None

    with Proxy(mlflow_stores.server_uri, forbidden) as proxy:
        with pytest.raises(SourceError) as refused:
            MlflowSource(proxy.uri, http_timeout=20).read_runs(["exp-many"])
        assert proxy.count(RUNS_SEARCH) == 1
    assert "not authorised to read experiments" in str(denied.value)
    assert "HTTP 401" in str(denied.value) and SECRET not in str(denied.value)
    assert "not authorised to read runs of experiment 'exp-many'" in str(refused.value)
    assert "HTTP 403" in str(refused.value) and "tok-98765" not in str(refused.value)


# --- B7: TLS ----------------------------------------------------------------------------------


def test_B7_self_signed_certificate_is_an_error_never_an_insecure_fallback(mlflow_stores, tmp_path):
    from tests.reliability.tls import self_signed

    with Proxy(mlflow_stores.server_uri, tls=self_signed(tmp_path)) as proxy:
        with pytest.raises(SourceError) as caught:
            MlflowSource(proxy.uri, http_timeout=5).read_runs()
        assert proxy.requests == []  # no request was sent over the untrusted connection
    assert "TLS certificate" in str(caught.value)
    assert "never turns verification off" in str(caught.value)
    assert "MLFLOW_TRACKING_INSECURE_TLS" not in os.environ


def test_B7_expired_certificate_of_a_trusted_ca_is_an_error(mlflow_stores, tmp_path, monkeypatch):
    from tests.reliability.tls import ca_signed

    ca, valid, expired = ca_signed(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(ca))
    with Proxy(mlflow_stores.server_uri, tls=valid) as proxy:  # the CA is trusted ...
        runs = MlflowSource(proxy.uri, http_timeout=20).read_runs(["exp-many"])
    assert len(runs) == MANY_RUNS
    with Proxy(mlflow_stores.server_uri, tls=expired) as proxy:  # ... an expired leaf is not
        with pytest.raises(SourceError, match="TLS certificate"):
            MlflowSource(proxy.uri, http_timeout=5).read_runs()
        assert proxy.requests == []


# --- B8, B9: pagination ----------------------------------------------------------------------


def test_B8_every_page_is_read_to_the_empty_token(mlflow_stores, sqlite_copy):
    tokens: list[tuple[int, str | None]] = []
    returned: list[int] = []

    def after(seen: Seen, body: bytes) -> None:
        if seen.path == RUNS_SEARCH:
            tokens.append((seen.page_offset, _json_token(body)))
            returned.append(len(json.loads(body).get("runs", [])))

    with Proxy(mlflow_stores.server_uri, after=after) as proxy:
        source = MlflowSource(proxy.uri, page_size=3, http_timeout=20)
        runs = source.read_runs()
        source.read_history(metrics=["loss"])
    expected = truth(sqlite_copy)
    pd.testing.assert_frame_equal(without_uri(runs), without_uri(expected))
    assert len(expected) > 3 * 5  # many pages
    *pages, recount = tokens  # every page in order, then the final re-count
    assert [offset for offset, _ in pages] == list(range(0, 3 * len(pages), 3))
    assert all(token for _, token in pages[:-1]) and pages[-1][1] is None
    assert recount[0] == sum(returned[:-1]) - 1  # pages include deleted runs (see B10)
    for seen in proxy.requests:
        limit = (seen.body or {}).get("max_results") or int(seen.query.get("max_results", [0])[0])
        assert int(limit) <= 50_000
        if seen.path.endswith("/search"):
            assert int(limit) <= 3


def _json_token(body: bytes) -> str | None:
    try:
        return json.loads(body).get("next_page_token") or None
    except ValueError:
        return None


def test_B9_page_size_above_the_limit_is_never_sent_and_the_servers_refusal_is_clear(
    mlflow_stores,
):
    with Proxy(mlflow_stores.server_uri) as proxy:
        with pytest.raises(ValueError, match="page_size must be between 1 and 10000"):
            MlflowSource(proxy.uri, page_size=50_001)
        assert proxy.requests == []

    def oversize(seen: Seen, raw: bytes | None) -> bytes | None:
        if seen.path != RUNS_SEARCH or raw is None:
            return raw
        return json.dumps({**json.loads(raw), "max_results": 60_000}).encode()

    with (
        Proxy(mlflow_stores.server_uri, rewrite=oversize) as proxy,
        pytest.raises(SourceError) as caught,
    ):
        MlflowSource(proxy.uri, http_timeout=20).read_runs(["exp-many"])
    text = str(caught.value)
    assert "INVALID_PARAMETER_VALUE" in text and "max_results" in text and "(page 1)" in text


# --- B10: a store that changes while it is paged ------------------------------------------


@pytest.fixture
def changing_experiment(mlflow_stores):
    """An experiment of this test's own on the session server (deleted afterwards)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_stores.server_uri)
    name = f"b10-{uuid.uuid4().hex[:8]}"
    exp = client.create_experiment(name)
    ids = [
        client.create_run(exp, run_name=f"r{i}", start_time=1_700_000_000_000 + i).info.run_id
        for i in range(8)
    ]
    try:
        yield Changing(client, mlflow_stores.server_uri, exp, name, ids)
    finally:
        client.delete_experiment(exp)


@dataclass
class Changing:
    """The experiment B10 changes while it is read."""

    client: Any
    server: str
    exp: str
    name: str
    ids: list[str]


def _once(action):
    done = {"yes": False}

    def after(seen: Seen, body: bytes) -> None:
        if not done["yes"] and action(seen, body):
            done["yes"] = True

    return after


def test_B10_run_created_between_pages_is_deduplicated_and_reported(changing_experiment):
    change = changing_experiment
    client, exp, name, ids = change.client, change.exp, change.name, change.ids

    def create_early(seen: Seen, body: bytes) -> bool:
        if seen.path == RUNS_SEARCH and seen.page_offset == 0:
            client.create_run(exp, run_name="early", start_time=1_600_000_000_000)
            return True
        return False

    with Proxy(change.server, after=_once(create_early)) as proxy:
        source = MlflowSource(proxy.uri, page_size=3, http_timeout=20)
        runs = source.read_runs([name])
    assert runs["run_id"].is_unique and set(ids) <= set(runs["run_id"])
    [finding] = [f for f in source.findings if f.kind == "pagination"]
    assert f"the runs of experiment '{name}' changed while they were read between" in (
        finding.message
    )
    assert "UTC" in finding.message and "came back twice" in finding.message


def test_B10_run_deleted_between_pages_makes_no_other_run_disappear(changing_experiment):
    change = changing_experiment
    client, name, ids = change.client, change.name, change.ids

    def delete_first(seen: Seen, body: bytes) -> bool:
        if seen.path == RUNS_SEARCH and seen.page_offset == 0:
            client.delete_run(ids[0])
            return True
        return False

    with Proxy(change.server, after=_once(delete_first)) as proxy:
        runs = MlflowSource(proxy.uri, page_size=3, http_timeout=20).read_runs([name])
    assert set(runs["run_id"]) == set(ids)  # as read: the deleted run was active on page 1


def test_B10_run_created_after_the_last_page_is_found_by_the_final_recount(changing_experiment):
    change = changing_experiment
    client, exp, name, ids = change.client, change.exp, change.name, change.ids

    def create_late(seen: Seen, body: bytes) -> bool:
        if seen.path == RUNS_SEARCH and _json_token(body) is None:
            client.create_run(exp, run_name="late", start_time=1_800_000_000_000)
            return True
        return False

    with Proxy(change.server, after=_once(create_late)) as proxy:
        source = MlflowSource(proxy.uri, page_size=3, http_timeout=20)
        runs = source.read_runs([name])
    assert set(runs["run_id"]) == set(ids)
    [finding] = [f for f in source.findings if f.kind == "pagination"]
    assert "a final re-count found 1 run(s) created after the read" in finding.message
