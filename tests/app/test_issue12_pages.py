"""Issue #12 on the app's pages (AppTest on the demo): environment diff columns and empty
tables, the Report page after the kind changes, the Overview's source count, the "Add a
source" box, and filters naming a column no run has."""

from __future__ import annotations

from tests.app.helpers import ok, run_key, unescape


def _rows(runs, names: list[str]) -> list[str]:
    index = runs.set_index("run_name")
    return [run_key(index.loc[n, "source_uri"], index.loc[n, "run_id"]) for n in names]


# --- environment diff -----------------------------------------------------------------


def test_environment_columns_are_run_names_and_no_table_reads_empty(open_app, demo):
    runs = demo.runs()
    names = ["sgd-l2-a1e-4-s0", "sgd-l2-a1e-4-s1"]  # same packages, other host
    at = open_app(demo, "environment", query={"run": _rows(runs, names)})
    ok(at)
    tables = [d.value for d in at.dataframe]
    assert all(len(t) for t in tables), [list(t.columns) for t in tables if not len(t)]
    values = next(t for t in tables if "key" in t.columns and "differs" in t.columns)
    assert list(values.columns) == ["key", "differs", *names]  # not 32-character ids
    assert "captured_at" not in set(values["key"])  # bookkeeping, not a difference
    assert "hostname" in set(values["key"])
    assert any(s.value.startswith("No differences: all") for s in at.success), [
        s.value for s in at.success
    ]
    legend = tables[0]
    assert legend["column"].tolist() == names


def test_environment_of_identical_runs_says_no_differences(open_app, demo):
    runs = demo.runs()
    tb = runs[runs["source"] == "tensorboard"]["run_name"].tolist()
    at = open_app(demo, "environment", query={"run": _rows(runs, [tb[0], tb[0]])})
    ok(at)
    assert all(len(d.value) for d in at.dataframe)
    texts = [unescape(s.value) for s in at.success]
    assert any(t.startswith("No differences: every run has the same python") for t in texts)


# --- Report page -------------------------------------------------------------------------


def _finished(at, seconds: float = 180.0):
    import time

    from runreview.app.loaders import job_board
    from runreview.app.viewer import ANONYMOUS

    job_id = at.session_state["_report_job"]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = job_board().get(job_id, ANONYMOUS)
        if not job.active:
            at.run()
            ok(at)
            return job
        time.sleep(0.2)
    raise AssertionError(f"the report job was still running after {seconds} s")


def test_report_page_never_offers_the_previous_kinds_pdf(open_app, demo):
    at = open_app(demo, "report", query={"metric": "val_accuracy", "rp.since": "30d"})
    at.segmented_control(key="w.rp.kind").set_value("weekly").run()
    next(b for b in at.button if b.label == "Generate").click().run()
    ok(at)
    job = _finished(at)
    assert job.result is not None and job.result["kind"] == "weekly"
    assert [d.label for d in at.download_button] == ["Download PDF"]
    assert "Preview" in [s.value for s in at.subheader]

    at.segmented_control(key="w.rp.kind").set_value("audit").run()
    ok(at)
    assert "Preview" not in [s.value for s in at.subheader]
    assert not at.metric  # no page/run counts of the weekly PDF
    labels = [d.label for d in at.download_button]
    assert "Download PDF" not in labels
    # the weekly PDF is still there, but only labelled as what it is
    assert all(label.startswith("Weekly experiment review") for label in labels), labels
    info = [unescape(i.value) for i in at.info]
    assert any("press Generate for a Compliance audit report" in i for i in info), info

    at.segmented_control(key="w.rp.kind").set_value("weekly").run()
    ok(at)
    assert [d.label for d in at.download_button] == ["Download PDF"]  # its own kind again


# --- Overview's source count, the "Add a source" box ------------------------------------


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_overview_source_count_matches_the_sidebar(open_app, demo):
    at = open_app(demo)
    ok(at)
    assert len(at.sidebar.checkbox) == 2
    assert _metrics(at)["Sources"] == "2"
    at.sidebar.multiselect(key="w.exp").set_value(["wine-mlp"]).run()  # MLflow runs only
    ok(at)
    assert _metrics(at)["Sources"] == "2"  # both still switched on in the sidebar
    tensorboard = next(c for c in at.sidebar.checkbox if "tensorboard" in c.label)
    tensorboard.uncheck().run()
    ok(at)
    assert _metrics(at)["Sources"] == "1 of 2"


def test_a_rejected_source_path_stays_in_the_box(open_app, demo):
    at = open_app(demo)
    typo = demo.logdir + "-typo"
    at.sidebar.text_input(key="w.add_source").set_value(typo).run()
    ok(at)
    assert any("No such file or folder" in e.value for e in at.sidebar.error)
    assert at.sidebar.text_input(key="w.add_source").value == typo  # to be corrected
    assert len(at.sidebar.checkbox) == 2
    at.sidebar.text_input(key="w.add_source").set_value(demo.logdir).run()  # corrected
    ok(at)
    assert at.sidebar.text_input(key="w.add_source").value == ""


# --- a filter naming a column no run has -------------------------------------------------


def test_runs_filter_naming_an_unknown_column_says_so(open_app, demo):
    runs = demo.runs()
    at = open_app(demo, "runs")
    at.text_input(key="w.q").set_value("metrics.val_acc > 0.9").run()
    ok(at)
    errors = [unescape(e.value) for e in at.error]
    assert errors == [
        "Filter not applied: no run in scope has metrics.val_acc; "
        "did you mean metrics.val_accuracy?"
    ], errors
    assert len(at.dataframe[0].value) == len(runs)  # not an empty table

    at.text_input(key="w.q").set_value("params.solver = 'adam' and params.nope = 'x'").run()
    ok(at)
    errors = [unescape(e.value) for e in at.error]
    assert errors == ["Filter not applied: no run in scope has params.nope"], errors


def test_report_filter_naming_an_unknown_column_blocks_generate(open_app, demo):
    at = open_app(demo, "report", query={"rp.q": "params.solvr = 'adam'"})
    ok(at)
    errors = [unescape(e.value) for e in at.error]
    assert "Filter: no run in scope has params.solvr; did you mean params.solver?" in errors
    assert next(b for b in at.button if b.label == "Generate").disabled


# --- overlays: bands do not change the runs shown ----------------------------------------


def _overlay_series(at) -> set[str]:
    """The runs of the overlay, from its "Series and downsampling" table."""
    table = next(d.value for d in at.dataframe if "points_plotted" in d.value.columns)
    return set(table["run_id"])


def test_turning_bands_on_keeps_the_overlays_runs(open_app, demo):
    at = open_app(demo, "overlays", query={"ov.metrics": ["val_accuracy"]})
    ok(at)
    before = _overlay_series(at)
    assert len(before) == 5  # the best 5, as the page says
    at.selectbox(key="w.ov.band").set_value("hidden_size").run()
    ok(at)
    assert _overlay_series(at) == before
    captions = [unescape(c.value) for c in at.caption]
    total = len(demo.runs())
    assert any(f"the bands aggregate all {total} runs in scope" in c for c in captions), captions
