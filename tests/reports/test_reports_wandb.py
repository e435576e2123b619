"""Every report kind with W&B runs mixed in with MLflow and TensorBoard runs (one run of
each of those, to keep the renders short)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader

from runreview.reports.build import make_snapshot, render_report
from runreview.reports.manifest import MANIFEST_NAME
from runreview.reports.options import KINDS, ReportOptions
from runreview.workspace import Workspace
from tests import wandb_writer as spec
from tests.wandb_fixture import CORE_VERSION, LEGACY_VERSION


def _text(pdf: bytes) -> str:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as fh:
        fh.write(pdf)
        fh.flush()
        out = subprocess.run(
            ["pdftotext", "-layout", fh.name, "-"], capture_output=True, text=True, check=True
        )
    return " ".join(out.stdout.split())


@pytest.mark.parametrize("kind", KINDS)
def test_reports_render_with_wandb_runs_mixed_in(kind, demo_workspace, wandb_folders, caplog):
    ws = Workspace.open(
        [demo_workspace.tracking_uri], [str(demo_workspace.logdir)], [str(wandb_folders.root)]
    )
    runs = ws.runs()
    others = [runs.loc[runs["source"] == s, "run_id"].iloc[0] for s in ("mlflow", "tensorboard")]
    wandb_ids = [rid for v in (LEGACY_VERSION, CORE_VERSION) for rid in spec.run_ids(v).values()]
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    options = ReportOptions(
        kind=kind, now=now, since=None, metric="loss", goal="min", run_ids=(*others, *wandb_ids)
    )
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        snapshot = make_snapshot(ws, options, lambda m, f: None)
        built = render_report(snapshot, options)
    assert ws.read_errors == [] and ws.open_errors == []
    assert set(snapshot.runs["source"]) == {"mlflow", "tensorboard", "wandb"}

    reader = PdfReader(io.BytesIO(built.pdf))
    manifest = json.loads(reader.attachments[MANIFEST_NAME][0])
    assert str(wandb_folders.root) in json.dumps(manifest)
    text = _text(built.pdf)
    if kind == "audit":
        for version in (LEGACY_VERSION, CORE_VERSION):
            for run_id in spec.run_ids(version).values():
                assert run_id in text
        assert "adam" in text and "FAILED" in text
    else:
        assert spec.BASELINE_NAME in text or spec.LONG_NAME in text


def test_run_details_of_a_wandb_run_reach_the_audit(wandb_folders):
    ws = Workspace.open([], [], [str(wandb_folders.wandb_dir(CORE_VERSION))])
    run_id = spec.run_ids(CORE_VERSION)["baseline"]
    details = ws.source(str(wandb_folders.wandb_dir(CORE_VERSION))).read_run_details(run_id)
    assert details["wandb_version"] == CORE_VERSION
    paths = [a["path"] for a in details["artifacts"]]
    assert any(p.endswith(".table.json") for p in paths) and "files/requirements.txt" in paths
