"""Fixtures of the reliability tests: the session's real MLflow server and stores (shared
with tests/sources), the reliability store (``stores``), a 127.0.0.1 listener that must
never be contacted, and a recorder of Python audit events (file opens, folder listings,
sockets, unpickling) used to show that refused input is never touched."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability import stores
from tests.reliability.audit_events import EventRecorder, recorder
from tests.reliability.servers import Listener
from tests.sources.conftest import MlflowStores, mlflow_stores, mlruns_copy, sqlite_copy

__all__ = ["audit_events", "mlflow_stores", "mlruns_copy", "sqlite_copy"]


@pytest.fixture(scope="session")
def trap() -> Iterator[Listener]:
    """A listener on 127.0.0.1 that hostile values point at: it must get no request."""
    with Listener() as listener:
        yield listener


@pytest.fixture(scope="session")
def reliability_store(
    mlflow_stores: MlflowStores, trap: Listener, tmp_path_factory: pytest.TempPathFactory
) -> stores.ReliabilityStore:
    """The reliability store (read-only for tests: copy it before changing it)."""
    return stores.build(
        mlflow_stores.pristine_db, tmp_path_factory.mktemp("reliability"), _port(trap)
    )


def _port(listener: Listener) -> int:
    return int(listener.uri.rsplit(":", 1)[1])


@pytest.fixture
def audit_events() -> Iterator[EventRecorder]:
    """Records audit events (open, os.scandir, socket.connect, pickle.find_class, ...) while
    the test's ``with audit_events.recording():`` block runs."""
    yield recorder()
