"""The practice's `alerts` section (CONTRACT §9): defaults, limits, and what each EHR can take."""

from __future__ import annotations

import pytest

from service import practices
from support import practice_document

WEBHOOK_EHR = {"type": "webhook", "url": "https://ehr.test/in",
               "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}


def test_the_defaults_write_a_flag_allow_two_snoozes_of_a_week_and_escalate_nobody():
    document = practices.validate_document(practice_document())
    alerts = practices.Practice.from_document(document).alerts
    assert alerts.write == ("flag",)
    assert (alerts.max_snooze_days, alerts.max_snoozes) == (7, 2)
    assert alerts.escalate_after_hours == 72.0
    assert not alerts.escalates


def test_a_full_section_is_read_as_typed_settings_with_fractional_hours():
    section = {"write": ["task", "document"], "max_snooze_days": 3, "max_snoozes": 1,
               "escalate_after_hours": 0.05, "escalate_to": "Practitioner/sup-1",
               "escalate_email": "supervisor@northside.example"}
    document = practices.validate_document(practice_document(alerts=section))
    alerts = practices.Practice.from_document(document).alerts
    assert alerts.write == ("task", "document")
    assert alerts.escalate_after_hours == 0.05
    assert alerts.escalate_to == "Practitioner/sup-1" and alerts.escalates


@pytest.mark.parametrize("section, problem", [
    ({"write": ["banner"]}, "alerts.write.0: Must be one of: flag, task, document."),
    ({"write": ["flag", "flag"]}, "alerts.write: each target may be listed once"),
    ({"max_snooze_days": 0}, "alerts.max_snooze_days: Must be greater than or equal to 1 and "
                             "less than or equal to 90."),
    ({"escalate_after_hours": 0}, "alerts.escalate_after_hours: Must be greater than 0 and "
                                  "less than or equal to 2160."),
    ({"escalate_to": "Patient/1"}, "alerts.escalate_to: must be a reference like Practitioner/123"),
    ({"escalate_email": "boss@example.org"},
     "alerts.escalate_email: needs escalate_to: the e-mail tells the supervisor a Task is waiting"),
    ({"page_everyone": True}, "alerts.page_everyone: Unknown field."),
])
def test_a_bad_alerts_section_is_refused_naming_the_field(section, problem):
    with pytest.raises(practices.InvalidPractice) as refused:
        practices.validate_document(practice_document(alerts=section))
    assert problem in refused.value.problems


def test_an_ehr_that_cannot_take_a_task_or_document_is_refused_with_the_reason():
    with pytest.raises(practices.InvalidPractice) as refused:
        practices.validate_document(practice_document(
            ehr=WEBHOOK_EHR, alerts={"write": ["flag", "document"]}))
    [problem] = refused.value.problems
    assert problem.startswith("alerts.write: ehr.type webhook cannot take document (it takes "
                              "flag)")


def test_escalation_needs_a_fhir_server_and_its_email_an_smtp_server():
    with pytest.raises(practices.InvalidPractice) as refused:
        practices.validate_document(practice_document(
            ehr=WEBHOOK_EHR, alerts={"escalate_to": "Practitioner/sup-1"}))
    assert any(p.startswith("alerts.escalate_to: escalation writes a FHIR Task")
               for p in refused.value.problems)
    no_email = practice_document(alerts={"escalate_to": "Practitioner/sup-1",
                                         "escalate_email": "sup@northside.example"})
    no_email["delivery"] = {"channels": ["sms"], "sms": no_email["delivery"]["sms"]}
    with pytest.raises(practices.InvalidPractice) as refused:
        practices.validate_document(no_email)
    assert refused.value.problems == [
        "alerts.escalate_email: needs delivery.email (the SMTP server to send it through)"]
