"""Logging demo runs into an MLflow tracking store, and keeping MLflow quiet meanwhile.

Everything goes through an explicit ``MlflowClient`` for the demo's store, except
``mlflow.sklearn.log_model``, which only knows MLflow's process-global tracking URI: that
one call runs inside :func:`global_tracking_uri`, which puts the global state back after.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from runreview.capture import log_confusion_matrix, log_environment
from runreview.demo.images import confusion_image
from runreview.demo.plan import (
    METRICS,
    Experiment,
    RunSpec,
    end_time,
    epoch_times,
    logged_params,
    notes,
)
from runreview.demo.training import Result, Split

_DATASET_URLS = {
    "digits": "https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits",
    "wine": "https://archive.ics.uci.edu/dataset/109/wine",
    "breast_cancer": "https://archive.ics.uci.edu/dataset/17/breast+cancer+wisconsin+diagnostic",
}
_TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch, as MLflow stores times."""
    return int(round(moment.timestamp() * 1000))


class MlflowWriter:
    """Logs demo runs into one MLflow store through an explicit ``MlflowClient``."""

    def __init__(self, tracking_uri: str, artifact_root: Path) -> None:
        from mlflow import MlflowClient
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        # MLflow shares one engine per database URI in a process. If this process used the
        # URI before (a demo built here, then overwritten), the engine's pooled connections
        # still point at the deleted file: the first store drops them. The second creates
        # the tables, with the Default experiment's artifacts inside the demo directory (a
        # client would put them in ./mlruns of the current directory).
        SqlAlchemyStore(tracking_uri, artifact_root.as_uri()).engine.dispose()
        SqlAlchemyStore(tracking_uri, artifact_root.as_uri())
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.artifact_root = artifact_root
        self._experiments: dict[str, str] = {}
        self._inputs: dict[tuple[str, str], list[Any]] = {}

    def experiment_id(self, exp: Experiment) -> str:
        """The id of ``exp``, created on first use with its artifacts under the demo dir."""
        if exp.name not in self._experiments:
            self._experiments[exp.name] = self.client.create_experiment(
                exp.name,
                artifact_location=(self.artifact_root / exp.name).as_uri(),
                tags={"team": exp.team, "mlflow.note.content": exp.description},
            )
        return self._experiments[exp.name]

    def log_run(self, spec: RunSpec, result: Result, split: Split, env: dict[str, Any]) -> None:
        """One run: params, tags, per-epoch metrics, inputs, environment, outputs, status."""
        from mlflow.entities import Metric, Param

        experiment_id = self.experiment_id(spec.experiment)
        run = self.client.create_run(
            experiment_id, start_time=_ms(spec.start), run_name=spec.name,
            tags=self._tags(spec, env, result),
        )  # fmt: skip
        run_id = run.info.run_id
        times = epoch_times(spec, len(result.history))
        metrics = [
            Metric(key, point[key], _ms(when), step)
            for step, (point, when) in enumerate(zip(result.history, times, strict=True), 1)
            for key in METRICS
        ]
        params = [Param(k, str(v)) for k, v in logged_params(spec).items()]
        self.client.log_batch(run_id, metrics=metrics, params=params)
        self.client.log_inputs(run_id, datasets=self._dataset_inputs(spec, split))
        log_environment(run_id, env=env, tracking_uri=self.tracking_uri)
        if result.error is None:
            self._log_outputs(spec, result, split, run_id, experiment_id)
        status = "FINISHED" if result.error is None else "FAILED"
        self.client.set_terminated(run_id, status, end_time=_ms(end_time(spec, times)))

    @staticmethod
    def _tags(spec: RunSpec, env: dict[str, Any], result: Result) -> dict[str, str]:
        """Team, purpose and config tags plus the MLflow system tags a script gets."""
        tags = {
            "team": spec.experiment.team,
            "purpose": spec.purpose,
            "config": spec.config,
            "mlflow.user": spec.user,
            "mlflow.source.name": spec.experiment.script,
            "mlflow.source.type": "LOCAL",
            "mlflow.source.git.commit": env["git"]["commit"],
            "mlflow.source.git.branch": env["git"]["branch"],
        }
        if spec.purpose != "sweep" and spec.seed % 100 == 0:
            tags["mlflow.note.content"] = notes(spec, result.error)
        if result.error is not None:
            tags["failure_reason"] = result.error
        return tags

    def _dataset_inputs(self, spec: RunSpec, split: Split) -> list[Any]:
        """Training and validation data set inputs (with digests), made once per split."""
        key = (spec.experiment.dataset, spec.params["scaler"])
        if key not in self._inputs:
            from mlflow.data.http_dataset_source import HTTPDatasetSource
            from mlflow.data.pandas_dataset import from_pandas
            from mlflow.entities import Dataset, DatasetInput, InputTag

            source = HTTPDatasetSource(_DATASET_URLS[key[0]])
            parts = (("training", split.frame_train, split.y_train),
                     ("validation", split.frame_val, split.y_val))  # fmt: skip
            inputs = []
            for context, frame, y in parts:
                dataset = from_pandas(
                    frame.assign(target=y), source=source, targets="target",
                    name=f"{key[0]}-{context}",
                ).to_dict()  # fmt: skip
                # mlflow.log_input would need the active run; this entity is what it logs.
                entity = Dataset(
                    name=dataset["name"], digest=dataset["digest"],
                    source_type=dataset["source_type"], source=dataset["source"],
                    schema=dataset.get("schema"), profile=dataset.get("profile"),
                )  # fmt: skip
                tags = [InputTag("mlflow.data.context", context)]
                inputs.append(DatasetInput(entity, tags=tags))
            self._inputs[key] = inputs
        return self._inputs[key]

    def _log_outputs(
        self, spec: RunSpec, result: Result, split: Split, run_id: str, experiment_id: str
    ) -> None:
        """Confusion matrix, and for some runs predictions, a PNG and the model."""
        y_true, y_pred = split.named(split.y_val), split.named(result.y_pred)
        matrix = log_confusion_matrix(
            y_true, y_pred, labels=split.label_names, run=run_id, tracking_uri=self.tracking_uri
        )
        if "predictions_csv" in spec.extras:
            rows = "".join(f"{t},{p}\n" for t, p in zip(y_true, y_pred, strict=True))
            self.client.log_text(run_id, "y_true,y_pred\n" + rows, "predictions.csv")
        if "predictions_table" in spec.extras:
            table = {"y_true": y_true, "y_pred": y_pred}
            self.client.log_table(run_id, table, "predictions.json")
        if "confusion_png" in spec.extras:
            image = confusion_image(matrix["labels"], matrix["matrix"])
            self.client.log_image(run_id, image, artifact_file="confusion_matrix.png")
        if "model" in spec.extras:
            self._log_model(spec, result.model, split, run_id, experiment_id)

    def _log_model(
        self, spec: RunSpec, model: Any, split: Split, run_id: str, experiment_id: str
    ) -> None:
        """The fitted model as an MLflow LoggedModel with requirements and python_env.

        The requirements are MLflow's defaults for the flavour: inferring them starts a
        subprocess that takes about ten seconds.
        """
        import mlflow.sklearn
        from mlflow.models import infer_signature

        logged = self.client.create_logged_model(
            experiment_id, name="model", source_run_id=run_id, model_type="classifier",
            params={k: str(v) for k, v in logged_params(spec).items()},
        )  # fmt: skip
        sample = split.frame_val.head(5)
        signature = infer_signature(sample, model.predict(split.x_val[:5]))
        with global_tracking_uri(self.tracking_uri):
            mlflow.sklearn.log_model(
                model,
                name="model",
                model_id=logged.model_id,
                run_id=run_id,
                signature=signature,
                serialization_format="skops",
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            )


@contextlib.contextmanager
def global_tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's process-global tracking URI at ``uri`` for the block, then restore it.

    ``mlflow.sklearn.log_model`` has no ``tracking_uri`` argument: it reads the global URI
    (and finalises the logged model through it). MLflow takes that URI from
    ``mlflow.set_tracking_uri`` if it was called, else from ``MLFLOW_TRACKING_URI``, else
    from its default (which depends on the current directory). When setting the variable
    is enough it is all that changes, so the default stays a default; after an explicit
    ``set_tracking_uri`` that URI is replaced and set back. ``set_tracking_uri`` also
    exports the variable, so the variable is restored either way.
    """
    import mlflow

    previous = mlflow.get_tracking_uri()
    saved = os.environ.get(_TRACKING_URI_VARIABLE)
    os.environ[_TRACKING_URI_VARIABLE] = uri
    explicit = mlflow.get_tracking_uri() != uri  # a set_tracking_uri URI wins over the variable
    try:
        if explicit:
            mlflow.set_tracking_uri(uri)
        yield
    finally:
        if explicit:
            mlflow.set_tracking_uri(previous)
        restore_env(_TRACKING_URI_VARIABLE, saved)


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow without its INFO logging, warnings or usage telemetry, for the build only."""
    saved = os.environ.get("MLFLOW_DISABLE_TELEMETRY")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mlflow  # noqa: F401 - configures its loggers on import: do that first

            for logger in loggers:
                logger.setLevel(logging.ERROR)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        restore_env("MLFLOW_DISABLE_TELEMETRY", saved)


def restore_env(name: str, value: str | None) -> None:
    """Put environment variable ``name`` back to ``value`` (None: unset)."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
