"""Real W&B run folders, written by the wandb package in offline mode, for the tests.

Run as a script by a Python that has wandb installed (a throwaway virtualenv per wandb
version, see :mod:`tests.wandb_fixture`)::

    python tests/wandb_writer.py OUT_DIR

It writes ``OUT_DIR/wandb/offline-run-*`` folders. The tests import this module for the
values it logs (the module imports wandb only inside :func:`main`), so what is checked is
exactly what was logged.

Run ids carry the wandb version (``base0179`` for 0.17.9) so that the folders of several
versions can sit side by side in one folder without being taken for resumed runs.
"""

from __future__ import annotations

import math
import sys
import time

PROJECT = "vision"
STEPS = 12
LONG_STEPS = 1200
BLOB_CHARS = 70_000  # a config value longer than two 32 KiB blocks: FIRST, MIDDLE, LAST

BASELINE_NAME = "baseline"
BASELINE_CONFIG = {
    "lr": 0.001,
    "batch_size": 32,
    "optimizer": {"name": "adam", "beta1": 0.9},
    "layers": [64, 128],
    "augment": True,
}
BASELINE_TAGS = ["baseline", "resnet"]
BASELINE_NOTES = "first try"
BASELINE_GROUP = "sweep-a"
BEST_ACC = 0.95  # set in the summary by hand (never logged to the history)

CLASSES = ["cat", "dog", "bird"]
Y_TRUE = [0, 0, 1, 1, 1, 2, 2, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 2, 2, 0, 2]

FAILED_NAME = "diverged"
FAILED_CONFIG = {"lr": 0.1}
FAILED_EXIT_CODE = 1

LONG_NAME = "long"
RESUMED_NAME = "resume-me"
RESUMED_STEPS = 4


def version_tag(version: str) -> str:
    """Four digits from a wandb version: ``0.17.9`` -> ``0179``, ``0.31.0`` -> ``0310``."""
    major, minor, patch = (int(p) for p in version.split(".")[:3])
    return f"{major}{minor:02d}{patch}"


def run_ids(version: str) -> dict[str, str]:
    """The run ids written by one wandb version."""
    tag = version_tag(version)
    return {
        "baseline": f"base{tag}",
        "failed": f"fail{tag}",
        "long": f"long{tag}",
        "resumed": f"resu{tag}",
    }


def baseline_point(step: int) -> dict:
    """What the baseline run logs at ``step``."""
    point = {
        "loss": 1.0 / (step + 1),
        "acc": step / STEPS,
        "train": {"lr": 0.001 * 0.5**step},
        "phase": "warmup" if step < 3 else "main",
        "grad_norm": math.nan if step == 5 else step * 1.5,
    }
    if step % 4 == 3:
        point["val/loss"] = 2.0 / (step + 1)
    return point


def long_point(step: int) -> dict:
    """What the long run logs at ``step``."""
    return {"loss": 1.0 / (step + 1), "acc": step / LONG_STEPS}


def resumed_loss(segment: int, step: int) -> float:
    """The resumed run's loss: 0, 1, 2, 3 before the resume, 10, 11, 12, 13 after."""
    return float(10 * segment + step)


def _next_second() -> None:
    """Wait for the clock's next second, so a resumed run gets a folder of its own."""
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.02)


def main(out: str) -> None:
    """Write every run into ``out/wandb``."""
    import wandb

    ids = run_ids(wandb.__version__)
    _write_baseline(wandb, ids["baseline"])
    _write_failed(wandb, ids["failed"])
    _write_long(wandb, ids["long"])
    _write_resumed(wandb, ids["resumed"])


def _write_baseline(wandb, run_id: str) -> None:
    run = wandb.init(
        project=PROJECT,
        id=run_id,
        name=BASELINE_NAME,
        config=BASELINE_CONFIG,
        tags=BASELINE_TAGS,
        notes=BASELINE_NOTES,
        group=BASELINE_GROUP,
    )
    for step in range(STEPS):
        run.log(baseline_point(step), step=step)
    matrix = wandb.plot.confusion_matrix(y_true=Y_TRUE, preds=Y_PRED, class_names=CLASSES)
    run.log({"confusion": matrix}, step=STEPS - 1)
    run.summary["best_acc"] = BEST_ACC
    run.finish()


def _write_failed(wandb, run_id: str) -> None:
    run = wandb.init(project=PROJECT, id=run_id, name=FAILED_NAME, config=FAILED_CONFIG)
    for step in range(3):
        run.log({"loss": 5.0 + step})
    run.finish(exit_code=FAILED_EXIT_CODE)


def _write_long(wandb, run_id: str) -> None:
    config = {"lr": 0.01, "blob": "x" * BLOB_CHARS}
    run = wandb.init(project=PROJECT, id=run_id, name=LONG_NAME, config=config)
    for step in range(LONG_STEPS):
        run.log(long_point(step))
    run.finish()


def _write_resumed(wandb, run_id: str) -> None:
    for segment in range(2):
        if segment:
            _next_second()
        run = wandb.init(
            project=PROJECT,
            id=run_id,
            name=RESUMED_NAME,
            resume="allow" if segment else None,
        )
        for step in range(RESUMED_STEPS):
            run.log({"loss": resumed_loss(segment, step)})
        run.finish()


if __name__ == "__main__":
    main(sys.argv[1])
