"""The Report page: the PDF it offers is the one ``runreview report`` writes."""

from __future__ import annotations

import io
import shlex
import time

import pytest
from pypdf import PdfReader

from runreview.app.loaders import job_board
from runreview.app.viewer import ANONYMOUS
from runreview.cli import main as cli_main
from tests.app.helpers import ok, unescape


def _finished(at, seconds: float = 120.0):
    """Rerun the page until its report job has ended; returns the job."""
    job_id = at.session_state["_report_job"]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = job_board().get(job_id, ANONYMOUS)
        assert job is not None
        if not job.active:
            at.run()
            ok(at)
            return job
        time.sleep(0.2)
    pytest.fail(f"the report job was still running after {seconds} s")


def _generate(at, kind: str):
    at.segmented_control(key="w.rp.kind").set_value(kind).run()
    generate = next(b for b in at.button if b.label == "Generate")
    generate.click().run()
    ok(at)
    assert at.query_params["job"] == at.session_state["_report_job"]  # the URL names it
    return _finished(at).result


def test_report_page_builds_the_same_pdf_as_the_command_line(open_app, demo, tmp_path):
    at = open_app(demo, "report", query={"metric": "val_accuracy", "rp.since": "30d"})
    ok(at)
    made = _generate(at, "stakeholder")
    assert made is not None, [unescape(e.value) for e in at.error]
    pdf = made["pdf"]
    assert pdf.startswith(b"%PDF-")
    assert made["pages"] == len(PdfReader(io.BytesIO(pdf)).pages) >= 1
    shown = {m.label: m.value for m in at.metric}
    assert len(made["report_id"]) == 16
    assert any(c.value.startswith(f"Report {made['report_id']}: ") for c in at.caption)
    assert shown["Data"] == "complete"
    assert [d.label for d in at.download_button] == ["Download PDF"]

    command = at.code[-1].value  # the command the page shows
    words = shlex.split(command)
    assert words[:4] == ["runreview", "report", "--template", "stakeholder"]
    assert words[words.index("--now") + 1] == made["now"]
    out = tmp_path / "cli.pdf"
    words[words.index("--out") + 1] = str(out)
    assert cli_main(words[1:]) == 0
    assert out.read_bytes() == pdf


def test_report_on_a_never_seen_store_says_what_could_not_be_read(open_app, unseen):
    at = open_app(unseen, "report", query={"rp.since": ""})
    made = _generate(at, "audit")
    assert made is not None, [unescape(e.value) for e in at.error]
    assert not made["complete"] and made["problems"] >= 1
    assert {m.label: m.value for m in at.metric}["Data"] == f"{made['problems']} problem(s)"
    assert any("could not be read" in w.value for w in at.warning)


def test_report_options_are_checked_before_anything_is_read(open_app, demo):
    at = open_app(demo, "report", query={"rp.since": "3 fortnights", "rp.q": "params.x >> 1"})
    ok(at)
    errors = [unescape(e.value) for e in at.error]
    assert any(e.startswith("Period: unknown time unit 'fortnights'") for e in errors), errors
    assert any(e.startswith("Filter: Invalid filter at character") for e in errors), errors
    assert [c.value for c in at.code] == ["params.x >> 1\n         ^"]
    generate = next(b for b in at.button if b.label == "Generate")
    assert generate.disabled
    assert "_report_job" not in at.session_state


def test_a_report_outlives_its_tab_and_is_found_again_by_its_url(open_app, demo):
    """RELIABILITY.md D6: the tab that started the job goes away (its session is simply
    never run again, as when the WebSocket drops); a new session opened on the job's URL
    gets the finished report, and another viewer on the same URL gets nothing."""
    first = open_app(demo, "report", query={"rp.since": "30d"})
    first.segmented_control(key="w.rp.kind").set_value("stakeholder").run()
    next(b for b in first.button if b.label == "Generate").click().run()
    job_id = first.query_params["job"]
    del first  # the tab is gone; the job is not
    job = job_board().get(job_id, ANONYMOUS)
    deadline = time.monotonic() + 120
    while job.active and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.state == "done", job.error
    again = open_app(demo, "report", query={"job": job_id})
    ok(again)
    assert [d.label for d in again.download_button] == ["Download PDF"]
    assert any(c.value.startswith(f"Report {job.result['report_id']}: ") for c in again.caption)
    stranger = open_app(demo, "report", query={"job": job_id}, user="bob@corp.example")
    ok(stranger)
    assert not stranger.download_button
    assert any("not here any more" in i.value for i in stranger.info)
