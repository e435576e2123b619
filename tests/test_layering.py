"""The architecture as a declared contract: layers, and no import cycle anywhere.

Every module of the three folders that make up the installed package (``runreview/``,
``app/`` as ``runreview.app``, ``reports/`` as ``runreview.reports``) sits in one layer of
:data:`LAYERS`. A module may import from its own layer group and from layers below it,
never from above. Imports inside functions count too: a cycle hidden in a function-level
import is still a cycle. (import-linter cannot be used here: its graph builder walks a
package's own folder, and two of our subpackages live in folders beside it.)
"""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"runreview": ROOT / "runreview", "runreview.app": ROOT / "app"}
FOLDERS["runreview.reports"] = ROOT / "reports"

#: Highest first. Each entry is a group of siblings (a module and everything below it in
#: the package tree); see docs/ARCHITECTURE.md.
LAYERS: list[tuple[str, ...]] = [
    ("runreview.app",),
    ("runreview.reports",),
    ("runreview.cli",),
    ("runreview.__init__", "runreview.demo", "runreview.capture"),
    ("runreview.workspace",),
    ("runreview.charts",),
    ("runreview.analysis",),
    ("runreview.sources",),
    ("runreview.contract",),
    ("runreview.settings", "runreview.redact", "runreview.progress", "runreview.version"),
]


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if package == "runreview" and parts[0] in ("app", "reports"):
                continue
            found[".".join((package, *parts))] = path
    return found


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported name lands in (``pkg.mod.func`` -> ``pkg.mod``)."""
    while name:
        if name in modules:
            return name
        if f"{name}.__init__" in modules:
            return f"{name}.__init__"
        name = name.rpartition(".")[0]
    return None


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules ``name`` imports. ``from pkg import mod`` depends on ``pkg.mod`` (and
    not on ``pkg/__init__``, whose own imports are counted for it)."""
    here = name.split(".")[:-1]  # the package a module (or __init__) is in
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*here[: len(here) - node.level + 1], *filter(None, [base])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                submodule = full in modules or f"{full}.__init__" in modules
                names.add(full if submodule else base)
    targets = {_target(n, modules) for n in names}
    return {t for t in targets if t and t != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int | None:
    for index, group in enumerate(LAYERS):
        for root in group:
            if module == root or module.startswith(f"{root}."):
                return index
    return None


def test_every_module_has_a_layer():
    assert [m for m in _graph() if _layer(m) is None] == []


def test_imports_point_down_the_layers():
    upward = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in sorted(targets)
        if (_layer(module) or 0) > (_layer(target) or 0)
    ]
    assert upward == []


def test_there_is_no_import_cycle():
    try:
        tuple(TopologicalSorter(_graph()).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_the_checker_sees_function_level_imports_and_cycles(tmp_path):
    """The contract can fail: a cycle through a function-level import is found."""
    (tmp_path / "a.py").write_text("def f():\n    from pkg.b import g\n")
    (tmp_path / "b.py").write_text("from pkg import a\n")
    modules = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py"}
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}


def test_importing_the_core_loads_no_streamlit_weasyprint_or_mlflow():
    code = (
        "import sys, runreview, runreview.cli, runreview.contract, runreview.workspace;"
        "print(sorted(m for m in ('streamlit', 'weasyprint', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
