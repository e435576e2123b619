"""Helpers a training script calls to record its environment and confusion matrices.

Both helpers write one JSON file (``environment.json`` / ``confusion_matrix.json``, see
``runreview.contract``) either into an MLflow run's artifacts or into a TensorBoard run
directory, where runreview's sources find them::

    from runreview.capture import log_confusion_matrix, log_environment

    with mlflow.start_run():
        log_environment()
        ...
        log_confusion_matrix(y_val, model.predict(X_val))

    log_environment(logdir="runs/exp1/lr0.1")  # TensorBoard: the run's own directory

Importing this module is cheap: MLflow and scikit-learn are imported only when a helper
needs them. Environment variables are never recorded (they hold secrets); the only one read
is ``CUDA_VERSION``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runreview.redact import redact_uri

# The same values as in runreview.contract (a test checks they agree). They are repeated
# here because runreview.contract imports pandas, which would cost a training script about
# a second at import time.
ENVIRONMENT_FILE = "environment.json"
CONFUSION_FILE = "confusion_matrix.json"
ENVIRONMENT_SCHEMA = "runreview.environment/1"

#: ``git diff HEAD`` output above this many bytes is cut and marked.
DIFF_LIMIT_BYTES = 200_000
#: Seconds any one external command (git, nvidia-smi) may take.
COMMAND_TIMEOUT_SECONDS = 10.0

# Never prompt for credentials, never take the index lock a running `git commit` may need,
# and keep messages parseable.
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
_CUDA_RE = re.compile(r"CUDA Version:\s*([0-9.]+)")


# --- environment ------------------------------------------------------------------------


def collect_environment(cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The environment of this process, as recorded in ``environment.json``.

    ``cwd`` is the directory whose git repository is described (default: the current
    directory). Keys: ``schema``, ``python``, ``implementation``, ``platform``,
    ``packages`` ({name: version} of every installed distribution), ``cuda`` (with
    ``cuda_origin``), ``gpu`` (names, or None without ``nvidia-smi``), ``nvidia_driver``,
    ``git`` (commit, branch, dirty, diff, diff_truncated, remote without credentials; None
    outside a repository or without git), ``captured_at`` (UTC, ISO 8601) and ``hostname``.
    """
    gpus, driver, driver_cuda = _nvidia_info()
    cuda, cuda_origin = _cuda_version(driver_cuda)
    return {
        "schema": ENVIRONMENT_SCHEMA,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": installed_packages(),
        "cuda": cuda,
        "cuda_origin": cuda_origin,
        "gpu": gpus,
        "nvidia_driver": driver,
        "git": git_info(Path.cwd() if cwd is None else Path(cwd)),
        "captured_at": datetime.now(UTC).isoformat(),
        "hostname": socket.gethostname(),
    }


def installed_packages() -> dict[str, str]:
    """{distribution name: version} of everything importable, sorted by name.

    When a distribution is installed twice, the copy found first on ``sys.path`` wins, as
    it does for ``import``.
    """
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name not in found:
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def git_info(directory: Path) -> dict[str, Any] | None:
    """Commit, branch, dirty flag, diff against HEAD and origin URL of ``directory``'s repo.

    None when git is not installed or ``directory`` is not inside a work tree. ``commit``
    and ``diff`` are None in a repository without commits; ``branch`` is None on a detached
    HEAD. The remote URL has its credentials removed.
    """
    if shutil.which("git") is None:
        return None
    if _git(directory, "rev-parse", "--is-inside-work-tree") != "true":
        return None
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    diff, truncated = _git_diff(directory)
    remote = _git(directory, "remote", "get-url", "origin")
    return {
        "commit": _git(directory, "rev-parse", "--verify", "-q", "HEAD") or None,
        "branch": _git(directory, "symbolic-ref", "--short", "-q", "HEAD") or None,
        "dirty": bool(status),
        "diff": diff,
        "diff_truncated": truncated,
        "remote": redact_uri(remote) if remote else None,
    }


def _git(directory: Path, *args: str) -> str | None:
    """Stripped stdout of ``git -C directory args``, or None when git fails."""
    out = _run(["git", "-C", str(directory), *args], env=_GIT_ENV)
    return None if out is None else out.decode("utf-8", errors="replace").strip()


def _git_diff(directory: Path) -> tuple[str | None, bool]:
    """``git diff HEAD`` capped at ``DIFF_LIMIT_BYTES``, and whether it was cut."""
    raw = _run(
        ["git", "-C", str(directory), "diff", "--no-color", "--no-ext-diff", "HEAD"],
        env=_GIT_ENV,
    )
    if raw is None:
        return None, False
    if len(raw) <= DIFF_LIMIT_BYTES:
        return raw.decode("utf-8", errors="replace"), False
    shown = raw[:DIFF_LIMIT_BYTES].decode("utf-8", errors="replace")
    marker = f"\n[runreview: diff truncated, {DIFF_LIMIT_BYTES} of {len(raw)} bytes shown]\n"
    return shown + marker, True


def _nvidia_info() -> tuple[list[str] | None, str | None, str | None]:
    """GPU names, driver version and the driver's CUDA version from ``nvidia-smi``."""
    if shutil.which("nvidia-smi") is None:
        return None, None, None
    query = _run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    rows = [] if query is None else query.decode("utf-8", errors="replace").splitlines()
    parts = [[cell.strip() for cell in row.split(",")] for row in rows if row.strip()]
    names = [p[0] for p in parts] or None
    driver = parts[0][1] if parts and len(parts[0]) > 1 else None
    header = _run(["nvidia-smi"])
    match = _CUDA_RE.search(header.decode("utf-8", errors="replace")) if header else None
    return names, driver, match.group(1) if match else None


def _cuda_version(driver_cuda: str | None) -> tuple[str | None, str | None]:
    """The CUDA version in use and where it was found.

    torch's runtime version is what the process actually uses, but torch is only asked when
    the training script has already imported it: importing torch here would cost seconds.
    """
    torch = sys.modules.get("torch")
    version = getattr(getattr(torch, "version", None), "cuda", None) if torch else None
    if version:
        return str(version), "torch.version.cuda"
    if os.environ.get("CUDA_VERSION"):
        return os.environ["CUDA_VERSION"], "CUDA_VERSION"
    if driver_cuda:
        return driver_cuda, "nvidia-smi"
    return None, None


def _run(cmd: list[str], env: dict[str, str] | None = None) -> bytes | None:
    """stdout of ``cmd``, or None when it cannot run, fails or times out."""
    try:
        done = subprocess.run(
            cmd,
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            env=None if env is None else {**os.environ, **env},
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


# --- writing ----------------------------------------------------------------------------


def log_environment(
    run: Any = None,
    *,
    logdir: str | os.PathLike[str] | None = None,
    env: dict[str, Any] | None = None,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Write ``environment.json`` for a run and return what was written.

    The target is the TensorBoard run directory ``logdir`` when given; otherwise the MLflow
    run ``run`` (an ``ActiveRun``/``Run`` or a run id; default: the active run) in the
    store at ``tracking_uri`` (default: MLflow's current tracking URI). ``env`` defaults to
    ``collect_environment()``.
    """
    data = collect_environment() if env is None else env
    _write_json(data, ENVIRONMENT_FILE, run=run, logdir=logdir, tracking_uri=tracking_uri)
    return data


def log_confusion_matrix(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    labels: Sequence[Any] | None = None,
    *,
    run: Any = None,
    logdir: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Write ``confusion_matrix.json`` for a run and return what was written.

    The matrix comes from ``sklearn.metrics.confusion_matrix``: rows are the true class,
    columns the prediction, both in the order of ``labels`` (default: the sorted union of
    ``y_true`` and ``y_pred``). Labels are written as strings. Where it is written: as for
    ``log_environment``.
    """
    data = confusion_matrix_dict(y_true, y_pred, labels)
    _write_json(data, CONFUSION_FILE, run=run, logdir=logdir, tracking_uri=tracking_uri)
    return data


def confusion_matrix_dict(
    y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Any] | None = None
) -> dict[str, Any]:
    """``{"labels": [str, ...], "matrix": [[int, ...], ...]}`` for the given predictions."""
    from sklearn.metrics import confusion_matrix
    from sklearn.utils.multiclass import unique_labels

    order = list(unique_labels(y_true, y_pred) if labels is None else labels)
    matrix = confusion_matrix(y_true, y_pred, labels=order)
    return {"labels": [str(label) for label in order], "matrix": matrix.tolist()}


def _write_json(
    data: dict[str, Any],
    file_name: str,
    *,
    run: Any,
    logdir: str | os.PathLike[str] | None,
    tracking_uri: str | None,
) -> None:
    """Write ``data`` as ``file_name`` into the TensorBoard run dir or the MLflow run."""
    if logdir is not None:
        if run is not None:
            raise ValueError("pass either run= (MLflow) or logdir= (TensorBoard), not both")
        write_json_atomic(Path(logdir) / file_name, data)
        return
    run_id = _run_id(run)  # first: a client for no store would create ./mlflow.db
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=tracking_uri).log_dict(run_id, data, file_name)


def _run_id(run: Any) -> str:
    """The run id of ``run`` (a run id, an ``ActiveRun``/``Run``, or None for the active)."""
    if isinstance(run, str):
        return run
    if run is not None:
        return str(run.info.run_id)
    # Without mlflow imported there cannot be an active run: say so without importing it.
    active = sys.modules["mlflow"].active_run() if "mlflow" in sys.modules else None
    if active is None:
        raise ValueError(
            "no active MLflow run: call inside mlflow.start_run(), pass run=<run or run id>, "
            "or pass logdir=<TensorBoard run directory>"
        )
    return str(active.info.run_id)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file and a rename.

    Readers never see a half-written file; the parent directory is created when missing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, default=str) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
