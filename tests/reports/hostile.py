"""A small MLflow store and TensorBoard logdir full of hostile text, made by the tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LONG_VALUE = "x" * 7_500 + "-END"  # MLflow caps tag values at 8,000 characters


@dataclass
class HostileStore:
    """Where the hostile store lives and what it holds."""

    tracking_uri: str
    db: Path
    run_ids: list[str]
    names: list[str]


def hostile_names(port: int) -> list[str]:
    """Run names that would fetch, inject or evaluate if the renderer trusted them."""
    return [
        '<img src="file:///etc/passwd">',
        f'<img src="http://127.0.0.1:{port}/name.png">',
        "</td></tr></table><h1>FAKE APPROVED</h1>",
        "{{ ''.__class__.__mro__[1].__subclasses__() }} {% for x in y %}",
        "PASS\u202eSSAP",
    ]


def build_hostile_store(folder: Path, port: int) -> HostileStore:
    """An MLflow sqlite store whose run names, params, tags and notes are hostile."""
    from mlflow import MlflowClient

    db = folder / "hostile.db"
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(
        "hostile <b>experiment</b>", artifact_location=str(folder / "art")
    )
    names = hostile_names(port)
    run_ids = []
    for i, name in enumerate(names):
        run = client.create_run(exp, run_name=name, start_time=1_763_600_000_000 + i * 60_000)
        rid = run.info.run_id
        client.log_param(rid, "payload", f"</td></tr></table><h1>FAKE APPROVED {i}</h1>")
        client.log_param(rid, "lr", str(0.1 * (i + 1)))
        client.set_tag(rid, "link", '<link rel="attachment" href="file:///etc/shadow">')
        client.set_tag(
            rid,
            "mlflow.note.content",
            f"<style>@import url(http://127.0.0.1:{port}/note.css)</style> url(file:///dev/urandom)",
        )
        for step in range(5):
            client.log_metric(
                rid,
                "val_accuracy",
                0.5 + 0.05 * step + 0.01 * i,
                step=step,
                timestamp=1_763_600_000_000 + i * 60_000 + step * 1000,
            )
        client.set_terminated(rid, "FINISHED", end_time=1_763_600_000_000 + i * 60_000 + 10_000)
        run_ids.append(rid)
    long_run = client.create_run(exp, run_name="long values", start_time=1_763_600_900_000)
    client.set_tag(long_run.info.run_id, "huge", LONG_VALUE)
    client.log_metric(
        long_run.info.run_id, "val_accuracy", 0.3, step=0, timestamp=1_763_600_900_000
    )
    client.set_terminated(long_run.info.run_id, "FINISHED", end_time=1_763_600_901_000)
    run_ids.append(long_run.info.run_id)
    return HostileStore(uri, db, run_ids, names)
