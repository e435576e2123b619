"""W&B run folders: finding them, and reading one ``run-<id>.wandb`` file incrementally.

A run folder is a directory named ``run-YYYYMMDD_HHMMSS-<id>`` (online runs) or
``offline-run-YYYYMMDD_HHMMSS-<id>`` holding ``run-<id>.wandb``. The listing walks the
given folder (following symlinks, never entering a directory twice, never entering a run
folder) and turns every entry it cannot use into a finding.

:class:`FileState` keeps what was read from one file: the run record's fields, the config
and summary as they stand after every update, the history as columns, and the exit
record. It is fed records in file order and can go on from where it stopped when the
file grows.
"""

from __future__ import annotations

import math
import os
import re
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from runreview.contract import Finding, FindingKind, Severity
from runreview.sources.wandb import records as rec
from runreview.sources.wandb.framing import LogContext, LogScan
from runreview.sources.wandb.wire import DecodeError

RUN_FOLDER = re.compile(r"^(?:offline-)?run-(\d{8}_\d{6})-(.+)$")
#: Undecodable records reported one by one per file; the rest are counted.
MAX_DECODE_FINDINGS = 20
#: W&B's own history and summary keys: not metrics.
INTERNAL_KEYS = frozenset({"_step", "_runtime", "_timestamp"})


def is_internal(key: str) -> bool:
    """True for W&B's bookkeeping keys (``_step``, ``_runtime``, ``_timestamp``, ``_wandb``)."""
    return key in INTERNAL_KEYS or key == "_wandb" or key.startswith("_wandb.")


def log_name(run_id: str) -> str:
    """The name of a run folder's data file."""
    return f"run-{run_id}.wandb"


# --- listing ------------------------------------------------------------------------------


@dataclass
class Listing:
    """Run folders per run id (several when a run was resumed), and listing problems."""

    runs: dict[str, list[str]]
    findings: list[Finding]


def list_run_folders(root: str, uri: str) -> Listing:
    """Every run folder at or below ``root``.

    A symlink to a run folder (like W&B's ``latest-run``) counts once, under its target.
    """
    runs: dict[str, list[str]] = {}
    findings: list[Finding] = []
    seen: set[tuple[int, int]] = set()
    added: set[str] = set()
    stack = [root]
    while stack:
        path = stack.pop()
        real = os.path.realpath(path)
        match = RUN_FOLDER.match(os.path.basename(real))
        if match and (path != root or _holds_log(real, match.group(2))):
            if real not in added:
                added.add(real)
                _add_run(runs, findings, uri, real, match.group(2))
            continue
        try:
            st = os.stat(path)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(path), key=lambda e: e.name, reverse=True)
        except OSError as exc:
            findings.append(_walk_problem(uri, path, exc))
            continue
        stack.extend(e.path for e in entries if _is_dir(e, findings, uri))
    return Listing({k: sorted(v, key=_folder_order) for k, v in sorted(runs.items())}, findings)


def _holds_log(path: str, run_id: str) -> bool:
    return os.path.isfile(os.path.join(path, log_name(run_id)))


def _add_run(
    runs: dict[str, list[str]], findings: list[Finding], uri: str, path: str, run_id: str
) -> None:
    if _holds_log(path, run_id):
        runs.setdefault(run_id, []).append(path)
        return
    findings.append(
        Finding(
            Severity.WARNING,
            uri,
            f"W&B run folder without {log_name(run_id)}: nothing to read, not listed",
            path=path,
            run_id=run_id,
            kind=FindingKind.NO_RUN_FILE,
        )
    )


def _is_dir(entry: os.DirEntry[str], findings: list[Finding], uri: str) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError as exc:
        findings.append(_walk_problem(uri, entry.path, exc))
        return False


def _walk_problem(uri: str, path: str, exc: OSError) -> Finding:
    reason = exc.strerror or type(exc).__name__
    return Finding(Severity.WARNING, uri, f"not listed: {reason}", path=path, kind=FindingKind.WALK)


def _folder_order(path: str) -> tuple[str, str]:
    """Run folders of one id in the order they were written (their name's time stamp)."""
    match = RUN_FOLDER.match(os.path.basename(path))
    return (match.group(1) if match else "", path)


# --- one file -----------------------------------------------------------------------------


@dataclass
class Points:
    """A run's history as columns: metric code, step, value, wall time (seconds)."""

    names: dict[str, int] = field(default_factory=dict)
    code: array = field(default_factory=lambda: array("i"))
    step: array = field(default_factory=lambda: array("q"))
    value: array = field(default_factory=lambda: array("d"))
    wall: array = field(default_factory=lambda: array("d"))

    def add(self, name: str, step: int, value: float, wall: float) -> None:
        """Append one point."""
        code = self.names.get(name)
        if code is None:
            code = self.names[name] = len(self.names)
        self.code.append(code)
        self.step.append(step)
        self.value.append(value)
        self.wall.append(wall)

    def __len__(self) -> int:
        return len(self.code)


@dataclass
class FileState:
    """Everything read so far from one ``run-<id>.wandb`` file."""

    path: str
    run_id: str
    source_uri: str
    stat_key: tuple[int, int, int] = (0, 0, 0)
    head: bytes = b""
    next_offset: int = 0
    next_index: int = 0
    corrupt: bool = False
    findings: list[Finding] = field(default_factory=list)
    status: list[Finding] = field(default_factory=list)
    info: rec.RunInfo | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    points: Points = field(default_factory=Points)
    skipped: Counter = field(default_factory=Counter)
    media: dict[str, dict] = field(default_factory=dict)
    exit: tuple[int, int] | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    producer: str = ""
    last_time: float = math.nan
    last_step: int = -1
    decode_errors: int = 0

    @property
    def folder(self) -> str:
        """The run folder holding the file."""
        return os.path.dirname(self.path)

    def context(self) -> LogContext:
        """Names this file in the findings of a scan."""
        return LogContext(self.path, self.source_uri, self.run_id)

    def all_findings(self) -> list[Finding]:
        """Problems of this file: damage, its tail, undecodable records."""
        found = self.findings + self.status
        if self.decode_errors > MAX_DECODE_FINDINGS:
            more = self.decode_errors - MAX_DECODE_FINDINGS
            found.append(self._finding(f"{more} more undecodable records skipped", None, None))
        return found

    def _finding(self, message: str, offset: int | None, index: int | None) -> Finding:
        return Finding(
            Severity.ERROR,
            self.source_uri,
            message,
            path=self.path,
            offset=offset,
            record=index,
            run_id=self.run_id,
            kind=FindingKind.DECODE_ERROR,
        )

    # feeding ---------------------------------------------------------------------------

    def take(self, scan: LogScan) -> None:
        """Apply every record of a scan and remember where the next one starts."""
        for offset, index, payload in scan.records:
            try:
                self.apply(payload)
            except DecodeError as exc:
                self.decode_errors += 1
                if self.decode_errors <= MAX_DECODE_FINDINGS:
                    message = f"record {index} at byte {offset} not decoded ({exc}): skipped"
                    self.findings.append(self._finding(message, offset, index))
        self.findings.extend(scan.findings)
        self.status = scan.status
        self.next_offset, self.next_index, self.corrupt = (
            scan.next_offset,
            scan.next_index,
            scan.corrupt,
        )

    def apply(self, payload: bytes) -> None:
        """Apply one record. Raises :class:`~.wire.DecodeError`."""
        found = rec.record_kind(payload)
        if found is None:
            return
        kind, body = found
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, body)

    def _on_run(self, body: bytes) -> None:
        info = rec.decode_run(body)
        _update(self.config, info.config)
        _update(self.summary, info.summary)
        if self.info is None:
            self.info = info
            return
        for name in ("entity", "project", "display_name", "notes", "group", "job_type"):
            if getattr(info, name):
                setattr(self.info, name, getattr(info, name))
        if info.tags:
            self.info.tags = info.tags

    def _on_history(self, body: bytes) -> None:
        row = rec.decode_history(body)
        values = dict(row.values)
        step = _int_or_none(values.get("_step"))
        if step is None:
            step = row.step if row.step is not None else self.last_step + 1
        wall = rec.as_number(values.get("_timestamp"))
        wall = math.nan if wall is None else wall
        self.last_step = step
        if wall == wall:
            self.last_time = wall if self.last_time != self.last_time else max(wall, self.last_time)
        for key, value in row.values:
            if is_internal(key):
                continue
            number = rec.as_number(value)
            if number is None:
                self.skipped[key] += 1
                if isinstance(value, dict):
                    self.media[key] = value  # the last W&B media object (table, image)
            else:
                self.points.add(key, step, number, wall)

    def _on_summary(self, body: bytes) -> None:
        _update(self.summary, rec.decode_updates(body))

    def _on_config(self, body: bytes) -> None:
        _update(self.config, rec.decode_updates(body))

    def _on_exit(self, body: bytes) -> None:
        self.exit = rec.decode_exit(body)

    def _on_header(self, body: bytes) -> None:
        self.producer = rec.decode_producer(body).split("+", 1)[0]

    def _on_environment(self, body: bytes) -> None:
        self.environment.update(rec.decode_environment(body))

    def _on_stats(self, body: bytes) -> None:
        when = rec.decode_stats_time(body)
        if when is not None and math.isfinite(when):
            self.last_time = when if self.last_time != self.last_time else max(when, self.last_time)

    def _on_telemetry(self, body: bytes) -> None:
        if self.info is not None and not self.info.cli_version:
            self.info.python_version, self.info.cli_version = rec.decode_telemetry(body)


_HANDLERS = {
    rec.RECORD_RUN: FileState._on_run,
    rec.RECORD_HISTORY: FileState._on_history,
    rec.RECORD_SUMMARY: FileState._on_summary,
    rec.RECORD_CONFIG: FileState._on_config,
    rec.RECORD_EXIT: FileState._on_exit,
    rec.RECORD_HEADER: FileState._on_header,
    rec.RECORD_ENVIRONMENT: FileState._on_environment,
    rec.RECORD_STATS: FileState._on_stats,
    rec.RECORD_TELEMETRY: FileState._on_telemetry,
}


def _update(target: dict[str, Any], updates: list[tuple[str, Any]]) -> None:
    """Apply summary or config updates in order (a removed key drops its sub-keys too)."""
    for key, value in updates:
        if value is rec.REMOVED:
            for name in [k for k in target if k == key or k.startswith(key + ".")]:
                del target[name]
        else:
            target[key] = value


def _int_or_none(value: Any) -> int | None:
    number = rec.as_number(value)
    if number is None or not math.isfinite(number):
        return None
    return int(number)
