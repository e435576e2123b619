"""Sources: one adapter per kind of store, chosen by URI scheme from a registry.

>>> source = open_source("sqlite:///mlflow.db")          # doctest: +SKIP
>>> source = open_source("https://mlflow.corp")          # doctest: +SKIP
>>> source = open_source("runs/")  # an mlruns folder, else a TensorBoard logdir  # doctest: +SKIP
>>> source = open_wandb_dir("wandb/")  # W&B run folders                # doctest: +SKIP

Importing this package is cheap: each adapter module is imported when first used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runreview.redact import redact_uri
from runreview.sources.base import Source, SourceError

Opener = Callable[..., Source]

__all__ = [
    "Source",
    "SourceError",
    "is_mlflow_uri",
    "open_logdir",
    "open_source",
    "open_wandb_dir",
    "register_source",
]


def _construct(cls: type[Source], location: str, options: dict[str, Any]) -> Source:
    """``cls(location, ...)`` with the options ``cls`` declares (``Source.options``); the
    options meant for other sources are not passed on; an option no source declares is a
    mistake and raises ``TypeError``."""
    extra = set(options) - cls.options
    if extra and (unknown := extra - _declared_options()):
        raise TypeError(f"no source takes the option(s) {', '.join(sorted(unknown))}")
    return cls(location, **{k: v for k, v in options.items() if k in cls.options})


def _declared_options() -> set[str]:
    from runreview.sources.mlflow import MlflowSource
    from runreview.sources.tensorboard import TensorBoardSource
    from runreview.sources.wandb import WandbSource

    return MlflowSource.options | TensorBoardSource.options | WandbSource.options


def _open_mlflow(location: str, **options: Any) -> Source:
    from runreview.sources.mlflow import MlflowSource

    return _construct(MlflowSource, location, options)


def _open_path(location: str, **options: Any) -> Source:
    """A plain path: an mlruns folder or sqlite file is MLflow, a folder of W&B run folders
    W&B, another folder TensorBoard."""
    path = Path(location).expanduser()
    if is_mlflow_uri(location):
        return _open_mlflow(location, **options)
    if is_wandb_dir(str(path)):
        return open_wandb_dir(str(path), **options)
    if path.is_dir():
        return open_logdir(location, **options)
    raise SourceError(
        f"{location} not found: give an MLflow tracking URI (sqlite:///..., http(s)://..., "
        "an mlruns folder) or a TensorBoard log directory"
    )


#: scheme -> opener; "" is a plain path. Extend with :func:`register_source`.
REGISTRY: dict[str, Opener] = {
    "sqlite": _open_mlflow,
    "http": _open_mlflow,
    "https": _open_mlflow,
    "file": _open_mlflow,
    "": _open_path,
}


def register_source(scheme: str, opener: Opener) -> None:
    """Make ``open_source`` open ``scheme://`` locations with ``opener(location, **options)``."""
    REGISTRY[scheme.lower()] = opener


def _scheme(location: str) -> str:
    try:
        scheme = urlsplit(location).scheme.lower()
    except ValueError:
        raise SourceError(f"cannot parse the location {redact_uri(location)!r}") from None
    return "" if len(scheme) <= 1 else scheme  # "C:" is a Windows drive, not a scheme


def open_source(location: str, **options: Any) -> Source:
    """The source for ``location``, chosen by its scheme from :data:`REGISTRY`.

    ``options`` go to the source's constructor (e.g. ``include_deleted=True``,
    ``http_timeout=10`` for MLflow). Raises :class:`SourceError` for unknown schemes.
    """
    scheme = _scheme(location)
    opener = REGISTRY.get(scheme)
    if opener is None:
        known = ", ".join(sorted(s for s in REGISTRY if s))
        raise SourceError(
            f"no source reads {scheme}: locations ({redact_uri(location)}); known schemes: "
            f"{known}, or a local path"
        )
    return opener(location, **options)


def open_logdir(path: str, **options: Any) -> Source:
    """A TensorBoard log directory (``runreview.sources.tensorboard.TensorBoardSource``).

    Options meant for other sources are not passed on.
    """
    from runreview.sources.tensorboard import TensorBoardSource

    return _construct(TensorBoardSource, path, options)


def open_wandb_dir(path: str, **options: Any) -> Source:
    """A folder of W&B run folders (``runreview.sources.wandb.WandbSource``): a ``wandb/``
    directory, or any folder above ``run-*`` / ``offline-run-*`` folders.

    Options meant for other sources are not passed on.
    """
    from runreview.sources.wandb import WandbSource

    return _construct(WandbSource, path, options)


def is_wandb_dir(path: str) -> bool:
    """True when ``path`` is a W&B run folder or directly holds run folders (a cheap
    listing of one directory)."""
    from runreview.sources.wandb.source import is_wandb_dir as check

    return check(path)


def is_mlflow_uri(location: str) -> bool:
    """True for MLflow tracking URIs: sqlite:, http(s):, file:, or a local mlruns folder or
    sqlite file (a cheap check of a few files; nothing is opened for writing)."""
    scheme = _scheme(location)
    if scheme in ("sqlite", "http", "https", "file"):
        return True
    if scheme:
        return False
    from runreview.sources.mlflow.files import is_mlruns
    from runreview.sources.mlflow.source import is_sqlite_file

    path = Path(location).expanduser()
    return is_mlruns(path) or is_sqlite_file(path)
