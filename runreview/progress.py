"""Progress callbacks: ``progress(message, fraction)``, and how long reads report through them.

A callback is also the way to cancel a long read: whatever it raises (Streamlit raises
its stop exception from ``st.progress`` when the user presses Stop; a test or a caller
may raise its own) propagates out of the read. Sources call it only between units of
work (run directories listed or read), never in the middle of updating what they keep,
so a cancelled read leaves nothing half-done: the next read simply goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Progress = Callable[[str, float], None]

#: A long loop reports after this many items, or after this long, whichever comes first.
REPORT_EVERY = 1000
REPORT_SECONDS = 0.25


def no_progress(message: str, fraction: float) -> None:
    """The default callback: say nothing."""


def scaled(progress: Progress, lo: float, hi: float) -> Progress:
    """``progress`` with fractions 0..1 mapped onto ``lo``..``hi`` (clamped to 0..1 first)."""

    def report(message: str, fraction: float) -> None:
        progress(message, lo + (hi - lo) * min(1.0, max(0.0, fraction)))

    return report


class Ticker:
    """Decides when a loop over many items reports: every ``every`` items, or when
    ``seconds`` have passed since the last report (so a slow item, or a slow disk, still
    lets the caller see progress and cancel)."""

    def __init__(self, every: int = REPORT_EVERY, seconds: float = REPORT_SECONDS) -> None:
        self.every = every
        self.seconds = seconds
        self._count = 0
        self._last_count = 0
        self._last_time = time.monotonic()

    def due(self) -> bool:
        """Count one item; True when it is time to report."""
        self._count += 1
        now = time.monotonic()
        if self._count - self._last_count >= self.every or now - self._last_time >= self.seconds:
            self._last_count, self._last_time = self._count, now
            return True
        return False
