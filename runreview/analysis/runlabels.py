"""Display labels that tell runs apart: the run name, with a short id only when names repeat.

Used for table columns (environment diff) and chart labels (leaderboard, overlays), so one
run reads the same everywhere. Names are untrusted text; labels are plain strings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

SHORT_ID = 8  # characters of a run id shown after a repeated name


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def distinct_labels(names: Sequence[object], ids: Sequence[object]) -> list[str]:
    """One label per run, unique among these runs.

    A run's name when no other run here has it; ``name [id8]`` when names repeat (the
    whole id when 8 characters do not tell the repeated runs apart); the id for a run
    without a name. What still repeats (one id in two sources) gets `` #1``, `` #2``.
    """
    ids = [_text(i) for i in ids]
    names = [_text(n) or i for n, i in zip(names, ids, strict=True)]
    counts = Counter(names)
    pairs = set(zip(names, ids, strict=True))
    prefixes = Counter((n, i[:SHORT_ID]) for n, i in pairs)  # distinct ids per prefix
    labels = []
    for name, rid in zip(names, ids, strict=True):
        if counts[name] == 1 or name == rid:
            labels.append(name)
        elif prefixes[(name, rid[:SHORT_ID])] == 1:
            labels.append(f"{name} [{rid[:SHORT_ID]}]")
        else:
            labels.append(f"{name} [{rid}]")
    repeated, seen = Counter(labels), Counter()
    out = []
    for label in labels:
        if repeated[label] > 1:
            seen[label] += 1
            label = f"{label} #{seen[label]}"
        out.append(label)
    return out
