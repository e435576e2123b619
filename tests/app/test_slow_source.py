"""A tracking server that accepts connections and never answers (issue #6, item 2): the app
reports it within RUNREVIEW_HTTP_TIMEOUT, names it without its credentials, and still
shows every other source's runs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.app.conftest import Sources
from tests.app.helpers import markdown_texts, ok, unescape

TIMEOUT_S = 3
PASSWORD = "s3cret-pw-8271"


@pytest.fixture
def hanging_server() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts every connection and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    listener.close()


def test_hanging_tracking_server_is_reported_in_time_and_other_sources_still_load(
    open_app, demo, hanging_server, monkeypatch
):
    monkeypatch.setenv("RUNREVIEW_HTTP_TIMEOUT", str(TIMEOUT_S))
    uri = f"http://alice:{PASSWORD}@127.0.0.1:{hanging_server}"
    tensorboard_runs = Sources(demo.tracking_uri, demo.logdir).runs()
    expected = int((tensorboard_runs["source"] == "tensorboard").sum())
    started = time.monotonic()
    at = open_app(Sources(uri, demo.logdir))
    elapsed = time.monotonic() - started
    ok(at)
    # MLflow's own retries would take minutes; the budget is the timeout plus start-up.
    assert elapsed < TIMEOUT_S * 4 + 30, elapsed
    errors = [unescape(e.value) for e in at.error]
    assert any(f"127.0.0.1:{hanging_server}" in e for e in errors), errors
    assert {m.label: m.value for m in at.metric}["Runs"] == str(expected)
    shown = " ".join(markdown_texts(at) + [t.value for t in at.text])
    state = " ".join(f"{k}={at.session_state[k]!r}" for k in at.session_state)
    assert PASSWORD not in shown and PASSWORD not in state
