"""Rendering a PDF in a child process under a wall-clock and a memory limit (A9).

A huge selection (a million-row table) can make WeasyPrint run for hours or take all the
memory of a server that other users share. :func:`render_pdf_limited` therefore renders in
``python -m runreview.reports.sandbox REQUEST_DIR``: the child caps its own address space
(``RLIMIT_AS``) before it imports WeasyPrint, asks the kernel to kill it if the parent dies,
and writes the PDF into the parent's temporary folder, never under the report's final name.
The parent kills the child when it overruns the time limit. Either limit ends in
:class:`~reports.pdf.ReportTooLarge`: "report too large, narrow the selection".

The request and the result travel as plain files (JSON and bytes, nothing pickled) in a
private temporary folder named after the parent's process id; a folder left behind by a
parent that was killed is removed by the next render (:func:`remove_stale_requests`).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from runreview.reports.pdf import FetchLog, ReportRenderError, ReportTooLarge

REQUEST = "request.json"
RESULT = "result.json"
OUTPUT = "report.pdf"
EXIT_FAILED, EXIT_MEMORY = 3, 4
TOO_LARGE = "report too large, narrow the selection"
PREFIX = "runreview-render-"
_OOM_MARKERS = ("memory", "resource temporarily unavailable", "cannot allocate")


def render_pdf_limited(
    html: str,
    attachments: Mapping[str, bytes],
    *,
    identifier: bytes,
    created: datetime,
    fetch_log: FetchLog,
    timeout: float,
    max_mb: int,
) -> bytes:
    """:func:`runreview.reports.pdf.render_pdf_bytes` in a child process stopped after ``timeout``
    seconds or ``max_mb`` MB of address space; ``fetch_log`` is filled from the child's."""
    remove_stale_requests()
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    try:
        _write_request(folder, html, attachments, identifier, created)
        code = _run_child(folder, timeout, max_mb)
        result = _read_result(folder)
        _fill_log(fetch_log, result)
        if code == 0 and result.get("ok"):
            return (folder / OUTPUT).read_bytes()
        raise _failure(code, result, folder, max_mb)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_requests() -> list[Path]:
    """Remove render folders (``runreview-render-<pid>-*``, they hold report data) left in
    the temporary folder by a process that was killed before it could clean up."""
    from runreview.reports.pdf import process_alive

    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        pid = folder.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _write_request(
    folder: Path,
    html: str,
    attachments: Mapping[str, bytes],
    identifier: bytes,
    created: datetime,
) -> None:
    request = {
        "html": html,
        "identifier": base64.b64encode(identifier).decode("ascii"),
        "created": created.isoformat(),
        "attachments": [
            [name, base64.b64encode(data).decode("ascii")] for name, data in attachments.items()
        ],
    }
    (folder / REQUEST).write_text(json.dumps(request), encoding="utf-8")


def _run_child(folder: Path, timeout: float, max_mb: int) -> int:
    command = [sys.executable, "-m", "runreview.reports.sandbox", str(folder), str(int(max_mb))]
    # Fewer malloc arenas: each reserves 64 MB of address space, which RLIMIT_AS counts.
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    with (folder / "stderr.txt").open("wb") as stderr:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, env=env
        )
        try:
            return child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ReportTooLarge(
                f"{TOO_LARGE}: rendering took longer than {timeout:g} s and was stopped "
                "(limit RUNREVIEW_REPORT_TIMEOUT); no file was written"
            ) from None
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


def _read_result(folder: Path) -> dict:
    try:
        return json.loads((folder / RESULT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _fill_log(log: FetchLog, result: dict) -> None:
    for name in ("requested", "refused", "missing_glyphs", "warnings"):
        getattr(log, name).extend(result.get(name, []))
    weasy = logging.getLogger("weasyprint")
    for message in result.get("warnings", []):
        weasy.warning("%s", message)


def _failure(code: int, result: dict, folder: Path, max_mb: int) -> ReportRenderError:
    tail = (folder / "stderr.txt").read_text(errors="replace").strip().splitlines()[-3:]
    if code == EXIT_MEMORY or (code < 0 and _out_of_memory(code, tail)):
        return ReportTooLarge(
            f"{TOO_LARGE}: rendering needed more than {max_mb} MB of memory and was stopped "
            "(limit RUNREVIEW_REPORT_MAX_MB); no file was written"
        )
    if result.get("error"):
        return ReportRenderError(result["error"])
    return ReportRenderError(
        f"the PDF renderer stopped unexpectedly (exit code {code}): {' | '.join(tail)[:500]}"
    )


def _out_of_memory(code: int, stderr_tail: list[str]) -> bool:
    """A child killed by a signal ran out of memory when the kernel's OOM killer sent
    SIGKILL, or a C library (GLib, Pango) aborted because it could not allocate."""
    text = " ".join(stderr_tail).lower()
    return code == -signal.SIGKILL or any(m in text for m in _OOM_MARKERS)


# --- the child ----------------------------------------------------------------------------


def _limit_memory(max_mb: int) -> None:
    import resource

    limit = max_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _near_memory_limit(share: float = 0.8) -> bool:
    """True when this process's peak address space (``VmPeak``) reached ``share`` of its
    ``RLIMIT_AS``: a failure there is most likely an allocation that was refused."""
    import resource

    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit == resource.RLIM_INFINITY:
        return False
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("VmPeak:"):
            return int(line.split()[1]) * 1024 >= share * limit
    return False


def _die_with_parent() -> None:
    """Linux: have the kernel kill this process when the parent dies (no orphan render)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:
        os._exit(EXIT_FAILED)


def _child(folder: Path) -> int:
    from runreview.reports.pdf import render_pdf_bytes

    request = json.loads((folder / REQUEST).read_text(encoding="utf-8"))
    log = FetchLog()
    result: dict = {"ok": False}
    try:
        pdf = render_pdf_bytes(
            request["html"],
            {name: base64.b64decode(data) for name, data in request["attachments"]},
            identifier=base64.b64decode(request["identifier"]),
            created=datetime.fromisoformat(request["created"]),
            fetch_log=log,
        )
        (folder / OUTPUT).write_bytes(pdf)
        result["ok"] = True
        code = 0
    except MemoryError:
        code = EXIT_MEMORY
    except ReportRenderError as exc:
        result["error"] = str(exc)
        code = EXIT_FAILED
    except Exception:
        # Under RLIMIT_AS a failed allocation in C (Pango, cffi) often surfaces as some other
        # error ("SystemError: error return without exception set"); near the limit, that
        # is the memory limit, and the user should hear so rather than see a C error.
        if not _near_memory_limit():
            raise
        code = EXIT_MEMORY
    result.update(
        requested=log.requested,
        refused=log.refused,
        missing_glyphs=log.missing_glyphs,
        warnings=log.warnings,
    )
    (folder / RESULT).write_text(json.dumps(result), encoding="utf-8")
    return code


def main(argv: list[str]) -> int:
    """Child entry point: ``python -m runreview.reports.sandbox REQUEST_DIR MAX_MB``."""
    _die_with_parent()
    _limit_memory(int(argv[1]))
    try:
        return _child(Path(argv[0]))
    except MemoryError:
        return EXIT_MEMORY


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
