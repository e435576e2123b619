"""The app's selection: which sources, experiments and runs, kept in the URL.

Only credential-free values go into the URL: tracking URIs carrying a user, password or
token are configured server-side (environment or secrets.toml) and never echoed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from runreview import settings
from runreview.redact import redact_uri

RUN_KEY_SEP = "::"


@dataclass(frozen=True)
class SourceConfig:
    """The sources the app reads: full locations (server-side) and their safe keys."""

    tracking_uris: tuple[str, ...] = ()
    logdirs: tuple[str, ...] = ()
    labels: tuple[str, ...] = field(default=(), compare=False)

    def key(self) -> tuple[str, ...]:
        """A cache key without credentials."""
        return tuple(redact_uri(u) for u in self.tracking_uris) + tuple(self.logdirs)

    def is_empty(self) -> bool:
        """True when no source is configured."""
        return not self.tracking_uris and not self.logdirs


def configured_sources() -> SourceConfig:
    """Sources from the environment, then ``.streamlit/secrets.toml``, then the demo."""
    uris = settings.tracking_uris() or _secret_list("tracking_uris")
    logdirs = settings.logdirs() or _secret_list("logdirs")
    if not uris and not logdirs:
        root = Path(settings.DEMO_DIR.value()).resolve()
        if (root / "mlflow.db").exists():
            uris = [f"sqlite:///{root / 'mlflow.db'}"]
        if (root / "tensorboard").is_dir():
            logdirs = [str(root / "tensorboard")]
    return SourceConfig(tuple(uris), tuple(logdirs))


def _secret_list(name: str) -> list[str]:
    """A list from secrets.toml; none when there is no secrets file at all."""
    try:
        value = st.secrets.get(name)
    except Exception:  # noqa: BLE001 - st.secrets raises when no secrets.toml exists
        return []
    if isinstance(value, str):
        return [v for v in value.split(os.pathsep if name == "logdirs" else ",") if v]
    return [str(v) for v in value or []]


def run_key(source_uri: str, run_id: str) -> str:
    """A run's identity as one string (for widgets and the URL)."""
    return f"{source_uri}{RUN_KEY_SEP}{run_id}"


def split_run_key(key: str) -> tuple[str, str]:
    """The (source_uri, run_id) of a run key."""
    source_uri, _, run_id = key.rpartition(RUN_KEY_SEP)
    return source_uri, run_id


def query_list(name: str) -> list[str]:
    """A repeated URL query parameter."""
    return list(st.query_params.get_all(name))


def set_query_list(name: str, values: list[str]) -> None:
    """Store a list in the URL (removing the parameter when empty)."""
    if values:
        st.query_params[name] = values
    elif name in st.query_params:
        del st.query_params[name]


def refresh_counter() -> int:
    """The number of times the user asked to re-read the sources."""
    return int(st.session_state.get("refresh", 0))
