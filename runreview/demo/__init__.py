"""The demo workspace: real scikit-learn training logged to MLflow and TensorBoard.

``build_demo(directory)`` trains small models on data sets that ship with scikit-learn
(nothing is downloaded) and records them the way training scripts do::

    <directory>/
      runreview-demo.json             what was built (written first, "complete" at the end)
      mlflow.db                       MLflow tracking store (sqlite)
      artifacts/<experiment>/...      MLflow run artifacts and logged models
      tensorboard/<experiment>/<run>/ TensorBoard runs: event files, environment.json,
                                      confusion_matrix.json

MLflow experiments ``digits-sgd`` (SGDClassifier on load_digits) and ``wine-mlp``
(MLPClassifier on load_wine); TensorBoard experiment ``breast-cancer`` (MLPClassifier on
load_breast_cancer). Every run logs ``train_loss``, ``val_loss``, ``val_accuracy`` and
``val_f1`` per epoch (step = epoch, from 1); configurations are trained with three seeds so
mean +- std bands make sense. One MLflow run fails (training diverges and the script
raises) and one TensorBoard run diverges and is stopped.

Time comes from a fixed timeline (``now``, default 2026-11-20 UTC): run starts spread over
the five weeks before it, metric timestamps and event wall times follow from there, so two
builds with the same seed hold the same values. MLflow run and model ids are random (MLflow
makes them); everything else is derived from the seed and the timeline. Python, platform
and the installed packages in ``environment.json`` are this machine's; the git history,
host names and the older package versions of runs from before ``DRIFT_DAYS`` are made up
for the demo and say so in the file.

The package, by what each module does: ``plan`` (experiments, configurations, seeds and
the timeline), ``training`` (scikit-learn data splits, models and the epoch loop),
``metrics`` (the per-epoch metrics in numpy), ``environment`` (each run's
``environment.json``), ``images`` (the confusion matrix PNG), ``mlflow_writer`` and
``tensorboard_writer`` (logging a trained run), and ``build`` (the directory, the marker
file and the build loop).
"""

from __future__ import annotations

from runreview.demo.build import DemoWorkspace, build_demo
from runreview.demo.metrics import accuracy_and_macro_f1, log_loss
from runreview.demo.plan import (
    DEFAULT_NOW,
    DIVERGENCE_LOSS,
    DIVERGENCE_PATIENCE,
    DRIFT_DAYS,
    MARKER_FILE,
    METRICS,
)

__all__ = [
    "DEFAULT_NOW",
    "DIVERGENCE_LOSS",
    "DIVERGENCE_PATIENCE",
    "DRIFT_DAYS",
    "MARKER_FILE",
    "METRICS",
    "DemoWorkspace",
    "accuracy_and_macro_f1",
    "build_demo",
    "log_loss",
]
