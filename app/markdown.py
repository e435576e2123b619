"""Untrusted text as literal markdown (no imports from the rest of the app, so every
module can use it)."""

from __future__ import annotations

import re

# CommonMark lets a backslash escape any ASCII punctuation: escaping all of it leaves no
# link, image, emphasis, HTML, LaTeX ($), emoji/icon (:name:) or autolink syntax.
_MD_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def safe_md(text: object) -> str:
    """``text`` as literal markdown: every punctuation character escaped, one line."""
    flat = " ".join(str(text).splitlines())
    return _MD_PUNCTUATION.sub(r"\\\1", flat)
