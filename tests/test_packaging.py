"""What ``pip install runreview`` installs: the core, the app and the reports under the
product's name (never top-level packages called ``app`` or ``reports``)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


FOLDERS = (("runreview", "runreview"), ("runreview.app", "app"), ("runreview.reports", "reports"))


def _folder(package: str) -> Path:
    mapped = SETUPTOOLS["package-dir"]
    for prefix in sorted(mapped, key=len, reverse=True):
        if package == prefix or package.startswith(f"{prefix}."):
            rest = package.removeprefix(prefix).lstrip(".")
            return ROOT / mapped[prefix] / rest.replace(".", "/")
    return ROOT / package.replace(".", "/")


def test_every_package_folder_is_installed_under_the_product_name():
    found = set()
    for package, folder in FOLDERS:
        found.update(
            ".".join((package, *p.parent.relative_to(ROOT / folder).parts))
            for p in (ROOT / folder).rglob("__init__.py")
        )
    listed = set(SETUPTOOLS["packages"])
    assert listed == found
    assert all(p == "runreview" or p.startswith("runreview.") for p in listed)
    assert all((_folder(p) / "__init__.py").exists() for p in listed)


def test_page_scripts_and_templates_are_package_data():
    data = SETUPTOOLS["package-data"]
    for package, patterns in data.items():
        for pattern in patterns:
            assert list(_folder(package).glob(pattern)), (package, pattern)
    assert "views/*.py" in data["runreview.app"]


CHECK_FROM_ELSEWHERE = """
import importlib.util, sys
for name in ("app", "reports"):
    assert importlib.util.find_spec(name) is None, name  # not importable by generic names
from runreview.reports import render
render.template_environment().get_template("weekly.html")
assert render.stylesheet()
assert importlib.util.find_spec("runreview.app.main").origin.endswith("main.py")
import runreview.reports.cli, runreview.app.loaders
print("ok")
"""


def test_the_installed_package_works_from_any_folder(tmp_path):
    """From the repository root, ``app`` and ``reports`` are importable as folders, which
    hid a template loader still looking for a package named ``reports``."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", CHECK_FROM_ELSEWHERE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
