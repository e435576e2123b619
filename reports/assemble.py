"""Assembling a report: analysis results + provenance -> template context. Pure (no I/O).

Every kind shares the cover facts, the data-completeness section and the attachments
(:mod:`.content`); ``weekly``, ``stakeholder`` and ``audit`` add their own sections, each
in its own module. This module only picks the kind and fills in the cover.
"""

from __future__ import annotations

from typing import Any

from runreview.analysis.leaderboard import choose_metric, metric_direction
from runreview.contract import METRIC_PREFIX
from runreview.reports import audit, stakeholder, weekly
from runreview.reports.content import ReportContent, completeness, data_files, scope
from runreview.reports.format import Cells, when
from runreview.reports.manifest import sha256_hex, snapshot_hash
from runreview.reports.options import ReportOptions, iso
from runreview.reports.snapshot import Snapshot

BUILDERS = {"weekly": weekly.weekly, "stakeholder": stakeholder.stakeholder, "audit": audit.audit}


def assemble(snapshot: Snapshot, options: ReportOptions) -> ReportContent:
    """The report's context, charts and data files for ``options.kind``."""
    metric = (options.metric or choose_metric(snapshot.runs) or "").removeprefix(METRIC_PREFIX)
    direction = options.goal or (metric_direction(metric) if metric else "max")
    cells = Cells()
    since, until = options.period()
    if options.kind == "audit":
        # An audit is the full record: every run in scope started up to ``until``; a period
        # start (the CLI's default --since 7d) does not narrow it, so none is stated.
        since = None
    content = ReportContent(kind=options.kind, context={})
    ctx = content.context
    ctx.update(
        kind=options.kind,
        title=options.display_title(),
        metric=metric,
        direction=direction,
        direction_text="lower is better" if direction == "min" else "higher is better",
        period_text=_period_text(since, until),
        generated_at=iso(options.now_utc),
        generated_text=when(options.now_utc),
        completeness=completeness(snapshot, cells),
        run_count=len(snapshot.runs),
        overlay_caption="",
    )
    chart_history = BUILDERS[options.kind](snapshot, options, metric, direction, cells, content)
    content.data_files = data_files(snapshot, chart_history)
    content.scope = scope(snapshot, options, since, until)
    ctx["scope"] = content.scope
    ctx["snapshot_sha256"] = snapshot_hash(content.data_files)
    ctx["report_id"] = report_id(options, ctx["snapshot_sha256"])
    ctx["truncated_values"] = cells.truncated
    ctx["missing_glyphs"] = []
    return content


def report_id(options: ReportOptions, snapshot_sha: str) -> str:
    """A short id fixed by the kind, the time and the data (same input, same id)."""
    return sha256_hex(f"{options.kind}|{iso(options.now_utc)}|{snapshot_sha}".encode())[:16]


def _period_text(since: Any, until: Any) -> str:
    if since is None:
        return f"all runs up to {when(until)}"
    return f"{when(since)} to {when(until)}"
