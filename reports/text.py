"""Untrusted text (run names, params, tags, notes) made safe to print literally.

Autoescaping stops HTML; this module stops the rest: control characters, lone surrogates,
bidirectional overrides that could visually spoof "PASS", and values too long to print.
"""

from __future__ import annotations

import hashlib
import unicodedata

MAX_CELL_CHARS = 300

# Bidi embedding/override/isolate controls and other invisible format characters that can
# reorder or hide text.
_VISIBLE_MARKERS = {
    **{cp: f"[U+{cp:04X}]" for cp in (0x202A, 0x202B, 0x202C, 0x202D, 0x202E)},
    **{cp: f"[U+{cp:04X}]" for cp in (0x2066, 0x2067, 0x2068, 0x2069, 0x200E, 0x200F)},
    0x061C: "[U+061C]",
    0xFEFF: "[U+FEFF]",
}


def clean_text(value: object) -> str:
    """``value`` as printable text: controls and bidi overrides shown as ``[U+XXXX]``.

    NUL and lone surrogates become U+FFFD; newlines and tabs are kept.
    """
    text = value if isinstance(value, str) else str(value)
    out = []
    for ch in text:
        cp = ord(ch)
        if cp in _VISIBLE_MARKERS:
            out.append(_VISIBLE_MARKERS[cp])
        elif 0xD800 <= cp <= 0xDFFF or cp == 0:
            out.append("\ufffd")
        elif ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) == "Cc":
            out.append(f"[U+{cp:04X}]")
        else:
            out.append(ch)
    return "".join(out)


def cell(value: object, limit: int = MAX_CELL_CHARS) -> str:
    """Clean text cut at ``limit`` chars with a visible marker naming the full length and hash."""
    if value is None:
        return ""
    text = clean_text(value)
    if len(text) <= limit:
        return text
    digest = full_hash(value)
    return f"{text[:limit]} [truncated, {len(text)} chars, sha256={digest[:16]}…]"


def full_hash(value: object) -> str:
    """SHA-256 of the original value (UTF-8, surrogates escaped), for the appendix."""
    text = value if isinstance(value, str) else str(value)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def was_truncated(value: object, limit: int = MAX_CELL_CHARS) -> bool:
    """True when :func:`cell` cuts ``value``."""
    return value is not None and len(clean_text(value)) > limit
