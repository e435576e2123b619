"""How a metric spread across many runs, step by step: the range, the median and one run.

An overlay of a hundred runs is a tangle of lines; an audit or a review of a sweep needs to
see where the runs lay at each step (lowest, median, highest) and where the best run lay
among them. Pure functions over the history frame of the data contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from runreview.contract import RunKey, encode_run_key, encoded_run_keys

#: Steps drawn per metric; more distinct steps are grouped into this many equal step ranges
#: (each keeping the lowest and highest value in it, so no extreme is lost).
MAX_STEPS = 500

SPREAD_COLUMNS = ["step", "low", "median", "high", "runs"]


@dataclass
class SpreadResult:
    """The spread of ``metric`` across ``runs`` runs.

    ``frame`` has :data:`SPREAD_COLUMNS`: per step (or step range, labelled by its first
    step) the lowest, median and highest finite value and how many runs had one there.
    ``marked`` has ``step`` and ``value`` of the marked run (e.g. the best), possibly empty.
    ``points`` counts the finite points summarised; ``binned`` is True when steps were
    grouped into ranges.
    """

    metric: str
    frame: pd.DataFrame
    marked: pd.DataFrame
    marked_label: str
    runs: int
    points: int
    binned: bool

    def caption(self) -> str:
        """One sentence saying what the chart shows."""
        where = f"{MAX_STEPS} step ranges" if self.binned else "each step"
        text = (
            f"{self.metric}: lowest to highest value (band) and median (line) at {where} "
            f"across {self.runs:,} run(s), from {self.points:,} points"
        )
        if self.marked_label:
            text += f"; the dark line is {self.marked_label}"
        return text + "."


def spread_frame(
    history: pd.DataFrame,
    metric: str,
    run_keys: Iterable[RunKey],
    marked: RunKey | None = None,
    marked_label: str = "",
    max_steps: int = MAX_STEPS,
) -> SpreadResult:
    """The spread of ``metric`` over the runs ``run_keys`` (``(source_uri, run_id)``).

    Non-finite values are left out (they are neither low nor high). When there are more
    than ``max_steps`` distinct steps, steps are grouped into ``max_steps`` equal ranges:
    the low and high of a range are the lowest and highest value in it, the median the
    median of its values. ``marked`` is drawn as its own line (its values, same ranges).
    """
    keys = set(run_keys)
    points = _points_of(history, metric, keys)
    steps = points["step"].to_numpy(dtype=np.int64)
    binned = len(np.unique(steps)) > max_steps
    if binned:
        points = points.assign(step=_range_starts(steps, max_steps))
    grouped = points.groupby("step", sort=True)["value"]
    frame = pd.DataFrame(
        {
            "low": grouped.min(),
            "median": grouped.median(),
            "high": grouped.max(),
        }
    )
    frame["runs"] = points.groupby("step", sort=True)["key"].nunique()
    frame = frame.reset_index()[SPREAD_COLUMNS]
    mark = points[points["key"] == encode_run_key(marked)] if marked in keys else points.iloc[0:0]
    marked_frame = mark.groupby("step", sort=True)["value"].median().reset_index()
    return SpreadResult(
        metric=metric,
        frame=frame,
        marked=marked_frame,
        marked_label=marked_label if not marked_frame.empty else "",
        runs=points["key"].nunique(),
        points=len(points),
        binned=binned,
    )


def _points_of(history: pd.DataFrame, metric: str, keys: set[RunKey]) -> pd.DataFrame:
    """Finite points of ``metric`` of the runs ``keys``: ``step``, ``value`` and ``key``
    (the run as one string, :func:`runreview.contract.encode_run_key`)."""
    if history.empty or not keys:
        return pd.DataFrame({"step": [], "value": [], "key": []})
    rows = history[(history["metric"] == metric).to_numpy()]
    key = encoded_run_keys(rows)
    values = rows["value"].to_numpy(dtype=float)
    keep = np.isfinite(values) & key.isin([encode_run_key(k) for k in keys]).to_numpy()
    return pd.DataFrame(
        {
            "step": rows["step"].to_numpy()[keep].astype(np.int64),
            "value": values[keep],
            "key": key.to_numpy()[keep],
        }
    )


def _range_starts(steps: np.ndarray, count: int) -> np.ndarray:
    """Each step replaced by the first step of its range, ``count`` equal ranges in all."""
    edges = np.linspace(steps.min(), steps.max(), count + 1)
    index = np.clip(np.searchsorted(edges, steps, side="right") - 1, 0, count - 1)
    return np.floor(edges[index]).astype(np.int64)
