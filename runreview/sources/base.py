"""The abstract store contract every source implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import ClassVar

import pandas as pd

from runreview.contract import ConfusionData, Environment, Finding
from runreview.progress import Progress


class SourceError(Exception):
    """A source cannot be opened or read at all. The message says what to do.

    Messages never contain credentials: sources build them from the redacted URI.
    """


class Source(ABC):
    """One place runs live: an MLflow tracking store, a TensorBoard logdir or a folder of
    W&B run folders.

    Sources are read-only: they never create, migrate or write a store. Reading methods
    return the contract frames (see ``runreview.contract``); problems that do not stop the
    whole source are collected as findings instead of raised.
    """

    #: ``"mlflow"``, ``"tensorboard"`` or ``"wandb"``.
    kind: str
    #: The location with credentials removed; safe to show, log and hash.
    uri: str
    #: The keyword options of the constructor. ``open_source`` and the other openers pass
    #: a source only these, so one set of options can be given to every source.
    options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self._findings: list[Finding] = []

    @property
    def findings(self) -> list[Finding]:
        """Problems met so far (damaged files, unreadable runs, skipped items)."""
        return list(self._findings)

    def add_finding(self, finding: Finding) -> None:
        """Record a problem, once."""
        if finding not in self._findings:
            self._findings.append(finding)

    @abstractmethod
    def read_runs(
        self, experiments: Iterable[str] | None = None, *, progress: Progress | None = None
    ) -> pd.DataFrame:
        """The runs frame; ``experiments`` filters by experiment name.

        ``progress(message, fraction)``, when given, may be called during the read; what
        it raises stops the read and propagates (see :mod:`runreview.progress`). Sources
        that read in one step never call it.
        """

    @abstractmethod
    def read_history(
        self,
        metrics: Iterable[str] | None = None,
        run_ids: Iterable[str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> pd.DataFrame:
        """The history frame (every logged point), optionally narrowed; ``progress`` as
        for :meth:`read_runs`."""

    @abstractmethod
    def read_environment(self, run_id: str) -> Environment:
        """The environment record of one run (empty when nothing was recorded)."""

    @abstractmethod
    def read_confusion(self, run_id: str) -> list[ConfusionData]:
        """The confusion matrices of one run (possibly none)."""

    def read_run_details(self, run_id: str) -> dict:
        """Extras for the audit report (user, dataset inputs, model versions, artifacts).

        Sources that record none return an empty dict.
        """
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release anything held open."""
