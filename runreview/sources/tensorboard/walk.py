"""Listing a TensorBoard logdir: which directories are runs and which files are theirs.

A run is any directory (at any depth below the logdir) holding files whose name contains
``tfevents``; its id is the directory relative to the logdir (``"."`` for the logdir
itself). The walk follows symlinks but never enters a directory twice, and every entry it
cannot use (dangling or looping links, unreadable directories, names that are not UTF-8,
special files named like event files) becomes a finding instead of an exception.

A walk can report progress (directories listed, runs found, and an estimate of the share
of the tree done: each directory stands for an equal part of its parent's share); a
callback that raises stops the walk between two directories.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from runreview.contract import Finding, FindingKind, Severity
from runreview.progress import Progress, Ticker, no_progress

EVENT_FILE_MARKER = "tfevents"


@dataclass
class Listing:
    """Event files per run id, and what went wrong while listing."""

    runs: dict[str, list[str]]
    findings: list[Finding]


class Walker:
    """An ``os.scandir`` walk that follows symlinks but never enters a directory twice."""

    def __init__(self, root: str, uri: str, progress: Progress = no_progress):
        """Walk below ``root``; findings name ``uri``; ``progress`` hears how far it got."""
        self.root = root
        self.uri = uri
        self.progress = progress
        self.seen: set[tuple[int, int]] = set()
        self.findings: list[Finding] = []

    def finding(self, severity: Severity, kind: FindingKind, path: str, message: str) -> Finding:
        """A finding about ``path``."""
        return Finding(severity, self.uri, message, path=path, kind=kind)

    def walk(self, start: str = ".", recursive: bool = True) -> Listing:
        """The runs at or below ``start`` (only ``start`` itself unless ``recursive``)."""
        runs: dict[str, list[str]] = {}
        stack = [(start, 0.0, 1.0)]  # directory, and its share of the walk: [lo, lo + width)
        ticker = Ticker()
        listed = 0
        while stack:
            rel, lo, width = stack.pop()
            files, subdirs = self._list(rel)
            listed += 1
            if files:
                runs[rel] = files
            if recursive and subdirs:
                part = width / len(subdirs)
                shares = [(d, lo + i * part, part) for i, d in enumerate(subdirs)]
                stack.extend(reversed(shares))
            if ticker.due() or not stack:
                self._report(listed, len(runs), lo)
        return Listing(dict(sorted(runs.items())), self.findings)

    def _report(self, listed: int, runs: int, fraction: float) -> None:
        self.progress(f"Listing {self.root}: {listed:,} directories, {runs:,} runs found", fraction)

    def _abs(self, rel: str) -> str:
        return self.root if rel == "." else os.path.join(self.root, *rel.split("/"))

    def _list(self, rel: str) -> tuple[list[str], list[str]]:
        path = self._abs(rel)
        entries = self._scandir(path)
        files: list[str] = []
        subdirs: list[str] = []
        for entry in entries:
            if not is_utf8(entry.name):
                self._not_utf8(entry)
                continue
            kind = self._kind(entry)
            child = entry.name if rel == "." else f"{rel}/{entry.name}"
            if kind == "dir":
                self._note_dir_named_like_file(entry)
                subdirs.append(child)
            elif kind == "file" and EVENT_FILE_MARKER in entry.name:
                files.append(entry.path)
        return files, subdirs

    def _scandir(self, path: str) -> list[os.DirEntry[str]]:
        try:
            st = os.stat(path)
            key = (st.st_dev, st.st_ino)
            if key in self.seen:
                self.findings.append(
                    self.finding(
                        Severity.WARNING,
                        FindingKind.SYMLINK,
                        path,
                        "directory already visited through another path (symlink loop or "
                        "duplicate link): skipped",
                    )
                )
                return []
            self.seen.add(key)
            with os.scandir(path) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.findings.append(
                self.finding(
                    Severity.ERROR, FindingKind.WALK, path, f"cannot list: {reason_of(exc)}"
                )
            )
            return []

    def _kind(self, entry: os.DirEntry[str]) -> str | None:
        try:
            if entry.is_dir():
                return "dir"
            if entry.is_file():
                return "file"
        except OSError as exc:
            self._bad_link(entry, exc)
            return None
        if entry.is_symlink():
            try:
                os.stat(entry.path)
            except OSError as exc:
                self._bad_link(entry, exc)
            return None
        if EVENT_FILE_MARKER in entry.name:
            self.findings.append(
                self.finding(
                    Severity.WARNING,
                    FindingKind.WALK,
                    entry.path,
                    "named like an event file but not a regular file: not read",
                )
            )
        return None

    def _not_utf8(self, entry: os.DirEntry[str]) -> None:
        message = "name is not valid UTF-8: skipped (rename it to read it)"
        shown = os.fsencode(entry.path).decode("utf-8", errors="backslashreplace")
        self.findings.append(self.finding(Severity.WARNING, FindingKind.WALK, shown, message))

    def _bad_link(self, entry: os.DirEntry[str], exc: OSError) -> None:
        if isinstance(exc, FileNotFoundError):
            message = "dangling symlink (its target does not exist): skipped"
        elif exc.errno == 40:  # ELOOP
            message = "symlink loop: skipped"
        else:
            message = f"cannot follow: {reason_of(exc)}"
        self.findings.append(
            self.finding(Severity.WARNING, FindingKind.SYMLINK, entry.path, message)
        )

    def _note_dir_named_like_file(self, entry: os.DirEntry[str]) -> None:
        if EVENT_FILE_MARKER in entry.name:
            self.findings.append(
                self.finding(
                    Severity.INFO,
                    FindingKind.WALK,
                    entry.path,
                    "a directory named like an event file: not an event file (its contents "
                    "are walked like any directory)",
                )
            )


def is_utf8(name: str) -> bool:
    """False for names holding undecodable bytes (surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in a file name (surrogate escapes)
        return False
    return True


def as_names(items: Iterable[str] | str) -> list[str]:
    """``items`` as a list; a single string is one name, not its characters."""
    return [items] if isinstance(items, str) else list(items)


def reason_of(exc: OSError) -> str:
    """The OS's words for ``exc`` (e.g. "Permission denied")."""
    return exc.strerror or type(exc).__name__
