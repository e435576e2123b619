"""Weights & Biases run folders as a runreview source, read in place without wandb.

Give the folder a training script's ``wandb/`` directory, or any folder above run folders
(``run-YYYYMMDD_HHMMSS-<id>/`` or ``offline-run-...``). Every run is read from its binary
``run-<id>.wandb`` file (:mod:`.framing`, :mod:`.records`), written by the
legacy Python backend (before 0.18) or wandb-core (0.18 and later); side files come from
``files/`` (:mod:`.sidefiles`).

The contract frames:

- ``source`` ``"wandb"``, ``source_uri`` the folder as an absolute path, ``run_id`` the W&B
  run id, ``experiment`` the project (``"uncategorized"`` when none was set, as W&B does),
  ``run_name`` the display name (else the id);
- ``params.<key>``: the config, nested dicts flattened with dots (``optimizer.lr``), whole
  numbers without ``.0`` (wandb-core writes ``1.0`` as ``1``, so the two are not told
  apart), lists as JSON; W&B's own ``_wandb`` entry is left out;
- ``metrics.<key>``: every numeric summary value (the last logged value unless the script
  set it), booleans as 0/1; W&B's ``_step``, ``_runtime``, ``_timestamp`` are left out;
- ``tags.wandb.tags`` (the run's tags, comma separated), ``tags.wandb.notes``,
  ``tags.wandb.group``, ``tags.wandb.job_type``, ``tags.wandb.entity``,
  ``tags.wandb.sweep_id``, ``tags.wandb.host``, ``tags.wandb.version`` (the writer's wandb
  version) and ``tags.wandb.folders`` (the run folders read), each when set;
- ``status``: from the exit record: exit code 0 FINISHED, 255 (W&B's code for a
  KeyboardInterrupt) KILLED, any other FAILED. Without an exit record: RUNNING while the
  file changed in the last :data:`LIVE_SECONDS`, else UNKNOWN (with a warning: the run was
  killed or crashed);
- ``start_time`` from the run record; ``end_time`` (runs with an exit record only) the
  latest of the last history ``_timestamp``, the last system-metrics sample and start plus
  the exit record's runtime;
- history: every numeric value of every ``run.log`` call (dict values flattened with
  dots, booleans as 0/1) at its ``_step``, timestamped by its ``_timestamp``. Strings,
  media and other values are counted per key in an info finding. System metrics are not
  part of the history.

A run resumed offline leaves a second folder with the same id: the folders are merged
into one run, in the order they were written (config and summary updated in turn,
history concatenated, status and end from the last) with an info finding
"resumed in <folder>" (which also says when steps start again lower).

Files are parsed in the ``read_*`` methods, never in the constructor, and kept in memory
per file keyed by (inode, size, mtime): an unchanged file is not read again, a grown one
is read from where the last read stopped, a shrunk or replaced one again from the start
(with a warning).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

import pandas as pd

from runreview.contract import (
    CONFUSION_FILE,
    SOURCE_WANDB,
    ConfusionData,
    Environment,
    Finding,
    FindingKind,
    Severity,
    empty_runs,
)
from runreview.progress import Progress
from runreview.sources.base import Source, SourceError
from runreview.sources.sidefiles import read_json_side_file, read_side_file
from runreview.sources.wandb import sidefiles as side
from runreview.sources.wandb.frames import DEFAULT_PROJECT, history_frame, run_row, runs_frame
from runreview.sources.wandb.framing import scan_log
from runreview.sources.wandb.runs import RUN_FOLDER, FileState, list_run_folders, log_name

__all__ = ["LIVE_SECONDS", "WandbSource", "is_wandb_dir"]

#: A run without an exit record is RUNNING while its file changed this recently.
LIVE_SECONDS = 300.0
HEAD_BYTES = 64
_log = logging.getLogger(__name__)


def is_wandb_dir(path: str) -> bool:
    """True when ``path`` is a W&B run folder or directly holds run folders (a cheap
    listing of one directory)."""
    if not os.path.isdir(path):
        return False
    if RUN_FOLDER.match(os.path.basename(os.path.abspath(path))):
        return True
    try:
        with os.scandir(path) as entries:
            return any(RUN_FOLDER.match(e.name) and e.is_dir() for e in entries)
    except OSError:
        return False


class WandbSource(Source):
    """A folder of W&B run folders, read in place (see the module docstring).

    Thread-safe: one instance can serve several app sessions at once.
    """

    kind = SOURCE_WANDB
    options = frozenset({"live_seconds", "clock"})

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        live_seconds: float = LIVE_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        """Open ``folder`` (nothing is read yet). Raises SourceError when it is missing."""
        super().__init__()
        self.folder = os.path.abspath(os.fspath(folder))
        self.uri = self.folder
        self.live_seconds = live_seconds
        self.clock = clock
        self._lock = threading.RLock()
        self._files: dict[str, FileState] = {}
        self._runs: dict[str, list[str]] = {}
        self._walk_findings: list[Finding] = []
        self._io_findings: dict[str, Finding] = {}
        self._check_folder()

    def _check_folder(self) -> None:
        if os.path.isdir(self.folder):
            return
        what = "is not a directory" if os.path.exists(self.folder) else "does not exist"
        raise SourceError(
            f"W&B folder {self.folder} {what}. Pass the wandb/ folder your training "
            "script wrote (or a folder above its run-*/offline-run-* folders); runreview "
            "reads it in place and never creates it."
        )

    # findings -------------------------------------------------------------------------

    @property
    def findings(self) -> list[Finding]:
        """Current problems: listing, per file (damage, tails), per run (resumes, ...)."""
        with self._lock:
            found = list(self._findings) + self._walk_findings + list(self._io_findings.values())
            for run_id, paths in self._runs.items():
                states = [self._files[p] for p in paths if p in self._files]
                for state in states:
                    found += state.all_findings()
                found += self._run_findings(run_id, states)
        return list(dict.fromkeys(found))

    def _finding(
        self, severity: Severity, kind: FindingKind, message: str, **where: object
    ) -> Finding:
        return Finding(severity, self.uri, message, kind=kind, **where)  # type: ignore[arg-type]

    def _run_findings(self, run_id: str, states: list[FileState]) -> list[Finding]:
        found = []
        for earlier, later in zip(states, states[1:], strict=False):
            message = f"resumed in {os.path.basename(later.folder)}"
            first = later.points.step[0] if len(later.points) else None
            if first is not None and len(earlier.points) and first <= max(earlier.points.step):
                message += f"; steps start again at {first} there (both segments kept)"
            found.append(
                self._finding(
                    Severity.INFO, FindingKind.RESUMED, message, path=later.path, run_id=run_id
                )
            )
        if not states:
            return found
        if all(s.info is None for s in states):
            what = (
                "the run is listed under its id, in project "
                f"{DEFAULT_PROJECT!r}, without name or start time"
                if _has_data(states)
                else "nothing else was read: the run is not listed"
            )
            found.append(
                self._finding(
                    Severity.WARNING,
                    FindingKind.NO_RUN_RECORD,
                    f"no run record could be read; {what}",
                    path=states[-1].path,
                    run_id=run_id,
                )
            )
        found += self._skipped_finding(run_id, states)
        if states[-1].exit is None and _has_data(states) and not self._live(states[-1]):
            found.append(
                self._finding(
                    Severity.WARNING,
                    FindingKind.NO_EXIT_RECORD,
                    "no exit record and the file has not changed for "
                    f"{self.live_seconds:.0f} s: the run was killed or crashed (status UNKNOWN)",
                    path=states[-1].path,
                    run_id=run_id,
                )
            )
        return found

    def _skipped_finding(self, run_id: str, states: list[FileState]) -> list[Finding]:
        skipped: dict[str, int] = {}
        for state in states:
            for key, count in state.skipped.items():
                skipped[key] = skipped.get(key, 0) + count
        if not skipped:
            return []
        names = ", ".join(f"{k} ({n})" for k, n in sorted(skipped.items()))
        message = f"logged values that are not numbers (not in the history): {names}"
        return [self._finding(Severity.INFO, FindingKind.NOT_NUMERIC, message, run_id=run_id)]

    def _live(self, state: FileState) -> bool:
        return self.clock() - state.stat_key[2] / 1e9 <= self.live_seconds

    # refreshing -----------------------------------------------------------------------

    def _refresh(self) -> None:
        self._check_folder()
        listing = list_run_folders(self.folder, self.uri)
        self._walk_findings = listing.findings
        runs = {
            run_id: [os.path.join(f, log_name(run_id)) for f in folders]
            for run_id, folders in listing.runs.items()
        }
        for run_id, paths in runs.items():
            for path in paths:
                self._update_file(path, run_id)
        live = {p for paths in runs.values() for p in paths}
        self._files = {p: s for p, s in self._files.items() if p in live}
        self._io_findings = {p: f for p, f in self._io_findings.items() if p in live}
        self._runs = runs

    def _update_file(self, path: str, run_id: str) -> None:
        old = self._files.get(path)
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                key = (st.st_ino, st.st_size, st.st_mtime_ns)
                if old is not None and old.stat_key == key:
                    return
                state, offset = self._plan(old, path, run_id, st, fh.read(HEAD_BYTES))
                fh.seek(offset)
                data = fh.read()
        except OSError as exc:
            self._io_findings[path] = self._finding(
                Severity.WARNING,
                FindingKind.IO_ERROR,
                f"cannot read: {exc.strerror or exc}"
                + (" (data read earlier is still shown)" if old is not None else ""),
                path=path,
                run_id=run_id,
            )
            return
        self._io_findings.pop(path, None)
        state.take(
            scan_log(
                data,
                base_offset=offset,
                first_index=state.next_index,
                after_corrupt=state.corrupt,
                context=state.context(),
            )
        )
        state.stat_key = (st.st_ino, offset + len(data), st.st_mtime_ns)
        self._files[path] = state

    def _plan(
        self, old: FileState | None, path: str, run_id: str, st: os.stat_result, head: bytes
    ) -> tuple[FileState, int]:
        """The state to go on with and the offset to read from."""
        if old is not None:
            grown = st.st_ino == old.stat_key[0] and st.st_size >= old.stat_key[1]
            if grown and head[: len(old.head)] == old.head:
                return old, old.next_offset
        state = FileState(path, run_id, self.uri, head=head)
        if old is not None and (st.st_size < old.stat_key[1] or st.st_ino != old.stat_key[0]):
            what = "shrank" if st.st_size < old.stat_key[1] else "was replaced"
            state.findings.append(
                self._finding(
                    Severity.WARNING,
                    FindingKind.FILE_REPLACED,
                    f"the file {what} since it was last read: data re-read from the start",
                    path=path,
                    run_id=run_id,
                )
            )
        return state, 0

    def _states(self, run_id: str) -> list[FileState]:
        return [self._files[p] for p in self._runs.get(run_id, []) if p in self._files]

    def _listed(self) -> dict[str, list[FileState]]:
        """Run id -> its file states, for runs of which anything could be read."""
        runs = {r: self._states(r) for r in sorted(self._runs)}
        return {r: s for r, s in runs.items() if _has_data(s)}

    # the contract ---------------------------------------------------------------------

    def read_runs(
        self, experiments: Iterable[str] | None = None, *, progress: Progress | None = None
    ) -> pd.DataFrame:
        """One row per W&B run (see the module docstring for the columns); ``progress``
        is not called."""
        with self._lock:
            self._refresh()
            rows = [
                run_row(run_id, states, self.uri, self._status(states))
                for run_id, states in self._listed().items()
            ]
        if experiments is not None:
            wanted = {experiments} if isinstance(experiments, str) else set(experiments)
            rows = [r for r in rows if r["experiment"] in wanted]
        return runs_frame(rows) if rows else empty_runs()

    def _status(self, states: list[FileState]) -> str | None:
        """None when the run exited (the exit code decides), else RUNNING or UNKNOWN."""
        if states[-1].exit is not None:
            return None
        return "RUNNING" if self._live(states[-1]) else "UNKNOWN"

    def read_history(
        self,
        metrics: Iterable[str] | None = None,
        run_ids: Iterable[str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> pd.DataFrame:
        """Every numeric point, optionally only of ``metrics`` and ``run_ids``.

        Rows are ordered by run id, then metric, then logging order (folders of a resumed
        run in the order they were written). ``progress`` is not called.
        """
        wanted_metrics = None if metrics is None else set(_names(metrics))
        wanted_runs = None if run_ids is None else set(_names(run_ids))
        with self._lock:
            self._refresh()
            runs = {
                r: s for r, s in self._listed().items() if wanted_runs is None or r in wanted_runs
            }
            return history_frame(runs, wanted_metrics, self.uri)

    def _known(self, run_id: str) -> list[FileState]:
        with self._lock:
            if run_id not in self._runs:
                self._refresh()
            states = self._states(run_id)
        if not states:
            raise SourceError(
                f"no W&B run {run_id!r} in {self.folder}; run ids are the 8-character ids "
                "listed by read_runs()"
            )
        return states

    def read_environment(self, run_id: str) -> Environment:
        """The environment of the run's latest folder: its environment record or
        ``files/wandb-metadata.json``, git and Python from the run record, and packages
        from ``files/requirements.txt``."""
        states = self._known(run_id)
        env = Environment(source_uri=self.uri, run_id=run_id)
        with self._lock:  # a refresh may be adding to these states
            for state in reversed(states):
                self._fill(env, state, run_id)
        return env

    def _fill(self, env: Environment, state: FileState, run_id: str) -> None:
        """Add what one run folder records (earlier values win)."""
        if state.environment:
            side.fill_environment(env, state.environment, f"{state.path} (environment)")
        meta_path = side.files_path(state.folder, side.METADATA_FILE)
        meta = self._side(read_json_side_file, meta_path, run_id)
        if isinstance(meta, dict):
            side.fill_environment(env, meta, meta_path)
        info = state.info
        if info is not None:
            git = {"commit": info.git_commit, "remote": info.git_remote}
            side.fill_environment(env, {"git": git}, f"{state.path} (run record)")
            env.set("python", info.python_version, f"{state.path} (telemetry)")
            env.set("wandb", info.cli_version or state.producer, f"{state.path} (telemetry)")
        if not env.packages:
            self._packages(env, state, run_id)

    def _packages(self, env: Environment, state: FileState, run_id: str) -> None:
        path = side.files_path(state.folder, side.REQUIREMENTS_FILE)
        raw = self._side(read_side_file, path, run_id)
        if raw:
            from runreview.sources.evidence import parse_requirements

            env.packages = parse_requirements(raw.decode("utf-8", errors="replace"))
            env.packages_origin = path

    def _side(self, read: Callable[[str], object], path: str, run_id: str) -> object | None:
        try:
            return read(path)
        except (OSError, ValueError) as exc:  # JSON and Unicode errors are ValueErrors
            self._side_problem(path, run_id, f"not read: {exc}")
            return None

    def _side_problem(self, path: str, run_id: str, message: str) -> None:
        self.add_finding(
            self._finding(
                Severity.WARNING, FindingKind.SIDE_FILE, message, path=path, run_id=run_id
            )
        )

    def read_confusion(self, run_id: str) -> list[ConfusionData]:
        """``files/confusion_matrix.json`` and the last table logged by
        ``wandb.plot.confusion_matrix`` under each key, of every folder of the run."""
        found: list[ConfusionData] = []
        for state in self._known(run_id):
            found += self._confusion_file(run_id, state)
            with self._lock:
                tables = side.confusion_tables(state.media)
            for key, relative in tables.items():
                found += self._table(run_id, state, key, relative)
        return found

    def _confusion_file(self, run_id: str, state: FileState) -> list[ConfusionData]:
        try:
            return side.confusion_file(self.uri, run_id, state.folder)
        except (OSError, ValueError, TypeError) as exc:
            path = side.files_path(state.folder, CONFUSION_FILE)
            self._side_problem(path, run_id, f"not a confusion matrix: {exc}")
            return []

    def _table(self, run_id: str, state: FileState, key: str, relative: str) -> list[ConfusionData]:
        path = side.inside(state.folder, relative)
        if path is None:
            message = f"table path {relative!r} of {key!r} leaves the run folder: not read"
            self._side_problem(state.path, run_id, message)
            return []
        data = self._side(read_json_side_file, path, run_id)
        if data is None:
            return []
        try:
            labels, counts = side.matrix_from_table(data)
        except (ValueError, TypeError, IndexError) as exc:
            self._side_problem(path, run_id, f"not a confusion matrix table: {exc}")
            return []
        return [ConfusionData(self.uri, run_id, key, labels, counts, path)]

    def read_run_details(self, run_id: str) -> dict:
        """For the audit report: user, host, folders, wandb version, files in ``files/``."""
        states = self._known(run_id)
        last = states[-1]
        env = self.read_environment(run_id)
        meta = dict(last.environment)
        if not meta.get("username"):
            found = self._side(
                read_json_side_file, side.files_path(last.folder, side.METADATA_FILE), run_id
            )
            meta = found if isinstance(found, dict) else meta
        return {
            "run_id": run_id,
            "user": meta.get("username") or "",
            "host": env.get("host") or (last.info.host if last.info else ""),
            "folders": [s.folder for s in states],
            "wandb_version": env.get("wandb") or "",
            "artifacts": [a for s in states for a in _listing(s.folder)],
        }


def _has_data(states: list[FileState]) -> bool:
    """True when a run record, a history point, a summary or a config was read."""
    return any(s.info is not None or len(s.points) or s.summary or s.config for s in states)


def _listing(folder: str, cap: int = 1000) -> list[dict]:
    """Files in a run folder's ``files/`` (path relative to the run folder, size)."""
    out = []
    base = os.path.join(folder, "files")
    for parent, _, names in os.walk(base):
        for name in sorted(names):
            path = os.path.join(parent, name)
            try:
                size = os.path.getsize(path)
            except OSError:
                continue
            out.append({"path": os.path.relpath(path, folder), "size": size})
            if len(out) >= cap:
                return out
    return out


def _names(items: Iterable[str] | str) -> list[str]:
    return [items] if isinstance(items, str) else list(items)
