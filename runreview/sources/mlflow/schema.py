"""The database schema versions the installed MLflow knows (its alembic migrations).

A sqlite store whose ``alembic_version`` is not among them was written by a newer MLflow;
runreview refuses it rather than guess, and never upgrades a store.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import lru_cache
from pathlib import Path

from runreview.sources.base import SourceError


@lru_cache(maxsize=1)
def known_schema() -> tuple[frozenset[str], frozenset[str]]:
    """(every revision, head revisions) of the installed MLflow's database migrations.

    Read from the migration files with ``ast`` (nothing imported), so it costs ~50 ms.
    """
    spec = importlib.util.find_spec("mlflow")
    if spec is None or spec.origin is None:
        raise SourceError("MLflow is not installed; runreview needs it to check store schemas")
    versions = Path(spec.origin).parent / "store" / "db_migrations" / "versions"
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        revision, down = _revision_ids(path)
        if revision:
            revisions.add(revision)
            parents.update(down)
    return frozenset(revisions), frozenset(revisions - parents)


def _revision_ids(path: Path) -> tuple[str | None, list[str]]:
    revision: str | None = None
    down: list[str] = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if not isinstance(target, ast.Name):
            continue
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            continue
        if target.id == "revision" and isinstance(value, str):
            revision = value
        elif target.id == "down_revision" and value:
            down = [value] if isinstance(value, str) else list(value)
    return revision, down
