"""Building the demo workspace: the directory, its marker file, and the runs in order."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from runreview.capture import collect_environment, write_json_atomic
from runreview.demo.environment import run_environment
from runreview.demo.mlflow_writer import MlflowWriter, quiet_mlflow
from runreview.demo.plan import DEFAULT_NOW, MARKER_FILE, RunSpec, run_specs
from runreview.demo.tensorboard_writer import write_tensorboard_run
from runreview.demo.training import Split, load_split, train
from runreview.progress import Progress


@dataclass(frozen=True)
class DemoWorkspace:
    """Where the demo workspace is and what it holds.

    ``tracking_uri`` is the sqlite store (``sqlite:///<directory>/mlflow.db``), ``logdir``
    the TensorBoard log directory; ``failed_runs`` counts both the MLflow run that failed
    and the TensorBoard run that was stopped; ``seconds`` is how long the build took.
    """

    directory: Path
    tracking_uri: str
    logdir: Path
    mlflow_experiments: tuple[str, ...]
    tensorboard_experiments: tuple[str, ...]
    mlflow_runs: int
    tensorboard_runs: int
    failed_runs: int
    seconds: float = 0.0

    @property
    def total_runs(self) -> int:
        """MLflow and TensorBoard runs together."""
        return self.mlflow_runs + self.tensorboard_runs


def build_demo(
    directory: str | os.PathLike[str],
    seed: int = 0,
    progress: Progress | None = None,
    *,
    now: datetime = DEFAULT_NOW,
    overwrite: bool = False,
) -> DemoWorkspace:
    """Build the demo workspace in ``directory`` and describe it.

    ``directory`` must be missing or empty; with ``overwrite`` a previous demo workspace
    there (one holding ``runreview-demo.json``) is deleted first, anything else raises
    ``FileExistsError``. ``seed`` sets the data splits and model seeds; ``now`` (timezone
    aware) is the end of the timeline. ``progress(message, fraction)`` is called as the
    build goes on. Takes 15-20 s on two idle cores (about half of it importing
    MLflow and creating its database).
    """
    started = time.perf_counter()
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    root = _prepare_directory(Path(directory), overwrite=overwrite)
    report = progress or (lambda message, fraction: None)
    specs = run_specs(seed, now)
    workspace = _workspace(root, specs, failed=0)
    _write_marker(root, workspace, seed, now, complete=False)
    report("training and logging runs", 0.0)
    with quiet_mlflow():
        failed = _build_runs(workspace, specs, seed, now, report)
    workspace = _workspace(root, specs, failed, seconds=time.perf_counter() - started)
    _write_marker(root, workspace, seed, now, complete=True)
    report("demo workspace ready", 1.0)
    return workspace


def _prepare_directory(directory: Path, *, overwrite: bool) -> Path:
    """The resolved, empty directory to build in (created when missing)."""
    root = directory.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} exists and is not a directory; choose another path")
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{root} is not empty; choose an empty directory, or pass overwrite=True "
                "(runreview demo --force) to replace a previous demo workspace there"
            )
        if not (root / MARKER_FILE).is_file():
            raise FileExistsError(
                f"{root} does not hold a runreview demo workspace (no {MARKER_FILE}); "
                "refusing to delete it: choose an empty directory"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _workspace(
    root: Path, specs: list[RunSpec], failed: int, seconds: float = 0.0
) -> DemoWorkspace:
    """The description of a workspace holding ``specs``."""

    def names(target: str) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(s.experiment.name for s in specs if s.experiment.target == target)
        )

    return DemoWorkspace(
        directory=root,
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        logdir=root / "tensorboard",
        mlflow_experiments=names("mlflow"),
        tensorboard_experiments=names("tensorboard"),
        mlflow_runs=sum(s.experiment.target == "mlflow" for s in specs),
        tensorboard_runs=sum(s.experiment.target == "tensorboard" for s in specs),
        failed_runs=failed,
        seconds=round(seconds, 3),
    )


def _write_marker(
    root: Path, workspace: DemoWorkspace, seed: int, now: datetime, *, complete: bool
) -> None:
    """``runreview-demo.json``: marks the directory as a demo workspace and describes it."""
    write_json_atomic(
        root / MARKER_FILE,
        {
            "kind": "runreview-demo",
            "complete": complete,
            "seed": seed,
            "now": now.isoformat(),
            "tracking_uri": workspace.tracking_uri,
            "logdir": str(workspace.logdir),
            "mlflow_experiments": list(workspace.mlflow_experiments),
            "tensorboard_experiments": list(workspace.tensorboard_experiments),
            "mlflow_runs": workspace.mlflow_runs,
            "tensorboard_runs": workspace.tensorboard_runs,
            "failed_runs": workspace.failed_runs,
        },
    )


def _build_runs(
    workspace: DemoWorkspace,
    specs: list[RunSpec],
    seed: int,
    now: datetime,
    report: Progress,
) -> int:
    """Train and log every run; the number that failed."""
    base_env = collect_environment(cwd=workspace.directory)
    store = MlflowWriter(workspace.tracking_uri, workspace.directory / "artifacts")
    splits: dict[tuple[str, str], Split] = {}
    failed = 0
    for done, spec in enumerate(specs):
        report(f"{spec.experiment.name}: {spec.name}", done / len(specs))
        key = (spec.experiment.dataset, spec.params["scaler"])
        if key not in splits:
            splits[key] = load_split(key[0], seed, scaled=key[1] == "standard")
        result = train(spec, splits[key])
        env = run_environment(base_env, spec, now)
        if spec.experiment.target == "mlflow":
            store.log_run(spec, result, splits[key], env)
        else:
            write_tensorboard_run(workspace.logdir, spec, result, splits[key], env)
        failed += result.error is not None
    return failed
