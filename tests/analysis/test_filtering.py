"""MLflow search syntax over the runs frame: grammar, types, errors, hostile text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from runreview.analysis.filtering import (
    Condition,
    FilterError,
    filter_runs,
    like_pattern,
    parse_filter,
    tokenize,
)


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def runs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": ["mlflow", "mlflow", "tensorboard", "tensorboard"],
            "source_uri": ["sqlite:///m.db", "sqlite:///m.db", "file:///logs", "file:///logs"],
            "experiment": ["cls", "cls", "logs", "logs"],
            "run_id": ["a", "b", "c", "d"],
            "run_name": ["rf-1", "rf_2", "svm", "RF-3"],
            "status": ["FINISHED", "FAILED", "FINISHED", None],
            "start_time": [t("2026-01-01"), t("2026-01-02"), pd.NaT, t("2026-01-04")],
            "end_time": [t("2026-01-01 01:00"), pd.NaT, pd.NaT, pd.NaT],
            "params.model": ["rf", "rf", "svm", None],
            "params.lr": ["0.01", "0.1", "0.01", "0.010"],
            "metrics.accuracy": [0.95, 0.85, np.nan, 0.99],
            "metrics.val/loss": [0.1, 0.2, 0.3, np.nan],
            "metrics.f1 score": [0.5, 0.6, 0.7, 0.8],
            "tags.mlflow.runName": ["x", "y", "z", "w"],
            "tags.team": ["vision", "Vision", None, "nlp"],
        },
        index=[10, 11, 12, 13],
    )


def ids(runs: pd.DataFrame, expression: str) -> list[str]:
    return filter_runs(runs, expression)["run_id"].tolist()


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("", ["a", "b", "c", "d"]),
        ("   ", ["a", "b", "c", "d"]),
        ("metrics.accuracy > 0.9", ["a", "d"]),
        ("metrics.accuracy >= 0.95", ["a", "d"]),
        ("metrics.accuracy < 0.95", ["b"]),
        ("metrics.accuracy <= 0.95", ["a", "b"]),
        ("metrics.accuracy = 0.95", ["a"]),
        ("metrics.accuracy == 0.95", ["a"]),
        ("metrics.accuracy != 0.95", ["b", "d"]),  # c has no accuracy: never matches
        ("metrics.accuracy <> 0.95", ["b", "d"]),
        ("metric.accuracy > .9", ["a", "d"]),
        ("metrics.accuracy > 9e-1", ["a", "d"]),
        ("metrics.accuracy > -1", ["a", "b", "d"]),
        ("metrics.accuracy>0.9 and params.model='rf'", ["a"]),
        ("metrics.accuracy > 0.9 AND params.model = 'rf'", ["a"]),
        ('metrics.accuracy > 0.9 And params.model = "rf"', ["a"]),
        ("metrics.`val/loss` <= 0.2", ["a", "b"]),
        ('metrics."val/loss" <= 0.2', ["a", "b"]),
        ("metrics.val/loss < 0.25", ["a", "b"]),
        ("metrics.`f1 score` > 0.55", ["b", "c", "d"]),
        ("params.model = 'rf'", ["a", "b"]),
        ("param.model != 'rf'", ["c"]),  # d has no model: never matches
        ("parameters.lr = '0.01'", ["a", "c"]),  # strings: '0.010' differs
        ("params.lr = 0.01", ["a", "c"]),  # a bare number compares as written
        ("params.model IN ('rf', 'svm')", ["a", "b", "c"]),
        ("params.model NOT IN ('rf')", ["c"]),
        ("params.model not in ('rf', 'svm')", []),
        ("tags.team = 'vision'", ["a"]),
        ("tag.team ILIKE 'vision'", ["a", "b"]),
        ("tags.team LIKE 'V%'", ["b"]),
        ("tags.mlflow.runName = 'y'", ["b"]),
        ("tags.`mlflow.runName` = 'z'", ["c"]),
        ("run_name LIKE 'rf%'", ["a", "b"]),
        ("run_name ILIKE 'rf%'", ["a", "b", "d"]),
        ("run_name LIKE 'rf_2'", ["b"]),
        ("run_name LIKE 'rf_1'", ["a"]),  # _ is any one character
        ("run_name LIKE 'rf'", []),  # LIKE matches the whole text
        ("attributes.run_name = 'svm'", ["c"]),
        ("attribute.status = 'FINISHED'", ["a", "c"]),
        ("attr.status != 'FINISHED'", ["b"]),  # d has no status
        ("run.run_id IN ('a', 'd')", ["a", "d"]),
        ("status IN ('FINISHED', \"FAILED\")", ["a", "b", "c"]),
        ("run_uuid = 'b'", ["b"]),
        ("experiment = 'logs'", ["c", "d"]),
        ("source = 'tensorboard'", ["c", "d"]),
        ("start_time >= '2026-01-02'", ["b", "d"]),
        ("start_time < 1767312000000", ["a"]),  # 2026-01-02 00:00 UTC in ms
        ("start_time > '2026-01-01T12:00:00+02:00'", ["b", "d"]),
        ("end_time <= '2026-01-01 01:00'", ["a"]),
        ("metrics.missing > 0", []),
        ("params.missing = 'x'", []),
        ("params.missing != 'x'", []),
        ("tags.missing NOT IN ('x')", []),
        ("user_id = 'me'", []),  # a known attribute no run has
        ("params.model = 'it''s'", []),
    ],
)
def test_filter_selects_expected_runs(runs, expression: str, expected: list[str]) -> None:
    assert ids(runs, expression) == expected


def test_filter_keeps_the_index_and_columns(runs) -> None:
    result = filter_runs(runs, "params.model = 'rf'")
    assert result.index.tolist() == [10, 11]
    assert list(result.columns) == list(runs.columns)


def test_doubled_quote_and_escapes_in_strings(runs) -> None:
    frame = runs.assign(**{"params.note": ["it's", 'say "hi"', "100%", "a_b"]})
    assert ids(frame, "params.note = 'it''s'") == ["a"]
    assert ids(frame, 'params.note = "say ""hi"""') == ["b"]
    assert ids(frame, "params.note LIKE '100%'") == ["c"]
    assert ids(frame, "params.note LIKE 'a.b'") == []  # regex characters are literal
    assert ids(frame, "params.note LIKE 'a_b'") == ["d"]


def test_parse_gives_typed_conditions() -> None:
    conditions = parse_filter("metrics.`val/loss` < 1 and tags.team IN ('a', 'b')")
    assert conditions == [
        Condition("metrics.val/loss", "number", "<", 1.0, 0),
        Condition("tags.team", "text", "IN", ("a", "b"), 27),
    ]
    assert parse_filter("start_time > 0")[0].value == t("1970-01-01")


def test_tokenize_positions() -> None:
    tokens = tokenize("params.x != 'y'")
    assert [(tok.kind, tok.pos) for tok in tokens] == [
        ("key", 0),
        ("op", 9),
        ("string", 12),
        ("end", 15),
    ]


def test_like_pattern() -> None:
    assert like_pattern("a%b_").fullmatch("aXYZbQ")
    assert like_pattern("a%").fullmatch("A1") is None
    assert like_pattern("a%", case_sensitive=False).fullmatch("A1")
    assert like_pattern("%").fullmatch("line\nbreak")


@pytest.mark.parametrize(
    ("expression", "position", "expected"),
    [
        ("metrics.accuracy >", 18, "a number"),
        ("metrics.accuracy > '0.9'", 19, "a number"),
        ("metrics.accuracy LIKE 'a'", 17, "a comparator for metrics.accuracy"),
        ("metrics.accuracy IN (1, 2)", 17, "a comparator for metrics.accuracy"),
        ("params.model > 'a'", 13, "a comparator for params.model (compared as text)"),
        ("params.model = rf", 15, "a quoted string"),
        ("params.model 'rf'", 13, "a comparator"),
        ("metrics.a > 1 or metrics.b < 2", 14, "OR is not supported"),
        ("metrics.a > 1 metrics.b < 2", 14, "AND or the end of the filter"),
        ("metrics.a > 1 and", 17, "a key such as"),
        ("(metrics.a > 1)", 0, "a key such as"),
        ("params.model = 'rf", 15, "a closing quote"),
        ("metrics.`val/loss > 1", 8, "a closing quote"),
        ("foo = 1", 0, "an attribute"),
        ("datasets.name = 'x'", 0, "a key prefix"),
        ("metrics. > 1", 8, "a name after 'metrics.'"),
        ("status IN 'a'", 10, "'(' to start the list"),
        ("status IN ('a' 'b')", 15, "',' or ')'"),
        ("status IN ()", 11, "a quoted string"),
        ("status NOT LIKE 'x'", 7, "a comparator"),
        ("start_time > 'yesterday'", 13, "a time"),
        ("metrics.a > 5abc", 13, "after a number"),
        ("metrics.a ! 1", 10, "a key, a comparator"),
        ("1 = 1", 0, "a key such as"),
    ],
)
def test_invalid_filters_say_where_and_what(
    runs, expression: str, position: int, expected: str
) -> None:
    with pytest.raises(FilterError) as caught:
        filter_runs(runs, expression)
    error = caught.value
    assert error.position == position
    assert expected in error.expected
    assert f"at character {position + 1}" in str(error)
    assert error.pointer.splitlines()[1] == " " * position + "^"


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('touch /tmp/runreview-pwned')",
        "__class__.__mro__ = 'x'",
        "metrics.a > 1; import os",
        "metrics.a > (lambda: 1)()",
        "params.model = 'rf' or 1 == 1",
        "params.model = 'rf' -- comment",
        "params.model = 'rf'; DROP TABLE runs",
        "exec('print(1)')",
        "@pytest",
        "`run_name` = 'x'",
        "metrics.a > 1e999999999 and open('/etc/passwd')",
        "\x00",
        "params.model = 'rf' \\",
        "{{ 7*7 }}",
        "${jndi:ldap://x}",
    ],
)
def test_hostile_text_is_only_ever_a_syntax_error(runs, expression: str) -> None:
    with pytest.raises(FilterError):
        filter_runs(runs, expression)


def test_filter_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Invalid filter at character 1"):
        parse_filter("import os")
