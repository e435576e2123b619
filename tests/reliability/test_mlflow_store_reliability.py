"""RELIABILITY.md section B, cases B11-B21: MLflow stores read in place (mlruns folders,
sqlite files), damaged by the test; artifacts that must never be touched or loaded; deleted
runs; the same run in two stores. Every store here was written by the real MLflow client.
"""

from __future__ import annotations

import hashlib
import io
import math
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from runreview.analysis.leaderboard import leaderboard
from runreview.cli import main
from runreview.reports.build import make_snapshot, render_report
from runreview.reports.options import ReportOptions
from runreview.sources.base import SourceError
from runreview.sources.mlflow import MlflowSource
from runreview.sources.mlflow.sqlite import known_schema
from runreview.workspace import Workspace
from tests.reliability import pdfcheck, stores

NOW = datetime(2025, 11, 21, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def sha256(path: Path) -> str:
    """The file's SHA-256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def messages(source: MlflowSource) -> str:
    """Every finding of ``source``, one per line."""
    return "\n".join(f.line() for f in source.findings)


def many_dirs(mlruns: Path, manifest: dict) -> list[Path]:
    """Run folders of the "exp-many" experiment of the session's mlruns store."""
    exp = manifest["experiments"]["exp-many"]
    return [mlruns / exp / run_id for run_id in manifest["many"]]


# --- B11-B13: damaged mlruns folders ------------------------------------------------------


def test_B11_run_without_meta_yaml_is_named_while_mlflow_skips_it(
    mlflow_stores, mlruns_copy, monkeypatch
):
    from mlflow import MlflowClient

    run_dir = many_dirs(mlruns_copy, mlflow_stores.files_manifest)[0]
    (run_dir / "meta.yaml").unlink()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=mlruns_copy.as_uri())
    exp = mlflow_stores.files_manifest["experiments"]["exp-many"]
    mlflow_ids = {r.info.run_id for r in client.search_runs([exp], max_results=1000)}
    assert run_dir.name not in mlflow_ids  # MLflow leaves it out silently ...
    source = MlflowSource(str(mlruns_copy))
    runs = source.read_runs(["exp-many"])
    assert set(runs["run_id"]) == mlflow_ids  # ... runreview reads the same runs ...
    [finding] = [f for f in source.findings if f.run_id == run_dir.name]
    assert finding.message == f"run {run_dir.name} unreadable: missing meta.yaml"  # and says so
    assert finding.path == str(run_dir / "meta.yaml") and finding.severity == "error"


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_B12_invalid_run_metadata_is_a_per_run_error_and_other_runs_load(
    mlflow_stores, mlruns_copy, tmp_path
):
    dirs = many_dirs(mlruns_copy, mlflow_stores.files_manifest)
    marker = tmp_path / "YAML-EXECUTED"
    meta = (dirs[0] / "meta.yaml").read_text()
    damage = {
        "metadata is in invalid state": meta.replace("experiment_id: '", "experiment_id: '9"),
        "invalid YAML": "run_id: [unclosed\n  : :",
        "binary": bytes(range(256)) * 4,
        "bomb": BOMB + "run_id: *i\n",
        "python tag": f"!!python/object/apply:builtins.open ['{marker}', 'w']\n",
    }
    for folder, content in zip(dirs, damage.values(), strict=False):
        path = folder / "meta.yaml"
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    source = MlflowSource(str(mlruns_copy))
    started = time.monotonic()
    runs = source.read_runs(["exp-many"])
    assert time.monotonic() - started < 10  # the bomb is refused, never expanded
    assert sorted(runs["run_id"]) == sorted(d.name for d in dirs[len(damage) :])
    text = messages(source)
    assert f"run {dirs[0].name} unreadable: metadata is in invalid state" in text
    assert f"run {dirs[1].name} unreadable: invalid YAML" in text
    for folder in dirs[2 : len(damage)]:
        assert f"run {folder.name} unreadable:" in text
    assert not marker.exists()  # safe loader: no Python object was built


def test_B13_bad_metric_lines_are_counted_with_file_and_line_and_nan_is_never_best(
    mlflow_stores, mlruns_copy
):
    first, second = many_dirs(mlruns_copy, mlflow_stores.files_manifest)[:2]
    loss = first / "metrics" / "loss"
    original = loss.read_text().splitlines()
    loss.write_text(
        "\n".join(original)
        + "\n1700000100099 notanumber 7"  # non-numeric
        + "\n1700000099000 0.5 1"  # a duplicate step, with an earlier timestamp
        + "\n1700000100100 nan 8\n1700000100101 -inf 9"
        + "\n17000"  # truncated last line
    )
    (second / "metrics" / "loss").write_text("1700000100000 nan 0\n1700000100001 inf 1\n")
    source = MlflowSource(str(mlruns_copy))
    runs = source.read_runs(["exp-many"])
    history = source.read_history(metrics=["loss"])
    mine = history[history["run_id"] == first.name]
    assert len(mine) == len(original) + 3  # every readable point kept
    assert list(mine["step"]).count(1) == 2 and mine["value"].isna().sum() == 1
    assert -math.inf in set(mine["value"])
    [finding] = [f for f in source.findings if f.run_id == first.name]
    assert "2 unreadable line(s)" in finding.message
    assert finding.path == f"{loss}:{len(original) + 1}"
    board = leaderboard(runs, history, "loss", "min", mode="best").set_index("run_id")
    assert board.loc[first.name, "value"] == 0.5  # not -inf
    assert not board.loc[second.name, "finite"]
    assert board.loc[second.name, "rank"] == board["rank"].max()  # NaN/inf rank last
    assert board.iloc[0]["finite"] and math.isfinite(board.iloc[0]["value"])


# --- B14-B17: store files -------------------------------------------------------------------


def test_B14_file_store_reads_without_mlflow_allow_file_store_and_creates_nothing(
    mlflow_stores, mlruns_copy, tmp_path, monkeypatch, capsys
):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MlflowException, match="MLFLOW_ALLOW_FILE_STORE"):
        MlflowClient(tracking_uri=mlruns_copy.as_uri()).search_experiments()  # MLflow refuses
    assert main(["runs", "--tracking-uri", str(mlruns_copy), "--format", "csv"]) == 0
    runs = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str)
    expected = set(mlflow_stores.files_manifest["many"]) | {
        mlflow_stores.files_manifest["runs"][r] for r in ("good", "failed", "running")
    }
    assert set(runs["run_id"]) == expected
    assert [p for p in tmp_path.rglob("*") if p.suffix == ".db" or p.name == "mlflow.db"] == []


def test_B15_missing_sqlite_store_is_an_error_and_nothing_is_created(tmp_path, capsys):
    missing = tmp_path / "typo.db"
    assert main(["runs", "--tracking-uri", f"sqlite:///{missing}"]) == 2
    assert f"MLflow store not found: {missing}. Check the path" in capsys.readouterr().err
    assert main(["runs", "--tracking-uri", str(missing)]) == 2  # a plain path
    assert f"{missing} not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _set_schema(db: Path, version: str, drop: str | None = None) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (version,))
        if drop:
            conn.execute(f"ALTER TABLE runs DROP COLUMN {drop}")
    conn.close()


@pytest.mark.parametrize("case", ["newer", "older-missing-column", "older-complete"])
def test_B16_other_schema_versions_name_found_and_expected_and_are_never_upgraded(
    sqlite_copy, case
):
    revisions, heads = known_schema()
    older = sorted(revisions - heads)[0]
    found = {"newer": "ffffffffffff"}.get(case, older)
    _set_schema(sqlite_copy, found, "artifact_uri" if case == "older-missing-column" else None)
    before = sha256(sqlite_copy)
    source = MlflowSource(f"sqlite:///{sqlite_copy}")
    expected = ", ".join(sorted(heads))
    if case == "older-complete":
        assert len(source.read_runs()) > 0
        assert f"store schema version {found} is older than {expected}" in messages(source)
    else:
        with pytest.raises(SourceError) as caught:
            source.read_runs()
        assert f"store schema version {found}, this runreview expects {expected}" in str(
            caught.value
        )
        assert "never writes a store" in str(caught.value)
    assert sha256(sqlite_copy) == before  # never upgraded, never written


def test_B17_locked_store_waits_a_bounded_time_then_fails(sqlite_copy):
    writer = sqlite3.connect(sqlite_copy, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(SourceError, match="locked by another process"):
            MlflowSource(f"sqlite:///{sqlite_copy}", lock_timeout=0.6).read_runs()
        assert 0.3 < time.monotonic() - started < 5  # retried, then gave up
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_B17_wal_store_with_an_active_writer_reads_the_committed_snapshot(
    mlflow_stores, sqlite_copy
):
    good = mlflow_stores.run("good")
    writer = sqlite3.connect(sqlite_copy, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("BEGIN")
    writer.execute("UPDATE runs SET name = 'uncommitted' WHERE run_uuid = ?", (good,))
    try:
        started = time.monotonic()
        runs = MlflowSource(f"sqlite:///{sqlite_copy}").read_runs().set_index("run_id")
        assert time.monotonic() - started < 5  # not blocked by the writer
        assert runs.loc[good, "run_name"] == "good-1"
        writer.execute("COMMIT")
        runs = MlflowSource(f"sqlite:///{sqlite_copy}").read_runs().set_index("run_id")
        assert runs.loc[good, "run_name"] == "uncommitted"
    finally:
        writer.close()


def test_B17_truncated_and_non_database_files_are_clear_errors(sqlite_copy, tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(SourceError, match="is not an SQLite database"):
        MlflowSource(f"sqlite:///{garbage}").read_runs()
    data = sqlite_copy.read_bytes()
    sqlite_copy.write_bytes(data[: len(data) // 3])
    with pytest.raises(SourceError, match="damaged or truncated|not an MLflow tracking store"):
        source = MlflowSource(f"sqlite:///{sqlite_copy}")
        source.read_runs()
        source.read_history()


# --- B18, B19: artifacts ------------------------------------------------------------------


HOSTILE_ARTIFACT_URIS = [
    "file:///etc",
    "/etc/ssl",
    "../../..",
    "%2e%2e%2f%2e%2e%2fetc",
    "mlflow-artifacts:/x#/../../etc",
    "C:\\Users\\x\\..\\..",
    "\\\\host\\share\\x",
    "file:///tmp/run\x01/artifacts",
    "file:///tmp/run\n/artifacts",
    "file://evil.example.com/share",
]


def _foreign_access(events: list, store: Path) -> list:
    """File or network access other than to the store file and Python's own code."""
    allowed = (sys.prefix, sys.base_prefix, str(REPO), str(store))
    network = ("socket.connect", "socket.getaddrinfo", "urllib.Request")
    return [
        (name, args)
        for name, args in events
        if name in network or (args and not args[0].startswith(allowed))
    ]


@pytest.mark.parametrize("uri", HOSTILE_ARTIFACT_URIS)
def test_B18_unsafe_artifact_location_is_refused_before_any_access(
    mlflow_stores, sqlite_copy, audit_events, uri
):
    good = mlflow_stores.run("good")
    with sqlite3.connect(sqlite_copy) as conn:
        conn.execute("UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?", (uri, good))
    conn.close()
    source = MlflowSource(f"sqlite:///{sqlite_copy}")
    source.read_runs()  # warm: imports and the schema check happen outside the recording
    with audit_events.recording():
        details = source.read_run_details(good)
        confusion = source.read_confusion(good)
        source.read_environment(good)
    assert _foreign_access(audit_events.events, sqlite_copy) == []
    assert details["artifacts"] == [] and details["artifact_error"] and confusion == []
    assert "artifacts not listed" in messages(source)


def test_B19_pickled_models_are_never_loaded_and_yaml_is_shown_as_text(
    reliability_store, audit_events, tmp_path
):
    source = MlflowSource(reliability_store.uri)
    pickled, oversized = reliability_store.runs["pickled"], reliability_store.runs["oversized"]
    with audit_events.recording():
        env = source.read_environment(pickled)
        matrices = source.read_confusion(pickled)
        details = source.read_run_details(pickled)
        source.read_environment(oversized)
    assert audit_events.named("pickle.find_class") == []
    assert not reliability_store.marker.exists()
    assert env.values["python"][0] == stores.XSS  # read as text, kept as text
    assert matrices == []
    assert {"model/model.pkl", "confusion_matrix.pkl", "model/MLmodel"} <= {
        a["path"] for a in details["artifacts"]
    }
    assert "requirements.txt not read: artifact 'requirements.txt' is" in messages(source)
    options = ReportOptions(kind="audit", now=NOW, since=None, experiments=("evidence",))
    ws = Workspace.open([reliability_store.uri], [])
    built = render_report(make_snapshot(ws, options, lambda m, f: None), options)
    assert "<script>" not in built.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in built.html
    assert stores.XSS in pdfcheck.pdftotext(built.pdf)
    assert not reliability_store.marker.exists()


# --- B20, B21: which runs, identified how -----------------------------------------------------


@pytest.mark.parametrize("include", [False, True])
def test_B20_deleted_runs_follow_the_setting_and_the_report_says_which(
    reliability_store, tmp_path, monkeypatch, include
):
    db = reliability_store.copy(tmp_path / "store.db")
    gone = reliability_store.runs["same_b"]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET lifecycle_stage = 'deleted' WHERE run_uuid = ?", (gone,))
    conn.close()
    monkeypatch.setenv("RUNREVIEW_INCLUDE_DELETED", str(include).lower())
    ws = Workspace.open([f"sqlite:///{db}"], [])
    for kind in ("weekly", "stakeholder"):
        options = ReportOptions(kind=kind, now=NOW, since=None, experiments=("names",))
        built = render_report(make_snapshot(ws, options, lambda m, f: None), options)
        runs = pd.read_csv(io.BytesIO(pdfcheck.attachments(built.pdf)["runs.csv"]), dtype=str)
        assert (gone in set(runs["run_id"])) is include
        word = "included" if include else "excluded"
        text = pdfcheck.squash(pdfcheck.pdftotext(built.pdf))
        if kind == "stakeholder":  # plain words, no setting names (#12)
            plain = "included" if include else "leftout"
            assert f"Runsdeletedfromthetrackingstoreare{plain}." in text, kind
        else:
            assert f"DeletedMLflowrunswere{word}(settingRUNREVIEW_INCLUDE_DELETED)" in text, kind
        assert pdfcheck.manifest(built.pdf)["scope"]["include_deleted"] is include


def test_B21_same_run_ids_in_two_stores_and_duplicate_names_are_never_merged(
    reliability_store, tmp_path
):
    first = reliability_store.copy(tmp_path / "a.db")
    second = reliability_store.copy(tmp_path / "b.db")
    uris = [f"sqlite:///{first}", f"sqlite:///{second}"]
    ws = Workspace.open(uris, [])
    options = ReportOptions(kind="audit", now=NOW, since=None, experiments=("names",))
    snapshot = make_snapshot(ws, options, lambda m, f: None)
    runs = snapshot.runs
    assert len(runs) == 6 and not runs.duplicated(["source_uri", "run_id"]).any()
    assert runs["run_id"].value_counts().eq(2).all()
    assert sorted(runs["run_name"]) == ["", "", "same", "same", "same", "same"]
    board = leaderboard(runs, snapshot.history, "val_accuracy", "max")
    assert len(board) == 6 and set(board["source_uri"]) == set(uris)
    built = render_report(snapshot, options)
    appendix = built.html.split("Appendix: all runs", 1)[1].split("</table>", 1)[0]
    assert appendix.count("<tr>") == 7  # header + six runs
    empty = reliability_store.runs["empty"]
    assert built.html.count(f"<h2>Run {empty}</h2>") == 2  # shown by its id, once per store
    attached = pd.read_csv(io.BytesIO(pdfcheck.attachments(built.pdf)["runs.csv"]), dtype=str)
    assert len(attached) == 6 and set(attached["source_uri"]) == set(uris)
