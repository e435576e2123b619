"""The per-epoch metrics, computed with numpy.

scikit-learn's metric functions validate their input on every call, which costs more than
the training of the demo's small models: these compute the same numbers with numpy (the
tests compare them with scikit-learn's).
"""

from __future__ import annotations

import numpy as np


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
