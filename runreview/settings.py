"""Settings, declared once as data: each has an environment variable, a default and help.

Read them with :func:`get`; the README's settings table is generated from :data:`SETTINGS`
and a test fails when a setting is missing from the README.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    """One setting read from an environment variable."""

    env: str
    default: str
    help: str

    def value(self) -> str:
        """The current value (environment first, then the default)."""
        return os.environ.get(self.env, self.default)


TRACKING_URI = Setting(
    "MLFLOW_TRACKING_URI",
    "",
    "MLflow tracking URI(s) to read when none are given; several may be separated by "
    "commas. sqlite:///path, http(s)://host, or a path to an mlruns folder.",
)
LOGDIR = Setting(
    "RUNREVIEW_LOGDIR",
    "",
    f"TensorBoard log directories to read when none are given, separated by '{os.pathsep}'.",
)
WANDB_DIR = Setting(
    "RUNREVIEW_WANDB_DIR",
    "",
    "W&B folders to read when none are given (a wandb/ directory, or any folder above "
    f"run-*/offline-run-* folders), separated by '{os.pathsep}'.",
)
DEMO_DIR = Setting(
    "RUNREVIEW_DEMO_DIR",
    "demo-workspace",
    "Where `runreview demo` and `make run` build the demo workspace.",
)
HTTP_TIMEOUT = Setting(
    "RUNREVIEW_HTTP_TIMEOUT",
    "30",
    "Seconds a tracking server may take before it is reported unreachable (all retries "
    "included), instead of MLflow's many-minute default.",
)
CACHE_DIR = Setting(
    "RUNREVIEW_CACHE_DIR",
    "",
    "Folder for the on-disk cache of parsed TensorBoard files (default: the user cache "
    "folder, e.g. ~/.cache/runreview). Never inside a logdir.",
)
INCLUDE_DELETED = Setting(
    "RUNREVIEW_INCLUDE_DELETED",
    "false",
    "Include MLflow runs and experiments marked deleted (true/false). Reports print it.",
)

REPORT_TIMEOUT = Setting(
    "RUNREVIEW_REPORT_TIMEOUT",
    "300",
    'Seconds one PDF may take to render; a longer render is stopped with "report too '
    'large, narrow the selection" and nothing is written.',
)
REPORT_MAX_MB = Setting(
    "RUNREVIEW_REPORT_MAX_MB",
    "4096",
    "Memory (MB of address space) the PDF renderer's child process may use; more stops it "
    'with "report too large, narrow the selection".',
)

DEBUG = Setting(
    "RUNREVIEW_DEBUG",
    "false",
    "Print full tracebacks on the command line instead of one-line errors (true/false).",
)

#: The request header naming the viewer when an authenticating proxy (not ``st.login``)
#: identifies users, e.g. ``X-Forwarded-Email`` from oauth2-proxy. Trust it only when the
#: app cannot be reached around the proxy and the proxy overwrites the header (D5, D7).
PRINCIPAL_HEADER = Setting(
    "RUNREVIEW_PRINCIPAL_HEADER",
    "",
    "Request header set by the authenticating proxy to the viewer's identity (e.g. "
    "X-Forwarded-Email); it scopes the app's caches per viewer when st.login is not used.",
)
SETTINGS: tuple[Setting, ...] = (
    TRACKING_URI,
    LOGDIR,
    WANDB_DIR,
    DEMO_DIR,
    HTTP_TIMEOUT,
    CACHE_DIR,
    INCLUDE_DELETED,
    REPORT_TIMEOUT,
    REPORT_MAX_MB,
    PRINCIPAL_HEADER,
    DEBUG,
)


def tracking_uris() -> list[str]:
    """Tracking URIs from the environment (comma separated)."""
    return [u.strip() for u in TRACKING_URI.value().split(",") if u.strip()]


def logdirs() -> list[str]:
    """Logdirs from the environment (``os.pathsep`` separated)."""
    return [d for d in LOGDIR.value().split(os.pathsep) if d.strip()]


def wandb_dirs() -> list[str]:
    """W&B folders from the environment (``os.pathsep`` separated)."""
    return [d for d in WANDB_DIR.value().split(os.pathsep) if d.strip()]


def http_timeout() -> float:
    """The tracking-server time budget in seconds."""
    try:
        return max(1.0, float(HTTP_TIMEOUT.value()))
    except ValueError as exc:
        raise ValueError(
            f"{HTTP_TIMEOUT.env}={HTTP_TIMEOUT.value()!r} is not a number of seconds"
        ) from exc


def report_timeout() -> float:
    """The wall-clock limit of one PDF render, in seconds."""
    return _positive(REPORT_TIMEOUT, "a number of seconds")


def report_max_mb() -> int:
    """The memory limit of the PDF renderer, in MB."""
    return int(_positive(REPORT_MAX_MB, "a number of MB"))


def _positive(setting: Setting, what: str) -> float:
    try:
        value = float(setting.value())
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ValueError(f"{setting.env}={setting.value()!r} is not {what} above 0")
    return value


def include_deleted() -> bool:
    """Whether deleted MLflow runs are read."""
    return INCLUDE_DELETED.value().strip().lower() in {"1", "true", "yes", "on"}


def debug() -> bool:
    """Whether the CLI shows full tracebacks."""
    return DEBUG.value().strip().lower() in {"1", "true", "yes", "on"}


def cache_dir() -> Path:
    """The cache folder (created by the cache when it is first written, not here)."""
    explicit = CACHE_DIR.value()
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "runreview"
