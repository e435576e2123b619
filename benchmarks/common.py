"""Shared pieces of the benchmarks: scales, timing in alternating rounds, results.

Every benchmark runs runreview and its peers in the same process, one after the other in
each round (the order rotates from round to round), and reports the median of the rounds.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO / "benchmarks" / "data"
DEFAULT_RESULTS = REPO / "benchmarks" / "RESULTS.md"


@dataclass(frozen=True)
class Scale:
    """Data sizes of one ``--scale``."""

    name: str
    tb: tuple[int, int, int]  # runs, tags, steps (cold, warm, refresh)
    tb_memory: tuple[int, int, int]  # runs, tags, steps (peak RSS)
    mlflow_runs: tuple[int, int, int]  # runs, params, metrics (latest values)
    mlflow_history: tuple[int, int, int]  # runs, metrics, steps
    loop_runs: int  # runs the get_metric_history loop is timed on (then extrapolated)
    overlay_runs: int
    audit: tuple[int, int, int]  # runs, metrics, steps
    server_workers: int = 4  # mlflow server's default


SCALES = {
    "tiny": Scale("tiny", (4, 3, 60), (4, 3, 60), (40, 5, 3), (12, 3, 20), 4, 12, (6, 4, 10), 1),
    "medium": Scale(
        "medium",
        (50, 10, 2000),
        (50, 10, 2000),
        (10_000, 20, 10),
        (1000, 10, 100),
        50,
        1000,
        (100, 10, 100),
    ),
    "large": Scale(
        "large",
        (50, 10, 2000),
        (200, 20, 5000),
        (10_000, 20, 10),
        (1000, 10, 100),
        50,
        1000,
        (100, 10, 100),
    ),
}


@dataclass
class Contender:
    """One thing timed: ``run`` is timed, ``prepare`` (untimed) runs before each round.

    ``run`` returns facts about what it produced (e.g. ``{"points": 1000000}``).
    """

    name: str
    run: Callable[[], dict[str, Any]]
    prepare: Callable[[], None] | None = None


@dataclass
class Measurement:
    """The rounds of one contender."""

    name: str
    seconds: list[float] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        """The median time in seconds."""
        return statistics.median(self.seconds) if self.seconds else float("nan")


@dataclass
class Target:
    """A target and whether the median met it."""

    text: str
    met: bool
    detail: str


@dataclass
class BenchResult:
    """What one benchmark measured."""

    name: str
    title: str
    setup: str
    measurements: list[Measurement] = field(default_factory=list)
    ratios: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def get(self, name: str) -> Measurement:
        """The measurement called ``name``."""
        for m in self.measurements:
            if m.name == name:
                return m
        raise KeyError(name)


def alternate(
    contenders: list[Contender], rounds: int, before_round: Callable[[], None] | None = None
) -> list[Measurement]:
    """Time every contender once per round, rotating the order each round.

    ``before_round`` (untimed) runs at the start of every round. A contender that measures
    itself (e.g. inside a child process) returns its time as ``facts["_seconds"]``.
    """
    results = {c.name: Measurement(c.name) for c in contenders}
    for r in range(rounds):
        if before_round is not None:
            before_round()
        shift = r % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            if contender.prepare is not None:
                contender.prepare()
            gc.collect()
            start = time.perf_counter()
            facts = dict(contender.run() or {})
            elapsed = facts.pop("_seconds", time.perf_counter() - start)
            results[contender.name].seconds.append(elapsed)
            results[contender.name].facts.update(facts)
    return list(results.values())


def ratio(slow: float, fast: float) -> float:
    """How many times faster ``fast`` is than ``slow``."""
    return slow / fast if fast > 0 else float("inf")


def at_least(text: str, value: float, needed: float, unit: str = "x") -> Target:
    """A target met when ``value >= needed``; the detail says by how much."""
    met = value >= needed
    if met:
        detail = f"{value:,.1f}{unit} (needs {needed:,.4g}{unit}; met by {value / needed:.2f}x)"
    else:
        detail = f"{value:,.2f}{unit} (needs {needed:,.4g}{unit}; missed by {needed / value:.2f}x)"
    return Target(text, met, detail)


def at_most(text: str, value: float, limit: float, unit: str = " s") -> Target:
    """A target met when ``value <= limit``; the detail says by how much."""
    met = value <= limit
    how = "met with" if met else "missed by"
    factor = limit / value if met and value > 0 else value / limit
    detail = f"{value:,.3f}{unit} (limit {limit:,.4g}{unit}; {how} {factor:.2f}x margin)"
    if not met:
        detail = f"{value:,.3f}{unit} (limit {limit:,.4g}{unit}; {how} {factor:.2f}x)"
    return Target(text, met, detail)


def log(message: str) -> None:
    """Progress on stdout (benchmarks are long)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
