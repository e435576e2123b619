"""What a W&B run folder holds besides its ``.wandb`` file, and the run's environment.

- ``files/wandb-metadata.json``: the environment, written by wandb before 0.20 (later
  versions write an environment record into the ``.wandb`` file instead; both use the same
  keys once decoded, see :func:`.records.decode_environment`);
- ``files/requirements.txt``: the packages installed when the run started;
- ``files/confusion_matrix.json`` (``{"labels": [...], "matrix": [[...]]}``) and the
  tables that ``wandb.plot.confusion_matrix`` logs (``files/media/table/*.table.json``
  with the columns Actual, Predicted, nPredictions): confusion matrices.

Side files are read size-capped (:mod:`runreview.sources.sidefiles`).
"""

from __future__ import annotations

import os
import shlex
from typing import Any

import numpy as np

from runreview.contract import (
    CONFUSION_FILE,
    ENV_CUDA,
    ENV_GIT_COMMIT,
    ENV_GIT_REMOTE,
    ENV_GPU,
    ENV_PLATFORM,
    ENV_PYTHON,
    ConfusionData,
    Environment,
)
from runreview.sources.evidence import matrix_from_json
from runreview.sources.sidefiles import read_json_side_file

METADATA_FILE = "wandb-metadata.json"
REQUIREMENTS_FILE = "requirements.txt"
CONFUSION_MARKERS = ("confusion", "conf_mat")
TABLE_COLUMNS = ("Actual", "Predicted", "nPredictions")
#: wandb-metadata.json / environment-record keys copied as they are.
_PLAIN_KEYS = {
    "program": "program",
    "codePath": "code_path",
    "executable": "executable",
    "host": "host",
    "docker": "docker",
    "cpu_count": "cpu_count",
    "cpu_count_logical": "cpu_count_logical",
    "gpu_count": "gpu_count",
}


def files_path(folder: str, name: str) -> str:
    """A path inside a run folder's ``files/`` directory."""
    return os.path.join(folder, "files", *name.split("/"))


# --- environment --------------------------------------------------------------------------


def fill_environment(env: Environment, meta: dict[str, Any], origin: str) -> None:
    """Copy W&B's environment keys (``wandb-metadata.json`` or an environment record)."""
    python = meta.get("python")
    if isinstance(python, str) and python:
        implementation, _, version = python.rpartition(" ")
        env.set(ENV_PYTHON, version, origin)
        env.set("python.implementation", implementation, origin)
    env.set(ENV_PLATFORM, meta.get("os"), origin)
    git = meta.get("git")
    if isinstance(git, dict):
        env.set(ENV_GIT_COMMIT, git.get("commit"), origin)
        env.set(ENV_GIT_REMOTE, git.get("remote"), origin)
    args = meta.get("args")
    if isinstance(args, list) and args:
        env.set("args", shlex.join(str(a) for a in args), origin)
    for key, name in _PLAIN_KEYS.items():
        env.set(name, meta.get(key), origin)
    env.set(ENV_CUDA, meta.get("cuda") or meta.get("cudaVersion"), origin)
    env.set(ENV_GPU, meta.get("gpu") or _gpu_names(meta), origin)


def _gpu_names(meta: dict[str, Any]) -> str | None:
    """GPU names from ``gpu_devices`` (legacy) or ``gpu_nvidia`` (0.18, 0.19)."""
    devices = meta.get("gpu_devices") or meta.get("gpu_nvidia") or []
    names = [d.get("name") for d in devices if isinstance(d, dict) and d.get("name")]
    return ", ".join(sorted(set(names))) or None


# --- confusion matrices -------------------------------------------------------------------


def matrix_from_table(data: object) -> tuple[list[str], np.ndarray]:
    """Labels and counts from a ``wandb.plot.confusion_matrix`` table; ValueError if bad.

    The table has one row per (actual, predicted) pair with its count.
    """
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError('expected a W&B table with "columns" and "data"')
    columns = list(data.get("columns") or [])
    if not all(c in columns for c in TABLE_COLUMNS):
        raise ValueError(f"table columns {columns} are not {list(TABLE_COLUMNS)}")
    at = [columns.index(c) for c in TABLE_COLUMNS]
    rows = [(str(r[at[0]]), str(r[at[1]]), float(r[at[2]])) for r in data["data"]]
    labels = list(dict.fromkeys([a for a, _, _ in rows] + [p for _, p, _ in rows]))
    if not labels:
        raise ValueError("the table has no rows")
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=np.float64)
    for actual, predicted, count in rows:
        counts[index[actual], index[predicted]] += count
    if np.all(counts == np.round(counts)):
        counts = counts.astype(np.int64)
    return labels, counts


def confusion_tables(media: dict[str, dict]) -> dict[str, str]:
    """``key -> table path`` (relative to ``files/``) of logged confusion-matrix tables."""
    found = {}
    for key, value in media.items():
        path = value.get("path")
        if (
            any(m in key.lower() for m in CONFUSION_MARKERS)
            and value.get("_type") == "table-file"
            and isinstance(path, str)
        ):
            found[key] = path
    return found


def confusion_file(source_uri: str, run_id: str, folder: str) -> list[ConfusionData]:
    """``files/confusion_matrix.json`` of a run folder. Raises OSError or ValueError."""
    path = files_path(folder, CONFUSION_FILE)
    data = read_json_side_file(path)
    if data is None:
        return []
    labels, counts = matrix_from_json(data)
    name = CONFUSION_FILE.removesuffix(".json")
    return [ConfusionData(source_uri, run_id, name, labels, counts, path)]


def inside(folder: str, relative: str) -> str | None:
    """``folder/files/relative`` when it stays inside ``folder/files`` (else None)."""
    base = os.path.realpath(os.path.join(folder, "files"))
    target = os.path.realpath(os.path.join(base, relative))
    return target if target.startswith(base + os.sep) else None
