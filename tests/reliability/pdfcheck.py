"""Reading reports back: poppler's text, pypdf's attachments and metadata, HTML structure."""

from __future__ import annotations

import json
import subprocess
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from runreview.reports.manifest import MANIFEST_NAME

PRODUCT_ATTACHMENTS = {"runs.csv", "history.csv", "findings.json", MANIFEST_NAME}


def pdftotext(pdf: bytes | Path) -> str:
    """The PDF's text as poppler extracts it, in drawing order (a wrapped cell stays whole)."""
    data = pdf.read_bytes() if isinstance(pdf, Path) else pdf
    out = subprocess.run(
        ["pdftotext", "-raw", "-", "-"], input=data, capture_output=True, check=True
    )
    return out.stdout.decode("utf-8")


def squash(text: str) -> str:
    """``text`` without any whitespace (pdftotext wraps long cells)."""
    return "".join(text.split())


def reader(pdf: bytes | Path) -> PdfReader:
    """A pypdf reader of ``pdf``."""
    return PdfReader(str(pdf)) if isinstance(pdf, Path) else PdfReader(BytesIO(pdf))


def attachments(pdf: bytes | Path) -> dict[str, bytes]:
    """Every embedded file, by name."""
    return {name: data[0] for name, data in reader(pdf).attachments.items()}


def _names_tree(pdf: bytes | Path) -> list[Any]:
    names = reader(pdf).trailer["/Root"].get("/Names")
    if names is None or "/EmbeddedFiles" not in names:
        return []
    return list(names["/EmbeddedFiles"]["/Names"])


def embedded_specs(pdf: bytes | Path) -> dict[str, Any]:
    """The file specifications of the /EmbeddedFiles name tree, by name (data or not)."""
    tree = _names_tree(pdf)
    return {str(tree[i]): tree[i + 1].get_object() for i in range(0, len(tree), 2)}


def embedded_ids(pdf: bytes | Path) -> set[int]:
    """Object numbers of the file specifications in /EmbeddedFiles."""
    tree = _names_tree(pdf)
    return {tree[i + 1].idnum for i in range(0, len(tree), 2)}


def manifest(pdf: bytes | Path) -> dict[str, Any]:
    """The embedded manifest.json."""
    return json.loads(attachments(pdf)[MANIFEST_NAME])


def file_attachment_annotations(pdf: bytes | Path) -> int:
    """Count of /FileAttachment annotations on all pages (another way to embed a file)."""
    count = 0
    for page in reader(pdf).pages:
        for annot in page.get("/Annots") or []:
            if annot.get_object().get("/Subtype") == "/FileAttachment":
                count += 1
    return count


def fonts(pdf: bytes | Path) -> dict[str, bool]:
    """Every font used on any page or inside form XObjects (charts): BaseFont -> embedded."""
    found: dict[str, bool] = {}
    seen: set[int] = set()

    def walk(resources: Any) -> None:
        resources = resources.get_object() if resources is not None else None
        if not resources or id(resources) in seen:
            return
        seen.add(id(resources))
        for font in (resources.get("/Font") or {}).values():
            font = font.get_object()
            found[str(font.get("/BaseFont"))] = _embedded(font)
        for xobject in (resources.get("/XObject") or {}).values():
            xobject = xobject.get_object()
            if xobject.get("/Subtype") == "/Form":
                walk(xobject.get("/Resources"))

    for page in reader(pdf).pages:
        walk(page.get("/Resources"))
    return found


def _embedded(font: Any) -> bool:
    if font.get("/Subtype") == "/Type3":
        return True  # glyphs are drawn by content streams inside the PDF
    descriptor = font.get("/FontDescriptor")
    if descriptor is None and "/DescendantFonts" in font:
        descriptor = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
    if descriptor is None:
        return False
    descriptor = descriptor.get_object()
    return any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))


class TableShape(HTMLParser):
    """Tables (their row counts, in document order), the number of <div>s and the text of
    every <h1>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[int] = []
        self.divs = 0
        self.open_tables: list[int] = []
        self.h1: list[str] = []
        self._in_h1 = False
        self.unclosed: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Count tables and rows."""
        if tag == "table":
            self.tables.append(0)
            self.open_tables.append(len(self.tables) - 1)
        elif tag == "tr" and self.open_tables:
            self.tables[self.open_tables[-1]] += 1
        elif tag == "div":
            self.divs += 1
        elif tag == "h1":
            self._in_h1 = True
            self.h1.append("")

    def handle_endtag(self, tag: str) -> None:
        """Close tables and headings."""
        if tag == "table":
            if not self.open_tables:
                self.unclosed.append("extra </table>")
            else:
                self.open_tables.pop()
        elif tag == "h1":
            self._in_h1 = False

    def handle_data(self, data: str) -> None:
        """Collect heading text."""
        if self._in_h1:
            self.h1[-1] += data


def table_shape(html: str) -> TableShape:
    """Parse ``html`` into a :class:`TableShape`."""
    shape = TableShape()
    shape.feed(html)
    shape.close()
    return shape
