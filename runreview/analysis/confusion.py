"""Confusion matrices: normalising, per-class metrics, and the difference of two runs.

Rows are the true class, columns the predicted class (as in scikit-learn). Divisions by
zero give 0, never NaN, and are flagged so a reader knows the 0 is not a measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from runreview.contract import ConfusionData, RunKey

NormaliseMode = Literal["row", "column", "all", "none"]

METRIC_COLUMNS = ["label", "kind", "precision", "recall", "f1", "support", "zero_division", "note"]
DELTA_COLUMNS = [
    "label",
    "precision_a",
    "precision_b",
    "precision_delta",
    "recall_a",
    "recall_b",
    "recall_delta",
    "f1_a",
    "f1_b",
    "f1_delta",
    "support_a",
    "support_b",
    "zero_division_a",
    "zero_division_b",
]
SUMMARY_ROWS = ["accuracy", "macro avg", "weighted avg"]


def as_matrix(counts: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """``counts`` as a float64 square matrix; raises ValueError for anything else."""
    matrix = np.array(counts, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {matrix.shape}")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise ValueError("a confusion matrix must hold finite, non-negative counts")
    return matrix


def normalise(
    counts: Sequence[Sequence[float]] | np.ndarray, mode: NormaliseMode = "row"
) -> np.ndarray:
    """Counts divided by their row (true class), column (prediction) or grand total.

    ``"row"`` gives recall on the diagonal, ``"column"`` precision. A row, column or matrix
    that sums to zero stays 0 (no NaN). ``"none"`` returns a float copy of the counts.
    """
    matrix = as_matrix(counts)
    totals = {
        "row": lambda: matrix.sum(axis=1, keepdims=True),
        "column": lambda: matrix.sum(axis=0, keepdims=True),
        "all": lambda: np.full((1, 1), matrix.sum()),
        "none": lambda: np.ones((1, 1)),
    }
    if mode not in totals:
        raise ValueError(f"mode must be one of {', '.join(totals)}; got {mode!r}")
    total = np.broadcast_to(totals[mode](), matrix.shape)
    return np.divide(matrix, total, out=np.zeros_like(matrix), where=total != 0)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den != 0)


def per_class_metrics(
    labels: Sequence[str], counts: Sequence[Sequence[float]] | np.ndarray
) -> pd.DataFrame:
    """Precision, recall, F1 and support per class, then accuracy and the averages.

    Columns ``METRIC_COLUMNS``; ``kind`` is ``class`` or ``summary`` (rows ``accuracy``,
    ``macro avg``, ``weighted avg``; the accuracy row holds accuracy in all three
    metric columns, which equals micro-averaged precision, recall and F1). A class with no
    predictions has precision 0, one with no true samples recall 0 (and F1 0): those rows
    have ``zero_division`` True and say why in ``note``.
    """
    matrix = as_matrix(counts)
    labels = _check_labels(labels, matrix)
    tp, predicted, support = np.diag(matrix), matrix.sum(axis=0), matrix.sum(axis=1)
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    notes = [_zero_note(p, s) for p, s in zip(predicted, support, strict=True)]
    rows = pd.DataFrame(
        {
            "label": labels,
            "kind": "class",
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
            "zero_division": [bool(n) for n in notes],
            "note": notes,
        }
    )
    summary = _summary_rows(rows, float(tp.sum()), float(support.sum()))
    table = pd.concat([rows, summary], ignore_index=True)[METRIC_COLUMNS]
    return table.astype({"support": _support_dtype(matrix)})


def _check_labels(labels: Sequence[str], matrix: np.ndarray) -> list[str]:
    """Labels as strings, one per row, unique."""
    names = [str(label) for label in labels]
    if len(names) != matrix.shape[0]:
        raise ValueError(f"{len(names)} labels for a {matrix.shape[0]}x{matrix.shape[0]} matrix")
    if len(set(names)) != len(names):
        raise ValueError(f"labels must be unique, got {names}")
    return names


def _zero_note(predicted: float, support: float) -> str:
    """Why a class's metrics were set to 0, or ``""``."""
    reasons = []
    if predicted == 0:
        reasons.append("no predictions: precision set to 0")
    if support == 0:
        reasons.append("no true samples: recall set to 0")
    return "; ".join(reasons)


def _summary_rows(rows: pd.DataFrame, correct: float, total: float) -> pd.DataFrame:
    """Accuracy, macro average and support-weighted average rows."""
    accuracy = correct / total if total else 0.0
    weights = rows["support"].to_numpy()
    flagged = bool(rows["zero_division"].any())
    note = "includes classes whose metrics were set to 0" if flagged else ""
    summary = [
        ("accuracy", [accuracy] * 3, not total, "no samples: set to 0" if not total else ""),
        ("macro avg", _means(rows, None), flagged, note),
        ("weighted avg", _means(rows, weights), flagged or not total, note),
    ]
    return pd.DataFrame(
        [
            {"label": label, "kind": "summary", "precision": p, "recall": r, "f1": f}
            | {"support": total, "zero_division": zero, "note": text}
            for label, (p, r, f), zero, text in summary
        ]
    )


def _means(rows: pd.DataFrame, weights: np.ndarray | None) -> list[float]:
    """Mean precision, recall and F1 (weighted when ``weights`` sum to more than 0)."""
    if weights is not None and weights.sum() == 0:
        return [0.0, 0.0, 0.0]
    cols = ["precision", "recall", "f1"]
    return [float(np.average(rows[c].to_numpy(), weights=weights)) for c in cols]


def _support_dtype(matrix: np.ndarray) -> str:
    """int64 for whole-number counts, float64 for weighted ones."""
    return "int64" if np.array_equal(matrix, np.round(matrix)) else "float64"


# --- difference of two runs -------------------------------------------------------------


@dataclass(frozen=True)
class ConfusionDiff:
    """Run A minus run B over the union of their labels.

    ``a``, ``b`` and ``delta`` are aligned matrices (row-normalised when ``normalised``);
    ``per_class`` has ``DELTA_COLUMNS`` (deltas are A minus B; ``zero_division_*`` flags
    metrics set to 0 by a division by zero); labels present in only one
    run count 0 in the other and are listed in ``only_in_a`` / ``only_in_b``.
    """

    labels: list[str]
    a: np.ndarray
    b: np.ndarray
    delta: np.ndarray
    normalised: bool
    per_class: pd.DataFrame
    only_in_a: list[str]
    only_in_b: list[str]
    a_run: RunKey
    b_run: RunKey
    description: str

    def delta_frame(self) -> pd.DataFrame:
        """Long form for a heatmap: ``true``, ``predicted``, ``a``, ``b``, ``delta``."""
        n = len(self.labels)
        true = np.repeat(self.labels, n)
        predicted = np.tile(self.labels, n)
        values = {"a": self.a.ravel(), "b": self.b.ravel(), "delta": self.delta.ravel()}
        return pd.DataFrame({"true": true, "predicted": predicted, **values})


def union_labels(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """A's labels in order, then B's labels that A lacks, in B's order."""
    return list(dict.fromkeys([*map(str, a), *map(str, b)]))


def align(labels: Sequence[str], counts: np.ndarray, order: Sequence[str]) -> np.ndarray:
    """``counts`` re-indexed to ``order`` by label name; absent labels count 0."""
    matrix = as_matrix(counts)
    names = _check_labels(labels, matrix)
    position = {name: i for i, name in enumerate(order)}
    index = np.array([position[name] for name in names], dtype=np.intp)
    out = np.zeros((len(order), len(order)))
    out[np.ix_(index, index)] = matrix
    return out


def difference(a: ConfusionData, b: ConfusionData, normalised: bool = True) -> ConfusionDiff:
    """A minus B, aligned by label name, with per-class precision/recall/F1 deltas.

    With ``normalised`` the matrices are row-normalised first (each row is the share of
    that true class), so runs evaluated on different numbers of samples compare fairly.
    """
    for data in (a, b):
        if data.counts is None:
            raise ValueError(
                f"run {data.run_id} ({data.source_uri}) has only an image of its confusion "
                f"matrix {data.name!r}; a difference needs the counts"
            )
    labels = union_labels(a.labels, b.labels)
    counts_a, counts_b = align(a.labels, a.counts, labels), align(b.labels, b.counts, labels)
    shown_a, shown_b = (
        (normalise(counts_a), normalise(counts_b)) if normalised else (counts_a, counts_b)
    )
    return ConfusionDiff(
        labels=labels,
        a=shown_a,
        b=shown_b,
        delta=shown_a - shown_b,
        normalised=normalised,
        per_class=_per_class_deltas(labels, counts_a, counts_b),
        only_in_a=[x for x in labels if x not in set(map(str, b.labels))],
        only_in_b=[x for x in labels if x not in set(map(str, a.labels))],
        a_run=(a.source_uri, a.run_id),
        b_run=(b.source_uri, b.run_id),
        description=_diff_description(a, b, normalised),
    )


def _per_class_deltas(labels: list[str], a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
    """Per class: precision, recall, F1 and support of A and B, and A minus B."""
    ma = per_class_metrics(labels, a).iloc[: len(labels)].reset_index(drop=True)
    mb = per_class_metrics(labels, b).iloc[: len(labels)].reset_index(drop=True)
    out = pd.DataFrame({"label": labels})
    for metric in ("precision", "recall", "f1"):
        out[f"{metric}_a"], out[f"{metric}_b"] = ma[metric], mb[metric]
        out[f"{metric}_delta"] = ma[metric] - mb[metric]
    for column in ("support", "zero_division"):
        out[f"{column}_a"], out[f"{column}_b"] = ma[column], mb[column]
    return out[DELTA_COLUMNS]


def _diff_description(a: ConfusionData, b: ConfusionData, normalised: bool) -> str:
    """What the delta matrix shows, for captions and reports."""
    scale = "row-normalised (share of each true class)" if normalised else "raw counts"
    return (
        f"A - B of confusion matrices, {scale}; A = run {a.run_id} ({a.name}), "
        f"B = run {b.run_id} ({b.name}); labels aligned by name, a label missing in a run "
        "counts 0 there"
    )
