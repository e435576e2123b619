"""Fixtures for the app tests: the demo workspace, a never-seen store, and AppTest."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.app.stores import UnseenStore, build_unseen

REPO = Path(__file__).resolve().parents[2]
MAIN = REPO / "app" / "main.py"
DEMO_NOW = datetime(2026, 11, 20, tzinfo=UTC)


@dataclass(frozen=True)
class Sources:
    """The locations one app test reads, and the contract frames read directly from them
    (the expected values the pages are checked against)."""

    tracking_uri: str
    logdir: str

    def runs(self) -> pd.DataFrame:
        """The runs frame, read without the app."""
        from runreview.workspace import Workspace

        return Workspace.open([self.tracking_uri], [self.logdir]).runs()

    def history(self) -> pd.DataFrame:
        """The history frame, read without the app."""
        from runreview.workspace import Workspace

        return Workspace.open([self.tracking_uri], [self.logdir]).history()


@pytest.fixture(scope="session")
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Sources:
    """The demo workspace, built once per session (shared with other suites when they
    provide ``demo_workspace``)."""
    try:
        workspace = request.getfixturevalue("demo_workspace")
    except pytest.FixtureLookupError:
        from runreview.demo import build_demo

        workspace = build_demo(tmp_path_factory.mktemp("demo") / "workspace", now=DEMO_NOW)
    return Sources(workspace.tracking_uri, str(workspace.logdir))


@pytest.fixture(scope="session")
def unseen_store(tmp_path_factory: pytest.TempPathFactory) -> UnseenStore:
    """A store the app has never seen (TensorBoard + MLflow), written by the tests."""
    return build_unseen(tmp_path_factory.mktemp("unseen"))


@pytest.fixture(scope="session")
def unseen(unseen_store: UnseenStore) -> Sources:
    """The never-seen store as app sources."""
    return Sources(unseen_store.tracking_uri, str(unseen_store.logdir))


def _clear_caches() -> None:
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def open_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., object]]:
    """``open_app(sources, page=None, query=None, user="")``: a fresh AppTest on ``sources``
    (as the logged-in viewer ``user`` when given), run once (then switched to
    ``views/<page>.py`` and run again when ``page`` is given)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.chdir(REPO)  # .streamlit/config.toml is read from the working directory
    monkeypatch.delenv("RUNREVIEW_DEMO_DIR", raising=False)
    _clear_caches()

    def start(
        sources: Sources, page: str | None = None, query: dict | None = None, user: str = ""
    ) -> AppTest:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", sources.tracking_uri)
        monkeypatch.setenv("RUNREVIEW_LOGDIR", sources.logdir)
        at = AppTest.from_file(str(MAIN), default_timeout=90)
        if user:  # a viewer logged in with st.login
            at.user = {"is_logged_in": True, "email": user}
        at.query_params.update(query or {})
        at.run()
        if page is not None:
            at.switch_page(f"views/{page}.py").run()
        return at

    yield start
    _clear_caches()
