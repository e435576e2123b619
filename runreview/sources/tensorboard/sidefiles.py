"""Side files next to a run's event files, and confusion-matrix helpers.

``environment.json`` (as written by :mod:`runreview.capture`), ``requirements.txt`` and
``confusion_matrix.json`` in a run directory; labels of tensor confusion matrices from text
summaries. Side files are read size-capped (:mod:`runreview.sources.sidefiles`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

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
    FindingKind,
    Severity,
)
from runreview.sources.evidence import matrix_from_json, numeric_counts, parse_requirements
from runreview.sources.sidefiles import read_side_file
from runreview.sources.tensorboard.runs import RunData

REQUIREMENTS_FILE = "requirements.txt"
CONFUSION_MARKER = "confusion"


_ENV_KEYS = {"python": ENV_PYTHON, "platform": ENV_PLATFORM, "cuda": ENV_CUDA, "gpu": ENV_GPU}
_GIT_KEYS = {
    "commit": ENV_GIT_COMMIT,
    "branch": ENV_GIT_BRANCH,
    "dirty": ENV_GIT_DIRTY,
    "diff": ENV_GIT_DIFF,
    "remote": ENV_GIT_REMOTE,
}


def fill_environment(env: Environment, data: dict, origin: str) -> None:
    """Copy an environment.json object into ``env``; unknown keys are kept as they are.

    A ``<key>_origin`` entry (e.g. ``cuda_origin`` from :mod:`runreview.capture`) is added
    to the origin of ``<key>``.
    """
    for key, value in data.items():
        if key.endswith("_origin") and key.removesuffix("_origin") in data:
            continue
        where = origin
        if isinstance(data.get(f"{key}_origin"), str):
            where = f"{origin} ({data[f'{key}_origin']})"
        if key == "packages" and isinstance(value, dict):
            env.packages = {str(k): str(v) for k, v in value.items()}
            env.packages_origin = where
        elif key == "git" and isinstance(value, dict):
            for sub, item in value.items():
                env.set(_GIT_KEYS.get(sub, f"git.{sub}"), item, where)
        else:
            env.set(_ENV_KEYS.get(key, key), value, where)


def _labels_from_text(text: str) -> list[str]:
    """Class labels written as a JSON list, one per line, or comma-separated."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, list):
        return [str(v) for v in value]
    sep = "\n" if "\n" in text.strip() else ","
    return [part.strip() for part in text.strip().split(sep) if part.strip()]


def last_per_tag(items: list, marker: str) -> dict[str, object]:
    """The last item (highest step, then logging order) of each tag containing ``marker``."""
    last: dict[str, object] = {}
    for item in items:
        if marker in item.tag.lower() and (
            item.tag not in last or item.step >= last[item.tag].step
        ):
            last[item.tag] = item
    return last


def _strip_text_suffix(tag: str) -> str:
    return tag.removesuffix("/text_summary")


def labels_for(run: RunData, tag: str, n: int) -> tuple[list[str], str | None]:
    """Labels for the n x n matrix of ``tag``: from a text summary, else "0".."n-1"."""
    wanted = {f"{tag}/labels", f"{tag}_labels", f"{tag}/label", f"{tag}_label"}
    texts = [t for t in run.texts if _strip_text_suffix(t.tag) in wanted]
    if not texts:
        texts = [
            t for t in run.texts if "label" in t.tag.lower() and CONFUSION_MARKER in t.tag.lower()
        ]
    default = [str(i) for i in range(n)]
    if not texts:
        return default, None
    labels = _labels_from_text(texts[-1].text)
    if len(labels) != n:
        return default, f"text {texts[-1].tag!r} gives {len(labels)} labels for {n} classes"
    return labels, None


class SideFiles:
    """Reads a run directory's side files; problems go to ``add_finding`` as findings."""

    def __init__(self, uri: str, add_finding: Callable[[Finding], None]):
        self.uri = uri
        self.add_finding = add_finding

    def problem(self, path: str, run_id: str, message: str) -> None:
        """A warning about one side file."""
        self.add_finding(
            Finding(
                Severity.WARNING,
                self.uri,
                message,
                path=path,
                run_id=run_id,
                kind=FindingKind.SIDE_FILE,
            )
        )

    def environment(self, run_dir: str, run_id: str) -> Environment:
        """``environment.json`` and ``requirements.txt`` of ``run_dir``, if present."""
        env = Environment(source_uri=self.uri, run_id=run_id)
        path = os.path.join(run_dir, ENVIRONMENT_FILE)
        data = self._json(path, run_id)
        if isinstance(data, dict):
            fill_environment(env, data, path)
        elif data is not None:
            self.problem(path, run_id, "not a JSON object")
        if not env.packages:
            self._requirements(env, os.path.join(run_dir, REQUIREMENTS_FILE), run_id)
        return env

    def _requirements(self, env: Environment, path: str, run_id: str) -> None:
        try:
            raw = read_side_file(path)
        except (OSError, ValueError) as exc:
            self.problem(path, run_id, str(exc))
            return
        if raw is not None:
            env.packages = parse_requirements(raw.decode("utf-8", errors="replace"))
            env.packages_origin = path

    def _json(self, path: str, run_id: str) -> object | None:
        try:
            raw = read_side_file(path)
            return None if raw is None else json.loads(raw)
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeError are ValueErrors
            self.problem(path, run_id, f"not read: {exc}")
            return None

    def confusion_file(self, run_dir: str, run_id: str) -> list[ConfusionData]:
        """The matrix in ``confusion_matrix.json`` of ``run_dir``, if there is one."""
        path = os.path.join(run_dir, CONFUSION_FILE)
        data = self._json(path, run_id)
        if data is None:
            return []
        try:
            labels, counts = matrix_from_json(data)
        except (ValueError, TypeError) as exc:
            self.problem(path, run_id, f"not a confusion matrix: {exc}")
            return []
        name = CONFUSION_FILE.removesuffix(".json")
        return [ConfusionData(self.uri, run_id, name, labels, counts, path)]

    def confusion_tensors(self, run: RunData) -> list[ConfusionData]:
        """The last step of each square rank-2 tensor whose tag contains "confusion"."""
        found = []
        for tensor in last_per_tag(run.tensors, CONFUSION_MARKER).values():
            n, m = tensor.array.shape
            if n != m:
                self.problem(
                    tensor.path, run.run_id, f"tensor {tensor.tag!r} is {n}x{m}, not square"
                )
                continue
            labels, problem = labels_for(run, tensor.tag, n)
            if problem:
                self.problem(tensor.path, run.run_id, f"{problem}; using 0..{n - 1}")
            origin = f"{tensor.path} (tensor {tensor.tag!r}, step {tensor.step})"
            counts = numeric_counts(tensor.array)
            found.append(ConfusionData(self.uri, run.run_id, tensor.tag, labels, counts, origin))
        return found
