"""A small workspace the app has never seen, made by the tests with real writers.

- a TensorBoard logdir written with ``runreview.sources.tensorboard.tfrecord.write``
  (hparams, v1 and v2 scalars, a 5,000-point series, a run with only an image of its
  confusion matrix, a run with a hostile name, a run whose event file is damaged);
- an MLflow sqlite store written by the real MLflow client in a child process (so the
  client's process-global state never leaks into the tests).

Run as a script (``python stores.py mlflow OUTDIR``) it writes the MLflow part.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

HOSTILE_NAME = "[click](javascript:alert(1)) ![x](https://attacker.invalid/t.png)"
SCRIPT_TAG = "<script>alert(1)</script>"
GIT_DIFF = "--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-lr = 0.1\n+lr = 0.01  # <b>not bold</b>\n"
LONG_POINTS = 5000
START = 1_790_000_000.0  # 2026-09-21, in seconds


@dataclass(frozen=True)
class UnseenStore:
    """Where the never-seen workspace is, and facts the tests check against."""

    tracking_uri: str
    logdir: Path
    mlflow_runs: int
    tensorboard_runs: int
    image_only_run: str
    hostile_tb_run: str
    damaged_run: str
    bad_matrix_run: str


def build_unseen(root: Path) -> UnseenStore:
    """Write both parts under ``root`` and describe them."""
    logdir = root / "unseen-tb"
    runs = _write_tensorboard(logdir)
    db = root / "unseen-mlflow" / "mlflow.db"
    db.parent.mkdir(parents=True)
    subprocess.run(
        [sys.executable, __file__, "mlflow", str(db.parent)], check=True, capture_output=True
    )
    return UnseenStore(
        tracking_uri=f"sqlite:///{db}",
        logdir=logdir,
        mlflow_runs=4,
        tensorboard_runs=runs,
        image_only_run="image-only",
        hostile_tb_run="[click](javascript:alert(1))",
        damaged_run="damaged",
        bad_matrix_run="bad-matrix",
    )


# --- TensorBoard ------------------------------------------------------------------------


def _environment(python: str, packages: dict[str, str], dirty: bool) -> dict:
    return {
        "schema": "runreview.environment/1",
        "python": python,
        "platform": "Linux-6.1-x86_64",
        "packages": packages,
        "cuda": "12.4",
        "gpu": "NVIDIA A10G",
        "git": {
            "commit": "0123456789abcdef0123456789abcdef01234567" if dirty else "f" * 40,
            "branch": "main",
            "dirty": dirty,
            "diff": GIT_DIFF if dirty else "",
        },
    }


def _write_tensorboard(logdir: Path) -> int:
    """The runs of the logdir; returns how many there are."""
    from runreview.sources.tensorboard.tfrecord.write import EventWriter

    specs = {
        "lr-a": ({"lr": 0.1, "model": "cnn"}, 200),
        "lr-b": ({"lr": 0.01, "model": "cnn"}, 200),
        "long": ({"lr": 0.001, "model": "mlp"}, LONG_POINTS),
        "image-only": ({"lr": 0.05, "model": "mlp"}, 20),
        "[click](javascript:alert(1))": ({"lr": 0.2, "model": "mlp"}, 20),
        "bad-matrix": ({"lr": 0.3, "model": "mlp"}, 20),
    }
    for index, (name, (hparams, points)) in enumerate(specs.items()):
        start = START + 3600 * index
        with EventWriter(logdir / name, start) as writer:
            writer.add_hparams_start(hparams, ["loss", "acc"], start_time=start)
            for step in range(points):
                wall = start + 2.0 * step
                writer.add_scalar("loss", 2.0 / (1 + step * hparams["lr"]), step, wall, v2=True)
                writer.add_scalar("acc", min(0.99, 0.5 + step * hparams["lr"] / 50), step, wall)
            if name == "image-only":
                png = tiny_png()
                writer.add_image("confusion_matrix", png, 2, 2, points, start + 2.0 * points)
            writer.add_hparams_end(success=True, end_time=start + 2.0 * points)
    _side_files(logdir)
    _write_damaged(logdir / "damaged", START + 3600 * len(specs))
    return len(specs) + 1


def _side_files(logdir: Path) -> None:
    env_a = _environment("3.11.4", {"numpy": "1.26.4", "torch": "2.2.0", "pandas": "2.2.1"}, True)
    env_b = _environment("3.12.1", {"numpy": "2.0.0", "torch": "2.2.1", "scipy": "1.13.0"}, False)
    (logdir / "lr-a" / "environment.json").write_text(json.dumps(env_a))
    (logdir / "lr-b" / "environment.json").write_text(json.dumps(env_b))
    matrix_a = {"labels": ["cat", "dog"], "matrix": [[8, 2], [1, 9]]}
    matrix_b = {"labels": ["cat", "dog", "fox"], "matrix": [[7, 2, 1], [0, 9, 1], [0, 1, 4]]}
    (logdir / "lr-a" / "confusion_matrix.json").write_text(json.dumps(matrix_a))
    (logdir / "lr-b" / "confusion_matrix.json").write_text(json.dumps(matrix_b))
    # A logging bug: a negative count. The source reads it; the analysis refuses it.
    bad = {"labels": ["cat", "dog"], "matrix": [[5, -1], [0, 3]]}
    (logdir / "bad-matrix" / "confusion_matrix.json").write_text(json.dumps(bad))


def _write_damaged(run_dir: Path, start: float) -> None:
    """A run whose event file has a data-CRC error in its middle record."""
    from runreview.sources.tensorboard.tfrecord.write import EventWriter

    with EventWriter(run_dir, start) as writer:
        for step in range(10):
            writer.add_scalar("acc", 0.5 + step / 100, step, start + step)
        path = writer.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flips a byte inside a record's payload
    path.write_bytes(bytes(data))


def tiny_png() -> bytes:
    """A valid 2x2 RGB PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\xff\x00\x00\x00\xff\x00" for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# --- MLflow (child process) -------------------------------------------------------------


def _write_mlflow(out: Path) -> None:
    """Four runs in one experiment: rf x2, lr, and a failed run with a hostile name."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    uri = f"sqlite:///{out / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("unseen-exp", artifact_location=(out / "artifacts").as_uri())
    runs = [
        ("rf-1", {"model": "rf", "depth": "5"}, 0.91, "FINISHED"),
        ("rf-2", {"model": "rf", "depth": "10"}, 0.94, "FINISHED"),
        ("lr-1", {"model": "lr", "depth": "0"}, 0.82, "FINISHED"),
        (HOSTILE_NAME, {"model": "lr", "depth": "1"}, 0.55, "FAILED"),
    ]
    for index, (name, params, final, status) in enumerate(runs):
        start_ms = int((START + 86400 * index) * 1000)
        run = client.create_run(exp, run_name=name, start_time=start_ms)
        run_id = run.info.run_id
        metrics = [
            Metric("accuracy", final * (step + 1) / 10, start_ms + 1000 * step, step)
            for step in range(10)
        ]
        client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag("note", SCRIPT_TAG)],
        )
        if index == 0:
            client.log_dict(
                run_id, {"labels": ["a", "b"], "matrix": [[5, 1], [2, 6]]}, "confusion_matrix.json"
            )
        client.set_terminated(run_id, status=status, end_time=start_ms + 60_000)


if __name__ == "__main__":
    if sys.argv[1:2] == ["mlflow"]:
        _write_mlflow(Path(sys.argv[2]))
