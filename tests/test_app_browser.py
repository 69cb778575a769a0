"""The explorer in headless Chromium (Debian's /usr/bin/chromium via Playwright), one server and one browser for
the module: an example and a drag redraw the frames; a typed layer and the arrow keys redraw them too and the
caption names the layer drawn; of two examples clicked in quick succession the second is shown; a refused Run
keeps the last result with one message; every card of every example marks right or wrong; every plot fills its
panel after its tab opens; at 390 px every tab is on screen.
Screenshots go to $SEATS_SCREENSHOTS_DIR (or a pytest tmp dir).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from app import events, examples
from app.ui import TAB_LABELS
from tests.conftest import CHROMIUM
from tests.helpers import launch_app

LOAD_TIMEOUT_MS = 120_000
CHANGE_TIMEOUT_S = 60
SLOW_LOAD_S = 1.5  # an example load made this slow, to click another during it
SLIDER_TARGET = 0.7  # fraction of the slider's width to drag to (deep in Stage II for the 28-layer miniature)
TYPED_LAYER = (
    21  # just after the miniature's last Stage II drop (after layer 20): a different picture from 20
)
PHONE = {"width": 390, "height": 844}
PLOT_TOLERANCE_PX = 30  # borders and padding between a plot's panel and its figure
CAPTION = re.compile(r"Showing layer (\d+) of")

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


@pytest.fixture(scope="module")
def page(browser, url):
    """One desktop page for the module, with the first example loaded (each test leaves a result on screen)."""
    page = _open(browser, url)
    _load_example(page, examples.labels()[0])
    yield page
    page.close()


@pytest.fixture()
def shots(tmp_path) -> Path:
    d = Path(os.environ.get("SEATS_SCREENSHOTS_DIR", tmp_path))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _open(browser, url, **kw):
    page = browser.new_page(**({"viewport": {"width": 1400, "height": 1800}} | kw))
    page.goto(url)
    page.get_by_text("SEATS Explorer").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    return page


def _question(label: str) -> str:
    """The question of the example with this label."""
    return dict(zip(examples.labels(), (q for _, q in examples.gallery())))[label]


def _load_example(page, label: str, previous: str | None = None) -> None:
    """Click an example and wait for its cards (different from `previous`) with its question in the box."""
    question = _question(label)
    page.get_by_text(label).first.click()
    page.wait_for_function(
        "prev => { const c = document.querySelector('.seats-cards');"
        " return c && document.querySelector('#frame-overlay img') && c.innerHTML !== prev; }",
        arg=previous,
        timeout=LOAD_TIMEOUT_MS,
    )
    assert page.get_by_label("Question").input_value() == question, label


def _overlay_src(page) -> str | None:
    img = page.query_selector("#frame-overlay img")
    return img.get_attribute("src") if img else None


def _settled(page, quiet_ms: int = 600) -> None:
    """Wait until the cards and the picture stop changing (a redraw of an earlier event may still be on its way)."""
    deadline = time.time() + CHANGE_TIMEOUT_S
    state = (page.inner_html(".seats-cards"), _overlay_src(page))
    while time.time() < deadline:
        page.wait_for_timeout(quiet_ms)
        now = (page.inner_html(".seats-cards"), _overlay_src(page))
        if now == state:
            return
        state = now


def _wait_redraw(page, before: str) -> str | None:
    deadline = time.time() + CHANGE_TIMEOUT_S
    while time.time() < deadline and _overlay_src(page) == before:
        page.wait_for_timeout(50)
    return _overlay_src(page)


def _caption_layer(page, expect: int | None = None) -> int:
    """The layer the caption names; with `expect`, waits (up to CHANGE_TIMEOUT_S) for the page to render it:
    the caption arrives in the same event as the picture but may render a moment later on a busy machine."""
    deadline = time.monotonic() + (CHANGE_TIMEOUT_S if expect is not None else 0)
    while True:
        page.wait_for_timeout(300)
        m = CAPTION.search(page.inner_text("#layer-caption"))
        shown = int(m.group(1)) if m else -1
        if expect is None or shown == expect or time.monotonic() > deadline:
            return shown


def test_example_then_scrub_changes_the_overlay(page, shots):
    before = _overlay_src(page)
    assert before
    page.screenshot(path=str(shots / "02_example.png"), full_page=True)

    slider = page.locator("#layer-slider input[type=range]")
    slider.scroll_into_view_if_needed()  # mouse events reach only what is inside the viewport
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * SLIDER_TARGET, y, steps=8)
    page.mouse.up()
    after = _wait_redraw(page, before)
    page.screenshot(path=str(shots / "03_scrubbed.png"), full_page=True)
    assert after and after != before, "moving the layer slider must re-render the frame overlay"
    value = int(slider.input_value())
    assert value > 1
    assert f"decoder layer {value}" in page.inner_text("body")
    assert _caption_layer(page) == value

    page.get_by_role("tab", name="About").click()
    page.wait_for_selector("svg[aria-label^='SEATS']", timeout=LOAD_TIMEOUT_MS)
    page.screenshot(path=str(shots / "04_about.png"), full_page=True)
    page.get_by_role("tab", name=TAB_LABELS[0]).click()


def test_typed_layer_and_arrow_keys_redraw_and_the_caption_names_the_layer(page):
    before = _overlay_src(page)
    number = page.locator("#layer-slider input[type=number]")
    number.fill(str(TYPED_LAYER))
    number.press("Enter")
    typed = _wait_redraw(page, before)
    assert typed != before, "a typed layer must redraw the picture"
    assert _caption_layer(page, TYPED_LAYER) == TYPED_LAYER

    slider = page.locator("#layer-slider input[type=range]")
    slider.focus()
    slider.press("ArrowLeft")  # 21 -> 20: before the last Stage II drop, a different picture
    assert _wait_redraw(page, typed) != typed, "the arrow keys must redraw the picture"
    assert int(slider.input_value()) == TYPED_LAYER - 1
    assert _caption_layer(page, TYPED_LAYER - 1) == TYPED_LAYER - 1


def test_a_layer_beyond_the_model_is_drawn_at_the_last_one(page):
    """Typing 99 into the layer box of a 28-layer run: no range error anywhere, the box and the caption say 28."""
    number = page.locator("#layer-slider input[type=number]")
    number.fill("99")
    number.press("Enter")
    assert _caption_layer(page, 28) == 28
    assert number.input_value() == "28"
    assert page.locator(".error, .toast-body.error").count() == 0


def test_every_plot_fills_its_panel_after_switching_tabs(page):
    for name in TAB_LABELS[1:4]:  # the plots were drawn while these tabs were hidden
        page.get_by_role("tab", name=name).click()
        page.wait_for_timeout(800)
        widths = page.eval_on_selector_all(
            ".seats-plot",
            "els => els.filter(e => e.offsetParent).map(e => [e.getBoundingClientRect().width,"
            " (e.querySelector('.main-svg') || e).getBoundingClientRect().width])",
        )
        assert widths, name
        for panel, figure in widths:
            assert abs(panel - figure) <= PLOT_TOLERANCE_PX, (
                f"{name}: figure {figure:.0f} px in {panel:.0f} px"
            )
    page.get_by_role("tab", name=TAB_LABELS[0]).click()


def test_empty_question_after_a_result_keeps_it_with_one_message(page, shots):
    _settled(page)
    cards, picture = page.inner_html(".seats-cards"), _overlay_src(page)
    page.get_by_label("Question").fill("")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector(".toast-body", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "05_refused.png"), full_page=True)
    assert page.locator(".toast-body").count() == 1
    assert "question is empty" in page.inner_text(".toast-body")
    assert page.inner_html(".seats-cards") == cards and _overlay_src(page) == picture
    # Gradio also announces the error in a screen-reader-only live region (.sr-only): not a badge on the page
    errors = page.get_by_text("Error", exact=True).all()
    shown = [e for e in errors if "sr-only" not in (e.get_attribute("class") or "").split()]
    assert len(shown) == 1, "the toast's title only: no Error badges"


def test_an_example_clicked_while_another_loads_is_the_one_shown(page, monkeypatch):
    labels = examples.labels()[:3]
    cards = {}
    for label in labels[1:] + labels[:1]:  # the cards of the 2nd and 3rd examples, then the first on screen
        _settled(page)
        _load_example(page, label, page.inner_html(".seats-cards"))
        _settled(page)
        cards[label] = page.inner_html(".seats-cards")
    # the server runs in this process: make loading slow enough to click another example during it
    load = events.load_example

    def slow_load(*args, **kwargs):
        time.sleep(SLOW_LOAD_S)
        return load(*args, **kwargs)

    monkeypatch.setattr(events, "load_example", slow_load)
    page.get_by_text(labels[1]).first.click()
    page.wait_for_timeout(SLOW_LOAD_S * 1000 / 3)
    page.get_by_text(labels[2]).first.click()  # while the second example is still loading
    page.wait_for_function(
        "prev => document.querySelector('.seats-cards').innerHTML === prev",
        arg=cards[labels[2]],
        timeout=20_000,  # two slow loads, one after the other
    )
    _settled(page)
    assert page.inner_html(".seats-cards") == cards[labels[2]]
    assert page.get_by_label("Question").input_value() == _question(labels[2])


def test_every_card_of_every_example_marks_right_or_wrong(page):
    _settled(page)
    previous = page.inner_html(".seats-cards")
    # the first example is on screen already (the page fixture loaded it): start from the second, so every click
    # changes the cards and a wait for a change cannot pass on the cards of the example before
    labels = examples.labels()
    for label in labels[1:] + labels[:1]:
        _load_example(page, label, previous)
        previous = page.inner_html(".seats-cards")
        cards = page.locator(".seats-card").all_inner_texts()
        assert cards, label
        for text in cards:
            assert ("✓ correct" in text) != ("✗ wrong" in text), f"{label}: {text[:80]!r}"
            assert "parsed" in text


def test_every_tab_is_reachable_on_a_phone(browser, url, shots):
    page = _open(browser, url, viewport=PHONE, is_mobile=True)
    _load_example(page, examples.labels()[0])
    for name in TAB_LABELS:
        tab = page.get_by_role("tab", name=name)
        assert tab.count() == 1 and tab.is_visible(), f"tab {name!r} hidden at {PHONE['width']} px"
        box = tab.bounding_box()
        assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"]
        tab.click()
        page.wait_for_timeout(200)
    page.get_by_role("tab", name=TAB_LABELS[0]).click()
    page.screenshot(path=str(shots / "06_phone.png"), full_page=True)
    page.close()
