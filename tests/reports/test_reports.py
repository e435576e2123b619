"""Reports end to end: every kind from the demo and from a store never seen before, read back."""

from __future__ import annotations

import http.server
import io
import json
import logging
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from pypdf import PdfReader

from runreview.reports.build import make_snapshot, render_report
from runreview.reports.manifest import MANIFEST_NAME, sha256_hex
from runreview.reports.options import ReportOptions
from runreview.reports.pdf import ReportRenderError, write_atomically
from runreview.workspace import Workspace
from tests.conftest import DEMO_NOW
from tests.reports.hostile import build_hostile_store

KINDS = ("weekly", "stakeholder", "audit")
PRODUCT_ATTACHMENTS = {"runs.csv", "history.csv", "findings.json", MANIFEST_NAME}


def runreview(*args: str) -> subprocess.CompletedProcess:
    """The CLI as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "runreview.cli", *args], capture_output=True, text=True, timeout=300
    )


def pdftotext(path: Path) -> str:
    """The PDF's text as poppler extracts it."""
    out = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return out.stdout


@pytest.fixture(scope="module")
def demo_pdfs(demo_workspace, tmp_path_factory) -> dict[str, Path]:
    """One PDF of each kind from the demo, made by the CLI."""
    folder = tmp_path_factory.mktemp("pdfs")
    made = {}
    for kind in KINDS:
        out = folder / f"{kind}.pdf"
        result = runreview(
            "report", "--template", kind, "--tracking-uri", demo_workspace.tracking_uri,
            "--logdir", str(demo_workspace.logdir), "--now", DEMO_NOW.isoformat(), "--out", str(out),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        made[kind] = out
    return made


@pytest.mark.parametrize("kind", KINDS)
def test_demo_report_attachments_match_the_manifest(demo_pdfs, kind):
    reader = PdfReader(str(demo_pdfs[kind]))
    attachments = {name: data[0] for name, data in reader.attachments.items()}
    assert set(attachments) == PRODUCT_ATTACHMENTS
    manifest = json.loads(attachments[MANIFEST_NAME])
    for name, entry in manifest["attachments"].items():
        assert sha256_hex(attachments[name]) == entry["sha256"]
        assert len(attachments[name]) == entry["bytes"]
    assert manifest["report"]["kind"] == kind
    assert manifest["report"]["generated_at"] == "2026-11-20T00:00:00Z"
    assert manifest["versions"]["runreview"]
    assert {s["kind"] for s in manifest["scope"]["sources"]} == {"mlflow", "tensorboard"}


@pytest.mark.parametrize("kind", KINDS)
def test_verify_passes_then_fails_on_a_changed_attachment(demo_pdfs, kind, tmp_path):
    ok = runreview("verify", str(demo_pdfs[kind]))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "verified" in ok.stdout

    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(demo_pdfs[kind]))
    runs_csv = PdfReader(str(demo_pdfs[kind])).attachments["runs.csv"][0]
    forged = runs_csv.replace(b",", b";", 1)
    _replace_attachment(writer, "runs.csv", forged)
    tampered = tmp_path / "tampered.pdf"
    with tampered.open("wb") as handle:
        writer.write(handle)
    bad = runreview("verify", str(tampered))
    assert bad.returncode == 1
    assert "runs.csv" in bad.stdout and "MISMATCH" in bad.stdout


def _replace_attachment(writer, name: str, data: bytes) -> None:
    """Swap an embedded file's bytes in place (what a forger would do)."""
    from pypdf.generic import NameObject, StreamObject

    names = writer._root_object["/Names"]["/EmbeddedFiles"]["/Names"]
    for i in range(0, len(names), 2):
        if names[i] == name:
            spec = names[i + 1].get_object()
            stream = spec["/EF"]["/F"].get_object()
            new = StreamObject()
            new.set_data(data)
            for key, value in stream.items():
                if key not in ("/Length", "/Filter", "/DecodeParms", "/Params"):
                    new[NameObject(key)] = value
            spec["/EF"][NameObject("/F")] = writer._add_object(new)
            return
    raise AssertionError(f"{name} not attached")


def test_audit_names_every_run_in_scope(demo_pdfs, demo_workspace):
    text = pdftotext(demo_pdfs["audit"])
    ws = Workspace.open([demo_workspace.tracking_uri], [str(demo_workspace.logdir)])
    runs = ws.runs()
    assert len(runs) >= 30
    flat = text.replace("\n", " ")
    missing = [rid for rid in runs["run_id"] if rid not in flat]
    assert missing == []


def test_audit_draws_each_metric_across_runs_and_attaches_the_points(demo_pdfs, demo_workspace):
    ws = Workspace.open([demo_workspace.tracking_uri], [str(demo_workspace.logdir)])
    metrics = sorted(set(ws.history()["metric"].astype(str)))
    # Reading order (not -layout): the captions of side-by-side charts stay whole.
    text = subprocess.run(
        ["pdftotext", str(demo_pdfs["audit"]), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(text.split())
    assert "Metric histories" in flat
    drawn = [m for m in metrics if f"{m}: lowest to highest value (band) and median" in flat]
    assert len(drawn) == min(10, len(metrics))
    assert "the dark line is the best run by" in flat
    if len(metrics) > 10:
        assert f"{len(metrics) - 10} more metric(s) not drawn" in flat
    attached = PdfReader(str(demo_pdfs["audit"])).attachments["history.csv"][0]
    charted = set(pd.read_csv(io.BytesIO(attached))["metric"].astype(str))
    assert charted == set(drawn)


def test_stakeholder_body_has_no_raw_ids_or_hashes(demo_pdfs, demo_workspace):
    text = pdftotext(demo_pdfs["stakeholder"])
    ws = Workspace.open([demo_workspace.tracking_uri], [])
    mlflow_ids = list(ws.runs()["run_id"])
    assert not [rid for rid in mlflow_ids if rid in text]
    manifest = json.loads(PdfReader(str(demo_pdfs["stakeholder"])).attachments[MANIFEST_NAME][0])
    assert manifest["snapshot_sha256"] not in text
    assert len(PdfReader(str(demo_pdfs["stakeholder"])).pages) <= 4


@pytest.mark.parametrize("kind", KINDS)
def test_first_page_is_not_blank(demo_pdfs, kind, tmp_path):
    from PIL import Image, ImageStat

    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "40",
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            str(demo_pdfs[kind]),
            str(tmp_path / "p"),
        ],
        check=True,
    )
    page = next(tmp_path.glob("p*.png"))
    stat = ImageStat.Stat(Image.open(page).convert("L"))
    assert stat.stddev[0] > 10, "page 1 looks blank"


def test_weekly_report_shows_the_review_sections(demo_pdfs):
    text = pdftotext(demo_pdfs["weekly"])
    for heading in (
        "Champion and challenger",
        "Leaderboard",
        "Metric overlay",
        "New runs this period",
        "Failed runs",
        "Confusion matrix",
        "Environment",
        "Parameter importance",
        "Data completeness",
    ):
        assert heading in text
    assert "plotted" in text  # the overlay says how many points it drew


def test_same_now_gives_byte_identical_pdfs(demo_workspace, caplog):
    ws = Workspace.open([demo_workspace.tracking_uri], [str(demo_workspace.logdir)])
    options = ReportOptions(kind="weekly", now=DEMO_NOW)
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        first = render_report(make_snapshot(ws, options, lambda m, f: None), options).pdf
        ws2 = Workspace.open([demo_workspace.tracking_uri], [str(demo_workspace.logdir)])
        second = render_report(make_snapshot(ws2, options, lambda m, f: None), options).pdf
    assert first == second
    errors = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("weasyprint") and r.levelno >= logging.ERROR
    ]
    assert errors == []


class _Listener(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        type(self).hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"x")

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def listener():
    _Listener.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_text_is_printed_literally_and_fetches_nothing(kind, listener, tmp_path, caplog):
    port = listener.server_address[1]
    store = build_hostile_store(tmp_path, port)
    logdir = tmp_path / "tb"
    _hostile_tensorboard_run(logdir, port)
    before = sha256_hex(store.db.read_bytes())
    out = tmp_path / f"{kind}.pdf"
    ws = Workspace.open([store.tracking_uri], [str(logdir)])
    options = ReportOptions(kind=kind, now=datetime(2025, 11, 21, tzinfo=UTC), since=None)
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        built = render_report(make_snapshot(ws, options, lambda m, f: None), options)
    write_atomically(built.pdf, out)
    assert _Listener.hits == []
    assert all(url.startswith("data:") for url in built.fetch_log.requested)
    assert built.fetch_log.refused == []
    assert set(PdfReader(str(out)).attachments) == PRODUCT_ATTACHMENTS
    assert sha256_hex(store.db.read_bytes()) == before  # the store was only read
    text = pdftotext(out).replace("\n", " ")
    if kind == "audit":
        for name in store.names[:4]:
            assert _squash(name) in _squash(text), name
        assert "[U+202E]" in text  # the bidi override is shown, not obeyed
        assert "truncated,7504chars" in _squash(text)
        assert "FAKE APPROVED 0" in text
    assert "<h1>FAKE APPROVED" not in built.html
    errors = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("weasyprint") and r.levelno >= logging.ERROR
    ]
    assert errors == []


def _squash(text: str) -> str:
    return "".join(text.split())


def _hostile_tensorboard_run(logdir: Path, port: int) -> None:
    from tensorboardX import SummaryWriter

    run = logdir / "evil-run"
    with SummaryWriter(str(run)) as writer:
        for step in range(3):
            writer.add_scalar("val_accuracy", 0.4 + 0.1 * step, step)
        writer.add_text("note", f'<img src="http://127.0.0.1:{port}/tb.png">', 0)


def test_failed_render_leaves_nothing_under_the_final_name():
    # /proc refuses new files even to root, so the temporary file cannot be made there.
    target = Path("/proc") / "runreview-report.pdf"
    with pytest.raises(ReportRenderError, match="could not write"):
        write_atomically(b"%PDF-1.7", target)
    assert not target.exists()


def test_report_to_a_missing_store_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "r.pdf"
    result = runreview(
        "report",
        "--template",
        "audit",
        "--tracking-uri",
        f"sqlite:///{tmp_path}/nope.db",
        "--out",
        str(out),
    )
    assert result.returncode == 2
    assert "nope.db" in result.stderr
    assert not out.exists()
    assert not (tmp_path / "nope.db").exists()


def test_pdf_is_declared_pdf_a_3b(demo_pdfs):
    reader = PdfReader(str(demo_pdfs["audit"]))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="B"' in xmp
    assert "<xmp:CreateDate>2026-11-20T00:00:00Z</xmp:CreateDate>" in xmp  # from --now
