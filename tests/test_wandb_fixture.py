"""The W&B writer environments are built once, safely, whoever asks first (issue #10).

Two xdist workers of one session used to build the same virtualenv at once, and the
second deleted the one the first was already running a writer from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests import wandb_fixture
from tests.cachedir import REPO

pytestmark = pytest.mark.wandb

ASK = """
import json, sys
from tests.wandb_fixture import writer_python
print(json.dumps(str(writer_python(sys.argv[1]))))
"""


def test_concurrent_requests_build_one_environment_and_all_can_use_it(tmp_path):
    env = dict(os.environ, RUNREVIEW_TEST_CACHE=str(tmp_path / "cache"))
    version = wandb_fixture.LEGACY_VERSION
    askers = [
        subprocess.Popen(
            [sys.executable, "-c", ASK, version],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    answers = []
    for asker in askers:
        out, err = asker.communicate(timeout=wandb_fixture.BUILD_TIMEOUT)
        assert asker.returncode == 0, err[-2000:]
        answers.append(json.loads(out.strip().splitlines()[-1]))

    assert len(set(answers)) == 1
    published = sorted(p.name for p in (tmp_path / "cache" / "wandb").iterdir())
    target = f"py311-wandb-{version}-"
    assert [p for p in published if not p.endswith(".lock")] == [
        next(p for p in published if p.startswith(target) and not p.endswith(".lock"))
    ]  # one environment, nothing left half-built
    done = subprocess.run(
        [answers[0], "-c", "import wandb; print(wandb.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == version


def test_the_environment_is_exactly_the_lock_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNREVIEW_TEST_CACHE", str(tmp_path / "cache"))
    version = wandb_fixture.LEGACY_VERSION
    python = wandb_fixture.writer_python(version)
    frozen = subprocess.run(
        [wandb_fixture._uv(), "pip", "freeze", "--python", str(python)],
        capture_output=True,
        text=True,
        check=True,
    )
    pinned = {
        line.split(" ")[0]
        for line in wandb_fixture.lock_file(version).read_text().splitlines()
        if line and not line.startswith(("#", " "))
    }
    assert set(frozen.stdout.split()) == pinned
