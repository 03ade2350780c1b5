"""Finding 4 of the security review: cleartext. SMTP uses STARTTLS unless told otherwise,
implicit TLS is available, a login never runs in the clear (refused at apply and at send), the
relay's certificate is checked; every practice URL is https except to loopback."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from smtp_support import (
    PASSWORD,
    USERNAME,
    free_port,
    make_certificate,
    running_server,
    server_context,
    trusting,
)

from integrations.delivery import build_channel
from integrations.delivery.email_smtp import SmtpEmailChannel
from integrations.delivery.errors import DeliveryPermanentError
from integrations.delivery.port import SurveyMessage
from integrations.settings import EmailSettings
from schemas.network import OUTBOUND_URLS
from service.practices import InvalidPractice, Practice, validate_document
from support import loopback_network, practice_document

# aiosmtpd warns when a server takes AUTH outside STARTTLS: the implicit-TLS server does (its
# connection is TLS from the first byte, which aiosmtpd does not count).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Requiring AUTH while not requiring TLS:UserWarning")
SENDER = "surveys@northside.example"
MESSAGE = SurveyMessage(kind="invitation", to="client@example.org",
                        link="https://feedback.example/s/tok", practice_name="Northside",
                        locale="en", expires_at=dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc),
                        unsubscribe_link=None, survey_id="srv-1")


def email_block(**fields) -> dict:
    return {"smtp_host": "smtp.example.org", "smtp_port": 587, "from": SENDER, **fields}


def refused(document: dict) -> list[str]:
    with pytest.raises(InvalidPractice) as error:
        validate_document(document)
    return error.value.problems


def with_email(**fields) -> dict:
    document = practice_document()
    document["delivery"]["email"] = email_block(**fields)
    return document


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


# ---- the practice document ----------------------------------------------------------------

def test_starttls_is_the_default():
    stored = validate_document(with_email(username="u", password="p"))["delivery"]["email"]
    assert stored["tls"] == "starttls" and "starttls" not in stored
    practice = Practice.from_document(validate_document(with_email(username="u", password="p")))
    assert practice.delivery.email.tls == "starttls"


@pytest.mark.parametrize(("fields", "tls"), [
    ({"starttls": True}, "starttls"), ({"tls": "implicit", "smtp_port": 465}, "implicit"),
    ({"starttls": False, "smtp_host": "localhost"}, "none"), ({"tls": "none", "smtp_host": "::1"}, "none"),
])
def test_the_tls_modes_and_the_older_spelling(fields, tls):
    assert validate_document(with_email(**fields))["delivery"]["email"]["tls"] == tls


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"tls": "none", "smtp_host": "localhost", "username": "u", "password": "p"},
     "delivery.email.tls", "a login needs TLS"),
    ({"starttls": False, "smtp_host": "localhost", "username": "u"},
     "delivery.email.starttls", "a login needs TLS"),
    ({"tls": "none"}, "delivery.email.tls", "only for a relay on this machine"),
    ({"starttls": False}, "delivery.email.starttls", "only for a relay on this machine"),
    ({"tls": "starttls", "starttls": True}, "delivery.email.starttls", "give tls only"),
    ({"tls": "ssl"}, "delivery.email.tls", "Must be one of"),
])
def test_a_document_that_would_send_in_the_clear_is_refused(fields, field, words):
    problems = refused(with_email(**fields))
    assert any(p.startswith(f"{field}:") and words in p for p in problems), problems


def test_a_document_stored_before_tls_existed_is_read_as_starttls():
    # The old schema stored "starttls": false by default; only a relay on this machine keeps it.
    assert EmailSettings.from_document(email_block(starttls=False)).tls == "starttls"
    assert EmailSettings.from_document(email_block(smtp_host="localhost", starttls=False)).tls == "none"


# ---- sending ----------------------------------------------------------------------------------

def test_a_login_without_tls_is_refused_before_connecting():
    # A closed port: had the channel tried to connect, the failure would be temporary.
    channel = SmtpEmailChannel("127.0.0.1", free_port(), SENDER, tls="none", username=USERNAME,
                               password=PASSWORD, network=loopback_network())
    with pytest.raises(DeliveryPermanentError) as error:
        channel.send(MESSAGE)
    assert error.value.reason == "misconfigured" and "without TLS" in str(error.value)


def test_implicit_tls_delivers_with_a_login(certificate):
    # aiosmtpd counts only STARTTLS as TLS for AUTH; this connection is TLS from its first byte.
    controller, handler = running_server(ssl_context=server_context(certificate),
                                         auth_require_tls=False)
    try:
        SmtpEmailChannel("127.0.0.1", controller.port, SENDER, tls="implicit", timeout=5,
                         username=USERNAME, password=PASSWORD, ssl_context=trusting(certificate),
                         network=loopback_network()).send(MESSAGE)
    finally:
        controller.stop()
    assert [e.rcpt_tos for e in handler.envelopes] == [["client@example.org"]]


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_the_relays_certificate_is_checked(certificate, tls):
    # The default trust store does not know the test's self-signed certificate.
    options = ({"ssl_context": server_context(certificate)} if tls == "implicit"
               else {"tls_context": server_context(certificate), "require_starttls": True})
    controller, handler = running_server(auth_require_tls=tls == "starttls", **options)
    try:
        settings = EmailSettings("127.0.0.1", controller.port, SENDER, tls=tls,
                                 username=USERNAME, password=PASSWORD, timeout_seconds=5,
                                 network=loopback_network())
        with pytest.raises(DeliveryPermanentError) as error:
            build_channel("email", settings).send(MESSAGE)
    finally:
        controller.stop()
    assert error.value.reason == "tls-failed"
    assert handler.envelopes == []


# ---- URLs ---------------------------------------------------------------------------------

def with_url(path: tuple[str, ...], url: str) -> dict:
    """A valid practice document whose field at `path` (from OUTBOUND_URLS) holds `url`."""
    document = practice_document()
    sections = {
        ("ehr", "base_url"): lambda: document["ehr"].update(base_url=url),
        ("ehr", "auth", "token_url"): lambda: document["ehr"].update(auth={
            "type": "smart-backend", "token_url": url, "client_id": "c", "scope": "system/*.rs",
            "private_key_jwk": {"kty": "RSA", "kid": "k", "alg": "RS384", "d": "x"}}),
        ("ehr", "url"): lambda: document.update(ehr={
            "type": "webhook", "url": url, "secret": "whsec_" + "QUJD" * 8}),
        ("delivery", "sms", "api_base"): lambda: document["delivery"]["sms"].update(api_base=url),
        ("healthie", "api_url"): lambda: document.update(healthie={
            "api_url": url, "api_key": "k", "webhook_secret": "s" * 16}),
        ("smart_app", "issuers", "*"): lambda: document.update(smart_app={
            "client_id": "c", "client_secret": "secret-secret", "issuers": [url]}),
    }
    sections[path]()
    return document


TESTED_URLS = [path for path in OUTBOUND_URLS if path[0] != "cds_hooks"]  # not on this branch


def field_name(path: tuple[str, ...]) -> str:
    return ".".join("0" if part == "*" else part for part in path)


@pytest.mark.parametrize("path", TESTED_URLS, ids=field_name)
def test_every_practice_url_must_be_https(path):
    assert validate_document(with_url(path, "https://ehr.example.org/api"))
    problems = refused(with_url(path, "http://ehr.example.org/api"))
    assert f"{field_name(path)}: must be https (plain http only to a loopback address, for the demo and tests)" in problems


@pytest.mark.parametrize("path", TESTED_URLS, ids=field_name)
def test_plain_http_only_to_loopback_and_only_when_allowed(path):
    assert validate_document(with_url(path, "http://127.0.0.1:8000/api"))  # the tests' allowance
    document = with_url(path, "http://127.0.0.1:8000/api")
    del document["network"]
    problems = refused(document)
    assert any(p.startswith(f"{field_name(path)}: 127.0.0.1 is a loopback address (set "
                            "network.allow_private") for p in problems), problems
