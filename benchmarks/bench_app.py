"""What the app and the reports do once data is loaded: an overlay chart, an audit PDF."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import gen_mlflow
from benchmarks.bench_mlflow import history_store
from benchmarks.common import (
    BenchResult,
    Contender,
    Scale,
    Target,
    alternate,
    at_most,
)

OVERLAY_METRIC = "m00"
MAX_POINTS = 2000


def _overlay(history: Any, runs: Any, keys: list[tuple[str, str]]) -> dict[str, Any]:
    from runreview.analysis.overlay import overlay_frame
    from runreview.charts import overlay_chart

    result = overlay_frame(history, runs, [OVERLAY_METRIC], keys, max_points=MAX_POINTS)
    spec = overlay_chart(result).to_dict()
    rows = [row for values in spec.get("datasets", {}).values() for row in values]
    per_series = Counter(row["series"] for row in rows)
    return {
        "series": len(per_series),
        "points_sent": len(rows),
        "max_points_per_series": max(per_series.values(), default=0),
    }


def bench_overlay(folder: Path, scale: Scale, rounds: int) -> BenchResult:
    """overlay_frame + overlay_chart(...).to_dict() for many runs, data already loaded."""
    from runreview.sources import open_source

    store = history_store(folder, scale)
    source = open_source(f"sqlite:///{store}")
    runs, history = source.read_runs(), source.read_history()
    source.close()
    runs = runs.head(scale.overlay_runs)
    keys = list(zip(runs["source_uri"], runs["run_id"], strict=True))
    result = BenchResult(
        "app_overlay",
        "App: overlay chart",
        f"{len(keys):,} runs selected, metric {OVERLAY_METRIC!r}, x = step, smoothing 0.6, "
        f"at most {MAX_POINTS:,} points per series; history frame of {len(history):,} points "
        "(the MLflow history store) already in memory",
    )
    _overlay(history, runs, keys[:2])  # imports altair and warms it up (not timed)
    name = "overlay_frame + overlay_chart().to_dict()"
    result.measurements = alternate(
        [Contender(name, lambda: _overlay(history, runs, keys))], rounds
    )
    facts = result.get(name).facts
    result.targets.append(
        at_most(f"overlay of {len(keys):,} runs in <= 1 s", result.get(name).median, 1.0)
    )
    result.targets.append(
        Target(
            f"<= {MAX_POINTS:,} points per series sent",
            facts["max_points_per_series"] <= MAX_POINTS,
            f"at most {facts['max_points_per_series']:,} per series, {facts['series']:,} series, "
            f"{facts['points_sent']:,} rows in the chart",
        )
    )
    return result


def bench_audit(folder: Path, scale: Scale, rounds: int) -> BenchResult:
    """An audit PDF of every run of a store: snapshot, then render."""
    from runreview.reports.build import make_snapshot, render_report
    from runreview.reports.options import ReportOptions
    from runreview.workspace import Workspace

    runs, metrics, steps = scale.audit
    store = gen_mlflow.make_history_store(folder, runs, metrics, steps, params=20, name="audit")
    options = ReportOptions(
        kind="audit", now=datetime(2026, 1, 1, tzinfo=UTC), since=None, metric="m00"
    )
    state: dict[str, Any] = {}

    def snapshot() -> dict[str, Any]:
        ws = Workspace.open([f"sqlite:///{store}"])
        state["snapshot"] = make_snapshot(ws, options, lambda m, f: None)
        ws.close()
        return {"runs": len(state["snapshot"].runs)}

    def render() -> dict[str, Any]:
        built = render_report(state["snapshot"], options)
        return {"pdf_bytes": len(built.pdf), "charts": len(built.content.charts)}

    snapshot()  # the render needs one before its first round
    result = BenchResult(
        "audit_pdf",
        "Reports: audit PDF",
        f"{runs} runs x {metrics} metrics x {steps} steps, 20 params each (MLflow sqlite store)",
    )
    result.measurements = alternate(
        [Contender("make_snapshot", snapshot), Contender("render_report (PDF/A-3b)", render)],
        rounds,
    )
    total = result.get("make_snapshot").median + result.get("render_report (PDF/A-3b)").median
    charts = result.get("render_report (PDF/A-3b)").facts["charts"]
    result.ratios.append(f"snapshot + render: {total:.2f} s; charts in the PDF: {charts}")
    result.targets.append(at_most(f"audit PDF of {runs} runs in <= 10 s", total, 10.0))
    if charts < 10:
        result.notes.append(
            f"The audit template draws {charts} chart(s) (one overlay of the headline metric), "
            "not 10: the target's '10 charts' is not what the audit report contains."
        )
    return result
