"""Architecture rules: dependencies point app -> reports -> runreview."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_package_never_imports_streamlit_or_app():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "runreview").rglob("*.py")
        if _imports(p) & {"streamlit", "app", "reports"}
    ]
    assert offenders == []


def test_reports_never_import_the_app():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "reports").rglob("*.py")
        if _imports(p) & {"streamlit", "app"}
    ]
    assert offenders == []


def test_importing_the_core_loads_no_streamlit_weasyprint_or_mlflow():
    code = (
        "import sys, runreview, runreview.cli, runreview.contract, runreview.workspace;"
        "print(sorted(m for m in ('streamlit', 'weasyprint', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
