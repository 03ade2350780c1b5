"""Acknowledge and snooze an open rupture in real Chromium (CONTRACT §9.1): in the EHR's frame
with the mouse, top level with the keyboard only, with JavaScript off; the history shows each
action, the status is announced, and axe-core finds nothing serious."""

from __future__ import annotations

import pytest
from browser.harness import ARTIFACTS, run_axe
from browser.smart_ehr import SIDE_PANEL, open_in_ehr
from sqlalchemy import select

from service.persistence.tables import alert_actions

pytestmark = pytest.mark.browser

NOTE = "Talked it through with the client; we will revisit the goals next week."


def stored(live) -> list[dict]:
    with live.services.engine.connect() as conn:
        return [dict(row) for row in conn.execute(
            select(alert_actions).order_by(alert_actions.c.at)).mappings()]


def history(frame) -> list[str]:
    return [text.strip() for text in frame.locator("ol.history li").all_inner_texts()]


def test_acknowledge_with_a_note_and_snooze_with_the_mouse_in_the_ehrs_frame(browser, ehr,
                                                                              live):
    context = browser.new_context(viewport={"width": 1000, "height": 1100}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        frame = open_in_ehr(page, ehr)
        frame.get_by_label("Note").click()
        frame.get_by_label("Note").fill(NOTE)
        frame.get_by_role("button", name="Acknowledge").click()

        status = frame.get_by_role("status")
        status.wait_for()
        assert status.inner_text().startswith("Acknowledged.")
        assert frame.title().startswith("Acknowledged · Alliance trend")
        assert frame.get_by_role("button", name="Acknowledge").count() == 0
        (entry,) = history(frame)
        assert "Acknowledged by Practitioner/dr-ana" in entry and NOTE in entry

        frame.get_by_label("Hide the EHR's card for").select_option("3")
        frame.get_by_role("button", name="Snooze").click()
        frame.get_by_text("Snoozed until", exact=False).first.wait_for()
        assert frame.get_by_role("status").inner_text().startswith("Snoozed until")
        assert "1 of 2 snoozes left for this rupture." in frame.locator("main").inner_text()
        entries = history(frame)
        assert len(entries) == 2 and "Snoozed until" in entries[1]
        assert [(r["action"], r["actor"]) for r in stored(live)] == [
            ("acknowledge", "Practitioner/dr-ana"), ("snooze", "Practitioner/dr-ana")]
        assert live.services.vault.open(stored(live)[0]["note"]) == {"text": NOTE}
        assert run_axe(frame) == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.locator("iframe").screenshot(path=str(ARTIFACTS / "trend-acted-360.png"))
    finally:
        context.close()


def tab_to(page, selector: str, limit: int = 60) -> None:
    """Press Tab until the element `selector` has the focus (the keyboard's only way around)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


@pytest.mark.parametrize("width", [SIDE_PANEL, 1280])
def test_acknowledge_and_snooze_with_the_keyboard_only(browser, ehr, live, width):
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(ehr.launch_url(live.base_url, "northside"))  # a top-level launch
        page.get_by_role("heading", name="Alliance trend", level=1).wait_for()
        assert run_axe(page) == []  # the forms, before any action

        tab_to(page, "#ack-note")
        page.keyboard.type(NOTE)
        tab_to(page, "button[type=submit]")
        assert page.evaluate("document.activeElement.textContent") == "Acknowledge"
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.get_by_role("status").wait_for()
        assert page.get_by_role("status").inner_text().startswith("Acknowledged.")

        tab_to(page, "#snooze-days")
        page.keyboard.press("ArrowDown")  # 1 day → 2 days
        assert page.evaluate("document.activeElement.value") == "2"
        tab_to(page, "button.secondary")
        with page.expect_navigation():
            page.keyboard.press("Space")
        page.get_by_role("status").wait_for()
        assert page.get_by_role("status").inner_text().startswith("Snoozed until")
        assert page.title().startswith("Snoozed · Alliance trend")

        entries = history(page)
        assert "Acknowledged by Practitioner/dr-ana" in entries[0] and NOTE in entries[0]
        assert "Snoozed until" in entries[1]
        (snooze,) = [row for row in stored(live) if row["action"] == "snooze"]
        assert (snooze["until"] - snooze["at"]).days == 2
        assert run_axe(page) == []  # status, history, the snooze form left
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(ARTIFACTS / f"trend-acted-{width}.png"), full_page=True)
    finally:
        context.close()


def test_the_forms_work_with_javascript_turned_off(browser, ehr, live):
    context = browser.new_context(viewport={"width": 1000, "height": 1100},
                                  java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        frame = open_in_ehr(page, ehr)
        frame.get_by_role("button", name="Acknowledge").click()
        frame.get_by_role("status").wait_for()
        assert "Acknowledged by Practitioner/dr-ana" in history(frame)[0]
    finally:
        context.close()


def test_a_form_sent_twice_gets_a_clear_answer_in_the_browser(browser, ehr, live):
    context = browser.new_context(viewport={"width": 1000, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(ehr.launch_url(live.base_url, "northside"))
        page.get_by_role("heading", name="Alliance trend", level=1).wait_for()
        used = page.locator("form:has(#snooze-days) input[name=token]").get_attribute("value")
        page.get_by_role("button", name="Snooze").click()
        page.get_by_role("status").wait_for()
        # The page is never cached (no-store), so Back shows fresh tokens: put the used one
        # back into the form, as a replaying client would.
        page.locator("form:has(#snooze-days) input[name=token]").evaluate(
            "(input, token) => { input.value = token; }", used)
        page.get_by_role("button", name="Snooze").click()
        assert page.get_by_role("heading", level=1).inner_text() == "This form was sent already"
        page.get_by_role("link", name="Back to the trend").click()
        assert len(history(page)) == 1
        assert len(stored(live)) == 1
    finally:
        context.close()
