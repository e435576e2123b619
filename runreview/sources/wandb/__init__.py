"""Folders of W&B run folders as a source, read without the wandb package."""

from runreview.sources.wandb.source import WandbSource

__all__ = ["WandbSource"]
