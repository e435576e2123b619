"""Small helpers for reading an AppTest run."""

from __future__ import annotations

import re
from typing import Any

from runreview.contract import encode_run_key

MARKDOWN_KINDS = (
    "markdown", "caption", "error", "warning", "info", "success", "title", "subheader",
    "header",
)  # fmt: skip


def ok(at: Any) -> None:
    """Fail with the exception text when the page raised."""
    assert not at.exception, [e.value for e in at.exception]


def charts(at: Any) -> list[Any]:
    """Every chart shown with st.altair_chart."""
    return list(at.get("vega_lite_chart"))


def run_key(uri: str, run_id: str) -> str:
    """The app's run key."""
    return encode_run_key((uri, run_id))


def markdown_texts(at: Any) -> list[str]:
    """Every string the app renders as markdown: element bodies and widget labels."""
    texts = [e.value for kind in MARKDOWN_KINDS for e in at.get(kind)]
    for kind in ("checkbox", "toggle", "button", "multiselect", "selectbox", "text_input"):
        texts += [w.label for w in at.get(kind)]
    return texts


def unescape(markdown: str) -> str:
    """Markdown text with its backslash escapes removed (what a reader sees)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def query_list(at: Any, name: str) -> list[str]:
    """A URL parameter as a list (AppTest collapses one value to a string)."""
    value = at.query_params.get(name, [])
    return [value] if isinstance(value, str) else list(value)
