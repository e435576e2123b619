"""The contract frames of W&B runs, built from the file states of their folders.

See :mod:`.source` for what each column holds. The history frame's text columns are
pandas Categoricals (as for TensorBoard, :mod:`runreview.sources.tensorboard.frames`): a
million points cost a few megabytes of codes instead of a Python string each.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
import pandas as pd

from runreview.contract import (
    METRIC_PREFIX,
    PARAM_PREFIX,
    SOURCE_WANDB,
    STATUS_FAILED,
    STATUS_FINISHED,
    STATUS_KILLED,
    TAG_PREFIX,
    TIME_DTYPE,
    empty_history,
    order_run_columns,
)
from runreview.sources.wandb.records import as_number
from runreview.sources.wandb.runs import FileState, is_internal

#: W&B files runs without a project under this project.
DEFAULT_PROJECT = "uncategorized"
#: The exit code W&B records for a run stopped by KeyboardInterrupt.
EXIT_INTERRUPTED = 255
_NAT = np.iinfo(np.int64).min


# --- values -------------------------------------------------------------------------------


def format_param(value: Any) -> str:
    """A config value as the string runreview stores as a param.

    Whole numbers print without ``.0`` (wandb-core writes ``1.0`` as ``1``); booleans as
    ``True`` / ``False``; None as ""; lists and dicts as JSON.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return _number(value)
    return json.dumps(_whole(value), ensure_ascii=False, default=str)


def _number(x: float) -> str:
    if isinstance(x, int):
        return str(x)
    if math.isfinite(x) and x == int(x) and abs(x) < 2**53:
        return str(int(x))
    return repr(float(x))


def _whole(value: Any) -> Any:
    """Whole floats as ints, inside lists and dicts too (so both backends print alike)."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, list):
        return [_whole(v) for v in value]
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    return value


def status_of(exit_code: int) -> str:
    """The contract status for a W&B exit code."""
    if exit_code == 0:
        return STATUS_FINISHED
    return STATUS_KILLED if exit_code == EXIT_INTERRUPTED else STATUS_FAILED


def _utc(seconds: float | None) -> pd.Timestamp | None:
    if seconds is None or not math.isfinite(seconds):
        return None
    return pd.Timestamp(round(seconds * 1e6), unit="us", tz="UTC")


# --- runs ---------------------------------------------------------------------------------


def run_row(run_id: str, states: list[FileState], uri: str, status: str | None) -> dict:
    """The runs-frame row of one run (its folders in the order they were written).

    ``status`` is RUNNING or UNKNOWN for a run without an exit record, None otherwise.
    """
    infos = [s.info for s in states if s.info is not None]
    last = states[-1]

    def latest(name: str) -> str:
        return next((getattr(i, name) for i in reversed(infos) if getattr(i, name)), "")

    starts = [i.start_time for i in infos if i.start_time is not None]
    row: dict[str, Any] = {
        "source": SOURCE_WANDB,
        "source_uri": uri,
        "experiment": latest("project") or DEFAULT_PROJECT,
        "run_id": run_id,
        "run_name": latest("display_name") or run_id,
        "status": status or status_of(last.exit[0] if last.exit else 0),
        "start_time": _utc(min(starts)) if starts else None,
        "end_time": _utc(_end_time(last)) if status is None else None,
    }
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for state in states:
        config.update(state.config)
        summary.update(state.summary)
    row.update(_params(config))
    row.update(_metrics(summary))
    row.update(_tags(states, latest))
    return row


def _end_time(state: FileState) -> float | None:
    candidates = [state.last_time] if math.isfinite(state.last_time) else []
    if state.info is not None and state.info.start_time is not None and state.exit:
        candidates.append(state.info.start_time + state.exit[1])
    return max(candidates) if candidates else None


def _params(config: dict[str, Any]) -> dict[str, str]:
    return {PARAM_PREFIX + k: format_param(v) for k, v in config.items() if not is_internal(k)}


def _metrics(summary: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in summary.items():
        number = as_number(value)
        if number is not None and not is_internal(key):
            out[METRIC_PREFIX + key] = number
    return out


def _tags(states: list[FileState], latest: Any) -> dict[str, str]:
    infos = [s.info for s in states if s.info is not None]
    tags = {
        "wandb.tags": ", ".join(infos[-1].tags) if infos else "",
        "wandb.notes": latest("notes"),
        "wandb.group": latest("group"),
        "wandb.job_type": latest("job_type"),
        "wandb.entity": latest("entity"),
        "wandb.sweep_id": latest("sweep_id"),
        "wandb.host": latest("host"),
        "wandb.version": latest("cli_version") or states[-1].producer,
        "wandb.folders": ", ".join(os.path.basename(s.folder) for s in states),
    }
    return {TAG_PREFIX + k: v for k, v in tags.items() if v}


def runs_frame(rows: list[dict]) -> pd.DataFrame:
    """The runs frame of ``rows`` in the contract's column order."""
    return order_run_columns(pd.DataFrame(rows))


# --- history ------------------------------------------------------------------------------


def _columns(states: list[FileState], metrics: set[str] | None) -> tuple[list[str], tuple]:
    """Metric names (sorted) and the run's points as arrays, metric codes global to it."""
    names = sorted({n for s in states for n in s.points.names})
    if metrics is not None:
        names = [n for n in names if n in metrics]
    index = {n: i for i, n in enumerate(names)}
    parts = []
    for state in states:
        p = state.points
        remap = np.array([index.get(n, -1) for n in p.names], dtype=np.int64)
        code = remap[np.frombuffer(p.code, dtype=np.int32)] if len(p) else np.zeros(0, np.int64)
        parts.append(
            (code, np.frombuffer(p.step, np.int64), np.frombuffer(p.value), np.frombuffer(p.wall))
        )
    code, step, value, wall = (np.concatenate(c) for c in zip(*parts, strict=True))
    keep = np.flatnonzero(code >= 0)
    order = keep[np.argsort(code[keep], kind="stable")]
    return names, (code[order], step[order], value[order], wall[order])


def history_frame(
    runs: dict[str, list[FileState]], metrics: set[str] | None, uri: str
) -> pd.DataFrame:
    """The history frame of ``runs`` (run id -> folder states): rows by run id, then
    metric name, then logging order."""
    run_ids, all_names, chunks = [], set(), []
    for run_id, states in sorted(runs.items()):
        names, cols = _columns(states, metrics)
        if cols[0].size:
            run_ids.append(run_id)
            all_names.update(names)
            chunks.append((names, cols))
    if not chunks:
        return empty_history()
    metric_names = sorted(all_names)
    rank = {n: i for i, n in enumerate(metric_names)}
    run_code = np.concatenate([np.full(c[1][0].size, i) for i, c in enumerate(chunks)])
    metric_code = np.concatenate(
        [np.array([rank[n] for n in names], dtype=np.int64)[cols[0]] for names, cols in chunks]
    )
    step, value, wall = (np.concatenate([c[1][k] for c in chunks]) for k in (1, 2, 3))
    size = step.size
    return pd.DataFrame(
        {
            "source": _categorical(np.zeros(size, dtype=np.int8), [SOURCE_WANDB]),
            "source_uri": _categorical(np.zeros(size, dtype=np.int8), [uri]),
            "run_id": _categorical(run_code, run_ids),
            "metric": _categorical(metric_code, metric_names),
            "step": step.astype(np.int64),
            "value": value.astype(np.float64),
            "timestamp": _timestamps(wall),
        }
    )


def _categorical(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    dtype = pd.CategoricalDtype(pd.Index(names, dtype="str"))
    return pd.Categorical.from_codes(codes, dtype=dtype)


def _timestamps(wall: np.ndarray) -> pd.Series:
    """Seconds since the epoch as UTC timestamps (NaT where not finite)."""
    ok = np.isfinite(wall) & (np.abs(wall) < 1e11)
    us = np.full(wall.size, _NAT, dtype=np.int64)
    us[ok] = np.rint(wall[ok] * 1e6).astype(np.int64)
    return pd.Series(us.view("datetime64[us]"), dtype=TIME_DTYPE)
