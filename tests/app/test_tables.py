"""The pure helpers behind the Overview and Runs pages (runreview.analysis.summary and
runreview.analysis.columns), on small literal frames with exact expected values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from runreview.analysis.columns import (
    csv_bytes,
    differing_columns,
    select_columns,
    unit_interval_columns,
)
from runreview.analysis.summary import (
    failed_runs,
    findings_table,
    latest_runs,
    runs_per_day,
    severity_counts,
    source_summary,
)
from runreview.contract import Finding


def _runs() -> pd.DataFrame:
    t = pd.Timestamp("2026-11-01T10:00:00Z")
    return pd.DataFrame(
        {
            "source": ["mlflow", "mlflow", "mlflow", "tensorboard"],
            "source_uri": ["sqlite:///a.db"] * 3 + ["/logs"],
            "experiment": ["e1", "e1", "e2", "logs"],
            "run_id": ["r1", "r2", "r3", "run/a"],
            "run_name": ["one", "two", "three", "run/a"],
            "status": ["FINISHED", "FAILED", "KILLED", "UNKNOWN"],
            "start_time": [t, t + pd.Timedelta(days=1), t + pd.Timedelta(hours=1), pd.NaT],
            "end_time": [t + pd.Timedelta(seconds=90), pd.NaT, t + pd.Timedelta(hours=2), pd.NaT],
            "params.model": ["rf", "rf", "lr", None],
            "params.seed": ["1", "1", "1", "1"],
            "metrics.acc": [0.5, 0.75, np.nan, 1.0],
            "metrics.loss": [2.0, 0.1, 0.3, np.inf],
            "tags.team": ["a", "a", "a", "a"],
            "tags.failure_reason": [None, "diverged", None, None],
            "artifact_uri": ["x", "y", "z", None],
        }
    )


def test_source_summary_counts_statuses_per_source_and_experiment():
    summary = source_summary(_runs())
    assert list(summary["experiment"]) == ["e1", "e2", "logs"]
    assert summary[["runs", "finished", "failed", "running", "other"]].values.tolist() == [
        [2, 1, 1, 0, 0],
        [1, 0, 1, 0, 0],
        [1, 0, 0, 0, 1],
    ]
    assert summary["last_start"].iloc[0] == pd.Timestamp("2026-11-02T10:00:00Z")


def test_latest_and_failed_runs():
    latest = latest_runs(_runs(), 3)
    assert list(latest["run_id"]) == ["r2", "r3", "r1"]
    assert latest["duration_s"].iloc[2] == 90.0
    failed = failed_runs(_runs())
    assert list(failed["run_id"]) == ["r2", "r3"]
    assert list(failed["tags.failure_reason"].fillna("")) == ["diverged", ""]
    with pytest.raises(ValueError, match="at least 1"):
        latest_runs(_runs(), 0)


def test_runs_per_day_leaves_undated_runs_out():
    per_day = runs_per_day(_runs())
    assert per_day["runs"].tolist() == [2, 1]
    assert [d.isoformat() for d in per_day["date"]] == [
        "2026-11-01T00:00:00+00:00",
        "2026-11-02T00:00:00+00:00",
    ]


def test_findings_table_puts_errors_first_with_positions():
    findings = [
        Finding("info", "/logs", "histograms skipped"),
        Finding("error", "/logs", "data CRC mismatch", path="/logs/a/ev", offset=202, record=5),
        Finding("warning", "sqlite:///a.db", "artifacts not read", run_id="r2"),
    ]
    table = findings_table(findings)
    assert list(table["severity"]) == ["error", "warning", "info"]
    assert table["position"].iloc[0] == "byte 202, record 5"
    assert severity_counts(findings) == {"error": 1, "warning": 1, "info": 1}


def test_select_columns_by_group_and_only_differing():
    runs = _runs()
    base = ["run_name", "experiment", "source", "status", "start_time", "end_time", "run_id"]
    assert select_columns(runs, ["metrics"]) == [*base, "metrics.acc", "metrics.loss"]
    assert select_columns(runs, ["params", "tags"], only_differing=True) == [
        *base,
        "params.model",
        "tags.failure_reason",
    ]
    assert "artifact_uri" in select_columns(runs, ["details"])
    with pytest.raises(ValueError, match="unknown column group"):
        select_columns(runs, ["colour"])


def test_differing_columns_count_missing_as_a_value_and_numbers_by_value():
    frame = pd.DataFrame({"a": [1, 1.0], "b": [None, "x"], "c": [np.nan, np.nan]})
    assert differing_columns(frame) == ["b"]
    assert differing_columns(frame.head(1)) == []


def test_unit_interval_metrics_ignore_nan_and_inf():
    runs = _runs()
    runs["metrics.neg"] = [-0.1, 0.5, 0.5, 0.5]
    assert unit_interval_columns(runs) == ["metrics.acc"]


def test_csv_neutralises_formulas_in_text_but_keeps_negative_numbers():
    frame = pd.DataFrame({"name": ["=HYPERLINK(1)", "@x", "ok"], "value": [-1.5, 2.0, 0.0]})
    text = csv_bytes(frame).decode()
    assert text.splitlines() == ["name,value", "'=HYPERLINK(1),-1.5", "'@x,2.0", "ok,0.0"]
