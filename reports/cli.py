"""``runreview report`` and ``runreview verify`` (registered through an entry point)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from runreview.reports.options import KINDS, ReportOptions


def register_commands(sub: argparse._SubParsersAction) -> None:
    """Add the report commands to the ``runreview`` parser."""
    from runreview.cli import _add_sources

    report = sub.add_parser("report", help="write a PDF/A report (weekly, stakeholder, audit)")
    report.add_argument("--template", choices=KINDS, required=True, help="report kind")
    _add_sources(report)
    report.add_argument("--experiment", action="append", dest="experiments", metavar="NAME")
    report.add_argument("--metric", help="headline metric (default: the best-covered one)")
    report.add_argument("--goal", choices=("min", "max"), help="default: from the metric's name")
    report.add_argument("--since", default="7d", help="period start: 7d, 2w, 24h or a date")
    report.add_argument("--until", help="period end (default: --now)")
    report.add_argument("--run", action="append", dest="run_ids", metavar="RUN_ID")
    report.add_argument("--filter", help="MLflow search syntax, e.g. \"params.model = 'rf'\"")
    report.add_argument("--top", type=int, default=5, help="runs in the leaderboard")
    report.add_argument("--now", help="report time, ISO-8601 (default: the current time)")
    report.add_argument("--out", required=True, type=Path, metavar="FILE.pdf")
    report.set_defaults(func=cmd_report)

    verify = sub.add_parser("verify", help="check a report's attachments against its manifest")
    verify.add_argument("pdf", type=Path, metavar="FILE.pdf")
    verify.set_defaults(func=cmd_verify)


def options_from_args(args: argparse.Namespace) -> ReportOptions:
    """Report options from the command line."""
    from runreview.analysis.periods import to_utc

    now = to_utc(args.now) if args.now else datetime.now(UTC).replace(microsecond=0)
    return ReportOptions(
        kind=args.template,
        now=now,
        metric=args.metric,
        goal=args.goal,
        since=args.since or None,
        until=args.until,
        experiments=tuple(args.experiments or ()),
        run_ids=tuple(args.run_ids or ()),
        filter=args.filter,
        top_n=args.top,
    )


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report; exit 2 (nothing written) when a source cannot be read."""
    from runreview.cli import CliError, _progress, open_workspace
    from runreview.reports.build import write_report

    if args.out.suffix.lower() != ".pdf":
        raise CliError(f"--out {args.out} should end in .pdf")
    options = options_from_args(args)
    ws = open_workspace(args)
    built = ws.checked(lambda w: write_report(w, options, args.out, progress=_progress(sys.stderr)))
    complete = built.content.context["completeness"]
    report_id = built.content.context["report_id"]
    print(f"Wrote {args.out} ({len(built.pdf):,} bytes, report id {report_id})")
    if not complete["complete"]:
        print(
            f"runreview: warning: {complete['problem_count']} problem(s) while reading; "
            "listed in the report's data-completeness section",
            file=sys.stderr,
        )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0 when every attachment matches the manifest, 1 naming each mismatch."""
    from runreview.cli import CliError
    from runreview.reports.manifest import verify_pdf

    if not args.pdf.is_file():
        raise CliError(f"{args.pdf} does not exist")
    result = verify_pdf(args.pdf)
    for name in result.checked:
        print(f"OK       {name}")
    for problem in result.problems:
        print(f"MISMATCH {problem}")
    if result.ok:
        report = (result.manifest or {}).get("report", {})
        print(f"{args.pdf}: verified ({report.get('kind', '?')} report {report.get('id', '?')})")
        return 0
    print(f"{args.pdf}: {len(result.problems)} problem(s)", file=sys.stderr)
    return 1
