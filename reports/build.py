"""Making a report end to end: snapshot -> assemble -> charts -> HTML -> PDF/A -> file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from runreview import settings
from runreview.analysis.leaderboard import choose_metric, leaderboard, metric_direction
from runreview.contract import RunKey, run_keys
from runreview.progress import Progress
from runreview.reports.assemble import assemble
from runreview.reports.content import SCORE_MODE, ReportContent
from runreview.reports.manifest import MANIFEST_NAME, build_manifest, manifest_bytes
from runreview.reports.options import ReportOptions, iso
from runreview.reports.pdf import FetchLog, write_atomically
from runreview.reports.render import chart_svg, render_html
from runreview.reports.sandbox import render_pdf_limited
from runreview.reports.snapshot import Snapshot, read_snapshot
from runreview.reports.weekly import contest_keys
from runreview.sources.base import SourceError
from runreview.workspace import Workspace


@dataclass
class BuiltReport:
    """A rendered report: the PDF bytes and what went into them."""

    pdf: bytes
    html: str
    content: ReportContent
    manifest: dict
    fetch_log: FetchLog


def detail_runs_for(options: ReportOptions) -> Callable[[pd.DataFrame, pd.DataFrame], list[RunKey]]:
    """Which runs' environment, confusion matrices and details a report reads.

    The audit reads every run; the others only the top runs by the headline metric.
    """

    def choose(runs: pd.DataFrame, history: pd.DataFrame) -> list[RunKey]:
        keys = run_keys(runs)
        metric = options.metric or choose_metric(runs)
        if options.kind == "audit" or not metric:
            return keys
        direction = options.goal or metric_direction(metric)
        board = leaderboard(runs, history, metric, direction, mode=SCORE_MODE)
        top = run_keys(board)[: max(10, options.top_n * 2)]
        contenders = contest_keys(runs, history, options, metric, direction)
        return top + [key for key in contenders if key not in top]

    return choose


def make_snapshot(
    ws: Workspace,
    options: ReportOptions,
    progress: Progress,
    check_runs: Callable[[pd.DataFrame], None] | None = None,
) -> Snapshot:
    """Read what ``options`` asks for from the workspace (``check_runs``: see
    :func:`runreview.reports.snapshot.read_snapshot`)."""
    return read_snapshot(
        ws,
        experiments=list(options.experiments) or None,
        run_ids=list(options.run_ids) or None,
        filter_expression=options.filter,
        detail_runs=detail_runs_for(options),
        progress=progress,
        check_runs=check_runs,
    )


def render_report(
    snapshot: Snapshot, options: ReportOptions, progress: Progress = lambda m, f: None
) -> BuiltReport:
    """Assemble, chart and render a snapshot to PDF bytes (no file written).

    The PDF is rendered in a child process under RUNREVIEW_REPORT_TIMEOUT and
    RUNREVIEW_REPORT_MAX_MB (:class:`reports.pdf.ReportTooLarge` past either). When some
    characters have no glyph in the installed fonts, the report is rendered again with a
    warning naming them, so it never shows empty boxes silently.
    """
    progress("Analysing", 0.70)
    content = assemble(snapshot, options)
    progress("Drawing charts", 0.78)
    svgs = {name: chart_svg(chart) for name, chart in content.charts.items()}
    report = {
        "id": content.context["report_id"],
        "kind": options.kind,
        "title": options.display_title(),
        "generated_at": iso(options.now_utc),
        "options": options.to_dict(),
        "findings": len(snapshot.findings),
    }
    manifest = build_manifest(content.data_files, report, content.scope)
    attachments = {**content.data_files, MANIFEST_NAME: manifest_bytes(manifest)}
    progress("Rendering PDF", 0.85)
    html, pdf, log = _render(options, content, svgs, attachments)
    if log.missing_glyphs:
        content.context["missing_glyphs"] = list(log.missing_glyphs)
        html, pdf, log = _render(options, content, svgs, attachments)
    return BuiltReport(pdf=pdf, html=html, content=content, manifest=manifest, fetch_log=log)


def _render(
    options: ReportOptions,
    content: ReportContent,
    svgs: dict[str, str],
    attachments: dict[str, bytes],
) -> tuple[str, bytes, FetchLog]:
    html = render_html(options.kind, content.context, svgs)
    log = FetchLog()
    pdf = render_pdf_limited(
        html,
        attachments,
        identifier=content.context["report_id"].encode("ascii"),
        created=options.now_utc,
        fetch_log=log,
        timeout=settings.report_timeout(),
        max_mb=settings.report_max_mb(),
    )
    return html, pdf, log


def write_report(
    ws: Workspace,
    options: ReportOptions,
    out: Path,
    progress: Progress = lambda m, f: None,
    check_runs: Callable[[pd.DataFrame], None] | None = None,
) -> BuiltReport:
    """Make the report and write it to ``out`` atomically.

    Raises :class:`SourceError` (nothing rendered or written) when a source could not be
    read at all: a report never presents partial data as a whole.
    """
    snapshot = make_snapshot(ws, options, progress, check_runs)
    if ws.read_errors:
        raise SourceError(f"no report written: {ws.read_errors[0].message}")
    built = render_report(snapshot, options, progress)
    progress(f"Writing {out}", 0.97)
    write_atomically(built.pdf, Path(out))
    progress("Done", 1.0)
    return built
