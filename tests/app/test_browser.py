"""The app served by ``streamlit run`` and driven in real Chromium (Playwright).

Every page is opened by its URL on the demo workspace and on a store the app has never
seen (added through the URL, the demo switched off); a screenshot of each is saved under
``test-artifacts/`` for a person to look at. Chromium comes from Debian
(``apt-get install chromium``; ``make test`` installs it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.app.conftest import REPO
from tests.app.servers import free_port, stop, wait_healthy

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
# (url path, heading, what must render: SELECTORS keys)
PAGES = [
    ("", "Overview", ("table", "chart")),
    ("runs", "Runs", ("table",)),
    ("leaderboard", "Leaderboard", ("table", "chart")),
    ("overlays", "Metric overlays", ("chart",)),
    ("confusion", "Confusion matrices", ("table", "chart")),
    ("environment", "Environment diff", ("table",)),
    ("importance", "Parameter importance", ("table", "chart")),
    ("report", "Report", ("generate",)),
]
SELECTORS = {
    "table": "[data-testid='stDataFrame']",
    "chart": "[data-testid='stVegaLiteChart'] :is(svg.marks, canvas.marks)",
    "generate": "[data-testid='stButton'] button:has-text('Generate')",
}
BUSY = "[data-testid='stStatusWidget'], [data-testid='stElementContainer'][data-stale='true']"


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory) -> Iterator[str]:
    """``streamlit run app/main.py`` on a free port, serving the demo workspace."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    env = dict(os.environ)
    env.update(MLFLOW_TRACKING_URI=demo.tracking_uri, RUNREVIEW_LOGDIR=demo.logdir)
    command = [
        sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
        "--server.headless", "true", "--server.address", "127.0.0.1",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log, time.monotonic() + 60)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "Chromium is missing: apt-get install -y chromium (make test does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _idle(page, deadline: float) -> None:
    """Wait until the script run has finished: no running indicator and no stale element,
    three polls in a row."""
    quiet = 0
    while time.monotonic() < deadline:
        quiet = quiet + 1 if page.locator(BUSY).count() == 0 else 0
        if quiet == 3:
            return
        page.wait_for_timeout(100)
    pytest.fail("the app kept running")


def _open(page, url: str, heading: str, expects: tuple[str, ...]) -> None:
    page.goto(url)
    page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=30_000)
    for kind in expects:
        page.locator(SELECTORS[kind]).first.wait_for(timeout=30_000)
    _idle(page, time.monotonic() + 30)


def _check_page(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"app-{name}.png"), full_page=True)
    assert page.locator("[data-testid='stException']").count() == 0, name
    assert page.get_by_text("Page not found").count() == 0, name


@pytest.mark.parametrize("store", ["demo", "unseen"])
def test_every_page_renders_a_table_and_a_chart_in_chromium(server, browser, store, demo, unseen):
    query = ""
    if store == "unseen":  # add the never-seen store through the URL, switch the demo off
        query = "?" + urlencode(
            [("src", unseen.tracking_uri), ("src", unseen.logdir)]
            + [("off", demo.tracking_uri), ("off", demo.logdir)]
        )
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # RELIABILITY.md D3: the unseen store's run names hold markdown links and images to
    # https://attacker.invalid and a <script>: the browser must ask nothing of anyone but
    # the app, and run no script from store data.
    requested: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    for path, heading, expects in PAGES:
        _open(page, f"{server}/{path}{query}", heading, expects)
        _check_page(page, f"{store}-{path or 'overview'}")
        if store == "unseen":
            sources = page.locator("[data-testid='stSidebar'] [data-testid='stCheckbox']")
            assert sources.count() == 4  # two configured (off), two added (on)
    page.close()
    foreign = [u for u in requested if not u.startswith((server, "data:", "blob:"))]
    assert foreign == [] and dialogs == []
    assert requested  # the recorder saw the app's own requests


def test_select_runs_switch_pages_and_download_a_report_in_chromium(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _open(page, f"{server}/runs", "Runs", ("table",))
    grid = page.locator("[data-testid='stDataFrame']").first.bounding_box()
    for row in (0, 2):  # the row-selection checkboxes of the first and third row
        page.mouse.click(grid["x"] + 16, grid["y"] + 35 * (row + 1) + 17)
        _idle(page, time.monotonic() + 20)
    page.get_by_text("2 run(s) selected").wait_for(timeout=10_000)
    assert page.url.count("run=") == 2

    page.get_by_role("link", name="Metric overlays").click()
    page.locator(SELECTORS["chart"]).first.wait_for(timeout=30_000)
    _idle(page, time.monotonic() + 20)
    assert page.url.count("run=") == 2  # the selection survived the page switch
    chips = page.locator("[data-testid='stMainBlockContainer'] [data-tag]")
    assert chips.count() == 2 + 1  # two runs and the one metric
    _check_page(page, "selected-overlays")

    page.get_by_role("link", name="Report").click()
    page.get_by_role("radio", name="Model progress summary").click()
    _idle(page, time.monotonic() + 20)
    page.get_by_role("button", name="Generate").click()
    # RELIABILITY.md D6: close the tab while the report is being built (its WebSocket
    # drops), then open the job's URL in a new tab: the finished report is there.
    deadline = time.monotonic() + 20
    while "job=" not in page.url and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert "job=" in page.url
    job_url = page.url
    page.close()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(job_url)
    download_button = page.get_by_role("button", name="Download PDF")
    download_button.wait_for(timeout=60_000)
    _check_page(page, "report-ready")
    with page.expect_download() as info:
        download_button.click()
    pdf = Path(info.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert page.get_by_text(hashlib.sha256(pdf).hexdigest()).count() == 1  # what the page said
    page.close()
