"""The report job board (RELIABILITY.md D6): jobs run outside any page, belong to their
viewer, can be cancelled between two progress reports, and are forgotten after a while."""

from __future__ import annotations

import threading
import time

import pytest

from runreview.app.jobs import CANCELLED, DONE, FAILED, RUNNING, JobBoard, TooManyJobs


def wait_until_finished(board: JobBoard, job_id: str, owner: str, seconds: float = 10.0) -> str:
    """Poll the job until it is no longer running; returns its state."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = board.get(job_id, owner)
        assert job is not None
        if not job.active:
            return job.state
        time.sleep(0.01)
    pytest.fail(f"job {job_id} still running after {seconds} s")


def test_a_job_runs_in_its_own_thread_reports_progress_and_keeps_its_result():
    board = JobBoard()
    release = threading.Event()
    seen = []

    def work(progress):
        progress("Reading runs", 0.25)
        seen.append(threading.current_thread().name)
        release.wait(10)
        progress("Rendering", 1.5)  # clamped
        return {"pdf": b"%PDF-", "pages": 1}

    job = board.start("user:email:alice@corp.example", "Audit", work)
    deadline = time.monotonic() + 5
    while job.message != "Reading runs" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (job.state, job.message, job.fraction) == (RUNNING, "Reading runs", 0.25)
    assert seen == [f"report-job-{job.id}"] and seen[0] != threading.current_thread().name
    release.set()
    assert wait_until_finished(board, job.id, job.owner) == DONE
    assert job.result == {"pdf": b"%PDF-", "pages": 1} and job.fraction == 1.0


def test_another_viewer_cannot_see_fetch_or_cancel_a_job():
    board = JobBoard()
    job = board.start("user:email:alice@corp.example", "Audit", lambda progress: {"ok": True})
    assert board.get(job.id, "user:email:bob@corp.example") is None
    assert board.of("user:email:bob@corp.example") == []
    assert not board.cancel(job.id, "user:email:bob@corp.example")
    assert board.get(job.id, job.owner) is job
    assert len(job.id) >= 16  # random, not guessable


def test_cancel_stops_the_job_at_its_next_progress_report():
    board = JobBoard()
    started, steps = threading.Event(), []

    def work(progress):
        for step in range(1000):
            progress(f"run {step}", step / 1000)
            steps.append(step)
            started.set()
            time.sleep(0.005)
        return {"never": True}

    job = board.start("anonymous", "Weekly", work)
    assert started.wait(5)
    assert board.cancel(job.id, "anonymous")
    assert wait_until_finished(board, job.id, "anonymous") == CANCELLED
    assert job.result is None and len(steps) < 1000
    assert not board.cancel(job.id, "anonymous")  # finished: nothing to cancel


def test_a_failing_job_keeps_its_error_for_its_owner():
    board = JobBoard()

    def work(progress):
        raise RuntimeError("MLflow store not found: /data/mlflow.db")

    job = board.start("anonymous", "Audit", work)
    assert wait_until_finished(board, job.id, "anonymous") == FAILED
    assert job.error == "MLflow store not found: /data/mlflow.db"


def test_finished_jobs_are_forgotten_by_age_and_by_count_per_viewer_never_while_running():
    board = JobBoard(keep_seconds=0.2, keep_per_owner=2)
    release = threading.Event()
    running = board.start("alice", "long", lambda progress: release.wait(10) and {"ok": 1})
    done = [board.start("alice", f"quick {i}", lambda progress: {"ok": 1}) for i in range(3)]
    for job in done:
        wait_until_finished(board, job.id, "alice")
    kept = board.of("alice")
    assert running in kept and len([j for j in kept if not j.active]) == 2
    time.sleep(0.3)
    assert board.of("alice") == [running]  # the finished ones aged out; the running one stays
    release.set()
    assert wait_until_finished(board, running.id, "alice") == DONE


def test_running_jobs_are_limited_per_viewer_and_in_all():
    board = JobBoard(running_per_owner=1, running_in_all=2)
    release = threading.Event()
    first = board.start("alice", "a", lambda progress: release.wait(10) and {"ok": 1})
    with pytest.raises(TooManyJobs, match="You already have 1 report"):
        board.start("alice", "b", lambda progress: {"ok": 1})
    board.start("bob", "c", lambda progress: release.wait(10) and {"ok": 1})
    with pytest.raises(TooManyJobs, match="2 reports are being built on this server"):
        board.start("carol", "d", lambda progress: {"ok": 1})
    release.set()
    assert wait_until_finished(board, first.id, "alice") == DONE
    for job in board.of("bob"):
        wait_until_finished(board, job.id, "bob")
    assert board.start("alice", "e", lambda progress: {"ok": 1}).owner == "alice"
