"""The machine, the versions and the results, printed and written to RESULTS.md."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmarks.common import BenchResult

PACKAGES = ("runreview", "mlflow", "tensorboard", "tensorboardX", "tbparse", "pandas", "numpy",
            "pyarrow", "protobuf", "altair", "weasyprint")  # fmt: skip


def machine() -> dict[str, str]:
    """CPU model, cores, RAM and the load when asked."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{mem_kib / 2**20:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        ram = "unknown"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"cpu": cpu, "cores": str(os.cpu_count()), "ram": ram, "load": load}


def versions() -> dict[str, str]:
    """Python and the packages that matter here."""
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def table(result: BenchResult) -> list[str]:
    """The Markdown lines of one benchmark."""
    lines = [f"### {result.title} (`{result.name}`)", "", result.setup, ""]
    lines += ["| measurement | rounds (s) | median (s) | facts |", "|---|---|---|---|"]
    for m in result.measurements:
        rounds = ", ".join(f"{s:.3f}" for s in m.seconds)
        facts = "; ".join(f"{k}={_cell(v)}" for k, v in m.facts.items())
        lines.append(f"| {m.name} | {rounds} | {m.median:.3f} | {facts} |")
    lines.append("")
    lines += [f"- {r}" for r in result.ratios]
    if result.targets:
        lines += ["", "| target | result | verdict |", "|---|---|---|"]
        for t in result.targets:
            lines.append(f"| {t.text} | {t.detail} | {'met' if t.met else '**missed**'} |")
    if result.notes:
        lines += [""] + [f"- Note: {n}" for n in result.notes]
    return [*lines, ""]


def render(results: list[BenchResult], scale: str, rounds: int, started: dict[str, str]) -> str:
    """RESULTS.md: machine, versions, date, and one table per benchmark."""
    ended = machine()
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m benchmarks`); do not edit by hand.",
        "",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Scale: `{scale}`, {rounds} rounds per benchmark (median reported)",
        f"- Machine: {started['cpu']}, {started['cores']} cores, {started['ram']} RAM",
        f"- Load average (1, 5, 15 min): {started['load']} at start, {ended['load']} at end",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        "",
        "## Summary",
        "",
        "| benchmark | target | verdict |",
        "|---|---|---|",
    ]
    for result in results:
        for t in result.targets:
            lines.append(
                f"| {result.name} | {t.text}: {t.detail} | {'met' if t.met else '**missed**'} |"
            )
    lines += ["", "## Details", ""]
    for result in results:
        lines += table(result)
    return "\n".join(lines)


def print_result(result: BenchResult) -> None:
    """A benchmark's table on stdout."""
    print("\n".join(table(result)), flush=True)
