"""The ``runreview`` command.

Exit codes: 0 success, 1 ``check``/``verify`` found problems, 2 an error (one line on
stderr naming the problem and what to do; credentials in URIs are never printed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from runreview import __version__, settings
from runreview.redact import env_secrets, redact_text, uri_secrets

EXIT_OK, EXIT_PROBLEMS, EXIT_ERROR = 0, 1, 2


class CliError(Exception):
    """An error to print as one line and exit 2."""


# --- argument parsing -------------------------------------------------------------------


def _add_sources(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sources")
    group.add_argument(
        "--tracking-uri",
        action="append",
        dest="tracking_uris",
        metavar="URI",
        help="MLflow tracking URI (repeatable; default $MLFLOW_TRACKING_URI): "
        "sqlite:///path.db, http(s)://host, or a path to an mlruns folder",
    )
    group.add_argument(
        "--logdir",
        action="append",
        dest="logdirs",
        metavar="DIR",
        help=f"TensorBoard log directory (repeatable; default $RUNREVIEW_LOGDIR, "
        f"'{os.pathsep}'-separated)",
    )
    group.add_argument(
        "--wandb-dir",
        action="append",
        dest="wandb_dirs",
        metavar="DIR",
        help="W&B folder: a wandb/ directory or any folder above run-*/offline-run-* "
        f"folders (repeatable; default $RUNREVIEW_WANDB_DIR, '{os.pathsep}'-separated)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="runreview",
        description="Compare ML experiment runs from MLflow, TensorBoard and W&B, in place.",
    )
    parser.add_argument("--version", action="version", version=f"runreview {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    runs = sub.add_parser(
        "runs",
        help="list runs (the runs frame)",
        description="List every run of the given sources, one row per run: parameters, "
        "tags and each metric's last value.",
    )
    _add_sources(runs)
    runs.add_argument(
        "--experiment",
        action="append",
        dest="experiments",
        metavar="NAME",
        help="only runs of this experiment (repeatable; default: every experiment)",
    )
    runs.add_argument(
        "--format",
        choices=("csv", "json", "table"),
        default="table",
        help="output format (default: %(default)s)",
    )
    runs.set_defaults(func=cmd_runs)

    history = sub.add_parser(
        "history",
        help="every logged metric point (the history frame)",
        description="Print every logged metric point (run, metric, step, value, time) of "
        "the given sources.",
    )
    _add_sources(history)
    history.add_argument(
        "--metric",
        action="append",
        dest="metrics",
        metavar="NAME",
        help="only this metric (repeatable; default: every metric)",
    )
    history.add_argument(
        "--run",
        action="append",
        dest="run_ids",
        metavar="RUN_ID",
        help="only this run, by id (repeatable; default: every run)",
    )
    history.add_argument(
        "--format",
        choices=("csv", "json"),
        default="csv",
        help="output format (default: %(default)s)",
    )
    history.set_defaults(func=cmd_history)

    check = sub.add_parser(
        "check",
        help="list every problem in the sources; exit 1 if any",
        description="Read every run and point of the given sources and list each problem "
        "found (damaged files, unreadable runs); exit 1 if there is any.",
    )
    _add_sources(check)
    check.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="output format (default: %(default)s)",
    )
    check.set_defaults(func=cmd_check)

    demo = sub.add_parser(
        "demo",
        help="build the demo workspace (real scikit-learn runs)",
        description="Build a demo workspace: an MLflow store and a TensorBoard logdir of "
        "real scikit-learn runs spread over the five weeks before --now.",
    )
    demo.add_argument(
        "--dir",
        default=settings.DEMO_DIR.value(),
        help="target folder (default: %(default)s)",
    )
    demo.add_argument(
        "--seed", type=int, default=0, help="random seed of the runs (default: %(default)s)"
    )
    demo.add_argument("--force", action="store_true", help="replace an existing demo workspace")
    demo.add_argument(
        "--now",
        help="end of the demo timeline, an ISO-8601 date or time (default: today, UTC)",
    )
    demo.add_argument(
        "--if-missing", action="store_true", help="do nothing when a complete demo is there"
    )
    demo.set_defaults(func=cmd_demo)

    app = sub.add_parser(
        "app",
        help="serve the Streamlit app on the given sources",
        description="Serve the Streamlit app on the given sources (on the demo workspace, "
        "built when missing, when no source is given).",
    )
    _add_sources(app)
    app.add_argument(
        "--port", type=int, default=8501, help="port to listen on (default: %(default)s)"
    )
    app.add_argument(
        "--address", default="localhost", help="address to listen on (default: %(default)s)"
    )
    app.set_defaults(func=cmd_app)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Subcommands registered by other packages (the reports package adds report/verify).

    They are found through the ``runreview.commands`` entry-point group, so the core
    package never imports the packages that build on it.
    """
    from importlib.metadata import entry_points

    return [ep.load() for ep in entry_points(group="runreview.commands")]


# --- sources ----------------------------------------------------------------------------


def resolve_sources(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Tracking URIs and logdirs from the flags, else from the environment."""
    uris = list(args.tracking_uris or settings.tracking_uris())
    logdirs = list(args.logdirs or settings.logdirs())
    return uris, logdirs


def resolve_wandb_dirs(args: argparse.Namespace) -> list[str]:
    """W&B folders from ``--wandb-dir``, else from the environment."""
    return list(getattr(args, "wandb_dirs", None) or settings.wandb_dirs())


def open_workspace(args: argparse.Namespace):
    """Open the sources named on the command line; exit 2 when none or one fails."""
    from runreview.workspace import Workspace

    uris, logdirs = resolve_sources(args)
    wandb_dirs = resolve_wandb_dirs(args)
    if not uris and not logdirs and not wandb_dirs:
        raise CliError(
            "no sources given: pass --tracking-uri URI, --logdir DIR and/or --wandb-dir DIR "
            "(or set MLFLOW_TRACKING_URI / RUNREVIEW_LOGDIR / RUNREVIEW_WANDB_DIR); "
            "`runreview demo` builds one"
        )
    return Workspace.open(uris, logdirs, wandb_dirs)


def _progress(stream: TextIO) -> Callable[[str, float], None]:
    if not stream.isatty():
        return lambda message, fraction: None

    def show(message: str, fraction: float) -> None:
        stream.write(f"\r\x1b[2K[{fraction:4.0%}] {message}")
        if fraction >= 1.0:
            stream.write("\r\x1b[2K")
        stream.flush()

    return show


# --- commands ---------------------------------------------------------------------------


def cmd_runs(args: argparse.Namespace) -> int:
    """``runreview runs``."""
    ws = open_workspace(args)
    frame = ws.checked(lambda w: w.runs(args.experiments, progress=_progress(sys.stderr)))
    check_experiments(ws, frame, args.experiments)
    write_frame(frame, args.format, sys.stdout)
    _warn_findings(ws)
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    """``runreview history``."""
    ws = open_workspace(args)
    progress = _progress(sys.stderr)
    frame = ws.checked(lambda w: w.history(args.metrics, args.run_ids, progress=progress))
    _check_history_names(ws, frame, args.metrics, args.run_ids)
    write_frame(frame, args.format, sys.stdout)
    _warn_findings(ws)
    return EXIT_OK


# --- checking the names a user gave -------------------------------------------------------


def check_experiments(ws, runs, experiments: Sequence[str] | None) -> None:
    """Raise :class:`CliError` when an ``--experiment`` has no runs in ``runs`` (the runs
    read for ``experiments``), naming the experiments there are."""
    from runreview.analysis.names import experiment_names, unknown_names

    found = set(experiment_names(runs))
    if not experiments or all(e in found for e in experiments):
        return
    every = ws.checked(lambda w: w.runs())  # only on this error path: what is there
    message = unknown_names(
        experiments, experiment_names(every), "--experiment", noun="experiment",
        scope="with runs in the sources",
    )  # fmt: skip
    if message:
        raise CliError(message)


def check_run_ids(runs, run_ids: Sequence[str] | None, scope: str = "in the sources") -> None:
    """Raise :class:`CliError` when a ``--run`` is not the id of one of ``runs`` (a run
    name given instead is answered with its id)."""
    from runreview.analysis.names import run_ids as ids_of
    from runreview.analysis.names import run_name_aliases, unknown_names

    message = unknown_names(
        run_ids, ids_of(runs), "--run", noun="run id", scope=scope,
        aliases=run_name_aliases(runs), alias_noun="run name",
    )  # fmt: skip
    if message:
        raise CliError(message)


def check_metrics(runs, metrics: Sequence[str] | None) -> None:
    """Raise :class:`CliError` when a metric is not logged by any of ``runs``."""
    from runreview.analysis.names import metric_names, unknown_names

    message = unknown_names(metrics, metric_names(runs), "--metric", noun="metric")
    if message:
        raise CliError(message)


def _check_history_names(ws, history, metrics, run_ids) -> None:
    """``history --metric/--run``: every name must exist. The runs are read only when a
    name has no points (a run may exist and have none)."""
    if not metrics and not run_ids:
        return
    got_metrics = set(history["metric"].astype(str)) if metrics else set()
    got_runs = set(history["run_id"].astype(str)) if run_ids else set()
    if all(m in got_metrics for m in metrics or ()) and all(r in got_runs for r in run_ids or ()):
        return
    runs = ws.checked(lambda w: w.runs())
    check_run_ids(runs, run_ids)
    check_metrics(runs[runs["run_id"].isin(run_ids)] if run_ids else runs, metrics)


def cmd_check(args: argparse.Namespace) -> int:
    """``runreview check``: one line per problem; exit 1 if any."""
    from runreview.contract import Severity, findings_to_json

    ws = open_workspace(args)
    progress = _progress(sys.stderr)
    ws.runs(progress=progress)
    ws.history(progress=progress)
    findings = ws.findings()
    problems = [f for f in findings if f.severity != Severity.INFO]
    if args.format == "json":
        print(findings_to_json(findings))
    else:
        for finding in findings:
            print(finding.line())
        print(
            f"{len(problems)} problem(s) in {len(ws.sources) + len(ws.open_errors)} source(s)",
            file=sys.stderr,
        )
    return EXIT_PROBLEMS if problems else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """``runreview demo``: build the demo workspace."""
    from runreview.demo import build_demo

    target = Path(args.dir)
    if args.if_missing and _demo_complete(target):
        print(f"Demo workspace already built in {target}")
        return EXIT_OK
    now = _demo_now(args.now)
    try:
        demo = build_demo(
            target, seed=args.seed, progress=_progress(sys.stderr), now=now, overwrite=args.force
        )
    except FileExistsError:
        raise CliError(_demo_dir_problem(target, args.force)) from None
    print(f"Demo workspace built in {target} ({demo.total_runs} runs)")
    print(f"  MLflow store:       {demo.tracking_uri}")
    print(f"  TensorBoard logdir: {demo.logdir}")
    print(f"Try: runreview runs --tracking-uri {demo.tracking_uri} --logdir {demo.logdir}")
    return EXIT_OK


def _demo_dir_problem(target: Path, force: bool) -> str:
    """Why the demo cannot be built in ``target``, with a hint that works."""
    from runreview.demo import MARKER_FILE

    if target.exists() and not target.is_dir():
        return f"--dir {target} is not a folder; choose a new or empty folder"
    if (target / MARKER_FILE).is_file() and not force:
        return (
            f"--dir {target} already holds a demo workspace; pass --force to rebuild it, "
            "or --if-missing to keep a complete one"
        )
    return f"--dir {target} is not empty and holds no demo workspace; choose a new or empty folder"


def _demo_now(text: str | None):
    """The end of the demo's timeline: ``--now``, else the start of today (UTC), so a fresh
    demo has runs in the last week. The same seed and ``--now`` give the same workspace."""
    from datetime import UTC, datetime

    if text:
        from runreview.analysis.periods import PeriodError, date_option

        try:
            return date_option("--now", text)
        except PeriodError as exc:
            raise CliError(str(exc)) from None
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def demo_locations(directory: Path) -> tuple[str, str]:
    """The tracking URI and logdir of a demo workspace in ``directory``."""
    root = directory.resolve()
    return f"sqlite:///{root / 'mlflow.db'}", str(root / "tensorboard")


def demo_sources(directory: Path) -> tuple[list[str], list[str]]:
    """The demo workspace's sources, building it first when it is missing."""
    from runreview.demo import build_demo

    uri, logdir = demo_locations(directory)
    if not _demo_complete(directory):
        print(f"Building the demo workspace in {directory} ...", file=sys.stderr)
        build_demo(directory, progress=_progress(sys.stderr), now=_demo_now(None), overwrite=True)
    return [uri], [logdir]


def _demo_complete(directory: Path) -> bool:
    """True when ``directory`` holds a fully built demo workspace."""
    from runreview.demo import MARKER_FILE

    try:
        return bool(json.loads((directory / MARKER_FILE).read_text()).get("complete"))
    except (OSError, ValueError):
        return False


def cmd_app(args: argparse.Namespace) -> int:
    """``runreview app``: serve the Streamlit app (on the demo when no source is given)."""
    uris, logdirs = resolve_sources(args)
    wandb_dirs = resolve_wandb_dirs(args)
    if not uris and not logdirs and not wandb_dirs:
        uris, logdirs = demo_sources(Path(settings.DEMO_DIR.value()))
    env = dict(os.environ)
    env[settings.TRACKING_URI.env] = ",".join(uris)
    env[settings.LOGDIR.env] = os.pathsep.join(str(d) for d in logdirs)
    env[settings.WANDB_DIR.env] = os.pathsep.join(str(d) for d in wandb_dirs)
    main_script = importlib.util.find_spec("runreview.app.main").origin
    command = [
        sys.executable, "-m", "streamlit", "run", main_script,
        "--server.port", str(args.port),
        "--server.address", args.address,
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    print(f"Serving runreview on http://{args.address}:{args.port}", file=sys.stderr)
    os.execvpe(command[0], command, env)  # noqa: S606 - replaces this process on purpose
    return EXIT_OK  # pragma: no cover


# --- output -----------------------------------------------------------------------------


def write_frame(frame, fmt: str, stream: TextIO) -> None:
    """Write a contract frame as CSV, JSON records (ISO-8601 UTC times) or a text table."""
    if fmt == "csv":
        frame.to_csv(stream, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    elif fmt == "json":
        stream.write(frame.to_json(orient="records", date_format="iso", date_unit="ms"))
        stream.write("\n")
    else:
        import pandas as pd

        with pd.option_context("display.max_columns", 12, "display.width", 200):
            stream.write(frame.to_string(index=False, max_colwidth=40) + "\n")


def _warn_findings(ws) -> None:
    """Point at ``runreview check`` when the read met problems that it lists (warnings and
    errors; notes such as "experiment not in this store" are not problems)."""
    from runreview.contract import Severity

    problems = [f for f in ws.findings() if f.severity != Severity.INFO]
    if problems:
        print(
            f"runreview: {len(problems)} problem(s) while reading; "
            "`runreview check` with the same sources lists them",
            file=sys.stderr,
        )


# --- entry point ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    secrets = [s for a in argv for s in uri_secrets(a)] + [
        s for u in settings.tracking_uris() for s in uri_secrets(u)
    ]
    secrets += env_secrets()
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("runreview: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        if settings.debug():
            raise
        print(f"runreview: error: {redact_text(_describe(exc), secrets)}", file=sys.stderr)
        return EXIT_ERROR


def _describe(exc: Exception) -> str:
    from runreview.sources.base import SourceError

    if isinstance(exc, CliError | SourceError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    message = str(exc).strip().splitlines()
    if message:
        return message[0]
    return f"unexpected error; set {settings.DEBUG.env}=1 to see where"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
