"""Reading a run's artifacts: small files only, after the location checks of :mod:`.paths`.

Local roots are read directly; remote roots (a tracking server's ``mlflow-artifacts:``,
cloud buckets) go through MLflow's own artifact repositories, downloading one small file at a
time into a temporary folder. Nothing is ever loaded as a model or unpickled.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from runreview.sources.base import SourceError
from runreview.sources.mlflow.paths import ArtifactRoot, check_relative_path, contained_file

#: Largest artifact runreview reads (environment files, matrices, predictions, images).
MAX_ARTIFACT_BYTES = 5 * 1024 * 1024
#: Most files listed per run; more are reported as truncated.
MAX_LISTED_FILES = 5_000
#: Deepest folder level listed below an artifact root.
MAX_LIST_DEPTH = 12

T = TypeVar("T")
#: Wraps a remote call (bounded time, clear errors); ``what`` names it for messages.
Guard = Callable[[Callable[[], T], str], T]


class ArtifactTooLarge(SourceError):
    """An artifact is bigger than the cap runreview reads."""


class ArtifactListing:
    """Files found under an artifact root: ``(path, size)`` pairs and whether the list stops."""

    def __init__(self) -> None:
        self.files: list[tuple[str, int | None]] = []
        self.truncated = False

    def add(self, path: str, size: int | None) -> bool:
        """Add a file; False once the cap is reached."""
        if len(self.files) >= MAX_LISTED_FILES:
            self.truncated = True
            return False
        self.files.append((path, size))
        return True

    def size_of(self, path: str) -> int | None:
        """The listed size of ``path`` (None when unknown or not listed)."""
        return next((size for p, size in self.files if p == path), None)


class ArtifactAccess(ABC):
    """Read-only access to one checked artifact root."""

    def __init__(self, root: ArtifactRoot) -> None:
        self.root = root
        self._listing: ArtifactListing | None = None

    def listing(self) -> ArtifactListing:
        """Every file under the root (capped at :data:`MAX_LISTED_FILES`), listed once."""
        if self._listing is None:
            self._listing = self._list()
        return self._listing

    @abstractmethod
    def _list(self) -> ArtifactListing: ...

    @abstractmethod
    def read_bytes(self, path: str, cap: int = MAX_ARTIFACT_BYTES) -> bytes:
        """The content of one file; :class:`ArtifactTooLarge` above ``cap`` bytes."""

    def read_text(self, path: str, cap: int = MAX_ARTIFACT_BYTES) -> str:
        """The content of one file as text (invalid UTF-8 replaced)."""
        return self.read_bytes(path, cap).decode("utf-8", errors="replace")


class LocalArtifacts(ArtifactAccess):
    """Artifacts in a folder on this machine."""

    def __init__(self, root: ArtifactRoot) -> None:
        super().__init__(root)
        if root.local_path is None:
            raise ValueError(f"{root.uri!r} is not a local artifact root")
        self.path = root.local_path

    def exists(self) -> bool:
        """True when the artifact folder is there."""
        return self.path.is_dir()

    def _list(self) -> ArtifactListing:
        listing = ArtifactListing()
        if not self.path.is_dir():
            return listing
        base_depth = len(self.path.parts)
        for folder, dirs, files in os.walk(self.path, followlinks=False):
            here = Path(folder)
            if len(here.parts) - base_depth >= MAX_LIST_DEPTH:
                dirs[:] = []
            dirs.sort()
            for name in sorted(files):
                full = here / name
                if full.is_symlink():
                    continue  # never follow links out of (or around) the run's folder
                rel = full.relative_to(self.path).as_posix()
                if not listing.add(rel, full.stat().st_size):
                    return listing
        return listing

    def read_bytes(self, path: str, cap: int = MAX_ARTIFACT_BYTES) -> bytes:
        """The content of ``path``; refused when it escapes the root or exceeds ``cap``."""
        full = contained_file(self.path, path)
        size = full.stat().st_size
        if size > cap:
            raise ArtifactTooLarge(f"artifact {path!r} is {size} bytes (cap {cap}); not read")
        with full.open("rb") as handle:
            return handle.read(cap + 1)[:cap]


class RepositoryArtifacts(ArtifactAccess):
    """Artifacts behind MLflow's artifact repositories (tracking server proxy, buckets)."""

    def __init__(self, root: ArtifactRoot, tracking_uri: str, guard: Guard) -> None:
        super().__init__(root)
        self._tracking_uri = tracking_uri
        self._guard = guard
        self._repo: Any = None

    def _repository(self) -> Any:
        if self._repo is None:
            from mlflow.store.artifact.artifact_repository_registry import (
                get_artifact_repository,
            )

            self._repo = get_artifact_repository(self.root.uri, tracking_uri=self._tracking_uri)
        return self._repo

    def _list(self) -> ArtifactListing:
        listing = ArtifactListing()
        pending: list[tuple[str | None, int]] = [(None, 0)]
        while pending and not listing.truncated:
            folder, depth = pending.pop(0)
            entries = self._guard(
                lambda f=folder: self._repository().list_artifacts(f), "artifact listing"
            )
            for entry in sorted(entries, key=lambda e: e.path):
                path = check_relative_path(entry.path)
                if entry.is_dir:
                    if depth + 1 < MAX_LIST_DEPTH:
                        pending.append((path, depth + 1))
                elif not listing.add(path, entry.file_size):
                    break
        return listing

    def read_bytes(self, path: str, cap: int = MAX_ARTIFACT_BYTES) -> bytes:
        """Download ``path`` alone into a temporary folder and read it (size checked first)."""
        safe = check_relative_path(path)
        size = self.listing().size_of(safe)
        if size is not None and size > cap:
            raise ArtifactTooLarge(f"artifact {safe!r} is {size} bytes (cap {cap}); not read")
        with tempfile.TemporaryDirectory(prefix="runreview-artifact-") as tmp:
            local = self._guard(
                lambda: self._repository().download_artifacts(safe, dst_path=tmp),
                f"artifact {safe}",
            )
            full = contained_file(Path(tmp), os.path.relpath(local, tmp))
            if full.stat().st_size > cap:
                raise ArtifactTooLarge(f"artifact {safe!r} is larger than {cap} bytes; not read")
            return full.read_bytes()
