"""TensorBoard log directories as a runreview source, read in place without TensorFlow.

A run is any directory (at any depth below the logdir) holding files whose name contains
``tfevents``; its id and name are the directory relative to the logdir (``"."`` for the
logdir itself). Its experiment is the first folder under the logdir when the run sits two
or more folders below it (``a/run1`` -> ``a``), else the logdir's basename.
All event files of a run are read.

What is read from each event (parsed with ``tensorboard.compat.proto``):

- scalars: v1 ``simple_value`` and v2 tensor summaries of plugin ``scalars`` (TF2 sends the
  plugin metadata only with the first event of a tag, so plugin names are remembered per
  tag, per file, seeded from the run's earlier files);
- hparams: ``session_start_info`` of the ``hparams`` plugin (TF's hparams API, tensorboardX
  and torch ``add_hparams``) -> ``params.<name>`` as strings. tensorboardX/torch
  ``add_hparams`` writes the hparams *and* its metric values into a sub-directory (named by
  time or by ``name``): that sub-directory is a run of its own and the params belong to
  it, exactly as TensorBoard's HParams dashboard shows it. They are not copied to the
  parent directory's run;
- text (plugin ``text``), images (v1 ``image`` and v2 plugin ``images``), and rank-2
  numeric tensors of no other known plugin;
- ``SessionLog.START`` events, used to detect restarts.

Anything else (histograms, audio, graphs, ...) is counted and named in an info finding.
Damaged files yield every record that can still be read (see :mod:`.tfrecord`).

History rows come in logging order per (run, metric): file order, then record order.
Nothing is purged: when steps go backwards (a restarted job) both segments stay and an
info finding says "restart detected at step S". ``metrics.<tag>`` is the value with the
highest step, then the latest wall time.

Parsing happens in the ``read_*`` methods, never in the constructor. Parsed results stay
in memory per file, keyed by (path, inode, size, mtime): a second read costs a directory
walk and one ``stat`` per file; a grown file is read from its last offset only; a file that
shrank, was replaced (other inode) or rewritten in place (its first 64 bytes changed) is
read again from the start, with a warning finding. A run is re-assembled only when one
of its files changed. Parsed files are also kept on disk, outside the logdir
(:mod:`.cache`, in ``settings.cache_dir()``), so a new process or a new source opens
unchanged files without parsing them, and grown files by reading only their new bytes.

``read_runs`` and ``read_history`` take a ``progress(message, fraction)`` callback: the
walk reports directories listed and runs found, then "Reading run dirs of LOGDIR: 1,200
of 100,000", every :data:`RUNS_PER_REPORT` runs or quarter second. Whatever the callback
raises stops the read between two directories or two runs and propagates (the app's Stop,
a caller's cancel): nothing is left half-updated, in memory or in the disk cache, and the
next read goes on from what was read. Files are read in chunks (:mod:`.files`): memory
holds the parsed points and one chunk of one file at a time, never a whole file.

The work is split over modules: :mod:`.walk` (listing), :mod:`.files` (reading
files incrementally), :mod:`.decode` (events), :mod:`.state` (what is kept per
file), :mod:`.cache` (on disk), :mod:`.runs` (runs, restarts), :mod:`.frames`
(contract frames) and :mod:`.sidefiles` (environment, requirements, confusion files).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from google.protobuf.message import DecodeError

from runreview import settings
from runreview.contract import (
    SOURCE_TENSORBOARD,
    ConfusionData,
    Environment,
    Finding,
    FindingKind,
    Severity,
)
from runreview.progress import Progress, Ticker, no_progress, scaled
from runreview.sources.base import Source, SourceError
from runreview.sources.tensorboard.cache import EventFileCache
from runreview.sources.tensorboard.decode import read_image
from runreview.sources.tensorboard.files import ReadStats, read_file
from runreview.sources.tensorboard.frames import experiment_of, history_frame, runs_frame
from runreview.sources.tensorboard.runs import RunData, assemble_run
from runreview.sources.tensorboard.sidefiles import (
    CONFUSION_MARKER,
    SideFiles,
    last_per_tag,
)
from runreview.sources.tensorboard.state import (
    FileState,
    ImageRef,
    file_findings,
)
from runreview.sources.tensorboard.walk import (
    Walker,
    as_names,
    is_utf8,
    reason_of,
)

#: A grown file's cache entry is rewritten once it has this much more data, or this long
#: after it was last written (so a live logdir polled often is not rewritten each time).
RESAVE_GROWTH = 0.1
RESAVE_SECONDS = 60.0
#: Share of a refresh's progress given to listing the logdir (the rest: reading runs).
LIST_SHARE = 0.3
#: A refresh reports after this many run directories read (or REPORT_SECONDS).
RUNS_PER_REPORT = 100

_log = logging.getLogger(__name__)


class TensorBoardSource(Source):
    """A TensorBoard logdir, read in place (see the module docstring).

    Thread-safe: one instance can serve several app sessions at once.
    """

    kind = SOURCE_TENSORBOARD
    options = frozenset({"cache"})

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        cache: bool | str | os.PathLike[str] | None = None,
    ):
        """Open ``logdir`` (nothing is read yet). Raises SourceError when it is missing.

        ``cache``: the on-disk cache of parsed files. None or True: in
        ``settings.cache_dir()`` (``RUNREVIEW_CACHE_DIR``); a path: in that folder;
        False: no disk cache (files are still kept in memory while the source lives).
        """
        super().__init__()
        self.logdir = os.path.abspath(os.fspath(logdir))
        if not is_utf8(self.logdir):
            raise SourceError(f"TensorBoard logdir {self.logdir!r} is not a UTF-8 path")
        self.uri = self.logdir
        # the experiment of runs directly under the logdir (see experiment_of)
        self.experiment = os.path.basename(self.logdir.rstrip(os.sep)) or self.logdir
        self._lock = threading.RLock()
        self._files: dict[str, FileState] = {}
        self._runs: dict[str, RunData] = {}
        self._index: dict[str, list[str]] | None = None
        self._walk_findings: list[Finding] = []
        self._io_findings: dict[str, Finding] = {}
        self._stats = ReadStats()
        self._side = SideFiles(self.uri, self.add_finding)
        self._check_logdir()
        self.cache = self._open_cache(cache)

    def _open_cache(self, cache: bool | str | os.PathLike[str] | None) -> EventFileCache | None:
        if cache is False:
            return None
        folder = settings.cache_dir() if cache is None or cache is True else Path(cache)
        folder = Path(os.path.abspath(folder))
        if folder == Path(self.logdir) or Path(self.logdir) in folder.parents:
            self._cache_problem(f"cache folder {folder} is inside the logdir: not used")
            return None
        return EventFileCache(folder)

    def _cache_problem(self, message: str) -> None:
        self.add_finding(Finding(Severity.WARNING, self.uri, message, kind=FindingKind.CACHE))

    @property
    def stats(self) -> ReadStats:
        """What reading has cost so far (event-file bytes read, files parsed, cache use)."""
        with self._lock:
            return replace(self._stats)

    # findings -------------------------------------------------------------------------

    @property
    def findings(self) -> list[Finding]:
        """Current problems: listing, per file (damage, tails, skipped items), per run."""
        with self._lock:
            found = list(self._findings) + self._walk_findings + list(self._io_findings.values())
            for state in self._files.values():
                found += file_findings(state, self.uri)
            for run in self._runs.values():
                found += run.findings
        return list(dict.fromkeys(found))

    def _io_problem(self, path: str, run_id: str, exc: OSError, had_data: bool) -> None:
        if isinstance(exc, FileNotFoundError):
            message = "deleted between listing and reading: skipped"
        else:
            message = f"cannot read: {reason_of(exc)}"
        if had_data:
            message += " (data read earlier is still shown)"
        self._io_findings[path] = Finding(
            Severity.WARNING, self.uri, message, path=path, run_id=run_id, kind=FindingKind.IO_ERROR
        )

    # refreshing -----------------------------------------------------------------------

    def _check_logdir(self) -> None:
        if os.path.isdir(self.logdir):
            return
        what = "is not a directory" if os.path.exists(self.logdir) else "does not exist"
        raise SourceError(
            f"TensorBoard logdir {self.logdir} {what}. Pass the directory your training "
            "wrote its event files to (the one given to SummaryWriter or --logdir); "
            "runreview reads it in place and never creates it."
        )

    def _refresh_all(self, progress: Progress = no_progress) -> None:
        """List the logdir and read what changed in every run.

        ``progress`` hears how far listing (the first :data:`LIST_SHARE`) and reading got;
        what it raises stops the refresh between two directories or two runs. The new
        listing is kept only once every run was read, so a stopped refresh leaves the
        previous listing and runs each either as before or fully updated.
        """
        self._check_logdir()
        walk = Walker(self.logdir, self.uri, scaled(progress, 0.0, LIST_SHARE)).walk()
        self._update_runs(walk.runs, scaled(progress, LIST_SHARE, 1.0))
        self._walk_findings = walk.findings
        self._index = walk.runs
        self._forget(set(walk.runs))

    def _update_runs(self, runs: dict[str, list[str]], progress: Progress) -> None:
        """Read what changed in each run of ``runs``, reporting every so many runs."""
        ticker = Ticker(every=RUNS_PER_REPORT)
        for done, (run_id, paths) in enumerate(runs.items(), start=1):
            self._update_run(run_id, paths)
            if ticker.due() or done == len(runs):
                self._report_runs(progress, done, len(runs))

    def _report_runs(self, progress: Progress, done: int, total: int) -> None:
        progress(f"Reading run dirs of {self.logdir}: {done:,} of {total:,}", done / total)

    def _forget(self, run_ids: set[str]) -> None:
        """Drop what is cached for runs and files that are no longer in the logdir."""
        self._runs = {k: v for k, v in self._runs.items() if k in run_ids}
        live = {p for r in run_ids for p in (self._index or {}).get(r, [])}
        self._files = {p: s for p, s in self._files.items() if p in live}
        self._io_findings = {p: f for p, f in self._io_findings.items() if p in live}

    def _refresh_run(self, run_id: str) -> RunData:
        """Re-list one run's directory, read what changed, return the assembled run."""
        if self._index is None or run_id not in self._index:
            self._refresh_all()
            if run_id in (self._index or {}):
                return self._runs[run_id]
        if run_id not in (self._index or {}):
            raise SourceError(
                f"no run {run_id!r} in TensorBoard logdir {self.logdir}; run ids are "
                "directories relative to the logdir, as listed by read_runs()"
            )
        self._check_logdir()
        walk = Walker(self.logdir, self.uri).walk(run_id, recursive=False)
        paths = walk.runs.get(run_id, [])
        self._index[run_id] = paths
        self._update_run(run_id, paths)
        return self._runs[run_id]

    def _update_run(self, run_id: str, paths: list[str]) -> None:
        states = []
        plugins: dict[str, str] = {}
        for path in paths:
            state = self._update_file(path, run_id, plugins)
            if state is not None:
                states.append(state)
                plugins.update(state.plugins)
        key = tuple((s.serial, s.version) for s in states)
        cached = self._runs.get(run_id)
        if cached is None or cached.key != key:
            self._runs[run_id] = assemble_run(run_id, states, self.uri)

    def _update_file(self, path: str, run_id: str, plugins: dict[str, str]) -> FileState | None:
        old = self._files.get(path)
        try:
            got = read_file(path, run_id, old, self.uri, self.cache, plugins)
        except OSError as exc:
            self._io_problem(path, run_id, exc, old is not None)
            return old
        self._io_findings.pop(path, None)
        if got is None:
            return old
        state = got.state
        self._stats.cache_hits += got.cached
        if got.bytes_read is not None:
            self._stats.bytes_read += got.bytes_read
            self._stats.files_parsed += 1
            self._save(state)
            state.points()  # chunks joined once (a run of one file then shares them)
        self._files[path] = state
        return state

    def _save(self, state: FileState) -> None:
        """Write ``state`` to the disk cache when it is new or has grown enough."""
        if self.cache is None:
            return
        now = time.monotonic()
        if state.saved_size and not (
            state.size >= state.saved_size * (1 + RESAVE_GROWTH)
            or now - state.saved_at >= RESAVE_SECONDS
        ):
            return
        try:
            self.cache.save(state, self.uri)
        except (OSError, ValueError) as exc:
            # Not a finding: the data was read; only later opens will be slower.
            self._stats.cache_error = f"cannot write to {self.cache.folder}: {exc}"
            _log.warning("runreview: on-disk cache turned off for %s (%s)", self.uri, exc)
            self.cache = None
            return
        state.saved_size, state.saved_at = state.size, now
        self._stats.cache_writes += 1

    def _selected_runs(
        self, run_ids: Iterable[str] | None, progress: Progress = no_progress
    ) -> list[RunData]:
        """The runs ``run_ids`` (all when None), refreshed: only their own directories
        when every one of them is already listed, else the whole logdir."""
        wanted = None if run_ids is None else sorted(set(run_ids))
        index = self._index
        if wanted is not None and index is not None and all(r in index for r in wanted):
            return self._refresh_listed(wanted, progress)
        self._refresh_all(progress)
        ids = sorted(self._runs) if wanted is None else wanted
        return [self._runs[r] for r in ids if r in self._runs]

    def _refresh_listed(self, run_ids: list[str], progress: Progress) -> list[RunData]:
        """Re-list and read the directories of ``run_ids`` (all listed already)."""
        ticker = Ticker(every=RUNS_PER_REPORT)
        out = []
        for done, run_id in enumerate(run_ids, start=1):
            out.append(self._refresh_run(run_id))
            if ticker.due() or done == len(run_ids):
                self._report_runs(progress, done, len(run_ids))
        return out

    # the contract ---------------------------------------------------------------------

    def read_runs(
        self, experiments: Iterable[str] | None = None, *, progress: Progress | None = None
    ) -> pd.DataFrame:
        """One row per run directory (see the module docstring for the columns).

        ``progress`` hears how many directories were listed and run directories read (see
        :mod:`runreview.progress`; raising from it stops the read between two of them).
        """
        with self._lock:
            runs = self._selected_runs(None, progress or no_progress)
            if experiments is not None:
                names = set(as_names(experiments))
                runs = [r for r in runs if experiment_of(r.run_id, self.experiment) in names]
            return runs_frame(runs, self.experiment, self.uri)

    def read_history(
        self,
        metrics: Iterable[str] | None = None,
        run_ids: Iterable[str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> pd.DataFrame:
        """Every scalar point, optionally only of ``metrics`` (tag names) and ``run_ids``.

        Rows are ordered by run id, then metric, then logging order (not sorted by step,
        so the segments of a restarted run stay apart). The text columns are Categoricals
        of ``str`` (see :mod:`.frames`): built without a Python object per point.
        ``progress`` as for :meth:`read_runs`.
        """
        wanted = None if metrics is None else set(as_names(metrics))
        selected = None if run_ids is None else as_names(run_ids)
        with self._lock:
            runs = self._selected_runs(selected, progress or no_progress)
            return history_frame(runs, wanted, self.uri)

    def run_dir(self, run_id: str) -> str:
        """The absolute directory of a run (SourceError for an unknown run id)."""
        with self._lock:
            self._refresh_run(run_id)
        return self._dir_of(run_id)

    def _dir_of(self, run_id: str) -> str:
        return self.logdir if run_id == "." else os.path.join(self.logdir, *run_id.split("/"))

    def read_environment(self, run_id: str) -> Environment:
        """``environment.json`` and ``requirements.txt`` of the run directory, if present."""
        return self._side.environment(self.run_dir(run_id), run_id)

    def read_confusion(self, run_id: str) -> list[ConfusionData]:
        """Confusion matrices of a run: ``confusion_matrix.json`` in its directory, the
        last step of each rank-2 tensor summary whose tag contains "confusion", and the
        last image of each image summary whose tag contains "confusion"."""
        with self._lock:
            run = self._refresh_run(run_id)
            found = self._side.confusion_file(self._dir_of(run_id), run_id)
            found += self._side.confusion_tensors(run)
            images = list(last_per_tag(run.images, CONFUSION_MARKER).values())
        for ref in images:
            png = self._load_image(ref)
            if png is not None:
                origin = f"{ref.path} (image {ref.tag!r}, step {ref.step})"
                found.append(ConfusionData(self.uri, run_id, ref.tag, [], None, origin, png))
        return found

    def close(self) -> None:
        """Drop everything cached for this logdir, in memory and its entries in the disk
        cache: the next read starts cold. Nothing is held open, so a source that is
        simply dropped needs no close (and its disk cache stays for the next one)."""
        with self._lock:
            if self.cache is not None:
                for path, state in self._files.items():
                    self.cache.forget(self.uri, state.run_id, path)
            self._files, self._runs, self._index = {}, {}, None
            self._walk_findings, self._io_findings = [], {}

    # text, images, tensors -----------------------------------------------------------

    def read_texts(self, run_id: str) -> list[tuple[str, int, str]]:
        """Text summaries of a run as (tag, step, text), in logging order."""
        with self._lock:
            return [(t.tag, t.step, t.text) for t in self._refresh_run(run_id).texts]

    def read_tensors(self, run_id: str) -> list[tuple[str, int, np.ndarray]]:
        """Rank-2 numeric tensor summaries of a run as (tag, step, array), in logging order."""
        with self._lock:
            return [(t.tag, t.step, t.array) for t in self._refresh_run(run_id).tensors]

    def read_images(
        self, run_id: str, tags: Iterable[str] | None = None
    ) -> list[tuple[str, int, bytes]]:
        """Image summaries of a run as (tag, step, encoded image, usually PNG), in logging
        order; ``tags`` narrows them. Images are read from disk on each call."""
        wanted = None if tags is None else set(tags)
        with self._lock:
            refs = [
                i for i in self._refresh_run(run_id).images if wanted is None or i.tag in wanted
            ]
        out = []
        for ref in refs:
            data = self._load_image(ref)
            if data is not None:
                out.append((ref.tag, ref.step, data))
        return out

    def _load_image(self, ref: ImageRef) -> bytes | None:
        try:
            return read_image(ref)
        except (OSError, DecodeError, IndexError) as exc:
            message = f"image {ref.tag!r} (step {ref.step}) could not be read again: {exc}"
            self.add_finding(
                Finding(
                    Severity.WARNING,
                    self.uri,
                    message,
                    path=ref.path,
                    record=ref.record,
                    kind=FindingKind.IO_ERROR,
                )
            )
            return None
