"""The ``wandb_folders`` session fixture: real W&B run folders from two wandb versions.

wandb is a test-time writer only, and two versions of it cannot share one environment, so
each version is installed into its own virtualenv, exactly as pinned by
``tests/wandb_locks/wandb-<version>.lock`` (compiled from the ``.in`` beside it by
``make lock``). The environments live in the suite's cache folder (:mod:`tests.cachedir`),
named by version and lock digest, and are built once per cache folder: under a file lock,
whichever xdist worker or concurrent session asks first builds into a private folder and
publishes it with one rename; the others wait and reuse it. A published environment is
never deleted or rebuilt in place (a new lock gives a new folder), since another session
may be running a writer from it.

Each version then runs :mod:`tests.wandb_writer` in offline mode inside a small git
repository (for the git fields of the environment), both at once. Nothing is written into
the repository and the product's virtualenv is not touched.

wandb needs no login offline; its config, cache and data folders point into the session's
temp folder, and a proxy on a closed local port makes any network attempt fail at once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from tests.cachedir import suite_cache_dir

#: The legacy Python backend (before 0.18) and wandb-core (0.18 and later).
LEGACY_VERSION = "0.17.9"
CORE_VERSION = "0.31.0"
WANDB_VERSIONS = (LEGACY_VERSION, CORE_VERSION)
#: One pinned environment per version (wandb, numpy for wandb.plot.confusion_matrix, and
#: everything they pull in).
LOCKS = Path(__file__).with_name("wandb_locks")
READY = ".ready"
#: Building one environment (a cold uv cache downloads about 100 MB).
BUILD_TIMEOUT = 600
GIT_REMOTE = "https://git.example.invalid/ml/vision.git"
WRITER = Path(__file__).with_name("wandb_writer.py")
WRITE_TIMEOUT = 240
CLOSED_PORT_PROXY = "http://127.0.0.1:9"


@dataclass(frozen=True)
class WandbFolders:
    """Where the run folders are: ``root/<version>/wandb/offline-run-*`` (``root`` is in a
    git repository whose HEAD is ``git_commit``)."""

    root: Path
    git_commit: str

    def wandb_dir(self, version: str) -> Path:
        """The ``wandb/`` folder written by one version."""
        return self.root / version / "wandb"


def lock_file(version: str) -> Path:
    """The lock file that pins the writer environment of ``version``."""
    path = LOCKS / f"wandb-{version}.lock"
    if not path.exists():
        raise RuntimeError(f"no lock file for wandb {version}: add {path.name} (make lock)")
    return path


def _venv_dir(version: str) -> Path:
    lock = lock_file(version).read_bytes()
    digest = hashlib.sha256(lock).hexdigest()[:12]
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    return suite_cache_dir() / "wandb" / f"{python}-wandb-{version}-{digest}"


def _uv() -> str:
    local = Path(sys.executable).with_name("uv")
    found = str(local) if local.exists() else shutil.which("uv")
    if not found:
        raise RuntimeError("the W&B tests need uv (make install puts it into .venv/bin)")
    return found


def writer_python(version: str) -> Path:
    """The Python of the pinned virtualenv with ``wandb==version`` (built once, then reused)."""
    target = _venv_dir(version)
    python = target / "bin" / "python"
    if (target / READY).exists():
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.with_name(target.name + ".lock"), timeout=BUILD_TIMEOUT):
        if not (target / READY).exists():  # nobody published it while we waited
            _build(version, target)
    return python


def _build(version: str, target: Path) -> None:
    """Build into a private folder, then publish it at ``target`` with one rename.

    Called with the build lock held, so ``building`` is ours: a leftover from a killed
    build is never published, hence safe to remove.
    """
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    uv = _uv()
    try:
        subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(building)], check=True)
        subprocess.run(
            [uv, "pip", "sync", "-q", "--python", str(building / "bin" / "python"),
             str(lock_file(version))],
            check=True,
            timeout=BUILD_TIMEOUT,
        )  # fmt: skip
        (building / READY).write_text(version)
        building.rename(target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise


def _git_repo(folder: Path) -> str:
    """A one-commit repository with a remote; returns the commit."""
    folder.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "runreview",
        "GIT_AUTHOR_EMAIL": "tests@example.invalid",
        "GIT_COMMITTER_NAME": "runreview",
        "GIT_COMMITTER_EMAIL": "tests@example.invalid",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }
    (folder / "train.py").write_text("print('training')\n")
    for args in (
        ["init", "-q"],
        ["add", "train.py"],
        ["commit", "-q", "-m", "train"],
        ["remote", "add", "origin", GIT_REMOTE],
    ):
        subprocess.run(["git", *args], cwd=folder, env=env, check=True)
    out = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _writer_env(home: Path, out: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "PYTHON"))}
    env.update(
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_DIR=str(out),
        WANDB_CONFIG_DIR=str(home / "config"),
        WANDB_CACHE_DIR=str(home / "cache"),
        WANDB_DATA_DIR=str(home / "data"),
        WANDB_ARTIFACT_DIR=str(home / "artifacts"),
        HTTP_PROXY=CLOSED_PORT_PROXY,
        HTTPS_PROXY=CLOSED_PORT_PROXY,
        NO_PROXY="",
    )
    return env


def write_runs(root: Path, versions: tuple[str, ...] = WANDB_VERSIONS) -> WandbFolders:
    """Write the runs of :mod:`tests.wandb_writer` with every version, at once."""
    pythons = {v: writer_python(v) for v in versions}
    repo = root / "repo"
    commit = _git_repo(repo)
    started = {}
    for version, python in pythons.items():
        out = repo / "runs" / version  # wandb takes git from the folder it writes to
        out.mkdir(parents=True)
        env = _writer_env(root / f"home-{version}", out)
        started[version] = subprocess.Popen(
            [str(python), str(WRITER), str(out)],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    deadline = time.monotonic() + WRITE_TIMEOUT
    for version, process in started.items():
        output, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        if process.returncode != 0:
            raise RuntimeError(f"wandb {version} writer failed:\n{output[-3000:]}")
    return WandbFolders(repo / "runs", commit)


@pytest.fixture(scope="session")
def wandb_folders(tmp_path_factory: pytest.TempPathFactory) -> WandbFolders:
    """Run folders written by wandb 0.17.9 and 0.31.0 (read-only for tests: copy first)."""
    return write_runs(tmp_path_factory.mktemp("wandb"))
