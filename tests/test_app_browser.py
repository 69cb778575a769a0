"""The explorer in headless Chromium (Debian's /usr/bin/chromium via Playwright): load the page, run an example,
drag the layer slider and check that the frame overlay image changes. Screenshots go to $SEATS_SCREENSHOTS_DIR
(or a pytest tmp dir).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from app import examples

from .helpers import launch_app

CHROMIUM = "/usr/bin/chromium"
LOAD_TIMEOUT_MS = 120_000
CHANGE_TIMEOUT_S = 60
SLIDER_TARGET = 0.7  # fraction of the slider's width to drag to (deep in Stage II for the 28-layer miniature)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"
    ),
    pytest.mark.skipif(not examples.gallery(), reason="no examples generated (run scripts/make_examples.py)"),
]


@pytest.fixture(scope="module")
def url():
    demo = launch_app("seats_app_browser")
    yield demo.local_url
    demo.close()


@pytest.fixture()
def shots(tmp_path) -> Path:
    d = Path(os.environ.get("SEATS_SCREENSHOTS_DIR", tmp_path))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _overlay_src(page) -> str | None:
    img = page.query_selector("#frame-overlay img")
    return img.get_attribute("src") if img else None


def test_example_then_scrub_changes_the_overlay(url, shots):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(url)
        page.get_by_text("SEATS Explorer").first.wait_for(timeout=LOAD_TIMEOUT_MS)
        page.screenshot(path=str(shots / "01_loaded.png"), full_page=True)

        page.get_by_text(examples.labels()[0]).first.click()
        page.wait_for_selector(".seats-card", timeout=LOAD_TIMEOUT_MS)
        page.wait_for_selector("#frame-overlay img", timeout=LOAD_TIMEOUT_MS)
        before = _overlay_src(page)
        assert before
        page.screenshot(path=str(shots / "02_example.png"), full_page=True)

        slider = page.locator("#layer-slider input[type=range]")
        box = slider.bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + 2, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * SLIDER_TARGET, y, steps=8)
        page.mouse.up()
        deadline = time.time() + CHANGE_TIMEOUT_S
        while time.time() < deadline and _overlay_src(page) == before:
            page.wait_for_timeout(250)
        after = _overlay_src(page)
        page.screenshot(path=str(shots / "03_scrubbed.png"), full_page=True)
        assert after and after != before, "moving the layer slider must re-render the frame overlay"
        value = int(slider.input_value())
        assert value > 1
        assert f"decoder layer {value}" in page.inner_text("body")

        page.get_by_role("tab", name="About").click()
        page.wait_for_selector("svg[aria-label^='SEATS']", timeout=LOAD_TIMEOUT_MS)
        page.screenshot(path=str(shots / "04_about.png"), full_page=True)
        browser.close()
