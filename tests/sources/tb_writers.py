"""Real event-file writers and damage helpers for the TensorBoard tests.

Writers used: tensorboardX ``SummaryWriter`` (scalars, text, images, hparams),
tensorboard's own ``EventFileWriter`` / ``RecordWriter`` (TF2-style tensor summaries built
with tensorboard's summary metadata helpers), and :func:`frame` (TFRecord framing with
google_crc32c, for large files written fast).
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
from collections.abc import Iterable, Iterator

import google_crc32c
import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from tests.tempdirs import reachable_temp_root

HEADER = 12
FOOTER = 4


def masked(data: bytes) -> int:
    """TFRecord's masked CRC32C, written out here independently of the product code."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, data, masked CRC of the data."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked(header)) + data + struct.pack("<I", masked(data))


def frame_with_tensorboard(payloads: Iterable[bytes]) -> bytes:
    """Frame ``payloads`` with tensorboard's own RecordWriter (a second, real writer)."""
    sink = io.BytesIO()
    writer = RecordWriter(sink)
    for data in payloads:
        writer.write(data)
    return sink.getvalue()


def record_offsets(data: bytes) -> list[int]:
    """Header offsets of the records of an intact file (plain walk, no CRC checks)."""
    offsets, pos = [], 0
    while pos + HEADER <= len(data):
        offsets.append(pos)
        (length,) = struct.unpack_from("<Q", data, pos)
        pos += HEADER + length + FOOTER
    return offsets


# --- events ------------------------------------------------------------------------------


def scalar_event(tag: str, step: int, value: float, wall: float = 1.7e9) -> event_pb2.Event:
    """A v1 scalar event (``simple_value``), as tensorboardX and torch write them."""
    return event_pb2.Event(
        wall_time=wall,
        step=step,
        summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]),
    )


def _metadata(plugin: str) -> summary_pb2.SummaryMetadata:
    if plugin == "scalars":
        from tensorboard.plugins.scalar import metadata
    elif plugin == "images":
        from tensorboard.plugins.image import metadata
    elif plugin == "text":
        from tensorboard.plugins.text import metadata
    else:
        return summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin)
        )
    return metadata.create_summary_metadata(display_name="", description="")


def tensor_event(
    tag: str,
    step: int,
    tensor,
    plugin: str | None,
    wall: float = 1.7e9,
) -> event_pb2.Event:
    """A TF2-style tensor summary; ``plugin`` None means no metadata (TF2 sends it once)."""
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if plugin is not None:
        value.metadata.CopyFrom(_metadata(plugin))
    return event_pb2.Event(wall_time=wall, step=step, summary=summary_pb2.Summary(value=[value]))


def tf2_scalar_events(
    tag: str, values: list[float], *, dtype=np.float32, content: bool = False, wall: float = 1.7e9
) -> list[event_pb2.Event]:
    """Scalars as TF2 writes them: metadata on the first event of the tag only.

    ``content=True`` stores the number in ``tensor_content`` (as TF's C++ writer does);
    otherwise in ``float_val`` / ``double_val``.
    """
    events = []
    for step, v in enumerate(values):
        tensor = tensor_util.make_tensor_proto(np.array(v, dtype=dtype))
        if content:
            tensor = _as_content(tensor, np.array(v, dtype=dtype))
        plugin = "scalars" if step == 0 else None
        events.append(tensor_event(tag, step, tensor, plugin, wall + step))
    return events


def _as_content(tensor, array: np.ndarray):
    out = type(tensor)()
    out.dtype = tensor.dtype
    out.tensor_shape.CopyFrom(tensor.tensor_shape)
    out.tensor_content = array.tobytes()
    return out


def text_event(tag: str, step: int, text: str) -> event_pb2.Event:
    """A text summary (plugin ``text``, scalar string tensor), as TF2 writes it."""
    tensor = tensor_util.make_tensor_proto(text.encode("utf-8"))
    return tensor_event(tag, step, tensor, "text")


def png_bytes(height: int, width: int, seed: int = 0) -> bytes:
    """A real PNG of random RGB pixels."""
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def image_event(tag: str, step: int, pngs: list[bytes], width: int, height: int) -> event_pb2.Event:
    """A v2 image summary: string tensor [width, height, png, png, ...], plugin ``images``."""
    tensor = tensor_util.make_tensor_proto([str(width).encode(), str(height).encode(), *pngs])
    return tensor_event(tag, step, tensor, "images")


def matrix_event(
    tag: str, step: int, matrix: np.ndarray, plugin: str | None = ""
) -> event_pb2.Event:
    """A rank-2 tensor summary (e.g. a confusion matrix); plugin "" = plain tensor."""
    return tensor_event(tag, step, tensor_util.make_tensor_proto(matrix), plugin)


def session_start_event(step: int, wall: float = 1.7e9) -> event_pb2.Event:
    """A ``SessionLog.START`` event, as TF1 writes on (re)start."""
    return event_pb2.Event(
        wall_time=wall,
        step=step,
        session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START),
    )


def hparams_pb_event(hparams: dict, wall: float = 1.7e9) -> event_pb2.Event:
    """TF's hparams plugin ``session_start_info`` summary (tensorboard's own builder)."""
    from tensorboard.plugins.hparams import summary_v2

    summary = summary_v2.hparams_pb(hparams, trial_id="trial-1", start_time_secs=wall)
    return event_pb2.Event(wall_time=wall, step=0, summary=summary)


# --- writing files ----------------------------------------------------------------------


def write_with_event_file_writer(logdir: str, events: Iterable[event_pb2.Event]) -> str:
    """Write ``events`` with tensorboard's EventFileWriter; returns the file path."""
    writer = EventFileWriter(logdir)
    for event in events:
        writer.add_event(event)
    writer.close()
    return writer._file_name


def write_records(path: str, events: Iterable[event_pb2.Event], mode: str = "wb") -> bytes:
    """Frame ``events`` with :func:`frame` and write (or append) them to ``path``."""
    data = b"".join(frame(e.SerializeToString()) for e in events)
    with open(path, mode) as fh:
        fh.write(data)
    return data


def write_tbx_scalars(
    logdir: str, values: dict[str, list[float]], start_step: int = 0, suffix: str = ""
) -> None:
    """Scalars with tensorboardX: ``values[tag][i]`` at step ``start_step + i``.

    tensorboardX names files by the second: give a second writer in the same directory a
    ``suffix``, or it truncates the first file.
    """
    from tensorboardX import SummaryWriter

    with SummaryWriter(logdir, filename_suffix=suffix) as writer:
        for tag, series in values.items():
            for i, v in enumerate(series):
                writer.add_scalar(tag, v, start_step + i)


def tbx_event_file(logdir: str) -> str:
    """The single event file in ``logdir``."""
    names = [n for n in os.listdir(logdir) if "tfevents" in n]
    assert len(names) == 1, names
    return os.path.join(logdir, names[0])


def write_bulk_scalars(path: str, tags: int, steps: int, wall: float = 1.7e9) -> int:
    """A big scalar file, fast: ``tags`` x ``steps`` simple_value events. Returns points."""
    parts = []
    for step in range(steps):
        for k in range(tags):
            event = scalar_event(f"tag{k}", step, step * 0.5 + k, wall + step)
            parts.append(frame(event.SerializeToString()))
    with open(path, "wb") as fh:
        fh.write(b"".join(parts))
    return tags * steps


# --- privileges -------------------------------------------------------------------------


@contextlib.contextmanager
def world_readable_tmpdir() -> Iterator[str]:
    """A temp dir that an unprivileged user can enter (pytest's tmp_path is 0700, and so
    may be ``TMPDIR`` itself)."""
    path = tempfile.mkdtemp(prefix="rr-tb-", dir=reachable_temp_root())
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """Run the block with permission checks enforced (drops root's effective uid)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
