"""runreview.capture against real git repositories, a real MLflow store and run dirs."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from runreview import capture, contract
from runreview.demo.mlflow_writer import global_tracking_uri

SECRET = "S3cr3t-pass"


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity; its stdout."""
    cmd = ["git", "-C", str(repo), "-c", "user.name=Test", "-c", "user.email=t@example.com"]
    return subprocess.run([*cmd, *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def no_outer_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stop git from finding a repository above ``tmp_path``."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return tmp_path


@pytest.fixture
def repo(no_outer_repo: Path) -> Path:
    """A git repository with one commit on ``main`` and a remote URL holding a password."""
    path = no_outer_repo / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "remote", "add", "origin", f"https://alice:{SECRET}@git.example.com/org/repo.git")
    (path / "train.py").write_text("lr = 0.1\nepochs = 10\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    return path


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    """A fresh sqlite MLflow store with its artifacts under ``tmp_path``."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def run_id(tracking_uri: str, tmp_path: Path) -> str:
    """A run in an experiment whose artifacts live under ``tmp_path``."""
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.create_experiment("exp", artifact_location=(tmp_path / "art").as_uri())
    return client.create_run(experiment).info.run_id


def read_artifact(tracking_uri: str, run_id: str, name: str, dst: Path) -> object:
    """A JSON artifact of a run, downloaded and parsed."""
    dst.mkdir(exist_ok=True)
    local = MlflowClient(tracking_uri=tracking_uri).download_artifacts(run_id, name, str(dst))
    return json.loads(Path(local).read_text())


# --- collect_environment ----------------------------------------------------------------


def test_dirty_repo_records_commit_branch_diff_and_redacted_remote(repo: Path) -> None:
    (repo / "train.py").write_text("lr = 0.05\nepochs = 10\n")

    env = capture.collect_environment(cwd=repo)

    info = env["git"]
    assert info["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert info["branch"] == "main"
    assert info["dirty"] is True
    assert "-lr = 0.1" in info["diff"] and "+lr = 0.05" in info["diff"]
    assert info["diff_truncated"] is False
    assert info["remote"] == "https://***@git.example.com/org/repo.git"
    assert SECRET not in json.dumps(env)


def test_clean_repo_is_not_dirty_and_untracked_files_do_not_count(repo: Path) -> None:
    (repo / "notes.txt").write_text("not tracked\n")

    info = capture.collect_environment(cwd=repo)["git"]

    assert info["dirty"] is False
    assert info["diff"] == ""


def test_staged_change_is_dirty_and_in_the_diff(repo: Path) -> None:
    (repo / "train.py").write_text("lr = 0.1\nepochs = 20\n")
    git(repo, "add", "train.py")

    info = capture.collect_environment(cwd=repo)["git"]

    assert info["dirty"] is True
    assert "+epochs = 20" in info["diff"]


def test_detached_head_has_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")

    info = capture.collect_environment(cwd=repo)["git"]

    assert info["branch"] is None
    assert info["commit"] == git(repo, "rev-parse", "HEAD").strip()


def test_large_diff_is_cut_with_a_marker(repo: Path) -> None:
    (repo / "train.py").write_text("x = 1\n" * 60_000)  # about 480 kB of diff

    info = capture.collect_environment(cwd=repo)["git"]

    assert info["diff_truncated"] is True
    assert "[runreview: diff truncated, 200000 of " in info["diff"]
    assert len(info["diff"].encode()) < capture.DIFF_LIMIT_BYTES + 200


def test_repository_without_commits(no_outer_repo: Path) -> None:
    git(no_outer_repo, "init", "-q", "-b", "main")

    info = capture.collect_environment(cwd=no_outer_repo)["git"]

    assert info is not None
    assert info["commit"] is None
    assert info["diff"] is None
    assert info["remote"] is None


def test_outside_a_repository_git_is_none(no_outer_repo: Path) -> None:
    assert capture.collect_environment(cwd=no_outer_repo)["git"] is None


def test_environment_describes_this_process_without_environment_variables(
    no_outer_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNREVIEW_TEST_TOKEN", "tok-5e5e5e5e")

    env = capture.collect_environment(cwd=no_outer_repo)

    assert env["schema"] == contract.ENVIRONMENT_SCHEMA
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["implementation"] == "CPython"
    assert env["packages"]["scikit-learn"] == importlib.metadata.version("scikit-learn")
    assert env["packages"]["mlflow"] == importlib.metadata.version("mlflow")
    assert datetime.fromisoformat(env["captured_at"]).utcoffset() == UTC.utcoffset(None)
    assert env["hostname"]
    assert "tok-5e5e5e5e" not in json.dumps(env)


def test_cuda_version_from_the_environment_variable(
    no_outer_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VERSION", "12.4.1")
    if "torch" in sys.modules:  # torch's own runtime version would win
        monkeypatch.delitem(sys.modules, "torch")

    env = capture.collect_environment(cwd=no_outer_repo)

    assert (env["cuda"], env["cuda_origin"]) == ("12.4.1", "CUDA_VERSION")


def test_constants_agree_with_the_contract() -> None:
    assert capture.ENVIRONMENT_FILE == contract.ENVIRONMENT_FILE
    assert capture.CONFUSION_FILE == contract.CONFUSION_FILE
    assert capture.ENVIRONMENT_SCHEMA == contract.ENVIRONMENT_SCHEMA


def test_import_is_cheap() -> None:
    code = (
        "import sys, runreview.capture\n"
        "print(sorted(m for m in ('mlflow', 'sklearn', 'pandas', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


# --- confusion matrices -----------------------------------------------------------------


def test_confusion_matrix_rows_are_true_labels_and_default_labels_are_the_union() -> None:
    y_true = ["cat", "cat", "dog", "dog", "dog"]
    y_pred = ["cat", "dog", "dog", "dog", "fox"]

    data = capture.confusion_matrix_dict(y_true, y_pred)

    assert data == {
        "labels": ["cat", "dog", "fox"],
        "matrix": [[1, 1, 0], [0, 2, 1], [0, 0, 0]],
    }


def test_confusion_matrix_keeps_the_given_label_order_and_stringifies() -> None:
    data = capture.confusion_matrix_dict([0, 1, 2, 2], [0, 2, 2, 1], labels=[2, 1, 0])

    assert data == {"labels": ["2", "1", "0"], "matrix": [[1, 1, 0], [1, 0, 0], [0, 0, 1]]}
    assert all(type(n) is int for row in data["matrix"] for n in row)


# --- writing into MLflow ----------------------------------------------------------------


def test_log_environment_into_an_mlflow_run(tracking_uri: str, run_id: str, tmp_path: Path) -> None:
    env = {"schema": contract.ENVIRONMENT_SCHEMA, "python": "3.11.7", "packages": {"a": "1"}}

    written = capture.log_environment(run_id, env=env, tracking_uri=tracking_uri)

    assert written is env
    assert read_artifact(tracking_uri, run_id, "environment.json", tmp_path / "dl") == env


def test_log_environment_collects_by_default_and_accepts_a_run_object(
    tracking_uri: str, run_id: str, tmp_path: Path
) -> None:
    run = MlflowClient(tracking_uri=tracking_uri).get_run(run_id)

    written = capture.log_environment(run, tracking_uri=tracking_uri)

    assert written["schema"] == contract.ENVIRONMENT_SCHEMA
    assert read_artifact(tracking_uri, run_id, "environment.json", tmp_path / "dl") == written


def test_log_confusion_matrix_into_the_active_mlflow_run(
    tracking_uri: str, run_id: str, tmp_path: Path
) -> None:
    with global_tracking_uri(tracking_uri), mlflow.start_run(run_id=run_id):
        written = capture.log_confusion_matrix([1, 0, 1, 1], [1, 0, 0, 1])

    assert written == {"labels": ["0", "1"], "matrix": [[1, 0], [1, 2]]}
    assert read_artifact(tracking_uri, run_id, "confusion_matrix.json", tmp_path / "dl") == written


def test_without_a_run_or_logdir_it_says_what_to_pass_and_creates_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow's default store would be ./mlflow.db
    assert mlflow.active_run() is None

    with pytest.raises(ValueError, match="no active MLflow run"):
        capture.log_confusion_matrix([1, 0], [1, 0])

    assert list(tmp_path.iterdir()) == []


def test_run_and_logdir_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        capture.log_environment("abc", logdir=tmp_path, env={})


# --- writing into a TensorBoard run directory -------------------------------------------


def test_tensorboard_run_dir_gets_both_files(tmp_path: Path) -> None:
    run_dir = tmp_path / "logs" / "exp" / "run-1"  # not created yet

    env = capture.log_environment(logdir=run_dir)
    matrix = capture.log_confusion_matrix(["a", "b"], ["a", "a"], logdir=run_dir)

    assert json.loads((run_dir / "environment.json").read_text()) == env
    assert json.loads((run_dir / "confusion_matrix.json").read_text()) == matrix
    assert matrix == {"labels": ["a", "b"], "matrix": [[1, 0], [1, 0]]}
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "confusion_matrix.json",
        "environment.json",
    ]


def test_rewriting_replaces_the_file(tmp_path: Path) -> None:
    capture.log_confusion_matrix([1, 2], [1, 2], logdir=tmp_path)
    capture.log_confusion_matrix([1, 2], [2, 1], logdir=tmp_path)

    data = json.loads((tmp_path / "confusion_matrix.json").read_text())

    assert data["matrix"] == [[0, 1], [1, 0]]
    assert [p.name for p in tmp_path.iterdir()] == ["confusion_matrix.json"]
