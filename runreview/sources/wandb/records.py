"""The few fields runreview needs from W&B's ``Record`` protobuf messages, decoded by hand.

Records are protobuf messages (W&B's ``wandb_internal.proto``). The wandb package is not
needed: the protobuf wire format is decoded directly (:mod:`.wire`), and only the fields below are
read; everything else is skipped. Field numbers were taken from the ``.proto`` files of
wandb 0.17.9 and 0.31.0 and are the same in both (later versions only add fields).

Layouts differ between writers:

- the legacy Python backend (before 0.18) names a key in ``HistoryItem.key`` and logs a
  nested dict as one item whose JSON value is the dict; wandb-core (0.18 and later) names
  keys by their path in ``nested_key`` and logs each leaf of a nested dict as its own item.
  Both are read as the dotted path (``train.loss``), so the metric names of one script do
  not depend on the wandb version;
- wandb-core may write typed values (``number``, ``integer``, ...) instead of
  ``value_json``; both are read;
- the environment is a record (``EnvironmentRecord``) from wandb 0.20 on; older versions
  write ``files/wandb-metadata.json`` instead (read by :mod:`.runs`).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from runreview.sources.wandb.wire import (
    WIRE_BYTES,
    WIRE_FIXED64,
    WIRE_VARINT,
    DecodeError,
    as_text,
    fields,
    signed,
    timestamp,
    zigzag,
)

# --- field numbers ------------------------------------------------------------------------

# Record: which kind of record it is (one of these is set).
RECORD_HISTORY = 2
RECORD_SUMMARY = 3
RECORD_CONFIG = 5
RECORD_STATS = 7
RECORD_TELEMETRY = 11
RECORD_RUN = 17
RECORD_EXIT = 18
RECORD_HEADER = 21
RECORD_ENVIRONMENT = 26

# HistoryRecord
HISTORY_ITEM = 1
HISTORY_STEP = 2
# HistoryStep
STEP_NUM = 1
# HistoryItem, SummaryItem and ConfigItem share key / nested_key / value_json.
ITEM_KEY = 1
ITEM_NESTED_KEY = 2
ITEM_VALUE_JSON = 16
# HistoryItem's typed values (wandb-core).
ITEM_NONE = 3
ITEM_BOOLEAN = 4
ITEM_INTEGER = 5  # sint64 (zigzag)
ITEM_NUMBER = 6  # double
ITEM_TEXT = 7
ITEM_JSON = 8
# SummaryRecord and ConfigRecord
UPDATE = 1
REMOVE = 2

# RunRecord
RUN_ID = 1
RUN_ENTITY = 2
RUN_PROJECT = 3
RUN_CONFIG = 4
RUN_SUMMARY = 5
RUN_GROUP = 6
RUN_JOB_TYPE = 7
RUN_DISPLAY_NAME = 8
RUN_NOTES = 9
RUN_TAGS = 10
RUN_SWEEP_ID = 12
RUN_HOST = 13
RUN_START_TIME = 17
RUN_RESUMED = 18
RUN_TELEMETRY = 19
RUN_GIT = 21
# google.protobuf.Timestamp
# GitRepoRecord
GIT_REMOTE_URL = 1
GIT_COMMIT = 2
# TelemetryRecord
TELEMETRY_PYTHON_VERSION = 4
TELEMETRY_CLI_VERSION = 5
# RunExitRecord
EXIT_CODE = 1
EXIT_RUNTIME = 2
# HeaderRecord / VersionInfo
HEADER_VERSION_INFO = 1
VERSION_PRODUCER = 1
# StatsRecord
STATS_TIMESTAMP = 2
# EnvironmentRecord (wandb 0.20 and later)
ENV_OS = 1
ENV_PYTHON = 2
ENV_ARGS = 5
ENV_PROGRAM = 6
ENV_CODE_PATH = 7
ENV_GIT = 9
ENV_HOST = 12
ENV_USERNAME = 13
ENV_EXECUTABLE = 14
ENV_CPU_COUNT = 16
ENV_CPU_COUNT_LOGICAL = 17
ENV_GPU_TYPE = 18
ENV_GPU_COUNT = 19
ENV_GPU_NVIDIA = 24
ENV_CUDA_VERSION = 25
GPU_NVIDIA_NAME = 1

_DOUBLE = struct.Struct("<d")
#: The key that marks a W&B media object (image, table, histogram ...).
MEDIA_TYPE = "_type"
#: Marks a removed summary or config key in an update list.
REMOVED = object()


# --- values -------------------------------------------------------------------------------


def parse_json(raw: bytes) -> Any:
    """The value of a ``value_json`` field (W&B writes NaN and Infinity as bare words)."""
    try:
        return float(raw) if raw[:1] not in b'tfn"[{' else json.loads(raw)
    except ValueError:
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise DecodeError(f"value is not JSON: {raw[:40]!r}") from exc


def _item(buf: bytes) -> tuple[str, Any]:
    """The dotted key and the value of a history, summary or config item."""
    key, nested, value = "", [], None
    for number, wire, raw in fields(buf):
        if number == ITEM_KEY:
            key = as_text(raw)
        elif number == ITEM_NESTED_KEY:
            nested.append(as_text(raw))
        elif number == ITEM_VALUE_JSON and wire == WIRE_BYTES:
            value = parse_json(raw)
        elif number in _TYPED and wire == _TYPED[number][0]:
            value = _TYPED[number][1](raw)
    return (".".join(nested) if nested else key), value


_TYPED = {
    ITEM_NONE: (WIRE_VARINT, lambda raw: None),
    ITEM_BOOLEAN: (WIRE_VARINT, bool),
    ITEM_INTEGER: (WIRE_VARINT, zigzag),
    ITEM_NUMBER: (WIRE_FIXED64, lambda raw: _DOUBLE.unpack(raw)[0]),
    ITEM_TEXT: (WIRE_BYTES, as_text),
    ITEM_JSON: (WIRE_BYTES, parse_json),
}


def flatten(key: str, value: Any) -> Iterator[tuple[str, Any]]:
    """``(dotted key, leaf)`` pairs of a value; dicts of W&B media (with ``_type``) are
    leaves."""
    if isinstance(value, dict) and value and MEDIA_TYPE not in value:
        for sub, item in value.items():
            yield from flatten(f"{key}.{sub}" if key else str(sub), item)
    else:
        yield key, value


def _add_leaves(out: list[tuple[str, Any]], key: str, value: Any) -> None:
    if type(value) is dict:
        out.extend(flatten(key, value))
    else:
        out.append((key, value))


def regroup_media(values: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """wandb-core logs a media object (a dict with ``_type``) leaf by leaf
    (``table._type``, ``table.path``, ...): put the leaves back into one dict, so media are
    neither metrics nor read differently from the legacy backend's."""
    media = {k[: -len(MEDIA_TYPE) - 1] for k, _ in values if k.endswith("." + MEDIA_TYPE)}
    if not media:
        return values
    out: list[tuple[str, Any]] = []
    groups: dict[str, dict[str, Any]] = {}
    for key, value in values:
        prefix = min((p for p in media if key.startswith(p + ".")), key=len, default=None)
        if prefix is None:
            out.append((key, value))
            continue
        if prefix not in groups:
            groups[prefix] = {}
            out.append((prefix, groups[prefix]))
        groups[prefix][key[len(prefix) + 1 :]] = value
    return out


def as_number(value: Any) -> float | None:
    """A history or summary value as a float; None when it is not a number or a bool."""
    if isinstance(value, float):
        return value
    if isinstance(value, bool | int):
        try:
            return float(value)
        except OverflowError:
            return math.copysign(math.inf, value)
    return None


# --- records ------------------------------------------------------------------------------


@dataclass
class HistoryRow:
    """One ``run.log`` call: ``_step`` and every logged leaf (with ``_timestamp`` etc.)."""

    step: int | None
    values: list[tuple[str, Any]]


@dataclass
class RunInfo:
    """What a run record says (fields left empty were not set)."""

    run_id: str = ""
    entity: str = ""
    project: str = ""
    display_name: str = ""
    notes: str = ""
    group: str = ""
    job_type: str = ""
    sweep_id: str = ""
    host: str = ""
    tags: list[str] = field(default_factory=list)
    start_time: float | None = None
    resumed: bool = False
    git_remote: str = ""
    git_commit: str = ""
    python_version: str = ""
    cli_version: str = ""
    config: list[tuple[str, Any]] = field(default_factory=list)
    summary: list[tuple[str, Any]] = field(default_factory=list)


_RUN_TEXT = {
    RUN_ID: "run_id",
    RUN_ENTITY: "entity",
    RUN_PROJECT: "project",
    RUN_DISPLAY_NAME: "display_name",
    RUN_NOTES: "notes",
    RUN_GROUP: "group",
    RUN_JOB_TYPE: "job_type",
    RUN_SWEEP_ID: "sweep_id",
    RUN_HOST: "host",
}


def decode_history(buf: bytes) -> HistoryRow:
    """A history record: its items and its step (``_step``, else ``HistoryStep.num``)."""
    values: list[tuple[str, Any]] = []
    step: int | None = None
    for number, wire, raw in fields(buf):
        if number == HISTORY_ITEM and wire == WIRE_BYTES:
            _add_leaves(values, *_item(raw))
        elif number == HISTORY_STEP and wire == WIRE_BYTES:
            step = 0
            for sub, sub_wire, num in fields(raw):
                if sub == STEP_NUM and sub_wire == WIRE_VARINT:
                    step = signed(num)
    return HistoryRow(step, regroup_media(values))


def decode_updates(buf: bytes) -> list[tuple[str, Any]]:
    """A summary or config record as ``(dotted key, value or REMOVED)`` in order."""
    out: list[tuple[str, Any]] = []
    for number, wire, raw in fields(buf):
        if number == UPDATE and wire == WIRE_BYTES:
            _add_leaves(out, *_item(raw))
        elif number == REMOVE and wire == WIRE_BYTES:
            out.append((_item(raw)[0], REMOVED))
    return regroup_media(out)


def decode_run(buf: bytes) -> RunInfo:
    """A run record."""
    info = RunInfo()
    for number, wire, raw in fields(buf):
        if number in _RUN_TEXT:
            setattr(info, _RUN_TEXT[number], as_text(raw))
        elif number == RUN_TAGS:
            info.tags.append(as_text(raw))
        elif number == RUN_START_TIME and wire == WIRE_BYTES:
            info.start_time = timestamp(raw)
        elif number == RUN_RESUMED and wire == WIRE_VARINT:
            info.resumed = bool(raw)
        elif number == RUN_CONFIG and wire == WIRE_BYTES:
            info.config = decode_updates(raw)
        elif number == RUN_SUMMARY and wire == WIRE_BYTES:
            info.summary = decode_updates(raw)
        elif number == RUN_GIT and wire == WIRE_BYTES:
            info.git_remote, info.git_commit = decode_git(raw)
        elif number == RUN_TELEMETRY and wire == WIRE_BYTES:
            info.python_version, info.cli_version = decode_telemetry(raw)
    return info


def decode_git(buf: bytes) -> tuple[str, str]:
    """``(remote url, commit)`` of a git record."""
    remote = commit = ""
    for number, _, raw in fields(buf):
        if number == GIT_REMOTE_URL:
            remote = as_text(raw)
        elif number == GIT_COMMIT:
            commit = as_text(raw)
    return remote, commit


def decode_telemetry(buf: bytes) -> tuple[str, str]:
    """``(python version, wandb version)`` of a telemetry record."""
    python = cli = ""
    for number, _, raw in fields(buf):
        if number == TELEMETRY_PYTHON_VERSION:
            python = as_text(raw)
        elif number == TELEMETRY_CLI_VERSION:
            cli = as_text(raw)
    return python, cli


def decode_exit(buf: bytes) -> tuple[int, int]:
    """``(exit code, runtime in seconds)`` of an exit record."""
    code = runtime = 0
    for number, wire, raw in fields(buf):
        if number == EXIT_CODE and wire == WIRE_VARINT:
            code = signed(raw, 32)
        elif number == EXIT_RUNTIME and wire == WIRE_VARINT:
            runtime = signed(raw, 32)
    return code, runtime


def decode_producer(buf: bytes) -> str:
    """The writer's version in a header record (wandb-core only; "" otherwise)."""
    for number, wire, raw in fields(buf):
        if number == HEADER_VERSION_INFO and wire == WIRE_BYTES:
            for sub, _, text in fields(raw):
                if sub == VERSION_PRODUCER:
                    return as_text(text)
    return ""


def decode_stats_time(buf: bytes) -> float | None:
    """When a system-metrics sample was taken."""
    for number, wire, raw in fields(buf):
        if number == STATS_TIMESTAMP and wire == WIRE_BYTES:
            return timestamp(raw)
    return None


_ENV_TEXT = {
    ENV_OS: "os",
    ENV_PYTHON: "python",
    ENV_PROGRAM: "program",
    ENV_CODE_PATH: "codePath",
    ENV_HOST: "host",
    ENV_USERNAME: "username",
    ENV_EXECUTABLE: "executable",
    ENV_GPU_TYPE: "gpu",
    ENV_CUDA_VERSION: "cuda",
}
_ENV_COUNT = {
    ENV_CPU_COUNT: "cpu_count",
    ENV_CPU_COUNT_LOGICAL: "cpu_count_logical",
    ENV_GPU_COUNT: "gpu_count",
}


def decode_environment(buf: bytes) -> dict[str, Any]:
    """An environment record, keyed as in ``wandb-metadata.json`` (so both read alike)."""
    env: dict[str, Any] = {}
    for number, wire, raw in fields(buf):
        if number in _ENV_TEXT and wire == WIRE_BYTES:
            env[_ENV_TEXT[number]] = as_text(raw)
        elif number in _ENV_COUNT and wire == WIRE_VARINT:
            env[_ENV_COUNT[number]] = raw
        elif number == ENV_ARGS and wire == WIRE_BYTES:
            env.setdefault("args", []).append(as_text(raw))
        elif number == ENV_GIT and wire == WIRE_BYTES:
            remote, commit = decode_git(raw)
            env["git"] = {"remote": remote, "commit": commit}
        elif number == ENV_GPU_NVIDIA and wire == WIRE_BYTES:
            names = [as_text(v) for n, _, v in fields(raw) if n == GPU_NVIDIA_NAME]
            env.setdefault("gpu_devices", []).append({"name": names[0] if names else ""})
    return env


def record_kind(buf: bytes) -> tuple[int, bytes] | None:
    """``(record kind field number, its message bytes)``; None for kinds not read."""
    for number, wire, raw in fields(buf):
        if number in _KINDS and wire == WIRE_BYTES:
            return number, raw
    return None


_KINDS = frozenset(
    {
        RECORD_HISTORY,
        RECORD_SUMMARY,
        RECORD_CONFIG,
        RECORD_STATS,
        RECORD_TELEMETRY,
        RECORD_RUN,
        RECORD_EXIT,
        RECORD_HEADER,
        RECORD_ENVIRONMENT,
    }
)
