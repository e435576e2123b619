"""Confusion matrices: normalising, per-class metrics and A - B, with hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from runreview.analysis.confusion import (
    DELTA_COLUMNS,
    METRIC_COLUMNS,
    align,
    difference,
    normalise,
    per_class_metrics,
    union_labels,
)
from runreview.contract import ConfusionData

# rows = true class, columns = predicted; "bird" never occurs nor is predicted
COUNTS = [[5, 1, 0], [2, 3, 0], [0, 0, 0]]
LABELS = ["cat", "dog", "bird"]


def test_row_normalise_leaves_empty_rows_zero() -> None:
    expected = [[5 / 6, 1 / 6, 0], [2 / 5, 3 / 5, 0], [0, 0, 0]]
    result = normalise(COUNTS)
    np.testing.assert_allclose(result, expected)
    assert not np.isnan(result).any()


def test_other_normalise_modes() -> None:
    np.testing.assert_allclose(
        normalise(COUNTS, "column"), [[5 / 7, 1 / 4, 0], [2 / 7, 3 / 4, 0], [0, 0, 0]]
    )
    np.testing.assert_allclose(normalise(COUNTS, "all"), np.array(COUNTS) / 11)
    np.testing.assert_array_equal(normalise(COUNTS, "none"), np.array(COUNTS, dtype=float))
    np.testing.assert_array_equal(normalise([[0, 0], [0, 0]], "all"), [[0, 0], [0, 0]])
    with pytest.raises(ValueError, match="mode"):
        normalise(COUNTS, "diagonal")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad", [[[1, 2, 3]], [[1, -1], [0, 1]], [[1, np.nan], [0, 1]], [1, 2], [[[1]]]]
)
def test_bad_matrices_are_rejected(bad) -> None:
    with pytest.raises(ValueError, match="confusion matrix"):
        normalise(bad)


def test_per_class_metrics_by_hand() -> None:
    table = per_class_metrics(LABELS, COUNTS)
    assert list(table.columns) == METRIC_COLUMNS
    assert table["label"].tolist() == [*LABELS, "accuracy", "macro avg", "weighted avg"]
    rows = table.set_index("label")
    # cat: tp 5, predicted 7, true 6; dog: tp 3, predicted 4, true 5
    assert rows.loc["cat", ["precision", "recall", "f1"]].tolist() == pytest.approx(
        [5 / 7, 5 / 6, 10 / 13]
    )
    assert rows.loc["dog", ["precision", "recall", "f1"]].tolist() == pytest.approx(
        [3 / 4, 3 / 5, 2 / 3]
    )
    assert rows.loc["bird", ["precision", "recall", "f1"]].tolist() == [0.0, 0.0, 0.0]
    assert rows["support"].tolist() == [6, 5, 0, 11, 11, 11]
    assert str(rows["support"].dtype) == "int64"
    assert rows.loc["accuracy", ["precision", "recall", "f1"]].tolist() == pytest.approx(
        [8 / 11] * 3
    )
    assert rows.loc["macro avg", ["precision", "recall", "f1"]].tolist() == pytest.approx(
        [41 / 84, 43 / 90, 56 / 117]
    )
    assert rows.loc["weighted avg", "precision"] == pytest.approx(225 / 308)


def test_zero_division_is_zero_and_flagged() -> None:
    rows = per_class_metrics(LABELS, COUNTS).set_index("label")
    assert rows["zero_division"].tolist() == [False, False, True, False, True, True]
    assert rows.loc["bird", "note"] == (
        "no predictions: precision set to 0; no true samples: recall set to 0"
    )
    assert rows.loc["cat", "note"] == ""
    empty = per_class_metrics(["a", "b"], [[0, 0], [0, 0]]).set_index("label")
    assert empty.loc["accuracy", "precision"] == 0.0
    assert empty.loc["weighted avg", "precision"] == 0.0
    assert empty["zero_division"].all()
    assert not empty[["precision", "recall", "f1"]].isna().any().any()


def test_per_class_metrics_agree_with_scikit_learn() -> None:
    y_true = [0] * 6 + [1] * 5
    y_pred = [0] * 5 + [1] + [0] * 2 + [1] * 3
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2], zero_division=0)
    rows = per_class_metrics(LABELS, COUNTS).iloc[:3]
    np.testing.assert_allclose(rows["precision"], p)
    np.testing.assert_allclose(rows["recall"], r)
    np.testing.assert_allclose(rows["f1"], f)
    np.testing.assert_array_equal(rows["support"], s)


def test_label_problems_are_reported() -> None:
    with pytest.raises(ValueError, match="2 labels for a 3x3"):
        per_class_metrics(["a", "b"], COUNTS)
    with pytest.raises(ValueError, match="unique"):
        per_class_metrics(["a", "a", "b"], COUNTS)


def test_union_and_align_by_label_name() -> None:
    assert union_labels(["cat", "dog"], ["dog", "fox", "cat"]) == ["cat", "dog", "fox"]
    aligned = align(["dog", "cat"], np.array([[1, 2], [3, 4]]), ["cat", "dog", "fox"])
    np.testing.assert_array_equal(aligned, [[4, 3, 0], [2, 1, 0], [0, 0, 0]])


def confusion(run_id: str, labels: list[str], counts) -> ConfusionData:
    return ConfusionData("sqlite:///team.db", run_id, "val", labels, np.array(counts), "artifact")


def test_difference_over_union_of_labels() -> None:
    a = confusion("a", ["cat", "dog"], [[8, 2], [1, 9]])
    b = confusion("b", ["dog", "cat", "fox"], [[5, 5, 0], [0, 10, 0], [1, 0, 1]])
    diff = difference(a, b)
    assert diff.labels == ["cat", "dog", "fox"]
    assert diff.only_in_a == [] and diff.only_in_b == ["fox"]
    np.testing.assert_allclose(diff.a, [[0.8, 0.2, 0], [0.1, 0.9, 0], [0, 0, 0]])
    np.testing.assert_allclose(diff.b, [[1, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0.5]])
    np.testing.assert_allclose(diff.delta, [[-0.2, 0.2, 0], [-0.4, 0.4, 0], [0, -0.5, -0.5]])
    per_class = diff.per_class.set_index("label")
    assert list(diff.per_class.columns) == DELTA_COLUMNS
    # precision cat: A 8/9, B 10/15; recall dog: A 0.9, B 0.5
    assert per_class.loc["cat", "precision_delta"] == pytest.approx(8 / 9 - 2 / 3)
    assert per_class.loc["dog", "recall_delta"] == pytest.approx(0.4)
    assert per_class.loc["fox", ["support_a", "support_b"]].tolist() == [0, 2]
    assert per_class.loc["fox", ["zero_division_a", "zero_division_b"]].tolist() == [True, False]
    long = diff.delta_frame()
    assert len(long) == 9
    assert long.iloc[3].tolist() == ["dog", "cat", 0.1, 0.5, pytest.approx(-0.4)]
    assert "row-normalised" in diff.description


def test_difference_of_raw_counts() -> None:
    a = confusion("a", ["x", "y"], [[3, 1], [0, 4]])
    b = confusion("b", ["x", "y"], [[2, 2], [1, 3]])
    diff = difference(a, b, normalised=False)
    np.testing.assert_array_equal(diff.delta, [[1, -1], [-1, 1]])
    assert "raw counts" in diff.description


def test_difference_needs_counts_not_an_image() -> None:
    a = confusion("a", ["x", "y"], [[3, 1], [0, 4]])
    b = ConfusionData("file:///logs", "b", "val", ["x", "y"], None, "tb image", image=b"PNG")
    with pytest.raises(ValueError, match="only an image"):
        difference(a, b)
