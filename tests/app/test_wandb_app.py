"""The app with a W&B folder configured beside the demo's MLflow store and logdir."""

from __future__ import annotations

from runreview.workspace import Workspace
from tests import wandb_writer as spec
from tests.app.helpers import charts, ok, query_list, run_key
from tests.wandb_fixture import CORE_VERSION, LEGACY_VERSION


def _configure(monkeypatch, wandb_folders) -> str:
    folder = str(wandb_folders.root)
    monkeypatch.setenv("RUNREVIEW_WANDB_DIR", folder)
    return folder


def test_runs_page_lists_wandb_runs_and_the_sidebar_can_switch_them_off(
    open_app, demo, wandb_folders, monkeypatch
):
    folder = _configure(monkeypatch, wandb_folders)
    expected = Workspace.open([demo.tracking_uri], [demo.logdir], [folder]).runs()
    at = open_app(demo, "runs")
    ok(at)
    table = at.dataframe[0].value
    assert len(table) == len(expected)
    assert set(table["run_id"]) == set(expected["run_id"])
    assert (expected["source"] == "wandb").sum() == 8

    at.text_input(key="w.q").set_value("params.optimizer.name = 'adam'").run()
    ok(at)
    ids = {spec.run_ids(v)["baseline"] for v in (LEGACY_VERSION, CORE_VERSION)}
    assert set(at.dataframe[0].value["run_id"]) == ids

    boxes = [c for c in at.sidebar.checkbox if c.label.startswith("wandb")]
    assert len(boxes) == 1 and folder in boxes[0].label.replace("\\", "")
    boxes[0].uncheck().run()
    ok(at)
    assert query_list(at, "off") == [folder]


def test_pages_show_a_selected_wandb_run(open_app, demo, wandb_folders, monkeypatch):
    folder = _configure(monkeypatch, wandb_folders)
    run_id = spec.run_ids(CORE_VERSION)["baseline"]
    at = open_app(
        demo, "overlays", query={"run": [run_key(folder, run_id)], "ov.metrics": ["loss"]}
    )
    ok(at)
    assert len(charts(at)) == 1
    assert any(
        f"plotted {spec.STEPS} of {spec.STEPS} points" in c.value.replace("\\", "")
        for c in at.caption
    )

    at.switch_page("views/confusion.py").run()
    ok(at)
    captions = [c.value.replace("\\", "") for c in at.caption]
    assert any(run_id in c and c.endswith(".table.json") for c in captions), captions
    assert len(charts(at)) == 1
    for page in ("environment", "leaderboard", "importance", "overview"):
        at.switch_page(f"views/{page}.py").run()
        ok(at)
