"""Decoding the records of an event file into a :class:`~.state.FileState`.

Scalar events go through the vectorised fast path (:mod:`.tfrecord.fast`); protobuf
(``tensorboard.compat.proto``) decodes every other record: hparams, text, images, tensors,
``SessionLog.START``, and scalars of unusual shapes. Plugin names are remembered per tag,
since TF2 sends a tag's metadata only with its first event.
"""

from __future__ import annotations

import math
import struct

import numpy as np
from google.protobuf.message import DecodeError

from runreview.contract import Finding, FindingKind, Severity
from runreview.sources.tensorboard import tfrecord
from runreview.sources.tensorboard.state import (
    MAX_TENSOR_ELEMENTS,
    OTHER_TENSOR_PLUGINS,
    PLUGIN_HPARAMS,
    PLUGIN_IMAGES,
    PLUGIN_SCALARS,
    PLUGIN_TEXT,
    WALL_LIMIT,
    FileState,
    ImageRef,
    Scalars,
    Tensor,
    Text,
    compact_scalars,
    merge_scalars,
)
from runreview.sources.tensorboard.tfrecord.fast import ScalarEvents, decode_scalar_events
from runreview.sources.tensorboard.tfrecord.frame import HEADER_BYTES


def event_pb2():
    """tensorboard's ``event_pb2`` module."""
    from tensorboard.compat.proto import event_pb2

    return event_pb2


def read_image(ref: ImageRef) -> bytes:
    """The encoded image ``ref`` points at, read again from its file. Raises OSError,
    DecodeError or IndexError when the file changed."""
    with open(ref.path, "rb") as fh:
        fh.seek(ref.offset)
        data = fh.read(ref.length)
    value = event_pb2().Event.FromString(data).summary.value[ref.value_pos]
    if ref.image_pos < 0:
        return value.image.encoded_image_string
    return value.tensor.string_val[2 + ref.image_pos]


def _format_number(x: float) -> str:
    if math.isfinite(x) and x == int(x) and abs(x) < 2**53:
        return str(int(x))
    return repr(float(x))


def format_hparam(value) -> str:
    """An hparams ``google.protobuf.Value`` as the string runreview stores as a param.

    Numbers that are whole print without ``.0`` (TensorBoard stores every number as a
    double, so ``32`` and ``32.0`` cannot be told apart); booleans print as ``True`` /
    ``False`` like ``str()`` in Python; lists and structs print as JSON.
    """
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return _format_number(value.number_value)
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return str(value.bool_value)
    if kind == "null_value" or kind is None:
        return ""
    from google.protobuf.json_format import MessageToJson

    return MessageToJson(value, indent=None)


def _tensor_array(tensor) -> np.ndarray:
    """A TensorProto as a numpy array; raises ValueError when it cannot or should not be."""
    from tensorboard.util import tensor_util

    dims = [d.size for d in tensor.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise ValueError(f"tensor with unknown dimensions {dims}")
    if math.prod(dims) > MAX_TENSOR_ELEMENTS:
        raise ValueError(f"tensor of shape {dims} above {MAX_TENSOR_ELEMENTS} elements")
    try:
        return tensor_util.make_ndarray(tensor)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"unreadable tensor ({exc})") from exc


_SCALAR_CONTENT = {1: struct.Struct("<f"), 2: struct.Struct("<d")}  # DT_FLOAT, DT_DOUBLE


def _tensor_scalar(tensor) -> float:
    """The single number of a scalar-plugin tensor; raises ValueError otherwise."""
    content = tensor.tensor_content
    if not content:
        if len(tensor.float_val) == 1:
            return tensor.float_val[0]
        if len(tensor.double_val) == 1:
            return tensor.double_val[0]
    else:
        layout = _SCALAR_CONTENT.get(tensor.dtype)
        if layout is not None and len(content) == layout.size:  # TF2's usual form
            return layout.unpack(content)[0]
    array = _tensor_array(tensor)
    if array.size != 1 or array.dtype.kind not in "biuf":
        raise ValueError(f"scalar summary holds a {array.dtype} tensor of shape {array.shape}")
    return float(array.reshape(-1)[0])


class ChunkDecoder:
    """Decodes the records protobuf must handle (everything but the fast-path scalars)."""

    def __init__(self, state: FileState, buf: bytes, scan: tfrecord.ScanResult, uri: str):
        self.state = state
        self.buf = buf
        self.scan = scan
        self.uri = uri
        self.tags: dict[str, int] = {}
        self.points: tuple[list, ...] = ([], [], [], [], [])  # code, step, value, wall, record
        self.walls: list[float] = []
        self.wall_records: list[int] = []
        self.parse = event_pb2().Event.FromString

    def finding(self, severity: Severity, kind: FindingKind, message: str, i: int) -> Finding:
        """A finding about record ``i`` of the chunk."""
        return Finding(
            severity,
            self.uri,
            message,
            path=self.state.path,
            offset=self.offset(i),
            record=int(self.scan.indexes[i]),
            run_id=self.state.run_id,
            kind=kind,
        )

    def offset(self, i: int) -> int:
        """The file offset of record ``i``'s header."""
        return self.scan.base_offset + int(self.scan.starts[i]) - HEADER_BYTES

    def decode(self, i: int) -> None:
        """Parse record ``i`` with protobuf and keep what it holds."""
        data = self.buf[int(self.scan.starts[i]) : int(self.scan.ends[i])]
        try:
            event = self.parse(data)
        except (DecodeError, RecursionError) as exc:
            message = f"record is not a valid Event protobuf ({type(exc).__name__}: {exc})"
            self.state.problem(
                FindingKind.DECODE_ERROR,
                self.finding(Severity.ERROR, FindingKind.DECODE_ERROR, message, i),
            )
            return
        record = int(self.scan.indexes[i])
        self.walls.append(event.wall_time)
        self.wall_records.append(record)
        what = event.WhichOneof("what")
        if what == "summary":
            for pos, value in enumerate(event.summary.value):
                self.value(event, pos, value, i)
        elif what == "session_log":
            if event.session_log.status == event.session_log.START:
                self.state.session_starts.append((event.step, record))
        elif what not in (None, "file_version"):
            self.not_read(what, "", i)

    def not_read(self, what: str, tag: str, i: int) -> None:
        """Count an item of a kind runreview does not read."""
        detail = f"tag {tag!r}" if tag else "no tag"
        self.state.count(f"skip:{what}", 1, int(self.scan.indexes[i]), self.offset(i), detail)

    def add_point(self, tag: str, step: int, value: float, wall: float, i: int) -> None:
        """Keep one scalar point."""
        code = self.tags.setdefault(tag, len(self.tags))
        for column, item in zip(
            self.points, (code, step, value, wall, int(self.scan.indexes[i])), strict=True
        ):
            column.append(item)

    def value(self, event, pos: int, value, i: int) -> None:
        """One ``Summary.Value`` of an event."""
        tag = value.tag
        if value.HasField("metadata"):
            self.metadata(tag, value.metadata, i)
        kind = value.WhichOneof("value")
        if kind == "simple_value":
            self.add_point(tag, event.step, value.simple_value, event.wall_time, i)
        elif kind == "image":
            self.image(tag, event, pos, -1, i)
        elif kind == "tensor":
            self.tensor(tag, event, pos, value.tensor, i)
        elif kind is not None:
            self.not_read(kind, tag, i)

    def metadata(self, tag: str, metadata, i: int) -> None:
        """Remember the tag's plugin; read hparams."""
        plugin = metadata.plugin_data.plugin_name
        if not plugin:
            return
        self.state.plugins[tag] = plugin
        if plugin == PLUGIN_HPARAMS:
            self.hparams(metadata.plugin_data.content, i)

    def hparams(self, content: bytes, i: int) -> None:
        """``session_start_info`` hparams become params."""
        from tensorboard.plugins.hparams import plugin_data_pb2

        try:
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
        except (DecodeError, RecursionError) as exc:
            message = f"hparams plugin data is not readable ({exc})"
            self.state.problem(
                FindingKind.DECODE_ERROR,
                self.finding(Severity.ERROR, FindingKind.DECODE_ERROR, message, i),
            )
            return
        if data.WhichOneof("data") == "session_start_info":
            for name, value in sorted(data.session_start_info.hparams.items()):
                self.state.params[name] = format_hparam(value)

    def image(self, tag: str, event, pos: int, image_pos: int, i: int) -> None:
        """Keep where an image is (it is read again on demand)."""
        self.state.images.append(
            ImageRef(
                tag=tag,
                step=event.step,
                wall=event.wall_time,
                record=int(self.scan.indexes[i]),
                path=self.state.path,
                offset=self.scan.base_offset + int(self.scan.starts[i]),
                length=int(self.scan.ends[i] - self.scan.starts[i]),
                value_pos=pos,
                image_pos=image_pos,
            )
        )

    def tensor(self, tag: str, event, pos: int, tensor, i: int) -> None:
        """A tensor summary, read according to its tag's plugin."""
        plugin = self.state.plugins.get(tag, "")
        try:
            if plugin == PLUGIN_SCALARS:
                self.add_point(tag, event.step, _tensor_scalar(tensor), event.wall_time, i)
            elif plugin == PLUGIN_IMAGES:
                for k in range(max(len(tensor.string_val) - 2, 0)):
                    self.image(tag, event, pos, k, i)
            elif plugin == PLUGIN_TEXT:
                self.text(tag, event, tensor, i)
            elif plugin == PLUGIN_HPARAMS:
                return
            elif plugin in OTHER_TENSOR_PLUGINS:
                self.not_read(plugin, tag, i)
            else:
                self.other_tensor(tag, event, tensor, i)
        except ValueError as exc:
            message = f"tensor summary {tag!r} not read: {exc}"
            self.state.problem(
                FindingKind.BAD_TENSOR,
                self.finding(Severity.WARNING, FindingKind.BAD_TENSOR, message, i),
            )

    def text(self, tag: str, event, tensor, i: int) -> None:
        """Keep a text summary."""
        parts = [s.decode("utf-8", errors="replace") for s in tensor.string_val]
        if not parts and tensor.tensor_content:
            raise ValueError("text tensor without string values")
        self.state.texts.append(
            Text(tag, event.step, event.wall_time, "\n".join(parts), int(self.scan.indexes[i]))
        )

    def other_tensor(self, tag: str, event, tensor, i: int) -> None:
        """Keep a rank-2 numeric tensor of no known plugin."""
        if len(tensor.tensor_shape.dim) != 2:
            self.not_read(f"rank-{len(tensor.tensor_shape.dim)} tensor", tag, i)
            return
        array = _tensor_array(tensor)
        if array.dtype.kind not in "biuf":
            self.not_read(f"{array.dtype} tensor", tag, i)
            return
        record = int(self.scan.indexes[i])
        self.state.tensors.append(
            Tensor(tag, event.step, event.wall_time, array, record, self.state.path)
        )

    def scalars(self) -> Scalars:
        """The points kept, as columns."""
        code, step, value, wall, record = self.points
        return Scalars(
            tags=list(self.tags),
            code=np.array(code, dtype=np.int32),
            step=np.array(step, dtype=np.int64),
            value=np.array(value, dtype=np.float64),
            wall=np.array(wall, dtype=np.float64),
            record=np.array(record, dtype=np.int64),
        )


def _fast_points(fast: ScalarEvents, scan: tfrecord.ScanResult, keep: np.ndarray) -> Scalars:
    return Scalars(
        tags=fast.tags,
        code=fast.tag_codes[keep],
        step=fast.step[keep],
        value=fast.value[keep],
        wall=fast.wall_time[keep],
        record=scan.indexes[fast.rows[keep]],
    )


def _scalar_tensor_tags(state: FileState, fast: ScalarEvents) -> np.ndarray:
    """Per fast-path row: True unless it is a tensor whose tag is not a "scalars" tag."""
    scalar_tag = np.array([state.plugins.get(t) == PLUGIN_SCALARS for t in fast.tags], dtype=bool)
    if not fast.tags:
        return ~fast.tensor
    return ~fast.tensor | scalar_tag[fast.tag_codes]


def parse_chunk(state: FileState, buf: bytes, scan: tfrecord.ScanResult, uri: str) -> None:
    """Decode the good records of ``scan`` into ``state``.

    Scalar events go through the vectorised fast path; protobuf decodes the rest first
    (so the plugin of every tag is known), then any fast-path tensor that turns out not
    to be a "scalars" tensor.
    """
    fast = decode_scalar_events(buf, scan.starts, scan.ends)
    decoder = ChunkDecoder(state, buf, scan, uri)
    rest = np.ones(scan.count, dtype=bool)
    rest[fast.rows] = False
    for i in np.flatnonzero(rest).tolist():
        decoder.decode(i)
    accepted = _scalar_tensor_tags(state, fast)
    for i in fast.rows[~accepted].tolist():
        decoder.decode(i)
    quick = _fast_points(fast, scan, accepted)
    points = merge_scalars(quick, decoder.scalars())
    if points.code.size:
        state.scalars.append(compact_scalars(points))
    walls = np.concatenate([quick.wall, np.array(decoder.walls, dtype=np.float64)])
    records = np.concatenate([quick.record, np.array(decoder.wall_records, dtype=np.int64)])
    _check_walls(state, walls, records)
    _check_steps(state, points)


def _first(records: np.ndarray, mask: np.ndarray) -> int:
    return int(records[mask].min())


def _check_walls(state: FileState, walls: np.ndarray, records: np.ndarray) -> None:
    if walls.size == 0:
        return
    nan = np.isnan(walls)
    if nan.any():
        state.count(FindingKind.NAN_WALL_TIME, int(nan.sum()), _first(records, nan), None, "")
    bad = ~nan & ((walls < 0) | (np.abs(walls) > WALL_LIMIT))
    if bad.any():
        state.count(FindingKind.NEGATIVE_WALL_TIME, int(bad.sum()), _first(records, bad), None, "")
    finite = walls[np.isfinite(walls)]
    if finite.size:
        state.wall_min = float(np.fmin(state.wall_min, finite.min()))
        state.wall_max = float(np.fmax(state.wall_max, finite.max()))


def _check_steps(state: FileState, points: Scalars) -> None:
    negative = points.step < 0
    if negative.any():
        state.count(
            FindingKind.NEGATIVE_STEP,
            int(negative.sum()),
            _first(points.record, negative),
            None,
            "",
        )
