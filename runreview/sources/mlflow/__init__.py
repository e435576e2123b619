"""MLflow tracking stores (sqlite, an mlruns folder, a tracking server) as a source."""

from runreview.sources.mlflow.source import MlflowSource

__all__ = ["MlflowSource"]
