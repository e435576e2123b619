"""Parameter importance: which params move a metric, with correlations and a forest.

MLflow stores params as strings: a param whose values all parse as numbers is numeric,
any other is categorical (one-hot encoded for the model). Per param the result gives the
Pearson and Spearman correlation with the metric (numeric params only) and the
permutation importance of a random forest (scikit-learn), each with its uncertainty, and
warnings when there are too few runs for any of it to be trusted.

The forest is judged out of sample only: R² is cross-validated (k-fold, shuffled with a
fixed seed) and each param's permutation importance is measured on the held-out fold of
each split, with a 95 % interval over the folds. A param is ``significant`` when its
interval lies above zero and the cross-validated R² is above zero. When no param is, the
result says in one sentence that the params explain nothing instead of ranking them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from runreview.contract import METRIC_PREFIX, PARAM_PREFIX

MIN_RUNS = 20
MIN_MODEL_RUNS = 6  # two folds with three held-out runs each
MAX_FOLDS = 5
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
    "importance_low",
    "importance_high",
    "significant",
]


@dataclass(frozen=True)
class ImportanceResult:
    """Importance of each param for one metric.

    ``table`` has ``IMPORTANCE_COLUMNS``, most important first: ``kind`` is ``numeric``
    or ``categorical``, ``distinct`` counts distinct values, ``missing`` runs without the
    param; correlations are NaN for categorical or constant params.

    Importance is the drop in R² on held-out runs when the param's values are shuffled:
    for each of the ``n_folds`` cross-validation splits the forest is fitted on the
    training folds and the param is shuffled ``n_repeats`` times in the test fold; the
    repeats are averaged within a fold (they share one model and one test set), giving
    one value per fold. ``importance_mean`` / ``importance_std`` are the mean and standard
    deviation of those per-fold values, and ``importance_low`` / ``importance_high`` a
    Student-t interval of their mean, Bonferroni-adjusted over the k params weighed so
    that all k intervals hold together with 95 %: mean ± t(1 - 0.025 / k, n_folds - 1) ·
    std / sqrt(n_folds). ``significant`` is True when ``importance_low`` > 0 and ``r2_cv`` > 0.
    All are NaN (``significant`` False) when no model was fitted.

    ``r2_cv`` is the cross-validated R²: every run is predicted by the forest fitted
    without it, and R² is computed over those out-of-fold predictions (None when no model
    was fitted). ``explains`` is True when ``r2_cv`` > 0 and at least one param is
    significant; the table is then ranked by importance, otherwise it is sorted by param
    name and ``verdict`` says that the params explain nothing. ``verdict`` is one plain
    sentence for the page and the report.
    """

    metric: str
    table: pd.DataFrame
    n_runs: int
    n_dropped: int
    n_features: int
    r2_cv: float | None
    n_folds: int
    random_state: int
    n_repeats: int
    explains: bool = False
    verdict: str = ""
    warnings: list[str] = field(default_factory=list)
    description: str = ""


def param_importance(
    runs: pd.DataFrame,
    metric: str,
    params: Iterable[str] | None = None,
    random_state: int = 0,
    n_repeats: int = 5,
    n_estimators: int = 100,
) -> ImportanceResult:
    """Correlation and held-out random-forest permutation importance of params for ``metric``.

    ``params`` are names with or without ``params.`` (default: every param column). Runs
    whose metric is missing, NaN or infinite are dropped and counted. The same inputs and
    ``random_state`` give the same result (the folds, the forests and the shuffles all
    use it). See ``ImportanceResult`` for the cross-validation and the intervals.
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
    scores, r2, n_folds = _forest(varying, y, random_state, n_repeats, n_estimators)
    table = _with_importance(table, scores, r2)
    explains = bool(r2 is not None and r2 > 0 and table["significant"].any())
    if not explains:
        table = table.sort_values("param", kind="stable").reset_index(drop=True)
    n_features = sum(_width(v) for v in varying.values())
    name = target.removeprefix(METRIC_PREFIX)
    return ImportanceResult(
        metric=name,
        table=table,
        n_runs=len(y),
        n_dropped=int((~usable).sum()),
        n_features=n_features,
        r2_cv=r2,
        n_folds=n_folds,
        random_state=random_state,
        n_repeats=n_repeats,
        explains=explains,
        verdict=_verdict(table, name, r2, explains),
        warnings=_warnings(table, len(y), n_features, int((~usable).sum()), r2 is None),
        description=_description(n_folds, n_repeats, n_estimators),
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
) -> tuple[dict[str, np.ndarray], float | None, int]:
    """Per-fold held-out permutation importance per param, cross-validated R², fold count.

    The model is a pipeline (one-hot encoding, then the forest), so shuffling a param
    shuffles all of its one-hot columns together: one importance per original param.
    Each param gets one value per fold: the mean over ``n_repeats`` shuffles of its test
    fold. R² is computed over the out-of-fold predictions of all runs.
    """
    if not features or len(y) < MIN_MODEL_RUNS:
        return {}, None, 0
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold

    frame = pd.DataFrame(features)
    n_folds = min(MAX_FOLDS, len(y) // 3)
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    predicted = np.empty_like(y, dtype="float64")
    per_fold = np.empty((frame.shape[1], n_folds))
    for i, (train, test) in enumerate(folds.split(frame)):
        model = _pipeline(frame, random_state, n_estimators, leaf=max(1, len(train) // 200))
        model.fit(frame.iloc[train], y[train])
        predicted[test] = model.predict(frame.iloc[test])
        shuffled = permutation_importance(
            model,
            frame.iloc[test],
            y[test],
            n_repeats=n_repeats,
            random_state=random_state,
            n_jobs=1,
        )
        per_fold[:, i] = shuffled.importances.mean(axis=1)
    r2 = float(r2_score(y, predicted)) if np.ptp(y) > 0 else 0.0
    return dict(zip(frame.columns, per_fold, strict=True)), r2, n_folds


def _pipeline(frame: pd.DataFrame, random_state: int, n_estimators: int, leaf: int = 1) -> Any:
    """One-hot encoding of categorical params, numeric ones as they are, then a forest.

    ``leaf`` is the forest's minimum leaf size: growing trees down to single runs on a
    large store costs time and only fits noise.
    """
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
    forest = RandomForestRegressor(
        n_estimators=n_estimators, random_state=random_state, n_jobs=1, min_samples_leaf=leaf
    )
    return make_pipeline(encode, forest)


def _interval(values: np.ndarray, k: int) -> tuple[float, float, float, float]:
    """Mean, std and Bonferroni-adjusted 95 % Student-t interval of per-fold importances.

    ``k`` is the number of params weighed at once: each interval has confidence
    1 - 0.05 / k, so that all of them together hold with 95 %.
    """
    from scipy import stats

    mean, std = float(np.mean(values)), float(np.std(values, ddof=1))
    t = float(stats.t.ppf(1 - 0.025 / max(k, 1), values.size - 1))
    half = t * std / np.sqrt(values.size)
    return mean, std, mean - half, mean + half


def _with_importance(
    table: pd.DataFrame, scores: dict[str, np.ndarray], r2: float | None
) -> pd.DataFrame:
    """The table with importance columns, most important first (NaN last)."""
    if table.empty:
        return pd.DataFrame(columns=IMPORTANCE_COLUMNS)
    nan = (np.nan, np.nan, np.nan, np.nan)
    stats = [_interval(scores[p], len(scores)) if p in scores else nan for p in table["param"]]
    for i, column in enumerate(["importance_mean", "importance_std", "importance_low"]):
        table[column] = [s[i] for s in stats]
    table["importance_high"] = [s[3] for s in stats]
    table["significant"] = (
        (table["importance_low"] > 0).to_numpy() & (r2 is not None and r2 > 0)
    ).astype(bool)
    table = table.sort_values(
        ["importance_mean", "param"], ascending=[False, True], na_position="last"
    )
    return table[IMPORTANCE_COLUMNS].reset_index(drop=True)


def _verdict(table: pd.DataFrame, metric: str, r2: float | None, explains: bool) -> str:
    """One plain sentence: which params matter, or that none can be told from chance."""
    if r2 is None:
        return f"No model was fitted, so nothing can be said about which params move {metric}."
    if explains:
        names = table.loc[table["significant"], "param"].tolist()
        return (
            f"{len(names)} of {len(table)} params move {metric} beyond chance on held-out "
            f"runs (cross-validated R² {r2:.2f}): {', '.join(names)}."
        )
    if r2 <= 0:
        return (
            f"The params explain nothing of {metric}: a forest fitted on them predicts "
            f"held-out runs no better than their average (cross-validated R² {r2:.2f}), "
            "so the importances below are noise, not a ranking."
        )
    return (
        f"No param can be told from chance: together the params predict {metric} on "
        f"held-out runs somewhat (cross-validated R² {r2:.2f}), but no single param's "
        "importance interval lies above zero, so the importances below are not a ranking."
    )


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
        notes.append(
            f"No model was fitted: it needs at least {MIN_MODEL_RUNS} runs and one varying param."
        )
    return notes


def _description(n_folds: int, n_repeats: int, n_estimators: int) -> str:
    """How the numbers were computed, for captions and reports."""
    if not n_folds:
        return (
            "Pearson and Spearman correlation of each numeric param with the metric; no "
            "random forest was fitted."
        )
    return (
        "Pearson and Spearman correlation of each numeric param with the metric; "
        f"permutation importance (drop in R² on held-out runs) of a random forest "
        f"({n_estimators} trees, categorical params one-hot encoded and shuffled as one "
        f"param), from {n_folds}-fold cross-validation: {n_repeats} shuffles of each "
        "held-out fold, averaged per fold; mean and 95 % interval over the folds "
        "(Student t, Bonferroni-adjusted over the params). A "
        "param is significant when its interval lies above zero and the cross-validated "
        "R² is above zero."
    )
