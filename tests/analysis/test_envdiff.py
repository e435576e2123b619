"""Environment differences: version classes, PEP 503 names, N-run tables, summaries."""

from __future__ import annotations

import pytest

from runreview.analysis.envdiff import (
    CHANGE_COLUMNS,
    classify_versions,
    env_diff,
    is_dirty,
    normalise_name,
    package_changes,
    pair_summary,
    run_labels,
)
from runreview.contract import Environment

DB, LOGS = "sqlite:///team.db", "file:///logs"


@pytest.mark.parametrize(
    ("name", "normalised"),
    [("Scikit_Learn", "scikit-learn"), ("zope.interface", "zope-interface"), ("A-_.b", "a-b")],
)
def test_pep503_names(name: str, normalised: str) -> None:
    assert normalise_name(name) == normalised


@pytest.mark.parametrize(
    ("a", "b", "change", "severity"),
    [
        ("1.2.3", "2.0.0", "upgraded", "major"),
        ("1.2.3", "1.3", "upgraded", "minor"),
        ("1.2.3", "1.2.4", "upgraded", "patch"),
        ("2.0", "1.9.9", "downgraded", "major"),
        ("1.26.4", "1.26.0", "downgraded", "patch"),
        ("1.0", "1.0.0", "unchanged", ""),  # equal under PEP 440
        ("1.2.3", "1.2.3.post1", "upgraded", "other"),
        ("2.1.0rc1", "2.1.0", "upgraded", "other"),
        ("1.2.3.4", "1.2.3.5", "upgraded", "other"),
        ("2.1.0+cu118", "2.1.0+cu121", "upgraded", "other"),
        ("1!1.0", "2.0", "downgraded", "other"),  # epochs: 1!1.0 is newer
        ("1.0-custom", "1.1-custom", "upgraded", "minor"),  # not PEP 440: leading numbers
        ("2.0.0-foo", "10.0", "upgraded", "major"),
        ("1.0-custom-x", "1.0-custom-y", "changed", "other"),
        ("abc", "def", "changed", "other"),
        ("abc", "abc", "unchanged", ""),
        ("==1.0", "1.1", "upgraded", "minor"),
        (None, "1.0", "added", ""),
        ("1.0", None, "removed", ""),
    ],
)
def test_classify_versions(a, b, change: str, severity: str) -> None:
    assert classify_versions(a, b) == (change, severity)


def test_package_changes_normalise_names() -> None:
    a = {"numpy": "1.26.0", "Scikit_Learn": "1.4.0", "torch": "2.1.0", "pandas": "2.2.0"}
    b = {"numpy": "2.0.1", "scikit-learn": "1.4.2", "torch": "2.1.0", "requests": "2.0"}
    changes = package_changes(a, b)
    assert list(changes.columns) == CHANGE_COLUMNS
    assert changes["package"].tolist() == ["numpy", "pandas", "requests", "scikit-learn", "torch"]
    assert changes["change"].tolist() == ["upgraded", "removed", "added", "upgraded", "unchanged"]
    assert changes["severity"].tolist() == ["major", "", "", "patch", ""]
    sk = changes.set_index("package").loc["scikit-learn"]
    assert (sk["name_a"], sk["name_b"]) == ("Scikit_Learn", "scikit-learn")


def env(uri: str, run_id: str, packages: dict[str, str], **values) -> Environment:
    record = Environment(uri, run_id, packages=packages, packages_origin="requirements.txt")
    for key, value in values.items():
        record.set(key.replace("_", "."), value, f"origin of {key}")
    return record


@pytest.fixture
def envs() -> list[Environment]:
    base = env(
        DB,
        "r1",
        {"numpy": "1.26.0", "torch": "2.1.0", "pandas": "2.2.0"},
        python="3.10.12 (main, Jun 11 2023)",
        platform="Linux-6.1-x86_64",
        gpu="NVIDIA A100",
        git_commit="a1b2c3d4e5f60718",
        git_dirty=False,
    )
    later = env(
        LOGS,
        "r1",
        {"numpy": "2.0.1", "torch": "2.2.0", "pandas": "2.2.0", "requests": "2.32.0"},
        python="3.11.4",
        platform="Linux-6.1-x86_64",
        gpu="NVIDIA A100",
        git_commit="e4f5a6b7c8d90011",
        git_dirty="true",
        seed=7,
    )
    third = env(DB, "r3", {"numpy": "1.26.0"}, python="3.10.12 (main, Jun 11 2023)")
    return [base, later, third]


def test_run_labels_are_unique() -> None:
    same = [Environment(DB, "r1"), Environment(LOGS, "r1"), Environment(DB, "r2")]
    assert run_labels(same) == [f"r1 @ {DB}", f"r1 @ {LOGS}", "r2"]
    twice = [Environment(DB, "r1"), Environment(DB, "r1")]
    assert run_labels(twice) == [f"r1 @ {DB} #1", f"r1 @ {DB} #2"]


def test_env_diff_only_differences(envs) -> None:
    result = env_diff(envs)
    first, second = f"r1 @ {DB}", f"r1 @ {LOGS}"
    assert result.labels == [first, second, "r3"]
    # platform and gpu are identical in r1/r1 but missing in r3: they differ too
    assert result.table["key"].tolist() == [
        "python",
        "platform",
        "gpu",
        "git.commit",
        "git.dirty",
        "seed",
    ]
    assert result.hidden_rows == 0
    table = result.table.set_index("key")
    assert table.loc["python", second] == "3.11.4"
    assert table.loc["seed", second] == 7
    assert result.origins.set_index("key").loc["python", first] == "origin of python"
    assert result.packages["package"].tolist() == ["numpy", "pandas", "requests", "torch"]
    assert result.hidden_packages == 0
    assert result.packages.set_index("package").loc["torch", second] == "2.2.0"


def test_env_diff_hides_identical_rows_and_counts_them(envs) -> None:
    result = env_diff(envs[:2])
    assert result.table["key"].tolist() == ["python", "git.commit", "git.dirty", "seed"]
    assert result.hidden_rows == 2  # platform, gpu
    assert result.packages["package"].tolist() == ["numpy", "requests", "torch"]
    assert result.hidden_packages == 1  # pandas
    assert set(result.cells["key"]) == {"python", "git.commit", "git.dirty", "seed"}
    full = env_diff(envs[:2], only_differences=False)
    assert full.table["key"].tolist()[:3] == ["python", "platform", "gpu"]
    assert full.table.set_index("key")["differs"].to_dict()["gpu"] is False
    assert len(full.packages) == 4 and full.hidden_packages == 0


def test_env_diff_compares_each_run_with_the_baseline(envs) -> None:
    result = env_diff(envs)
    second = f"r1 @ {LOGS}"
    assert set(result.package_changes) == {second, "r3"}
    changes = result.package_changes["r3"].set_index("package")["change"].to_dict()
    assert changes == {"numpy": "unchanged", "pandas": "removed", "torch": "removed"}
    assert result.summaries[second] == (
        "2 packages upgraded (1 major), 1 package added, python 3.10.12 -> 3.11.4, "
        "git commit a1b2c3d -> e4f5a6b, dirty, 1 other difference"
    )


def test_pair_summary_cases() -> None:
    a = env(DB, "a", {"x": "1.0"}, python="3.11.1", git_commit="abc1234def", git_dirty=True)
    b = env(DB, "b", {"x": "1.0"}, python="3.11.1", git_commit="abc1234def", git_dirty=False)
    assert pair_summary(a, b) == "baseline dirty"
    assert pair_summary(b, b) == "no differences"
    c = env(DB, "c", {}, cuda="12.1", git_branch="feature")
    assert pair_summary(b, c) == (
        "1 package removed, python 3.11.1 -> unknown, cuda unknown -> 12.1, "
        "git commit abc1234 -> unknown, branch unknown -> feature"
    )


def test_env_diff_needs_at_least_one_run() -> None:
    with pytest.raises(ValueError, match="at least one"):
        env_diff([])


@pytest.mark.parametrize(
    ("value", "dirty"),
    [(True, True), (False, False), ("true", True), ("False", False), ("1", True), (None, False)],
)
def test_is_dirty(value, dirty: bool) -> None:
    assert is_dirty(value) is dirty


# --- issue #12: run names as columns, bookkeeping is not a difference --------------------

MLFLOW_IDS = ["a9ddf3c1b2e84f0d9c7e6b5a4f3e2d1c", "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"]


def test_env_diff_columns_are_run_names_not_ids() -> None:
    envs = [env(DB, rid, {}, python="3.11.4") for rid in MLFLOW_IDS]
    envs.append(env(DB, "f" * 32, {}, python="3.12.1"))
    result = env_diff(envs, names=["rf-baseline", "mlp-wide", "svc"])
    assert result.labels == ["rf-baseline", "mlp-wide", "svc"]
    assert list(result.table.columns) == ["key", "differs", "rf-baseline", "mlp-wide", "svc"]
    assert set(result.summaries) == {"mlp-wide", "svc"}


def test_env_diff_repeated_names_get_a_short_id() -> None:
    envs = [env(DB, rid, {}, python="3.11.4") for rid in MLFLOW_IDS]
    envs.append(env(LOGS, MLFLOW_IDS[0], {}, python="3.11.4"))  # same id, other source
    result = env_diff(envs, names=["seed-run", "seed-run", "seed-run"])
    assert result.labels == [
        "seed-run [a9ddf3c1] #1",
        "seed-run [0b1c2d3e]",
        "seed-run [a9ddf3c1] #2",
    ]
    assert all(len(label) < 32 for label in result.labels)


def test_bookkeeping_fields_are_not_differences() -> None:
    a = env(DB, "a", {"x": "1.0"}, python="3.11.4")
    b = env(DB, "b", {"x": "1.0"}, python="3.11.4")
    a.set("captured_at", "2026-11-01T10:00:00+00:00", "environment.json")
    b.set("captured_at", "2026-11-02T11:00:00+00:00", "environment.json")
    a.set("schema", 1, "environment.json")
    b.set("schema", 2, "environment.json")
    a.set("git.diff_truncated", False, "environment.json (git.diff_truncated)")
    b.set("git.diff_truncated", True, "environment.json (git.diff_truncated)")
    result = env_diff([a, b], names=["a", "b"])
    assert result.table.empty and result.cells.empty
    assert result.hidden_rows == 4  # python and the three bookkeeping rows
    assert result.summaries == {"b": "no differences"}
    assert pair_summary(a, b) == "no differences"
    full = env_diff([a, b], only_differences=False, names=["a", "b"])
    differs = full.table.set_index("key")["differs"].to_dict()
    assert differs == {
        "python": False, "captured_at": False, "git.diff_truncated": False, "schema": False,
    }  # fmt: skip


def test_env_diff_needs_one_name_per_run() -> None:
    with pytest.raises(ValueError, match="one name per"):
        env_diff([env(DB, "a", {}), env(DB, "b", {})], names=["only one"])
