"""The manifest embedded in every report, and ``verify``: checking a PDF against it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = "runreview.report-manifest/1"
LIBRARIES = (
    "mlflow", "pandas", "numpy", "scikit-learn", "altair", "vl-convert-python",
    "weasyprint", "jinja2", "tensorboard", "protobuf", "streamlit",
)  # fmt: skip


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` as hex."""
    return hashlib.sha256(data).hexdigest()


def library_versions() -> dict[str, str]:
    """Installed versions of runreview and the libraries that shape a report."""
    versions = {}
    for name in ("runreview", *LIBRARIES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def snapshot_hash(data_files: Mapping[str, bytes]) -> str:
    """One hash over the data a report shows (names and contents of its data files)."""
    lines = "".join(f"{name}:{sha256_hex(data)}\n" for name, data in sorted(data_files.items()))
    return sha256_hex(lines.encode())


def build_manifest(
    data_files: Mapping[str, bytes], report: Mapping[str, Any], scope: Mapping[str, Any]
) -> dict[str, Any]:
    """The manifest: report, scope (no credentials), versions and a hash of every file."""
    return {
        "schema": MANIFEST_SCHEMA,
        "report": dict(report),
        "scope": dict(scope),
        "versions": library_versions(),
        "attachments": {
            name: {"sha256": sha256_hex(data), "bytes": len(data)}
            for name, data in sorted(data_files.items())
        },
        "snapshot_sha256": snapshot_hash(data_files),
    }


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """Canonical JSON (sorted keys, UTF-8) so the same manifest gives the same bytes."""
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


@dataclass
class Verification:
    """The result of checking a PDF against its manifest."""

    path: str
    problems: list[str]
    checked: list[str]
    manifest: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        """True when every attachment matches the manifest."""
        return not self.problems


def verify_pdf(path: str | Path) -> Verification:
    """Check every attachment of the PDF at ``path`` against its embedded manifest."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        attachments = {k: v[0] for k, v in PdfReader(str(path)).attachments.items()}
    except (OSError, PdfReadError, ValueError) as exc:
        return Verification(str(path), [f"cannot read PDF: {exc}"], [], None)
    if MANIFEST_NAME not in attachments:
        return Verification(str(path), [f"no {MANIFEST_NAME} attached"], [], None)
    try:
        manifest = json.loads(attachments.pop(MANIFEST_NAME))
    except ValueError as exc:
        return Verification(str(path), [f"{MANIFEST_NAME} is not valid JSON: {exc}"], [], None)
    problems, checked = _compare(manifest.get("attachments", {}), attachments)
    if snapshot_hash(attachments) != manifest.get("snapshot_sha256"):
        problems.append("snapshot_sha256 does not match the attached data")
    return Verification(str(path), problems, checked, manifest)


def _compare(
    expected: Mapping[str, Any], found: Mapping[str, bytes]
) -> tuple[list[str], list[str]]:
    problems, checked = [], []
    for name, entry in sorted(expected.items()):
        if name not in found:
            problems.append(f"{name}: listed in the manifest but not attached")
        elif sha256_hex(found[name]) != entry.get("sha256"):
            problems.append(
                f"{name}: SHA-256 {sha256_hex(found[name])} differs from the manifest's "
                f"{entry.get('sha256')}"
            )
        else:
            checked.append(name)
    problems += [
        f"{name}: attached but not in the manifest"
        for name in sorted(found)
        if name not in expected
    ]
    return problems, checked
