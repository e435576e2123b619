"""Choosing the columns of a runs table: groups, "only columns that differ", CSV export.

Pure functions over the runs frame (see ``runreview.contract``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from runreview.contract import METRIC_PREFIX, PARAM_PREFIX, TAG_PREFIX

#: Column groups a user can switch on and off; the run columns are always shown.
GROUPS = ("params", "metrics", "tags", "details")
#: Always shown, in this order (``source_uri`` is under "details").
BASE_COLUMNS = [
    "run_name",
    "experiment",
    "source",
    "status",
    "start_time",
    "end_time",
    "run_id",
]
_PREFIXES = {"params": PARAM_PREFIX, "metrics": METRIC_PREFIX, "tags": TAG_PREFIX}
#: Characters that make a spreadsheet read a cell as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def column_group(column: str) -> str:
    """A runs-frame column's group: ``base``, ``params``, ``metrics``, ``tags`` or ``details``."""
    if column in BASE_COLUMNS:
        return "base"
    for group, prefix in _PREFIXES.items():
        if column.startswith(prefix):
            return group
    return "details"


def differing_columns(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> list[str]:
    """The columns (of ``columns``, default all) whose values are not all the same.

    Missing values count as a value of their own: a param set in some runs and missing in
    others differs. A frame with fewer than two rows has no differing column.
    """
    names = list(frame.columns if columns is None else columns)
    if len(frame) < 2:
        return []
    return [c for c in names if c in frame.columns and _differs(frame[c])]


def _differs(values: pd.Series) -> bool:
    """True when the series holds more than one distinct value (missing included)."""
    texts = {_canonical(v) for v in values}
    return len(texts) > 1


def _canonical(value: Any) -> str:
    """A text form for equality: numbers by value, missing as one marker."""
    if value is None or (not isinstance(value, str | list | dict) and bool(pd.isna(value))):
        return "\x00missing"
    if isinstance(value, float | int | np.floating | np.integer) and not isinstance(value, bool):
        return repr(float(value))
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def select_columns(
    runs: pd.DataFrame, groups: Sequence[str], only_differing: bool = False
) -> list[str]:
    """The columns to show: ``BASE_COLUMNS`` then those of ``groups`` in frame order.

    With ``only_differing`` the group columns whose values are all the same are left out
    (the base columns always stay). Raises ValueError for an unknown group.
    """
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown column group(s) {unknown}; choose from {', '.join(GROUPS)}")
    base = [c for c in BASE_COLUMNS if c in runs.columns]
    chosen = [c for c in runs.columns if column_group(c) in set(groups)]
    if only_differing:
        keep = set(differing_columns(runs, chosen))
        chosen = [c for c in chosen if c in keep]
    return base + chosen


def unit_interval_columns(runs: pd.DataFrame) -> list[str]:
    """Metric columns whose finite values all lie in [0, 1] (accuracy-like; drawn as bars).

    A column needs at least one finite value; NaN and inf are ignored.
    """
    found = []
    for column in runs.columns:
        if not column.startswith(METRIC_PREFIX):
            continue
        values = pd.to_numeric(runs[column], errors="coerce").to_numpy(dtype="float64")
        finite = values[np.isfinite(values)]
        if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
            found.append(column)
    return found


def neutralise_formula(value: Any) -> Any:
    """Text starting like a spreadsheet formula gets a leading ``'``; other values as is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV with ISO-8601 UTC times; text cells that a spreadsheet would
    run as a formula (``=``, ``+``, ``-``, ``@``...) are prefixed with ``'``. Numbers are
    written unchanged (a negative metric stays a number)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise_formula)
    text = out.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    return text.encode("utf-8")
