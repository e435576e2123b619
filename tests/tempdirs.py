"""Temp folders that another user can enter, for tests that drop root's privileges.

``TMPDIR`` may be a private folder (``mktemp -d`` makes it mode 0700, as a CI runner's or a
developer's per-session temp folder often is): a process running as another user (the
PostgreSQL server as ``postgres``, a block run as ``nobody``) could not open anything
inside it, however the folder itself is chmod-ed.
"""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path


def searchable_by_others(folder: Path) -> bool:
    """Whether every folder from ``/`` down to ``folder`` lets other users through."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in (folder, *folder.parents))


def reachable_temp_root() -> Path:
    """``TMPDIR`` when other users can reach it, else the system's shared temp folder."""
    for candidate in (Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")):
        if candidate.is_dir() and searchable_by_others(candidate):
            return candidate
    raise RuntimeError("no temp folder that other users can reach (/tmp is private too)")
