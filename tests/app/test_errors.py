"""D4: an uncaught exception shows the viewer a generic message and a reference; the server
log gets the same reference and the traceback, with credentials removed.

The real app (``app/main.py``) runs in AppTest on the demo workspace. The readers and
analyses report bad input as findings instead of raising, so no real input reaches a page
as an uncaught exception: the one fake here makes one analysis function the Overview page
calls (``runreview.analysis.summary.source_summary``) raise an exception whose text holds
credentials, as a failing client library's would.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from runreview.app import errors
from tests.app.conftest import MAIN
from tests.app.helpers import ok

USER, PASSWORD, TOKEN = "alice", "Hunter2-s3cret", "tok-9f8e7d6c5b"
LEAKY = f"http://{USER}:{PASSWORD}@mlflow.internal:5000/api/2.0/runs?token={TOKEN}&page=2"
REFERENCE = re.compile(r"Reference: `([0-9a-f]{8})`")


def _shown(at: Any) -> str:
    """Everything the browser would receive for the main area and the sidebar."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    walk(at.sidebar)
    return "\n".join(parts)


def _fail(*_args: object, **_kwargs: object) -> None:
    raise ConnectionError(f"GET {LEAKY} refused; password={PASSWORD}")


def test_a_page_failure_shows_a_reference_and_logs_a_redacted_traceback(
    open_app, demo, monkeypatch, caplog
):
    monkeypatch.setattr("runreview.analysis.summary.source_summary", _fail)
    caplog.set_level(logging.ERROR, logger=errors.LOGGER.name)
    at = open_app(demo)

    ok(at)  # no Streamlit exception element: the guard handled it
    assert len(at.error) == 1
    message = at.error[0].value
    assert message.startswith("Something went wrong")
    reference = REFERENCE.search(message).group(1)
    shown = _shown(at)
    for leak in (USER, PASSWORD, TOKEN, "mlflow.internal", "ConnectionError", "refused"):
        assert leak not in shown
    assert [m.label for m in at.metric][:2] == ["Runs", "Sources"]  # the page ran up to it
    assert at.sidebar.multiselect[0].label == "Experiments"  # the sidebar is unaffected

    records = [r for r in caplog.records if r.name == errors.LOGGER.name]
    assert len(records) == 1
    logged = records[0].getMessage()
    assert records[0].exc_info is None  # the traceback is in the (redacted) message only
    assert f"reference {reference}" in logged
    assert "page overview" in logged
    assert "Traceback (most recent call last)" in logged
    assert "views/overview.py" in logged and "ConnectionError" in logged
    assert "http://***@mlflow.internal:5000/api/2.0/runs?token=***&page=2" in logged
    for leak in (USER, PASSWORD, TOKEN):
        assert leak not in logged


def test_each_failure_gets_its_own_reference(open_app, demo, monkeypatch, caplog):
    monkeypatch.setattr("runreview.analysis.summary.source_summary", _fail)
    caplog.set_level(logging.ERROR, logger=errors.LOGGER.name)
    at = open_app(demo)
    first = REFERENCE.search(at.error[0].value).group(1)
    at.run()
    second = REFERENCE.search(at.error[0].value).group(1)
    assert first != second
    logged = [r.getMessage() for r in caplog.records if r.name == errors.LOGGER.name]
    assert [f"reference {first}" in m for m in logged] == [True, False]
    assert [f"reference {second}" in m for m in logged] == [False, True]


def test_st_stop_in_a_page_passes_through_the_guard(open_app, demo):
    """No source switched on: ``open_scope`` shows a note and calls ``st.stop()``."""
    at = open_app(demo, query={"off": [demo.tracking_uri, demo.logdir]})
    ok(at)
    assert [i.value for i in at.info] == [
        "No source is switched on. Choose sources in the sidebar."
    ]
    assert len(at.error) == 0


def test_error_details_stay_hidden_when_started_outside_the_repository(tmp_path, monkeypatch):
    """Streamlit reads .streamlit/config.toml from the working directory only."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "RUNREVIEW_LOGDIR", "RUNREVIEW_WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUNREVIEW_DEMO_DIR", str(tmp_path / "no-demo"))
    previous = config.get_option("client.showErrorDetails")
    config.set_option("client.showErrorDetails", "full")
    try:
        AppTest.from_file(str(MAIN), default_timeout=30).run()
        assert config.get_option("client.showErrorDetails") == "none"
    finally:
        config.set_option("client.showErrorDetails", previous)


def _control_flow_script() -> None:
    import streamlit as st

    from runreview.app import errors

    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    with errors.guarded("test"):
        if st.session_state["runs"] == 1:
            st.rerun()
        st.text(f"run {st.session_state['runs']}")
        st.stop()
    st.text("after stop")


def test_st_rerun_and_st_stop_pass_through_the_guard():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_control_flow_script, default_timeout=30).run()
    ok(at)
    assert [t.value for t in at.text] == ["run 2"]
    assert len(at.error) == 0


def test_st_switch_page_passes_through_the_guard(tmp_path):
    from streamlit.testing.v1 import AppTest

    (tmp_path / "main.py").write_text(
        "import streamlit as st\n"
        "from runreview.app import errors\n"
        "page = st.navigation([st.Page('first.py', default=True), st.Page('second.py')])\n"
        "with errors.guarded('page'):\n"
        "    page.run()\n"
    )
    (tmp_path / "first.py").write_text("import streamlit as st\nst.switch_page('second.py')\n")
    (tmp_path / "second.py").write_text("import streamlit as st\nst.text('second page')\n")
    at = AppTest.from_file(str(tmp_path / "main.py"), default_timeout=30).run()
    ok(at)
    assert [t.value for t in at.text] == ["second page"]
    assert len(at.error) == 0


def test_control_flow_exceptions_are_re_raised_untouched():
    from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

    for exc in (StopException(), RerunException(RerunData())):
        with pytest.raises(type(exc)) as raised, errors.guarded("test"):
            raise exc
        assert raised.value is exc


def _callback_script() -> None:
    import streamlit as st

    from runreview.app import errors

    @errors.guarded_callback("callback test")
    def callback(location: str) -> None:
        raise ValueError(f"cannot open {location}")

    leaky = "http://alice:Hunter2-s3cret@mlflow.internal:5000/api/2.0/runs?token=tok-9f8e7d6c5b"
    st.button("Read", on_click=callback, args=(leaky,))
    st.text("page body")


def test_a_failing_callback_shows_a_reference_and_the_page_still_runs(caplog):
    """Streamlit runs callbacks before the script, outside the page's guard."""
    from streamlit.testing.v1 import AppTest

    caplog.set_level(logging.ERROR, logger=errors.LOGGER.name)
    at = AppTest.from_function(_callback_script, default_timeout=30).run()
    at.button[0].click().run()
    ok(at)
    reference = REFERENCE.search(at.error[0].value).group(1)
    assert [t.value for t in at.text] == ["page body"]
    assert PASSWORD not in _shown(at) and "ValueError" not in _shown(at)
    logged = caplog.records[-1].getMessage()
    assert f"reference {reference}" in logged and "callback test" in logged
    assert "ValueError" in logged and PASSWORD not in logged and TOKEN not in logged


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"GET {LEAKY} failed",
            "GET http://***@mlflow.internal:5000/api/2.0/runs?token=***&page=2 failed",
        ),
        ("postgresql://u:p4ss@db:5432/mlflow", "postgresql://***@db:5432/mlflow"),
        ("{'Authorization': 'Bearer abc.def'}", "{'Authorization': '***'}"),
        ("MLFLOW_TRACKING_TOKEN=dapi123 api_key: k3y", "MLFLOW_TRACKING_TOKEN=*** api_key: ***"),
        ("sqlite:///tmp/x.db and /data/mlruns", "sqlite:///tmp/x.db and /data/mlruns"),
        ("KeyError: 'metrics.acc'", "KeyError: 'metrics.acc'"),
    ],
)
def test_scrub(text, expected):
    assert errors.scrub(text) == expected


def test_scrub_removes_known_secrets_wherever_they_appear(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"https://bob:{PASSWORD}@mlflow.corp")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pa55-from-env")
    known = errors.known_secrets()
    text = f"login as bob with {PASSWORD} failed (env pa55-from-env)"
    assert errors.scrub(text, known) == "login as *** with *** failed (env ***)"
