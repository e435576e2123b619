"""What the demo builds: its experiments, configurations, seeds and timeline.

Nothing here trains or writes: :func:`run_specs` turns the fixed table of configurations
into the list of runs, in build order, with their start times on the demo's timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

DEFAULT_NOW = datetime(2026, 11, 20, tzinfo=UTC)
MARKER_FILE = "runreview-demo.json"
METRICS = ("train_loss", "val_loss", "val_accuracy", "val_f1")
#: A training loop stops (and its run fails) when train_loss is not finite or passes this,
DIVERGENCE_LOSS = 100.0
#: ... or when it has risen this many epochs in a row and is above its first value.
DIVERGENCE_PATIENCE = 3
#: Runs that started more than this many days before ``now`` record older package versions.
DRIFT_DAYS = 21


@dataclass(frozen=True)
class Experiment:
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
class RunSpec:
    """One run to train and log."""

    experiment: Experiment
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


_DIGITS = Experiment(
    "digits-sgd", "mlflow", "digits", "sgd", "vision", ("alice", "bob"), "train_digits.py",
    20, 42.0, "Linear baselines for handwritten digits (8x8), SGD with log loss.",
)  # fmt: skip
_WINE = Experiment(
    "wine-mlp", "mlflow", "wine", "mlp", "tabular", ("chen",), "train_wine.py",
    30, 9.0, "Small MLPs on the wine recognition data set.",
)  # fmt: skip
_CANCER = Experiment(
    "breast-cancer", "tensorboard", "breast_cancer", "mlp", "health", ("dana",),
    "train_cancer.py", 25, 16.0, "MLP screening model on the Wisconsin breast cancer data.",
)  # fmt: skip

_SGD = {"loss": "log_loss", "penalty": "l2", "alpha": 1e-4, "l1_ratio": 0.15,
        "learning_rate": "optimal", "eta0": 0.01, "scaler": "standard"}  # fmt: skip
_MLP = {"hidden_size": 16, "alpha": 1e-4, "learning_rate_init": 1e-3, "batch_size": 16,
        "solver": "adam", "momentum": 0.9, "scaler": "standard"}  # fmt: skip

# (experiment, config name, overrides, days before `now`, purpose, seeds, extras of seed 0)
_CONFIGS: tuple[tuple[Experiment, str, dict[str, Any], int, str, int, frozenset[str]], ...] = (
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
#: The last epoch before the resumed run's job was restarted from its checkpoint.
RESUME_EPOCH = 12
_RESUME_GAP_SECONDS = 1800.0


def run_specs(seed: int, now: datetime) -> list[RunSpec]:
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
                RunSpec(exp, config, params, seed * 100 + index, start, purpose,
                        exp.users[index % len(exp.users)], frozenset(run_extras))
            )  # fmt: skip
    return specs


def epoch_times(spec: RunSpec, epochs: int) -> list[datetime]:
    """When each epoch (1..epochs) finished; a resumed run has a gap before it resumes."""
    per_epoch = spec.experiment.epoch_seconds * (1.0 + (spec.seed % 7) / 20.0)
    times = []
    for epoch in range(1, epochs + 1):
        seconds = epoch * per_epoch
        if "resume" in spec.extras and epoch > RESUME_EPOCH:
            seconds += _RESUME_GAP_SECONDS
        times.append(spec.start + timedelta(seconds=seconds))
    return times


def end_time(spec: RunSpec, times: list[datetime]) -> datetime:
    """When the run ended: a few seconds after its last epoch (or its start)."""
    return (times[-1] if times else spec.start) + timedelta(seconds=4)


def logged_params(spec: RunSpec) -> dict[str, Any]:
    """The run's parameters as a training script would log them."""
    model = "SGDClassifier" if spec.experiment.family == "sgd" else "MLPClassifier"
    return {"model": model, "dataset": spec.experiment.dataset, **spec.params,
            "seed": spec.seed, "val_fraction": 0.25}  # fmt: skip


def notes(spec: RunSpec, error: str | None) -> str:
    """A short Markdown description of the run, as people write in run notes.

    ``error`` is why the run stopped (None: it finished).
    """
    text = (
        f"**{spec.config}** (seed {spec.seed}): {spec.purpose} run by {spec.user}.\n\n"
        f"{spec.experiment.description}"
    )
    if error is not None:
        text += f"\n\n**Stopped:** {error}"
    return text
