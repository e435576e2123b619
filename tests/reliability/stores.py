"""The reliability store: one real MLflow sqlite store, written by the real MLflow client,
with an experiment per kind of bad input. Some values are then written with SQL, as another
writer could, because MLflow's client refuses them (NUL, invalid UTF-8, values longer than
MLflow's 6,000/8,000-character limits).

It starts as a copy of the session's pristine store (already migrated: creating a fresh
MLflow database costs 10-20 s here), so its other experiments are the session's; tests
scope their reads to the experiments below.
"""

from __future__ import annotations

import pickle
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

T0 = 1_763_600_000_000  # 2025-11-20 00:53 UTC, in ms
NOW_ISO = "2025-11-21T00:00:00+00:00"
WIDE_PARAMS = 5_000
LONG_PARAM = "p" * 49_990 + "-END-PARAM"  # 50,000 characters
NOTE_10MB = ("note line " * 1_048_576)[: 10 * 1024 * 1024]
BAD_UTF8 = b"ok\xff\xfe\xed\xa0\x80end"  # invalid bytes and an encoded lone surrogate
XSS = "<script>alert(1)</script>"


@dataclass
class ReliabilityStore:
    """Where the store is and which run is which."""

    db: Path
    folder: Path
    runs: dict[str, str] = field(default_factory=dict)  # role -> run id
    names: dict[str, str] = field(default_factory=dict)  # role -> hostile run name
    marker: Path | None = None

    @property
    def uri(self) -> str:
        """The store's tracking URI."""
        return f"sqlite:///{self.db}"

    def copy(self, target: Path) -> Path:
        """A copy of the store file at ``target``."""
        shutil.copyfile(self.db, target)
        return target


def hostile_names(port: int) -> dict[str, str]:
    """Run names that would fetch, inject, evaluate or spoof if the renderer trusted them."""
    return {
        "img_file": '<img src="file:///etc/passwd">',
        "img_http": f'<img src="http://127.0.0.1:{port}/name.png">',
        "table": "</td></tr></table><h1>FAKE APPROVED</h1>",
        "template": "{{ ''.__class__.__mro__[1].__subclasses__() }} {% for x in y %}",
        "bidi": "PASS\u202eSSAP",
        "unicode": "中文 عربي 😀 PA\u200dSS",
        "nul": "NUL name",  # becomes "NUL\x00name" through SQL
    }


def build(pristine: Path, folder: Path, port: int) -> ReliabilityStore:
    """Build the store in ``folder`` (hostile, wide, evidence and names experiments)."""
    from mlflow import MlflowClient

    folder.mkdir(parents=True, exist_ok=True)
    store = ReliabilityStore(db=folder / "reliability.db", folder=folder)
    shutil.copyfile(pristine, store.db)
    client = MlflowClient(tracking_uri=store.uri)
    _hostile(client, store, port)
    _wide(client, store)
    _evidence(client, store)
    _names(client, store)
    _sql_edits(store)
    return store


def _finish(client, run_id: str, start: int, value: float = 0.5) -> None:
    from mlflow.entities import Metric

    client.log_batch(
        run_id,
        metrics=[Metric("val_accuracy", value + 0.01 * s, start + s * 1000, s) for s in range(5)],
    )
    client.set_terminated(run_id, "FINISHED", end_time=start + 10_000)


def _hostile(client, store: ReliabilityStore, port: int) -> None:
    from mlflow.entities import Param, RunTag

    exp = client.create_experiment("hostile", artifact_location=str(store.folder / "art-h"))
    for i, (role, name) in enumerate(hostile_names(port).items()):
        start = T0 + i * 60_000
        rid = client.create_run(exp, run_name=name, start_time=start).info.run_id
        client.log_batch(
            rid,
            params=[
                Param("payload", f"</td></tr></table><h1>FAKE APPROVED {i}</h1>"),
                Param("lr", str(0.1 * (i + 1))),
            ],
            tags=[
                RunTag("link", '<link rel="attachment" href="file:///etc/shadow">'),
                RunTag(
                    "mlflow.note.content",
                    f"<style>@import url(http://127.0.0.1:{port}/note.css)</style> "
                    "url(file:///dev/urandom)",
                ),
            ],
        )
        _finish(client, rid, start, 0.5 + 0.01 * i)
        store.runs[role], store.names[role] = rid, name
    unicode_run = store.runs["unicode"]
    for key, value in (("zwj", "PA\u200dSS"), ("emoji", "😀👍"), ("arabic", "مرحبا")):
        client.set_tag(unicode_run, key, value)


def _wide(client, store: ReliabilityStore) -> None:
    from mlflow.entities import Param

    exp = client.create_experiment("wide", artifact_location=str(store.folder / "art-w"))
    rid = client.create_run(exp, run_name="wide", start_time=T0).info.run_id
    for start in range(0, WIDE_PARAMS, 100):  # MLflow takes at most 100 params per batch
        client.log_batch(
            rid, params=[Param(f"p{i:05d}", f"value {i}") for i in range(start, start + 100)]
        )
    _finish(client, rid, T0)
    store.runs["wide"] = rid
    long_run = client.create_run(exp, run_name="long", start_time=T0 + 60_000).info.run_id
    client.log_param(long_run, "long", "replaced by SQL")
    client.set_tag(long_run, "mlflow.note.content", "replaced by SQL")
    _finish(client, long_run, T0 + 60_000, 0.4)
    store.runs["long"] = long_run


class _Trap:
    """Unpickling this creates the marker file: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _evidence(client, store: ReliabilityStore) -> None:
    exp = client.create_experiment("evidence", artifact_location=str(store.folder / "art-e"))
    rid = client.create_run(exp, run_name="pickled model", start_time=T0).info.run_id
    store.marker = store.folder / "UNPICKLED-MARKER"
    files = store.folder / "evidence-files"
    (files / "model").mkdir(parents=True, exist_ok=True)
    trap = pickle.dumps(_Trap(store.marker))
    (files / "model" / "model.pkl").write_bytes(trap)
    (files / "confusion_matrix.pkl").write_bytes(trap)
    (files / "model" / "MLmodel").write_text(
        f"artifact_path: '{XSS}'\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn"
        f"\n    model_path: model.pkl\n  sklearn:\n    pickled_model: model.pkl\n"
        f"signature: '<img src=x onerror=alert(1)>'\n"
    )
    (files / "model" / "python_env.yaml").write_text(f"python: '{XSS}'\n")
    (files / "model" / "requirements.txt").write_text("scikit-learn==1.9.1\n")
    client.log_artifacts(rid, str(files))
    _finish(client, rid, T0)
    store.runs["pickled"] = rid
    big = client.create_run(exp, run_name="oversized", start_time=T0 + 60_000).info.run_id
    huge = store.folder / "requirements.txt"
    huge.write_text("numpy==2.4.0\n" + "# padding\n" * 120_000)  # 1.2 MB, over the 1 MB cap
    client.log_artifact(big, str(huge))
    _finish(client, big, T0 + 60_000)
    store.runs["oversized"] = big


def _names(client, store: ReliabilityStore) -> None:
    exp = client.create_experiment("names", artifact_location=str(store.folder / "art-n"))
    for i, role in enumerate(("same_a", "same_b", "empty")):
        rid = client.create_run(exp, run_name="same", start_time=T0 + i * 60_000).info.run_id
        _finish(client, rid, T0 + i * 60_000, 0.6 + 0.1 * i)
        store.runs[role] = rid


def _sql_edits(store: ReliabilityStore) -> None:
    """Values MLflow's client refuses, written as another writer could."""
    conn = sqlite3.connect(store.db)
    with conn:
        run = store.runs
        conn.execute("UPDATE runs SET name = ? WHERE run_uuid = ?", ("NUL\x00name", run["nul"]))
        conn.execute(
            "UPDATE tags SET value = ? WHERE run_uuid = ? AND key = 'mlflow.runName'",
            ("NUL\x00name", run["nul"]),
        )
        conn.execute(
            "INSERT INTO tags (key, value, run_uuid) VALUES ('badbytes', CAST(? AS TEXT), ?)",
            (BAD_UTF8, run["nul"]),
        )
        conn.execute(
            "UPDATE params SET value = ? WHERE run_uuid = ? AND key = 'long'",
            (LONG_PARAM, run["long"]),
        )
        conn.execute(
            "UPDATE tags SET value = ? WHERE run_uuid = ? AND key = 'mlflow.note.content'",
            (NOTE_10MB, run["long"]),
        )
        conn.execute("UPDATE runs SET name = '' WHERE run_uuid = ?", (run["empty"],))
        conn.execute(
            "DELETE FROM tags WHERE run_uuid = ? AND key = 'mlflow.runName'", (run["empty"],)
        )
    conn.close()
