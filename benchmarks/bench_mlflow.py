"""MLflow benchmarks: the runs table and the full metric history, over sqlite and a server."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from benchmarks import gen_mlflow
from benchmarks.common import (
    BenchResult,
    Contender,
    Scale,
    Target,
    alternate,
    at_least,
    log,
    ratio,
)


def _runreview_runs(uri: str) -> dict[str, Any]:
    from runreview.sources import open_source

    source = open_source(uri)
    try:
        runs = source.read_runs()
    finally:
        source.close()
    params = sum(c.startswith("params.") for c in runs.columns)
    metrics = sum(c.startswith("metrics.") for c in runs.columns)
    return {"runs": len(runs), "params": params, "metrics": metrics}


def _search_runs(uri: str, experiment_id: str, max_results: int) -> dict[str, Any]:
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)  # the peer's API reads the global URI
    try:
        frame = mlflow.search_runs(experiment_ids=[experiment_id], max_results=max_results)
    finally:
        mlflow.set_tracking_uri(previous)
    return {"runs": len(frame)}


def _experiment_id(uri: str) -> str:
    from mlflow import MlflowClient

    return (
        MlflowClient(tracking_uri=uri).get_experiment_by_name(gen_mlflow.EXPERIMENT).experiment_id
    )


def bench_runs(folder: Path, scale: Scale, rounds: int) -> BenchResult:
    """The runs table (latest metric values, params, tags) of every run."""
    runs, params, metrics = scale.mlflow_runs
    store = gen_mlflow.make_runs_store(folder, runs, params, metrics)
    uri = f"sqlite:///{store}"
    exp = _experiment_id(uri)
    result = BenchResult(
        "mlflow_runs",
        "MLflow: runs table over sqlite",
        f"{runs:,} runs x {params} params x {metrics} metrics (latest values) in one "
        f"experiment, sqlite store of {store.stat().st_size / 2**20:,.0f} MiB",
    )
    mine, peer = "runreview read_runs", "mlflow.search_runs"
    result.measurements = alternate(
        [
            Contender(mine, lambda: _runreview_runs(uri)),
            Contender(peer, lambda: _search_runs(uri, exp, runs + 1000)),
        ],
        rounds,
    )
    got = result.get(mine).facts
    complete = got["runs"] == runs == result.get(peer).facts["runs"]
    complete = complete and got["params"] == params and got["metrics"] == metrics
    r = ratio(result.get(peer).median, result.get(mine).median)
    result.ratios.append(f"runreview vs mlflow.search_runs: {r:.2f}x faster")
    result.targets.append(at_least("runs table no slower than mlflow.search_runs", r, 1.0))
    result.targets.append(
        Target(
            "runs table complete (same run count, every param and metric column)",
            complete,
            f"runreview {got['runs']:,} runs, {got['params']} params, {got['metrics']} "
            f"metrics; search_runs {result.get(peer).facts['runs']:,} runs",
        )
    )
    return result


def _runreview_history(uri: str) -> dict[str, Any]:
    from runreview.sources import open_source

    source = open_source(uri)
    try:
        return {"points": len(source.read_history())}
    finally:
        source.close()


def _loop(uri: str, run_ids: list[str], keys: list[str]) -> dict[str, Any]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    points = sum(len(client.get_metric_history(r, k)) for r in run_ids for k in keys)
    return {"points": points, "calls": len(run_ids) * len(keys)}


def _floor(store: Path) -> dict[str, Any]:
    import pandas as pd

    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT run_uuid, key, value, timestamp, step FROM metrics").fetchall()
    finally:
        conn.close()
    frame = pd.DataFrame(rows, columns=["run_uuid", "key", "value", "timestamp", "step"])
    return {"points": len(frame)}


def _run_ids(uri: str, count: int) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = _experiment_id(uri)
    return [r.info.run_id for r in client.search_runs([exp], max_results=count)]


def history_store(folder: Path, scale: Scale) -> Path:
    """The history store (made once)."""
    return gen_mlflow.make_history_store(folder, *scale.mlflow_history)


def bench_history(folder: Path, work: Path, scale: Scale, rounds: int, over: str) -> BenchResult:
    """Every point of every run: runreview vs a get_metric_history loop (timed on a subset
    of runs, then extrapolated linearly), over sqlite (with the direct-SQL floor) or a
    real ``mlflow server``."""
    runs, metrics, steps = scale.mlflow_history
    store = history_store(folder, scale)
    keys = [f"m{k:02d}" for k in range(metrics)]
    subset = _run_ids(f"sqlite:///{store}", scale.loop_runs)
    factor = runs / len(subset)
    result = BenchResult(
        f"mlflow_history_{over}",
        f"MLflow: full history over {'a tracking server' if over == 'server' else 'sqlite'}",
        f"{runs:,} runs x {metrics} metrics x {steps} steps = {runs * metrics * steps:,} points",
    )
    loop_name = f"get_metric_history loop, {len(subset)} runs (x{factor:g} = all runs)"
    if over == "server":
        log("starting mlflow server")
        with gen_mlflow.mlflow_server(store, work, scale.server_workers) as url:
            result.setup += (
                f"; `mlflow server` (sqlite backend, {scale.server_workers} workers) at {url}"
            )
            _warm_server(url, subset[0], keys[0], 2 * scale.server_workers)
            result.measurements = _history_rounds(url, subset, keys, rounds, loop_name, None)
    else:
        uri = f"sqlite:///{store}"
        result.measurements = _history_rounds(uri, subset, keys, rounds, loop_name, store)
    _history_verdict(result, runs * metrics * steps, loop_name, factor, over)
    return result


def _warm_server(url: str, run_id: str, key: str, times: int) -> None:
    """A few untimed requests of each kind, so every server worker has started up."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url)
    for _ in range(times):
        client.search_experiments()
        client.search_runs([_experiment_id(url)], max_results=10)
        client.get_metric_history(run_id, key)


def _history_rounds(
    uri: str, subset: list[str], keys: list[str], rounds: int, loop_name: str, store: Path | None
) -> list:
    contenders = [
        Contender("runreview read_history", lambda: _runreview_history(uri)),
        Contender(loop_name, lambda: _loop(uri, subset, keys)),
    ]
    if store is not None:
        contenders.append(
            Contender("floor: direct SQL read of the sqlite file", lambda: _floor(store))
        )
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    return alternate(contenders, rounds)


def _history_verdict(
    result: BenchResult, points: int, loop_name: str, factor: float, over: str
) -> None:
    mine = result.get("runreview read_history")
    loop = result.get(loop_name)
    if mine.facts["points"] != points:
        result.notes.append(f"INCOMPLETE: runreview returned {mine.facts['points']:,} points")
    full_loop = loop.median * factor
    loop.facts["extrapolated_s"] = round(full_loop, 1)
    r = ratio(full_loop, mine.median)
    result.ratios.append(
        f"runreview vs the loop (extrapolated {loop.median:.2f} s x {factor:g} = "
        f"{full_loop:,.0f} s for all runs): {r:.1f}x faster"
    )
    result.notes.append(
        f"The loop was timed on a subset of runs and scaled linearly by {factor:g} (it makes "
        "one request per run and metric, so its cost is proportional to the number of runs)."
    )
    if over == "sqlite":
        floor = result.get("floor: direct SQL read of the sqlite file")
        result.ratios.append(f"runreview is {ratio(mine.median, floor.median):.2f}x the SQL floor")
    needed = 20.0 if over == "server" else 5.0
    result.targets.append(at_least(f"history over {over} >= {needed:g}x the loop", r, needed))
