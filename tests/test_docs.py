"""The design lives in the repository: every reliability case id that the code or the
tests cite (A9, B18, C15, D5, ...) is defined in docs/RELIABILITY.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITED = re.compile(r"\b([A-D]\d{1,2})\b")
DEFINED = re.compile(r"^#+ ([A-D]\d{1,2})\b", re.MULTILINE)
#: Tokens of the same shape that are not case ids: the C0 control-character block.
NOT_CASES = {"C0"}


def _cited() -> dict[str, str]:
    cited = {}
    for folder in ("runreview", "reports", "app", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for case in CITED.findall(path.read_text(encoding="utf-8")):
                cited.setdefault(case, str(path.relative_to(ROOT)))
    return cited


def test_every_cited_case_id_is_defined_in_the_reliability_doc():
    defined = set(DEFINED.findall((ROOT / "docs" / "RELIABILITY.md").read_text()))
    missing = {c: where for c, where in _cited().items() if c not in defined | NOT_CASES}
    assert missing == {}
    assert {"A9", "B18", "C15", "D5"} <= defined  # the scan reads the headings


def test_the_readme_links_both_documents():
    readme = (ROOT / "README.md").read_text()
    assert "docs/ARCHITECTURE.md" in readme and "docs/RELIABILITY.md" in readme
