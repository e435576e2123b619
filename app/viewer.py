"""The viewer of a session, as a stable string for cache keys and job ownership."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from runreview import settings

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
    except Exception:
        user = {}
    header = settings.PRINCIPAL_HEADER.value().strip()
    values: list[str] = []
    if header:
        try:
            values = st.context.headers.get_all(header)
        except Exception:
            values = []
    return principal_of(user, values)
