"""Environment records and confusion matrices built from a run's tags and small artifacts.

Sources of the environment, first found wins for each value: our capture helper's
``environment.json``; MLflow's ``mlflow.source.*`` tags; the ``requirements.txt`` /
``python_env.yaml`` / ``conda.yaml`` that MLflow writes next to a logged model (read as
text, size-capped; the model itself is never loaded).

Confusion matrices: ``confusion_matrix.json`` ({"labels", "matrix"}), predictions tables
(CSV, or ``mlflow.log_table`` JSON {"columns", "data"}) with y_true/y_pred or
label/prediction columns, and PNG images whose name says "confusion" (image only).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import yaml

from runreview.contract import (
    CONFUSION_FILE,
    ENV_CUDA,
    ENV_GIT_BRANCH,
    ENV_GIT_COMMIT,
    ENV_GIT_DIFF,
    ENV_GIT_DIRTY,
    ENV_GIT_REMOTE,
    ENV_GPU,
    ENV_PLATFORM,
    ENV_PYTHON,
    ENVIRONMENT_FILE,
    ConfusionData,
    Environment,
    Finding,
    Severity,
)
from runreview.sources.base import SourceError
from runreview.sources.evidence import normalise_package, parse_requirements
from runreview.sources.mlflow.artifacts import ArtifactAccess

#: MLflow's own tags, and the environment key each one fills.
TAG_KEYS = {
    "mlflow.source.git.commit": ENV_GIT_COMMIT,
    "mlflow.source.git.branch": ENV_GIT_BRANCH,
    "mlflow.source.git.repoURL": ENV_GIT_REMOTE,
    "mlflow.source.git.dirty": ENV_GIT_DIRTY,
    "mlflow.source.git.diff": ENV_GIT_DIFF,
    "mlflow.source.name": "source.name",
    "mlflow.source.type": "source.type",
}
ENV_FILE_KEYS = {"python": ENV_PYTHON, "platform": ENV_PLATFORM, "cuda": ENV_CUDA, "gpu": ENV_GPU}
GIT_KEYS = {
    "commit": ENV_GIT_COMMIT,
    "branch": ENV_GIT_BRANCH,
    "dirty": ENV_GIT_DIRTY,
    "diff": ENV_GIT_DIFF,
    "remote": ENV_GIT_REMOTE,
}
MODEL_ENV_FILES = ("requirements.txt", "python_env.yaml", "conda.yaml")
#: Largest text file read for the environment.
MAX_ENV_FILE_BYTES = 1024 * 1024
#: Most predictions tables opened per run.
MAX_TABLES = 50
LABEL_COLUMNS = (("y_true", "y_pred"), ("label", "prediction"))

Report = Callable[[Finding], None]


# --- environment ------------------------------------------------------------------------


class EnvironmentBuilder:
    """Collects one run's environment from its artifacts, tags and logged models."""

    def __init__(self, env: Environment, report: Report) -> None:
        self.env = env
        self.report = report

    def add_environment_json(self, access: ArtifactAccess) -> None:
        """Values of our capture helper's environment.json (if the run has one)."""
        if access.listing().size_of(ENVIRONMENT_FILE) is None:
            return
        origin = f"artifact {ENVIRONMENT_FILE}"
        data = self._read(access, ENVIRONMENT_FILE, json.loads)
        if not isinstance(data, dict):
            return
        for key, value in data.items():
            if key == "packages" and isinstance(value, dict) and not self.env.packages:
                self.env.packages = {normalise_package(str(k)): str(v) for k, v in value.items()}
                self.env.packages_origin = origin
            elif key == "git" and isinstance(value, dict):
                for git_key, env_key in GIT_KEYS.items():
                    self.env.set(env_key, value.get(git_key), f"{origin} (git.{git_key})")
            elif key not in ("schema", "packages"):
                self.env.set(ENV_FILE_KEYS.get(key, key), value, origin)

    def add_tags(self, tags: dict[str, str]) -> None:
        """MLflow's source tags (git commit, branch, repo URL, entry point)."""
        for tag, key in TAG_KEYS.items():
            self.env.set(key, tags.get(tag), f"tag {tag}")

    def add_model_files(self, access: ArtifactAccess, label: str, prefix: str = "") -> None:
        """requirements.txt, python_env.yaml and conda.yaml under ``prefix`` of ``access``."""
        for name in MODEL_ENV_FILES:
            path = f"{prefix}{name}"
            if access.listing().size_of(path) is None:
                continue
            origin = f"{label} {path}"
            text = self._read(access, path, lambda t: t)
            if text is None:
                continue
            if name == "requirements.txt":
                self._packages(parse_requirements(text), origin)
            elif name == "python_env.yaml":
                self._python_env(text, origin)
            else:
                self._conda(text, origin)

    def _packages(self, packages: dict[str, str], origin: str) -> None:
        if packages and not self.env.packages:
            self.env.packages = packages
            self.env.packages_origin = origin

    def _python_env(self, text: str, origin: str) -> None:
        data = _yaml(text)
        if isinstance(data, dict) and isinstance(data.get("python"), str | int | float):
            self.env.set(ENV_PYTHON, str(data["python"]), origin)

    def _conda(self, text: str, origin: str) -> None:
        data = _yaml(text)
        deps = data.get("dependencies") if isinstance(data, dict) else None
        for dep in deps if isinstance(deps, list) else []:
            if isinstance(dep, str) and re.match(r"^python\s*[=<>]", dep):
                self.env.set(ENV_PYTHON, re.sub(r"^python\s*=*\s*", "", dep), origin)
            elif isinstance(dep, dict) and isinstance(dep.get("pip"), list):
                pins = "\n".join(str(p) for p in dep["pip"])
                self._packages(parse_requirements(pins), origin)

    def _read(self, access: ArtifactAccess, path: str, parse: Callable[[str], Any]) -> Any:
        try:
            return parse(access.read_text(path, MAX_ENV_FILE_BYTES))
        except (SourceError, OSError, ValueError) as exc:
            self.report(
                Finding(
                    Severity.WARNING,
                    self.env.source_uri,
                    f"{path} not read: {exc}",
                    path=path,
                    run_id=self.env.run_id,
                )
            )
            return None


def run_env_prefixes(access: ArtifactAccess) -> list[str]:
    """Folders (root, and one level down, e.g. ``model/``) holding model environment files."""
    prefixes = []
    for path, _ in access.listing().files:
        parts = path.split("/")
        if parts[-1] in MODEL_ENV_FILES and len(parts) <= 2:
            prefix = "" if len(parts) == 1 else parts[0] + "/"
            if prefix not in prefixes:
                prefixes.append(prefix)
    return prefixes


def _yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


# --- confusion ----------------------------------------------------------------------------


def read_confusion(
    access: ArtifactAccess, source_uri: str, run_id: str, report: Report
) -> list[ConfusionData]:
    """Every confusion matrix of the run's artifacts: matrices, tables, then images."""
    matrices, tables, images = [], [], []
    for path, _size in access.listing().files:
        name = path.rsplit("/", 1)[-1].lower()
        try:
            if name == CONFUSION_FILE:
                matrices.append(_from_matrix(access, path, source_uri, run_id))
            elif name.endswith(".png") and "confusion" in name:
                image = access.read_bytes(path)
                images.append(
                    ConfusionData(source_uri, run_id, path, [], None, f"image {path}", image=image)
                )
            elif _is_table(name) and len(tables) < MAX_TABLES:
                found = _from_table(access, path, source_uri, run_id)
                if found is not None:
                    tables.append(found)
        except (SourceError, OSError, ValueError, KeyError, TypeError) as exc:
            report(
                Finding(
                    Severity.WARNING,
                    source_uri,
                    f"confusion data {path} not read: {exc}",
                    path=path,
                    run_id=run_id,
                )
            )
    return matrices + tables + images


def _is_table(name: str) -> bool:
    return name.endswith((".csv", ".json")) and name != ENVIRONMENT_FILE


def _from_matrix(access: ArtifactAccess, path: str, source_uri: str, run_id: str) -> ConfusionData:
    data = json.loads(access.read_text(path))
    labels = [str(label) for label in data["labels"]]
    counts = np.asarray(data["matrix"], dtype="float64")
    if counts.shape != (len(labels), len(labels)):
        raise ValueError(f"matrix shape {counts.shape} does not match {len(labels)} labels")
    if np.all(np.isfinite(counts)) and np.all(counts == np.round(counts)):
        counts = counts.astype("int64")
    return ConfusionData(source_uri, run_id, path, labels, counts, f"artifact {path}")


def _from_table(
    access: ArtifactAccess, path: str, source_uri: str, run_id: str
) -> ConfusionData | None:
    text = access.read_text(path)
    columns, rows = _table(text, path)
    pair = next(((t, p) for t, p in LABEL_COLUMNS if t in columns and p in columns), None)
    if pair is None:
        return None
    true_at, pred_at = columns.index(pair[0]), columns.index(pair[1])
    y_true = [str(row[true_at]) for row in rows]
    y_pred = [str(row[pred_at]) for row in rows]
    labels = sorted(set(y_true) | set(y_pred), key=_label_order)
    from sklearn.metrics import confusion_matrix

    counts = confusion_matrix(y_true, y_pred, labels=labels).astype("int64")
    origin = f"predictions table {path} ({pair[0]}/{pair[1]}, {len(rows)} rows)"
    return ConfusionData(source_uri, run_id, path, labels, counts, origin)


def _table(text: str, path: str) -> tuple[list[str], list[list[Any]]]:
    if path.lower().endswith(".csv"):
        reader = csv.reader(io.StringIO(text))
        header = next(reader, [])
        if not any(t in header and p in header for t, p in LABEL_COLUMNS):
            return header, []
        return header, [row for row in reader if len(row) == len(header)]
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
        return [], []
    rows = data.get("data")
    columns = [str(c) for c in data["columns"]]
    good = [r for r in rows if isinstance(r, list) and len(r) == len(columns)] if rows else []
    return columns, good


def _label_order(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)
