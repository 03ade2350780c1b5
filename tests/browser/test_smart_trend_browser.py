"""The SMART trend app in real Chromium: an EHR page on another origin (a second loopback port,
the fake EHR's pytest-httpserver) frames the app; the frame performs the whole EHR launch
(launch → the EHR's authorize → callback → view); axe-core at 360 px and 1280 px."""

from __future__ import annotations

import shutil
from urllib.parse import urlsplit

import pytest
from browser.harness import ARTIFACTS, run_axe
from browser.smart_ehr import SIDE_PANEL, open_in_ehr
from trend_history import STORY

from support import ROOT

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / "docs" / "screenshots"


def test_the_ehr_frames_the_app_and_the_launch_ends_on_the_launch_patients_trend(browser, ehr,
                                                                               live):
    context = browser.new_context(viewport={"width": 1000, "height": 900}, bypass_csp=True)
    page = context.new_page()
    try:
        frame = open_in_ehr(page, ehr)
        assert urlsplit(frame.url).port != urlsplit(page.url).port  # another origin
        text = frame.locator("main").inner_text()
        assert "pat-17" in text and "pat-99" not in text
        assert "Signed in from the EHR as Practitioner/dr-ana" in text
        assert frame.locator("script").count() == 0
        total = frame.locator("svg.area").first
        for kind in ("rupture", "repaired", "missing", "dot"):
            assert total.locator(f"use[href='#m-{kind}']").count() >= 1, kind
        assert total.locator("line.cutoff").count() == 1
        assert total.locator("rect.band").count() >= 1
        rows = frame.get_by_role("table").locator("tbody tr")
        assert rows.count() == len(STORY)
        assert "Not returned" in frame.get_by_role("table").inner_text()
        assert ehr.refusals == []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.locator("iframe").screenshot(path=str(ARTIFACTS / "trend-side-panel-360.png"))
        shutil.copyfile(ARTIFACTS / "trend-side-panel-360.png",
                        SCREENSHOTS / "trend-side-panel-360.png")
    finally:
        context.close()


@pytest.mark.parametrize("width", [SIDE_PANEL, 1280])
def test_the_view_passes_axe_at_360_and_1280_px(browser, ehr, live, width):
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(ehr.launch_url(live.base_url, "northside"))  # top-level launch, same flow
        page.get_by_role("heading", name="Alliance trend", level=1).wait_for()
        assert run_axe(page) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        table_fits = page.evaluate("(w => w.scrollWidth <= w.clientWidth)"
                                   "(document.querySelector('.table-wrap'))")
        assert table_fits  # the whole table, Result column included, reads without scrolling
        page.screenshot(path=str(ARTIFACTS / f"trend-{width}.png"), full_page=True)
        if width == 1280:
            shutil.copyfile(ARTIFACTS / "trend-1280.png", SCREENSHOTS / "trend-1280.png")
    finally:
        context.close()


def test_the_launch_and_the_view_work_with_javascript_turned_off(browser, ehr, live):
    context = browser.new_context(viewport={"width": 1000, "height": 900},
                                  java_script_enabled=False)
    page = context.new_page()
    try:
        frame = open_in_ehr(page, ehr)
        assert "Alliance rupture" in frame.locator("main").inner_text() or \
            "No open rupture" in frame.locator("main").inner_text()
    finally:
        context.close()


def test_a_state_carried_to_another_browser_is_refused_and_shows_no_data(browser, ehr, live):
    first = browser.new_context()
    second = browser.new_context()
    try:
        page = first.new_page()
        ehr.consent_page = True  # the EHR asks first: the way back is a link on its page
        page.goto(ehr.launch_url(live.base_url, "northside"))
        callback = page.locator("#allow").get_attribute("href")
        other = second.new_page()
        other.goto(callback)
        heading = other.get_by_role("heading", level=1).inner_text()
        assert heading == "This sign-in began in another browser"
        assert "pat-17" not in other.content()
        other.goto(f"{live.base_url}/smart/northside/view")
        assert other.get_by_role("heading", level=1).inner_text() == "Open the app from the EHR"
        assert "pat-17" not in other.content()
    finally:
        first.close()
        second.close()


def test_an_untrusted_issuer_gets_a_clear_refusal_in_the_browser(browser, live, ehr):
    context = browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(f"{live.base_url}/smart/northside/launch?"
                             "iss=https://evil.example/fhir&launch=abc")
        assert response.status == 400
        assert page.get_by_role("heading", level=1).inner_text() == "This EHR is not registered"
    finally:
        context.close()

