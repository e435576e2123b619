"""The app's selection (sources, experiments, runs, metric, page options), kept in the URL.

Every piece of the selection is a :class:`Param`, declared once in :data:`PARAMS` with its
URL name, type and default. The selection lives in ``st.session_state`` (so it survives
page switches, which clear the URL) and is mirrored into ``st.query_params`` on every run,
so a copied link opens the same view.

Credentials never go into the URL, session state or a cache key: configured sources are
referred to by :meth:`SourceConfig.key` (credentials redacted by
``runreview.redact.redact_uri``), their full locations are re-read from the server-side
configuration (environment, ``.streamlit/secrets.toml``) on every run, and any value that
``redact_uri`` would change is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import streamlit as st

from runreview import settings
from runreview.redact import redact_uri

RUN_KEY_SEP = "::"
SELECTION_KEY = "_selection"
WIDGET_PREFIX = "w."
#: Per-process secret for telling apart sources whose redacted URIs are equal (two users'
#: credentials for one server) in cache keys, without any credential in the key.
_FINGERPRINT_SECRET = secrets.token_bytes(32)


# --- the selection ----------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One piece of the selection: its URL name, kind and default."""

    name: str
    kind: str  # "list", "str", "int", "float" or "bool"
    default: Any
    help: str

    def parse(self, raw: list[str]) -> Any:
        """The value from the URL's raw strings (the default when unreadable)."""
        if self.kind == "list":
            return [v for v in raw if v]
        if not raw:
            return self.default
        text = raw[-1]
        try:
            if self.kind == "int":
                return int(text)
            if self.kind == "float":
                return float(text)
        except ValueError:
            return self.default
        if self.kind == "bool":
            return text.strip().lower() in {"1", "true", "yes", "on"}
        return text

    def encode(self, value: Any) -> list[str]:
        """The URL strings for ``value``."""
        if self.kind == "list":
            return [str(v) for v in value]
        if self.kind == "bool":
            return ["1" if value else "0"]
        if self.kind == "float":
            return [f"{float(value):g}"]
        return [str(value)]

    def is_default(self, value: Any) -> bool:
        """True when ``value`` equals the default (then it is left out of the URL)."""
        if self.kind == "list":
            return list(value) == list(self.default)
        return value == self.default


SOURCES_ADDED = Param("src", "list", (), "sources added in the sidebar (no credentials)")
SOURCES_OFF = Param("off", "list", (), "keys of sources switched off")
EXPERIMENTS = Param("exp", "list", (), "experiments to include (none: all)")
RUNS = Param("run", "list", (), "selected runs, each <source_uri>::<run_id>")
METRIC = Param("metric", "str", "", "the metric pages rank and plot by")
FILTER = Param("q", "str", "", "runs filter in MLflow's search syntax")
COLUMNS = Param("cols", "list", ("params", "metrics"), "column groups of the runs table")
DIFFERING = Param("diff", "bool", False, "only columns whose values differ")
LB_DIRECTION = Param("lb.dir", "str", "auto", "leaderboard direction: auto, min or max")
LB_MODE = Param("lb.mode", "str", "best", "best value over all steps, or last value")
LB_TOP = Param("lb.top", "int", 10, "leaderboard rows (ties kept)")
LB_GROUP = Param("lb.group", "str", "", "best run per value of this param")
LB_SELECTED = Param("lb.sel", "bool", False, "rank only the selected runs")
LB_SPLIT = Param("lb.split", "str", "", "rank change since this date (YYYY-MM-DD)")
OV_METRICS = Param("ov.metrics", "list", (), "metrics on the overlay chart")
OV_X = Param("ov.x", "str", "step", "x axis: step, relative or wall")
OV_WEIGHT = Param("ov.w", "float", 0.6, "smoothing weight (TensorBoard EMA)")
OV_LOG = Param("ov.log", "bool", False, "log y axis")
OV_RAW = Param("ov.raw", "bool", True, "raw lines shown faintly behind the smoothed ones")
OV_POINTS = Param("ov.pts", "int", 2000, "points per series at most")
OV_BAND = Param("ov.band", "str", "", "param to group runs by for mean +- std bands")
CM_NORM = Param("cm.norm", "str", "counts", "counts or row-normalised")
CM_A = Param("cm.a", "str", "", "run A of the difference matrix")
CM_B = Param("cm.b", "str", "", "run B of the difference matrix")
ENV_ALL = Param("env.all", "bool", False, "show identical rows too")
IMP_PARAMS = Param("imp.params", "list", (), "params to weigh (none: all)")
IMP_SELECTED = Param("imp.sel", "bool", False, "only the selected runs")
RP_KIND = Param("rp.kind", "str", "weekly", "report kind")
RP_GOAL = Param("rp.goal", "str", "auto", "auto, min or max")
RP_SINCE = Param("rp.since", "str", "7d", "period start: 7d, 2w or a date")
RP_EXPERIMENTS = Param("rp.exp", "list", (), "experiments in the report (none: all)")
RP_TOP = Param("rp.top", "int", 5, "runs in the report's leaderboard")
RP_FILTER = Param("rp.q", "str", "", "filter of the report's runs")

PARAMS: tuple[Param, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Param))


def _store() -> dict[str, Any]:
    """The selection of this session (created from the URL on the session's first run)."""
    if SELECTION_KEY not in st.session_state:
        selection = {}
        for param in PARAMS:
            if param.name in st.query_params:
                value = param.parse(list(st.query_params.get_all(param.name)))
                if is_safe(value):
                    selection[param.name] = value
        st.session_state[SELECTION_KEY] = selection
    return st.session_state[SELECTION_KEY]


def get(param: Param) -> Any:
    """The current value of ``param`` (its default when unset)."""
    value = _store().get(param.name, param.default)
    return list(value) if param.kind == "list" else value


def put(param: Param, value: Any) -> bool:
    """Set ``param`` and update the URL; refuses (returns False) values holding credentials."""
    if not is_safe(value):
        return False
    store = _store()
    if param.is_default(value):
        store.pop(param.name, None)
    else:
        store[param.name] = list(value) if param.kind == "list" else value
    _write_url(param)
    return True


def sync_url() -> None:
    """Write the whole selection into the URL (page switches clear it)."""
    for param in PARAMS:
        _write_url(param)


def _write_url(param: Param) -> None:
    """Mirror one param into ``st.query_params`` (left out when it has its default)."""
    store = _store()
    wanted = param.encode(store[param.name]) if param.name in store else []
    current = list(st.query_params.get_all(param.name)) if param.name in st.query_params else []
    if wanted == current:
        return
    if wanted:
        st.query_params[param.name] = wanted if param.kind == "list" else wanted[0]
    else:
        del st.query_params[param.name]


def is_safe(value: Any) -> bool:
    """False when any text in ``value`` is a location carrying credentials."""
    items = value if isinstance(value, list | tuple) else [value]
    return all(not isinstance(v, str) or redact_uri(v) == v for v in items)


def widget(
    param: Param,
    render: Callable[..., Any],
    label: str,
    *,
    options: Sequence[Any] | None = None,
    fallback: Any = None,
    to_widget: Callable[[Any], Any] | None = None,
    from_widget: Callable[[Any], Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Render ``render(label, ...)`` bound to ``param``; returns the widget's value.

    The widget starts from the selection (or ``fallback`` while the param has its
    default); values that are not among ``options`` are dropped (lists) or replaced by the
    fallback or the first option, numbers are moved into ``min_value``..``max_value``.
    ``to_widget`` / ``from_widget`` convert between the stored value and the widget's
    (e.g. an ISO date string and a ``date``).
    """
    key = WIDGET_PREFIX + param.name
    current = _start_value(param, key, fallback, to_widget)
    if options is not None:
        current = _fit(current, list(options), param.kind, fallback)
        kwargs["options"] = options
    st.session_state[key] = _clamp(current, kwargs.get("min_value"), kwargs.get("max_value"))
    value = render(label, key=key, **kwargs)
    put(param, from_widget(value) if from_widget else value)
    return value


def _start_value(
    param: Param, key: str, fallback: Any, to_widget: Callable[[Any], Any] | None
) -> Any:
    """The widget's latest value, else the stored selection (or the fallback)."""
    if key in st.session_state:
        return st.session_state[key]
    stored = get(param)
    current = fallback if fallback is not None and param.is_default(stored) else stored
    return to_widget(current) if to_widget else current


def _clamp(current: Any, low: Any, high: Any) -> Any:
    """A number from the URL moved into the widget's range (other values as they are)."""
    if not isinstance(current, int | float) or isinstance(current, bool):
        return current
    if low is not None:
        current = max(current, low)
    return min(current, high) if high is not None else current


def _fit(current: Any, options: list[Any], kind: str, fallback: Any) -> Any:
    """``current`` made valid for ``options``."""
    if kind == "list":
        fitted = [v for v in (current or []) if v in options]
        if current and not fitted and isinstance(fallback, list):
            return [v for v in fallback if v in options]  # nothing left: the default
        return fitted
    if current in options:
        return current
    if fallback in options:
        return fallback
    return options[0] if options else None


# --- runs -------------------------------------------------------------------------------


def run_key(source_uri: str, run_id: str) -> str:
    """A run's identity as one string (for widgets and the URL)."""
    return f"{source_uri}{RUN_KEY_SEP}{run_id}"


def split_run_key(key: str) -> tuple[str, str]:
    """The (source_uri, run_id) of a run key."""
    source_uri, _, run_id = key.partition(RUN_KEY_SEP)
    return source_uri, run_id


# --- sources ----------------------------------------------------------------------------


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
    except Exception:  # noqa: BLE001 - st.secrets raises when no secrets.toml exists
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


# --- the viewer -------------------------------------------------------------------------

ANONYMOUS = "anonymous"


def principal_of(user: Mapping[str, Any], header_values: Sequence[str]) -> str:
    """The viewer as a stable string, from ``st.user`` and the principal header's values.

    ``user:email:<email>`` (else ``user:sub:<sub>``) when logged in with ``st.login``;
    otherwise ``header:<value>`` when the header has exactly one distinct non-empty value
    (a repeated header with different values is ambiguous and ignored); else
    :data:`ANONYMOUS`. The kinds never collide: a header saying ``user:...`` stays a header.
    """
    if user.get("is_logged_in") is True:
        for field in ("email", "sub"):
            value = user.get(field)
            if isinstance(value, str) and value.strip():
                return f"user:{field}:{value.strip()}"
    values = {v.strip() for v in header_values if v and v.strip()}
    if len(values) == 1:
        return f"header:{values.pop()}"
    return ANONYMOUS


def current_principal() -> str:
    """The viewer of this session (see :func:`principal_of`), for cache keys.

    Pass it to every cached read as a hashed argument, so two viewers with different
    permissions never share a cache entry (RELIABILITY.md D5). Without ``st.login`` or
    ``RUNREVIEW_PRINCIPAL_HEADER`` every viewer is :data:`ANONYMOUS` (one shared scope).
    """
    try:
        user: Mapping[str, Any] = st.user.to_dict()
    except Exception:  # noqa: BLE001 - no session (bare mode) or a broken auth config
        user = {}
    header = settings.PRINCIPAL_HEADER.value().strip()
    values: list[str] = []
    if header:
        try:
            values = st.context.headers.get_all(header)
        except Exception:  # noqa: BLE001 - no session: no request headers
            values = []
    return principal_of(user, values)
