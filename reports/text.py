"""Untrusted text (run names, params, tags, notes) made safe to print literally.

Autoescaping stops HTML; this module stops the rest: control characters, lone surrogates,
bidirectional overrides and invisible characters that could visually spoof "PASS", and
values too long to print. Every change is visible in the text itself (``[U+202E]``, U+FFFD,
a ``[truncated, ...]`` marker) and :func:`alterations` names it for the report's appendix.
"""

from __future__ import annotations

import hashlib
import re

MAX_CELL_CHARS = 300

# Bidi embedding/override/isolate controls and other invisible format characters that can
# reorder or hide text. Zero-width joiners (U+200C/U+200D) are kept: emoji sequences and
# several scripts need them, and they cannot reorder text.
_MARKED = (
    0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069,
    0x200E, 0x200F, 0x061C, 0xFEFF, 0x200B, 0x2060,
)  # fmt: skip
_VISIBLE_MARKERS = {cp: f"[U+{cp:04X}]" for cp in _MARKED}
_REPLACED = "\ufffd"
# Everything clean_text changes: C0/C1 controls except tab and newline, NUL, lone
# surrogates and the marked characters. One regex so clean text costs a single C scan.
_SPECIAL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff" + "".join(chr(cp) for cp in _MARKED) + "]"
)
_INVALID = re.compile("[\x00\ud800-\udfff]")

INVALID_NOTE = "NUL or invalid (surrogate) characters replaced by U+FFFD"
VISIBLE_NOTE = "control, bidi or invisible characters shown as [U+XXXX]"


def _replace(match: re.Match[str]) -> str:
    cp = ord(match.group())
    if cp == 0 or 0xD800 <= cp <= 0xDFFF:
        return _REPLACED
    return _VISIBLE_MARKERS.get(cp, f"[U+{cp:04X}]")


def clean_text(value: object) -> str:
    """``value`` as printable text: controls and bidi overrides shown as ``[U+XXXX]``.

    NUL and lone surrogates become U+FFFD; newlines and tabs are kept.
    """
    text = value if isinstance(value, str) else str(value)
    if _SPECIAL.search(text) is None:
        return text
    return _SPECIAL.sub(_replace, text)


def alterations(value: object) -> list[str]:
    """What :func:`clean_text` changes in ``value`` (empty when it prints as is)."""
    text = value if isinstance(value, str) else str(value)
    if _SPECIAL.search(text) is None:
        return []
    notes = []
    if _INVALID.search(text):
        notes.append(INVALID_NOTE)
    if _SPECIAL.sub("", _INVALID.sub("", text)) != _INVALID.sub("", text):
        notes.append(VISIBLE_NOTE)
    return notes


def cell(value: object, limit: int = MAX_CELL_CHARS) -> str:
    """Clean text cut at ``limit`` chars with a visible marker naming the full length and hash.

    Only the first ``limit`` characters are cleaned, so a 10 MB value costs no more than a
    short one; the length and hash are those of the original value.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    head = clean_text(text[:limit])
    if len(text) <= limit and len(head) <= limit:
        return head
    digest = full_hash(text)
    return f"{head[:limit]} [truncated, {len(text)} chars, sha256={digest[:16]}…]"


def full_hash(value: object) -> str:
    """SHA-256 of the original value (UTF-8, surrogates escaped), for the appendix."""
    text = value if isinstance(value, str) else str(value)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def was_truncated(value: object, limit: int = MAX_CELL_CHARS) -> bool:
    """True when :func:`cell` cuts ``value``."""
    if value is None:
        return False
    text = value if isinstance(value, str) else str(value)
    return len(text) > limit or len(clean_text(text)) > limit
