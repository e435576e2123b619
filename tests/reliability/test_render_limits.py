"""RELIABILITY.md A9 (render limits) and A14 (writing the file), with the real renderer in
its child process, the real CLI, real mounts (as root) and real SIGKILLs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runreview.cli import main
from runreview.reports.pdf import FetchLog, ReportRenderError, ReportTooLarge, write_atomically
from runreview.reports.sandbox import PREFIX, render_pdf_limited
from tests.reliability import fsfaults, pdfcheck
from tests.reliability.test_reports_reliability import _html

NOW = datetime(2025, 11, 21, tzinfo=UTC)
TOO_LARGE = "report too large, narrow the selection"
# A one-page report needs about 120 MB of address space here (more on other machines: CI
# needed over 180 MB); the 20,000-row table needs about 1 GB. 450 MB sits well between.
MEMORY_MB = 450


def report_args(store, out: Path, experiment: str = "wide") -> list[str]:
    """``runreview report`` arguments for one experiment of the reliability store."""
    return [
        "report", "--template", "audit", "--tracking-uri", store.uri, "--experiment",
        experiment, "--since", "30d", "--now", NOW.isoformat(), "--out", str(out),
    ]  # fmt: skip


def render_folders(pid: int | None = None) -> set[str]:
    """The render request folders (they hold report data) of process ``pid`` (this one by
    default): a second test worker rendering at the same time has folders of its own."""
    owner = os.getpid() if pid is None else pid
    return {p.name for p in Path(tempfile.gettempdir()).glob(f"{PREFIX}{owner}-*")}


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def sandbox_children(parent: int) -> list[int]:
    """Render child processes (``python -m runreview.reports.sandbox``) of process ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == parent and b"runreview.reports.sandbox" in cmdline:
            found.append(int(entry.name))
    return found


def wait_for(condition, seconds: float, what: str):
    """Poll ``condition()`` until it is truthy (returned) or ``seconds`` pass (fail)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.005)
    pytest.fail(f"{what} did not happen within {seconds} s")


# --- A9 -------------------------------------------------------------------------------------


def test_A9_render_over_its_time_limit_is_killed_and_leaves_nothing(
    reliability_store, tmp_path, monkeypatch, capsys
):
    before = render_folders()
    monkeypatch.setenv("RUNREVIEW_REPORT_TIMEOUT", "0.5")
    out = tmp_path / "out" / "report.pdf"
    out.parent.mkdir()
    started = time.monotonic()
    code = main(report_args(reliability_store, out))
    assert code == 2
    err = capsys.readouterr().err
    assert TOO_LARGE in err and "RUNREVIEW_REPORT_TIMEOUT" in err
    assert time.monotonic() - started < 60
    assert list(out.parent.iterdir()) == []  # no file, no partial file
    assert sandbox_children(os.getpid()) == []  # the child was killed and reaped
    assert render_folders() <= before


def test_A9_render_over_its_memory_limit_is_stopped_and_a_small_one_fits(tmp_path):
    rows = "".join(f"<tr><td>k{i}</td><td>{'v' * 50}</td></tr>" for i in range(20_000))
    big = _html(body=f"<table>{rows}</table>")
    with pytest.raises(ReportTooLarge) as caught:
        render_pdf_limited(
            big, {}, identifier=b"id", created=NOW, fetch_log=FetchLog(), timeout=120,
            max_mb=MEMORY_MB,
        )  # fmt: skip
    assert TOO_LARGE in str(caught.value) and "RUNREVIEW_REPORT_MAX_MB" in str(caught.value)
    small = render_pdf_limited(
        _html(), {}, identifier=b"id", created=NOW, fetch_log=FetchLog(), timeout=120,
        max_mb=MEMORY_MB,
    )  # fmt: skip
    assert small.startswith(b"%PDF-")


# --- A14 ------------------------------------------------------------------------------------


def test_A14_read_only_output_folder_is_an_error_and_leaves_nothing(
    reliability_store, tmp_path, capsys
):
    with fsfaults.read_only_folder(tmp_path) as folder:
        out = folder / "report.pdf"
        assert main(report_args(reliability_store, out, "names")) == 2
        assert f"could not write {out}" in capsys.readouterr().err
        assert list(folder.iterdir()) == []


def test_A14_full_disk_is_an_error_and_leaves_nothing(tmp_path):
    with fsfaults.full_folder(tmp_path, size_kb=64) as (folder, mounted):
        out = folder / "report.pdf"
        if mounted:
            with pytest.raises(ReportRenderError, match="could not write .*No space left"):
                write_atomically(b"%PDF-" + b"x" * 600_000, out)
        else:
            done = fsfaults.write_with_size_limit(out, 600_000, 64 * 1024)
            assert done.returncode == 2 and "could not write" in done.stdout, done.stderr
        assert list(folder.iterdir()) == []


def test_A14_writer_killed_mid_write_leaves_no_file_under_the_final_name(tmp_path):
    # What is asserted: after a SIGKILL while the bytes are being written, nothing exists
    # under the final name, only the killed writer's ".<name>.<pid>.*.part" file; the next
    # write to the same name removes that leftover and puts the complete file in place.
    out = tmp_path / "report.pdf"
    code = (
        "import sys\nfrom pathlib import Path\nfrom reports.pdf import write_atomically\n"
        "write_atomically(b'%PDF-' + b'x' * 300_000_000, Path(sys.argv[1]))\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(out)])
    part = wait_for(
        lambda: next((p for p in tmp_path.glob(".report.pdf.*.part") if p.stat().st_size), None),
        60,
        "the temporary file",
    )
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert not out.exists()
    assert part.exists() and f".{writer.pid}." in part.name
    write_atomically(b"%PDF-1.7 complete", out)
    assert out.read_bytes() == b"%PDF-1.7 complete"
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_A14_report_killed_while_rendering_leaves_no_file_and_no_orphan(
    reliability_store, tmp_path
):
    out = tmp_path / "report.pdf"
    cli = subprocess.Popen(
        [sys.executable, "-m", "runreview.cli", *report_args(reliability_store, out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        [child] = wait_for(lambda: sandbox_children(cli.pid), 120, "the render child")
        cli.send_signal(signal.SIGKILL)
        cli.wait()
        wait_for(lambda: not alive(child), 10, "the render child's end (it dies with its parent)")
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert list(tmp_path.iterdir()) == []
    left = sorted(render_folders(cli.pid))
    assert len(left) == 1  # a SIGKILL leaves the request folder; the next render removes it
    render_pdf_limited(
        _html(), {}, identifier=b"id", created=NOW, fetch_log=FetchLog(), timeout=120,
        max_mb=1024,
    )  # fmt: skip
    assert left[0] not in render_folders(cli.pid)


def test_A14_cli_report_writes_a_complete_verified_file(reliability_store, tmp_path, capsys):
    out = tmp_path / "report.pdf"
    assert main(report_args(reliability_store, out, "names")) == 0
    assert f"Wrote {out}" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]
    assert set(pdfcheck.attachments(out)) == pdfcheck.PRODUCT_ATTACHMENTS


def test_A9_a_failure_near_the_memory_limit_counts_as_out_of_memory():
    # A refused allocation in Pango/cffi can surface as SystemError rather than MemoryError;
    # the child calls it a memory failure only when its peak address space is near the limit.
    script = (
        "import resource, sys\n"
        "from runreview.reports.sandbox import _near_memory_limit\n"
        "print(_near_memory_limit())\n"
        "peak = int([l for l in open('/proc/self/status') if l.startswith('VmPeak:')][0]"
        ".split()[1]) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (int(peak * 1.1), resource.RLIM_INFINITY))\n"
        "print(_near_memory_limit())\n"
        "resource.setrlimit(resource.RLIMIT_AS, (peak * 4, resource.RLIM_INFINITY))\n"
        "print(_near_memory_limit())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["False", "True", "False"]
