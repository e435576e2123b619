"""TensorBoard log directories as a source, read in place without TensorFlow."""

from runreview.sources.tensorboard.source import TensorBoardSource

__all__ = ["TensorBoardSource"]
