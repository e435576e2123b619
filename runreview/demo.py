"""The demo workspace: real scikit-learn training logged to MLflow and TensorBoard.

``build_demo(directory)`` trains small models on data sets that ship with scikit-learn
(nothing is downloaded) and records them the way training scripts do::

    <directory>/
      runreview-demo.json             what was built (written first, "complete" at the end)
      mlflow.db                       MLflow tracking store (sqlite)
      artifacts/<experiment>/...      MLflow run artifacts and logged models
      tensorboard/<experiment>/<run>/ TensorBoard runs: event files, environment.json,
                                      confusion_matrix.json

MLflow experiments ``digits-sgd`` (SGDClassifier on load_digits) and ``wine-mlp``
(MLPClassifier on load_wine); TensorBoard experiment ``breast-cancer`` (MLPClassifier on
load_breast_cancer). Every run logs ``train_loss``, ``val_loss``, ``val_accuracy`` and
``val_f1`` per epoch (step = epoch, from 1); configurations are trained with three seeds so
mean +- std bands make sense. One MLflow run fails (training diverges and the script
raises) and one TensorBoard run diverges and is stopped.

Time comes from a fixed timeline (``now``, default 2026-11-20 UTC): run starts spread over
the five weeks before it, metric timestamps and event wall times follow from there, so two
builds with the same seed hold the same values. MLflow run and model ids are random (MLflow
makes them); everything else is derived from the seed and the timeline. Python, platform
and the installed packages in ``environment.json`` are this machine's; the git history,
host names and the older package versions of runs from before ``DRIFT_DAYS`` are made up
for the demo and say so in the file.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from runreview.capture import (
    collect_environment,
    log_confusion_matrix,
    log_environment,
    write_json_atomic,
)

DEFAULT_NOW = datetime(2026, 11, 20, tzinfo=UTC)
MARKER_FILE = "runreview-demo.json"
METRICS = ("train_loss", "val_loss", "val_accuracy", "val_f1")
#: A training loop stops (and its run fails) when train_loss is not finite or passes this,
DIVERGENCE_LOSS = 100.0
#: ... or when it has risen this many epochs in a row and is above its first value.
DIVERGENCE_PATIENCE = 3
#: Runs that started more than this many days before ``now`` record older package versions.
DRIFT_DAYS = 21

ProgressCallback = Callable[[str, float], None]


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


@dataclass(frozen=True)
class _Experiment:
    """One experiment of the demo: where it is logged, what it trains, who runs it."""

    name: str
    target: str  # "mlflow" or "tensorboard"
    dataset: str
    family: str  # "sgd" or "mlp"
    team: str
    users: tuple[str, ...]
    script: str
    epochs: int
    epoch_seconds: float
    description: str


@dataclass(frozen=True)
class _RunSpec:
    """One run to train and log."""

    experiment: _Experiment
    config: str
    params: dict[str, Any]
    seed: int
    start: datetime
    purpose: str
    user: str
    extras: frozenset[str] = field(default_factory=frozenset)

    @property
    def name(self) -> str:
        """The run name: configuration and seed."""
        return f"{self.config}-s{self.seed}"


@dataclass
class _Split:
    """A data set split into train and validation parts (features already scaled or not)."""

    frame_train: Any
    frame_val: Any
    x_train: np.ndarray
    x_val: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray
    label_names: list[str]


@dataclass
class _Result:
    """What one training loop produced."""

    history: list[dict[str, float]]
    y_pred: np.ndarray | None
    model: Any
    error: str | None


_DIGITS = _Experiment(
    "digits-sgd", "mlflow", "digits", "sgd", "vision", ("alice", "bob"), "train_digits.py",
    20, 42.0, "Linear baselines for handwritten digits (8x8), SGD with log loss.",
)  # fmt: skip
_WINE = _Experiment(
    "wine-mlp", "mlflow", "wine", "mlp", "tabular", ("chen",), "train_wine.py",
    30, 9.0, "Small MLPs on the wine recognition data set.",
)  # fmt: skip
_CANCER = _Experiment(
    "breast-cancer", "tensorboard", "breast_cancer", "mlp", "health", ("dana",),
    "train_cancer.py", 25, 16.0, "MLP screening model on the Wisconsin breast cancer data.",
)  # fmt: skip

_SGD = {"loss": "log_loss", "penalty": "l2", "alpha": 1e-4, "l1_ratio": 0.15,
        "learning_rate": "optimal", "eta0": 0.01, "scaler": "standard"}  # fmt: skip
_MLP = {"hidden_size": 16, "alpha": 1e-4, "learning_rate_init": 1e-3, "batch_size": 16,
        "solver": "adam", "momentum": 0.9, "scaler": "standard"}  # fmt: skip

# (experiment, config name, overrides, days before `now`, purpose, seeds, extras of seed 0)
_CONFIGS: tuple[tuple[_Experiment, str, dict[str, Any], int, str, int, frozenset[str]], ...] = (
    (_DIGITS, "sgd-l2-a1e-4", {}, 34, "baseline", 3,
     frozenset({"model", "predictions_csv", "confusion_png"})),
    (_DIGITS, "sgd-l2-a1e-3", {"alpha": 1e-3}, 31, "sweep", 3, frozenset()),
    (_DIGITS, "sgd-en-a1e-4", {"penalty": "elasticnet"}, 27, "sweep", 3, frozenset()),
    (_DIGITS, "sgd-const-lr1e-3", {"learning_rate": "constant", "eta0": 1e-3}, 24, "sweep", 3,
     frozenset()),
    (_WINE, "mlp-h16-lr1e-3", {}, 19, "baseline", 3, frozenset({"predictions_table"})),
    (_WINE, "mlp-h64-lr1e-3", {"hidden_size": 64, "batch_size": 32}, 14, "sweep", 3,
     frozenset({"predictions_table"})),
    (_WINE, "mlp-h64-lr1e-2-a1e-2",
     {"hidden_size": 64, "alpha": 1e-2, "learning_rate_init": 1e-2}, 9, "sweep", 3,
     frozenset({"predictions_table"})),
    (_WINE, "mlp-sgd-noscale",
     {"hidden_size": 64, "solver": "sgd", "learning_rate_init": 0.02, "scaler": "none"}, 6,
     "ablation", 1, frozenset({"dirty"})),
    (_CANCER, "mlp-h8-lr1e-3", {"hidden_size": 8, "batch_size": 32}, 28, "baseline", 3,
     frozenset()),
    (_CANCER, "mlp-h8-lr1e-2", {"hidden_size": 8, "batch_size": 32, "learning_rate_init": 1e-2},
     21, "sweep", 3, frozenset()),
    (_CANCER, "mlp-h32-lr1e-3", {"hidden_size": 32, "batch_size": 32}, 12, "sweep", 3,
     frozenset({"v2"})),
    (_CANCER, "mlp-h32-lr1e-2",
     {"hidden_size": 32, "batch_size": 32, "learning_rate_init": 1e-2}, 4, "sweep", 3,
     frozenset({"v2", "confusion_png", "confusion_tensor"})),
    (_CANCER, "mlp-sgd-noscale",
     {"hidden_size": 32, "solver": "sgd", "learning_rate_init": 0.05, "scaler": "none"}, 2,
     "ablation", 1, frozenset({"dirty"})),
)  # fmt: skip
#: The TensorBoard run (config, seed index) whose log continues in a second event file.
_RESUMED = ("mlp-h32-lr1e-3", 2)
_RESUME_EPOCH = 12
_RESUME_GAP_SECONDS = 1800.0


# --- entry point ------------------------------------------------------------------------


def build_demo(
    directory: str | os.PathLike[str],
    seed: int = 0,
    progress: ProgressCallback | None = None,
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
    specs = _run_specs(seed, now)
    workspace = _workspace(root, specs, failed=0)
    _write_marker(root, workspace, seed, now, complete=False)
    report("training and logging runs", 0.0)
    with _quiet_mlflow():
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
    root: Path, specs: list[_RunSpec], failed: int, seconds: float = 0.0
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


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow without its INFO logging, warnings or usage telemetry, for the build only."""
    saved = os.environ.get("MLFLOW_DISABLE_TELEMETRY")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mlflow  # noqa: F401 - configures its loggers on import: do that first

            for logger in loggers:
                logger.setLevel(logging.ERROR)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        _restore_env("MLFLOW_DISABLE_TELEMETRY", saved)


def _restore_env(name: str, value: str | None) -> None:
    """Put environment variable ``name`` back to ``value`` (None: unset)."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


# --- the plan ---------------------------------------------------------------------------


def _run_specs(seed: int, now: datetime) -> list[_RunSpec]:
    """Every run of the demo, in the order they are built."""
    rng = np.random.default_rng(seed)
    specs = []
    for exp, config, overrides, days, purpose, seeds, extras in _CONFIGS:
        base = _SGD if exp.family == "sgd" else _MLP
        params = {**base, **overrides, "epochs": exp.epochs}
        day = now - timedelta(days=days) + timedelta(hours=9)
        for index in range(seeds):
            start = day + timedelta(hours=1.5 * index, minutes=float(rng.integers(0, 50)))
            run_extras = set(extras if index == 0 else extras & {"v2"})
            if (config, index) == _RESUMED:
                run_extras.add("resume")
            specs.append(
                _RunSpec(exp, config, params, seed * 100 + index, start, purpose,
                         exp.users[index % len(exp.users)], frozenset(run_extras))
            )  # fmt: skip
    return specs


def _epoch_times(spec: _RunSpec, epochs: int) -> list[datetime]:
    """When each epoch (1..epochs) finished; a resumed run has a gap before it resumes."""
    per_epoch = spec.experiment.epoch_seconds * (1.0 + (spec.seed % 7) / 20.0)
    times = []
    for epoch in range(1, epochs + 1):
        seconds = epoch * per_epoch
        if "resume" in spec.extras and epoch > _RESUME_EPOCH:
            seconds += _RESUME_GAP_SECONDS
        times.append(spec.start + timedelta(seconds=seconds))
    return times


# --- training ---------------------------------------------------------------------------


def _load_split(dataset: str, seed: int, *, scaled: bool) -> _Split:
    """A stratified 75/25 split of a scikit-learn data set, standardised when ``scaled``."""
    import pandas as pd
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    bunch = getattr(datasets, f"load_{dataset}")()
    columns = [str(c).replace(" ", "_") for c in getattr(bunch, "feature_names", [])] or [
        f"pixel_{i}" for i in range(bunch.data.shape[1])
    ]
    x_train, x_val, y_train, y_val = train_test_split(
        bunch.data, bunch.target, test_size=0.25, random_state=seed, stratify=bunch.target
    )
    if scaled:
        scaler = StandardScaler().fit(x_train)
        x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    names = [str(n) for n in getattr(bunch, "target_names", np.unique(bunch.target))]
    return _Split(
        pd.DataFrame(x_train, columns=columns),
        pd.DataFrame(x_val, columns=columns),
        x_train,
        x_val,
        y_train,
        y_val,
        names,
    )


def _make_model(family: str, params: dict[str, Any], seed: int) -> Any:
    """An unfitted SGDClassifier or MLPClassifier for ``params``."""
    if family == "sgd":
        from sklearn.linear_model import SGDClassifier

        keys = ("loss", "penalty", "alpha", "l1_ratio", "learning_rate", "eta0")
        return SGDClassifier(**{k: params[k] for k in keys}, random_state=seed)
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=(params["hidden_size"],),
        alpha=params["alpha"],
        learning_rate_init=params["learning_rate_init"],
        batch_size=params["batch_size"],
        solver=params["solver"],
        momentum=params["momentum"],
        random_state=seed,
    )


def _train(spec: _RunSpec, split: _Split) -> _Result:
    """Train epoch by epoch with ``partial_fit``; stop with an error when loss diverges.

    Numerical failures end the run as a failed run; a bad configuration raises.
    """
    from sklearn.utils._param_validation import InvalidParameterError

    model = _make_model(spec.experiment.family, spec.params, spec.seed)
    classes = np.unique(split.y_train)
    history: list[dict[str, float]] = []
    for epoch in range(1, spec.params["epochs"] + 1):
        try:
            model.partial_fit(split.x_train, split.y_train, classes=classes)
            point = _evaluate(model, split, classes)
        except InvalidParameterError:
            raise
        except (ValueError, ArithmeticError) as exc:
            return _Result(history, None, model, f"{type(exc).__name__}: {exc}")
        history.append(point)
        if _diverged([p["train_loss"] for p in history]):
            message = f"train_loss diverged to {point['train_loss']:.4g} at epoch {epoch}"
            return _Result(history, None, model, f"FloatingPointError: {message}")
    return _Result(history, model.predict(split.x_val), model, None)


def _diverged(losses: list[float]) -> bool:
    """The guard a careful training script has: loss not finite, huge, or running away.

    Running away: rising for ``DIVERGENCE_PATIENCE`` epochs in a row and now above where it
    started (a healthy run's loss may wobble, but stays below its first value).
    """
    last = losses[-1]
    if not math.isfinite(last) or last > DIVERGENCE_LOSS:
        return True
    recent = losses[-DIVERGENCE_PATIENCE - 1 :]
    steps = zip(recent, recent[1:], strict=False)
    rising = len(recent) > DIVERGENCE_PATIENCE and all(a < b for a, b in steps)
    return rising and last > losses[0]


def _evaluate(model: Any, split: _Split, classes: np.ndarray) -> dict[str, float]:
    """The four per-epoch metrics; MLPs report their own training objective as train_loss."""
    proba = model.predict_proba(split.x_val)
    train_loss = getattr(model, "loss_", None)
    if train_loss is None:
        train_loss = log_loss(split.y_train, model.predict_proba(split.x_train))
    y_pred = classes[np.argmax(proba, axis=1)]
    accuracy, f1 = accuracy_and_macro_f1(split.y_val, y_pred)
    return {
        "train_loss": float(train_loss),
        "val_loss": log_loss(split.y_val, proba),
        "val_accuracy": accuracy,
        "val_f1": f1,
    }


# scikit-learn's metric functions validate their input on every call, which costs more
# than the training of these small models: the demo computes the same numbers with numpy.


def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """``sklearn.metrics.log_loss`` for class indices 0..k-1 and rows of probabilities."""
    eps = np.finfo(proba.dtype).eps
    picked = np.clip(proba[np.arange(len(y_true)), y_true], eps, 1 - eps)
    return float(-np.mean(np.log(picked)))


def accuracy_and_macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """Accuracy and ``f1_score(average="macro", zero_division=0)`` of class indices."""
    present = np.union1d(y_true, y_pred)
    f1s = []
    for label in present:
        tp = np.sum((y_true == label) & (y_pred == label))
        wrong = np.sum(y_true == label) + np.sum(y_pred == label) - 2 * tp
        f1s.append(2 * tp / (2 * tp + wrong))
    return float(np.mean(y_true == y_pred)), float(np.mean(f1s))


# --- the build --------------------------------------------------------------------------

_DATASET_URLS = {
    "digits": "https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits",
    "wine": "https://archive.ics.uci.edu/dataset/109/wine",
    "breast_cancer": "https://archive.ics.uci.edu/dataset/17/breast+cancer+wisconsin+diagnostic",
}
_DEMO_REMOTE = "https://github.com/example/ml-experiments.git"


def _build_runs(
    workspace: DemoWorkspace,
    specs: list[_RunSpec],
    seed: int,
    now: datetime,
    report: ProgressCallback,
) -> int:
    """Train and log every run; the number that failed."""
    base_env = collect_environment(cwd=workspace.directory)
    store = _MlflowWriter(workspace.tracking_uri, workspace.directory / "artifacts")
    splits: dict[tuple[str, str], _Split] = {}
    failed = 0
    for done, spec in enumerate(specs):
        report(f"{spec.experiment.name}: {spec.name}", done / len(specs))
        key = (spec.experiment.dataset, spec.params["scaler"])
        if key not in splits:
            splits[key] = _load_split(key[0], seed, scaled=key[1] == "standard")
        result = _train(spec, splits[key])
        env = _run_environment(base_env, spec, now)
        if spec.experiment.target == "mlflow":
            store.log_run(spec, result, splits[key], env)
        else:
            _write_tensorboard_run(workspace.logdir, spec, result, splits[key], env)
        failed += result.error is not None
    return failed


def _logged_params(spec: _RunSpec) -> dict[str, Any]:
    """The run's parameters as a training script would log them."""
    model = "SGDClassifier" if spec.experiment.family == "sgd" else "MLPClassifier"
    return {"model": model, "dataset": spec.experiment.dataset, **spec.params,
            "seed": spec.seed, "val_fraction": 0.25}  # fmt: skip


def _end_time(spec: _RunSpec, times: list[datetime]) -> datetime:
    """When the run ended: a few seconds after its last epoch (or its start)."""
    return (times[-1] if times else spec.start) + timedelta(seconds=4)


def _named(split: _Split, y: np.ndarray) -> list[str]:
    """Class indices as class names."""
    return [split.label_names[int(i)] for i in y]


# --- environment ------------------------------------------------------------------------


def _run_environment(base: dict[str, Any], spec: _RunSpec, now: datetime) -> dict[str, Any]:
    """This machine's environment, placed on the demo's timeline.

    Git, host name and capture time come from the demo's story; runs older than
    ``DRIFT_DAYS`` record the previous minor versions of scikit-learn and numpy so the
    environment diff has something to show.
    """
    env = copy.deepcopy(base)
    days_ago = (now - spec.start).days
    dirty = "dirty" in spec.extras
    week = f"runreview-demo/week-{days_ago // 7}".encode()
    env["git"] = {
        "commit": hashlib.sha1(week, usedforsecurity=False).hexdigest(),
        "branch": f"exp/{spec.config}" if dirty else "main",
        "dirty": dirty,
        "diff": _ablation_diff(spec.experiment.script) if dirty else "",
        "diff_truncated": False,
        "remote": _DEMO_REMOTE,
    }
    env["captured_at"] = spec.start.isoformat()
    env["hostname"] = f"{spec.user}-workstation"
    if days_ago > DRIFT_DAYS:
        env["packages"] = {
            name: _previous_minor(version) if name in ("scikit-learn", "numpy") else version
            for name, version in env["packages"].items()
        }
    env["demo_note"] = (
        "runreview demo: python, platform and packages are the building machine's; git, "
        f"hostname and the package versions of runs older than {DRIFT_DAYS} days are made up"
    )
    return env


def _previous_minor(version: str) -> str:
    """``1.9.1`` -> ``1.8.0``; versions that cannot go back stay as they are."""
    parts = version.split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit() or parts[1] == "0":
        return version
    return f"{parts[0]}.{int(parts[1]) - 1}.0"


def _ablation_diff(script: str) -> str:
    """The uncommitted change of the no-scaler ablation runs."""
    return (
        f"diff --git a/{script} b/{script}\n"
        "index 3f2a1c4..8b9d0e2 100644\n"
        f"--- a/{script}\n+++ b/{script}\n"
        "@@ -24,5 +24,5 @@ def load_split(seed):\n"
        "     x_train, x_val, y_train, y_val = train_test_split(\n"
        "         data.data, data.target, test_size=0.25, random_state=seed\n"
        "     )\n"
        "-    scaler = StandardScaler().fit(x_train)\n"
        "+    scaler = None  # ablation: train on raw features\n"
    )


# --- MLflow -----------------------------------------------------------------------------


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch, as MLflow stores times."""
    return int(round(moment.timestamp() * 1000))


class _MlflowWriter:
    """Logs demo runs into one MLflow store through an explicit ``MlflowClient``."""

    def __init__(self, tracking_uri: str, artifact_root: Path) -> None:
        from mlflow import MlflowClient
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        # MLflow shares one engine per database URI in a process. If this process used the
        # URI before (a demo built here, then overwritten), the engine's pooled connections
        # still point at the deleted file: the first store drops them. The second creates
        # the tables, with the Default experiment's artifacts inside the demo directory (a
        # client would put them in ./mlruns of the current directory).
        SqlAlchemyStore(tracking_uri, artifact_root.as_uri()).engine.dispose()
        SqlAlchemyStore(tracking_uri, artifact_root.as_uri())
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.artifact_root = artifact_root
        self._experiments: dict[str, str] = {}
        self._inputs: dict[tuple[str, str], list[Any]] = {}

    def experiment_id(self, exp: _Experiment) -> str:
        """The id of ``exp``, created on first use with its artifacts under the demo dir."""
        if exp.name not in self._experiments:
            self._experiments[exp.name] = self.client.create_experiment(
                exp.name,
                artifact_location=(self.artifact_root / exp.name).as_uri(),
                tags={"team": exp.team, "mlflow.note.content": exp.description},
            )
        return self._experiments[exp.name]

    def log_run(self, spec: _RunSpec, result: _Result, split: _Split, env: dict[str, Any]) -> None:
        """One run: params, tags, per-epoch metrics, inputs, environment, outputs, status."""
        from mlflow.entities import Metric, Param

        experiment_id = self.experiment_id(spec.experiment)
        run = self.client.create_run(
            experiment_id, start_time=_ms(spec.start), run_name=spec.name,
            tags=self._tags(spec, env, result),
        )  # fmt: skip
        run_id = run.info.run_id
        times = _epoch_times(spec, len(result.history))
        metrics = [
            Metric(key, point[key], _ms(when), step)
            for step, (point, when) in enumerate(zip(result.history, times, strict=True), 1)
            for key in METRICS
        ]
        params = [Param(k, str(v)) for k, v in _logged_params(spec).items()]
        self.client.log_batch(run_id, metrics=metrics, params=params)
        self.client.log_inputs(run_id, datasets=self._dataset_inputs(spec, split))
        log_environment(run_id, env=env, tracking_uri=self.tracking_uri)
        if result.error is None:
            self._log_outputs(spec, result, split, run_id, experiment_id)
        status = "FINISHED" if result.error is None else "FAILED"
        self.client.set_terminated(run_id, status, end_time=_ms(_end_time(spec, times)))

    @staticmethod
    def _tags(spec: _RunSpec, env: dict[str, Any], result: _Result) -> dict[str, str]:
        """Team, purpose and config tags plus the MLflow system tags a script gets."""
        tags = {
            "team": spec.experiment.team,
            "purpose": spec.purpose,
            "config": spec.config,
            "mlflow.user": spec.user,
            "mlflow.source.name": spec.experiment.script,
            "mlflow.source.type": "LOCAL",
            "mlflow.source.git.commit": env["git"]["commit"],
            "mlflow.source.git.branch": env["git"]["branch"],
        }
        if spec.purpose != "sweep" and spec.seed % 100 == 0:
            tags["mlflow.note.content"] = _notes(spec, result)
        if result.error is not None:
            tags["failure_reason"] = result.error
        return tags

    def _dataset_inputs(self, spec: _RunSpec, split: _Split) -> list[Any]:
        """Training and validation data set inputs (with digests), made once per split."""
        key = (spec.experiment.dataset, spec.params["scaler"])
        if key not in self._inputs:
            from mlflow.data.http_dataset_source import HTTPDatasetSource
            from mlflow.data.pandas_dataset import from_pandas
            from mlflow.entities import DatasetInput, InputTag

            source = HTTPDatasetSource(_DATASET_URLS[key[0]])
            parts = (("training", split.frame_train, split.y_train),
                     ("validation", split.frame_val, split.y_val))  # fmt: skip
            # mlflow.log_input would need the active run; the entity is what it logs.
            self._inputs[key] = [
                DatasetInput(
                    from_pandas(
                        frame.assign(target=y),
                        source=source,
                        targets="target",
                        name=f"{key[0]}-{context}",
                    )._to_mlflow_entity(),
                    tags=[InputTag("mlflow.data.context", context)],
                )  # fmt: skip
                for context, frame, y in parts
            ]
        return self._inputs[key]

    def _log_outputs(
        self, spec: _RunSpec, result: _Result, split: _Split, run_id: str, experiment_id: str
    ) -> None:
        """Confusion matrix, and for some runs predictions, a PNG and the model."""
        y_true, y_pred = _named(split, split.y_val), _named(split, result.y_pred)
        matrix = log_confusion_matrix(
            y_true, y_pred, labels=split.label_names, run=run_id, tracking_uri=self.tracking_uri
        )
        if "predictions_csv" in spec.extras:
            rows = "".join(f"{t},{p}\n" for t, p in zip(y_true, y_pred, strict=True))
            self.client.log_text(run_id, "y_true,y_pred\n" + rows, "predictions.csv")
        if "predictions_table" in spec.extras:
            table = {"y_true": y_true, "y_pred": y_pred}
            self.client.log_table(run_id, table, "predictions.json")
        if "confusion_png" in spec.extras:
            image = _confusion_image(matrix["labels"], matrix["matrix"])
            self.client.log_image(run_id, image, artifact_file="confusion_matrix.png")
        if "model" in spec.extras:
            self._log_model(spec, result.model, split, run_id, experiment_id)

    def _log_model(
        self, spec: _RunSpec, model: Any, split: _Split, run_id: str, experiment_id: str
    ) -> None:
        """The fitted model as an MLflow LoggedModel with requirements and python_env.

        The requirements are MLflow's defaults for the flavour: inferring them starts a
        subprocess that takes about ten seconds.
        """
        import mlflow.sklearn
        from mlflow.models import infer_signature

        logged = self.client.create_logged_model(
            experiment_id, name="model", source_run_id=run_id, model_type="classifier",
            params={k: str(v) for k, v in _logged_params(spec).items()},
        )  # fmt: skip
        sample = split.frame_val.head(5)
        signature = infer_signature(sample, model.predict(split.x_val[:5]))
        with _fluent_tracking_uri(self.tracking_uri):
            mlflow.sklearn.log_model(
                model,
                name="model",
                model_id=logged.model_id,
                run_id=run_id,
                signature=signature,
                serialization_format="skops",
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            )


@contextlib.contextmanager
def _fluent_tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's process-global tracking URI at ``uri`` for the block, then restore it.

    ``mlflow.sklearn.log_model`` has no ``tracking_uri`` argument: it reads the global URI
    (and finalises the logged model through it). Everything else in the demo uses an
    explicit ``MlflowClient``. MLflow's own helper restores the URI but unsets a
    ``MLFLOW_TRACKING_URI`` the user had exported, so that variable is restored here too.
    """
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    saved = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(uri):
            yield
    finally:
        _restore_env("MLFLOW_TRACKING_URI", saved)


# --- TensorBoard ------------------------------------------------------------------------


def _write_tensorboard_run(
    logdir: Path, spec: _RunSpec, result: _Result, split: _Split, env: dict[str, Any]
) -> None:
    """One run directory: event file(s), environment.json and confusion_matrix.json."""
    from runreview.tbwrite import EventWriter

    run_dir = logdir / spec.experiment.name / spec.name
    log_environment(logdir=run_dir, env=env)
    times = _epoch_times(spec, len(result.history))
    host, v2 = env["hostname"], "v2" in spec.extras
    writer = EventWriter(run_dir, spec.start.timestamp(), hostname=host)
    try:
        writer.add_hparams_start(_logged_params(spec), METRICS, start_time=spec.start.timestamp(),
                                 group_name=spec.config)  # fmt: skip
        writer.add_text("notes", _notes(spec, result), 0, spec.start.timestamp())
        for step, (point, when) in enumerate(zip(result.history, times, strict=True), 1):
            if "resume" in spec.extras and step == _RESUME_EPOCH + 1:
                writer.close()  # the job was restarted from its checkpoint
                resumed = when.timestamp() - spec.experiment.epoch_seconds
                writer = EventWriter(run_dir, resumed, hostname=host, index=1)
            for tag in METRICS:
                writer.add_scalar(tag, point[tag], step, when.timestamp(), v2=v2)
        if result.error is None:
            _write_tensorboard_confusion(writer, run_dir, spec, result, split, times[-1])
        end = _end_time(spec, times).timestamp()
        writer.add_hparams_end(success=result.error is None, end_time=end)
    finally:
        writer.close()


def _write_tensorboard_confusion(
    writer: Any, run_dir: Path, spec: _RunSpec, result: _Result, split: _Split, when: datetime
) -> None:
    """confusion_matrix.json, and for some runs a tensor and a PNG image of it."""
    matrix = log_confusion_matrix(
        _named(split, split.y_val), _named(split, result.y_pred), labels=split.label_names,
        logdir=run_dir,
    )  # fmt: skip
    step, wall_time = len(result.history), when.timestamp()
    if "confusion_tensor" in spec.extras:
        counts = np.asarray(matrix["matrix"], dtype=np.int32)
        writer.add_tensor("confusion_matrix", counts, step, wall_time)
    if "confusion_png" in spec.extras:
        image = _confusion_image(matrix["labels"], matrix["matrix"])
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        writer.add_image("confusion_matrix", buffer.getvalue(), image.height, image.width,
                         step, wall_time)  # fmt: skip


def _notes(spec: _RunSpec, result: _Result) -> str:
    """A short Markdown description of the run, as people write in run notes."""
    text = (
        f"**{spec.config}** (seed {spec.seed}): {spec.purpose} run by {spec.user}.\n\n"
        f"{spec.experiment.description}"
    )
    if result.error is not None:
        text += f"\n\n**Stopped:** {result.error}"
    return text


def _confusion_image(labels: list[str], matrix: list[list[int]]) -> Any:
    """A confusion matrix drawn with PIL (no pyplot): rows true, columns predicted."""
    from PIL import Image, ImageDraw, ImageFont

    cell, margin = 44, 80
    size = margin + cell * len(labels)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    peak = max((max(row) for row in matrix), default=0) or 1
    draw.text((4, 4), "true \\ predicted", fill="black", font=font)
    for i, label in enumerate(labels):
        draw.text((4, margin + i * cell + cell // 3), label[:10], fill="black", font=font)
        draw.text((margin + i * cell + 2, margin - 16), label[:6], fill="black", font=font)
        for j, count in enumerate(matrix[i]):
            shade = int(255 - 200 * count / peak)
            x, y = margin + j * cell, margin + i * cell
            draw.rectangle(
                [x, y, x + cell - 1, y + cell - 1], fill=(shade, shade, 255), outline="grey"
            )
            ink = "black" if shade > 120 else "white"
            draw.text((x + cell // 3, y + cell // 3), str(count), fill=ink, font=font)
    return image
