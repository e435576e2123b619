"""Runs assembled from their event files' states: points in logging order, restarts.

A run's points are its files' points in file order, then record order. Nothing is purged:
when steps go backwards (a restarted job) both segments stay and an info finding says
"restart detected at step S".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from runreview.contract import Finding, FindingKind, Severity
from runreview.sources.tensorboard.state import (
    MAX_FINDINGS_PER_KIND,
    FileState,
    ImageRef,
    Scalars,
    Tensor,
    Text,
    empty_scalars,
)


@dataclass
class RunData:
    """One run assembled from its files: points in logging order, plus everything else.

    ``file_starts[i]`` is the position of the first point of file ``i`` in ``points``.
    """

    run_id: str
    key: tuple
    points: Scalars
    file_starts: np.ndarray
    params: dict[str, str]
    texts: list[Text]
    images: list[ImageRef]
    tensors: list[Tensor]
    start: float
    end: float
    findings: list[Finding]
    _last: dict[str, float] | None = field(default=None, repr=False)

    def last_values(self) -> dict[str, float]:
        """Per tag, the value with the highest step, then the latest wall time, then the
        last logged (computed once per assembled run)."""
        if self._last is None:
            self._last = _last_values(self.points)
        return self._last


def _last_values(p: Scalars) -> dict[str, float]:
    if p.code.size == 0:
        return {}
    code = p.code.astype(np.intp, copy=False)
    ntags = len(p.tags)
    top_step = np.full(ntags, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(top_step, code, p.step)
    rows = np.flatnonzero(p.step == top_step[code])
    wall = p.wall[rows]
    wall = np.where(np.isnan(wall), -np.inf, wall)
    top_wall = np.full(ntags, -np.inf)
    np.maximum.at(top_wall, code[rows], wall)
    rows = rows[wall == top_wall[code[rows]]]
    last = np.full(ntags, -1, dtype=np.int64)
    np.maximum.at(last, code[rows], rows)
    return {p.tags[c]: float(p.value[r]) for c, r in enumerate(last.tolist()) if r >= 0}


def small_codes(code: np.ndarray, count: int) -> np.ndarray:
    """``code`` as uint8/uint16 when ``count`` values fit (numpy sorts those by radix)."""
    if count <= 256:
        return code.astype(np.uint8, copy=False)
    if count <= 65536:
        return code.astype(np.uint16, copy=False)
    return code


def _concat_points(states: list[FileState]) -> tuple[Scalars, np.ndarray]:
    """All points of ``states`` in file order, with run-level tag codes, and where each
    file's points start. A run of one file shares that file's arrays (no copy)."""
    tags: dict[str, int] = {}
    parts: list[tuple[np.ndarray, ...]] = []
    starts = []
    for state in states:
        starts.append(sum(part[0].size for part in parts))
        for chunk in state.scalars:
            remap = np.array([tags.setdefault(t, len(tags)) for t in chunk.tags], dtype=np.int32)
            code = chunk.code
            if not np.array_equal(remap, np.arange(remap.size)):
                code = remap[code]
            parts.append((code, chunk.step, chunk.value, chunk.wall, chunk.record))
    file_starts = np.array(starts, dtype=np.int64)
    if not parts:
        return empty_scalars(), file_starts
    if len(parts) == 1:
        return Scalars(list(tags), *parts[0]), file_starts
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    return Scalars(list(tags), small_codes(cols[0], len(tags)), *cols[1:]), file_starts


def _restart_points(points: Scalars) -> list[tuple[int, int, str, int]]:
    """(position, new step, tag, previous step) wherever a tag's step went backwards."""
    order = np.argsort(small_codes(points.code, len(points.tags)), kind="stable")
    code, step = points.code[order], points.step[order]
    back = np.flatnonzero((code[1:] == code[:-1]) & (step[1:] < step[:-1]))
    return [
        (int(order[i + 1]), int(step[i + 1]), points.tags[int(code[i + 1])], int(step[i]))
        for i in back.tolist()
    ]


def _session_restarts(
    points: Scalars, file_starts: np.ndarray, states: list[FileState]
) -> list[tuple[int, int, int, int]]:
    """(file index, step, record, points kept) for each SessionLog START that TensorBoard
    would purge on, i.e. that comes after points at or above its step."""
    found = []
    ends = np.append(file_starts[1:], points.code.size)
    for fi, state in enumerate(states):
        for step, record in state.session_starts:
            lo, hi = int(file_starts[fi]), int(ends[fi])
            earlier = int(np.count_nonzero(points.step[:lo] >= step))
            mine = (points.record[lo:hi] < record) & (points.step[lo:hi] >= step)
            kept = earlier + int(np.count_nonzero(mine))
            if kept:
                found.append((fi, step, record, kept))
    return found


def _restart_findings(
    run_id: str, points: Scalars, file_starts: np.ndarray, states: list[FileState], uri: str
) -> list[Finding]:
    """One info finding per step at which a restart was seen."""
    by_step: dict[int, list[str]] = {}
    where: dict[int, tuple[str, int]] = {}
    for fi, step, record, kept in _session_restarts(points, file_starts, states):
        by_step.setdefault(step, []).append(
            f"SessionLog START; {kept} earlier point(s) at step >= {step} kept, not purged"
        )
        where.setdefault(step, (states[fi].path, record))
    for pos, step, tag, prev in _restart_points(points):
        by_step.setdefault(step, []).append(f"{tag!r} went back from step {prev}")
        fi = int(np.searchsorted(file_starts, pos, side="right")) - 1
        where.setdefault(step, (states[fi].path, int(points.record[pos])))
    findings = []
    for step in sorted(by_step)[:MAX_FINDINGS_PER_KIND]:
        reasons = by_step[step]
        more = f"; +{len(reasons) - 3} more" if len(reasons) > 3 else ""
        path, record = where[step]
        message = (
            f"restart detected at step {step}: {'; '.join(reasons[:3])}{more}. "
            "Both segments are kept in logging order"
        )
        findings.append(
            Finding(
                Severity.INFO,
                uri,
                message,
                path=path,
                record=record,
                run_id=run_id,
                kind=FindingKind.RESTART,
            )
        )
    return findings


def assemble_run(run_id: str, states: list[FileState], uri: str) -> RunData:
    """The run ``run_id`` made of the files ``states`` (in file order)."""
    points, file_starts = _concat_points(states)
    params: dict[str, str] = {}
    for state in states:
        params.update(state.params)
    return RunData(
        run_id=run_id,
        key=tuple((s.serial, s.version) for s in states),
        points=points,
        file_starts=file_starts,
        params=params,
        texts=[t for s in states for t in s.texts],
        images=[i for s in states for i in s.images],
        tensors=[t for s in states for t in s.tensors],
        start=float(np.fmin.reduce([s.wall_min for s in states], initial=math.nan)),
        end=float(np.fmax.reduce([s.wall_max for s in states], initial=math.nan)),
        findings=_restart_findings(run_id, points, file_starts, states, uri),
    )
