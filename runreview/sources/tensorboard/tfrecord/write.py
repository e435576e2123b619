"""A small, deterministic TensorBoard event file writer (no TensorFlow needed).

TensorBoard's own ``EventFileWriter`` names files and stamps events with the clock, writes
from a background thread and checks CRCs in pure Python. The demo needs files whose names
and wall times come from a fixed timeline, so it uses this writer instead. The records are
the same: TFRecord framing (length, masked CRC-32C of the length, ``Event`` bytes, masked
CRC-32C of the bytes) around ``tensorboard.compat.proto.event_pb2.Event`` messages.

Summaries follow the layouts real writers produce:

- scalars as v1 ``simple_value`` (torch, tensorboardX) or as TF2 tensor summaries (a
  float32 scalar tensor in ``tensor_content``, plugin ``scalars``; the metadata goes on the
  first event of each tag only, as ``tf.summary`` does);
- text as a string tensor (plugin ``text``), images as v1 ``Summary.Image`` with PNG bytes;
- other tensors as a tensor summary with the given plugin name (may be empty);
- hparams as the hparams plugin's experiment, session start and session end summaries
  (``tensorboard.plugins.hparams.summary`` layout, with its null tensor), in the run's own
  directory.

``EventWriter.add_scalars`` writes a long series of v1 scalars at once: the records are
encoded with numpy (the constant part of each event serialised once by protobuf, the
wall time, step varint and float filled in per record, CRC-32C computed column by column
by :func:`.crc.masked_crc32c_rows`)
and are byte-identical to ``add_scalar`` called for each point, about ten times faster.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from runreview.sources.tensorboard.tfrecord.crc import masked_crc32c, masked_crc32c_rows

FILE_VERSION = "brain.Event:2"
#: Points encoded per block by ``scalar_records`` (bounds its temporary arrays).
_BLOCK = 1 << 16
_DTYPES = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
}


def frame_record(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, data, masked CRC of the data."""
    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def event_file_name(wall_time: float, hostname: str, pid: int = 1, index: int = 0) -> str:
    """``events.out.tfevents.<seconds>.<host>.<pid>.<index>``, the torch/TF1 naming."""
    return f"events.out.tfevents.{int(wall_time):010d}.{hostname}.{pid}.{index}"


class EventWriter:
    """Writes one event file into a run directory, synchronously, with explicit wall times.

    Use as a context manager; the file starts with the ``file_version`` event stamped
    ``wall_time``. An existing file of the same name is never overwritten
    (``FileExistsError``): pass another ``index``.
    """

    def __init__(
        self,
        run_dir: str | Path,
        wall_time: float,
        *,
        hostname: str = "localhost",
        pid: int = 1,
        index: int = 0,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / event_file_name(wall_time, hostname, pid, index)
        self._file = self.path.open("xb")
        self._tags_with_metadata: set[str] = set()
        self.write_event(event_pb2.Event(wall_time=wall_time, file_version=FILE_VERSION))

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()

    def write_event(self, event: event_pb2.Event) -> None:
        """Append one event record."""
        self._file.write(frame_record(event.SerializeToString()))

    def write_summary(self, value: summary_pb2.Summary.Value, step: int, wall_time: float) -> None:
        """Append an event holding one summary value."""
        summary = summary_pb2.Summary(value=[value])
        self.write_event(event_pb2.Event(wall_time=wall_time, step=step, summary=summary))

    def add_scalar(
        self, tag: str, value: float, step: int, wall_time: float, *, v2: bool = False
    ) -> None:
        """A scalar point: v1 ``simple_value``, or with ``v2`` a TF2 float32 tensor."""
        if not v2:
            summary_value = summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
        else:
            summary_value = summary_pb2.Summary.Value(
                tag=tag, tensor=tensor_proto(np.asarray(value, dtype=np.float32))
            )
            self._attach_metadata(summary_value, "scalars")
        self.write_summary(summary_value, step, wall_time)

    def add_scalars(self, tag: str, values: Any, steps: Any, wall_times: Any) -> None:
        """Many v1 scalar points of one tag (arrays of equal length), written exactly as
        ``add_scalar`` would write them one by one, but encoded with numpy."""
        self._file.write(scalar_records(tag, values, steps, wall_times))

    def add_text(self, tag: str, text: str, step: int, wall_time: float) -> None:
        """A text summary (a scalar string tensor, plugin ``text``)."""
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
            string_val=[text.encode("utf-8")],
        )
        summary_value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
        self._attach_metadata(summary_value, "text")
        self.write_summary(summary_value, step, wall_time)

    def add_image(
        self, tag: str, png: bytes, height: int, width: int, step: int, wall_time: float
    ) -> None:
        """A v1 image summary of an RGB PNG."""
        image = summary_pb2.Summary.Image(
            height=height, width=width, colorspace=3, encoded_image_string=png
        )
        self.write_summary(summary_pb2.Summary.Value(tag=tag, image=image), step, wall_time)

    def add_tensor(
        self, tag: str, array: Any, step: int, wall_time: float, *, plugin: str = ""
    ) -> None:
        """A tensor summary of ``array`` (float32/64 or int32/64), tagged for ``plugin``.

        With no ``plugin`` the event carries no metadata: readers know it by its tag.
        """
        summary_value = summary_pb2.Summary.Value(tag=tag, tensor=tensor_proto(array))
        self._attach_metadata(summary_value, plugin)
        self.write_summary(summary_value, step, wall_time)

    def add_hparams_start(
        self,
        hparams: Mapping[str, float | int | str | bool],
        metric_tags: Sequence[str],
        *,
        start_time: float,
        group_name: str = "",
    ) -> None:
        """The hparams plugin's experiment and session start summaries (at step 0).

        Written when training starts, as the hparams Keras callback does; close the session
        with ``add_hparams_end``.
        """
        experiment = api_pb2.Experiment(
            time_created_secs=start_time,
            hparam_infos=[_hparam_info(name, value) for name, value in hparams.items()],
            metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=t)) for t in metric_tags],
        )
        start = plugin_data_pb2.SessionStartInfo(start_time_secs=start_time, group_name=group_name)
        for name, value in hparams.items():
            _set_hparam_value(start.hparams[name], value)
        self._write_hparams(hparams_metadata.EXPERIMENT_TAG, start_time, experiment=experiment)
        self._write_hparams(
            hparams_metadata.SESSION_START_INFO_TAG, start_time, session_start_info=start
        )

    def add_hparams_end(self, *, success: bool, end_time: float) -> None:
        """The hparams plugin's session end summary: success or failure, and when."""
        status = api_pb2.STATUS_SUCCESS if success else api_pb2.STATUS_FAILURE
        end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end_time)
        self._write_hparams(hparams_metadata.SESSION_END_INFO_TAG, end_time, session_end_info=end)

    def _write_hparams(self, tag: str, wall_time: float, **content: Any) -> None:
        """One hparams summary: plugin data in the metadata, TensorBoard's null tensor."""
        plugin_data = plugin_data_pb2.HParamsPluginData(**content)
        summary_value = summary_pb2.Summary.Value(
            tag=tag,
            metadata=hparams_metadata.create_summary_metadata(plugin_data),
            tensor=hparams_metadata.NULL_TENSOR,
        )
        self.write_summary(summary_value, 0, wall_time)

    def _attach_metadata(self, summary_value: summary_pb2.Summary.Value, plugin: str) -> None:
        """Plugin metadata on the first event of a tag only, as TF2 writers do."""
        if not plugin or summary_value.tag in self._tags_with_metadata:
            return
        self._tags_with_metadata.add(summary_value.tag)
        summary_value.metadata.plugin_data.plugin_name = plugin


def tensor_proto(array: Any) -> tensor_pb2.TensorProto:
    """A TensorProto with the values in little-endian ``tensor_content`` (as TF2 writes)."""
    values = np.asarray(array)
    dtype = _DTYPES.get(values.dtype)
    if dtype is None:
        raise TypeError(f"unsupported tensor dtype {values.dtype}; use float32/64 or int32/64")
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in values.shape]
    )
    content = values.astype(values.dtype.newbyteorder("<")).tobytes()
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, tensor_content=content)


def _hparam_info(name: str, value: float | int | str | bool) -> api_pb2.HParamInfo:
    """The experiment's declaration of one hyperparameter, typed from its value."""
    if isinstance(value, bool):
        kind = api_pb2.DATA_TYPE_BOOL
    elif isinstance(value, int | float):
        kind = api_pb2.DATA_TYPE_FLOAT64
    else:
        kind = api_pb2.DATA_TYPE_STRING
    return api_pb2.HParamInfo(name=name, type=kind)


def _set_hparam_value(slot: Any, value: float | int | str | bool) -> None:
    """Fill a ``google.protobuf.Value`` the way the hparams plugin expects."""
    if isinstance(value, bool):
        slot.bool_value = value
    elif isinstance(value, int | float):
        slot.number_value = float(value)
    else:
        slot.string_value = str(value)


# --- many scalars at once -----------------------------------------------------------------


def scalar_records(tag: str, values: Any, steps: Any, wall_times: Any) -> bytes:
    """The framed records of v1 scalar events (``simple_value``), one per point, exactly the
    bytes ``frame_record(Event(...).SerializeToString())`` gives for each.

    Protobuf leaves out a zero wall time and a zero step (proto3 defaults) and writes the
    step as a varint of 1 to 10 bytes, so records differ in length: each block of points
    is encoded in groups of equal length and the groups are put back in order.
    """
    with np.errstate(over="ignore"):  # as protobuf does, too large a float becomes inf
        value = np.asarray(values, dtype=np.float64).astype("<f4").reshape(-1)
    step = np.asarray(steps, dtype=np.int64).reshape(-1)
    wall = np.asarray(wall_times, dtype="<f8").reshape(-1)
    if not value.size == step.size == wall.size:
        raise ValueError("values, steps and wall_times must have the same length")
    tail = _summary_tail(tag)
    return b"".join(
        _encode_block(tail, value[i : i + _BLOCK], step[i : i + _BLOCK], wall[i : i + _BLOCK])
        for i in range(0, value.size, _BLOCK)
    )


def _summary_tail(tag: str) -> bytes:
    """The event's ``summary`` field up to its float: field 5, length, Summary bytes without
    the last 4 (the ``simple_value``, the last field protobuf writes)."""
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=0.0)])
    data = summary.SerializeToString()
    if data[-5] != 0x15:  # field 2 (simple_value), wire type 5 (fixed32)
        raise RuntimeError("unexpected Summary layout: simple_value is not its last field")
    return b"\x2a" + _varint(len(data)) + data[:-4]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _varint_lengths(u: np.ndarray) -> np.ndarray:
    """Bytes in the varint of each uint64 (1 to 10)."""
    length = np.ones(u.size, dtype=np.int64)
    for k in range(1, 10):
        length += u >= np.uint64(1) << np.uint64(7 * k)
    return length


def _encode_block(tail: bytes, value: np.ndarray, step: np.ndarray, wall: np.ndarray) -> bytes:
    """The framed records of one block of points, in order."""
    wall_len = np.where(wall.view(np.uint64) != 0, 9, 0)  # bit test: -0.0 is written
    ustep = step.view(np.uint64)
    step_len = np.where(ustep != 0, 1 + _varint_lengths(ustep), 0)
    sizes = wall_len + step_len + len(tail) + 4 + 16
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    shapes = np.unique(np.stack([wall_len, step_len], axis=1), axis=0)
    for wlen, slen in shapes.tolist():
        rows = np.flatnonzero((wall_len == wlen) & (step_len == slen))
        group = _group_records(tail, value[rows], ustep[rows], wall[rows], wlen, slen)
        out[starts[rows][:, None] + np.arange(group.shape[1])] = group
    return out.tobytes()


def _group_records(
    tail: bytes, value: np.ndarray, ustep: np.ndarray, wall: np.ndarray, wall_bytes: int, slen: int
) -> np.ndarray:
    """Framed records of equal length, one per row."""
    parts = []
    if wall_bytes:
        parts += [_column(0x09, value.size), wall.astype("<f8").view(np.uint8).reshape(-1, 8)]
    if slen:
        parts += [_column(0x10, value.size), _varint_columns(ustep, slen - 1)]
    constant = np.frombuffer(tail, dtype=np.uint8)
    parts += [np.broadcast_to(constant, (value.size, constant.size))]
    parts += [value.astype("<f4").view(np.uint8).reshape(-1, 4)]
    data = np.hstack(parts)
    header = struct.pack("<Q", data.shape[1])
    header += struct.pack("<I", masked_crc32c(header))
    crc = masked_crc32c_rows(data).astype("<u4").view(np.uint8).reshape(-1, 4)
    return np.hstack(
        [np.broadcast_to(np.frombuffer(header, np.uint8), (value.size, 12)), data, crc]
    )


def _column(byte: int, count: int) -> np.ndarray:
    return np.full((count, 1), byte, dtype=np.uint8)


def _varint_columns(u: np.ndarray, length: int) -> np.ndarray:
    """Each uint64 as a varint of exactly ``length`` bytes (its own length), one per row."""
    shifts = np.arange(length, dtype=np.uint64) * np.uint64(7)
    groups = ((u[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    groups[:, :-1] |= 0x80
    return groups
