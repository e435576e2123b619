"""The app's selection: what the viewer chose, kept in session state and in the URL.

The selection lives in ``st.session_state`` (so it survives page switches, which clear the
URL), starts from the URL on a session's first run, and every change is mirrored back into
the URL (:mod:`runreview.app.urlparams`). :func:`widget` binds a Streamlit widget to one
param.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from runreview.app.urlparams import PARAMS, Param, is_safe, read_url, write_url

SELECTION_KEY = "_selection"
WIDGET_PREFIX = "w."


def _store() -> dict[str, Any]:
    """The selection of this session (created from the URL on the session's first run)."""
    if SELECTION_KEY not in st.session_state:
        st.session_state[SELECTION_KEY] = read_url()
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
    write_url(param, store)
    return True


def sync_url() -> None:
    """Write the whole selection into the URL (page switches clear it)."""
    selection = _store()
    for param in PARAMS:
        write_url(param, selection)


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
