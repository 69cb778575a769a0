"""The Fusion view and the tour in headless Chromium (issue 23), at 1366x900 and 390x844: the Fusion view redraws
with the slider; a click on a patch marks it and lists what it attends to; each tour step changes the tab and the
layer and the tour is on screen without scrolling; on a phone no two plot titles overlap and nothing is wider
than the viewport. Screenshots go to $SEATS_SCREENSHOTS_DIR (or a pytest tmp dir); times are printed.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from app import examples
from app.ui import TAB_LABELS
from tests.conftest import CHROMIUM
from tests.helpers import launch_app

TIMEOUT_MS = 40_000
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
FUSION_LAYER = re.compile(r"Decoder layer (\d+) of")
SLACK_PX = 1  # sub-pixel rounding of bounding boxes

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing"),
    pytest.mark.skipif(not examples.gallery(), reason="no examples generated (run scripts/make_examples.py)"),
]


@pytest.fixture(scope="module")
def url():
    demo = launch_app("seats_app_fusion_browser")
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    d = Path(os.environ.get("SEATS_SCREENSHOTS_DIR", "/tmp/shots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _open(browser, url, viewport):
    page = browser.new_page(viewport=viewport, is_mobile=viewport["width"] < 640)
    page.goto(url, wait_until="load")
    page.get_by_text("SEATS Explorer").first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)  # the page reports its width (narrow) on load
    return page


def _load_example(page, label: str) -> float:
    t0 = time.perf_counter()
    page.get_by_text(label).first.click()
    page.wait_for_function(
        "() => document.querySelector('.seats-cards') && document.querySelector('#frame-overlay img')",
        timeout=TIMEOUT_MS,
    )
    return time.perf_counter() - t0


def _src(page, sel: str) -> str | None:
    img = page.query_selector(f"{sel} img")
    return img.get_attribute("src") if img else None


def _wait_change(page, sel: str, before, timeout_s: float = 60) -> str | None:
    deadline = time.time() + timeout_s
    while time.time() < deadline and _src(page, sel) == before:
        page.wait_for_timeout(50)
    return _src(page, sel)


def _fusion_layer(page) -> int:
    m = FUSION_LAYER.search(page.inner_text("#fusion-caption"))
    return int(m.group(1)) if m else -1


def _slider_value(page) -> int:
    return int(page.locator("#layer-slider input[type=range]").input_value())


def _selected_tab(page) -> str:
    return page.locator("[role=tab][aria-selected=true]").first.inner_text().strip()


def test_fusion_view_redraws_with_the_slider_and_a_click_lists_what_a_patch_attends_to(browser, url, shots):
    page = _open(browser, url, DESKTOP)
    label = examples.labels()[0]
    print(f"\nexample click -> cards and pictures: {_load_example(page, label):.2f} s")
    page.screenshot(path=str(shots / "desktop_01_example_tour.png"))
    page.get_by_role("tab", name="Fusion").click()
    page.wait_for_selector("#fusion-frames img", timeout=TIMEOUT_MS)
    page.wait_for_function("() => /Decoder layer/.test(document.querySelector('#fusion-caption').innerText)")
    before, layer_before = _src(page, "#fusion-frames"), _fusion_layer(page)
    number = page.locator("#layer-slider input[type=number]")
    t0 = time.perf_counter()
    number.fill("12")
    number.press("Enter")
    after = _wait_change(page, "#fusion-frames", before)
    print(f"slider move -> Fusion redrawn: {time.perf_counter() - t0:.2f} s")
    assert after != before and _fusion_layer(page) == 12 != layer_before
    page.screenshot(path=str(shots / "desktop_02_fusion_layer12.png"), full_page=True)

    before = _src(page, "#fusion-frames")
    page.get_by_label("Full model").check()  # every patch is alive in the full run
    after = _wait_change(page, "#fusion-frames", before)
    img = page.locator("#fusion-frames img")
    img.scroll_into_view_if_needed()
    box = img.bounding_box()
    t0 = time.perf_counter()
    page.mouse.click(
        box["x"] + box["width"] * 0.12, box["y"] + box["height"] * 0.25
    )  # first thumbnail's patch
    page.wait_for_function(
        "() => document.querySelector('#fusion-token').innerText.includes('(red)')", timeout=TIMEOUT_MS
    )
    print(f"patch click -> marked and listed: {time.perf_counter() - t0:.2f} s")
    text = page.inner_text("#fusion-token")
    assert "(red)" in text and "patch (" in text and "attends to (cyan)" in text
    assert "Stage II" in text or "not scored by Stage II" in text
    assert _src(page, "#fusion-frames") != after  # the mark is drawn
    page.screenshot(path=str(shots / "desktop_03_fusion_click.png"), full_page=True)

    page.close()


def test_each_tour_step_changes_the_tab_and_the_layer(browser, url, shots):
    page = _open(browser, url, DESKTOP)
    _load_example(page, examples.labels()[0])
    tour = page.locator("#seats-tour")
    tour.wait_for(timeout=TIMEOUT_MS)
    page.evaluate("() => window.scrollTo(0, 0)")  # as a visitor arrives: the tour must show without scrolling
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "desktop_04_tour_step1.png"))
    box = tour.bounding_box()
    assert box["y"] >= 0 and box["y"] + 60 <= DESKTOP["height"], f"the tour starts at y={box['y']:.0f}"
    seen = [(_selected_tab(page), _slider_value(page))]
    assert seen[0] == ("Layers", 1)
    for step in (2, 3):
        page.click("#tour-next")
        page.wait_for_function(
            f"() => document.querySelector('#seats-tour').innerText.includes('step {step} of 3')",
            timeout=TIMEOUT_MS,
        )
        page.wait_for_timeout(1000)
        seen.append((_selected_tab(page), _slider_value(page)))
        page.screenshot(path=str(shots / f"desktop_04_tour_step{step}.png"))
    assert [t for t, _ in seen] == ["Layers", "Fusion", "Speed"]
    assert len({layer for _, layer in seen}) == 3, seen  # each step moves the slider
    assert page.locator("#tour-next").inner_text().strip() == "Done"
    page.click("#tour-next")
    page.wait_for_timeout(800)
    assert not page.locator("#seats-tour").is_visible()
    page.close()


def _overlaps(boxes):
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if (
                a["x"] + a["width"] > b["x"] + SLACK_PX
                and b["x"] + b["width"] > a["x"] + SLACK_PX
                and a["y"] + a["height"] > b["y"] + SLACK_PX
                and b["y"] + b["height"] > a["y"] + SLACK_PX
            ):
                return a, b
    return None


def test_on_a_phone_titles_never_overlap_and_nothing_is_wider_than_the_screen(browser, url, shots):
    page = _open(browser, url, PHONE)
    _load_example(page, examples.labels()[0])
    page.screenshot(path=str(shots / "phone_01_example.png"), full_page=True)
    for name in TAB_LABELS:
        page.get_by_role("tab", name=name).click()
        page.wait_for_timeout(900)
        titles = page.eval_on_selector_all(
            ".js-plotly-plot .gtitle, .js-plotly-plot .annotation-text",
            "els => els.filter(e => e.getClientRects().length && e.textContent.trim()).map(e => {"
            " const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height,"
            " text: e.textContent}; })",
        )
        clash = _overlaps([t for t in titles if t["width"] > 0])
        assert clash is None, f"{name}: {clash}"
        wide = page.evaluate(
            f"() => [...document.querySelectorAll('body *')].filter(e => e.getClientRects().length &&"
            f" e.getBoundingClientRect().right > {PHONE['width']} + {SLACK_PX}).map(e => e.tagName + '.' +"
            " (e.className.baseVal ?? e.className) + '#' + e.id).slice(0, 5)"
        )
        assert not wide, f"{name}: wider than the screen: {wide}"
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(shots / f"phone_tab_{name}.png"), full_page=True)
    page.close()
