"""Finding kinds and severities have one home: :class:`FindingKind` and :class:`Severity`.

The scan below fails when a module of ``runreview/``, ``reports/`` or ``app/`` defines its
own ``KIND_...``/``SEVERITY_...`` string constant, or makes a finding with a kind or a
severity written as a string literal; a self-check on sample sources shows it can fail.
Members are strings, so what findings serialise to (JSON, CSV, text) is unchanged.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from runreview.contract import FileContext, Finding, FindingKind, Severity, findings_to_json

ROOT = Path(__file__).resolve().parent.parent
SCANNED = [ROOT / "runreview", ROOT / "reports", ROOT / "app"]

_CONSTANT = re.compile(r"^_?(KIND|SEVERITY)_[A-Z0-9_]+$")
_VALUES = {m.value for m in FindingKind} | {m.value for m in Severity}


def _is_text(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _callee(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def literal_kinds(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` for every finding kind or severity written as a string literal.

    Flags: ``KIND_x = "..."`` / ``SEVERITY_x = "..."`` definitions; ``kind=``/``severity=``
    given a string literal in a call that makes a finding (its name holds "finding") or
    given a known kind/severity value in any call; a known kind/severity value passed
    positionally to a call that makes a finding. (``sort_values(kind="stable")`` and
    ``ReportOptions(kind="audit")`` are not findings and pass.)
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AnnAssign) and _is_text(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and _CONSTANT.match(target.id):
                    found.append((node.lineno, f"{target.id} = {node.value.value!r}"))
        elif isinstance(node, ast.Call):
            makes_finding = "finding" in _callee(node).lower()
            for kw in node.keywords:
                named = kw.arg in ("kind", "severity") and _is_text(kw.value)
                if named and (makes_finding or kw.value.value in _VALUES):
                    found.append((kw.value.lineno, f"{kw.arg}={kw.value.value!r}"))
            if makes_finding:
                for arg in node.args:
                    if _is_text(arg) and arg.value in _VALUES:
                        found.append((arg.lineno, f"positional {arg.value!r}"))
    return sorted(found)


SAMPLE = """
KIND_WALK = "walk"
SEVERITY_INFO = "info"
frame.sort_values("x", kind="stable")
options = ReportOptions(kind="audit")
Finding(Severity.WARNING, uri, "message", kind="brand_new_kind")
Finding("warning", uri, "message")
ctx.finding(Severity.ERROR, "resync", "message")
replace(finding, kind="io_error")
Finding(severity="error", source_uri=uri, message="m", kind=FindingKind.WALK)
Finding(Severity.INFO, uri, "m", kind=FindingKind.SOURCE)
"""


def test_scan_catches_literal_kinds_in_a_sample() -> None:
    assert literal_kinds(SAMPLE) == [
        (2, "KIND_WALK = 'walk'"),
        (3, "SEVERITY_INFO = 'info'"),
        (6, "kind='brand_new_kind'"),
        (7, "positional 'warning'"),
        (8, "positional 'resync'"),
        (9, "kind='io_error'"),
        (10, "severity='error'"),
    ]


def test_no_module_spells_a_kind_or_severity_as_a_literal() -> None:
    offenders = []
    for folder in SCANNED:
        for path in sorted(folder.rglob("*.py")):
            for line, what in literal_kinds(path.read_text(encoding="utf-8")):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert offenders == [], "use FindingKind / Severity (runreview.contract):\n" + "\n".join(
        offenders
    )


@pytest.mark.parametrize("enum", [FindingKind, Severity])
def test_values_are_unique_and_spelled_like_their_names(enum) -> None:
    members = enum.__members__  # aliases (a repeated value) included
    values = [m.value for m in members.values()]
    assert len(set(values)) == len(values) == len(members)
    assert all(value == name.lower() for name, value in zip(members, values, strict=True))


def test_finding_kind_keeps_the_default_and_every_kind_in_use() -> None:
    assert Finding(Severity.INFO, "u", "m").kind == FindingKind.PROBLEM == "problem"
    assert {"walk", "resync", "io_error", "side_file", "unreadable", "file_replaced"} <= {
        m.value for m in FindingKind
    }


def test_members_serialise_as_their_plain_strings() -> None:
    ctx = FileContext(path="/logs/a/ev", source_uri="tensorboard:/logs", run_id="a")
    made = ctx.finding(Severity.WARNING, FindingKind.ZERO_FILLED_TAIL, "tail", offset=7)
    plain = Finding(
        "warning", "tensorboard:/logs", "tail", "/logs/a/ev", 7, None, "a", "zero_filled_tail"
    )
    expected = (
        '[\n  {\n    "severity": "warning",\n    "source_uri": "tensorboard:/logs",\n'
        '    "message": "tail",\n    "path": "/logs/a/ev",\n    "offset": 7,\n'
        '    "record": null,\n    "run_id": "a",\n    "kind": "zero_filled_tail"\n  }\n]'
    )
    assert findings_to_json([made]) == findings_to_json([plain]) == expected
    assert json.dumps(made.to_dict(), sort_keys=True) == json.dumps(plain.to_dict(), sort_keys=True)
    assert made == plain and hash(made) == hash(plain) and {made: 1}[plain] == 1
    assert made.line() == plain.line() == "WARNING: /logs/a/ev, run a, offset 7: tail"
    kind = made.kind
    assert (str(kind), f"{kind}", format(kind, ">17")) == (
        "zero_filled_tail",
        "zero_filled_tail",
        " zero_filled_tail",
    )
    frame = pd.DataFrame([made.to_dict(), plain.to_dict()])
    assert (
        frame.to_csv(index=False).splitlines()[1:]
        == ["warning,tensorboard:/logs,tail,/logs/a/ev,7,,a,zero_filled_tail"] * 2
    )
    assert frame["kind"].astype(str).tolist() == ["zero_filled_tail"] * 2
    assert frame.to_json(orient="records") == pd.DataFrame([plain.to_dict()] * 2).to_json(
        orient="records"
    )
