"""The compliance audit report: every run in scope, in full, with its evidence (pure)."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from runreview import charts
from runreview.analysis.leaderboard import leaderboard, metric_direction
from runreview.analysis.periods import runs_until
from runreview.analysis.spread import spread_frame
from runreview.contract import (
    ENV_GIT_BRANCH,
    ENV_GIT_COMMIT,
    ENV_GIT_DIFF,
    ENV_GIT_DIRTY,
    METRIC_PREFIX,
    PARAM_PREFIX,
    TAG_PREFIX,
    Environment,
    RunKey,
    run_keys,
)
from runreview.reports.content import SCORE_MODE, ReportContent, add_overlay
from runreview.reports.format import Cells, num, when
from runreview.reports.options import ReportOptions
from runreview.reports.snapshot import Snapshot

DIFF_EXCERPT_CHARS = 2000
MAX_ARTIFACTS = 50
#: Params (and tags) printed per run; the rest are counted, hashed and left to runs.csv.
MAX_PAIRS_SHOWN = 200
#: Metrics drawn as spread charts (range and median across runs per step), headline first.
MAX_SPREAD_CHARTS = 10
#: Up to this many runs the headline metric is also drawn as one line per run.
OVERLAY_MAX_RUNS = 20
#: Keys in a run's listings are padded to the longest one, up to this many characters, so
#: that the values line up in the monospace listing.
KEY_WIDTH = 28
NBSP = "\u00a0"  # padding that HTML does not collapse


def audit(
    snapshot: Snapshot,
    options: ReportOptions,
    metric: str,
    direction: str,
    cells: Cells,
    content: ReportContent,
) -> pd.DataFrame:
    """One section per run (ids, status, times, user, params, metrics, tags, environment,
    datasets, model versions, artifacts) and the appendix table of all runs."""
    _, until = options.period()  # every run up to ``until``: the audit ignores a period start
    runs = runs_until(snapshot.runs, until).sort_values(["start_time", "run_id"], kind="mergesort")
    content.context["run_count"] = len(runs)
    best = _best_values(snapshot.history, direction_of=lambda m: _direction(m, metric, direction))
    content.context["runs"] = [
        _run_section(row, snapshot, best, cells) for _, row in runs.iterrows()
    ]
    content.context["appendix"] = [
        {
            "run_id": cells(row["run_id"], "run id", limit=80),
            "name": cells(row["run_name"], "run name", limit=60),
            "source": cells(row["source_uri"], "source", limit=80),
            "status": str(row["status"]),
            "start": when(row["start_time"]),
            "value": num(row.get(METRIC_PREFIX + metric)) if metric else "",
        }
        for _, row in runs.iterrows()
    ]
    keys = run_keys(runs)
    if metric and keys and len(keys) <= OVERLAY_MAX_RUNS:
        add_overlay(content, snapshot, keys, metric)
    charted = _add_spreads(content, snapshot, runs, keys, metric, direction)
    if not charted:
        return snapshot.history.iloc[0:0]
    return snapshot.history[snapshot.history["metric"].isin(charted)].merge(
        runs[["source_uri", "run_id"]], on=["source_uri", "run_id"]
    )


def _add_spreads(
    content: ReportContent,
    snapshot: Snapshot,
    runs: pd.DataFrame,
    keys: list[RunKey],
    metric: str,
    direction: str,
) -> list[str]:
    """One spread chart per metric (the headline first, at most :data:`MAX_SPREAD_CHARTS`),
    with the best run by the headline metric marked; returns the metrics charted."""
    content.context.update(spreads=[], spreads_more=0)
    if not keys or snapshot.history.empty:
        return []
    present = set(snapshot.history["metric"].astype(str).unique())
    names = ([metric] if metric in present else []) + sorted(present - {metric})
    marked, label = None, ""
    if metric in present:
        board = leaderboard(runs, snapshot.history, metric, direction, mode=SCORE_MODE)
        if not board.empty:
            top = board.iloc[0]
            marked = (top["source_uri"], top["run_id"])
            label = (
                f"the top run by the last logged value of {metric}, "
                f"{charts.series_label(top['run_name'], top['run_id'])}"
            )
    charted = []
    for name in names[:MAX_SPREAD_CHARTS]:
        result = spread_frame(snapshot.history, name, keys, marked, label)
        if result.frame.empty:
            continue
        chart_name = f"spread-{len(charted)}"
        content.charts[chart_name] = charts.spread_chart(result)
        content.context["spreads"].append({"name": chart_name, "caption": result.caption()})
        charted.append(name)
    content.context["spreads_more"] = max(0, len(names) - MAX_SPREAD_CHARTS)
    return charted


def _direction(name: str, metric: str, direction: str) -> str:
    return direction if name == metric else metric_direction(name)


def _best_values(history: pd.DataFrame, direction_of: Any) -> dict[tuple[str, str, str], float]:
    """Best finite value per (source_uri, run_id, metric)."""
    if history.empty:
        return {}
    finite = history[np.isfinite(history["value"].to_numpy())]
    grouped = finite.groupby(["source_uri", "run_id", "metric"])["value"]
    lows, highs = grouped.min(), grouped.max()
    return {key: (lows[key] if direction_of(key[2]) == "min" else highs[key]) for key in lows.index}


def _run_section(row: pd.Series, snapshot: Snapshot, best: dict, cells: Cells) -> dict[str, Any]:
    key = (row["source_uri"], row["run_id"])
    rid = str(row["run_id"])
    details = snapshot.details.get(key, {})
    env = snapshot.environments.get(key)
    section = {
        "run_id": cells(rid, "run id", limit=120),
        "name": cells(row["run_name"], f"run name of {rid}", limit=120),
        "source": cells(row["source_uri"], "source uri", limit=160),
        "kind": str(row["source"]),
        "experiment": cells(row["experiment"], "experiment", limit=120),
        "status": str(row["status"]),
        "start": when(row["start_time"]),
        "end": when(row["end_time"]),
        "user": cells(details.get("user") or row.get("tags.mlflow.user") or "", "user", limit=80),
        **_pairs(row, PARAM_PREFIX, "params", rid, cells),
        **_metric_listing(_metric_rows(row, key, best)),
        **_pairs(row, TAG_PREFIX, "tags", rid, cells),
        **_environment(env, cells),
        "packages": len(env.packages) if env is not None else 0,
        "git": _git(env, cells) if env is not None else None,
        "datasets": [_dataset(d, cells) for d in details.get("datasets", [])],
        "models": [_model(m, cells) for m in details.get("model_versions", [])],
        "logged_models": [
            {
                "name": cells(m.get("name") or "", "logged model", limit=120),
                "id": cells(m.get("model_id") or "", "model id", limit=80),
            }
            for m in details.get("logged_models", [])
        ],
        "artifacts": [
            {"path": cells(a["path"], "artifact path", limit=160), "size": num(a.get("size"))}
            for a in details.get("artifacts", [])[:MAX_ARTIFACTS]
        ],
        "artifacts_more": max(0, len(details.get("artifacts", [])) - MAX_ARTIFACTS),
        "artifact_error": cells(details.get("artifact_error") or "", "artifact error", limit=300),
    }
    section["identity"] = _identity(section)
    return section


def _environment(env: Environment | None, cells: Cells) -> dict[str, Any]:
    if env is None:
        return {"environment": [], "env_origin": ""}
    rows, usual = _env_rows(env, cells)
    return {"environment": padded(rows), "env_origin": usual}


def _identity(section: dict[str, Any]) -> list[dict[str, str]]:
    """The run's identity lines: ids, status, source, experiment, times, user, packages."""
    rows = [
        ("run id", section["run_id"]),
        ("status", section["status"]),
        ("source", f"{section['kind']}: {section['source']}"),
        ("experiment", section["experiment"]),
        ("started", section["start"]),
        ("ended", section["end"]),
        ("user", section["user"]),
        ("packages", f"{section['packages']} recorded"),
    ]
    return padded([{"key": k, "value": v} for k, v in rows])


def _pairs(row: pd.Series, prefix: str, kind: str, rid: str, cells: Cells) -> dict[str, Any]:
    """``{kind: [{key, value}], kind_more: N}``: at most :data:`MAX_PAIRS_SHOWN` pairs; the
    rest are counted, and the full list is hashed into the appendix."""
    values = {
        column.removeprefix(prefix): row[column]
        for column in row.index
        if column.startswith(prefix) and not _missing(row[column])
    }
    where = f"{kind[:-1]} of {rid}"
    shown = [
        {"key": cells(k, where, limit=100), "value": cells(_plain(k, v, where, cells), where)}
        for k, v in list(values.items())[:MAX_PAIRS_SHOWN]
    ]
    hidden = len(values) - len(shown)
    if hidden:
        listing = json.dumps({k: str(v) for k, v in values.items()}, sort_keys=True)
        cells.note(
            f"{kind} of run {rid}",
            listing,
            f"{len(values)} {kind}, first {len(shown)} shown (all in runs.csv); the hash is "
            "of their sorted JSON",
        )
    return {kind: padded(shown), f"{kind}_more": hidden}


#: Tags whose values are markdown (MLflow's run description).
MARKDOWN_TAGS = frozenset({"mlflow.note.content"})
_EMPHASIS = re.compile(r"(\*\*|__|`)(.+?)\1", re.DOTALL)
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+", re.MULTILINE)


def _plain(key: str, value: Any, where: str, cells: Cells) -> Any:
    """A markdown tag's value as text (emphasis, code marks and heading marks dropped,
    links as ``text (url)``); the change is listed in the appendix."""
    if key not in MARKDOWN_TAGS or not isinstance(value, str):
        return value
    text = _HEADING.sub("", _LINK.sub(r"\1 (\2)", _EMPHASIS.sub(r"\2", value)))
    if text != value:
        cells.note(where, value, "markdown formatting shown as plain text")
    return text


def padded(rows: list[dict[str, str]], field: str = "key") -> list[dict[str, str]]:
    """``rows`` with a ``pad`` of no-break spaces after each ``field`` so that what follows
    lines up (up to :data:`KEY_WIDTH` characters; longer keys are not padded)."""
    width = min(KEY_WIDTH, max((len(r[field]) for r in rows), default=0))
    return [{**r, "pad": NBSP * max(0, width - len(r[field]))} for r in rows]


def _metric_listing(rows: list[dict[str, str]]) -> dict[str, Any]:
    """The metric rows with keys padded and numbers right-aligned, and the heading line."""
    if not rows:
        return {"metrics": [], "metrics_head": ""}
    head = {"key": "metric", "last": "last", "best": "best"}
    table = padded([head, *rows])
    widths = {f: max(len(r[f]) for r in table) for f in ("last", "best")}
    lines = [{**r, **{f: r[f].rjust(widths[f], NBSP) for f in widths}} for r in table]
    first = lines[0]
    return {
        "metrics": lines[1:],
        "metrics_head": f"{first['key']}{first['pad']} {first['last']} {first['best']}",
    }


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _metric_rows(row: pd.Series, key: RunKey, best: dict) -> list[dict[str, str]]:
    out = []
    for column in row.index:
        if column.startswith(METRIC_PREFIX) and not pd.isna(row[column]):
            name = column.removeprefix(METRIC_PREFIX)
            out.append({"key": name, "last": num(row[column]), "best": num(best.get((*key, name)))})
    return out


def _env_rows(env: Environment, cells: Cells) -> tuple[list[dict[str, str]], str]:
    """The environment's values and where most of them were found (stated once for the
    block); a value found elsewhere keeps its own origin."""
    skip = {ENV_GIT_DIFF}
    items = [(k, v, _origin(k, o)) for k, (v, o) in sorted(env.values.items()) if k not in skip]
    common = Counter(o for _, _, o in items).most_common(1)
    usual = common[0][0] if common else ""
    rows = [
        {
            "key": k,
            "value": cells(v, f"environment {k}", limit=200),
            "origin": "" if o == usual else cells(o, "origin", limit=160),
        }
        for k, v, o in items
    ]
    return rows, cells(usual, "origin", limit=160)


def _origin(key: str, origin: str) -> str:
    """``origin`` without a trailing ``(key)`` naming the value itself."""
    return origin.removesuffix(f" ({key})")


def _git(env: Environment, cells: Cells) -> dict[str, str] | None:
    commit = env.get(ENV_GIT_COMMIT)
    if commit is None:
        return None
    diff = env.get(ENV_GIT_DIFF) or ""
    return {
        "commit": cells(commit, "git commit", limit=80),
        "branch": cells(env.get(ENV_GIT_BRANCH) or "", "git branch", limit=120),
        "dirty": str(env.get(ENV_GIT_DIRTY)),
        "diff": cells(diff, "git diff", limit=DIFF_EXCERPT_CHARS),
    }


def _dataset(item: dict[str, Any], cells: Cells) -> dict[str, str]:
    shown = {k: item.get(k) or "" for k in ("name", "digest", "source_type", "source")}
    shown["source"] = readable_source(shown["source"])
    return {k: cells(v, f"dataset {k}", limit=160) for k, v in shown.items()}


def readable_source(source: Any) -> Any:
    """A dataset source as a URL or path: MLflow stores it as JSON (``{"url": ...}``); a
    one-entry object shows its value, other JSON objects as ``key: value`` pairs."""
    if not isinstance(source, str) or not source.startswith("{"):
        return source
    try:
        data = json.loads(source)
    except ValueError:
        return source
    if not isinstance(data, dict) or not data:
        return source
    if len(data) == 1:
        return str(next(iter(data.values())))
    return "; ".join(f"{k}: {v}" for k, v in data.items())


def _model(item: dict[str, Any], cells: Cells) -> dict[str, str]:
    return {
        "name": cells(item.get("name") or "", "model name", limit=120),
        "version": str(item.get("version", "")),
    }
