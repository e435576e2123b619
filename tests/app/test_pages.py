"""Every page on the demo workspace, driven with AppTest: choose, filter, select, switch."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from runreview.analysis.filtering import FilterError, parse_filter
from runreview.analysis.leaderboard import leaderboard
from runreview.workspace import Workspace
from tests.app.helpers import charts, ok, query_list, run_key

SELECTED_ROWS = [0, 13]  # an MLflow run and a TensorBoard run (the demo lists MLflow first)


def _keys(runs: pd.DataFrame, rows: list[int]) -> list[str]:
    return [run_key(runs["source_uri"].iloc[i], runs["run_id"].iloc[i]) for i in rows]


def test_overview_counts_runs_and_lists_latest_failed_and_completeness(open_app, demo):
    runs = demo.runs()
    at = open_app(demo)
    ok(at)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Runs"] == str(len(runs))
    assert shown["Experiments"] == str(runs["experiment"].nunique())
    summary, latest, failed = (at.dataframe[i].value for i in range(3))
    assert summary["runs"].sum() == len(runs)
    pairs = set(zip(runs["source"], runs["experiment"], strict=True))
    assert set(zip(summary["source"], summary["experiment"], strict=True)) == pairs
    assert latest["run_id"].iloc[0] == runs.loc[runs["start_time"].idxmax(), "run_id"]
    expected_failed = runs.loc[runs["status"].isin(["FAILED", "KILLED"]), "run_id"]
    assert len(expected_failed) >= 1
    assert sorted(failed["run_id"]) == sorted(expected_failed)
    assert len(charts(at)) == 1
    assert [s.value for s in at.success] == ["Complete: everything in the chosen sources was read."]


def test_runs_table_filters_across_sources_with_mlflow_syntax(open_app, demo):
    runs = demo.runs()
    at = open_app(demo, "runs")
    ok(at)
    assert len(at.dataframe[0].value) == len(runs)
    expression = "metrics.val_accuracy > 0.95 and params.solver = 'adam'"
    at.text_input(key="w.q").set_value(expression).run()
    ok(at)
    wanted = runs[(runs["metrics.val_accuracy"] > 0.95) & (runs["params.solver"] == "adam")]
    assert set(wanted["source"]) == {"mlflow", "tensorboard"}  # the filter spans both
    table = at.dataframe[0].value
    assert sorted(table["run_id"]) == sorted(wanted["run_id"])
    assert at.query_params["q"] == expression


def test_runs_filter_error_shows_the_message_and_a_pointer(open_app, demo):
    at = open_app(demo, "runs")
    bad = "metrics.val_accuracy >> 0.9"
    at.text_input(key="w.q").set_value(bad).run()
    ok(at)
    try:
        parse_filter(bad)
    except FilterError as error:
        expected = error
    assert [c.value for c in at.code] == [expected.pointer]
    assert "Filter not applied" in at.error[0].value
    assert "Invalid filter at character" in at.error[0].value.replace("\\", "")
    assert len(at.dataframe[0].value) == len(demo.runs())  # shown unfiltered, said so


def test_runs_column_groups_and_only_differing_columns(open_app, demo):
    runs = demo.runs()
    at = open_app(demo, "runs")
    at.multiselect(key="w.cols").set_value(["metrics"]).run()
    ok(at)
    columns = list(at.dataframe[0].value.columns)
    metric_columns = [c for c in runs.columns if c.startswith("metrics.")]
    assert columns[-len(metric_columns) :] == metric_columns
    assert not [c for c in columns if c.startswith(("params.", "tags."))]

    at.multiselect(key="w.cols").set_value(["params", "tags"]).run()
    everything = list(at.dataframe[0].value.columns)
    at.toggle(key="w.diff").set_value(True).run()
    ok(at)
    differing = list(at.dataframe[0].value.columns)
    dropped = [c for c in everything if c not in differing]
    assert "params.val_fraction" in dropped  # the same in every demo run
    for column in dropped:
        assert runs[column].astype(str).nunique(dropna=False) == 1
    for column in differing:
        if column.startswith(("params.", "tags.")):
            assert runs[column].astype(str).nunique(dropna=False) > 1
    assert at.query_params["cols"] == ["params", "tags"]
    assert at.query_params["diff"] == "1"


def test_runs_selection_goes_to_the_url_and_the_other_pages(open_app, demo):
    runs = demo.runs()
    keys = _keys(runs, SELECTED_ROWS)
    at = open_app(demo, "runs")
    at.session_state["runs.table"] = {"selection": {"rows": SELECTED_ROWS, "columns": []}}
    at.run()
    ok(at)
    assert query_list(at, "run") == keys
    assert "2 run(s) selected" in [c.value for c in at.caption]
    for page in ("overlays", "confusion", "environment"):
        at.switch_page(f"views/{page}.py").run()
        ok(at)
        assert at.multiselect(key="w.run").value == keys
        assert query_list(at, "run") == keys  # the URL survives page switches
    at.switch_page("views/runs.py").run()
    assert "2 run(s) selected" in [c.value for c in at.caption]
    next(b for b in at.button if b.label == "Clear selection").click().run()
    assert query_list(at, "run") == []


def test_a_copied_link_opens_the_same_view(open_app, demo):
    runs = demo.runs()
    keys = _keys(runs, SELECTED_ROWS)
    query = {
        "run": keys,
        "ov.metrics": ["val_loss", "train_loss"],
        "ov.w": "0.9",
        "ov.x": "relative",
        "ov.log": "1",
    }
    at = open_app(demo, "overlays", query=query)
    ok(at)
    assert at.multiselect(key="w.run").value == keys
    assert at.multiselect(key="w.ov.metrics").value == ["val_loss", "train_loss"]
    assert at.slider(key="w.ov.w").value == 0.9
    assert at.radio(key="w.ov.x").value == "relative"
    assert at.toggle(key="w.ov.log").value is True
    assert len(charts(at)) == 1
    for name, value in query.items():
        assert at.query_params[name] == value


def test_leaderboard_ranks_groups_and_shows_rank_change(open_app, demo):
    runs, history = demo.runs(), demo.history()
    at = open_app(demo, "leaderboard", query={"metric": "val_accuracy"})
    ok(at)
    expected = leaderboard(runs, history, "val_accuracy", top_n=10)
    board = at.dataframe[0].value
    assert list(board["run_id"]) == list(expected["run_id"])
    assert len(charts(at)) == 1

    at.radio(key="w.lb.mode").set_value("last").run()
    at.radio(key="w.lb.dir").set_value("min").run()
    at.number_input(key="w.lb.top").set_value(3).run()
    ok(at)
    board = at.dataframe[0].value
    assert board["value"].iloc[0] == runs["metrics.val_accuracy"].min()
    assert board["rank"].max() <= 3

    at.radio(key="w.lb.dir").set_value("auto").run()
    at.number_input(key="w.lb.top").set_value(100).run()
    at.selectbox(key="w.lb.group").set_value("hidden_size").run()
    ok(at)
    groups = at.dataframe[0].value
    assert len(groups) == runs["params.hidden_size"].fillna("?").nunique()

    split = date(2026, 11, 6)
    at.date_input(key="w.lb.split").set_value(split).run()
    ok(at)
    assert at.query_params["lb.split"] == split.isoformat()
    change = at.dataframe[1].value
    assert len(change) == len(runs)
    started_after = runs["start_time"] >= pd.Timestamp(split, tz="UTC")
    assert (change["status"] == "new").sum() == started_after.sum()


def test_overlays_plot_selected_runs_and_metrics_with_smoothing_and_bands(open_app, demo):
    runs, history = demo.runs(), demo.history()
    keys = _keys(runs, SELECTED_ROWS)
    metrics = ["val_loss", "val_accuracy"]
    at = open_app(demo, "overlays", query={"run": keys, "ov.metrics": metrics})
    ok(at)
    ids = set(runs["run_id"].iloc[SELECTED_ROWS])
    points = int((history["run_id"].isin(ids) & history["metric"].isin(metrics)).sum())
    captions = [c.value for c in at.caption]
    assert any(f"plotted {points:,} of {points:,} points" in c for c in captions), captions
    assert len(charts(at)) == 1

    at.slider(key="w.ov.w").set_value(0.95).run()
    for axis in ("wall", "relative", "step"):
        at.radio(key="w.ov.x").set_value(axis).run()
        ok(at)
    at.toggle(key="w.ov.log").set_value(True).run()
    ok(at)
    assert at.query_params["ov.w"] == "0.95"

    at.selectbox(key="w.ov.band").set_value("hidden_size").run()
    ok(at)
    assert len(charts(at)) == 1 + len(metrics)  # the overlay, then one band chart per metric


def test_confusion_side_by_side_normalised_and_difference(open_app, demo):
    at = open_app(demo, "confusion")
    ok(at)
    assert len(charts(at)) == 3  # two runs (default) and A - B
    tables = [d.value for d in at.dataframe]
    assert {"precision", "recall", "f1"} <= set(tables[0].columns)
    at.radio(key="w.cm.norm").set_value("row").run()
    ok(at)
    assert len(charts(at)) == 3
    subheaders = [s.value for s in at.subheader]
    assert "Difference A - B" in subheaders


def test_environment_diff_classes_package_changes_and_shows_git_diff(open_app, demo):
    runs = demo.runs()
    old = runs[runs["experiment"] == "digits-sgd"].index[0]  # before the demo's package drift
    dirty = runs.index[runs["run_name"] == "mlp-sgd-noscale-s0"][0]  # an ablation, dirty tree
    keys = _keys(runs, [int(old), int(dirty)])
    at = open_app(demo, "environment", query={"run": keys})
    ok(at)
    ws = Workspace.open([demo.tracking_uri], [demo.logdir])
    env_old = ws.environment(runs["source_uri"].iloc[old], runs["run_id"].iloc[old])
    env_dirty = ws.environment(runs["source_uri"].iloc[dirty], runs["run_id"].iloc[dirty])
    assert [c.value for c in at.code] == [env_dirty.get("git.diff").rstrip("\n")]
    changed = {
        p
        for p in env_old.packages
        if env_dirty.packages.get(p, env_old.packages[p]) != env_old.packages[p]
    }
    assert changed, "the demo's runs differ in package versions"
    change_tables = [d.value for d in at.dataframe if "severity" in d.value.columns]
    changes = change_tables[-1]  # the package list of the second run against the baseline
    assert set(changes["change"]) <= {"upgraded", "downgraded", "added", "removed", "changed"}
    assert set(changes["severity"]) <= {"major", "minor", "patch", "other", ""}
    assert len(changes) >= len(changed)

    at.toggle(key="w.env.all").set_value(True).run()
    ok(at)
    values = at.dataframe[2].value
    assert {"python", "platform", "git.commit", "git.branch", "git.dirty"} <= set(values["key"])


def test_importance_warns_about_few_runs_and_weighs_every_param(open_app, demo):
    runs = demo.runs()
    at = open_app(demo, "importance", query={"metric": "val_accuracy"})
    ok(at)
    warnings = [w.value for w in at.warning]
    assert any("runs for" in w and "unreliable" in w for w in warnings), warnings
    table = at.dataframe[0].value
    params = [c for c in runs.columns if c.startswith("params.") and runs[c].notna().any()]
    assert sorted(table["param"]) == sorted(c.removeprefix("params.") for c in params)
    numeric = table[table["kind"] == "numeric"]
    assert np.isfinite(numeric["spearman"].dropna()).all()
    assert len(charts(at)) == 1

    at.multiselect(key="w.imp.params").set_value(["scaler", "hidden_size"]).run()
    ok(at)
    assert sorted(at.dataframe[0].value["param"]) == ["hidden_size", "scaler"]


def test_sidebar_experiments_narrow_every_page(open_app, demo):
    runs = demo.runs()
    at = open_app(demo, "runs")
    at.multiselect(key="w.exp").set_value(["wine-mlp"]).run()
    ok(at)
    assert len(at.dataframe[0].value) == int((runs["experiment"] == "wine-mlp").sum())
    assert at.query_params["exp"] == "wine-mlp"
    at.switch_page("views/overview.py").run()
    assert {m.label: m.value for m in at.metric}["Experiments"] == "1"


def test_switching_a_source_off_removes_its_runs(open_app, demo):
    runs = demo.runs()
    at = open_app(demo, "runs")
    tensorboard = [c for c in at.sidebar.checkbox if "tensorboard" in c.label]
    assert len(tensorboard) == 1
    tensorboard[0].uncheck().run()
    ok(at)
    assert len(at.dataframe[0].value) == int((runs["source"] == "mlflow").sum())
    assert query_list(at, "off") == [demo.logdir]
