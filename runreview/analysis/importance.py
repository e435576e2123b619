"""Parameter importance: which params move a metric, with correlations and a forest.

MLflow stores params as strings: a param whose values all parse as numbers is numeric,
any other is categorical (one-hot encoded for the model). Per param the result gives the
Pearson and Spearman correlation with the metric (numeric params only) and the
permutation importance of a random forest (scikit-learn), each with its uncertainty, and
warnings when there are too few runs for any of it to be trusted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from runreview.contract import METRIC_PREFIX, PARAM_PREFIX

MIN_RUNS = 20
MISSING = "(missing)"
IMPORTANCE_COLUMNS = [
    "param",
    "kind",
    "distinct",
    "missing",
    "constant",
    "pearson",
    "pearson_p",
    "spearman",
    "spearman_p",
    "importance_mean",
    "importance_std",
]


@dataclass(frozen=True)
class ImportanceResult:
    """Importance of each param for one metric.

    ``table`` has ``IMPORTANCE_COLUMNS``, most important first: ``kind`` is ``numeric``
    or ``categorical``, ``distinct`` counts distinct values, ``missing`` runs without the
    param; correlations are NaN for categorical or constant params; ``importance_mean`` /
    ``importance_std`` are the mean and standard deviation over ``n_repeats`` shuffles
    of the drop in R² when the param's values are shuffled (NaN when no model was fitted).
    """

    metric: str
    table: pd.DataFrame
    n_runs: int
    n_dropped: int
    n_features: int
    r2_in_sample: float | None
    random_state: int
    n_repeats: int
    warnings: list[str] = field(default_factory=list)
    description: str = ""


def param_importance(
    runs: pd.DataFrame,
    metric: str,
    params: Iterable[str] | None = None,
    random_state: int = 0,
    n_repeats: int = 10,
    n_estimators: int = 100,
) -> ImportanceResult:
    """Correlation and random-forest permutation importance of params for ``metric``.

    ``params`` are names with or without ``params.`` (default: every param column). Runs
    whose metric is missing, NaN or infinite are dropped and counted. The same inputs and
    ``random_state`` give the same result.
    """
    target = METRIC_PREFIX + metric.removeprefix(METRIC_PREFIX)
    columns = _param_columns(runs, params)
    if target not in runs.columns:
        raise ValueError(f"no column {target!r} in the runs frame; pick a logged metric")
    y_all = pd.to_numeric(runs[target], errors="coerce").astype("float64")
    usable = np.isfinite(y_all.to_numpy())
    data, y = runs.loc[usable, columns].reset_index(drop=True), y_all[usable].to_numpy()
    features = {c.removeprefix(PARAM_PREFIX): encode_param(data[c]) for c in columns}
    table = pd.DataFrame([_describe(name, values, y) for name, values in features.items()])
    varying = {n: v for n, v in features.items() if not _is_constant(v)}
    scores, r2 = _forest(varying, y, random_state, n_repeats, n_estimators)
    table = _with_importance(table, scores)
    n_features = sum(_width(v) for v in varying.values())
    return ImportanceResult(
        metric=target.removeprefix(METRIC_PREFIX),
        table=table,
        n_runs=len(y),
        n_dropped=int((~usable).sum()),
        n_features=n_features,
        r2_in_sample=r2,
        random_state=random_state,
        n_repeats=n_repeats,
        warnings=_warnings(table, len(y), n_features, int((~usable).sum()), r2 is None),
        description=_description(n_repeats, n_estimators),
    )


def _param_columns(runs: pd.DataFrame, params: Iterable[str] | None) -> list[str]:
    """The param columns to use; raises naming any that do not exist."""
    available = [c for c in runs.columns if c.startswith(PARAM_PREFIX)]
    if params is None:
        return available
    wanted = [PARAM_PREFIX + p.removeprefix(PARAM_PREFIX) for p in params]
    absent = [c for c in wanted if c not in runs.columns]
    if absent:
        raise ValueError(f"no such param column(s) {absent}; available: {available}")
    return wanted


def encode_param(values: pd.Series) -> pd.Series:
    """Numbers (float64, NaN where missing) when every present value parses, else text.

    Text values are strings with missing values as ``MISSING``.
    """
    present = values.notna()
    numbers = pd.to_numeric(values.where(present), errors="coerce").astype("float64")
    parsed = np.isfinite(numbers.to_numpy()) | ~present.to_numpy()
    if present.any() and parsed.all():
        return numbers
    return values.map(lambda v: MISSING if pd.isna(v) else str(v)).astype(object)


def _is_numeric(values: pd.Series) -> bool:
    """True for a param encoded as numbers."""
    return pd.api.types.is_float_dtype(values)


def _is_constant(values: pd.Series) -> bool:
    """True when every run has the same value (missing counts as a value)."""
    return values.nunique(dropna=False) <= 1


def _width(values: pd.Series) -> int:
    """Model columns a param becomes: 1 if numeric, else one per category."""
    return 1 if _is_numeric(values) else int(values.nunique())


def _describe(name: str, values: pd.Series, y: np.ndarray) -> dict[str, Any]:
    """One table row without the importance: kind, counts and correlations."""
    numeric = _is_numeric(values)
    missing = int(values.isna().sum()) if numeric else int((values == MISSING).sum())
    row = {
        "param": name,
        "kind": "numeric" if numeric else "categorical",
        "distinct": int(values.nunique(dropna=True)),
        "missing": missing,
        "constant": _is_constant(values),
    }
    return row | correlations(values, y) if numeric else row | correlations(None, y)


def correlations(x: pd.Series | None, y: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation (with p-values) over runs that have ``x``.

    NaN when ``x`` is None, when fewer than 3 runs have it, or when x or y is constant
    over those runs (a correlation is undefined then).
    """
    from scipy import stats

    nan = {"pearson": np.nan, "pearson_p": np.nan, "spearman": np.nan, "spearman_p": np.nan}
    if x is None:
        return nan
    mask = x.notna().to_numpy()
    xs, ys = x.to_numpy()[mask], y[mask]
    if xs.size < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return nan
    pearson, spearman = stats.pearsonr(xs, ys), stats.spearmanr(xs, ys)
    return {
        "pearson": float(pearson.statistic),
        "pearson_p": float(pearson.pvalue),
        "spearman": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
    }


def _forest(
    features: dict[str, pd.Series],
    y: np.ndarray,
    random_state: int,
    n_repeats: int,
    n_estimators: int,
) -> tuple[dict[str, tuple[float, float]], float | None]:
    """Permutation importance per param of a random forest, and its in-sample R².

    The model is a pipeline (one-hot encoding, then the forest), so shuffling a param
    shuffles all of its one-hot columns together: one importance per original param.
    """
    if not features or len(y) < 3:
        return {}, None
    from sklearn.inspection import permutation_importance

    frame = pd.DataFrame(features)
    model = _pipeline(frame, random_state, n_estimators).fit(frame, y)
    result = permutation_importance(model, frame, y, n_repeats=n_repeats, random_state=random_state)
    scores = {
        name: (float(mean), float(std))
        for name, mean, std in zip(
            frame.columns, result.importances_mean, result.importances_std, strict=True
        )
    }
    return scores, float(model.score(frame, y))


def _pipeline(frame: pd.DataFrame, random_state: int, n_estimators: int) -> Any:
    """One-hot encoding of categorical params, numeric ones as they are, then a forest."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    categorical = [c for c in frame.columns if not _is_numeric(frame[c])]
    numeric = [c for c in frame.columns if _is_numeric(frame[c])]
    encode = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                categorical,
            ),
            ("numeric", "passthrough", numeric),
        ]
    )
    forest = RandomForestRegressor(n_estimators=n_estimators, random_state=random_state)
    return make_pipeline(encode, forest)


def _with_importance(table: pd.DataFrame, scores: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """The table with importance columns, most important first (NaN last)."""
    if table.empty:
        return pd.DataFrame(columns=IMPORTANCE_COLUMNS)
    table["importance_mean"] = [scores.get(p, (np.nan, np.nan))[0] for p in table["param"]]
    table["importance_std"] = [scores.get(p, (np.nan, np.nan))[1] for p in table["param"]]
    table = table.sort_values(
        ["importance_mean", "param"], ascending=[False, True], na_position="last"
    )
    return table[IMPORTANCE_COLUMNS].reset_index(drop=True)


def _warnings(
    table: pd.DataFrame, n_runs: int, n_features: int, n_dropped: int, no_model: bool
) -> list[str]:
    """Reasons to distrust the result, as sentences for the page and the report."""
    notes = []
    if n_runs < MIN_RUNS or n_runs < 2 * n_features:
        notes.append(
            f"Only {n_runs} runs for {n_features} model inputs: importances and correlations "
            f"are unreliable with fewer than {MIN_RUNS} runs or fewer than twice as many "
            "runs as inputs."
        )
    if n_dropped:
        notes.append(f"{n_dropped} runs without a finite value of the metric were left out.")
    constant = table.loc[table["constant"].astype(bool), "param"].tolist() if len(table) else []
    if constant:
        notes.append(f"Constant params (same value in every run) left out: {', '.join(constant)}.")
    if no_model:
        notes.append("No model was fitted: it needs at least 3 runs and one varying param.")
    return notes


def _description(n_repeats: int, n_estimators: int) -> str:
    """How the numbers were computed, for captions and reports."""
    return (
        "Pearson and Spearman correlation of each numeric param with the metric; "
        f"permutation importance (mean ± std over {n_repeats} shuffles, drop in R²) of a "
        f"random forest ({n_estimators} trees, categorical params one-hot encoded and "
        "shuffled as one param), computed on the runs it was fitted on (in-sample)."
    )
