"""A workspace: several sources read together into one set of contract frames.

Reads take a ``progress(message, fraction)`` callback (:mod:`runreview.progress`): each
source gets an equal share of 0..1 and reports within it as finely as it can (TensorBoard
logdirs per so many directories listed and runs read). What the callback raises stops
the read and propagates: that is how a caller cancels a long load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import pandas as pd

from runreview.contract import (
    ConfusionData,
    Environment,
    Finding,
    FindingKind,
    Severity,
    empty_history,
    empty_runs,
    normalise_history,
    order_run_columns,
)
from runreview.progress import Progress, no_progress, scaled
from runreview.redact import redact_uri
from runreview.sources.base import Source, SourceError

T = TypeVar("T")


@dataclass
class Workspace:
    """The sources a user asked for, read together.

    Sources that could not be opened are kept as findings (``open_errors``) so that one
    missing store never hides the others; call :meth:`raise_for_errors` to make them fatal,
    or read through :meth:`checked` to make any source problem fatal.
    """

    sources: list[Source] = field(default_factory=list)
    open_errors: list[Finding] = field(default_factory=list)
    read_errors: list[Finding] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        tracking_uris: Iterable[str] = (),
        logdirs: Iterable[str] = (),
        wandb_dirs: Iterable[str] = (),
        **options: object,
    ) -> Workspace:
        """Open every tracking URI, logdir and W&B folder; failures become ``open_errors``."""
        from runreview.sources import open_logdir, open_source, open_wandb_dir

        ws = cls()
        for location, opener in (
            [(u, open_source) for u in tracking_uris]
            + [(d, open_logdir) for d in logdirs]
            + [(w, open_wandb_dir) for w in wandb_dirs]
        ):
            try:
                ws.sources.append(opener(location, **options))
            except SourceError as exc:
                ws.open_errors.append(_source_finding(location, exc))
        return ws

    def raise_for_errors(self) -> None:
        """Raise :class:`SourceError` for the first source that could not be opened."""
        if self.open_errors:
            raise SourceError(self.open_errors[0].message)

    def checked(self, read: Callable[[Workspace], T]) -> T:
        """``read(self)``, all or nothing: raises :class:`SourceError` for the first source
        that could not be opened (before reading), then for the first source that could not
        be read (after). Problems inside a source that did not stop it stay findings."""
        self.raise_for_errors()
        result = read(self)
        if self.read_errors:
            raise SourceError(self.read_errors[0].message)
        return result

    def runs(
        self, experiments: Sequence[str] | None = None, progress: Progress = no_progress
    ) -> pd.DataFrame:
        """The runs of every source in one frame (contract column order)."""
        frames = []
        for i, source in enumerate(self.sources):
            part = self._share(progress, i)
            part(f"Reading runs from {source.uri}", 0.0)
            frame = self._read(source, lambda s, p=part: s.read_runs(experiments, progress=p))
            if frame is not None and not frame.empty:
                frames.append(frame)
        progress("Runs read", 1.0)
        if not frames:
            return empty_runs()
        return order_run_columns(pd.concat(frames, ignore_index=True, sort=False))

    def history(
        self,
        metrics: Sequence[str] | None = None,
        run_ids: Sequence[str] | None = None,
        progress: Progress = no_progress,
    ) -> pd.DataFrame:
        """Every logged point of every source, optionally narrowed."""
        frames = []
        for i, source in enumerate(self.sources):
            part = self._share(progress, i)
            part(f"Reading history from {source.uri}", 0.0)
            frame = self._read(
                source, lambda s, p=part: s.read_history(metrics, run_ids, progress=p)
            )
            if frame is not None and not frame.empty:
                frames.append(frame)
        progress("History read", 1.0)
        if not frames:
            return empty_history()
        return normalise_history(pd.concat(frames, ignore_index=True))

    def _share(self, progress: Progress, index: int) -> Progress:
        """``progress`` for source ``index``: its equal share of 0..1."""
        count = max(1, len(self.sources))
        return scaled(progress, index / count, (index + 1) / count)

    def source(self, source_uri: str) -> Source:
        """The source whose (redacted) URI is ``source_uri``."""
        for source in self.sources:
            if source.uri == source_uri:
                return source
        raise KeyError(f"no open source {source_uri!r}")

    def environment(self, source_uri: str, run_id: str) -> Environment:
        """The environment record of one run."""
        return self.source(source_uri).read_environment(run_id)

    def confusion(self, source_uri: str, run_id: str) -> list[ConfusionData]:
        """The confusion matrices of one run."""
        return self.source(source_uri).read_confusion(run_id)

    def findings(self) -> list[Finding]:
        """Every problem met so far: sources not opened, failed reads, damaged items."""
        found = list(self.open_errors) + list(self.read_errors)
        for source in self.sources:
            found.extend(source.findings)
        return found

    def _read(self, source: Source, read: Callable[[Source], pd.DataFrame]) -> pd.DataFrame | None:
        try:
            return read(source)
        except SourceError as exc:
            finding = _source_finding(source.uri, exc)
            if finding not in self.read_errors:
                self.read_errors.append(finding)
            return None

    def close(self) -> None:
        """Close every source."""
        for source in self.sources:
            source.close()


def _source_finding(location: str, exc: Exception) -> Finding:
    return Finding(
        severity=Severity.ERROR,
        source_uri=redact_uri(location),
        message=str(exc),
        kind=FindingKind.SOURCE,
    )


def load_runs(
    tracking_uris: Iterable[str] = (),
    logdirs: Iterable[str] = (),
    experiments: Sequence[str] | None = None,
    wandb_dirs: Iterable[str] = (),
    progress: Progress = no_progress,
) -> pd.DataFrame:
    """The runs frame of every given MLflow store, TensorBoard logdir and W&B folder.

    Raises :class:`SourceError` when a source cannot be opened or read. Problems inside a
    source that did not stop it (damaged files, unreadable runs) are listed in
    ``frame.attrs["findings"]`` as dicts. ``progress(message, fraction)`` hears how far
    the read got; raise from it to stop the read (the exception propagates).
    """
    ws = Workspace.open(tracking_uris, logdirs, wandb_dirs)
    frame = ws.checked(lambda w: w.runs(experiments, progress))
    frame.attrs["findings"] = [f.to_dict() for f in ws.findings()]
    return frame


def load_history(
    tracking_uris: Iterable[str] = (),
    logdirs: Iterable[str] = (),
    metrics: Sequence[str] | None = None,
    run_ids: Sequence[str] | None = None,
    wandb_dirs: Iterable[str] = (),
    progress: Progress = no_progress,
) -> pd.DataFrame:
    """The history frame (every logged point) of the given sources, optionally narrowed;
    ``progress`` as for :func:`load_runs`."""
    ws = Workspace.open(tracking_uris, logdirs, wandb_dirs)
    frame = ws.checked(lambda w: w.history(metrics, run_ids, progress))
    frame.attrs["findings"] = [f.to_dict() for f in ws.findings()]
    return frame
