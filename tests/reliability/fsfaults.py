"""Output folders that refuse writes: read-only, and full.

As root (CI here runs as root) file permissions do not stop a write, so a real read-only
or tiny tmpfs is mounted; an ordinary user gets a 0500 folder and, for a full disk, a child
process whose file-size limit (RLIMIT_FSIZE) makes the write fail the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _mount(folder: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    return done.returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], check=True, capture_output=True)


@contextmanager
def read_only_folder(parent: Path) -> Iterator[Path]:
    """An empty folder no one can write to (a read-only mount as root, else mode 0500)."""
    folder = parent / "read-only"
    folder.mkdir()
    mounted = _mount(folder, "ro,size=64k")
    if not mounted:
        folder.chmod(0o500)
    try:
        yield folder
    finally:
        if mounted:
            _umount(folder)
        folder.chmod(0o700)


@contextmanager
def full_folder(parent: Path, size_kb: int = 64) -> Iterator[tuple[Path, bool]]:
    """An empty folder on a ``size_kb`` tmpfs as root: (folder, True); else (folder, False)
    and the caller writes through :func:`write_with_size_limit`."""
    folder = parent / "full"
    folder.mkdir()
    mounted = _mount(folder, f"size={size_kb}k")
    try:
        yield folder, mounted
    finally:
        if mounted:
            _umount(folder)


def write_with_size_limit(target: Path, size: int, limit: int) -> subprocess.CompletedProcess:
    """``write_atomically`` of ``size`` bytes in a child process that may write at most
    ``limit`` bytes per file (SIGXFSZ ignored, so the write fails with EFBIG)."""
    code = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from runreview.reports.pdf import ReportRenderError, write_atomically\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "try:\n"
        f"    write_atomically(b'x' * {size}, Path(sys.argv[1]))\n"
        "except ReportRenderError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(2)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(target)], capture_output=True, text=True, timeout=60
    )
