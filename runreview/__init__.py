"""runreview: compare ML experiment runs from MLflow, TensorBoard and W&B, and report on them.

The public Python API::

    import runreview
    runs = runreview.load_runs(tracking_uris=["sqlite:///mlflow.db"], logdirs=["runs/"])
    history = runreview.load_history(logdirs=["runs/"], metrics=["val/loss"])
    wandb_runs = runreview.load_runs(wandb_dirs=["wandb/"])

Importing this package is cheap: MLflow, scikit-learn and the readers load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runreview.version import __version__

__all__ = ["Workspace", "__version__", "load_history", "load_runs"]

if TYPE_CHECKING:
    from runreview.workspace import Workspace, load_history, load_runs


def __getattr__(name: str) -> Any:
    """Load the API lazily so ``import runreview`` stays fast (the CLI starts quickly)."""
    if name in {"Workspace", "load_runs", "load_history"}:
        from runreview import workspace

        return getattr(workspace, name)
    raise AttributeError(f"module 'runreview' has no attribute {name!r}")
