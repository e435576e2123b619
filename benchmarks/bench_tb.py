"""TensorBoard benchmarks: cold and warm reads, refresh of live files, peak memory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import gen_tb
from benchmarks.common import (
    REPO,
    BenchResult,
    Contender,
    Measurement,
    Scale,
    Target,
    alternate,
    at_least,
    at_most,
    log,
    ratio,
)

COLD = "runreview cold (no disk cache)"
COLD_EMPTY = "runreview cold (empty disk cache, written)"
WARM = "runreview warm (new source, same process)"
WARM_PROCESS = "runreview warm (new process)"
TBPARSE = "tbparse SummaryReader(logdir).scalars"
ACCUMULATOR = "tensorboard EventAccumulator (scalars=0)"
FLOOR = "floor: read the raw bytes"


def _runreview(logdir: Path, cache: Path | bool) -> dict[str, Any]:
    from runreview.sources.tensorboard import TensorBoardSource

    source = TensorBoardSource(logdir, cache=cache)
    history = source.read_history()
    return {"points": len(history), "bytes_read": source.stats.bytes_read}


def _tbparse(logdir: Path) -> dict[str, Any]:
    from tbparse import SummaryReader

    return {"points": len(SummaryReader(str(logdir)).scalars)}


def _accumulator(logdir: Path) -> dict[str, Any]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points = 0
    for run_dir in sorted(p for p in logdir.iterdir() if p.is_dir()):
        acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
        acc.Reload()
        points += sum(len(acc.Scalars(tag)) for tag in acc.Tags()["scalars"])
    return {"points": points}


def _floor(logdir: Path) -> dict[str, Any]:
    size = 0
    for d, _, files in os.walk(logdir):
        for name in files:
            with open(os.path.join(d, name), "rb") as fh:
                size += len(fh.read())
    return {"bytes": size}


def _child(task: str, **kwargs: Any) -> dict[str, Any]:
    """Run a measurement in a fresh Python process (see benchmarks.child)."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.child", task, json.dumps(kwargs)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def warm_up(work: Path) -> None:
    """Import and exercise every reader once on a tiny logdir (imports are not timed)."""
    logdir = gen_tb.make_logdir(work / "warmup", 2, 2, 5, workers=1)
    for fn in (_tbparse, _accumulator, _floor):
        fn(logdir)
    _runreview(logdir, False)


def _points(scale: Scale) -> int:
    runs, tags, steps = scale.tb
    return runs * tags * steps


def bench_cold(logdir: Path, work: Path, scale: Scale, rounds: int) -> BenchResult:
    """Cold reads of the whole logdir: runreview (both CRCs checked) vs tbparse,
    EventAccumulator and the raw bytes."""
    cache = work / "cache-cold"
    contenders = [
        Contender(COLD, lambda: _runreview(logdir, False)),
        Contender(
            COLD_EMPTY,
            lambda: _runreview(logdir, cache),
            prepare=lambda: shutil.rmtree(cache, ignore_errors=True),
        ),
        Contender(TBPARSE, lambda: _tbparse(logdir)),
        Contender(ACCUMULATOR, lambda: _accumulator(logdir)),
        Contender(FLOOR, lambda: _floor(logdir)),
    ]
    result = BenchResult("tb_cold", "TensorBoard: cold read", _setup(scale.tb, logdir))
    result.measurements = alternate(contenders, rounds)
    _check_points(result, _points(scale), [COLD, COLD_EMPTY, TBPARSE, ACCUMULATOR])
    cold, tbparse = result.get(COLD).median, result.get(TBPARSE).median
    _rates(result, _points(scale))
    result.ratios += [
        f"runreview cold vs tbparse: {ratio(tbparse, cold):.1f}x faster",
        f"runreview cold vs EventAccumulator: "
        f"{ratio(result.get(ACCUMULATOR).median, cold):.1f}x faster",
        f"runreview cold is {ratio(cold, result.get(FLOOR).median):.0f}x the raw-bytes floor",
    ]
    result.targets.append(
        at_least("cold read >= 15x faster than tbparse", ratio(tbparse, cold), 15.0)
    )
    result.targets.append(at_least("cold read ~1M points/s or better", _points(scale) / cold / 1e6,
                                   1.0, " M points/s"))  # fmt: skip
    return result


def bench_warm(
    logdir: Path, work: Path, scale: Scale, rounds: int, cold: BenchResult | None
) -> BenchResult:
    """Reopening unchanged files with the disk cache populated: a new source in this
    process, and a new process (time inside it, imports excluded)."""
    cache = work / "cache-warm"
    shutil.rmtree(cache, ignore_errors=True)
    _runreview(logdir, cache)  # populate
    contenders = [
        Contender(WARM, lambda: _runreview(logdir, cache)),
        Contender(WARM_PROCESS, lambda: _timed_child(logdir, cache)),
        Contender(FLOOR, lambda: _floor(logdir)),
    ]
    result = BenchResult("tb_warm", "TensorBoard: warm reopen", _setup(scale.tb, logdir))
    result.measurements = alternate(contenders, rounds)
    _check_points(result, _points(scale), [WARM, WARM_PROCESS])
    _rates(result, _points(scale))
    warm = result.get(WARM).median
    result.ratios.append(
        f"warm (same process) vs warm (new process): {result.get(WARM_PROCESS).median:.3f} s "
        f"in a new process, {warm:.3f} s in this one"
    )
    if cold is not None:
        for name in (COLD, TBPARSE, ACCUMULATOR):
            result.ratios.append(
                f"warm vs {name} (tb_cold, same invocation): "
                f"{ratio(cold.get(name).median, warm):.0f}x faster"
            )
    for name in (WARM, WARM_PROCESS):
        rate = _points(scale) / result.get(name).median / 1e6
        result.targets.append(at_least(f"{name}: >= 10M points/s", rate, 10.0, " M points/s"))
    return result


def _timed_child(logdir: Path, cache: Path) -> dict[str, Any]:
    facts = _child("read_tensorboard", logdir=str(logdir), cache=str(cache))
    return {"points": facts["rows"], "_seconds": facts["seconds"], "peak_mib": facts["peak_mib"]}


def bench_refresh(logdir: Path, work: Path, scale: Scale, rounds: int) -> BenchResult:
    """Live files: after each round appends 1% more points to every file, runreview
    refreshes (the same source, and a new source through the disk cache), against
    EventAccumulator's incremental Reload and a full tbparse read."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from runreview.sources.tensorboard import TensorBoardSource

    runs, tags, steps = scale.tb
    live = gen_tb.copy_logdir(logdir, work / "live")
    # Each runreview contender has its own disk cache: with one shared cache, whichever ran
    # first in a round would update the entry and the other would find nothing new to read.
    cache, same_cache = work / "cache-refresh", work / "cache-refresh-same"
    for folder in (cache, same_cache):
        shutil.rmtree(folder, ignore_errors=True)
    source = TensorBoardSource(live, cache=same_cache)
    source.read_history()
    _runreview(live, cache)  # fills the new source's cache, as an earlier app session would
    accs = [EventAccumulator(str(d), size_guidance={"scalars": 0}) for d in sorted(live.iterdir())]
    for acc in accs:
        acc.Reload()
    state = {"step": steps, "appended": 0}
    extra = gen_tb.one_percent(steps)

    def append() -> None:
        before = gen_tb.total_bytes(live)
        gen_tb.append_steps(live, runs, tags, range(state["step"], state["step"] + extra))
        state["step"] += extra
        state["appended"] = gen_tb.total_bytes(live) - before

    def same_source() -> dict[str, Any]:
        before = source.stats.bytes_read
        points = len(source.read_history())
        read = source.stats.bytes_read - before
        return {"points": points, "bytes_read": read, "appended": state["appended"]}

    def reload() -> dict[str, Any]:
        for acc in accs:
            acc.Reload()
        return {"points": sum(len(a.Scalars(t)) for a in accs for t in a.Tags()["scalars"])}

    contenders = [
        Contender("runreview refresh (same source)", same_source),
        Contender("runreview refresh (new source, disk cache)", lambda: _runreview(live, cache)),
        Contender("EventAccumulator.Reload (kept accumulators)", reload),
        Contender(TBPARSE + " (full re-read)", lambda: _tbparse(live)),
    ]
    result = BenchResult(
        "tb_refresh",
        "TensorBoard: refresh after 1% more points",
        _setup(scale.tb, logdir) + f"; each round appends {extra} steps x {tags} tags to each "
        f"of the {runs} files (1%), then every contender refreshes",
    )
    result.measurements = alternate(contenders, rounds, before_round=append)
    same = result.get("runreview refresh (same source)")
    read, appended = same.facts["bytes_read"], same.facts["appended"]
    result.ratios.append(f"same source read {read:,} bytes; {appended:,} bytes were appended")
    new = result.get("runreview refresh (new source, disk cache)")
    result.ratios.append(f"new source (disk cache) read {new.facts['bytes_read']:,} bytes")
    result.targets.append(
        _bytes_target("refresh reads only the new bytes (same source)", read, appended)
    )
    result.targets.append(
        _bytes_target(
            "refresh reads only the new bytes (new source, disk cache)",
            new.facts["bytes_read"],
            appended,
        )
    )
    return result


def _bytes_target(text: str, read: int, appended: int) -> Target:
    met = read == appended
    return Target(text, met, f"read {read:,} bytes, appended {appended:,}")


def bench_memory(logdir: Path, work: Path, scale: Scale) -> BenchResult:
    """Peak resident memory of read_history in a fresh process (cold, then warm)."""
    runs, tags, steps = scale.tb_memory
    cache = work / "cache-memory"
    shutil.rmtree(cache, ignore_errors=True)
    result = BenchResult("tb_memory", "TensorBoard: peak memory", _setup(scale.tb_memory, logdir))
    for label in ("cold, empty disk cache", "warm"):
        log(f"tb_memory: {label}")
        facts = _child("read_tensorboard", logdir=str(logdir), cache=str(cache))
        m_name = f"runreview read_history ({label})"
        result.measurements.append(Measurement(m_name, [facts["seconds"]], facts))
        result.targets.append(
            at_most(f"{m_name}: peak RSS < 2 GiB", facts["peak_mib"], 2048, " MiB")
        )
    result.ratios.append(
        f"{runs * tags * steps:,} points; history frame "
        f"{result.measurements[0].facts['frame_mib']:,.0f} MiB"
    )
    shutil.rmtree(cache, ignore_errors=True)
    return result


def _setup(shape: tuple[int, int, int], logdir: Path) -> str:
    runs, tags, steps = shape
    size = gen_tb.total_bytes(logdir)
    return (
        f"{runs} runs x {tags} tags x {steps:,} steps = {runs * tags * steps:,} points "
        f"({size / 2**20:,.0f} MiB of tensorboardX event files, one per run)"
    )


def _check_points(result: BenchResult, expected: int, names: list[str]) -> None:
    for name in names:
        got = result.get(name).facts.get("points")
        if got != expected:
            result.notes.append(f"INCOMPLETE: {name} returned {got} points, expected {expected}")


def _rates(result: BenchResult, points: int) -> None:
    for m in result.measurements:
        if "points" in m.facts:
            m.facts["M points/s"] = round(points / m.median / 1e6, 2)
