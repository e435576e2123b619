"""Reading the small side files a run folder carries (environment, requirements,
confusion matrices), size-capped: TensorBoard and W&B read theirs through these functions.

A side file larger than :data:`MAX_SIDE_FILE_BYTES` is not read.
"""

from __future__ import annotations

import json
import os
from typing import Any

#: Side files (environment.json, confusion_matrix.json, requirements.txt, W&B metadata and
#: tables) above this are not read.
MAX_SIDE_FILE_BYTES = 16 * 1024 * 1024


def read_side_file(path: str) -> bytes | None:
    """The bytes of a small side file; None when absent. Raises OSError or ValueError."""
    if not os.path.isfile(path):
        return None
    if os.path.getsize(path) > MAX_SIDE_FILE_BYTES:
        raise ValueError(f"larger than {MAX_SIDE_FILE_BYTES} bytes: not read")
    with open(path, "rb") as fh:
        return fh.read(MAX_SIDE_FILE_BYTES + 1)


def read_json_side_file(path: str) -> Any:
    """A JSON side file (None when absent). Raises OSError or ValueError."""
    raw = read_side_file(path)
    return None if raw is None else json.loads(raw)
