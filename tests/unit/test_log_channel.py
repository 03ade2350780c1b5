"""The demo `log` channel: it logs the survey link and never the client's address."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import structlog
from structlog.testing import capture_logs

from integrations.delivery import build_channel
from integrations.delivery.errors import DeliveryPermanentError, DeliveryTemporaryError
from integrations.delivery.fake import FakeChannel
from integrations.delivery.log_channel import LogChannel
from integrations.delivery.port import Channel, Contact, Receipt, SurveyMessage

PHONE = "+15551234567"
EMAIL = "client@example.org"


def survey_message(to: str = EMAIL) -> SurveyMessage:
    return SurveyMessage(
        kind="invitation",
        to=to,
        link="http://127.0.0.1:8000/s/tok-abc",
        practice_name="Northside Counseling",
        locale="en",
        expires_at=datetime(2026, 11, 29, 15, 0, tzinfo=timezone.utc),
        unsubscribe_link=None,
        survey_id="srv-42",
    )


def test_build_channel_makes_a_log_channel_without_config():
    channel = build_channel("log", None)

    assert isinstance(channel, LogChannel)
    assert isinstance(channel, Channel)
    assert channel.name == "log"


def test_build_channel_refuses_an_unknown_channel_by_name():
    with pytest.raises(ValueError, match="unknown channel 'fax'"):
        build_channel("fax", {})


def test_logs_the_link_with_the_survey_id():
    with capture_logs() as logs:
        receipt = LogChannel().send(survey_message())

    assert receipt == Receipt(channel="log", provider_message_id=None)
    [entry] = logs
    assert entry["event"] == "survey link ready"
    assert entry["survey_id"] == "srv-42"
    assert entry["link"] == "http://127.0.0.1:8000/s/tok-abc"


@pytest.mark.parametrize("address", [EMAIL, PHONE])
def test_never_logs_the_address(address):
    with capture_logs() as logs:
        LogChannel().send(survey_message(to=address))

    logged = json.dumps(logs, default=str)
    assert address not in logged
    assert "Northside" not in logged  # nothing beyond opaque ids and the link


def test_rendered_json_log_line_has_no_address(capsys):
    previous = structlog.get_config()
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    try:
        LogChannel().send(survey_message(to=EMAIL))
    finally:
        structlog.configure(**previous)

    line = json.loads(capsys.readouterr().out)
    assert line["event"] == "survey link ready"
    assert EMAIL not in json.dumps(line)


@pytest.mark.parametrize(
    "contact",
    [
        None,
        Contact(phone=None, email=None, locale=None),
        Contact(phone=PHONE, email=EMAIL, locale="es"),
    ],
)
def test_accepts_every_contact_without_exposing_an_address(contact):
    address = LogChannel().accepts(contact)

    assert address == "log"


# The fake stands in for real channels in other tests; its contract is tested here.


@pytest.mark.parametrize(
    ("name", "contact", "address"),
    [
        ("sms", Contact(phone="+1 555 123 4567", email=EMAIL), PHONE),
        ("sms", Contact(phone=None, email=EMAIL), None),
        ("email", Contact(phone=PHONE, email=f" {EMAIL} "), EMAIL),
        ("email", Contact(phone=PHONE, email=None), None),
        ("log", Contact(), "log"),
    ],
)
def test_fake_accepts_the_field_its_real_counterpart_would(name, contact, address):
    assert FakeChannel(name).accepts(contact) == address


def test_fake_fails_the_given_number_of_times_then_records():
    outage = DeliveryTemporaryError("provider down", retry_after=3.0)
    fake = FakeChannel("sms", fail_times=2, error=outage)
    message = survey_message(to=PHONE)

    for _ in range(2):
        with pytest.raises(DeliveryTemporaryError) as raised:
            fake.send(message)
        assert raised.value.retry_after == 3.0
    receipt = fake.send(message)

    assert fake.attempts == 3
    assert fake.sent == [message]
    assert receipt == Receipt(channel="sms", provider_message_id="fake-1")


def test_fake_can_be_told_to_fail_permanently_later():
    fake = FakeChannel("email")
    fake.send(survey_message())
    fake.fail_next(1, DeliveryPermanentError("opted-out"))

    with pytest.raises(DeliveryPermanentError) as raised:
        fake.send(survey_message())

    assert raised.value.reason == "opted-out"
    assert len(fake.sent) == 1
