"""Fixtures shared by every test package: the demo workspace, built once per session."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

from tests.cachedir import suite_cache_dir
from tests.wandb_fixture import wandb_folders  # noqa: F401 - a session fixture for every suite

#: The demo's fixed "now": its runs spread over the five weeks before it.
DEMO_NOW = datetime(2026, 11, 20, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent
_OWN_PARSE_CACHE = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory):
    """A demo workspace (real scikit-learn runs, MLflow + TensorBoard), read-only for tests."""
    from runreview.demo import build_demo

    return build_demo(tmp_path_factory.mktemp("demo") / "workspace", now=DEMO_NOW)


#: Marks given by the session fixture a test uses. The slow groups (``browser``,
#: ``postgres``, ``wandb``) can be left out with ``make test-fast``; ``make test`` runs all.
#: A test that asks for a fixture only at run time (``request.getfixturevalue``) carries
#: the mark itself (see tests/sources/test_contract.py).
FIXTURE_MARKS = {
    "wandb_folders": "wandb",
    "postgres_mlflow": "postgres",
    "browser": "browser",
    "mlflow_stores": "mlflow_server",
}
#: Marks whose tests share an expensive session fixture (a tracking server, PostgreSQL, the
#: W&B writers): with ``--dist loadgroup`` each group runs on one xdist worker, so its
#: fixture is built once per session.
XDIST_GROUPS = {"wandb": "wandb", "postgres": "mlflow-server", "mlflow_server": "mlflow-server"}


def pytest_configure(config: pytest.Config) -> None:
    """Point every cache of the session into the suite's cache folder (tests.cachedir)."""
    cache = suite_cache_dir()
    if "RUNREVIEW_CACHE_DIR" not in os.environ:  # the TensorBoard parse cache, per session
        parse = cache / "tb-parse"
        parse.mkdir(exist_ok=True)
        os.environ["RUNREVIEW_CACHE_DIR"] = tempfile.mkdtemp(prefix="session-", dir=parse)
        config.stash[_OWN_PARSE_CACHE] = os.environ["RUNREVIEW_CACHE_DIR"]
    os.environ.setdefault("PLAYWRIGHT_BROWSERS_PATH", str(cache / "playwright"))
    settings.register_profile("suite", database=DirectoryBasedExampleDatabase(cache / "hypothesis"))
    settings.load_profile("suite")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's TensorBoard parse cache (only the process that made it)."""
    own = config.stash.get(_OWN_PARSE_CACHE, None)
    if own:
        shutil.rmtree(own, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by the session fixtures they use, and give them their xdist group."""
    for item in items:
        for fixture, mark in FIXTURE_MARKS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(mark)
        groups = {XDIST_GROUPS[m.name] for m in item.iter_markers() if m.name in XDIST_GROUPS}
        if len(groups) > 1:
            raise pytest.UsageError(f"{item.nodeid} is in two xdist groups: {sorted(groups)}")
        if groups:
            item.add_marker(pytest.mark.xdist_group(groups.pop()))
