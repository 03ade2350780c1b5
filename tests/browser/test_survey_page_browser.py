"""The survey page in a real headless Chromium: fill in, submit, keyboard only, look, axe-core."""

from __future__ import annotations

import re
import shutil

import pytest
from browser.harness import ARTIFACTS, PHONE, require_file, run_axe

from support import ROOT

pytestmark = pytest.mark.browser

SCREENSHOT = ARTIFACTS / "survey-phone.png"
README_SCREENSHOT = ROOT / "docs" / "screenshots" / "survey-phone.png"
XSS = "<script>window.injected = 1</script> & more"


def group(page, legend: str):
    return page.get_by_role("group", name=re.compile(legend))


def choose(page, legend: str, answer: str) -> None:
    group(page, legend).get_by_role("radio", name=answer, exact=True).check()


def test_fill_in_and_submit_shows_thanks_and_stores_the_answers(page, live):
    link = live.new_survey()
    page.goto(link)
    assert page.get_by_role("heading", level=1).inner_text() == "How was today's session?"
    assert page.locator("script").count() == 0
    choose(page, "trust and feel at ease", "8")
    choose(page, "agree on what you are working towards", "7")
    choose(page, "work together in sessions suit you", "10 – It suits me completely")
    choose(page, "how was today's session for you", "9")
    choose(page, "felt tense", "Yes")
    choose(page, "how strong was that feeling", "2")
    page.get_by_label(re.compile("anything you would like your therapist to know")).fill(XSS)

    page.get_by_role("button", name="Send my answers").click()

    assert page.get_by_role("heading", level=1).inner_text() == "Thank you"
    assert "Northside Counseling" in page.locator("main").inner_text()
    assert run_axe(page) == []
    assert live.stored_answers(link) == {"bond": 8, "goals": 7, "approach": 10, "overall": 9,
                                         "tension": True, "tension_intensity": 2, "comment": XSS}


def test_missing_answers_are_named_next_to_each_question_and_free_text_stays_text(page, live):
    link = live.new_survey(locale="es")
    page.goto(link)
    assert page.locator("html").get_attribute("lang") == "es"
    choose(page, "confianza y comodidad", "5")
    page.get_by_label(re.compile("le gustaría que su terapeuta supiera")).fill(XSS)

    page.get_by_role("button", name="Enviar mis respuestas").click()

    summary = page.get_by_role("alert")
    assert "Revise 3 respuestas" in summary.inner_text()
    # autofocus is applied by the browser shortly after load, not at once: wait for it (bounded).
    page.wait_for_function("document.activeElement && document.activeElement.className === 'error-summary'",
                           timeout=3000)
    assert group(page, "lo que quieren lograr").locator(".field-error").inner_text() == (
        "Elija un número del 0 al 10.")
    assert group(page, "confianza y comodidad").get_by_role("radio", name="5").is_checked()
    assert page.get_by_label(re.compile("terapeuta supiera")).input_value() == XSS
    assert page.evaluate("window.injected") is None
    assert live.stored_answers(link) is None


def test_the_form_works_with_javascript_turned_off(browser, live):
    link = live.new_survey()
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(link)
        for legend in ("trust", "working towards", "suit you", "for you"):
            choose(page, legend, "6")
        page.get_by_role("button", name="Send my answers").click()
        assert page.get_by_role("heading", level=1).inner_text() == "Thank you"
    finally:
        context.close()
    assert live.stored_answers(link) == {"bond": 6, "goals": 6, "approach": 6, "overall": 6}


@pytest.mark.parametrize("submit_key", ["Enter", "Space"])
def test_keyboard_only(page, live, submit_key):
    link = live.new_survey()
    page.goto(link)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Español"

    # Tab reaches each question in order, one stop per group of choices.
    stops = []
    for _ in range(8):
        page.keyboard.press("Tab")
        stops.append(page.evaluate("document.activeElement.name || document.activeElement.type"))
    assert stops == ["bond", "goals", "approach", "overall", "tension", "tension_intensity",
                     "comment", "submit"]

    # Back to the first question; arrow keys move within a group and choose.
    for _ in range(7):
        page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.name") == "bond"
    for _ in range(8):
        page.keyboard.press("ArrowRight")
    assert page.evaluate("[document.activeElement.value, document.activeElement.checked]") == ["8", True]
    outline = page.evaluate(
        "getComputedStyle(document.activeElement.nextElementSibling).outlineStyle")
    assert outline == "solid"
    for expected in ("goals", "approach", "overall"):
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.name") == expected
        for _ in range(9):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowLeft")
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowRight")  # tension: "Yes" → "No"
    page.keyboard.press("Tab")          # tension_intensity stays unanswered
    page.keyboard.press("Tab")
    page.keyboard.type("Good session")
    page.keyboard.press("Tab")
    page.keyboard.press(submit_key)

    page.wait_for_url(link)
    assert page.get_by_role("heading", level=1).inner_text() == "Thank you"
    assert live.stored_answers(link) == {"bond": 8, "goals": 8, "approach": 8, "overall": 8,
                                         "tension": False, "comment": "Good session"}


def test_phone_screenshot_and_no_serious_accessibility_violations(page, live):
    link = live.new_survey()
    page.goto(link)
    assert page.viewport_size == PHONE
    # Nothing sticks out sideways on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    page.screenshot(path=str(ARTIFACTS / "survey-phone-full.png"), full_page=True)
    README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SCREENSHOT, README_SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 10_000

    assert run_axe(page) == []
    page.get_by_role("button", name="Send my answers").click()  # the page with errors
    assert page.get_by_role("alert").is_visible()
    assert run_axe(page) == []
    page.screenshot(path=str(ARTIFACTS / "survey-phone-errors.png"), full_page=True)


@pytest.mark.parametrize("query, heading", [("", "Link not found"), ("?lang=es", "Enlace no encontrado")])
def test_consent_and_message_pages(page, live, query, heading):
    link = live.new_survey()
    page.goto(link + "/unsubscribe" + query)
    assert run_axe(page) == []
    page.get_by_role("button").click()
    assert live.opted_out(link)
    assert run_axe(page) == []
    page.get_by_role("button").click()  # receive surveys again
    assert not live.opted_out(link)
    page.goto(live.base_url + "/s/not-a-real-token" + query)
    assert page.get_by_role("heading", level=1).inner_text() == heading
    assert run_axe(page) == []


@pytest.mark.parametrize("required, outcome", [("1", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_browser_fails_in_ci_and_skips_elsewhere(monkeypatch, tmp_path, required, outcome):
    monkeypatch.setenv("ALLIANCE_TEST_REQUIRE_SERVICES", required)
    with pytest.raises(outcome):
        require_file(tmp_path / "no-chromium", "Debian's chromium")
