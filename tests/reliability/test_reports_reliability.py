"""RELIABILITY.md section A (report rendering), cases A1-A8 and A10-A13, against real
components: a real MLflow sqlite store full of hostile values (``stores``), the real report
pipeline (Jinja2 + WeasyPrint in its child process), PDFs read back with pdftotext and pypdf,
and a 127.0.0.1 listener that hostile values point at. A9 and A14 are in
``test_render_limits.py``."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from runreview.contract import Finding, Severity
from runreview.reports.build import BuiltReport, make_snapshot, render_report
from runreview.reports.manifest import MANIFEST_NAME, sha256_hex, snapshot_hash
from runreview.reports.options import ReportOptions
from runreview.reports.pdf import FetchLog, ReportRenderError, render_pdf_bytes, write_atomically
from runreview.reports.sandbox import render_pdf_limited
from runreview.workspace import Workspace
from tests.reliability import pdfcheck, stores
from tests.reliability.servers import listeners

NOW = datetime(2025, 11, 21, tzinfo=UTC)
#: A path with invalid UTF-8 bytes as Python decodes it (surrogate escapes). pandas' text
#: dtype cannot hold one, so it reaches a report only outside the frames: in a finding.
LONE_SURROGATE = "/logs/bad\udcffx/events.out"
BUDGET_S = 120


@dataclass
class Rendered:
    """One report of the hostile experiment, rendered and read back."""

    built: BuiltReport
    pdf: Path
    text: str
    seconds: float
    weasyprint_errors: list[str]


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def render_kind(ws: Workspace, kind: str, folder: Path, experiment: str) -> Rendered:
    """Read and render one report of ``experiment`` (plus a finding naming a path that is
    not valid UTF-8, as a damaged logdir would give)."""
    options = ReportOptions(kind=kind, now=NOW, since=None, experiments=(experiment,))
    snapshot = make_snapshot(ws, options, lambda m, f: None)
    snapshot.findings.append(
        Finding(Severity.WARNING, "tensorboard:/logs", "file unreadable", path=LONE_SURROGATE)
    )
    errors = _Errors()
    logging.getLogger("weasyprint").addHandler(errors)
    started = time.monotonic()
    try:
        built = render_report(snapshot, options)
    finally:
        logging.getLogger("weasyprint").removeHandler(errors)
    seconds = time.monotonic() - started
    out = folder / f"{kind}.pdf"
    write_atomically(built.pdf, out)
    return Rendered(built, out, pdfcheck.pdftotext(out), seconds, errors.messages)


@pytest.fixture(scope="module")
def hostile(reliability_store, trap, tmp_path_factory) -> dict[str, Rendered]:
    """The hostile experiment as an audit and a weekly report (rendered once)."""
    folder = tmp_path_factory.mktemp("hostile-pdfs")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RUNREVIEW_REPORT_TIMEOUT", str(BUDGET_S))
        ws = Workspace.open([reliability_store.uri], [])
        return {kind: render_kind(ws, kind, folder, "hostile") for kind in ("audit", "weekly")}


def _no_fetch(rendered: Rendered, trap) -> None:
    log = rendered.built.fetch_log
    assert [u for u in log.requested if not u.startswith("data:")] == []
    assert log.refused == []
    assert trap.hits == []
    assert rendered.weasyprint_errors == []


# --- A1-A5: hostile values are text ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["audit", "weekly"])
def test_A1_img_run_name_is_literal_text_and_nothing_is_fetched(
    hostile, reliability_store, trap, kind
):
    rendered = hostile[kind]
    _no_fetch(rendered, trap)
    flat = pdfcheck.squash(rendered.text)
    for role in ("img_file", "img_http"):
        assert pdfcheck.squash(reliability_store.names[role]) in flat, role
    assert "<img" not in rendered.built.html.split("</style>", 1)[1].replace('<img src="data:', "")


def test_A2_attachment_link_tag_is_escaped_and_only_product_files_are_embedded(hostile, trap):
    rendered = hostile["audit"]
    _no_fetch(rendered, trap)
    assert set(pdfcheck.attachments(rendered.pdf)) == pdfcheck.PRODUCT_ATTACHMENTS
    assert pdfcheck.file_attachment_annotations(rendered.pdf) == 0
    assert 'rel="attachment"' not in rendered.built.html
    assert pdfcheck.squash('<link rel="attachment" href="file:///etc/shadow">') in pdfcheck.squash(
        rendered.text
    )


def test_A3_style_import_note_is_escaped_fetches_nothing_and_renders_in_budget(
    hostile, reliability_store, trap
):
    rendered = hostile["audit"]
    _no_fetch(rendered, trap)
    flat = pdfcheck.squash(rendered.text)
    assert pdfcheck.squash("@import url(http://127.0.0.1:") in flat
    assert "url(file:///dev/urandom)" in flat
    assert "<style>@import" not in rendered.built.html
    assert "&lt;style&gt;@import" in rendered.built.html
    # The render ran in the child process under RUNREVIEW_REPORT_TIMEOUT: an overrun would
    # have raised instead of returning.
    assert rendered.seconds < BUDGET_S


def test_A4_table_breaking_param_leaves_table_structure_intact(hostile):
    rendered = hostile["audit"]
    html = rendered.built.html
    shape = pdfcheck.table_shape(html)
    assert shape.h1 == ["Compliance audit report"] and shape.unclosed == []
    assert shape.open_tables == []
    sections = html.split("<h3>Parameters</h3>")[1:]
    assert len(sections) == len(hostile_runs())
    for section in sections:
        params = pdfcheck.table_shape(section.split("<h3>", 1)[0])
        assert params.tables == [] and params.unclosed == [] and params.h1 == []
        assert params.divs == 3  # the listing and its two lines (two params per run)
    flat = pdfcheck.squash(rendered.text)
    for i in range(len(hostile_runs())):
        assert pdfcheck.squash(f"</td></tr></table><h1>FAKE APPROVED {i}</h1>") in flat


def hostile_runs() -> list[str]:
    """The roles of the runs in the hostile experiment."""
    return list(stores.hostile_names(0))


def test_A5_template_syntax_is_printed_literally_never_compiled(hostile, reliability_store):
    for rendered in hostile.values():
        flat = pdfcheck.squash(rendered.text)
        assert pdfcheck.squash(reliability_store.names["template"]) in flat
        assert "<class" not in rendered.text and "subclasses__()}}" in flat


# --- A6, A7: anything that is not inline data stops the render ----------------------------


def _html(head: str = "", body: str = "<p>report</p>") -> str:
    return f'<html lang="en"><head><title>t</title>{head}</head><body>{body}</body></html>'


def _attempt(html: str, out: Path) -> tuple[ReportRenderError, FetchLog]:
    log = FetchLog()
    with pytest.raises(ReportRenderError) as caught:
        pdf = render_pdf_limited(
            html, {"a.json": b"{}"}, identifier=b"id", created=NOW, fetch_log=log,
            timeout=BUDGET_S, max_mb=4096,
        )  # fmt: skip
        write_atomically(pdf, out)
    return caught.value, log


def test_A6_redirecting_asset_is_refused_naming_the_url_and_no_pdf_is_written(tmp_path):
    out = tmp_path / "report.pdf"
    with listeners(2) as (allowed, internal):
        asset = f"{allowed.uri}/x.css"
        for html in (
            _html(f'<link rel="stylesheet" href="{asset}">'),
            _html(body=f'<img src="{allowed.uri}/logo.png" alt="logo">'),
            _html(f"<style>@import url({asset});</style>"),
        ):
            error, log = _attempt(html, out)
            assert allowed.uri in str(error) and "data: URLs" in str(error)
            assert log.refused and all(u.startswith(allowed.uri) for u in log.refused)
        assert allowed.hits == [] and internal.hits == []  # refused before any connection
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "body",
    [
        '<img src="data:image/png;base64,!!!not-a-png" alt="logo">',  # a broken logo
        '<img src="missing-logo.png" alt="logo">',  # a relative path: no base URL to read
    ],
)
def test_A7_resource_that_fails_to_load_fails_the_render(body, tmp_path):
    error, _ = _attempt(_html(body=body), tmp_path / "report.pdf")
    assert "could not be rendered completely" in str(error)
    assert list(tmp_path.iterdir()) == []


# --- A8: huge values ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def wide(reliability_store, trap, tmp_path_factory) -> Rendered:
    """The audit report of the wide experiment: 5,000 params, a 50k param, a 10 MB note."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RUNREVIEW_REPORT_TIMEOUT", str(BUDGET_S))
        env.setenv("RUNREVIEW_REPORT_MAX_MB", "2048")
        ws = Workspace.open([reliability_store.uri], [])
        return render_kind(ws, "audit", tmp_path_factory.mktemp("wide"), "wide")


def test_A8_huge_values_are_truncated_with_hash_and_render_within_limits(wide):
    flat = pdfcheck.squash(wide.text)
    for value in (stores.LONG_PARAM, stores.NOTE_10MB):
        digest = hashlib.sha256(value.encode()).hexdigest()
        assert f"[truncated,{len(value)}chars,sha256={digest[:16]}…]" in flat
        assert digest in flat  # the full hash, in the appendix
    assert f"{stores.WIDE_PARAMS - 200}moreparamsnotshownhere" in flat
    runs = pd.read_csv(io.BytesIO(pdfcheck.attachments(wide.pdf)["runs.csv"]), dtype=str)
    assert len([c for c in runs.columns if c.startswith("params.p")]) == stores.WIDE_PARAMS
    assert stores.NOTE_10MB in set(runs["tags.mlflow.note.content"])
    assert wide.seconds < BUDGET_S and wide.weasyprint_errors == []


# --- A10: Unicode ---------------------------------------------------------------------------


def _fonts_cover(codepoint: int) -> bool:
    """Whether any installed font has a glyph for ``codepoint`` (fontconfig's answer)."""
    found = subprocess.run(
        ["fc-list", f":charset={codepoint:x}", "family"], capture_output=True, text=True
    )
    return bool(found.stdout.strip())


def test_A10_unicode_is_neutralised_flagged_and_missing_glyphs_are_warned(hostile):
    rendered = hostile["audit"]
    text, flat = rendered.text, pdfcheck.squash(rendered.text)
    assert "PASS[U+202E]SSAP" in flat and "\u202e" not in text  # shown, never obeyed
    assert "NUL\ufffdname" in flat and "\x00" not in text  # NUL replaced ...
    assert "/logs/bad\ufffdx/events.out" in flat  # ... and so is a lone surrogate
    assert "ok\ufffd\ufffd" in flat and "notvalidUTF-8" in flat  # invalid bytes from the store
    assert pdfcheck.squash("NUL or invalid (surrogate) characters replaced by U+FFFD") in flat
    assert pdfcheck.squash("control, bidi or invisible characters shown as [U+XXXX]") in flat
    assert "PASS" in flat and "مرحبا" in text  # a zero-width joiner; Arabic
    drawn = {cp: _fonts_cover(cp) for cp in (0x1F600, 0x1F44D, 0x4E2D, 0x6587)}
    assert all(chr(cp) in text for cp, covered in drawn.items() if covered)
    missing = [f"U+{cp:04X}" for cp, covered in drawn.items() if not covered]
    if missing:  # e.g. Debian without fonts-noto-cjk: the report says so, naming them
        assert "Charactersnotdrawn" in flat and "fonts-noto-cjk" in flat
        assert all(code in flat for code in missing)
    else:
        assert "Charactersnotdrawn" not in flat
    assert all(pdfcheck.fonts(rendered.pdf).values())  # every font is embedded


# --- A11-A13: PDF/A, metadata, reproducibility ----------------------------------------------


def test_A11_pdf_a_2b_would_strip_the_attachments_so_reports_use_a_3b():
    data = {"runs.csv": b"run_id,value\nabc,1\n", "findings.json": b"[]\n"}
    html = _html(body="<p>evidence</p>")
    a2 = render_pdf_bytes(html, data, identifier=b"id", created=NOW, variant="pdf/a-2b")
    stripped = pdfcheck.embedded_specs(a2)  # WeasyPrint keeps the names, drops the files
    assert set(stripped) == set(data) and not any("/EF" in s for s in stripped.values())
    a3 = render_pdf_bytes(html, data, identifier=b"id", created=NOW)
    kept = pdfcheck.attachments(a3)
    assert {n: sha256_hex(b) for n, b in kept.items()} == {
        n: sha256_hex(b) for n, b in data.items()
    }


def test_A12_pdf_a_3b_identification_metadata_and_embedded_fonts(hostile):
    # veraPDF cannot be installed here (see README.md); these are the checks we can make.
    for kind, rendered in hostile.items():
        pdf = pdfcheck.reader(rendered.pdf)
        root = pdf.trailer["/Root"]
        xmp = root["/Metadata"].get_object().get_data().decode()
        assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="B"' in xmp
        assert "<xmp:CreateDate>2025-11-21T00:00:00Z</xmp:CreateDate>" in xmp
        [intent] = [i.get_object() for i in root["/OutputIntents"]]
        assert intent["/S"] == "/GTS_PDFA1" and intent["/DestOutputProfile"].get_object()
        assert root["/Lang"] == "en"
        meta = pdf.metadata
        assert meta.title == rendered.built.content.context["title"]
        assert meta["/CreationDate"] == meta["/ModDate"] == "D:20251121000000Z"
        report_id = rendered.built.content.context["report_id"]
        assert str(pdf.trailer["/ID"][0]) == report_id  # pdf_identifier
        assert all(pdfcheck.fonts(rendered.pdf).values()), kind
        specs = pdfcheck.embedded_specs(rendered.pdf)
        assert set(specs) == pdfcheck.PRODUCT_ATTACHMENTS
        assert all(s["/AFRelationship"] == "/Data" and "/EF" in s for s in specs.values())
        # Every file is an associated file of the document (WeasyPrint lists each twice).
        assert {ref.idnum for ref in root["/AF"]} == pdfcheck.embedded_ids(rendered.pdf)


def test_A13_same_snapshot_twice_is_byte_identical_and_the_manifest_hashes_inputs(
    reliability_store, hostile
):
    # Re-reading the store and rendering again: tests/reports/test_reports.py::
    # test_same_now_gives_byte_identical_pdfs does that for the demo; here the same
    # snapshot is rendered twice through the child process.
    ws = Workspace.open([reliability_store.uri], [])
    options = ReportOptions(kind="stakeholder", now=NOW, since=None, experiments=("names",))
    snapshot = make_snapshot(ws, options, lambda m, f: None)
    first, second = render_report(snapshot, options), render_report(snapshot, options)
    assert first.pdf == second.pdf
    rendered = hostile["audit"]
    manifest = pdfcheck.manifest(rendered.pdf)
    files = {n: b for n, b in pdfcheck.attachments(rendered.pdf).items() if n != MANIFEST_NAME}
    assert manifest["attachments"] == {
        n: {"sha256": sha256_hex(b), "bytes": len(b)} for n, b in sorted(files.items())
    }
    assert manifest["snapshot_sha256"] == snapshot_hash(files)
    assert manifest["snapshot_sha256"] in pdfcheck.squash(rendered.text)
    assert manifest["report"]["generated_at"] == "2025-11-21T00:00:00Z"
    assert re.fullmatch(r"[0-9a-f]{16}", manifest["report"]["id"])
