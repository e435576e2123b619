"""Parameter importance on synthetic frames where the answer is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from runreview.analysis.importance import (
    IMPORTANCE_COLUMNS,
    MISSING,
    correlations,
    encode_param,
    param_importance,
)


def synthetic_runs(n: int = 60, informative: str = "lr", seed: int = 1) -> pd.DataFrame:
    """Runs whose metric depends on one param only (plus a little noise)."""
    rng = np.random.default_rng(seed)
    lr = rng.choice([0.001, 0.01, 0.1, 0.3], n)
    depth = rng.integers(2, 10, n)
    optimizer = rng.choice(["adam", "sgd", "rmsprop"], n)
    if informative == "lr":
        metric = np.log10(lr) + rng.normal(0, 0.05, n)
    else:
        metric = pd.Series(optimizer).map({"adam": 0.9, "sgd": 0.5, "rmsprop": 0.1}).to_numpy()
        metric = metric + rng.normal(0, 0.02, n)
    return pd.DataFrame(
        {
            "source_uri": "sqlite:///team.db",
            "run_id": [f"r{i}" for i in range(n)],
            "params.lr": [str(v) for v in lr],  # MLflow stores params as strings
            "params.depth": [str(v) for v in depth],
            "params.optimizer": optimizer,
            "params.batch": "32",
            "metrics.loss": metric,
        }
    )


def test_informative_numeric_param_ranks_first() -> None:
    result = param_importance(synthetic_runs(), "loss", n_estimators=50)
    table = result.table
    assert list(table.columns) == IMPORTANCE_COLUMNS
    assert table["param"].tolist()[0] == "lr"
    lr, others = table.iloc[0], table.iloc[1:3]
    assert lr["importance_mean"] > 0.5
    assert (others["importance_mean"] < 0.05).all()
    assert lr["importance_mean"] > 10 * others["importance_mean"].max()
    assert lr["kind"] == "numeric" and lr["distinct"] == 4
    assert lr["spearman"] > 0.9 and lr["pearson"] > 0.8
    assert abs(table.set_index("param").loc["depth", "spearman"]) < 0.3
    assert result.r2_cv is not None and result.r2_cv > 0.9  # held-out, not in-sample
    assert result.explains and result.table["significant"].tolist()[0]


def test_informative_categorical_param_is_one_row_not_one_hot_columns() -> None:
    result = param_importance(synthetic_runs(informative="optimizer"), "loss", n_estimators=50)
    table = result.table
    assert table["param"].tolist()[0] == "optimizer"
    assert sorted(table["param"]) == ["batch", "depth", "lr", "optimizer"]
    optimizer = table.iloc[0]
    assert optimizer["kind"] == "categorical"
    assert math.isnan(optimizer["pearson"]) and math.isnan(optimizer["spearman"])
    assert result.n_features == 5  # lr, depth and three optimizer categories


def test_constant_param_and_dropped_runs_are_reported() -> None:
    runs = synthetic_runs()
    runs.loc[3, "metrics.loss"] = np.nan
    runs.loc[4, "metrics.loss"] = np.inf
    runs.loc[5, "params.depth"] = None
    result = param_importance(runs, "metrics.loss", n_estimators=20, n_repeats=3)
    assert (result.n_runs, result.n_dropped) == (58, 2)
    batch = result.table.set_index("param").loc["batch"]
    assert bool(batch["constant"]) and math.isnan(batch["importance_mean"])
    assert result.table.set_index("param").loc["depth", "missing"] == 1
    assert result.table["param"].tolist()[-1] == "batch"
    assert result.warnings == [
        "2 runs without a finite value of the metric were left out.",
        "Constant params (same value in every run) left out: batch.",
    ]


def test_small_sample_warning() -> None:
    result = param_importance(synthetic_runs(n=12), "loss", n_estimators=20, n_repeats=3)
    assert result.warnings[0].startswith("Only 12 runs for 5 model inputs")
    wide = param_importance(synthetic_runs(n=24), "loss", params=["optimizer", "lr"])
    assert wide.n_features == 4
    assert not any(w.startswith("Only") for w in wide.warnings)


def test_too_few_runs_for_a_model() -> None:
    result = param_importance(synthetic_runs(n=2), "loss")
    assert result.r2_cv is None
    assert result.table["importance_mean"].isna().all()
    assert not result.table["significant"].any() and not result.explains
    assert "No model was fitted: it needs at least 6 runs and one varying param." in (
        result.warnings
    )


def test_same_random_state_same_result() -> None:
    runs = synthetic_runs(n=30)
    first = param_importance(runs, "loss", random_state=3, n_estimators=30, n_repeats=5)
    second = param_importance(runs, "loss", random_state=3, n_estimators=30, n_repeats=5)
    pd.testing.assert_frame_equal(first.table, second.table)
    assert first.r2_cv == second.r2_cv


def test_params_argument_and_unknown_names() -> None:
    runs = synthetic_runs(n=10)
    result = param_importance(runs, "loss", params=["params.lr"], n_estimators=10, n_repeats=2)
    assert result.table["param"].tolist() == ["lr"]
    with pytest.raises(ValueError, match="params.seed"):
        param_importance(runs, "loss", params=["seed"])
    with pytest.raises(ValueError, match="metrics.acc"):
        param_importance(runs, "acc")


def test_encode_param_numbers_only_when_every_value_parses() -> None:
    numbers = encode_param(pd.Series(["1", "2.5", None, "1e-3"]))
    assert numbers.dtype == np.float64
    assert numbers.tolist()[:2] == [1.0, 2.5] and math.isnan(numbers.iloc[2])
    text = encode_param(pd.Series(["1", "two", None]))
    assert text.tolist() == ["1", "two", MISSING]
    assert encode_param(pd.Series(["True", "False"])).tolist() == ["True", "False"]


def test_correlations_by_hand() -> None:
    # x = 1 2 3, y = 1 2 4: cov sum 3, sum dx^2 2, sum dy^2 14/3
    result = correlations(pd.Series([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert result["pearson"] == pytest.approx(3 / math.sqrt(2 * 14 / 3))
    assert result["spearman"] == pytest.approx(1.0)
    constant = correlations(pd.Series([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 4.0]))
    assert all(math.isnan(v) for v in constant.values())
    two = correlations(pd.Series([1.0, np.nan, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert math.isnan(two["pearson"])  # only two runs have the param


def independent_runs(n: int, seed: int, planted: bool = False) -> pd.DataFrame:
    """Ten params p1..p10 drawn at random; the metric is noise, or 2 * p3 + noise."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, (n, 10))
    metric = rng.normal(0, 1, n)
    if planted:
        metric = 2 * values[:, 2] + rng.normal(0, 0.2, n)
    frame = {f"params.p{i + 1}": [str(v) for v in values[:, i]] for i in range(10)}
    return pd.DataFrame(frame | {"metrics.score": metric})


def test_params_drawn_independently_of_the_metric_explain_nothing() -> None:
    result = param_importance(independent_runs(400, seed=7), "score")
    assert result.r2_cv is not None and result.r2_cv <= 0.02
    assert result.n_folds == 5
    assert not result.table["significant"].any()
    assert not result.explains
    assert "explain nothing" in result.verdict and "\n" not in result.verdict
    assert result.table["param"].tolist() == sorted(result.table["param"])  # not a ranking
    assert (result.table["importance_low"] <= 0).all()


def test_planted_effect_ranks_first_and_is_significant() -> None:
    result = param_importance(independent_runs(400, seed=7, planted=True), "score")
    table = result.table
    assert table["param"].tolist()[0] == "p3"
    assert table["significant"].tolist() == [True] + [False] * 9
    assert result.r2_cv is not None and result.r2_cv > 0.5
    assert result.explains and "p3" in result.verdict
    assert table["importance_low"].iloc[0] > 0
    assert (table["importance_low"] <= table["importance_mean"]).all()
    assert (table["importance_mean"] <= table["importance_high"]).all()


def test_held_out_result_is_identical_across_calls() -> None:
    runs = independent_runs(120, seed=3, planted=True)
    first, second = param_importance(runs, "score"), param_importance(runs, "score")
    pd.testing.assert_frame_equal(first.table, second.table)
    assert (first.r2_cv, first.verdict, first.n_folds) == (
        second.r2_cv,
        second.verdict,
        second.n_folds,
    )


def test_few_runs_use_fewer_folds() -> None:
    result = param_importance(synthetic_runs(n=12), "loss", n_estimators=20, n_repeats=3)
    assert result.n_folds == 4  # three held-out runs per fold at least
    assert result.r2_cv is not None
