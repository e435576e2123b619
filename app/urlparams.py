"""The app's URL parameters: every piece of the selection, declared once.

Each piece of the selection (sources, experiments, runs, metric, page options) is a
:class:`Param` in :data:`PARAMS` with its URL name, type and default. The selection itself
lives in session state (:mod:`runreview.app.selection`) and is mirrored into
``st.query_params`` on every run, so a copied link opens the same view.

No value holding credentials is ever read from or written to the URL (:func:`is_safe`).
Runs are named by their run key's string form (:func:`runreview.contract.encode_run_key`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from runreview.contract import RUN_KEY_SEP, decode_run_key, encode_run_key
from runreview.redact import redact_uri


@dataclass(frozen=True)
class Param:
    """One piece of the selection: its URL name, kind and default."""

    name: str
    kind: str  # "list", "str", "int", "float" or "bool"
    default: Any
    help: str
    #: Rewrites each non-empty value read from the URL into its current form (old links).
    normalise: Callable[[str], str] | None = None

    def parse(self, raw: list[str]) -> Any:
        """The value from the URL's raw strings (the default when unreadable)."""
        if self.normalise is not None:
            raw = [self.normalise(v) if v else v for v in raw]
        if self.kind == "list":
            return [v for v in raw if v]
        if not raw:
            return self.default
        text = raw[-1]
        try:
            if self.kind == "int":
                return int(text)
            if self.kind == "float":
                return float(text)
        except ValueError:
            return self.default
        if self.kind == "bool":
            return text.strip().lower() in {"1", "true", "yes", "on"}
        return text

    def encode(self, value: Any) -> list[str]:
        """The URL strings for ``value``."""
        if self.kind == "list":
            return [str(v) for v in value]
        if self.kind == "bool":
            return ["1" if value else "0"]
        if self.kind == "float":
            return [f"{float(value):g}"]
        return [str(value)]

    def is_default(self, value: Any) -> bool:
        """True when ``value`` equals the default (then it is left out of the URL)."""
        if self.kind == "list":
            return list(value) == list(self.default)
        return value == self.default


def _run_key(text: str) -> str:
    """A run key from the URL in its current string form (older links left run ids
    unescaped)."""
    return encode_run_key(decode_run_key(text)) if RUN_KEY_SEP in text else text


SOURCES_ADDED = Param("src", "list", (), "sources added in the sidebar (no credentials)")
SOURCES_OFF = Param("off", "list", (), "keys of sources switched off")
EXPERIMENTS = Param("exp", "list", (), "experiments to include (none: all)")
RUNS = Param("run", "list", (), "selected runs, each <source_uri>::<run_id>", _run_key)
METRIC = Param("metric", "str", "", "the metric pages rank and plot by")
FILTER = Param("q", "str", "", "runs filter in MLflow's search syntax")
COLUMNS = Param("cols", "list", ("params", "metrics"), "column groups of the runs table")
DIFFERING = Param("diff", "bool", False, "only columns whose values differ")
LB_DIRECTION = Param("lb.dir", "str", "auto", "leaderboard direction: auto, min or max")
LB_MODE = Param("lb.mode", "str", "best", "best value over all steps, or last value")
LB_TOP = Param("lb.top", "int", 10, "leaderboard rows (ties kept)")
LB_GROUP = Param("lb.group", "str", "", "best run per value of this param")
LB_SELECTED = Param("lb.sel", "bool", False, "rank only the selected runs")
LB_SPLIT = Param("lb.split", "str", "", "rank change since this date (YYYY-MM-DD)")
OV_METRICS = Param("ov.metrics", "list", (), "metrics on the overlay chart")
OV_X = Param("ov.x", "str", "step", "x axis: step, relative or wall")
OV_WEIGHT = Param("ov.w", "float", 0.6, "smoothing weight (TensorBoard EMA)")
OV_LOG = Param("ov.log", "bool", False, "log y axis")
OV_RAW = Param("ov.raw", "bool", True, "raw lines shown faintly behind the smoothed ones")
OV_POINTS = Param("ov.pts", "int", 2000, "points per series at most")
OV_BAND = Param("ov.band", "str", "", "param to group runs by for mean +- std bands")
CM_NORM = Param("cm.norm", "str", "counts", "counts or row-normalised")
CM_A = Param("cm.a", "str", "", "run A of the difference matrix", _run_key)
CM_B = Param("cm.b", "str", "", "run B of the difference matrix", _run_key)
ENV_ALL = Param("env.all", "bool", False, "show identical rows too")
IMP_PARAMS = Param("imp.params", "list", (), "params to weigh (none: all)")
IMP_SELECTED = Param("imp.sel", "bool", False, "only the selected runs")
RP_KIND = Param("rp.kind", "str", "weekly", "report kind")
RP_GOAL = Param("rp.goal", "str", "auto", "auto, min or max")
RP_SINCE = Param("rp.since", "str", "7d", "period start: 7d, 2w or a date")
RP_EXPERIMENTS = Param("rp.exp", "list", (), "experiments in the report (none: all)")
RP_TOP = Param("rp.top", "int", 5, "runs in the report's leaderboard")
RP_FILTER = Param("rp.q", "str", "", "filter of the report's runs")

PARAMS: tuple[Param, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Param))


def read_url() -> dict[str, Any]:
    """The selection the URL holds: param name -> value (unsafe values left out)."""
    selection = {}
    for param in PARAMS:
        if param.name in st.query_params:
            value = param.parse(list(st.query_params.get_all(param.name)))
            if is_safe(value):
                selection[param.name] = value
    return selection


def write_url(param: Param, selection: dict[str, Any]) -> None:
    """Mirror one param of ``selection`` into ``st.query_params`` (left out when unset)."""
    wanted = param.encode(selection[param.name]) if param.name in selection else []
    current = list(st.query_params.get_all(param.name)) if param.name in st.query_params else []
    if wanted == current:
        return
    if wanted:
        st.query_params[param.name] = wanted if param.kind == "list" else wanted[0]
    else:
        del st.query_params[param.name]


def is_safe(value: Any) -> bool:
    """False when any text in ``value`` is a location carrying credentials."""
    items = value if isinstance(value, list | tuple) else [value]
    return all(not isinstance(v, str) or redact_uri(v) == v for v in items)
