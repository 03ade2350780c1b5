"""The SMS channel against a local stand-in for the Twilio Messages API (pytest-httpserver)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import requests
from pytest_httpserver import HTTPServer

from integrations.delivery import build_channel as build_from_settings
from integrations.delivery.errors import DeliveryPermanentError, DeliveryTemporaryError
from integrations.delivery.port import Contact, Receipt, SurveyMessage
from integrations.delivery.sms_twilio import TwilioSmsChannel, normalize_phone
from integrations.settings import SmsSettings
from service.practices import InvalidPractice, validate_document
from support import loopback_network, practice_document

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "test-auth-token"
SENDER = "+15550001111"
CLIENT_PHONE = "+15551234567"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
LINK = "https://feedback.northside.example/s/tok-123"


def survey_message(to: str = CLIENT_PHONE, locale: str = "en") -> SurveyMessage:
    return SurveyMessage(
        kind="invitation",
        to=to,
        link=LINK,
        practice_name="Northside Counseling",
        locale=locale,
        expires_at=datetime(2026, 11, 29, 21, 0, tzinfo=timezone.utc),
        unsubscribe_link=None,
        survey_id="srv-7",
    )


def sms_config(api_base: str, **changes: object) -> dict[str, object]:
    config: dict[str, object] = {
        "provider": "twilio",
        "api_base": api_base,
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from": SENDER,
    }
    config.update(changes)
    return config


def build_channel(name: str, block: dict, **kwargs):
    """The channel for a practice's `delivery.sms` block, typed as the service loads it."""
    return build_from_settings(name, SmsSettings.from_document(block, loopback_network()),
                               **kwargs)


@pytest.fixture
def channel(httpserver: HTTPServer) -> Iterator[TwilioSmsChannel]:
    with requests.Session() as session:
        yield build_channel("sms", sms_config(httpserver.url_for("/")), session=session)


def twilio_error(code: int, status: int) -> dict[str, object]:
    # Twilio's error body; its message repeats the number, which must not leak into errors.
    return {
        "code": code,
        "message": f"The 'To' number {CLIENT_PHONE} is not valid.",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def test_posts_the_message_form_with_basic_auth(httpserver, channel):
    httpserver.expect_oneshot_request(MESSAGES_PATH, method="POST").respond_with_json(
        {"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"}, status=201
    )

    receipt = channel.send(survey_message(to="+1 (555) 123-4567", locale="es-MX"))

    assert receipt == Receipt("sms", provider_message_id="SM0123456789abcdef0123456789abcdef")
    [(request, _)] = httpserver.log
    assert request.path == MESSAGES_PATH
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.authorization.type == "basic"
    assert (request.authorization.username, request.authorization.password) == (
        ACCOUNT_SID,
        AUTH_TOKEN,
    )
    assert request.form["To"] == CLIENT_PHONE
    assert request.form["From"] == SENDER
    assert LINK in request.form["Body"]
    assert "Responda STOP" in request.form["Body"]
    assert set(request.form) == {"To", "From", "Body"}


def test_api_base_with_a_path_prefix_and_trailing_slash(httpserver):
    httpserver.expect_oneshot_request(f"/proxy{MESSAGES_PATH}", method="POST").respond_with_json(
        {"sid": "SM1"}, status=201
    )
    channel = build_channel("sms", sms_config(httpserver.url_for("/proxy/")))

    assert channel.send(survey_message()).provider_message_id == "SM1"


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        (400, 21211, "invalid-number"),
        (400, 21610, "opted-out"),
        (400, 21614, "not-mobile"),
        (400, 21612, "unreachable"),
        (400, 21408, "region-not-permitted"),
        (400, 21606, "misconfigured"),
        (401, 20003, "auth-failed"),
        (400, 21602, "rejected"),  # a code we do not know: the status decides
        (404, 20404, "misconfigured"),
    ],
)
def test_twilio_error_codes_are_permanent(httpserver, channel, status, code, reason):
    httpserver.expect_oneshot_request(MESSAGES_PATH).respond_with_json(
        twilio_error(code, status), status=status
    )

    with pytest.raises(DeliveryPermanentError) as raised:
        channel.send(survey_message())

    assert raised.value.reason == reason
    assert raised.value.provider_code == str(code)
    assert CLIENT_PHONE not in str(raised.value)


@pytest.mark.parametrize(
    ("status", "body", "headers", "retry_after"),
    [
        (429, twilio_error(20429, 429), {"Retry-After": "7"}, 7.0),
        (429, twilio_error(20429, 429), {}, None),
        (500, {"code": 20500, "status": 500}, {}, None),
        (503, "Service Unavailable", {"Retry-After": "120"}, 120.0),
        (400, twilio_error(21611, 400), {}, None),  # the sender's queue is full
    ],
)
def test_overload_and_server_errors_are_temporary(
    httpserver, channel, status, body, headers, retry_after
):
    handler = httpserver.expect_oneshot_request(MESSAGES_PATH)
    if isinstance(body, dict):
        handler.respond_with_json(body, status=status, headers=headers)
    else:
        handler.respond_with_data(body, status=status, headers=headers)

    with pytest.raises(DeliveryTemporaryError) as raised:
        channel.send(survey_message())

    assert raised.value.retry_after == retry_after


def test_a_non_json_rejection_is_permanent(httpserver, channel):
    httpserver.expect_oneshot_request(MESSAGES_PATH).respond_with_data("Bad Request", status=400)

    with pytest.raises(DeliveryPermanentError) as raised:
        channel.send(survey_message())

    assert raised.value.reason == "rejected"
    assert raised.value.provider_code is None


def test_a_redirect_is_not_followed(httpserver, channel):
    httpserver.expect_oneshot_request(MESSAGES_PATH).respond_with_data(
        "", status=302, headers={"Location": "https://elsewhere.example/"}
    )

    with pytest.raises(DeliveryPermanentError) as raised:
        channel.send(survey_message())

    assert raised.value.reason == "misconfigured"


def test_a_number_that_is_not_e164_is_refused_before_any_request(httpserver, channel):
    with pytest.raises(DeliveryPermanentError) as raised:
        channel.send(survey_message(to="555-1234"))

    assert raised.value.reason == "invalid-number"
    assert httpserver.log == []


def test_connection_refused_is_temporary():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    channel = build_channel("sms", sms_config(f"http://127.0.0.1:{closed_port}"))

    with pytest.raises(DeliveryTemporaryError):
        channel.send(survey_message())


def test_a_provider_that_never_answers_times_out_as_temporary():
    # The kernel completes the TCP handshake for a listening socket; nobody ever answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        channel = build_channel(
            "sms", sms_config(f"http://127.0.0.1:{port}", timeout_seconds=0.2)
        )

        with pytest.raises(DeliveryTemporaryError, match="timed out"):
            channel.send(survey_message())


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("+15551234567", "+15551234567"),
        ("+1 (555) 123-4567", "+15551234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("5551234567", None),  # no country code: ambiguous
        ("+0155512345", None),
        ("+1555123456789012", None),  # longer than E.164 allows
        ("tel:+15551234567", None),
        ("", None),
        (None, None),
    ],
)
def test_accepts_only_e164_numbers(raw, normalized):
    assert normalize_phone(raw) == normalized
    channel = TwilioSmsChannel("https://api.twilio.com", ACCOUNT_SID, AUTH_TOKEN, SENDER)
    contact = Contact(phone=raw, email="client@example.org", locale=None)
    assert channel.accepts(contact) == normalized


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (None, "delivery.sms"),
        ({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}, "delivery.sms.from"),
        ({"auth_token": AUTH_TOKEN, "from": SENDER}, "delivery.sms.account_sid"),
        ({"account_sid": ACCOUNT_SID, "auth_token": "", "from": SENDER}, "delivery.sms.auth_token"),
        (sms_config("ftp://api.twilio.com"), "delivery.sms.api_base"),
        (sms_config("https://api.twilio.com", provider="vonage"), "delivery.sms.provider"),
        (sms_config("https://api.twilio.com", timeout_seconds=0), "delivery.sms.timeout_seconds"),
    ],
)
def test_a_bad_config_names_the_field(config, field):
    # Settings are checked once, with the practice document; the channel takes them as they are.
    document = practice_document()
    document["delivery"]["sms"] = config
    with pytest.raises(InvalidPractice) as refused:
        validate_document({key: value for key, value in document.items() if value is not None})
    assert any(problem.startswith(f"{field}:") for problem in refused.value.problems)


def test_a_channel_without_its_settings_is_not_built():
    with pytest.raises(ValueError, match=r"delivery\.sms settings are required"):
        build_from_settings("sms", None)


def test_api_base_defaults_to_twilio():
    channel = build_channel(
        "sms", {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": SENDER}
    )

    assert channel.messages_url == f"https://api.twilio.com{MESSAGES_PATH}"


# ---- asking whether a message already went out (finding 7 of the security review) ----------

MARKED = datetime(2026, 11, 26, 15, 0, 5, tzinfo=timezone.utc)  # when the send was marked


def listed(body: str = "", *, sid: str = "SMabc", direction: str = "outbound-api",
           created: str = "Thu, 26 Nov 2026 15:00:06 +0000", sent: str | None = None) -> dict:
    """One entry of Twilio's Messages list (the fields the lookup reads, as Twilio names them)."""
    return {"sid": sid, "direction": direction, "from": SENDER, "to": CLIENT_PHONE,
            "body": body or f"Northside: How did your session go? {LINK} Reply STOP to opt out",
            "status": "sent" if sent else "queued", "date_created": created, "date_sent": sent,
            "account_sid": ACCOUNT_SID}


def page(*messages: dict) -> dict:
    return {"messages": list(messages), "next_page_uri": None, "page": 0, "page_size": 50}


def test_the_lookup_asks_for_messages_to_the_client_since_the_day_of_the_mark(httpserver, channel):
    httpserver.expect_oneshot_request(MESSAGES_PATH, method="GET").respond_with_json(
        page(listed(sent="Thu, 26 Nov 2026 15:00:07 +0000")))

    receipt = channel.find_sent(survey_message(), MARKED)

    assert receipt == Receipt("sms", provider_message_id="SMabc")
    [(request, _)] = httpserver.log
    assert request.args.to_dict() == {"To": CLIENT_PHONE, "From": SENDER,
                                      "DateSent>": "2026-11-26", "PageSize": "50"}
    assert b"DateSent%3E=2026-11-26" in request.query_string  # DateSent>=2026-11-26
    assert (request.authorization.username, request.authorization.password) == (ACCOUNT_SID, AUTH_TOKEN)


def test_a_message_still_queued_has_no_date_sent_and_is_found_by_the_second_question(httpserver, channel):
    httpserver.expect_ordered_request(MESSAGES_PATH, method="GET").respond_with_json(page())
    httpserver.expect_ordered_request(MESSAGES_PATH, method="GET").respond_with_json(
        page(listed(sid="SMqueued")))

    assert channel.find_sent(survey_message(), MARKED).provider_message_id == "SMqueued"
    first, second = (request for request, _ in httpserver.log)
    assert "DateSent>" in first.args and "DateSent>" not in second.args
    assert second.args["To"] == CLIENT_PHONE and second.args["From"] == SENDER


@pytest.mark.parametrize("other", [
    listed(body="Northside: How did your session go? https://feedback.northside.example/s/tok-999"),
    listed(direction="inbound"),  # the client's own text containing the link
    listed(created="Thu, 26 Nov 2026 14:50:00 +0000"),  # before the mark: an earlier message
])
def test_only_this_surveys_message_since_the_mark_counts(httpserver, channel, other):
    httpserver.expect_request(MESSAGES_PATH, method="GET").respond_with_json(page(other))

    assert channel.find_sent(survey_message(), MARKED) is None
    assert len(httpserver.log) == 2  # both questions asked, neither found it


@pytest.mark.parametrize(("status", "error"), [
    (503, DeliveryTemporaryError), (429, DeliveryTemporaryError), (401, DeliveryPermanentError),
])
def test_a_provider_that_cannot_say_is_an_error_not_a_no(httpserver, channel, status, error):
    httpserver.expect_request(MESSAGES_PATH, method="GET").respond_with_json(
        twilio_error(20003 if status == 401 else 20500, status), status=status)

    with pytest.raises(error):
        channel.find_sent(survey_message(), MARKED)


def test_an_answer_without_a_messages_list_is_temporary(httpserver, channel):
    httpserver.expect_request(MESSAGES_PATH, method="GET").respond_with_data("<html>", status=200)
    with pytest.raises(DeliveryTemporaryError):
        channel.find_sent(survey_message(), MARKED)
