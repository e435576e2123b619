"""The ``environment.json`` of each demo run: this machine's, placed on the demo's timeline."""

from __future__ import annotations

import copy
import hashlib
from datetime import datetime
from typing import Any

from runreview.demo.plan import DRIFT_DAYS, RunSpec

_DEMO_REMOTE = "https://github.com/example/ml-experiments.git"


def run_environment(base: dict[str, Any], spec: RunSpec, now: datetime) -> dict[str, Any]:
    """This machine's environment ``base``, placed on the demo's timeline for ``spec``.

    Git, host name and capture time come from the demo's story; runs older than
    ``DRIFT_DAYS`` record the previous minor versions of scikit-learn and numpy so the
    environment diff has something to show.
    """
    env = copy.deepcopy(base)
    days_ago = (now - spec.start).days
    dirty = "dirty" in spec.extras
    week = f"runreview-demo/week-{days_ago // 7}".encode()
    env["git"] = {
        "commit": hashlib.sha1(week, usedforsecurity=False).hexdigest(),
        "branch": f"exp/{spec.config}" if dirty else "main",
        "dirty": dirty,
        "diff": _ablation_diff(spec.experiment.script) if dirty else "",
        "diff_truncated": False,
        "remote": _DEMO_REMOTE,
    }
    env["captured_at"] = spec.start.isoformat()
    env["hostname"] = f"{spec.user}-workstation"
    if days_ago > DRIFT_DAYS:
        env["packages"] = {
            name: _previous_minor(version) if name in ("scikit-learn", "numpy") else version
            for name, version in env["packages"].items()
        }
    env["demo_note"] = (
        "runreview demo: python, platform and packages are the building machine's; git, "
        f"hostname and the package versions of runs older than {DRIFT_DAYS} days are made up"
    )
    return env


def _previous_minor(version: str) -> str:
    """``1.9.1`` -> ``1.8.0``; versions that cannot go back stay as they are."""
    parts = version.split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit() or parts[1] == "0":
        return version
    return f"{parts[0]}.{int(parts[1]) - 1}.0"


def _ablation_diff(script: str) -> str:
    """The uncommitted change of the no-scaler ablation runs."""
    return (
        f"diff --git a/{script} b/{script}\n"
        "index 3f2a1c4..8b9d0e2 100644\n"
        f"--- a/{script}\n+++ b/{script}\n"
        "@@ -24,5 +24,5 @@ def load_split(seed):\n"
        "     x_train, x_val, y_train, y_val = train_test_split(\n"
        "         data.data, data.target, test_size=0.25, random_state=seed\n"
        "     )\n"
        "-    scaler = StandardScaler().fit(x_train)\n"
        "+    scaler = None  # ablation: train on raw features\n"
    )
