"""Wording of survey invitations and reminders (SMS and e-mail, English and Spanish)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest

from integrations.delivery.messages import (
    fits_one_segment,
    format_expiry,
    gsm7_length,
    render_email,
    render_sms,
    resolve_language,
)
from integrations.delivery.port import SurveyMessage

# A realistic production link: public URL plus a 43-character random token.
LINK = "https://feedback.northside.example/s/Zq3xK8mN2pL7vR4tY9wB6cD1fG5hJ0aS8eU3iO2kM7n"
UNSUBSCRIBE = "https://feedback.northside.example/u/Zq3xK8mN2pL7vR4tY9wB6cD1"
EXPIRES = datetime(2026, 11, 29, 15, 0, tzinfo=ZoneInfo("America/Chicago"))


def survey_message(**changes: object) -> SurveyMessage:
    base = SurveyMessage(
        kind="invitation",
        to="+15551234567",
        link=LINK,
        practice_name="Northside Counseling",
        locale="en",
        expires_at=EXPIRES,
        unsubscribe_link=UNSUBSCRIBE,
        survey_id="srv-01",
    )
    return replace(base, **changes)


ALL_WORDINGS = [(locale, kind) for locale in ("en", "es") for kind in ("invitation", "reminder")]


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("en", "en"),
        ("es", "es"),
        ("es-MX", "es"),
        ("es_US", "es"),
        ("ES", "es"),
        ("en-GB", "en"),
        ("fr", "en"),
        ("", "en"),
        (None, "en"),
        ("  es-419 ", "es"),
    ],
)
def test_locale_resolves_to_a_supported_language(locale, language):
    assert resolve_language(locale) == language


@pytest.mark.parametrize(
    ("text", "septets"),
    [
        ("Reply STOP", 10),
        ("¿Qué tal? ñ ü é", 15),  # all in the GSM-7 basic alphabet
        ("a[b]€", 8),  # extension characters cost two septets
        ("sesión", None),  # ó needs UCS-2
        ("🙂", None),
    ],
)
def test_gsm7_length_counts_septets_or_reports_ucs2(text, septets):
    assert gsm7_length(text) == septets


@pytest.mark.parametrize(("locale", "kind"), ALL_WORDINGS)
def test_sms_fits_one_gsm7_segment_with_a_realistic_link(locale, kind):
    body = render_sms(survey_message(locale=locale, kind=kind))

    assert gsm7_length(body) is not None, "wording must stay within the GSM-7 alphabet"
    assert gsm7_length(body) <= 160
    assert body.startswith("Northside Counseling: ")
    assert f" {LINK} " in body  # blanks around the link so phones detect all of it
    assert "STOP" in body


@pytest.mark.parametrize(
    ("locale", "kind", "expected"),
    [
        ("en", "invitation", "Northside Counseling: How did your session go? It takes 30 seconds "
         "and helps your therapist: https://n.example/s/abc Reply STOP to opt out"),
        ("en", "reminder", "Northside Counseling: A gentle reminder - your 30-second survey "
         "about your session is still open: https://n.example/s/abc Reply STOP to opt out"),
        ("es", "invitation", "Northside Counseling: ¿Qué tal su consulta? 30 segundos que "
         "ayudan a su terapeuta: https://n.example/s/abc Responda STOP para darse de baja"),
        ("es", "reminder", "Northside Counseling: Le recordamos que la encuesta de 30 segundos "
         "sobre su consulta sigue abierta: https://n.example/s/abc "
         "Responda STOP para darse de baja"),
    ],
)
def test_sms_with_a_short_link_uses_the_warmest_wording(locale, kind, expected):
    body = render_sms(survey_message(locale=locale, kind=kind, link="https://n.example/s/abc"))

    assert body == expected
    assert fits_one_segment(body)


def test_spanish_sms_is_spanish_and_english_sms_is_english():
    spanish = render_sms(survey_message(locale="es-MX"))
    english = render_sms(survey_message(locale="en-US"))

    assert "Responda STOP para darse de baja" in spanish
    assert "Reply STOP to opt out" in english


def test_sms_falls_back_to_the_shortest_wording_when_nothing_fits():
    long_name = "The Very Long Name Of A Community Counseling And Family Therapy Center"
    body = render_sms(survey_message(practice_name=long_name))

    assert not fits_one_segment(body)
    assert body == f"{long_name}: 30-second survey: {LINK} Reply STOP to opt out"


def test_sms_reminder_differs_from_invitation():
    assert render_sms(survey_message(kind="reminder")) != render_sms(survey_message())


@pytest.mark.parametrize(("locale", "kind"), ALL_WORDINGS)
def test_email_has_subject_text_and_html_with_the_link(locale, kind):
    subject, text, html = render_email(survey_message(locale=locale, kind=kind))

    assert subject and "\n" not in subject
    for body in (text, html):
        assert LINK in body
        assert "Northside Counseling" in body
        assert UNSUBSCRIBE in body
        assert "30" in body
    assert f'<html lang="{locale}">' in html
    assert "None" not in text + html


def test_email_wording_follows_the_locale():
    subject_es, text_es, _ = render_email(survey_message(locale="es-MX"))
    subject_en, text_en, _ = render_email(survey_message(locale="xx"))

    assert subject_es == "¿Qué tal le fue en su sesión?"
    assert "Sus respuestas llegan a su terapeuta" in text_es
    assert subject_en == "How did your session go?"
    assert "Your answers go to your therapist" in text_en


def test_email_reminder_says_it_is_a_reminder():
    subject, text, _ = render_email(survey_message(kind="reminder"))

    assert subject.startswith("Reminder")
    assert "still open" in text


def test_email_states_when_the_link_expires():
    _, text_en, _ = render_email(survey_message())
    _, text_es, _ = render_email(survey_message(locale="es"))

    assert "The link is open until Sunday, November 29 at 3:00 PM CST." in text_en
    assert "hasta el domingo 29 de noviembre a las 15:00 (CST)." in text_es


def test_email_without_unsubscribe_link_has_no_unsubscribe_text():
    _, text, html = render_email(survey_message(unsubscribe_link=None))

    assert "Unsubscribe" not in text
    assert "Unsubscribe" not in html


class _TextAndLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])

    def handle_data(self, data):
        self.text.append(data)


def test_email_html_escapes_the_practice_name_and_links():
    hostile = survey_message(
        practice_name='Smith & <b>Jones</b> "Care"',
        link="https://n.example/s/a?x=1&y=<2>",
    )
    _, _, html = render_email(hostile)
    parsed = _TextAndLinks()
    parsed.feed(html)

    assert "<b>" not in html
    assert "Smith &amp; &lt;b&gt;Jones&lt;/b&gt; &quot;Care&quot;" in html
    assert 'Smith & <b>Jones</b> "Care"' in "".join(parsed.text)
    assert "https://n.example/s/a?x=1&y=<2>" in parsed.hrefs


def test_email_html_links_have_descriptive_text():
    _, _, html = render_email(survey_message())

    assert ">Answer the survey</a>" in html
    assert ">Unsubscribe</a>" in html


@pytest.mark.parametrize(
    ("moment", "language", "expected"),
    [
        (datetime(2026, 11, 29, 0, 5, tzinfo=timezone.utc), "en",
         "Sunday, November 29 at 12:05 AM UTC"),
        (datetime(2026, 1, 7, 12, 30, tzinfo=timezone.utc), "en",
         "Wednesday, January 7 at 12:30 PM UTC"),
        (datetime(2026, 1, 7, 9, 0, tzinfo=ZoneInfo("Europe/Madrid")), "es",
         "miércoles 7 de enero a las 09:00 (CET)"),
    ],
)
def test_expiry_is_spelled_out_in_its_own_time_zone(moment, language, expected):
    assert format_expiry(moment, language) == expected


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"kind": "nudge"}, "kind"),
        ({"expires_at": datetime(2026, 11, 29, 15, 0)}, "expires_at"),
    ],
)
def test_survey_message_refuses_unknown_kind_and_naive_expiry(changes, complaint):
    with pytest.raises(ValueError, match=complaint):
        survey_message(**changes)


@pytest.mark.parametrize(
    ("text", "fits"),
    [
        ("a" * 160, True),
        ("a" * 161, False),
        ("€" * 80, True),  # 160 septets
        ("€" * 81, False),
        ("í" * 70, True),  # UCS-2: 70 characters per segment
        ("í" * 71, False),
        ("🙂" * 35, True),  # an emoji takes two UTF-16 units
        ("🙂" * 36, False),
    ],
)
def test_one_segment_limit_depends_on_the_alphabet(text, fits):
    assert fits_one_segment(text) is fits
