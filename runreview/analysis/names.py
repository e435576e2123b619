"""Checking the names a user gives (metrics, experiments, run ids, filter columns).

Every name a user types is checked against the names that exist: an unknown name is a
one-line message saying what is valid ("did you mean ...?"), never an empty or NaN-filled
result. Pure: the caller reads the runs and passes the valid names in.

The main entry point is :func:`unknown_name`::

    message = unknown_name("val_acc", metric_names(runs), "--metric", noun="metric")
    # "--metric: no metric 'val_acc' in the selected runs; did you mean val_accuracy?
    #  (available: train_loss, val_accuracy, val_f1, val_loss)"   (one line)

``None`` means the name is valid. :func:`unknown_names` checks several names and returns the
first problem. The ``*_names`` helpers give the valid names from a runs frame.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

from runreview.contract import METRIC_PREFIX, PARAM_PREFIX, TAG_PREFIX

#: How many valid names a message lists at most (then "...").
MAX_LISTED = 10
#: How many "did you mean" suggestions at most.
MAX_SUGGESTED = 3
#: The column prefixes a filter key can name, and what a column of each holds.
PREFIX_NOUNS = {METRIC_PREFIX: "metric", PARAM_PREFIX: "parameter", TAG_PREFIX: "tag"}


def available(valid: Iterable[str], limit: int = MAX_LISTED) -> str:
    """The valid names, sorted, at most ``limit`` of them (then ``...``)."""
    names = sorted(set(valid))
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return shown + ", ..." if len(names) > limit else shown


def suggestions(
    name: str,
    valid: Iterable[str],
    aliases: Mapping[str, Sequence[str]] | None = None,
    limit: int = MAX_SUGGESTED,
) -> list[str]:
    """Valid names close to ``name``: a case-insensitive match first, then difflib's.

    ``aliases`` maps other spellings (e.g. run names) to the valid names they stand for;
    an alias close to ``name`` suggests those names.
    """
    names = sorted(set(valid))
    aliases = dict(aliases or {})
    found: list[str] = []

    def add(candidate: str) -> None:
        if candidate not in found:
            found.append(candidate)

    folded = name.casefold()
    for candidate in names:
        if candidate.casefold() == folded:
            add(candidate)
    for alias, targets in aliases.items():
        if alias.casefold() == folded:
            for target in targets:
                add(target)
    for close in _closest(name, names + sorted(aliases), limit):
        for target in aliases.get(close, ()) if close not in names else (close,):
            add(target)
    return found[:limit]


def _closest(name: str, candidates: list[str], limit: int, cutoff: float = 0.6) -> list[str]:
    """difflib's close matches, keeping only those nearly as close as the best one."""
    scored = []
    for candidate in difflib.get_close_matches(name, candidates, n=limit, cutoff=cutoff):
        matcher = difflib.SequenceMatcher(None, name, candidate)
        scored.append((matcher.ratio(), candidate))
    if not scored:
        return []
    best = max(score for score, _ in scored)
    return [candidate for score, candidate in scored if score >= best - 0.05]


def unknown_name(
    name: str,
    valid: Iterable[str],
    option: str,
    *,
    noun: str,
    scope: str = "in the selected runs",
    aliases: Mapping[str, Sequence[str]] | None = None,
    alias_noun: str = "name",
) -> str | None:
    """``None`` when ``name`` is one of ``valid``; else one line naming ``option``, the
    name, close valid names ("did you mean ...?") and the valid names (at most 10).

    ``noun`` says what the name is ("metric", "experiment", "run id"), ``scope`` where it
    was looked for; ``aliases`` maps other spellings (e.g. run names, ``alias_noun``) to
    valid names.
    """
    names = sorted({str(v) for v in valid})
    if name in names:
        return None
    message = f"{option}: no {noun} {name!r} {scope}"
    close = suggestions(name, names, aliases)
    if aliases and name in aliases:
        message += f"; {name!r} is a {alias_noun}, {option} takes {noun}s"
    if close:
        message += f"; did you mean {' or '.join(close)}?"
    return f"{message} (available: {available(names)})"


def unknown_names(
    names: Iterable[str] | None,
    valid: Iterable[str],
    option: str,
    *,
    noun: str,
    scope: str = "in the selected runs",
    aliases: Mapping[str, Sequence[str]] | None = None,
    alias_noun: str = "name",
) -> str | None:
    """The message for the first of ``names`` that is not valid, else ``None``."""
    valid = sorted({str(v) for v in valid})
    for name in names or ():
        message = unknown_name(
            name, valid, option, noun=noun, scope=scope, aliases=aliases, alias_noun=alias_noun
        )
        if message:
            return message
    return None


# --- valid names from a runs frame -----------------------------------------------------


def column_names(runs: pd.DataFrame, prefix: str) -> list[str]:
    """Names after ``prefix`` (``metrics.``, ``params.``, ``tags.``) of the columns with at
    least one value in ``runs``."""
    return sorted(
        column[len(prefix) :]
        for column in runs.columns
        if isinstance(column, str) and column.startswith(prefix) and runs[column].notna().any()
    )


def metric_names(runs: pd.DataFrame) -> list[str]:
    """Metrics with at least one value in ``runs`` (from the ``metrics.*`` columns)."""
    return column_names(runs, METRIC_PREFIX)


def param_names(runs: pd.DataFrame) -> list[str]:
    """Parameters set in at least one of ``runs``."""
    return column_names(runs, PARAM_PREFIX)


def experiment_names(runs: pd.DataFrame) -> list[str]:
    """Experiments that hold at least one of ``runs``."""
    if "experiment" not in runs.columns:
        return []
    return sorted({str(e) for e in runs["experiment"].dropna()})


def run_ids(runs: pd.DataFrame) -> list[str]:
    """Run ids of ``runs``."""
    if "run_id" not in runs.columns:
        return []
    return sorted({str(r) for r in runs["run_id"].dropna()})


def run_name_aliases(runs: pd.DataFrame) -> dict[str, list[str]]:
    """Run name -> the ids of the runs with that name (names may repeat)."""
    if "run_name" not in runs.columns or "run_id" not in runs.columns:
        return {}
    aliases: dict[str, list[str]] = {}
    for name, run_id in zip(runs["run_name"], runs["run_id"], strict=True):
        if isinstance(name, str) and name:
            aliases.setdefault(name, []).append(str(run_id))
    return {name: sorted(set(ids)) for name, ids in aliases.items()}


def close_columns(column: str, runs: pd.DataFrame) -> list[str] | None:
    """For a ``metrics.``/``params.``/``tags.`` column: ``None`` when some run has a value
    in it, else the columns close to it (maybe none). ``None`` for other columns too.

    Names are compared after the prefix: the shared ``params.`` would make every
    parameter look close to any other.
    """
    prefix = next((p for p in PREFIX_NOUNS if column.startswith(p)), None)
    if prefix is None:
        return None
    valid = column_names(runs, prefix)
    name = column.removeprefix(prefix)
    if name in valid:
        return None
    return [prefix + close for close in suggestions(name, valid)]


def unknown_column(
    column: str, runs: pd.DataFrame, option: str, scope: str = "in the selected runs"
) -> str | None:
    """For a runs-frame column named in a filter (``params.model``): ``None`` when some run
    has a value in it, else the message (other columns with the same prefix are valid)."""
    close = close_columns(column, runs)
    if close is None:
        return None
    prefix = next(p for p in PREFIX_NOUNS if column.startswith(p))
    message = f"{option}: no {PREFIX_NOUNS[prefix]} column {column!r} {scope}"
    if close:
        message += f"; did you mean {' or '.join(close)}?"
    valid = [prefix + name for name in column_names(runs, prefix)]
    return f"{message} (available: {available(valid)})"
