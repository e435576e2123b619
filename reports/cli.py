"""``runreview report`` and ``runreview verify`` (registered through an entry point).

Everything that can be checked without reading a store (dates, ``--filter``'s syntax,
``--out``) is checked first; the names (experiments, runs, filter columns, metric) are
checked against the runs read, before any history is read or anything is rendered.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from runreview.reports.options import KINDS, ReportOptions

if TYPE_CHECKING:
    import pandas as pd


def _at_least_one(text: str) -> int:
    """argparse type for ``--top``: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def register_commands(sub: argparse._SubParsersAction) -> None:
    """Add the report commands to the ``runreview`` parser."""
    from runreview.cli import _add_sources

    report = sub.add_parser(
        "report",
        help="write a PDF/A report (weekly, stakeholder, audit)",
        description="Read the given sources once and write a PDF/A-3b report with the "
        "data it shows attached (runs.csv, history.csv, findings.json, manifest.json).",
    )
    report.add_argument("--template", choices=KINDS, required=True, help="report kind")
    _add_sources(report)
    report.add_argument(
        "--experiment",
        action="append",
        dest="experiments",
        metavar="NAME",
        help="only runs of this experiment (repeatable; default: every experiment)",
    )
    report.add_argument(
        "--metric", help="headline metric, e.g. val_loss (default: the best-covered one)"
    )
    report.add_argument(
        "--goal",
        choices=("min", "max"),
        help="minimise or maximise the metric (default: from the metric's name)",
    )
    report.add_argument(
        "--since",
        default="7d",
        help="period start: a span before --now (7d, 2w, 24h) or an ISO-8601 date or time "
        "(default: %(default)s)",
    )
    report.add_argument(
        "--until", help="period end: a span before --now or a date, as --since (default: --now)"
    )
    report.add_argument(
        "--run",
        action="append",
        dest="run_ids",
        metavar="RUN_ID",
        help="only this run, by id (repeatable; default: every run)",
    )
    report.add_argument(
        "--filter",
        help="only runs matching this MLflow search filter, e.g. \"params.model = 'rf'\" "
        "(default: none)",
    )
    report.add_argument(
        "--top",
        type=_at_least_one,
        default=5,
        help="runs in the leaderboard, 1 or more (default: %(default)s)",
    )
    report.add_argument(
        "--now",
        help="report time, an ISO-8601 date or time; fixes every date in the report "
        "(default: the current time)",
    )
    report.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="FILE.pdf",
        help="the PDF to write (its folder must exist)",
    )
    report.set_defaults(func=cmd_report)

    verify = sub.add_parser(
        "verify",
        help="check a report's attachments against its manifest",
        description="Check every attachment of a runreview report, and its snapshot hash, "
        "against the manifest inside it; exit 1 naming each mismatch.",
    )
    verify.add_argument("pdf", type=Path, metavar="FILE.pdf", help="the report to check")
    verify.set_defaults(func=cmd_verify)


def options_from_args(args: argparse.Namespace) -> ReportOptions:
    """Report options from the command line; raises ``CliError`` (one line naming the
    option and the accepted forms) for a date that cannot be read or a period that holds
    nothing."""
    from runreview.analysis.periods import PeriodError, date_option, period_problem, short_time
    from runreview.cli import CliError

    try:
        now = date_option("--now", args.now) if args.now else None
        now = now or datetime.now(UTC).replace(microsecond=0)
        since = date_option("--since", args.since, now) if args.since else None
        until = date_option("--until", args.until, now) if args.until else now
    except PeriodError as exc:
        raise CliError(str(exc)) from None
    now_label = f"--now {short_time(now)}"
    until_label = f"--until {args.until}" if args.until else now_label
    problem = period_problem(since, until, now, (f"--since {args.since}", until_label, now_label))
    if problem:
        raise CliError(problem)
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


def check_out(out: Path) -> None:
    """Raise ``CliError`` unless ``out`` can be written: a ``.pdf`` name that is not a folder,
    in a folder that exists and is writable (checked before any store is read)."""
    from runreview.cli import CliError

    if out.suffix.lower() != ".pdf":
        raise CliError(f"--out {out} should end in .pdf")
    if out.is_dir():
        raise CliError(f"--out {out} is a folder; give a file name ending in .pdf")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise CliError(f"--out: could not write {out}: folder {folder} {what}; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CliError(f"--out: could not write {out}: folder {folder} is not writable")


def check_filter(expression: str | None) -> None:
    """Raise ``CliError`` for a ``--filter`` that cannot be parsed."""
    from runreview.analysis.filtering import FilterError, parse_filter
    from runreview.cli import CliError

    if expression:
        try:
            parse_filter(expression)
        except FilterError as exc:
            raise CliError(f"--filter: {exc}") from None


def names_check(ws, options: ReportOptions) -> Callable[[pd.DataFrame], None]:
    """A check of the runs a report reads, raising ``CliError`` for a name no run in scope
    has: an ``--experiment``, a ``--run`` id, a ``--filter`` column
    (``params.``/``metrics.``/``tags.``) or the ``--metric``. A source that could not be
    read is reported first (its runs are missing, not the names)."""
    from runreview.analysis.filtering import filter_runs, parse_filter
    from runreview.analysis.names import metric_names, unknown_column, unknown_name
    from runreview.cli import CliError, check_experiments, check_run_ids
    from runreview.sources.base import SourceError

    experiments = list(options.experiments) or None

    def check(runs: pd.DataFrame) -> None:
        if ws.read_errors:
            raise SourceError(ws.read_errors[0].message)
        check_experiments(ws, runs, experiments)
        scope = "in the selected experiments" if experiments else "in the sources"
        check_run_ids(runs, options.run_ids, scope)
        selected = runs[runs["run_id"].isin(options.run_ids)] if options.run_ids else runs
        if options.filter:
            for condition in parse_filter(options.filter):
                message = unknown_column(condition.column, selected, "--filter")
                if message:
                    raise CliError(message)
            selected = filter_runs(selected, options.filter)
        if options.metric:
            # With no run selected the report says so; the metric is then checked against
            # the runs in scope before --filter.
            pool = selected if not selected.empty else runs
            message = unknown_name(options.metric, metric_names(pool), "--metric", noun="metric")
            if message:
                raise CliError(message)

    return check


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report; exit 2 (nothing written) when a source cannot be read."""
    from runreview.cli import _progress, open_workspace
    from runreview.reports.build import write_report

    check_out(args.out)
    options = options_from_args(args)
    check_filter(options.filter)
    ws = open_workspace(args)
    progress = _progress(sys.stderr)
    check = names_check(ws, options)
    built = ws.checked(lambda w: write_report(w, options, args.out, progress, check))
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


@contextmanager
def quiet_pypdf() -> Iterator[None]:
    """No pypdf log records or warnings while a damaged PDF is read (one line says it)."""
    logger = logging.getLogger("pypdf")  # its modules' loggers inherit this level
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def check_pdf(path: Path) -> None:
    """Raise ``CliError`` unless ``path`` is a readable PDF file (``%PDF-`` header)."""
    from pypdf import PdfReader

    from runreview.cli import CliError

    if not path.exists():
        raise CliError(f"{path} does not exist")
    if not path.is_file():
        raise CliError(f"{path} is not a file")
    try:
        with path.open("rb") as handle:
            head = handle.read(5)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head != b"%PDF-":
        raise CliError(f"{path} is not a PDF")
    with quiet_pypdf():
        try:
            dict(PdfReader(str(path)).attachments)
        except Exception as exc:  # pypdf raises many kinds on damaged files
            reason = (str(exc).strip().splitlines() or ["unreadable"])[0][:200]
            raise CliError(f"{path} is a damaged PDF: {reason}") from None


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0 when every attachment matches the manifest, 1 naming each mismatch, 2 when
    the file is missing or not a readable PDF."""
    from runreview.reports.manifest import verify_pdf

    check_pdf(args.pdf)
    with quiet_pypdf():
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
