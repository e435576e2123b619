"""Checking user-given names: one line with what is valid, never a silent empty result."""

from __future__ import annotations

import numpy as np
import pandas as pd

from runreview.analysis.names import (
    available,
    close_columns,
    experiment_names,
    metric_names,
    param_names,
    run_ids,
    run_name_aliases,
    suggestions,
    unknown_column,
    unknown_name,
    unknown_names,
)

METRICS = ["train_loss", "val_accuracy", "val_f1", "val_loss"]


def _runs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "experiment": ["wine-mlp", "wine-mlp", "digits-sgd"],
            "run_id": ["a1", "b2", "c3"],
            "run_name": ["rf-base", "rf-tuned", "rf-base"],
            "params.model": ["rf", "rf", None],
            "params.unused": [None, None, None],
            "metrics.val_loss": [0.5, np.nan, 0.4],
            "metrics.never": [np.nan, np.nan, np.nan],
            "tags.team": ["a", None, None],
        }
    )


def test_a_known_name_is_fine() -> None:
    assert unknown_name("val_loss", METRICS, "--metric", noun="metric") is None
    assert unknown_names(["val_loss", "val_f1"], METRICS, "--metric", noun="metric") is None
    assert unknown_names(None, METRICS, "--metric", noun="metric") is None


def test_an_unknown_metric_suggests_the_close_one_and_lists_the_valid_ones() -> None:
    message = unknown_name("val_acc", METRICS, "--metric", noun="metric")
    assert message == (
        "--metric: no metric 'val_acc' in the selected runs; did you mean val_accuracy? "
        "(available: train_loss, val_accuracy, val_f1, val_loss)"
    )
    assert "\n" not in message


def test_a_slash_typo_and_a_case_difference_are_suggested() -> None:
    assert "did you mean val_loss?" in unknown_name("val/los", METRICS, "--metric", noun="metric")
    assert suggestions("VAL_LOSS", METRICS)[0] == "val_loss"


def test_nothing_close_lists_only_the_valid_names() -> None:
    message = unknown_name("throughput", METRICS, "--metric", noun="metric")
    assert "did you mean" not in message
    assert message.endswith("(available: train_loss, val_accuracy, val_f1, val_loss)")


def test_no_valid_names_says_none() -> None:
    assert unknown_name("x", [], "--metric", noun="metric").endswith("(available: none)")


def test_at_most_ten_names_are_listed_sorted_then_an_ellipsis() -> None:
    names = [f"m{i:02d}" for i in range(25, 0, -1)]
    assert available(names) == "m01, m02, m03, m04, m05, m06, m07, m08, m09, m10, ..."
    assert available(names[:3]) == "m23, m24, m25"


def test_the_first_unknown_of_several_is_named() -> None:
    message = unknown_names(["val_loss", "nope", "other"], METRICS, "--metric", noun="metric")
    assert "'nope'" in message and "'other'" not in message


def test_a_run_name_given_for_an_id_suggests_its_ids() -> None:
    runs = _runs()
    message = unknown_name(
        "rf-base", run_ids(runs), "--run", noun="run id", scope="in the sources",
        aliases=run_name_aliases(runs), alias_noun="run name",
    )  # fmt: skip
    assert message.startswith("--run: no run id 'rf-base' in the sources; 'rf-base' is a run name")
    assert "did you mean a1 or c3?" in message
    # A near-miss of a name suggests that run's id too.
    assert suggestions("rf-tunde", run_ids(runs), run_name_aliases(runs)) == ["b2"]


def test_valid_names_come_from_the_runs_frame() -> None:
    runs = _runs()
    assert metric_names(runs) == ["val_loss"]  # a metric no run has a value of is not there
    assert param_names(runs) == ["model"]
    assert experiment_names(runs) == ["digits-sgd", "wine-mlp"]
    assert run_ids(runs) == ["a1", "b2", "c3"]
    assert run_name_aliases(runs) == {"rf-base": ["a1", "c3"], "rf-tuned": ["b2"]}
    assert metric_names(runs.iloc[1:2]) == []


def test_a_filter_column_no_run_has_is_named_with_its_neighbours() -> None:
    runs = _runs()
    assert unknown_column("params.model", runs, "--filter") is None
    assert unknown_column("run_name", runs, "--filter") is None  # attributes: not checked
    message = unknown_column("params.modle", runs, "--filter")
    assert message == (
        "--filter: no parameter column 'params.modle' in the selected runs; "
        "did you mean params.model? (available: params.model)"
    )
    assert "metric column 'metrics.never'" in unknown_column("metrics.never", runs, "--filter")
    assert "tag column" in unknown_column("tags.tem", runs, "--filter")


def test_filter_columns_are_compared_after_their_prefix() -> None:
    """Compared whole, ``params.nope`` looked close to every parameter (``params.`` is
    more than half of each name), so every typo suggested them all."""
    runs = pd.DataFrame({"params.model": ["a"], "params.solver": ["b"]})
    message = unknown_column("params.nope", runs, "--filter")
    assert message is not None and "did you mean" not in message
    assert close_columns("params.nope", runs) == []
    assert close_columns("params.solvr", runs) == ["params.solver"]
    assert close_columns("params.model", runs) is None
    assert close_columns("run_name", runs) is None
