"""Every page on a store the app has never seen (made by the tests), including damage,
hostile run names, an image-only confusion matrix and a run whose matrix is invalid."""

from __future__ import annotations

import re

import pytest

from tests.app.conftest import MAIN
from tests.app.helpers import charts, markdown_texts, ok, run_key, unescape
from tests.app.stores import GIT_DIFF, HOSTILE_NAME, LONG_POINTS


def _tb_key(unseen, run_id: str) -> str:
    return run_key(unseen.logdir, run_id)


@pytest.mark.parametrize(
    "page",
    ["overview", "runs", "leaderboard", "overlays", "confusion", "environment", "importance"],
)
def test_every_page_renders_content_on_a_never_seen_store(open_app, unseen, page):
    at = open_app(unseen, page)
    ok(at)
    assert at.title[0].value  # the page got past its header
    assert len(at.dataframe) + len(charts(at)) >= 1
    for text in markdown_texts(at):
        assert "](javascript" not in text and "![x](" not in text, text


def test_overview_reports_the_damaged_event_file(open_app, unseen, unseen_store):
    at = open_app(unseen)
    ok(at)
    assert {m.label: m.value for m in at.metric}["Runs"] == str(
        unseen_store.mlflow_runs + unseen_store.tensorboard_runs
    )
    assert any(w.value.startswith("Incomplete: 1 error(s)") for w in at.warning)
    findings = at.dataframe[-1].value
    damaged = findings[findings["run_id"] == unseen_store.damaged_run]
    assert "data CRC mismatch" in " ".join(damaged["message"])
    assert damaged["position"].str.contains("record 5").any()


def test_hostile_run_names_are_shown_as_text_never_as_markdown(open_app, unseen, unseen_store):
    runs = unseen.runs()
    hostile = runs[runs["run_name"].isin([HOSTILE_NAME, unseen_store.hostile_tb_run])]
    assert len(hostile) == 2
    keys = [run_key(u, r) for u, r in zip(hostile["source_uri"], hostile["run_id"], strict=True)]
    at = open_app(unseen, "confusion", query={"run": keys})
    ok(at)
    texts = [t.value for t in at.text]
    assert any(t.startswith(HOSTILE_NAME) for t in texts), texts  # st.text: literal
    for text in markdown_texts(at):
        assert "](javascript" not in text and "![x](" not in text, text
    table = open_app(unseen, "runs").dataframe[0].value
    assert HOSTILE_NAME in set(table["run_name"])  # shown verbatim in the table


def test_confusion_image_only_run_difference_and_a_broken_run(open_app, unseen, unseen_store):
    runs = ["lr-a", "lr-b", unseen_store.image_only_run, unseen_store.bad_matrix_run]
    at = open_app(unseen, "confusion", query={"run": [_tb_key(unseen, r) for r in runs]})
    ok(at)
    assert len(at.get("image")) == 1  # the run that logged only an image of its matrix
    errors = [unescape(e.value) for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Run bad-matrix")
    assert "non-negative" in errors[0]
    assert len(charts(at)) == 3  # lr-a, lr-b, and A - B: the broken run blanks nothing
    assert [unescape(i.value) for i in at.info] == ["Labels only in B: fox"]
    deltas = at.dataframe[-1].value
    assert list(deltas["label"]) == ["cat", "dog", "fox"]
    assert deltas.loc[0, "recall_a"] == pytest.approx(8 / 10)
    assert deltas.loc[0, "recall_b"] == pytest.approx(7 / 10)


def test_environment_diff_of_two_tensorboard_runs(open_app, unseen):
    keys = [_tb_key(unseen, "lr-a"), _tb_key(unseen, "lr-b")]
    at = open_app(unseen, "environment", query={"run": keys})
    ok(at)
    values = at.dataframe[2].value.set_index("key")
    assert list(values.loc["python", ["lr-a", "lr-b"]]) == ["3.11.4", "3.12.1"]
    tables = [d.value for d in at.dataframe]
    changes = next(t for t in tables if {"package", "change"} <= set(t.columns))
    changes = changes.set_index("package")
    assert changes.loc["numpy", ["change", "severity"]].tolist() == ["upgraded", "major"]
    assert changes.loc["torch", ["change", "severity"]].tolist() == ["upgraded", "patch"]
    assert changes.loc["pandas", "change"] == "removed"
    assert changes.loc["scipy", "change"] == "added"
    summary = at.dataframe[1].value
    assert "python 3.11.4 -> 3.12.1" in summary["differences"].iloc[0]
    assert [c.value for c in at.code] == [GIT_DIFF.rstrip("\n")]  # literal, markup and all


def test_overlay_downsamples_a_long_series_and_says_so(open_app, unseen):
    query = {"run": [_tb_key(unseen, "long")], "ov.metrics": ["loss"], "ov.pts": "100"}
    at = open_app(unseen, "overlays", query=query)
    ok(at)
    caption = next(c.value for c in at.caption if "plotted" in c.value)
    match = re.search(r"plotted (\d+) of ([\d\\,]+) points", caption)
    assert match, caption
    assert int(match.group(2).replace("\\", "").replace(",", "")) == LONG_POINTS
    assert 50 <= int(match.group(1)) <= 100
    assert "at most 100 per series, extremes kept" in unescape(caption)
    spec = charts(at)[0].proto.spec
    assert f"of {LONG_POINTS:,} points" in spec  # the note is on the chart itself


def test_reads_show_progress_that_is_gone_when_they_end_also_from_the_cache(open_app, unseen):
    """The progress bar of a read is made inside the cached read and removed at its end:
    neither the first run (a real read) nor a second session (served from the cache,
    which replays the bar's messages) is left with a bar on the page."""
    from streamlit.testing.v1 import AppTest

    first = open_app(unseen)
    ok(first)
    assert not first.get("progress")
    second = AppTest.from_file(str(MAIN), default_timeout=90)  # same sources (environment)
    second.run()
    ok(second)
    assert not second.get("progress")
    assert {m.label: m.value for m in second.metric} == {m.label: m.value for m in first.metric}
