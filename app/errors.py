"""Unexpected errors: a generic message with a reference for the viewer, the redacted
traceback for the server log (RELIABILITY.md D4).

``main.py`` runs the sidebar and the page inside :func:`guarded`. An exception that gets
there is a bug or an unforeseen fault: the viewer sees only :data:`GENERIC_MESSAGE` and a
short random reference; the server log gets the same reference and the full traceback with
credentials removed (locations through ``runreview.redact.redact_uri``, the secrets of the
configured sources and of secret-looking environment variables replaced by ``***``).
``client.showErrorDetails = "none"`` in ``.streamlit/config.toml`` stays as the second line
of defence for anything raised outside a guard.

Streamlit's control flow (``st.stop``, ``st.rerun``, ``st.switch_page``) raises
``ScriptControlException`` subclasses, which always pass through untouched.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from functools import wraps
from typing import ParamSpec

import streamlit as st

from runreview.app import sourceconfig
from runreview.redact import redact_text, redact_uri, uri_secrets

try:  # BaseException subclasses, so ``except Exception`` never catches them anyway
    from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

    CONTROL_FLOW: tuple[type[BaseException], ...] = (ScriptControlException,)
except ImportError:  # pragma: no cover - a Streamlit that moved them
    CONTROL_FLOW = ()

P = ParamSpec("P")
LOGGER = logging.getLogger("runreview.app")
GENERIC_MESSAGE = (
    "Something went wrong while showing this part of the app. The details were written to "
    "the server log. Reference: `{reference}` (quote it when you report the problem)."
)
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_handler_lock = threading.Lock()

# Anything with a scheme and ``://``, up to whitespace, quotes or brackets.
_LOCATION = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]{}]+")
# ``password=...``, ``token: ...``, ``Authorization: Bearer ...`` outside a URL.
_ASSIGNMENT = re.compile(
    r"(?i)\b([\w-]*(?:token|secret|passw(?:or)?d|pwd|api[_-]?key|access[_-]?key"
    r"|authorization|credential)[\w-]*)(['\"]?\s*[=:]\s*['\"]?)(?:(?:bearer|basic)\s+)?"
    r"[^\s&'\",;]+"
)
_SECRET_ENV = re.compile(r"(?i)(token|secret|passw(?:or)?d|api_?key|access_?key|credential)")
_NOT_SECRET = {"true", "false", "none", "null"}


def scrub(text: str, known: Iterable[str] = ()) -> str:
    """``text`` without credentials: every ``known`` secret, the user/password and secret
    query values of every location, and ``password=...``-style values become ``***``.

    >>> scrub("GET http://bob:pw1@h/x?token=t0k failed; password=hunter2")
    'GET http://***@h/x?token=*** failed; password=***'
    """
    text = redact_text(text, sorted(set(known), key=len, reverse=True))
    text = _LOCATION.sub(lambda match: redact_uri(match.group(0)), text)
    return _ASSIGNMENT.sub(lambda match: f"{match.group(1)}{match.group(2)}***", text)


def known_secrets() -> list[str]:
    """Secrets this server holds: those of the configured tracking URIs and the values of
    environment variables whose names look secret (``MLFLOW_TRACKING_PASSWORD``, ...)."""
    found = [
        value
        for name, value in os.environ.items()
        if _SECRET_ENV.search(name) and len(value) >= 4 and value.lower() not in _NOT_SECRET
    ]
    with suppress(Exception):  # reading the configuration may be what failed
        for uri in sourceconfig.configured_sources().tracking_uris:
            found += uri_secrets(uri)
    return found


def new_reference() -> str:
    """A short random reference joining the viewer's message to the log entry."""
    return secrets.token_hex(4)


def _ensure_handler() -> None:
    """Give the app's logger a stderr handler when nothing else would print its records
    (``streamlit run`` configures only Streamlit's own loggers)."""
    with _handler_lock:
        if not LOGGER.hasHandlers():
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(_LOG_FORMAT))
            LOGGER.addHandler(handler)


def log_exception(exc: BaseException, where: str) -> str:
    """Write ``exc``'s traceback, redacted, to the server log; returns its reference."""
    reference = new_reference()
    details = "".join(traceback.format_exception(exc))
    _ensure_handler()
    LOGGER.error(
        "Unexpected error, reference %s, in %s:\n%s",
        reference,
        where,
        scrub(details, known_secrets()),
    )
    return reference


def show_reference(reference: str) -> None:
    """The viewer's message: generic, with the reference and nothing from the exception."""
    try:
        st.error(GENERIC_MESSAGE.format(reference=reference), icon=":material/error:")
    except Exception:
        LOGGER.error("Could not show the message for reference %s", reference)


@contextmanager
def guarded(where: str) -> Iterator[None]:
    """Run the block; an unexpected exception is logged and replaced by the generic message.

    ``where`` (a fixed name such as ``"page overview"``, never store data) goes to the log
    only. Streamlit's control-flow exceptions pass through.
    """
    try:
        yield
    except CONTROL_FLOW:
        raise
    except Exception as exc:
        show_reference(log_exception(exc, where))


def guarded_callback(where: str) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """Decorate a widget callback (Streamlit runs those before the script, outside the
    page's guard) so it fails the same way."""

    def decorate(callback: Callable[P, None]) -> Callable[P, None]:
        @wraps(callback)
        def run(*args: P.args, **kwargs: P.kwargs) -> None:
            with guarded(where):
                callback(*args, **kwargs)

        return run

    return decorate
