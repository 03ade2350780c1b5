"""The e-mail channel against a real SMTP server (aiosmtpd): to a local relay without TLS,
and with STARTTLS or implicit TLS and a login (finding 4 of the security review is proved in
tests/security/test_cleartext.py)."""

from __future__ import annotations

import datetime as dt
import email
import socket
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from smtp_support import (
    PASSWORD,
    USERNAME,
    RecordingHandler,
    free_port,
    make_certificate,
    running_server,
    server_context,
    trusting,
)

from integrations.delivery import build_channel as build_from_settings
from integrations.delivery.email_smtp import SmtpEmailChannel, normalize_email
from integrations.delivery.errors import DeliveryPermanentError, DeliveryTemporaryError
from integrations.delivery.port import Contact, SurveyMessage
from integrations.settings import EmailSettings
from service.practices import InvalidPractice, validate_document
from support import loopback_network, practice_document

SENDER = "surveys@northside.example"
CLIENT = "client@example.org"
LINK = "https://feedback.northside.example/s/tok-123"
UNSUBSCRIBE = "https://feedback.northside.example/u/tok-123"


@pytest.fixture
def plain_server() -> Iterator[tuple[Controller, RecordingHandler]]:
    # A relay on this machine: no TLS, no login (tls "none" is refused with a login).
    controller, handler = running_server(auth_required=False)
    yield controller, handler
    controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(certificate) -> Iterator[tuple[Controller, RecordingHandler]]:
    controller, handler = running_server(
        tls_context=server_context(certificate), require_starttls=True, auth_require_tls=True
    )
    yield controller, handler
    controller.stop()


def survey_message(to: str = CLIENT, unsubscribe_link: str | None = UNSUBSCRIBE) -> SurveyMessage:
    return SurveyMessage(
        kind="invitation",
        to=to,
        link=LINK,
        practice_name="Clínica Northside",
        locale="es-MX",
        expires_at=dt.datetime(2026, 11, 29, 21, 0, tzinfo=dt.timezone.utc),
        unsubscribe_link=unsubscribe_link,
        survey_id="srv-9",
    )


def email_config(port: int, **changes: object) -> dict[str, object]:
    """A relay on this machine, without TLS or login (the plain server)."""
    config: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "tls": "none",
        "from": SENDER,
        "timeout_seconds": 5,
    }
    config.update(changes)
    return config


def build_channel(name: str, block: dict):
    """The channel for a practice's `delivery.email` block, typed as the service loads it."""
    return build_from_settings(name, EmailSettings.from_document(block, loopback_network()))


def tls_channel(port: int, certificate, tls: str = "starttls", **options) -> SmtpEmailChannel:
    """A channel that trusts the test certificate, with the login."""
    options = {"username": USERNAME, "password": PASSWORD, **options}
    return SmtpEmailChannel("127.0.0.1", port, SENDER, tls=tls, timeout=5,
                            ssl_context=trusting(certificate), network=loopback_network(),
                            **options)


def received(handler: RecordingHandler) -> tuple[Envelope, EmailMessage]:
    [envelope] = handler.envelopes
    return envelope, email.message_from_bytes(envelope.original_content, policy=policy.default)


def received_id(envelope: Envelope) -> str:
    return email.message_from_bytes(envelope.original_content, policy=policy.default)["Message-ID"]


def test_delivers_a_multipart_message_to_a_local_relay(plain_server):
    controller, handler = plain_server
    channel = build_channel("email", email_config(controller.port))

    receipt = channel.send(survey_message(to=f"  {CLIENT} "))

    envelope, message = received(handler)
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == [CLIENT]
    assert message["To"] == CLIENT
    assert message["From"].addresses[0].addr_spec == SENDER
    assert message["From"].addresses[0].display_name == "Clínica Northside"
    assert message["Subject"] == "¿Qué tal le fue en su sesión?"
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert receipt.channel == "email"
    assert receipt.provider_message_id == message["Message-ID"]
    assert message["Message-ID"].endswith("@northside.example>")


def test_the_message_id_is_the_same_every_time_this_message_is_sent(plain_server):
    # SMTP cannot be asked what it accepted: a resend after a lost answer carries the same id.
    controller, handler = plain_server
    channel = build_channel("email", email_config(controller.port))
    first, again = channel.send(survey_message()), channel.send(survey_message())
    reminder = channel.send(SurveyMessage(**{**survey_message().__dict__, "kind": "reminder"}))

    assert first.provider_message_id == again.provider_message_id
    assert reminder.provider_message_id != first.provider_message_id
    assert [received_id(e) for e in handler.envelopes] == [
        first.provider_message_id, first.provider_message_id, reminder.provider_message_id]
    assert channel.find_sent(survey_message(), dt.datetime.now(dt.timezone.utc)) is None


def test_the_message_has_a_text_and_an_html_part(plain_server):
    controller, handler = plain_server
    build_channel("email", email_config(controller.port)).send(survey_message())

    _, message = received(handler)
    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = message.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    assert LINK in text_part.get_content()
    assert f'href="{LINK}"' in html_part.get_content()
    assert "sesión" in text_part.get_content()  # UTF-8 survives the trip


def test_no_list_unsubscribe_header_without_a_link(plain_server):
    controller, handler = plain_server
    build_channel("email", email_config(controller.port)).send(
        survey_message(unsubscribe_link=None)
    )

    _, message = received(handler)
    assert message["List-Unsubscribe"] is None


def test_a_from_with_its_own_display_name_keeps_it(plain_server):
    controller, handler = plain_server
    config = email_config(controller.port, **{"from": f"Northside Surveys <{SENDER}>"})
    build_channel("email", config).send(survey_message())

    envelope, message = received(handler)
    assert envelope.mail_from == SENDER
    assert message["From"].addresses[0].display_name == "Northside Surveys"


def test_delivers_over_starttls_with_auth(tls_server, certificate):
    controller, handler = tls_server
    tls_channel(controller.port, certificate).send(survey_message())

    envelope, message = received(handler)
    assert envelope.rcpt_tos == [CLIENT]
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"


def test_an_untrusted_certificate_is_a_permanent_tls_failure(tls_server):
    controller, handler = tls_server
    # The system trust store does not know the test's self-signed certificate.
    channel = build_channel("email", email_config(
        controller.port, tls="starttls", username=USERNAME, password=PASSWORD))

    with pytest.raises(DeliveryPermanentError) as raised:
        channel.send(survey_message())

    assert raised.value.reason == "tls-failed"
    assert handler.envelopes == []


def test_a_server_that_requires_starttls_refuses_a_plain_client(tls_server):
    controller, handler = tls_server
    channel = build_channel("email", email_config(controller.port, tls="none"))

    with pytest.raises(DeliveryPermanentError):
        channel.send(survey_message())

    assert handler.envelopes == []


def test_starttls_against_a_server_without_it_is_misconfigured(plain_server):
    controller, _ = plain_server
    channel = build_channel("email", email_config(controller.port, tls="starttls"))

    with pytest.raises(DeliveryPermanentError) as raised:
        channel.send(survey_message())

    assert raised.value.reason == "misconfigured"


def test_a_wrong_password_is_a_permanent_auth_failure(tls_server, certificate):
    controller, handler = tls_server
    channel = tls_channel(controller.port, certificate, password="wrong")

    with pytest.raises(DeliveryPermanentError) as raised:
        channel.send(survey_message())

    assert raised.value.reason == "auth-failed"
    assert handler.envelopes == []


@pytest.mark.parametrize(
    ("recipient", "error", "reason", "provider_code"),
    [
        ("gone@example.org", DeliveryPermanentError, "invalid-address", "550 5.1.1"),
        ("spam@example.org", DeliveryPermanentError, "rejected", "554 5.7.1"),
        ("busy@example.org", DeliveryTemporaryError, None, "451 4.3.0"),
    ],
)
def test_refused_recipients_map_by_reply_code(
    plain_server, recipient, error, reason, provider_code
):
    controller, handler = plain_server
    channel = build_channel("email", email_config(controller.port))

    with pytest.raises(error) as raised:
        channel.send(survey_message(to=recipient))

    assert getattr(raised.value, "reason", None) == reason
    assert raised.value.provider_code == provider_code
    assert recipient not in str(raised.value)  # the server's text repeats the address
    assert handler.envelopes == []


def test_connection_refused_is_temporary():
    channel = build_channel("email", email_config(free_port()))

    with pytest.raises(DeliveryTemporaryError):
        channel.send(survey_message())


def test_a_server_that_never_greets_times_out_as_temporary():
    # The kernel accepts the connection for a listening socket; no greeting ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        channel = build_channel(
            "email", email_config(silent.getsockname()[1], timeout_seconds=0.2)
        )

        with pytest.raises(DeliveryTemporaryError):
            channel.send(survey_message())


def test_an_address_that_is_not_plain_is_refused_before_connecting():
    channel = build_channel("email", email_config(free_port()))

    with pytest.raises(DeliveryPermanentError) as raised:
        channel.send(survey_message(to="client@example.org\r\nBcc: victim@example.org"))

    assert raised.value.reason == "invalid-address"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("client@example.org", "client@example.org"),
        ("  First.Last+tag@sub.example.co.uk ", "First.Last+tag@sub.example.co.uk"),
        ("Client <client@example.org>", None),
        ("client@localhost", None),
        ("client@@example.org", None),
        ("no-at-sign.example.org", None),
        ("clïent@example.org", None),
        ("", None),
        (None, None),
    ],
)
def test_accepts_only_plain_addresses(raw, normalized):
    assert normalize_email(raw) == normalized
    channel = SmtpEmailChannel("127.0.0.1", 25, SENDER)
    assert channel.accepts(Contact(phone="+15551234567", email=raw, locale=None)) == normalized


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (None, "delivery.email"),
        ({"smtp_port": 587, "from": SENDER}, "delivery.email.smtp_host"),
        ({"smtp_host": "mail.example", "from": SENDER}, "delivery.email.smtp_port"),
        ({"smtp_host": "mail.example", "smtp_port": "587", "from": SENDER},
         "delivery.email.smtp_port"),
        ({"smtp_host": "mail.example", "smtp_port": 70000, "from": SENDER},
         "delivery.email.smtp_port"),
        ({"smtp_host": "mail.example", "smtp_port": 587}, "delivery.email.from"),
        ({"smtp_host": "mail.example", "smtp_port": 587, "from": "not an address"},
         "delivery.email.from"),
        ({"smtp_host": "mail.example", "smtp_port": 587, "from": SENDER, "starttls": "yes"},
         "delivery.email.starttls"),
        ({"smtp_host": "mail.example", "smtp_port": 587, "from": SENDER, "password": "x"},
         "delivery.email.username"),
    ],
)
def test_a_bad_config_names_the_field(config, field):
    # Settings are checked once, with the practice document; the channel takes them as they are.
    document = practice_document()
    document["delivery"]["email"] = config
    with pytest.raises(InvalidPractice) as refused:
        validate_document({key: value for key, value in document.items() if value is not None})
    assert any(problem.startswith(f"{field}:") for problem in refused.value.problems)
