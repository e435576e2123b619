"""Fixtures shared by every test package: the demo workspace, built once per session."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.wandb_fixture import wandb_folders  # noqa: F401 - a session fixture for every suite

#: The demo's fixed "now": its runs spread over the five weeks before it.
DEMO_NOW = datetime(2026, 11, 20, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory):  # noqa: ANN201 - runreview.demo.DemoWorkspace
    """A demo workspace (real scikit-learn runs, MLflow + TensorBoard), read-only for tests."""
    from runreview.demo import build_demo

    return build_demo(tmp_path_factory.mktemp("demo") / "workspace", now=DEMO_NOW)


#: Test files that share an expensive session fixture (a tracking server, PostgreSQL, W&B
#: writer virtualenvs) run on one xdist worker, so the fixture is built once.
GROUPS = {
    "mlflow-server": (
        "tests/sources/test_mlflow.py",
        "tests/sources/test_contract.py",
        "tests/reliability/test_mlflow_http_reliability.py",
        "tests/reliability/test_mlflow_store_reliability.py",
    ),
    "wandb": (
        "tests/sources/test_wandb.py",
        "tests/test_cli_wandb.py",
        "tests/reports/test_reports_wandb.py",
        "tests/app/test_wandb_app.py",
    ),
}


def pytest_configure(config: pytest.Config) -> None:
    """Keep the TensorBoard cache of the test session out of the user's cache folder."""
    if "RUNREVIEW_CACHE_DIR" not in os.environ:
        os.environ["RUNREVIEW_CACHE_DIR"] = tempfile.mkdtemp(prefix="runreview-test-cache-")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests with their xdist group (used with ``--dist loadgroup``)."""
    for item in items:
        path = Path(str(item.fspath)).resolve().relative_to(REPO).as_posix()
        for group, files in GROUPS.items():
            if path in files:
                item.add_marker(pytest.mark.xdist_group(group))
