"""Environment differences between runs: python, platform, CUDA, GPU, git, packages.

N runs are shown side by side, in columns named by run name (see
:mod:`runreview.analysis.runlabels`); the first run is the baseline every other run's
packages are compared against. Bookkeeping fields (``BOOKKEEPING_KEYS``: when and in which
file format the environment was captured) never count as differences.
Package names are compared PEP 503 style (``Scikit_Learn`` and
``scikit-learn`` are one package) and version changes are classed major/minor/patch with
``packaging.version`` (PEP 440), falling back to the leading numbers of versions it
cannot parse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from packaging.version import InvalidVersion, Version

from runreview.analysis.runlabels import distinct_labels
from runreview.contract import (
    ENV_CUDA,
    ENV_GIT_BRANCH,
    ENV_GIT_COMMIT,
    ENV_GIT_DIFF,
    ENV_GIT_DIRTY,
    ENV_GIT_REMOTE,
    ENV_GPU,
    ENV_PLATFORM,
    ENV_PYTHON,
    Environment,
)

#: Rows always come first, in this order; other keys follow alphabetically.
KEY_ORDER = [
    ENV_PYTHON,
    ENV_PLATFORM,
    ENV_CUDA,
    ENV_GPU,
    ENV_GIT_COMMIT,
    ENV_GIT_BRANCH,
    ENV_GIT_DIRTY,
    ENV_GIT_DIFF,
    ENV_GIT_REMOTE,
]
CHANGE_COLUMNS = ["package", "name_a", "name_b", "version_a", "version_b", "change", "severity"]
CHANGES = ("added", "removed", "upgraded", "downgraded", "changed", "unchanged")
SEVERITIES = ("major", "minor", "patch", "other")
_SUMMARY_KEYS = [ENV_PYTHON, ENV_CUDA, ENV_GPU, ENV_PLATFORM]
#: Facts about the capture itself, not the environment: never a difference.
BOOKKEEPING_KEYS = frozenset({"captured_at", "schema", "git.diff_truncated"})


def normalise_name(name: str) -> str:
    """PEP 503 normalised package name: lower case, runs of ``-_.`` become ``-``."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


# --- package versions -------------------------------------------------------------------


def classify_versions(a: str | None, b: str | None) -> tuple[str, str]:
    """The change from version ``a`` to ``b`` and its severity.

    Change is one of ``CHANGES``; severity is ``major`` / ``minor`` / ``patch`` (the first
    differing release number, missing numbers counting 0), ``other`` (epoch, pre/post/dev
    or local part, a fourth number, or versions that cannot be ordered), or ``""`` when
    nothing changed or the package is added or removed. ``changed`` is used for different
    versions that neither PEP 440 nor their leading numbers can order.
    """
    if a is None or b is None:
        return ("added" if a is None else "removed"), ""
    va, vb = _parse(a), _parse(b)
    if va is not None and vb is not None:
        return _ordered(va, vb, lambda: _pep440_severity(va, vb))
    if a.strip() == b.strip():
        return "unchanged", ""
    ta, tb = _leading_numbers(a), _leading_numbers(b)
    if ta is None or tb is None or ta == tb:
        return "changed", "other"
    return _ordered(ta, tb, lambda: _release_severity(ta, tb))


def _parse(version: str) -> Version | None:
    """A PEP 440 version, or None when the text is not one."""
    try:
        return Version(version.strip().removeprefix("=="))
    except InvalidVersion:
        return None


def _ordered(a: Any, b: Any, severity: Callable[[], str]) -> tuple[str, str]:
    """unchanged, or upgraded/downgraded with a severity, for two comparable versions."""
    if a == b:
        return "unchanged", ""
    return ("upgraded" if a < b else "downgraded"), severity()


def _pep440_severity(a: Version, b: Version) -> str:
    """Severity of the change between two parsed versions."""
    if a.epoch != b.epoch:
        return "other"
    return _release_severity(a.release, b.release)


def _release_severity(a: tuple[int, ...], b: tuple[int, ...]) -> str:
    """major/minor/patch by the first differing of the first three numbers, else other."""
    width = max(len(a), len(b), 3)
    pa, pb = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
    for index, name in enumerate(("major", "minor", "patch")):
        if pa[index] != pb[index]:
            return name
    return "other"


def _leading_numbers(version: str) -> tuple[int, ...] | None:
    """The dotted numbers a version starts with (``"2.1.0-custom"`` -> (2, 1, 0))."""
    match = re.match(r"\D*(\d+(?:\.\d+)*)", version)
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def _normalised_packages(packages: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Normalised name -> (name as recorded, version); the first spelling wins."""
    out: dict[str, tuple[str, str]] = {}
    for name, version in packages.items():
        out.setdefault(normalise_name(name), (name, str(version)))
    return out


def package_changes(a: Mapping[str, str], b: Mapping[str, str]) -> pd.DataFrame:
    """Every package of ``a`` or ``b`` with its change from ``a`` to ``b``.

    Columns ``CHANGE_COLUMNS``, sorted by normalised name; ``name_*`` and ``version_*``
    are as recorded (missing, i.e. NaN, where the package is absent).
    """
    na, nb = _normalised_packages(a), _normalised_packages(b)
    rows = []
    for package in sorted(set(na) | set(nb)):
        name_a, version_a = na.get(package, (None, None))
        name_b, version_b = nb.get(package, (None, None))
        change, severity = classify_versions(version_a, version_b)
        rows.append([package, name_a, name_b, version_a, version_b, change, severity])
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


def describe_package_changes(changes: pd.DataFrame) -> str:
    """``"3 packages upgraded (1 major), 1 added"``, or ``""`` when nothing changed."""
    parts = []
    for change in ("upgraded", "downgraded", "changed", "added", "removed"):
        rows = changes[changes["change"] == change]
        if rows.empty:
            continue
        noun = "package" if len(rows) == 1 else "packages"
        text = f"{len(rows)} {noun} {change}"
        majors = int((rows["severity"] == "major").sum())
        if majors and change in ("upgraded", "downgraded"):
            text += f" ({majors} major)"
        parts.append(text)
    return ", ".join(parts)


# --- N runs side by side ----------------------------------------------------------------


@dataclass(frozen=True)
class EnvDiffResult:
    """Environments of N runs side by side; the first run is the baseline.

    - ``table``: ``key``, ``differs``, then one column per run label holding the value
      (missing where the run has none);
    - ``origins``: the same shape, holding where each value was found;
    - ``cells``: the long form (``key``, ``label``, ``source_uri``, ``run_id``, ``value``,
      ``origin``, ``differs``);
    - ``packages``: ``package`` (normalised), ``differs``, one version column per label;
    - ``package_changes`` and ``summaries``: each later run against the baseline, by label;
    - ``hidden_rows`` / ``hidden_packages``: identical rows left out.
    """

    runs: list[tuple[str, str]]
    labels: list[str]
    table: pd.DataFrame
    origins: pd.DataFrame
    cells: pd.DataFrame
    packages: pd.DataFrame
    package_changes: dict[str, pd.DataFrame]
    summaries: dict[str, str]
    only_differences: bool
    hidden_rows: int
    hidden_packages: int


def run_labels(envs: Sequence[Environment]) -> list[str]:
    """A unique column label per run: its id, with its source or position when needed."""
    ids = [e.run_id for e in envs]
    labels = [
        e.run_id if ids.count(e.run_id) == 1 else f"{e.run_id} @ {e.source_uri}" for e in envs
    ]
    return [
        label if labels.count(label) == 1 else f"{label} #{i + 1}" for i, label in enumerate(labels)
    ]


def env_diff(
    envs: Sequence[Environment],
    only_differences: bool = True,
    names: Sequence[str] | None = None,
) -> EnvDiffResult:
    """Compare the environments of N runs; the first is the baseline.

    Rows are the keys of ``KEY_ORDER`` that any run has, then every other key found. A
    row ``differs`` when the values are not all equal (a value missing in some runs but not
    others differs); a ``BOOKKEEPING_KEYS`` row never does. With ``only_differences``
    identical rows and packages are left out (and counted).

    ``names``: the runs' names, one per environment; columns are then labelled by name
    (with a short id where names repeat), else by :func:`run_labels`.
    """
    if not envs:
        raise ValueError("env_diff needs at least one environment")
    if names is not None and len(names) != len(envs):
        raise ValueError("env_diff needs one name per environment")
    labels = run_labels(envs) if names is None else distinct_labels(names, [e.run_id for e in envs])
    cells = _cells(envs, labels)
    table, origins = _wide(cells, labels, "value"), _wide(cells, labels, "origin")
    packages = _package_matrix(envs, labels)
    keep_rows, keep_packages = _kept(table, only_differences), _kept(packages, only_differences)
    later = list(zip(labels[1:], envs[1:], strict=True))
    return EnvDiffResult(
        runs=[(e.source_uri, e.run_id) for e in envs],
        labels=labels,
        table=table[keep_rows].reset_index(drop=True),
        origins=origins[keep_rows].reset_index(drop=True),
        cells=cells[cells["key"].isin(table.loc[keep_rows, "key"])].reset_index(drop=True),
        packages=packages[keep_packages].reset_index(drop=True),
        package_changes={lbl: package_changes(envs[0].packages, e.packages) for lbl, e in later},
        summaries={label: pair_summary(envs[0], env) for label, env in later},
        only_differences=only_differences,
        hidden_rows=int((~keep_rows).sum()),
        hidden_packages=int((~keep_packages).sum()),
    )


def _kept(frame: pd.DataFrame, only_differences: bool) -> pd.Series:
    """Rows to show: all, or only those that differ."""
    return frame["differs"].astype(bool) if only_differences else pd.Series(True, index=frame.index)


def _ordered_keys(envs: Sequence[Environment]) -> list[str]:
    """Known keys in ``KEY_ORDER`` first, then the others alphabetically."""
    found = {key for env in envs for key in env.values}
    return [k for k in KEY_ORDER if k in found] + sorted(found - set(KEY_ORDER))


def _comparable(value: Any) -> str:
    """A text form used to decide equality (handles lists and dicts from JSON)."""
    return json.dumps(value, sort_keys=True, default=str)


def _cells(envs: Sequence[Environment], labels: list[str]) -> pd.DataFrame:
    """Long form: one row per key and run, with value, origin and the row's ``differs``."""
    rows = []
    for key in _ordered_keys(envs):
        values = [env.values.get(key, (None, None)) for env in envs]
        differs = key not in BOOKKEEPING_KEYS and len({_comparable(v) for v, _ in values}) > 1
        for env, label, (value, origin) in zip(envs, labels, values, strict=True):
            rows.append([key, label, env.source_uri, env.run_id, value, origin, differs])
    columns = ["key", "label", "source_uri", "run_id", "value", "origin", "differs"]
    return pd.DataFrame(rows, columns=columns)


def _wide(cells: pd.DataFrame, labels: list[str], field: str) -> pd.DataFrame:
    """``key``, ``differs`` and one column per run label holding ``field``."""
    keys = list(dict.fromkeys(cells["key"]))
    data: dict[str, list[Any]] = {"key": keys}
    data["differs"] = [bool(cells.loc[cells["key"] == k, "differs"].iloc[0]) for k in keys]
    for label in labels:
        column = cells[cells["label"] == label].set_index("key")[field]
        data[label] = [column.get(k) for k in keys]
    return pd.DataFrame(data, columns=["key", "differs", *labels])


def _package_matrix(envs: Sequence[Environment], labels: list[str]) -> pd.DataFrame:
    """``package`` (normalised), ``differs``, and each run's version (missing if absent)."""
    per_run = [_normalised_packages(env.packages) for env in envs]
    names = sorted({name for packages in per_run for name in packages})
    data: dict[str, list[Any]] = {"package": names}
    for label, packages in zip(labels, per_run, strict=True):
        data[label] = [packages.get(n, (None, None))[1] for n in names]
    frame = pd.DataFrame(data, columns=["package", *labels])
    versions = zip(*(data[label] for label in labels), strict=True)
    frame.insert(1, "differs", [len(set(row)) > 1 for row in versions])
    return frame


# --- one-line summaries -----------------------------------------------------------------


def pair_summary(a: Environment, b: Environment) -> str:
    """One line saying how ``b``'s environment differs from ``a``'s (the baseline).

    For example ``"3 packages upgraded (1 major), python 3.10 -> 3.11, git commit a1b2c3d
    -> e4f5a6b, dirty"``; ``"no differences"`` when nothing differs.
    """
    parts = [describe_package_changes(package_changes(a.packages, b.packages))]
    parts += [_value_change(key, a.get(key), b.get(key)) for key in _SUMMARY_KEYS]
    parts.append(_git_summary(a, b))
    other = _other_differences(a, b)
    if other:
        parts.append(f"{other} other difference{'s' if other > 1 else ''}")
    text = ", ".join(p for p in parts if p)
    return text or "no differences"


def _shown(key: str, value: Any) -> str:
    """A short display of a value (python's first word, commits to 7 characters)."""
    if value is None:
        return "unknown"
    text = str(value)
    if key == ENV_PYTHON and text.split():
        return text.split()[0]
    if key == ENV_GIT_COMMIT and re.fullmatch(r"[0-9a-fA-F]{8,64}", text):
        return text[:7]
    return text


def _value_change(key: str, a: Any, b: Any) -> str:
    """``"python 3.10 -> 3.11"``, or ``""`` when equal."""
    if _comparable(a) == _comparable(b):
        return ""
    name = "git commit" if key == ENV_GIT_COMMIT else "branch" if key == ENV_GIT_BRANCH else key
    return f"{name} {_shown(key, a)} -> {_shown(key, b)}"


def is_dirty(value: Any) -> bool:
    """Whether a recorded ``git.dirty`` value means uncommitted changes."""
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes", "y", "dirty"}
    return bool(value) if value is not None else False


def _git_summary(a: Environment, b: Environment) -> str:
    """Commit and branch changes, and whether either tree was dirty."""
    parts = [
        _value_change(ENV_GIT_COMMIT, a.get(ENV_GIT_COMMIT), b.get(ENV_GIT_COMMIT)),
        _value_change(ENV_GIT_BRANCH, a.get(ENV_GIT_BRANCH), b.get(ENV_GIT_BRANCH)),
    ]
    dirty_a, dirty_b = is_dirty(a.get(ENV_GIT_DIRTY)), is_dirty(b.get(ENV_GIT_DIRTY))
    if dirty_a and dirty_b:
        same_diff = _comparable(a.get(ENV_GIT_DIFF)) == _comparable(b.get(ENV_GIT_DIFF))
        parts.append("both dirty" if same_diff else "both dirty, uncommitted diffs differ")
    elif dirty_b or dirty_a:
        parts.append("dirty" if dirty_b else "baseline dirty")
    return ", ".join(p for p in parts if p)


def _other_differences(a: Environment, b: Environment) -> int:
    """How many differing keys the summary does not name."""
    named = {*_SUMMARY_KEYS, ENV_GIT_COMMIT, ENV_GIT_BRANCH, ENV_GIT_DIRTY, ENV_GIT_DIFF}
    keys = (set(a.values) | set(b.values)) - named - BOOKKEEPING_KEYS
    return sum(_comparable(a.get(k)) != _comparable(b.get(k)) for k in keys)
