"""The newcomer's demo in real Chromium: the demo EHR page, its "Alliance trend" link making a
real SMART EHR launch into the side panel, and the screenshot the README shows."""

from __future__ import annotations

import shutil

import pytest
from browser.harness import ARTIFACTS, run_axe
from demo_site import DEMO_SECRET, demo_site
from trend_history import STORY, seed_history

from support import ROOT

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path):
    with demo_site(tmp_path) as running:
        seed_history(running.app.test_client(), running.run_due, running.channels, "pat-17",
                     STORY, practice_id="demo", secret=DEMO_SECRET, channel="log")
        yield running


def test_the_demo_ehr_opens_the_alliance_trend_in_its_panel(browser, site):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(f"{site.base_url}/demo/ehr/")
        assert page.get_by_role("heading", level=1).inner_text().startswith("Dana Demo")
        # The app's own launcher (the CDS card, when the demo patient has one, links there too)
        page.locator("a.launch").get_by_text("Alliance trend", exact=True).click()
        frame = page.frame_locator("iframe[name='trend']")
        frame.get_by_role("heading", name="Alliance trend", level=1).wait_for()
        text = frame.locator("main").inner_text()
        assert "pat-17" in text and "Practitioner/demo-clinician" in text
        assert "Alliance rupture" in text
        assert run_axe(page) == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-ehr.png"))
        shutil.copyfile(ARTIFACTS / "demo-ehr.png", ROOT / "docs" / "screenshots" / "demo-ehr.png")
    finally:
        context.close()
