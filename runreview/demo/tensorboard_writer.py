"""Writing demo runs as TensorBoard run directories."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from runreview.capture import log_confusion_matrix, log_environment
from runreview.demo.images import confusion_image
from runreview.demo.plan import (
    METRICS,
    RESUME_EPOCH,
    RunSpec,
    end_time,
    epoch_times,
    logged_params,
    notes,
)
from runreview.demo.training import Result, Split


def write_tensorboard_run(
    logdir: Path, spec: RunSpec, result: Result, split: Split, env: dict[str, Any]
) -> None:
    """One run directory: event file(s), environment.json and confusion_matrix.json."""
    from runreview.sources.tensorboard.tfrecord.write import EventWriter

    run_dir = logdir / spec.experiment.name / spec.name
    log_environment(logdir=run_dir, env=env)
    times = epoch_times(spec, len(result.history))
    host, v2 = env["hostname"], "v2" in spec.extras
    writer = EventWriter(run_dir, spec.start.timestamp(), hostname=host)
    try:
        writer.add_hparams_start(logged_params(spec), METRICS, start_time=spec.start.timestamp(),
                                 group_name=spec.config)  # fmt: skip
        writer.add_text("notes", notes(spec, result.error), 0, spec.start.timestamp())
        for step, (point, when) in enumerate(zip(result.history, times, strict=True), 1):
            if "resume" in spec.extras and step == RESUME_EPOCH + 1:
                writer.close()  # the job was restarted from its checkpoint
                resumed = when.timestamp() - spec.experiment.epoch_seconds
                writer = EventWriter(run_dir, resumed, hostname=host, index=1)
            for tag in METRICS:
                writer.add_scalar(tag, point[tag], step, when.timestamp(), v2=v2)
        if result.error is None:
            _write_confusion(writer, run_dir, spec, result, split, times[-1])
        end = end_time(spec, times).timestamp()
        writer.add_hparams_end(success=result.error is None, end_time=end)
    finally:
        writer.close()


def _write_confusion(
    writer: Any, run_dir: Path, spec: RunSpec, result: Result, split: Split, when: datetime
) -> None:
    """confusion_matrix.json, and for some runs a tensor and a PNG image of it."""
    matrix = log_confusion_matrix(
        split.named(split.y_val), split.named(result.y_pred), labels=split.label_names,
        logdir=run_dir,
    )  # fmt: skip
    step, wall_time = len(result.history), when.timestamp()
    if "confusion_tensor" in spec.extras:
        counts = np.asarray(matrix["matrix"], dtype=np.int32)
        writer.add_tensor("confusion_matrix", counts, step, wall_time)
    if "confusion_png" in spec.extras:
        image = confusion_image(matrix["labels"], matrix["matrix"])
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        writer.add_image("confusion_matrix", buffer.getvalue(), image.height, image.width,
                         step, wall_time)  # fmt: skip
