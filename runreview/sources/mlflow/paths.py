"""Artifact locations a run claims, checked before any filesystem or network access (B18).

A store's contents are not trusted: a run's ``artifact_uri`` may say ``file:///etc``,
``../../..``, ``%2e%2e%2f``, ``mlflow-artifacts:/x#/../../etc`` or a UNC path. These checks
mirror MLflow's ``validate_path_is_safe`` (decode first, then reject ``#``, ``..``, absolute
paths and alternative separators) and add one rule of our own: a local artifact root must lie
inside its experiment's artifact location and outside the system folders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import unquote, urlsplit

from runreview.redact import redact_uri
from runreview.sources.base import SourceError

#: Artifact schemes handed to MLflow's artifact repositories (never opened by runreview).
REMOTE_SCHEMES = frozenset(
    {"mlflow-artifacts", "http", "https", "s3", "gs", "wasbs", "abfss", "hdfs", "dbfs", "oss"}
)
#: Local roots refused even when the store says so.
SYSTEM_DIRS = tuple(
    Path(p) for p in ("/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/run", "/var/run")
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_DECODE_ROUNDS = 4


class UnsafeArtifactPath(SourceError):
    """An artifact location or path was refused before it was touched."""


@dataclass(frozen=True)
class ArtifactRoot:
    """A checked artifact root: a local folder, or a URI for MLflow's artifact repositories."""

    uri: str
    local_path: Path | None = None

    @property
    def is_local(self) -> bool:
        """True when the root is a folder on this machine."""
        return self.local_path is not None


def decode(text: str) -> str:
    """``text`` percent-decoded until it no longer changes (``%252e`` becomes ``.``)."""
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = unquote(text)
        if decoded == text:
            return decoded
        text = decoded
    return text


def check_relative_path(path: str) -> str:
    """``path`` (inside an artifact root) if safe to join, else :class:`UnsafeArtifactPath`."""
    decoded = decode(path)
    _reject_characters(path, decoded)
    if PurePosixPath(decoded).is_absolute() or PureWindowsPath(decoded).is_absolute():
        raise UnsafeArtifactPath(f"artifact path {_shown(path)} is absolute; refused")
    if ".." in decoded.split("/"):
        raise UnsafeArtifactPath(f"artifact path {_shown(path)} climbs out with '..'; refused")
    return decoded.strip("/")


def check_artifact_root(uri: str, trusted_root: str | None) -> ArtifactRoot:
    """Check a run's (or logged model's) artifact location against its experiment's.

    ``trusted_root`` is the experiment's artifact location. Local roots must lie inside it
    (after resolving symlinks) and outside :data:`SYSTEM_DIRS`; remote roots must use one of
    :data:`REMOTE_SCHEMES` and start with it when it is remote too.
    """
    if not uri:
        raise UnsafeArtifactPath("the run has no artifact location")
    decoded = decode(uri)
    _reject_characters(uri, decoded)
    if ".." in decoded.split("/"):
        raise UnsafeArtifactPath(f"artifact location {_shown(uri)} climbs out with '..'; refused")
    local = local_path_of(decoded)
    if local is not None:
        return ArtifactRoot(uri=uri, local_path=_check_local_root(local, uri, trusted_root))
    scheme = urlsplit(decoded).scheme.lower()
    if scheme not in REMOTE_SCHEMES:
        raise UnsafeArtifactPath(
            f"artifact location {_shown(uri)} uses an unsupported scheme {scheme!r}; refused"
        )
    if trusted_root and local_path_of(decode(trusted_root)) is None:
        root = decode(trusted_root).rstrip("/")
        if decoded.rstrip("/") != root and not decoded.startswith(root + "/"):
            raise UnsafeArtifactPath(
                f"artifact location {_shown(uri)} is outside its experiment's artifact root "
                f"{_shown(trusted_root)}; refused"
            )
    return ArtifactRoot(uri=uri)


def local_path_of(location: str) -> Path | None:
    """The local path of a ``file:`` URI or plain path, or None for other schemes."""
    parts = urlsplit(location)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise UnsafeArtifactPath(f"artifact location {_shown(location)} names a remote host")
        return Path(parts.path)
    if len(parts.scheme) <= 1:  # a plain path (or a Windows drive letter)
        return Path(location)
    return None


def contained_file(root: Path, relative: str) -> Path:
    """``root / relative`` after checking the path, symlinks resolved, stays inside ``root``."""
    target = root / check_relative_path(relative)
    real_root = root.resolve()
    real = target.resolve()
    if real != real_root and not real.is_relative_to(real_root):
        raise UnsafeArtifactPath(f"artifact {_shown(relative)} resolves outside its run's folder")
    return real


def _check_local_root(path: Path, uri: str, trusted_root: str | None) -> Path:
    if not path.is_absolute():
        raise UnsafeArtifactPath(f"artifact location {_shown(uri)} is a relative path; refused")
    real = path.resolve()
    if real == Path("/") or any(real == d or real.is_relative_to(d) for d in SYSTEM_DIRS):
        raise UnsafeArtifactPath(f"artifact location {_shown(uri)} is a system folder; refused")
    if not trusted_root:
        raise UnsafeArtifactPath(
            f"artifact location {_shown(uri)} cannot be checked: its experiment has no "
            "artifact location; refused"
        )
    trusted = local_path_of(decode(trusted_root))
    if trusted is None or not trusted.is_absolute():
        raise UnsafeArtifactPath(
            f"artifact location {_shown(uri)} is local but its experiment's root "
            f"{_shown(trusted_root)} is not; refused"
        )
    real_trusted = trusted.resolve()
    if real != real_trusted and not real.is_relative_to(real_trusted):
        raise UnsafeArtifactPath(
            f"artifact location {_shown(uri)} is outside its experiment's artifact root "
            f"{_shown(trusted_root)}; refused"
        )
    return real


def _reject_characters(raw: str, decoded: str) -> None:
    for text in (raw, decoded):
        if _CONTROL.search(text):
            raise UnsafeArtifactPath(f"artifact location {_shown(raw)} holds control characters")
        if "#" in text:
            raise UnsafeArtifactPath(f"artifact location {_shown(raw)} holds '#'; refused")
        if "\\" in text:
            raise UnsafeArtifactPath(f"artifact location {_shown(raw)} holds a backslash; refused")


def _shown(text: str) -> str:
    """``text`` quoted for a message: credentials removed, control characters escaped."""
    cleaned = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", redact_uri(text))
    if len(cleaned) > 200:
        cleaned = cleaned[:200] + "..."
    return repr(cleaned)
