"""The sources the app reads: configured on the server, added or switched off in the sidebar.

Credentials never go into the URL, session state or a cache key: configured sources are
referred to by :meth:`SourceConfig.key` (credentials redacted by
``runreview.redact.redact_uri``), their full locations are re-read from the server-side
configuration (environment, ``.streamlit/secrets.toml``) on every run, and a location
that ``redact_uri`` would change is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import streamlit as st

from runreview import settings
from runreview.app.selection import get, put
from runreview.app.urlparams import SOURCES_ADDED, SOURCES_OFF
from runreview.redact import redact_uri

#: Per-process secret for telling apart sources whose redacted URIs are equal (two users'
#: credentials for one server) in cache keys, without any credential in the key.
_FINGERPRINT_SECRET = secrets.token_bytes(32)


@dataclass(frozen=True)
class SourceConfig:
    """The sources the app reads: full locations, kept server-side only.

    Never store one in session state; rebuild it with :func:`active_sources` on each run.
    """

    tracking_uris: tuple[str, ...] = ()
    logdirs: tuple[str, ...] = ()
    wandb_dirs: tuple[str, ...] = ()

    def key(self) -> tuple[str, ...]:
        """Labels without credentials (safe to show and to put in the URL)."""
        return (
            tuple(redact_uri(u) for u in self.tracking_uris)
            + tuple(self.logdirs)
            + tuple(f"wandb:{d}" for d in self.wandb_dirs)
        )

    def cache_key(self) -> tuple[str, ...]:
        """A cache key without credentials that still tells different credentials apart."""
        return (
            tuple(_fingerprinted(u) for u in self.tracking_uris)
            + tuple(self.logdirs)
            + tuple(f"wandb:{d}" for d in self.wandb_dirs)
        )

    def is_empty(self) -> bool:
        """True when no source is configured."""
        return not self.tracking_uris and not self.logdirs and not self.wandb_dirs

    def __repr__(self) -> str:
        return f"SourceConfig({self.key()!r})"


def _fingerprinted(uri: str) -> str:
    """The redacted URI, plus a keyed hash of the full URI when redaction changed it."""
    safe = redact_uri(uri)
    if safe == uri:
        return uri
    digest = hmac.new(_FINGERPRINT_SECRET, uri.encode("utf-8"), hashlib.sha256)
    return f"{safe}#{digest.hexdigest()[:16]}"


@dataclass(frozen=True)
class SourceChoice:
    """One source the sidebar offers: where it came from and whether it is on.

    ``location`` may hold credentials: it is used to open the source, never shown.
    """

    location: str
    kind: str  # "mlflow", "tensorboard" or "wandb"
    origin: str  # "environment", "secrets", "demo" or "added"
    enabled: bool

    @property
    def key(self) -> str:
        """The location without credentials."""
        return redact_uri(self.location)


def configured_sources() -> SourceConfig:
    """Sources from the environment, then ``.streamlit/secrets.toml``, then the demo."""
    found = _configured_by_kind()
    return SourceConfig(tuple(found["mlflow"]), tuple(found["tensorboard"]), tuple(found["wandb"]))


def _configured_by_kind() -> dict[str, Any]:
    """Tracking URIs, logdirs and W&B folders, and where they came from."""
    uris, logdirs, wandb_dirs = settings.tracking_uris(), settings.logdirs(), settings.wandb_dirs()
    origin = "environment"
    if not (uris or logdirs or wandb_dirs):
        uris, logdirs = _secret_list("tracking_uris"), _secret_list("logdirs")
        wandb_dirs, origin = _secret_list("wandb_dirs"), "secrets"
    if not (uris or logdirs or wandb_dirs):
        origin = "demo"
        root = Path(settings.DEMO_DIR.value()).resolve()
        if (root / "mlflow.db").exists():
            uris = [f"sqlite:///{root / 'mlflow.db'}"]
        if (root / "tensorboard").is_dir():
            logdirs = [str(root / "tensorboard")]
    return {"mlflow": uris, "tensorboard": logdirs, "wandb": wandb_dirs, "origin": origin}


def _secret(name: str, default: Any = None) -> Any:
    """A value from secrets.toml; ``default`` when there is no secrets file at all."""
    try:
        return st.secrets.get(name, default)
    except Exception:
        return default


def _secret_list(name: str) -> list[str]:
    """A list from secrets.toml (a list, or one string with separators)."""
    value = _secret(name)
    if isinstance(value, str):
        sep = "," if name == "tracking_uris" else os.pathsep
        return [v for v in value.split(sep) if v.strip()]
    return [str(v) for v in value or []]


def extra_sources_allowed() -> bool:
    """Whether users may add sources in the sidebar (secrets.toml ``allow_extra_sources``)."""
    return bool(_secret("allow_extra_sources", True))


def source_choices() -> list[SourceChoice]:
    """Configured sources, then the added ones, each on unless switched off."""
    configured = _configured_by_kind()
    origin = configured["origin"]
    off = set(get(SOURCES_OFF))
    kinds = ("mlflow", "tensorboard", "wandb")
    found = [(loc, kind, origin) for kind in kinds for loc in configured[kind]]
    if extra_sources_allowed():
        known = {redact_uri(loc) for loc, _, _ in found}
        found += [
            (loc, source_kind(loc), "added") for loc in get(SOURCES_ADDED) if loc not in known
        ]
    return [
        SourceChoice(loc, kind, where, redact_uri(loc) not in off) for loc, kind, where in found
    ]


def source_kind(location: str) -> str:
    """``mlflow`` for tracking URIs and mlruns folders / sqlite files, ``wandb`` for folders
    of W&B run folders, else ``tensorboard``."""
    from runreview.sources import SourceError, is_mlflow_uri, is_wandb_dir

    try:
        if is_mlflow_uri(location):
            return "mlflow"
        return "wandb" if is_wandb_dir(str(Path(location).expanduser())) else "tensorboard"
    except (SourceError, OSError):
        return "tensorboard"


def active_sources() -> SourceConfig:
    """The sources switched on, as a config for the loaders."""
    chosen = [c for c in source_choices() if c.enabled]
    return SourceConfig(
        tuple(c.location for c in chosen if c.kind == "mlflow"),
        tuple(c.location for c in chosen if c.kind == "tensorboard"),
        tuple(c.location for c in chosen if c.kind == "wandb"),
    )


def add_source(location: str) -> str | None:
    """Add a source typed in the sidebar; returns an error message, or None when added."""
    location = location.strip()
    if not location:
        return None
    if not extra_sources_allowed():
        return "Adding sources is switched off on this server (allow_extra_sources)."
    if redact_uri(location) != location:
        return (
            "That location holds credentials. Configure it on the server instead "
            "(MLFLOW_TRACKING_URI or .streamlit/secrets.toml); it was not stored."
        )
    if len(urlsplit(location).scheme) <= 1 and not Path(location).expanduser().exists():
        return (
            "No such file or folder on the server. Give a tracking URI, an existing logdir "
            "or W&B folder."
        )
    added = get(SOURCES_ADDED)
    if location not in added:
        put(SOURCES_ADDED, [*added, location])
    put(SOURCES_OFF, [k for k in get(SOURCES_OFF) if k != location])
    return None


def remove_source(key: str) -> None:
    """Forget a source added in the sidebar."""
    put(SOURCES_ADDED, [loc for loc in get(SOURCES_ADDED) if loc != key])
    put(SOURCES_OFF, [k for k in get(SOURCES_OFF) if k != key])


def set_source_enabled(key: str, enabled: bool) -> None:
    """Switch a source on or off by its key."""
    off = [k for k in get(SOURCES_OFF) if k != key]
    put(SOURCES_OFF, off if enabled else [*off, key])
