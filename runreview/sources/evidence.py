"""Parsers shared by every source for the evidence files runs carry.

requirements.txt (packages) and confusion_matrix.json (``runreview.capture``'s format) look
the same whichever store holds them, so every source reads them with these functions.
"""

from __future__ import annotations

import re

import numpy as np

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*$")


def normalise_package(name: str) -> str:
    """A package name in PEP 503 form (``Scikit_Learn`` -> ``scikit-learn``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirements(text: str) -> dict[str, str]:
    """``name -> version`` from requirements.txt lines, names in PEP 503 form.

    ``name==1.2`` gives ``"1.2"``; any other specifier is kept as written (``">=1.2"``);
    a bare name gives ``""``. Comments, options (``-r``, ``-e``, ``--hash``), environment
    markers and URLs are skipped.
    """
    packages: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line or line.startswith("-") or "://" in line or " @ " in line:
            continue
        match = _REQUIREMENT.match(line)
        if match:
            name, spec = match.groups()
            packages[normalise_package(name)] = spec[2:].strip() if spec.startswith("==") else spec
    return packages


def numeric_counts(counts: np.ndarray) -> np.ndarray:
    """Counts as numbers (float64 unless they already are integers or floats)."""
    return counts if counts.dtype.kind in "iuf" else counts.astype(np.float64)


def matrix_from_json(data: object) -> tuple[list[str], np.ndarray]:
    """Labels and counts from ``{"labels": [...], "matrix": [[...]]}``; ValueError if bad."""
    if not isinstance(data, dict) or "matrix" not in data:
        raise ValueError('expected an object with "matrix" (and "labels")')
    counts = numeric_counts(np.asarray(data["matrix"]))
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.size == 0:
        raise ValueError(f"matrix must be square and non-empty, got shape {counts.shape}")
    labels = [str(v) for v in data.get("labels") or range(counts.shape[0])]
    if len(labels) != counts.shape[0]:
        raise ValueError(f"{len(labels)} labels for a {counts.shape[0]}x{counts.shape[0]} matrix")
    return labels, counts
