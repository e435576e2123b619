"""Report: build a weekly, stakeholder or audit PDF, exactly as ``runreview report`` does.

The build runs as a job (``runreview.app.jobs``) outside the page's script run, shown by its id
(also in the URL as ``?job=``): a dropped connection, a reload or a visit to another page
does not lose it, and the viewer's recent reports stay downloadable for an hour.
"""

from __future__ import annotations

import hashlib
import io
import shlex
from datetime import UTC, datetime

import streamlit as st

from runreview.analysis.filtering import FilterError
from runreview.analysis.periods import PeriodError, parse_since
from runreview.app import common, loaders, selection, sourceconfig, urlparams, viewer
from runreview.app.jobs import CANCELLED, DONE, Job, TooManyJobs
from runreview.progress import Progress
from runreview.redact import redact_uri
from runreview.reports.build import BuiltReport, make_snapshot, render_report
from runreview.reports.options import KINDS, TITLES, ReportOptions, iso

JOB_KEY = "_report_job"  # the id of the job this session started last
JOB_PARAM = "job"  # ... and in the URL, so a reloaded or reconnected tab finds it
GOALS = {"auto": "From the metric's name", "min": "Lower is better", "max": "Higher is better"}


def cli_command(options: ReportOptions, config: sourceconfig.SourceConfig) -> str:
    """The ``runreview report`` command that writes the same PDF (credentials left out)."""
    words = ["runreview", "report", "--template", options.kind]
    for uri in config.tracking_uris:
        safe = redact_uri(uri)
        words += ["--tracking-uri", safe if safe == uri else "$MLFLOW_TRACKING_URI"]
    for logdir in config.logdirs:
        words += ["--logdir", logdir]
    for folder in config.wandb_dirs:
        words += ["--wandb-dir", folder]
    for name in options.experiments:
        words += ["--experiment", name]
    for flag, value in (("--metric", options.metric), ("--goal", options.goal)):
        if value:
            words += [flag, value]
    words += ["--since", options.since or "", "--top", str(options.top_n)]
    if options.filter:
        words += ["--filter", options.filter]
    words += ["--now", iso(options.now_utc) or "", "--out", "report.pdf"]
    return " ".join(w if w.startswith("$") else shlex.quote(w) for w in words)


def page_count(pdf: bytes) -> int:
    """Pages of a PDF."""
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)


def read_and_render(
    options: ReportOptions, config: sourceconfig.SourceConfig, progress: Progress
) -> BuiltReport:
    """What ``runreview report`` does: a fresh workspace, a snapshot, the PDF.

    Raises SourceError when a source cannot be opened or read: no half report.
    """
    ws = loaders.fresh_workspace(config)
    try:
        snapshot = ws.checked(lambda w: make_snapshot(w, options, progress))
        return render_report(snapshot, options, progress)
    finally:
        ws.close()


def describe(built: BuiltReport, options: ReportOptions, config: sourceconfig.SourceConfig) -> dict:
    """What the preview shows, and the PDF bytes the download button offers."""
    context = built.content.context
    return {
        "pdf": built.pdf,
        "kind": options.kind,
        "report_id": context["report_id"],
        "now": iso(options.now_utc),
        "pages": page_count(built.pdf),
        "complete": bool(context["completeness"]["complete"]),
        "problems": int(context["completeness"]["problem_count"]),
        "runs": int(context["run_count"]),
        "sha256": hashlib.sha256(built.pdf).hexdigest(),
        "command": cli_command(options, config),
    }


def start(options: ReportOptions, config: sourceconfig.SourceConfig) -> Job:
    """Start building the report as a job of this viewer; returns at once."""

    def work(progress: Progress) -> dict:
        return describe(read_and_render(options, config, progress), options, config)

    title = f"{TITLES[options.kind]}, {iso(options.now_utc)}"
    return loaders.job_board().start(viewer.current_principal(), title, work, kind=options.kind)


def current_job_id() -> str | None:
    """The job this tab shows: from the URL first (a reloaded tab), else this session."""
    return st.query_params.get(JOB_PARAM) or st.session_state.get(JOB_KEY)


@st.fragment(run_every=1.0)
def follow(job_id: str) -> None:
    """The running job's progress, polled each second; the whole page reruns when it ends."""
    board, owner = loaders.job_board(), viewer.current_principal()
    job = board.get(job_id, owner)
    if job is None or not job.active:
        st.rerun()
    st.progress(job.fraction, text=common.safe_md(f"{job.title}: {job.message}"))
    st.button("Cancel", on_click=board.cancel, args=(job.id, owner), key="rp.cancel")


def show_result(made: dict) -> None:
    """The finished report: what it holds, the download and the equivalent command."""
    st.subheader("Preview")
    facts = st.columns(3)
    facts[0].metric("Pages", made["pages"])
    facts[1].metric("Runs", made["runs"])
    facts[2].metric("Data", "complete" if made["complete"] else f"{made['problems']} problem(s)")
    if not made["complete"]:
        st.warning("Some data could not be read: the report lists it under data completeness.")
    st.caption(
        f"Report {made['report_id']}: {TITLES[made['kind']]}, made {made['now']}, "
        f"{len(made['pdf']):,} bytes, "
        f"SHA-256 {made['sha256']}"
    )
    st.download_button(
        "Download PDF",
        data=made["pdf"],
        file_name=f"runreview-{made['kind']}-{made['report_id']}.pdf",
        mime="application/pdf",
        type="primary",
    )
    st.caption("The same PDF, byte for byte, from the command line:")
    st.code(made["command"], language="bash")


def show_job(job_id: str, kind: str | None) -> bool:
    """The job ``job_id``: its progress while it runs, then its report or what went wrong.

    A report of another kind than the one chosen is not previewed or offered here (it
    stays under "Your recent reports", named by its kind); returns whether it was shown.
    """
    job = loaders.job_board().get(job_id, viewer.current_principal())
    if job is not None and job.kind and job.kind != kind:
        made = "is being made" if job.active else "was made last"
        wanted = f"a {TITLES[kind]}" if kind in TITLES else "a report"
        st.info(
            common.safe_md(
                f"{job.title} {made}; press Generate for {wanted}. "
                "Finished reports of every kind stay under Your recent reports."
            )
        )
        return False
    if job is None:
        st.info(
            "That report is not here any more: finished reports are kept for an hour, and "
            "not across a restart of the app. Generate it again."
        )
    elif job.active:
        follow(job.id)
    elif job.state == DONE and job.result is not None:
        show_result(job.result)
    elif job.state == CANCELLED:
        st.info(f"{job.title}: cancelled.")
    else:
        st.error(common.safe_md(f"No report: {job.error}"))
    return True


def recent_reports(shown: str | None) -> None:
    """This viewer's other finished reports, still downloadable."""
    jobs = [
        j for j in loaders.job_board().of(viewer.current_principal())
        if j.id != shown and j.state == DONE and j.result is not None
    ]  # fmt: skip

    if not jobs:
        return
    with st.expander(f"Your recent reports ({len(jobs)}, kept for an hour)"):
        for job in jobs:
            made = job.result
            st.download_button(
                f"{job.title}: {made['pages']} page(s), report {made['report_id']}",
                data=made["pdf"],
                file_name=f"runreview-{made['kind']}-{made['report_id']}.pdf",
                mime="application/pdf",
                key=f"rp.recent.{job.id}",
            )


scope = common.open_scope("Report")
job_id = current_job_id()
shown_job = loaders.job_board().get(job_id, viewer.current_principal()) if job_id else None
kind = selection.widget(
    urlparams.RP_KIND,
    st.segmented_control,
    "Kind",
    options=list(KINDS),
    format_func=lambda k: TITLES[k],
    required=True,
    # a tab opened on a job's link starts on that job's kind
    fallback=shown_job.kind if shown_job is not None and shown_job.kind else None,
)
left, right = st.columns(2)
with left:
    metric = common.metric_choice(scope, "Headline metric")
goal = selection.widget(
    urlparams.RP_GOAL, right.radio, "Goal", options=list(GOALS), format_func=GOALS.get
)
since = selection.widget(
    urlparams.RP_SINCE,
    left.text_input,
    "Period since",
    help="7d, 2w, 24h or a date; empty: all time",
)
top_n = selection.widget(
    urlparams.RP_TOP, right.number_input, "Runs in the leaderboard", min_value=1, max_value=100
)
experiments = selection.widget(
    urlparams.RP_EXPERIMENTS,
    st.multiselect,
    "Experiments",
    options=sorted(set(scope.runs["experiment"].astype(str))),
    fallback=selection.get(urlparams.EXPERIMENTS) or None,
    placeholder="All experiments",
)
expression = selection.widget(
    urlparams.RP_FILTER,
    st.text_input,
    "Filter (MLflow search syntax)",
    fallback=selection.get(urlparams.FILTER) or None,
    placeholder="params.model = 'rf'",
)

problems = []
now = datetime.now(UTC).replace(microsecond=0)
if since.strip():
    try:
        parse_since(since.strip(), now)
    except PeriodError as error:
        problems.append(f"Period: {error}")
try:
    problems += [f"Filter: {p}" for p in common.unknown_filter_columns(scope.runs, expression)]
except FilterError as error:
    problems.append(f"Filter: {error}")
    st.code(error.pointer, language=None)
for problem in problems:
    st.error(common.safe_md(problem))

if st.button("Generate", type="primary", disabled=bool(problems) or kind is None):
    options = ReportOptions(
        kind=kind,
        now=now,
        metric=metric,
        goal=None if goal == "auto" else goal,
        since=since.strip() or None,
        experiments=tuple(experiments),
        filter=expression.strip() or None,
        top_n=int(top_n),
    )
    try:
        job = start(options, scope.config)
    except TooManyJobs as error:
        st.error(str(error))
    else:
        st.session_state[JOB_KEY] = job.id
        st.query_params[JOB_PARAM] = job.id

job_id = current_job_id()  # a new job may have started above
shown = show_job(job_id, kind) if job_id else False
recent_reports(job_id if shown else None)
