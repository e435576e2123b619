"""HTML to PDF/A-3b with WeasyPrint: the only module that imports weasyprint.

The renderer fetches nothing: a URL fetcher allows ``data:`` URLs only and turns any other
fetch into a fatal error naming the URL, so a report can never be silently incomplete and
hostile text can never make the renderer read a file or open a connection. Any resource
that fails to load (WeasyPrint only logs those, at ERROR) fails the render too.

``runreview.reports.sandbox`` runs :func:`render_pdf_bytes` in a child process under a time and
memory limit; :func:`write_atomically` puts the bytes under their final name.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import Path

PDF_VARIANT = "pdf/a-3b"  # PDF/A-3 keeps CSV/JSON attachments (A-2 strips them)
_MISSING_GLYPH = re.compile(r"^\.notdef glyph rendered .*\(U\+([0-9A-F]{4,6})\)$")


class ReportRenderError(Exception):
    """The PDF could not be made; nothing was written under the final name."""


class ReportTooLarge(ReportRenderError):
    """Rendering ran past its time or memory limit and was stopped."""


@dataclass
class FetchLog:
    """What the renderer did: every URL it asked for, the ones refused, the characters no
    installed font could draw (``U+XXXX``) and WeasyPrint's warnings."""

    requested: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    missing_glyphs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _fetcher_class():
    from weasyprint.urls import FatalURLFetchingError, URLFetcher

    class DataOnlyFetcher(URLFetcher):
        """Allows ``data:`` URLs; any other URL stops the render."""

        def __init__(self, log: FetchLog) -> None:
            super().__init__(allowed_protocols={"data"}, allow_redirects=False, timeout=1)
            self.log = log

        def fetch(self, url: str, headers: Mapping[str, str] | None = None):
            self.log.requested.append(url[:200])
            if not url.startswith("data:"):
                self.log.refused.append(url[:200])
                raise FatalURLFetchingError(
                    f"report refers to {url[:200]!r}; reports may only embed data: URLs"
                )
            return super().fetch(url, headers)

    return DataOnlyFetcher


class _RenderRecords(logging.Handler):
    """WeasyPrint's records during one render: errors, missing glyphs, other warnings."""

    def __init__(self, log: FetchLog) -> None:
        super().__init__(level=logging.WARNING)
        self.log = log
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Sort the record into errors, missing glyphs and warnings."""
        message = record.getMessage()
        glyph = _MISSING_GLYPH.match(message)
        if record.levelno >= logging.ERROR:
            self.errors.append(message[:300])
        elif glyph:
            code = f"U+{glyph.group(1)}"
            if code not in self.log.missing_glyphs:
                self.log.missing_glyphs.append(code)
        elif message[:300] not in self.log.warnings:
            self.log.warnings.append(message[:300])


@contextmanager
def _records(log: FetchLog) -> Iterator[_RenderRecords]:
    handler = _RenderRecords(log)
    logger = logging.getLogger("weasyprint")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def render_pdf_bytes(
    html: str,
    attachments: Mapping[str, bytes],
    *,
    identifier: bytes,
    created: datetime,
    fetch_log: FetchLog | None = None,
    variant: str = PDF_VARIANT,
) -> bytes:
    """Render ``html`` to PDF/A-3b bytes with ``attachments`` embedded under their names.

    ``identifier`` and ``created`` fix the PDF's ID and every date in it, so the same input
    gives byte-identical output. A refused URL or a resource that fails to load raises
    :class:`ReportRenderError`. ``variant`` exists to show why PDF/A-3b is used (tests).
    """
    import weasyprint
    from weasyprint.urls import FatalURLFetchingError

    log = fetch_log if fetch_log is not None else FetchLog()
    fetcher = _fetcher_class()(log)
    files = [
        weasyprint.Attachment(
            file_obj=BytesIO(data), name=name, description=name, created=created,
            modified=created, relationship="Data", url_fetcher=fetcher,
        )
        for name, data in attachments.items()
    ]  # fmt: skip
    with _records(log) as records:
        try:
            document = weasyprint.HTML(string=html, url_fetcher=fetcher, base_url=None)
            pdf = document.write_pdf(
                attachments=files,
                pdf_variant=variant,
                pdf_identifier=identifier,
                uncompressed_pdf=False,
                custom_metadata=False,
            )
        except FatalURLFetchingError as exc:
            raise ReportRenderError(str(exc)) from None
    if records.errors:
        more = len(records.errors) - 1
        raise ReportRenderError(
            f"the report could not be rendered completely: {records.errors[0]}"
            + (f" (and {more} more problem(s))" if more else "")
        )
    return pdf


def write_atomically(data: bytes, target: Path) -> None:
    """Write ``data`` to ``target`` through a temporary file and a rename.

    A failure (disk full, read-only folder, a kill mid-write) leaves nothing under the
    final name. The file gets the mode a plain ``open`` would give it (``0o666`` less the
    umask), not the temporary file's private ``0o600``. The temporary name carries the
    writer's process id, so temporary files left by a writer that was killed are removed by
    the next write to the same target.
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ReportRenderError(f"output folder {folder} does not exist; create it first")
    remove_stale_parts(target)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=".part", dir=folder
        )
    except OSError as exc:
        raise ReportRenderError(f"could not write {target}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ReportRenderError(f"could not write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status``) where the
    system says it; else set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def remove_stale_parts(target: Path) -> list[Path]:
    """Remove ``.<name>.<pid>.*.part`` files next to ``target`` whose writer is gone."""
    removed = []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.[^/]*\.part$")
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        found = pattern.match(entry.name)
        if found and not process_alive(int(found.group(1))):
            try:
                entry.unlink()
                removed.append(entry)
            except OSError:
                continue
    return removed


def process_alive(pid: int) -> bool:
    """True when process ``pid`` exists (this process counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
