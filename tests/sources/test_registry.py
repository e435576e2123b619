"""The source registry: each source declares its options; the openers pass a source only
its own, and refuse an option that no source takes."""

from __future__ import annotations

import pytest

from runreview.sources import open_logdir, open_source
from runreview.sources.mlflow import MlflowSource
from runreview.sources.tensorboard import TensorBoardSource
from runreview.sources.wandb import WandbSource


def test_each_source_declares_its_options():
    assert "include_deleted" in MlflowSource.options
    assert "cache" in TensorBoardSource.options
    assert WandbSource.options.isdisjoint({"include_deleted", "cache"})


def test_an_option_for_another_source_is_not_passed_on(tmp_path):
    source = open_logdir(str(tmp_path), include_deleted=True)  # an MLflow option
    assert isinstance(source, TensorBoardSource)


def test_an_option_no_source_takes_is_refused(tmp_path):
    with pytest.raises(TypeError, match="no source takes the option.* include_delted"):
        open_source(str(tmp_path), include_delted=True)
