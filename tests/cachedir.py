"""The one folder that holds everything the test suite keeps between sessions.

``make test`` sets ``RUNREVIEW_TEST_CACHE`` (default: ``.test-cache/`` in the clone, which
git ignores), so a fresh clone starts cold, as CI does, while a developer's clone stays
warm. Nothing the tests keep goes to the machine's temp folder, where a run in another
clone could find it and hide a missing step.

What lives here: the W&B writer virtualenvs (built once, under a file lock), Hypothesis'
example database, and each session's TensorBoard parse cache (removed at the session's
end).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV_VAR = "RUNREVIEW_TEST_CACHE"


def suite_cache_dir() -> Path:
    """The suite's cache folder (created when missing)."""
    folder = Path(os.environ.get(ENV_VAR) or REPO / ".test-cache").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder
