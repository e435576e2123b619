"""HTML to PDF/A-3b with WeasyPrint: the only module that imports weasyprint.

The renderer fetches nothing: a URL fetcher allows ``data:`` URLs only and turns any other
fetch into a fatal error naming the URL, so a report can never be silently incomplete and
hostile text can never make the renderer read a file or open a connection.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import Path

PDF_VARIANT = "pdf/a-3b"  # PDF/A-3 keeps CSV/JSON attachments (A-2 strips them)


class ReportRenderError(Exception):
    """The PDF could not be made; nothing was written under the final name."""


@dataclass
class FetchLog:
    """Every URL the renderer asked for, and the ones refused."""

    requested: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def _fetcher_class():  # noqa: ANN202 - defined lazily so weasyprint loads only here
    from weasyprint.urls import FatalURLFetchingError, URLFetcher

    class DataOnlyFetcher(URLFetcher):
        """Allows ``data:`` URLs; any other URL stops the render."""

        def __init__(self, log: FetchLog) -> None:
            super().__init__(allowed_protocols={"data"}, allow_redirects=False, timeout=1)
            self.log = log

        def fetch(self, url: str, headers: Mapping[str, str] | None = None):  # noqa: ANN201
            self.log.requested.append(url[:200])
            if not url.startswith("data:"):
                self.log.refused.append(url[:200])
                raise FatalURLFetchingError(
                    f"report refers to {url[:200]!r}; reports may only embed data: URLs"
                )
            return super().fetch(url, headers)

    return DataOnlyFetcher


def render_pdf_bytes(
    html: str,
    attachments: Mapping[str, bytes],
    *,
    identifier: bytes,
    created: datetime,
    fetch_log: FetchLog | None = None,
) -> bytes:
    """Render ``html`` to PDF/A-3b bytes with ``attachments`` embedded under their names.

    ``identifier`` and ``created`` fix the PDF's ID and every date in it, so the same input
    gives byte-identical output.
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
    try:
        document = weasyprint.HTML(string=html, url_fetcher=fetcher, base_url=None)
        pdf = document.write_pdf(
            attachments=files,
            pdf_variant=PDF_VARIANT,
            pdf_identifier=identifier,
            uncompressed_pdf=False,
            custom_metadata=False,
        )
    except FatalURLFetchingError as exc:
        raise ReportRenderError(str(exc)) from None
    return pdf


def write_atomically(data: bytes, target: Path) -> None:
    """Write ``data`` to ``target`` through a temporary file and a rename.

    A failure (disk full, read-only folder, a kill mid-write) leaves nothing under the
    final name.
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ReportRenderError(f"output folder {folder} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ReportRenderError(f"could not write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ErrorCollector(logging.Handler):
    """Collects ERROR records of the ``weasyprint`` logger (conformance problems)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the message."""
        self.messages.append(record.getMessage())
