"""Measurements that need a fresh process: ``python -m benchmarks.child TASK JSON``.

Prints one JSON line: seconds of the measured part (imports excluded), rows, and the
process's peak resident memory: ``VmHWM`` of /proc/self/status. Not ``ru_maxrss``: Linux
keeps that across ``exec``, so a child of a big parent would report the parent's size.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def _peak_mib() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def read_tensorboard(logdir: str, cache: str | bool) -> dict:
    """``TensorBoardSource(logdir, cache=cache).read_history()`` in this process."""
    from runreview.sources.tensorboard import TensorBoardSource

    before = _peak_mib()
    start = time.perf_counter()
    source = TensorBoardSource(logdir, cache=cache)
    history = source.read_history()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": len(history),
        "frame_mib": history.memory_usage(deep=False).sum() / 2**20,
        "peak_mib": _peak_mib(),
        "peak_before_mib": before,
        "bytes_read": source.stats.bytes_read,
        "cache_hits": source.stats.cache_hits,
    }


TASKS = {"read_tensorboard": read_tensorboard}


def main() -> None:
    """Run the task named in argv with the JSON keyword arguments after it."""
    task, args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(TASKS[task](**args)), flush=True)


if __name__ == "__main__":
    main()
