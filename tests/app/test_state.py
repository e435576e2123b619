"""The selection in the URL, credentials kept out of it, sources added and refreshed."""

from __future__ import annotations

import shutil
import socket
import string

import pytest

from runreview.app import sourceconfig, urlparams
from runreview.app.common import safe_md
from tests.app.conftest import Sources
from tests.app.helpers import markdown_texts, ok, query_list, unescape

SECRET = "S3cr3t-pw"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _everything_the_app_keeps(at) -> str:
    """Session state, the URL and every element's content, as one text."""
    parts = [f"{k}={at.session_state[k]!r}" for k in at.session_state]
    parts.append(repr(at.query_params))

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def test_credentials_never_reach_the_url_session_state_page_or_cache_key(
    open_app, demo, monkeypatch
):
    monkeypatch.setenv("RUNREVIEW_HTTP_TIMEOUT", "3")
    uri = f"http://alice:{SECRET}@127.0.0.1:{_closed_port()}/"
    at = open_app(Sources(uri, demo.logdir))
    ok(at)
    errors = [unescape(e.value) for e in at.sidebar.error]
    assert any("unreachable" in e and "***@127.0.0.1" in e for e in errors), errors
    runs_shown = {m.label: m.value for m in at.metric}["Runs"]
    assert runs_shown == str(int((demo.runs()["source"] == "tensorboard").sum()))
    at.switch_page("views/runs.py").run()
    at.sidebar.text_input(key="w.add_source").set_value(
        f"https://bob:{SECRET}@mlflow.example/"
    ).run()
    ok(at)
    assert any("holds credentials" in e.value for e in at.sidebar.error)
    assert at.sidebar.text_input(key="w.add_source").value == ""
    kept = _everything_the_app_keeps(at)
    assert SECRET not in kept
    assert "alice" not in kept and "bob:" not in kept

    config = sourceconfig.SourceConfig((uri,), ())
    other = sourceconfig.SourceConfig((uri.replace(SECRET, "another"),), ())
    assert SECRET not in repr(config) and SECRET not in "".join(config.cache_key())
    assert config.key() == other.key()  # the same label ...
    assert config.cache_key() != other.cache_key()  # ... but never the same cached data


def test_a_link_with_credentials_in_it_is_refused(open_app, demo):
    at = open_app(demo, "runs", query={"src": f"https://bob:{SECRET}@mlflow.example/"})
    ok(at)
    assert SECRET not in _everything_the_app_keeps(at)
    assert len(at.sidebar.checkbox) == 2  # only the configured sources


def test_adding_a_source_in_the_sidebar_puts_it_in_the_url(open_app, demo, unseen):
    at = open_app(demo, "runs")
    before = len(at.dataframe[0].value)
    at.sidebar.text_input(key="w.add_source").set_value(unseen.logdir).run()
    ok(at)
    assert query_list(at, "src") == [unseen.logdir]
    added = len(unseen.runs().query("source == 'tensorboard'"))
    assert len(at.dataframe[0].value) == before + added
    at.sidebar.text_input(key="w.add_source").set_value("/no/such/folder").run()
    assert any("No such file or folder" in e.value for e in at.sidebar.error)
    assert query_list(at, "src") == [unseen.logdir]
    next(b for b in at.sidebar.button if b.help == "Remove this source").click().run()
    ok(at)
    assert query_list(at, "src") == []
    assert len(at.dataframe[0].value) == before


def test_refresh_picks_up_new_runs_and_new_points(open_app, unseen_store, tmp_path):
    logdir = tmp_path / "live"
    shutil.copytree(unseen_store.logdir / "lr-a", logdir / "lr-a")
    sources = Sources(unseen_store.tracking_uri, str(logdir))
    query = {"run": [f"{logdir}::lr-a"], "ov.metrics": ["acc"], "ov.pts": "10000"}
    at = open_app(sources, "overlays", query=query)
    ok(at)
    assert any("plotted 200 of 200 points" in c.value for c in at.caption)

    from runreview.sources.tensorboard.tfrecord.write import EventWriter

    with EventWriter(logdir / "lr-a", 1_800_000_000.0, index=1) as writer:  # training goes on
        for step in range(200, 250):
            writer.add_scalar("acc", 0.99, step, 1_800_000_000.0 + step)
    shutil.copytree(unseen_store.logdir / "lr-b", logdir / "lr-b")  # and a new run appears
    at.run()
    assert any("plotted 200 of 200 points" in c.value for c in at.caption)  # cached
    refresh = next(b for b in at.sidebar.button if b.label == "Refresh")
    refresh.click().run()
    ok(at)
    assert any("plotted 250 of 250 points" in c.value for c in at.caption)
    at.switch_page("views/runs.py").run()
    assert "lr-b" in set(at.dataframe[0].value["run_id"])


def test_unknown_or_out_of_range_url_values_fall_back_to_valid_ones(open_app, demo):
    query = {
        "ov.w": "5",
        "ov.pts": "1",
        "ov.x": "sideways",
        "ov.metrics": ["no_such_metric"],
        "run": ["nowhere::nothing"],
        "lb.top": "0",
        "rp.kind": "novel",
    }
    at = open_app(demo, "overlays", query=query)
    ok(at)
    assert at.slider(key="w.ov.w").value == 0.999
    assert at.number_input(key="w.ov.pts").value == 50
    assert at.radio(key="w.ov.x").value == "step"
    assert at.multiselect(key="w.ov.metrics").value == ["val_accuracy"]
    assert at.multiselect(key="w.run").value == []
    at.switch_page("views/leaderboard.py").run()
    ok(at)
    assert at.number_input(key="w.lb.top").value == 1
    at.switch_page("views/report.py").run()
    ok(at)
    assert at.segmented_control(key="w.rp.kind").value == "weekly"


@pytest.mark.parametrize(
    ("param", "raw", "expected"),
    [
        (urlparams.OV_WEIGHT, ["0.9"], 0.9),
        (urlparams.OV_WEIGHT, ["not a number"], 0.6),
        (urlparams.LB_TOP, ["3"], 3),
        (urlparams.OV_LOG, ["1"], True),
        (urlparams.OV_LOG, ["0"], False),
        (urlparams.RUNS, ["a::1", "", "b::2"], ["a::1", "b::2"]),
        (urlparams.METRIC, [], ""),
    ],
)
def test_url_values_are_parsed_by_the_declared_kind(param, raw, expected):
    assert param.parse(raw) == expected


def test_params_have_unique_url_names_and_round_trip():
    names = [p.name for p in urlparams.PARAMS]
    assert len(names) == len(set(names)) and len(names) >= 30
    for param in urlparams.PARAMS:
        if param.kind != "list":
            assert param.parse(param.encode(param.default)) == param.default


def test_is_safe_refuses_locations_with_credentials():
    assert urlparams.is_safe(["sqlite:////tmp/x.db::run", "/logs/a::b", "metrics.acc > 0.9"])
    assert not urlparams.is_safe("https://u:p@host/")
    assert not urlparams.is_safe(["ok", "https://host/?token=abc"])


@pytest.mark.parametrize(
    "text",
    [
        "[click](javascript:alert(1))",
        "![x](https://attacker.invalid/t.png)",
        "<script>alert(1)</script>",
        "**bold** _it_ `code` $x^2$ :material/home: ~~s~~ # h\n- item",
        "https://attacker.invalid/autolink",
    ],
)
def test_safe_md_escapes_every_markdown_construct(text):
    escaped = safe_md(text)
    assert unescape(escaped) == " ".join(text.splitlines())
    assert "\n" not in escaped
    chars = iter(escaped)
    for char in chars:
        if char == "\\":
            next(chars)  # an escaped character: literal
        else:
            assert char not in string.punctuation, (char, escaped)


def test_markdown_texts_on_the_runs_page_hold_no_raw_link(open_app, unseen):
    at = open_app(unseen, "runs")
    ok(at)
    assert all("](" not in t for t in markdown_texts(at))
