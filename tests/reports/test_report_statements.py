"""Issue #12: what the demo's PDFs state is what they show (read back with pdftotext)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from runreview.reports.build import BuiltReport, make_snapshot, render_report
from runreview.reports.format import num
from runreview.reports.options import ReportOptions
from runreview.workspace import Workspace
from tests.conftest import DEMO_NOW

KINDS = ("weekly", "stakeholder", "audit")
TITLES = {
    "weekly": "Weekly experiment review",
    "stakeholder": "Model progress summary",
    "audit": "Compliance audit report",
}


@pytest.fixture(scope="module")
def built(demo_workspace, tmp_path_factory) -> dict[str, tuple[BuiltReport, Path]]:
    """Each kind from the demo with the CLI's defaults (a 7-day period up to DEMO_NOW)."""
    folder = tmp_path_factory.mktemp("statements")
    made = {}
    for kind in KINDS:
        options = ReportOptions(kind=kind, now=DEMO_NOW)
        ws = Workspace.open([demo_workspace.tracking_uri], [str(demo_workspace.logdir)])
        report = render_report(make_snapshot(ws, options, lambda m, f: None), options)
        path = folder / f"{kind}.pdf"
        path.write_bytes(report.pdf)
        made[kind] = (report, path)
    return made


def page_text(pdf: Path, page: int | None = None, layout: bool = True) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    mode = ["-layout"] if layout else ["-raw"]
    return subprocess.run(
        ["pdftotext", *mode, *pages, str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def page_count(pdf: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(str(pdf)).pages)


def body_lines(text: str, report_id: str) -> tuple[str, list[str]]:
    """(header line, body lines) of one page: blank lines and the footer dropped."""
    lines = [line for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.strip().startswith(f"runreview {report_id}")]
    if lines and lines[0].strip().startswith(TITLES["audit"] + " "):
        return lines[0].strip(), lines[1:]
    return "", lines


RUN_HEADING = re.compile(r"^ ?Run (\S+)\s*$")


def test_audit_running_header_names_the_run_at_the_top_of_each_page(built):
    report, pdf = built["audit"]
    report_id = report.content.context["report_id"]
    current = None  # the run whose section the previous page ended in
    checked = 0
    for page in range(1, page_count(pdf) + 1):
        header, body = body_lines(page_text(pdf, page), report_id)
        top = RUN_HEADING.match(body[0]) if body else None
        expected = top.group(1) if top else current
        if body and body[0].strip() == "Appendix: all runs":
            expected = None
        if page > 1:
            assert header, f"page {page} has no running header"
            named = re.search(r"\bRun (\S+)$", header)
            if expected is None:
                assert named is None, (page, header)
            else:
                assert named is not None and named.group(1) == expected, (page, header, expected)
                checked += 1
        for line in body:
            heading = RUN_HEADING.match(line)
            if heading:
                current = heading.group(1)
            elif line.strip() == "Appendix: all runs":
                current = None
    assert checked >= 30


def test_audit_states_all_runs_up_to_now_and_has_a_section_for_each(built, demo_workspace):
    report, pdf = built["audit"]
    flat = " ".join(page_text(pdf, layout=False).split())
    stated = re.search(r"(\d+) run\(s\) in scope · all runs up to 2026-11-20 00:00 UTC", flat)
    assert stated, "the audit should state that it covers all runs up to the report time"
    assert "2026-11-13" not in flat  # the CLI's default 7-day start is not printed
    sections = report.content.context["runs"]
    assert int(stated.group(1)) == len(sections)
    headings = [
        line for line in page_text(pdf, layout=False).splitlines() if line.startswith("Run ")
    ]
    assert len(headings) == len(sections)
    ws = Workspace.open([demo_workspace.tracking_uri], [str(demo_workspace.logdir)])
    runs = ws.runs()
    assert len(sections) == len(runs)
    starts = pd.to_datetime(runs["start_time"], utc=True)
    assert (starts < pd.Timestamp(DEMO_NOW)).all()
    assert report.content.scope["period"] == {"since": None, "until": "2026-11-20T00:00:00Z"}


def _champion_block(pdf: Path) -> str:
    text = page_text(pdf, layout=False)
    return text[text.index("Champion and challenger") : text.index("Leaderboard")]


def test_weekly_challenger_has_one_score_from_the_champions_experiment(built, demo_workspace):
    report, pdf = built["weekly"]
    block = _champion_block(pdf)
    flat = " ".join(block.split())
    assert "Score = last logged value of val_accuracy (higher is better)." in flat
    # the leaderboard ranks by the same score, and says so
    whole = " ".join(page_text(pdf, layout=False).split())
    assert "Ranked by the last logged value of val_accuracy" in whole
    assert "best value over all logged steps" not in whole
    assert "score (last val_accuracy)" in whole
    champion = re.search(
        r"Champion \(best run started before [^)]*\): (\S+) in (\S+), score (\S+)\.", flat
    )
    challenger = re.search(
        r"Challenger \(best run of (\S+) started in this period\): (\S+), score ([\d.]+)", flat
    )
    assert champion and challenger
    assert challenger.group(1) == champion.group(2)
    ws = Workspace.open([demo_workspace.tracking_uri], [str(demo_workspace.logdir)])
    runs = ws.runs()
    experiment = dict(zip(runs["run_name"], runs["experiment"], strict=False))
    assert experiment[champion.group(1)] == experiment[challenger.group(2)] == champion.group(2)
    # the table's score row gives the same numbers as the text
    row = re.search(r"^val_accuracy (\S+) (\S+) ", block, re.MULTILINE)
    assert row, block
    assert (row.group(1), row.group(2)) == (champion.group(3), challenger.group(3))


def test_weekly_states_the_tie_and_its_tie_break(built):
    report, pdf = built["weekly"]
    flat = " ".join(_champion_block(pdf).split())
    # the demo's wine runs: several reach 1.0 before the period
    tie = re.search(
        r"(\d+) runs before the period tie at 1; ties are broken by earliest finish", flat
    )
    assert tie and int(tie.group(1)) > 1


@pytest.mark.parametrize("kind", KINDS)
def test_numbers_are_for_people_and_no_section_is_empty(built, kind):
    report, pdf = built[kind]
    text = page_text(pdf, layout=False)
    assert "NaN" not in text
    assert not re.search(r"\de[-+]0\d", text), re.search(r".{30}\de[-+]0\d.{10}", text)
    assert "No period start given" not in text
    assert not re.search(r"Parameter importance for\s*$", text, re.MULTILINE)
    # every section heading is followed by something before the next heading
    headings = [
        re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<h2[^>]*>(.*?)</h2>", report.html)
    ]
    import html

    headings = [html.unescape(h) for h in headings]
    report_id = report.content.context["report_id"]
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip()
        and not line.startswith(f"runreview {report_id}")
        and not line.startswith(TITLES[kind] + " ")
    ]
    for i, line in enumerate(lines):
        if line in headings:
            assert i + 1 < len(lines) and lines[i + 1] not in headings, (kind, line)


def test_weekly_importance_missing_values_are_explained(built):
    _, pdf = built["weekly"]
    flat = " ".join(page_text(pdf, layout=False).split())
    if "—" in flat[flat.index("Parameter importance") :]:
        assert "— marks a value that is not defined" in flat


def test_audit_environment_tags_datasets_and_models_read_as_text(built):
    _, pdf = built["audit"]
    text = page_text(pdf)
    # provenance once per environment block, not after every value
    assert "Recorded in artifact environment.json" in text
    assert not re.search(r"= .*\((artifact )?\S*environment\.json", text)
    assert "Recorded in " in text and "tensorboard" in text
    # MLflow's markdown run description shown as text
    assert "**" not in text
    assert "sgd-l2-a1e-4 (seed 0): baseline run by alice" in " ".join(text.split())
    # dataset sources as URLs, not JSON, and not broken inside a word
    assert '{"url"' not in text
    assert "optical+recognition+of+handwritten+digits" in text
    assert "logged model model" not in text
    assert "logged model named “model”, id m-" in text


def test_audit_appendix_keeps_run_ids_and_its_headers_whole(built, demo_workspace):
    report, pdf = built["audit"]
    text = page_text(pdf)
    appendix = text[text.index("Appendix: all runs") :]
    ws = Workspace.open([demo_workspace.tracking_uri], [])
    for rid in ws.runs()["run_id"]:
        assert rid in appendix, rid  # on one line
    header = next(line for line in appendix.splitlines() if line.strip().startswith("run id"))
    assert header.rstrip().endswith("val_accuracy")


def test_stakeholder_speaks_plain_words_and_every_chart_has_a_takeaway(built):
    _, pdf = built["stakeholder"]
    text = page_text(pdf)
    flat = " ".join(text.split())
    for jargon in ("val_accuracy", "EMA", "weight 0.6", "RUNREVIEW_", "NaN"):
        assert jargon not in text, jargon
    assert not re.search(r"\[[0-9a-f]{6,}", text)  # no run hashes in chart legends
    assert "validation accuracy" in text
    assert "Each model is scored by its final validation accuracy; higher is better." in flat
    # each chart: a heading, then a one-line takeaway, then the chart
    assert re.search(
        r"Progress over time: \S+ The best validation accuracy in \S+ (went from|has been)", flat
    )
    assert re.search(r"How the top models learned The top \d+ models end at a validation", flat)


def test_weekly_without_a_period_start_says_so_once(demo_workspace):
    options = ReportOptions(kind="weekly", now=DEMO_NOW, since=None)
    ws = Workspace.open([demo_workspace.tracking_uri], [str(demo_workspace.logdir)])
    report = render_report(make_snapshot(ws, options, lambda m, f: None), options)
    flat = " ".join(
        subprocess.run(
            ["pdftotext", "-raw", "-", "-"], input=report.pdf, capture_output=True, check=True
        )
        .stdout.decode()
        .split()
    )
    assert "No period start given" not in flat
    assert "all runs up to 2026-11-20 00:00 UTC" in flat
    assert "This report has no period start (all runs up to 2026-11-20 00:00 UTC)" in flat
    assert "No environment comparison: it needs a champion and a different challenger." in flat
    assert "NaN" not in flat


def test_stakeholder_progress_is_for_the_champions_experiment_only(built, demo_workspace):
    _, pdf = built["stakeholder"]
    flat = " ".join(page_text(pdf, layout=False).split())
    heading = re.search(r"Progress over time: (\S+) The best validation accuracy in (\S+) ", flat)
    assert heading, "the progress heading and sentence should name the experiment"
    experiment = heading.group(1)
    assert heading.group(2) == experiment
    ws = Workspace.open([demo_workspace.tracking_uri], [str(demo_workspace.logdir)])
    runs = ws.runs()
    best = runs.loc[runs["metrics.val_accuracy"].idxmax()]
    assert experiment == best["experiment"]  # the champion's experiment
    mine = runs[(runs["experiment"] == experiment) & runs["metrics.val_accuracy"].notna()]
    mine = mine.sort_values("start_time", kind="mergesort")
    running = mine["metrics.val_accuracy"].cummax()
    days = pd.to_datetime(mine["start_time"], utc=True).dt.strftime("%Y-%m-%d")
    per_day = running.groupby(days.to_numpy()).last()
    start, now = num(per_day.iloc[0], 4), num(per_day.iloc[-1], 4)
    reached = per_day[per_day == per_day.iloc[-1]].index[0]
    words = "The best validation accuracy in " + experiment
    if start == now:
        expected = f"{words} has been {now} since {per_day.index[0]}."
    else:
        expected = f"{words} went from {start} ({per_day.index[0]}) to {now}, reached on {reached}."
    assert expected in flat
    others = runs.loc[runs["experiment"] != experiment, "experiment"].nunique()
    assert f"{others} other experiment(s) are left out" in flat


def test_stakeholder_overlay_names_its_axis_in_plain_words(built):
    _, pdf = built["stakeholder"]
    text = page_text(pdf)
    assert "Metric overlay" not in text
    assert not re.search(r"^\s*value\s*$", text, re.MULTILINE)  # no bare "value" axis title
    assert "Validation accuracy of the top models during training" in text


def test_weekly_per_class_table_fits_the_page_with_long_class_names(demo_workspace):
    """A long class name wraps in its column; precision, recall, F1 and support stay on the
    page, inside its right margin (16 mm)."""
    from dataclasses import replace

    options = ReportOptions(kind="weekly", now=DEMO_NOW)
    ws = Workspace.open([demo_workspace.tracking_uri], [str(demo_workspace.logdir)])
    snapshot = make_snapshot(ws, options, lambda m, f: None)
    long = "Pseudomonas_aeruginosa_multidrug_resistant_isolate_{}_" + "x" * 40
    for key, matrices in snapshot.confusions.items():
        snapshot.confusions[key] = [
            replace(m, labels=[long.format(i) for i in range(len(m.labels))]) for m in matrices
        ]
    pdf = render_report(snapshot, options).pdf
    bbox = subprocess.run(
        ["pdftotext", "-bbox", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    pages = bbox.split("<page ")[1:]
    page = next(p for p in pages if ">precision</word>" in p)
    width = float(re.search(r'width="([\d.]+)"', page).group(1))
    right = width - 16 / 25.4 * 72
    for header in ("class", "precision", "recall", "F1", "support"):
        found = re.search(rf'xMax="([\d.]+)"[^>]*>{header}</word>', page)
        assert found, f"the per-class table's {header!r} header is not on the page"
        assert float(found.group(1)) <= right, (header, found.group(1), right)
