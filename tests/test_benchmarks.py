"""Every benchmark runs once at the tiny scale and reports numbers (no speed is asserted:
benchmarks are measured by ``make bench``, not by the tests)."""

from __future__ import annotations

import math

from benchmarks.__main__ import NAMES, main
from benchmarks.common import DEFAULT_RESULTS


def test_every_benchmark_runs_at_tiny_scale_and_reports(tmp_path):
    before = DEFAULT_RESULTS.read_bytes() if DEFAULT_RESULTS.exists() else None
    results_md = tmp_path / "RESULTS.md"
    args = ["--scale", "tiny", "--rounds", "1", "--data", str(tmp_path / "data")]
    results = main([*args, "--results", str(results_md)])

    assert [r.name for r in results] == list(NAMES)
    for result in results:
        assert result.measurements and result.targets, (result.name, result.notes)
        for m in result.measurements:
            assert m.seconds and all(math.isfinite(s) and s > 0 for s in m.seconds), m
        assert not [n for n in result.notes if n.startswith("INCOMPLETE")], result.notes
    text = results_md.read_text()
    for name in NAMES:
        assert f"(`{name}`)" in text
    assert "Load average" in text and "tbparse 0.0.9" in text
    after = DEFAULT_RESULTS.read_bytes() if DEFAULT_RESULTS.exists() else None
    assert after == before  # the committed results are never rewritten by tests
