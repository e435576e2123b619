"""The Report page: the PDF it offers is the one ``runreview report`` writes."""

from __future__ import annotations

import io
import shlex

from pypdf import PdfReader

from runreview.cli import main as cli_main
from tests.app.helpers import ok, unescape


def _generate(at, kind: str):  # noqa: ANN001, ANN202 - AppTest
    at.segmented_control(key="w.rp.kind").set_value(kind).run()
    generate = next(b for b in at.button if b.label == "Generate")
    generate.click().run()
    ok(at)
    return at.session_state["_report"]


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
    assert "_report" not in at.session_state
