"""Which experiment a TensorBoard run belongs to (issue #12): the first folder under the
logdir when the run sits two or more folders below it, else the logdir's own name."""

from __future__ import annotations

import pytest

from runreview.contract import RUN_COLUMNS
from runreview.sources.tensorboard import TensorBoardSource
from tests.sources import tb_writers as tw


@pytest.fixture
def logdir(tmp_path):
    root = tmp_path / "logs"
    tw.write_tbx_scalars(str(root / "a" / "run1"), {"loss": [1.0, 0.5]})
    tw.write_tbx_scalars(str(root / "b" / "x" / "run2"), {"loss": [2.0]})
    tw.write_tbx_scalars(str(root / "run3"), {"loss": [3.0]})
    return root


def test_experiment_is_the_first_folder_under_the_logdir(logdir):
    runs = TensorBoardSource(logdir).read_runs()
    got = dict(zip(runs.run_id, runs.experiment, strict=True))
    assert got == {"a/run1": "a", "b/x/run2": "b", "run3": "logs"}


def test_a_run_in_the_logdir_itself_is_in_the_logdirs_experiment(logdir):
    tw.write_tbx_scalars(str(logdir), {"loss": [4.0]})
    runs = TensorBoardSource(logdir).read_runs()
    assert runs.set_index("run_id").experiment.loc["."] == "logs"


def test_experiment_filter_picks_runs_by_their_own_experiment(logdir):
    source = TensorBoardSource(logdir)
    assert source.read_runs(experiments=["a"]).run_id.tolist() == ["a/run1"]
    assert source.read_runs(experiments=["b", "logs"]).run_id.tolist() == ["b/x/run2", "run3"]
    assert source.read_runs(experiments="b").run_id.tolist() == ["b/x/run2"]
    empty = source.read_runs(experiments=["x", "run1"])
    assert empty.empty and list(empty.columns) == RUN_COLUMNS


def test_demo_runs_are_in_the_demo_experiment(demo_workspace):
    runs = TensorBoardSource(demo_workspace.logdir).read_runs()
    assert set(runs.experiment) == set(demo_workspace.tensorboard_experiments)
    assert set(runs.experiment) == {"breast-cancer"}
