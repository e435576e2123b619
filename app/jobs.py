"""Report jobs that outlive the browser tab that asked for them (RELIABILITY.md D6).

A report can take a while (reading every run, then rendering). Built inside the page's
script run, it would be lost when the WebSocket drops (a laptop sleeps, a proxy times out)
or the viewer opens another page. So the Report page hands the work to a :class:`JobBoard`
thread and shows the job by its id (also put in the URL): a reconnecting or reloaded
browser finds the job running or finished, and can download the PDF.

Jobs belong to the viewer who started them (``runreview.app.viewer.current_principal()``); ids are
random, so one cannot be guessed. Finished jobs are kept for :data:`KEEP_SECONDS` and at
most :data:`KEEP_PER_OWNER` per viewer, in memory only (the PDF bytes; nothing on disk).
A cancel takes effect at the job's next progress report: the read stops between two runs
or sources, and a render already running finishes first (it runs in a child process under
its own time limit, whose temporary files are removed either way).

No Streamlit imports here: the board is plain threads and locks, tested on its own.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runreview.progress import Progress

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"
KEEP_SECONDS = 3600.0
KEEP_PER_OWNER = 10
#: Jobs running at once, per viewer and in all: each render is a child process that may use
#: RUNREVIEW_REPORT_MAX_MB of memory, so a click-happy viewer must not start dozens.
RUNNING_PER_OWNER = 2
RUNNING_IN_ALL = 4

#: ``work(progress)`` builds the report and returns what the page shows (with the PDF).
Work = Callable[[Progress], dict[str, Any]]


class Cancelled(Exception):
    """Raised from a job's progress callback once the job was cancelled."""


class TooManyJobs(Exception):
    """A new job would run past :data:`RUNNING_PER_OWNER` or :data:`RUNNING_IN_ALL`."""


@dataclass
class Job:
    """One report being built or built: its state, progress and result (or error)."""

    id: str
    owner: str
    title: str
    started: float
    kind: str = ""  # what the job makes (a report kind): pages show only their own kind's
    state: str = RUNNING
    message: str = "Waiting to start"
    fraction: float = 0.0
    result: dict[str, Any] | None = None
    error: str = ""
    finished: float | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def active(self) -> bool:
        """True while the job runs."""
        return self.state == RUNNING


class JobBoard:
    """Every report job of this server process (one board per process)."""

    def __init__(
        self,
        keep_seconds: float = KEEP_SECONDS,
        keep_per_owner: int = KEEP_PER_OWNER,
        running_per_owner: int = RUNNING_PER_OWNER,
        running_in_all: int = RUNNING_IN_ALL,
    ):
        self.keep_seconds = keep_seconds
        self.keep_per_owner = keep_per_owner
        self.running_per_owner = running_per_owner
        self.running_in_all = running_in_all
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, owner: str, title: str, work: Work, kind: str = "") -> Job:
        """Run ``work`` in a thread of its own; returns the new job at once.

        Raises :class:`TooManyJobs` when ``owner`` (or everyone together) already has as
        many jobs running as allowed.
        """
        job = Job(
            id=secrets.token_urlsafe(12), owner=owner, title=title, started=time.time(), kind=kind
        )
        with self._lock:
            self._prune()
            running = [j for j in self._jobs.values() if j.active]
            if sum(j.owner == owner for j in running) >= self.running_per_owner:
                raise TooManyJobs(
                    f"You already have {self.running_per_owner} report(s) being built; wait "
                    "for one to finish or cancel it."
                )
            if len(running) >= self.running_in_all:
                raise TooManyJobs(
                    f"{len(running)} reports are being built on this server; try again in a minute."
                )
            self._jobs[job.id] = job
        thread = threading.Thread(
            target=self._run, args=(job, work), name=f"report-job-{job.id}", daemon=True
        )
        thread.start()
        return job

    def get(self, job_id: str, owner: str) -> Job | None:
        """The job ``job_id`` when it exists and belongs to ``owner``."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def of(self, owner: str) -> list[Job]:
        """``owner``'s jobs, newest first."""
        with self._lock:
            self._prune()
            mine = [j for j in self._jobs.values() if j.owner == owner]
        return sorted(mine, key=lambda j: j.started, reverse=True)

    def cancel(self, job_id: str, owner: str) -> bool:
        """Ask ``owner``'s running job to stop; False when there is no such running job."""
        job = self.get(job_id, owner)
        if job is None or not job.active:
            return False
        job.cancel_requested.set()
        return True

    def _run(self, job: Job, work: Work) -> None:
        def progress(message: str, fraction: float) -> None:
            if job.cancel_requested.is_set():
                raise Cancelled
            job.message, job.fraction = message, min(1.0, max(0.0, fraction))

        try:
            result = work(progress)
        except Cancelled:
            self._finish(job, CANCELLED, error="Cancelled before it was finished.")
        except Exception as exc:
            self._finish(job, FAILED, error=str(exc) or type(exc).__name__)
        else:
            self._finish(job, DONE, result=result)

    def _finish(
        self, job: Job, state: str, result: dict[str, Any] | None = None, error: str = ""
    ) -> None:
        with self._lock:
            job.result, job.error = result, error
            job.finished = time.time()
            job.state = state
            if state == DONE:
                job.message, job.fraction = "Report ready", 1.0

    def _prune(self) -> None:
        """Forget finished jobs older than ``keep_seconds`` and beyond ``keep_per_owner``
        per owner (running jobs are always kept). Call with the lock held."""
        now = time.time()
        finished = sorted(
            (j for j in self._jobs.values() if not j.active),
            key=lambda j: j.finished or 0.0,
            reverse=True,
        )
        seen: dict[str, int] = {}
        for job in finished:
            seen[job.owner] = seen.get(job.owner, 0) + 1
            too_old = now - (job.finished or now) > self.keep_seconds
            if too_old or seen[job.owner] > self.keep_per_owner:
                del self._jobs[job.id]
