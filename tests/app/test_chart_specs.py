"""Issue #12: the chart builders (app and PDF) name every run distinctly, cut no labels,
keep the overlay's raw lines apart from the smoothed ones, write dates in one format and
make confusion-matrix numbers legible. Checked on the Vega-Lite specs (``to_dict()``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from runreview import charts
from runreview.analysis.overlay import overlay_frame
from runreview.analysis.runlabels import distinct_labels

URI = "sqlite:///team.db"
IDS = ["a9ddf3c1b2e84f0d9c7e6b5a4f3e2d1c", "a9ddf3c1ffffffffffffffffffffffff", "0b1c" * 8]


def _layers(spec: dict) -> list[dict]:
    spec = spec.get("spec", spec)
    return spec.get("layer", [spec])


def _values(spec: dict) -> list[dict]:
    data = spec.get("data") or spec.get("spec", {}).get("data")
    if "values" in data:
        return data["values"]
    return next(iter(spec["datasets"].values()))


def test_distinct_labels_use_the_name_and_an_id_only_when_names_repeat():
    assert distinct_labels(["rf", "mlp"], IDS[:2]) == ["rf", "mlp"]
    assert distinct_labels(["rf", "rf", "mlp"], [IDS[0], IDS[2], IDS[1]]) == [
        "rf [a9ddf3c1]", "rf [0b1c0b1c]", "mlp",
    ]  # fmt: skip
    # 8 characters do not tell these two apart: the whole id then
    assert distinct_labels(["rf", "rf"], IDS[:2]) == [f"rf [{IDS[0]}]", f"rf [{IDS[1]}]"]
    assert distinct_labels(["", None], ["r1", "r2"]) == ["r1", "r2"]  # no name: the id


def _board() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": [1, 1, 3, 4],
            "source_uri": [URI] * 4,
            "run_id": [IDS[0], IDS[2], "breast-cancer/mlp-h8-lr1e-3-s0", "x" * 32],
            "run_name": ["learning_rate_init-sweep", "learning_rate_init-sweep",
                         "breast-cancer/mlp-h8-lr1e-3-s0", "nan-run"],
            "value": [0.98, 0.98, 0.5, np.nan],
        }
    )  # fmt: skip


def test_leaderboard_labels_every_bar_distinctly_and_unclipped():
    spec = charts.leaderboard_chart(_board(), "val_accuracy").to_dict()
    bars, text = _layers(spec)
    y = bars["encoding"]["y"] if "y" in bars["encoding"] else spec["encoding"]["y"]
    assert y["axis"]["labelLimit"] >= 300 and y["axis"]["labelOverlap"] is False
    rows = _values(spec)
    names = [r["run"] for r in rows]
    assert names == [
        "1. learning_rate_init-sweep [a9ddf3c1]",
        "1. learning_rate_init-sweep [0b1c0b1c]",
        "3. breast-cancer/mlp-h8-lr1e-3-s0",
        "4. nan-run",
    ]
    assert len(set(names)) == len(names)  # one bar per row, none merged
    assert text["mark"]["type"] == "text" and text["encoding"]["text"]["field"] == "text"
    assert [r["text"] for r in rows] == ["0.98", "0.98", "0.5", "no value"]
    assert spec["padding"]["left"] > 0 and spec["padding"]["right"] > 0


def _overlay(show_raw: bool = True, x: str = "step", **labels) -> dict:
    history = pd.DataFrame(
        {
            "source": "mlflow",
            "source_uri": URI,
            "run_id": np.repeat(IDS, 5),
            "metric": "loss",
            "step": np.tile(np.arange(5), 3),
            "value": np.linspace(1.0, 0.1, 15),
            "timestamp": pd.date_range("2026-11-29", periods=15, freq="h", tz="UTC"),
        }
    )
    runs = pd.DataFrame({"source_uri": URI, "run_id": IDS, "run_name": ["a", "a", "b"]})
    runs["source"], runs["experiment"] = "mlflow", "e"
    keys = [(URI, r) for r in IDS]
    result = overlay_frame(history, runs, ["loss"], keys, x=x, weight=0.6)
    return charts.overlay_chart(result, show_raw=show_raw, **labels).to_dict()


def test_overlay_title_and_axis_default_for_the_app_and_plain_when_asked():
    spec = _overlay()
    assert spec["title"]["text"] == "Metric overlay"
    assert _layers(spec)[0]["encoding"]["y"]["title"] == "value"
    plain = _overlay(title="Loss of the top models", y_title="loss", panel_labels=False)
    assert plain["title"]["text"] == "Loss of the top models"
    assert _layers(plain)[0]["encoding"]["y"]["title"] == "loss"
    assert plain["facet"]["row"]["header"]["labels"] is False


def test_overlay_smoothed_lines_stand_apart_from_the_faint_raw_ones():
    spec = _overlay()
    smooth, raw = _layers(spec)
    assert smooth["encoding"]["y"]["field"] == "smoothed"  # first: the legend draws it
    assert raw["mark"]["opacity"] <= 0.35 and raw["mark"]["strokeDash"]
    assert smooth["mark"]["strokeWidth"] >= 2 * raw["mark"]["strokeWidth"]
    legend = smooth["encoding"]["color"]["legend"]
    assert legend["symbolOpacity"] == 1 and legend["labelLimit"] >= 300
    series = sorted({r["series"] for r in _values(spec)})
    assert series == [f"a [{IDS[0]}]", f"a [{IDS[1]}]", "b"]  # ids only where names repeat
    assert len(_layers(_overlay(show_raw=False))) == 1


def test_date_axes_use_one_explicit_format():
    per_day = pd.DataFrame(
        {"date": pd.date_range("2026-10-17", periods=45, freq="D", tz="UTC"),
         "source": "mlflow", "runs": 1}
    )  # fmt: skip
    timeline = charts.runs_timeline_chart(per_day).to_dict()
    assert timeline["encoding"]["x"]["axis"]["format"] == charts.DATE_FORMAT == "%d %b"
    progress = pd.DataFrame({"date": per_day["date"], "best": np.linspace(0, 1, 45)})
    best = charts.progress_chart(progress, "val_accuracy").to_dict()
    assert best["encoding"]["x"]["axis"]["format"] == "%d %b"
    wall = _overlay(x="wall")
    assert _layers(wall)[0]["encoding"]["x"]["axis"]["format"] == charts.DATE_TIME_FORMAT


def test_importance_labels_are_not_cut():
    class Result:  # what importance_chart reads of an ImportanceResult
        metric = "val_accuracy"
        table = pd.DataFrame(
            {"param": ["learning_rate_init", "alpha"], "importance_mean": [0.2, 0.1],
             "importance_std": [0.01, 0.02]}
        )  # fmt: skip

    spec = charts.importance_chart(Result()).to_dict()
    y = spec["encoding"]["y"] if "encoding" in spec else spec["layer"][0]["encoding"]["y"]
    assert y["axis"]["labelLimit"] >= 300 and spec["padding"]["left"] > 0


def _confusion(matrix, **options) -> tuple[dict, list[dict]]:
    spec = charts.confusion_chart(["a", "b", "c"], np.asarray(matrix), "t", **options).to_dict()
    return spec, _values(spec)


def test_confusion_counts_are_integers_and_text_colour_follows_the_cell():
    counts = [[15.0, 0.0, 0.0], [1.0, 17.0, 0.0], [0.0, 0.0, 12.0]]
    spec, rows = _confusion(counts)
    assert [r["text"] for r in rows] == ["15", "0", "0", "1", "17", "0", "0", "0", "12"]
    dark = {(r["true"], r["predicted"]): r["dark"] for r in rows}
    assert dark[("a", "a")] and dark[("b", "b")] and dark[("c", "c")]
    assert not dark[("a", "b")] and not dark[("b", "a")]
    text = _layers(spec)[1]
    assert text["mark"]["fontSize"] >= 10
    colour = text["encoding"]["color"]
    assert colour["condition"]["test"] == "datum.dark"
    assert {colour["condition"]["value"], colour["value"]} == {"white", "#1f1f1f"}


def test_confusion_shares_and_differences():
    _, rows = _confusion([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], counts=False)
    assert rows[0]["text"] == "1.00" and rows[1]["text"] == "0.00"
    _, rows = _confusion([[3.0, -2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], diverging=True)
    assert [r["text"] for r in rows[:3]] == ["3", "-2", "0"]
    dark = [r["dark"] for r in rows]
    assert dark[:3] == [True, True, False]  # both ends of a diverging scale are dark


def test_confusion_difference_of_equal_matrices_has_a_readable_scale():
    spec, rows = _confusion(np.zeros((3, 3)), diverging=True, counts=True)
    colour = _layers(spec)[0]["encoding"]["color"]
    assert colour["scale"]["domain"] == [-1.0, 1.0]  # not a zero-width "0.000000" legend
    assert colour["legend"]["format"] == "d"
    assert {r["text"] for r in rows} == {"0"} and not any(r["dark"] for r in rows)
