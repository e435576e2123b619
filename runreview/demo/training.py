"""The scikit-learn training: data splits, models, and the epoch loop with its guard."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from runreview.demo.metrics import accuracy_and_macro_f1, log_loss
from runreview.demo.plan import DIVERGENCE_LOSS, DIVERGENCE_PATIENCE, RunSpec


@dataclass
class Split:
    """A data set split into train and validation parts (features already scaled or not)."""

    frame_train: Any
    frame_val: Any
    x_train: np.ndarray
    x_val: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray
    label_names: list[str]

    def named(self, y: np.ndarray) -> list[str]:
        """Class indices as class names."""
        return [self.label_names[int(i)] for i in y]


@dataclass
class Result:
    """What one training loop produced."""

    history: list[dict[str, float]]
    y_pred: np.ndarray | None
    model: Any
    error: str | None


def load_split(dataset: str, seed: int, *, scaled: bool) -> Split:
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
    return Split(
        pd.DataFrame(x_train, columns=columns),
        pd.DataFrame(x_val, columns=columns),
        x_train,
        x_val,
        y_train,
        y_val,
        names,
    )


def make_model(family: str, params: dict[str, Any], seed: int) -> Any:
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


def train(spec: RunSpec, split: Split) -> Result:
    """Train epoch by epoch with ``partial_fit``; stop with an error when loss diverges.

    Numerical failures (``ValueError``, ``ArithmeticError``) end the run as a failed run;
    a bad configuration raises. scikit-learn reports an invalid parameter with an error
    that is both a ``ValueError`` and a ``TypeError`` (for compatibility with the errors
    it raised before it validated parameters): a ``TypeError`` is never numerical, so it
    propagates.
    """
    model = make_model(spec.experiment.family, spec.params, spec.seed)
    classes = np.unique(split.y_train)
    history: list[dict[str, float]] = []
    for epoch in range(1, spec.params["epochs"] + 1):
        try:
            model.partial_fit(split.x_train, split.y_train, classes=classes)
            point = _evaluate(model, split, classes)
        except TypeError:
            raise
        except (ValueError, ArithmeticError) as exc:
            return Result(history, None, model, f"{type(exc).__name__}: {exc}")
        history.append(point)
        if diverged([p["train_loss"] for p in history]):
            message = f"train_loss diverged to {point['train_loss']:.4g} at epoch {epoch}"
            return Result(history, None, model, f"FloatingPointError: {message}")
    return Result(history, model.predict(split.x_val), model, None)


def diverged(losses: list[float]) -> bool:
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


def _evaluate(model: Any, split: Split, classes: np.ndarray) -> dict[str, float]:
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
