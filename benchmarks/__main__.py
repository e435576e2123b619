"""``python -m benchmarks [--scale tiny|medium|large] [--only NAME ...]`` (``make bench``).

Generates the data once (kept under ``benchmarks/data/<scale>``, git-ignored), runs every
benchmark with runreview and its peers alternating, prints each table, and rewrites
``benchmarks/RESULTS.md`` after a full run (every benchmark, scale medium or large; a
failing benchmark is reported as failed and the others still run).

Scales: ``tiny`` is seconds of work (the test suite runs it); ``medium`` has the target
sizes (TensorBoard 50 runs x 10 tags x 2,000 steps = 1M points; MLflow 10,000 runs x 20
params x 10 metrics, and 1,000 runs x 10 metrics x 100 steps = 1M points; 1,000 runs in
the overlay; an audit of 100 runs) with the memory benchmark on the 1M-point logdir;
``large`` (the default) is medium plus the memory benchmark on 200 runs x 20 tags x 5,000
steps = 20M points. The first run generates the data: about 15-30 minutes on 2 cores,
most of it creating the 10,000 MLflow runs through ``MlflowClient``.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks import bench_app, bench_mlflow, bench_tb, gen_tb
from benchmarks.common import (
    DEFAULT_DATA,
    DEFAULT_RESULTS,
    SCALES,
    BenchResult,
    Scale,
    Target,
    log,
)
from benchmarks.results import machine, print_result, render

NAMES = (
    "tb_cold",
    "tb_warm",
    "tb_refresh",
    "tb_memory",
    "mlflow_runs",
    "mlflow_history_sqlite",
    "mlflow_history_server",
    "app_overlay",
    "audit_pdf",
)


class Run:
    """One invocation: where the data is, which scale, how many rounds."""

    def __init__(self, data: Path, scale: Scale, rounds: int):
        self.data = data / scale.name
        self.work = self.data / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.scale = scale
        self.rounds = rounds
        self.done: dict[str, BenchResult] = {}

    def tb_logdir(self) -> Path:
        runs, tags, steps = self.scale.tb
        log(f"TensorBoard data: {runs} x {tags} x {steps}")
        return gen_tb.make_logdir(self.data / f"tb-{runs}x{tags}x{steps}", runs, tags, steps)

    def tb_cold(self) -> BenchResult:
        bench_tb.warm_up(self.work)
        return bench_tb.bench_cold(self.tb_logdir(), self.work, self.scale, self.rounds)

    def tb_warm(self) -> BenchResult:
        cold = self.done.get("tb_cold")
        return bench_tb.bench_warm(self.tb_logdir(), self.work, self.scale, self.rounds, cold)

    def tb_refresh(self) -> BenchResult:
        bench_tb.warm_up(self.work)
        return bench_tb.bench_refresh(self.tb_logdir(), self.work, self.scale, self.rounds)

    def tb_memory(self) -> BenchResult:
        runs, tags, steps = self.scale.tb_memory
        log(f"TensorBoard data: {runs} x {tags} x {steps}")
        root = self.data / f"tb-{runs}x{tags}x{steps}"
        logdir = gen_tb.make_logdir(root, runs, tags, steps)
        return bench_tb.bench_memory(logdir, self.work, self.scale)

    def mlflow_runs(self) -> BenchResult:
        return bench_mlflow.bench_runs(self.data / "mlflow", self.scale, self.rounds)

    def mlflow_history_sqlite(self) -> BenchResult:
        return bench_mlflow.bench_history(
            self.data / "mlflow", self.work, self.scale, self.rounds, "sqlite"
        )

    def mlflow_history_server(self) -> BenchResult:
        return bench_mlflow.bench_history(
            self.data / "mlflow", self.work, self.scale, self.rounds, "server"
        )

    def app_overlay(self) -> BenchResult:
        return bench_app.bench_overlay(self.data / "mlflow", self.scale, self.rounds)

    def audit_pdf(self) -> BenchResult:
        return bench_app.bench_audit(self.data / "mlflow", self.scale, self.rounds)


def _run_one(name: str, bench: Callable[[], BenchResult]) -> BenchResult:
    """One benchmark; a failure is reported as a result (the others still run)."""
    try:
        return bench()
    except Exception as exc:  # reported in the results, not hidden
        message = f"{type(exc).__name__}: {exc}"
        log(f"{name} FAILED: {message}")
        traceback.print_exc()
        failed = BenchResult(name, f"{name} (failed)", "the benchmark raised an exception")
        failed.targets.append(Target("benchmark completes", False, message))
        failed.notes.append(f"FAILED: {message}")
        return failed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="large")
    parser.add_argument(
        "--only", action="append", choices=NAMES, metavar="NAME", help=f"one of {NAMES}"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[BenchResult]:
    """Run the benchmarks; returns their results (also printed, and written to RESULTS.md
    after a full run)."""
    args = parse_args(argv)
    started = machine()
    run = Run(args.data, SCALES[args.scale], args.rounds)
    names = args.only or list(NAMES)
    results = []
    for name in NAMES:
        if name not in names:
            continue
        log(f"{name} ({args.scale})")
        result = _run_one(name, getattr(run, name))
        run.done[name] = result
        print_result(result)
        results.append(result)
    full = args.only is None and args.scale != "tiny"
    if full or args.results != DEFAULT_RESULTS:
        args.results.write_text(render(results, args.scale, args.rounds, started))
        log(f"results written to {args.results}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
