"""Every setting is documented in the README, with its default."""

from __future__ import annotations

from pathlib import Path

from runreview import settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme_table():
    rows = {
        line.split("|")[1].strip().strip("`")
        for line in README.splitlines()
        if line.startswith("| `")
    }
    missing = [s.env for s in settings.SETTINGS if s.env not in rows]
    assert missing == []


def test_readme_defaults_match_the_code():
    for setting in settings.SETTINGS:
        row = next(line for line in README.splitlines() if line.startswith(f"| `{setting.env}`"))
        default_cell = row.split("|")[2].strip().strip("`")
        assert default_cell == setting.default, setting.env


def test_logdirs_split_on_pathsep(monkeypatch):
    monkeypatch.setenv("RUNREVIEW_LOGDIR", "a:b::c")
    assert settings.logdirs() == ["a", "b", "c"]


def test_bad_timeout_names_the_variable(monkeypatch):
    monkeypatch.setenv("RUNREVIEW_HTTP_TIMEOUT", "soon")
    try:
        settings.http_timeout()
    except ValueError as exc:
        assert "RUNREVIEW_HTTP_TIMEOUT" in str(exc)
    else:
        raise AssertionError("expected ValueError")
