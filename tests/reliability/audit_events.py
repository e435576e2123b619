"""Python audit events (PEP 578) recorded while a block runs: the proof that a refused path
was never opened or listed, that no socket was opened and that nothing was unpickled.

An audit hook cannot be removed, so one hook is installed per process and records only
while a :meth:`EventRecorder.recording` block is active.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Events that touch the filesystem, the network or unpickle.
WATCHED = frozenset(
    {
        "open", "os.listdir", "os.scandir", "os.walk", "os.mkdir", "os.remove", "os.rename",
        "shutil.copyfile", "socket.connect", "socket.getaddrinfo", "urllib.Request",
        "http.client.connect", "pickle.find_class", "subprocess.Popen", "os.system",
    }
)  # fmt: skip


class EventRecorder:
    """Collects ``(event, args)`` of :data:`WATCHED` events while recording."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self._active = False
        self._lock = threading.Lock()

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        """The audit hook (cheap when not recording)."""
        if self._active and event in WATCHED:
            with self._lock:
                self.events.append((event, tuple(str(a)[:300] for a in args)))

    @contextmanager
    def recording(self) -> Iterator[EventRecorder]:
        """Record events for the duration of the block (earlier events are dropped)."""
        self.events = []
        self._active = True
        try:
            yield self
        finally:
            self._active = False

    def named(self, *names: str) -> list[tuple[str, tuple[Any, ...]]]:
        """The recorded events among ``names``."""
        return [e for e in self.events if e[0] in names]

    def mentioning(self, text: str) -> list[tuple[str, tuple[Any, ...]]]:
        """The recorded events whose arguments contain ``text``."""
        return [e for e in self.events if any(text in a for a in e[1])]


_RECORDER: EventRecorder | None = None


def recorder() -> EventRecorder:
    """The process's recorder (its hook is installed on first use)."""
    global _RECORDER
    if _RECORDER is None:
        _RECORDER = EventRecorder()
        sys.addaudithook(_RECORDER.hook)
    return _RECORDER
