"""Fixtures shared by every test package: the demo workspace, built once per session."""

from __future__ import annotations

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
