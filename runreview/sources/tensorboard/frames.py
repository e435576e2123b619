"""The contract frames of a TensorBoard logdir, built column by column from run arrays.

The history frame's text columns (``source``, ``source_uri``, ``run_id``, ``metric``) are
pandas Categoricals (dictionary-encoded, categories of the contract's ``str`` dtype,
sorted): a million rows cost a few megabytes of codes instead of a Python string each,
and the frame is built with no per-point Python work. They compare, filter, group and
concatenate like ``str`` columns (``pd.concat`` with a ``str`` column gives ``str``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from runreview.contract import (
    METRIC_PREFIX,
    PARAM_PREFIX,
    SOURCE_TENSORBOARD,
    TIME_DTYPE,
    empty_history,
    empty_runs,
    order_run_columns,
)
from runreview.sources.tensorboard.runs import RunData, small_codes
from runreview.sources.tensorboard.state import WALL_LIMIT

STATUS_UNKNOWN = "UNKNOWN"  # TensorBoard records no run status
_NAT = np.iinfo(np.int64).min


def timestamps(wall: np.ndarray) -> pd.Series:
    """Seconds since the epoch as UTC timestamps (microsecond precision; NaT when not
    finite or out of range)."""
    return _utc(_microseconds(np.asarray(wall, dtype=np.float64)))


def _microseconds(wall: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``wall`` in whole microseconds (round half to even), NaT's value where not finite
    or out of range."""
    us = np.empty(wall.size, dtype=np.int64) if out is None else out
    scaled = np.rint(wall * 1e6)
    ok = np.isfinite(wall) & (np.abs(wall) < WALL_LIMIT)
    np.copyto(us, scaled, casting="unsafe", where=ok)
    us[~ok] = _NAT
    return us


def _utc(us: np.ndarray) -> pd.Series:
    return pd.Series(us.view("datetime64[us]"), dtype=TIME_DTYPE)


def _categorical(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    """A Categorical over ``names`` (sorted, unique) from codes of a fitting dtype."""
    dtype = pd.CategoricalDtype(pd.Index(names, dtype="str"))
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _code_dtype(count: int) -> np.dtype:
    """The code dtype pandas uses for ``count`` categories (so no copy is made)."""
    for dtype in (np.int8, np.int16, np.int32):
        if count < np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


class _Plan:
    """Which rows of each run go into the history, in what order, with which metric code."""

    def __init__(self, runs: list[RunData], metrics: set[str] | None):
        names = {t for run in runs for t in _logged_tags(run)}
        self.metrics = sorted(names if metrics is None else names & metrics)
        index = {name: i for i, name in enumerate(self.metrics)}
        self.items: list[tuple[RunData, np.ndarray | None, np.ndarray]] = []
        self.total = 0
        for run in runs:
            p = run.points
            to_global = np.array([index.get(t, -1) for t in p.tags], dtype=np.int32)
            rows = _rows(small_codes(p.code, len(p.tags)), to_global)
            count = p.code.size if rows is None else rows.size
            if count:
                self.items.append((run, rows, to_global))
                self.total += count


def _logged_tags(run: RunData) -> list[str]:
    """The run's tags that have points (a tag can be named by records that turned out not
    to be scalars)."""
    p = run.points
    counts = np.bincount(p.code, minlength=len(p.tags)) if p.code.size else []
    return [tag for tag, n in zip(p.tags, counts, strict=False) if n]


def _rows(code: np.ndarray, to_global: np.ndarray) -> np.ndarray | None:
    """Rows ordered by metric name then logging order; None when that is all rows as
    they are. Metric codes are ranks of sorted names, so ordering by code is by name."""
    if code.size == 0:
        return np.zeros(0, dtype=np.int64)
    wanted = to_global >= 0
    ranks = small_codes(np.where(wanted, to_global, 0), int(to_global.max()) + 1)[code]
    if wanted.all():
        if (ranks[1:] >= ranks[:-1]).all():
            return None
        return np.argsort(ranks, kind="stable")
    rows = np.flatnonzero(wanted[code])
    return rows[np.argsort(ranks[rows], kind="stable")]


def history_frame(runs: list[RunData], metrics: set[str] | None, uri: str) -> pd.DataFrame:
    """The contract's history frame of ``runs`` (ordered by run id), optionally only of
    ``metrics``: rows by run, then metric name, then logging order."""
    plan = _Plan(runs, metrics)
    if plan.total == 0:
        return empty_history()
    n = plan.total
    run_code = np.empty(n, dtype=_code_dtype(len(plan.items)))
    metric_code = np.empty(n, dtype=_code_dtype(len(plan.metrics)))
    step, value = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.float64)
    us = np.empty(n, dtype=np.int64)
    at = 0
    for i, (run, rows, to_global) in enumerate(plan.items):
        p = run.points
        size = p.code.size if rows is None else rows.size
        part = slice(at, at + size)
        run_code[part] = i
        if rows is None:
            metric_code[part] = to_global[p.code]
            step[part], value[part] = p.step, p.value
            _microseconds(p.wall, us[part])
        else:
            metric_code[part] = to_global[p.code[rows]]
            np.take(p.step, rows, out=step[part])
            np.take(p.value, rows, out=value[part])
            _microseconds(p.wall[rows], us[part])
        at += size
    zeros = np.zeros(n, dtype=np.int8)
    columns = {
        "source": _categorical(zeros, [SOURCE_TENSORBOARD]),
        "source_uri": _categorical(zeros, [uri]),
        "run_id": _categorical(run_code, [run.run_id for run, _, _ in plan.items]),
        "metric": _categorical(metric_code, plan.metrics),
        "step": step,
        "value": value,
        "timestamp": _utc(us),
    }
    return pd.DataFrame(columns, copy=False)


def experiment_of(run_id: str, logdir_name: str) -> str:
    """The experiment of a run: the first folder under the logdir when the run sits two or
    more folders below it (``a/run1`` -> ``a``), else the logdir's own name (``run3``,
    ``"."``)."""
    first, sep, _ = run_id.partition("/")
    return first if sep else logdir_name


def _run_row(run: RunData, logdir_name: str, uri: str) -> dict:
    row = {
        "source": SOURCE_TENSORBOARD,
        "source_uri": uri,
        "experiment": experiment_of(run.run_id, logdir_name),
        "run_id": run.run_id,
        "run_name": run.run_id,
        "status": STATUS_UNKNOWN,
        "start_time": run.start,
        "end_time": run.end,
    }
    row.update({PARAM_PREFIX + k: v for k, v in run.params.items()})
    row.update({METRIC_PREFIX + k: v for k, v in run.last_values().items()})
    return row


def runs_frame(runs: list[RunData], logdir_name: str, uri: str) -> pd.DataFrame:
    """The contract's runs frame: one row per run (experiments by :func:`experiment_of`)."""
    if not runs:
        return empty_runs()
    frame = pd.DataFrame([_run_row(r, logdir_name, uri) for r in runs])
    for col in ("start_time", "end_time"):
        frame[col] = timestamps(frame[col].to_numpy(dtype=np.float64))
    return order_run_columns(frame)
