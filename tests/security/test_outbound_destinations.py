"""Finding 6 of the security review, outbound: no redirect is followed by a call that carries a
credential (the SMART token request re-posted its client assertion on a 307), and no call goes
to loopback, link-local (169.254.169.254) or private addresses unless the practice allows
private ones, checked against the address actually connected to (DNS rebinding)."""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest
import requests
from pytest_httpserver import HTTPServer

import integrations.network
from integrations.delivery.email_smtp import SmtpEmailChannel
from integrations.delivery.errors import DeliveryPermanentError
from integrations.delivery.port import SurveyMessage
from integrations.delivery.sms_twilio import TwilioSmsChannel
from integrations.ehr.auth import SmartBackendAuth
from integrations.ehr.errors import EhrAuthError, EhrPermanentError
from integrations.ehr.fhir_client import FhirGateway, build_gateway
from integrations.ehr.smart_launch import SmartLaunchClient, SmartLaunchError
from integrations.ehr.webhook_sink import WebhookRecordSink
from integrations.healthie.client import HealthieGraphqlClient
from integrations.http import build_session, guard
from integrations.network import DestinationRefused
from integrations.settings import NetworkSettings
from service.practices import Practice, validate_document
from support import PAYLOADS, loopback_network, practice_document

PUBLIC_ONLY = NetworkSettings()
MESSAGE = SurveyMessage(kind="invitation", to="+15551234567", link="https://f.example/s/tok",
                        practice_name="Northside", locale="en",
                        expires_at=dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc),
                        unsubscribe_link=None, survey_id="srv-1")


def private_jwk() -> dict:
    keys = json.loads((PAYLOADS / "smart-backend" / "RS384.private.json").read_text())["keys"]
    (key,) = [k for k in keys if "d" in k]
    return key


@pytest.fixture
def elsewhere():
    """A second server: where a redirect points."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


# ---- redirects ---------------------------------------------------------------------------------

def test_the_smart_token_request_does_not_follow_a_307(httpserver, elsewhere):
    elsewhere.expect_request("/steal", method="POST").respond_with_json({"access_token": "x"})
    httpserver.expect_request("/token", method="POST").respond_with_data(
        "", status=307, headers={"Location": elsewhere.url_for("/steal")})
    auth = SmartBackendAuth(httpserver.url_for("/token"), "client", private_jwk(), "system/*.rs",
                            build_session(network=loopback_network()))

    with pytest.raises(EhrAuthError, match="redirected"):
        auth.headers()

    assert elsewhere.log == []  # the client assertion never reached the other host


def test_no_session_follows_a_redirect_even_when_asked(httpserver, elsewhere):
    elsewhere.expect_request("/other").respond_with_data("moved here")
    httpserver.expect_request("/start").respond_with_data(
        "", status=307, headers={"Location": elsewhere.url_for("/other")})
    session = build_session(network=loopback_network())

    answer = session.post(httpserver.url_for("/start"), data={"secret": "s"}, allow_redirects=True)

    assert answer.status_code == 307
    assert elsewhere.log == []


# ---- where calls may go -------------------------------------------------------------------

def refused_calls(url: str) -> list:
    """Each adapter's call to `url` with the default settings (public addresses only)."""
    return [
        (lambda: FhirGateway(url, auth=_no_auth()).read("Patient", "p1"), EhrPermanentError),
        (lambda: build_gateway({"type": "fhir-r4", "base_url": url}).read("Patient", "p1"),
         EhrPermanentError),
        (lambda: WebhookRecordSink(url, "whsec_" + "QUJD" * 8).resolve_flag(
            _flag(), dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc)), EhrPermanentError),
        (lambda: HealthieGraphqlClient(url, "key").appointment("1"), EhrPermanentError),
        (lambda: TwilioSmsChannel(url, "AC1", "tok", "+15550001111").send(MESSAGE),
         DeliveryPermanentError),
        (lambda: SmartLaunchClient().discover(url), SmartLaunchError),
    ]


def _no_auth():
    from integrations.ehr.auth import NoAuth

    return NoAuth()


def _flag():
    from integrations.ehr.records import FlagRef

    return FlagRef("ep-1", None, "ep-1")


@pytest.mark.parametrize("index", range(6))
def test_every_adapter_refuses_loopback_by_default(httpserver, index):
    httpserver.expect_request("/api").respond_with_json({})
    call, error = refused_calls(httpserver.url_for("/api"))[index]

    with pytest.raises(error, match="loopback address"):
        call()

    assert httpserver.log == []


def test_the_smtp_relay_is_checked_too(httpserver):
    channel = SmtpEmailChannel("127.0.0.1", httpserver.port, "surveys@northside.example",
                               tls="none")
    message = SurveyMessage(**{**MESSAGE.__dict__, "to": "client@example.org"})
    with pytest.raises(DeliveryPermanentError, match="loopback address") as error:
        channel.send(message)
    assert error.value.reason == "misconfigured"
    assert httpserver.log == []


@pytest.mark.parametrize("address", ["169.254.169.254", "[fe80::1]", "0.0.0.0", "224.0.0.1",
                                     "[::ffff:169.254.169.254]", "[64:ff9b::a9fe:a9fe]"])
def test_link_local_and_reserved_addresses_are_never_called(address):
    session = build_session(network=loopback_network())  # even where private ones are allowed
    with pytest.raises(DestinationRefused, match="never called"):
        session.get(f"http://{address}/latest/meta-data/", timeout=1)


@pytest.mark.parametrize("address", ["10.1.2.3", "172.16.0.9", "192.168.1.1", "100.64.0.1",
                                     "[fd00::1]"])
def test_private_addresses_need_the_practices_allowance(address):
    with pytest.raises(DestinationRefused, match="private address"):
        build_session().get(f"http://{address}/fhir/metadata", timeout=1)


def resolving(monkeypatch, answers: dict[str, list[str]]) -> None:
    """Make the name service answer these addresses (the connection still goes to them)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                    for address in answers[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(integrations.network.socket, "getaddrinfo", getaddrinfo)


def test_a_name_is_checked_by_the_address_it_resolves_to_when_called(httpserver, monkeypatch):
    # Applied while ehr.example.org was public; now it resolves to loopback (DNS rebinding).
    httpserver.expect_request("/fhir/Patient/p1").respond_with_json(
        {"resourceType": "Patient", "id": "p1"})
    resolving(monkeypatch, {"ehr.example.org": ["127.0.0.1"]})
    url = f"http://ehr.example.org:{httpserver.port}/fhir"
    assert validate_document(practice_document(ehr={"type": "fhir-r4",
                                                    "base_url": "https://ehr.example.org/fhir"}))

    with pytest.raises(EhrPermanentError, match="ehr.example.org resolves to a loopback"):
        FhirGateway(url, _no_auth()).read("Patient", "p1")
    assert httpserver.log == []
    # The same call where the practice allows private addresses connects to what was checked.
    assert FhirGateway(url, _no_auth(), network=loopback_network()).read("Patient", "p1")


def test_a_name_with_any_refused_address_is_refused_whole(monkeypatch):
    resolving(monkeypatch, {"mixed.example.org": ["93.184.216.34", "169.254.169.254"]})
    with pytest.raises(DestinationRefused, match="link-local"):
        build_session(network=loopback_network()).get("http://mixed.example.org/", timeout=1)


def test_through_a_proxy_the_name_is_checked_before_the_request(monkeypatch, httpserver):
    # The proxy connects, so the session resolves and checks the name itself first.
    httpserver.expect_request("/").respond_with_data("proxied")
    monkeypatch.setenv("HTTP_PROXY", httpserver.url_for("/"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    resolving(monkeypatch, {"metadata.example.org": ["169.254.169.254"]})
    with pytest.raises(DestinationRefused, match="link-local"):
        build_session(network=PUBLIC_ONLY).get("http://metadata.example.org/latest", timeout=1)
    # A session another library made (authlib's, for the SMART token) is only guarded: the
    # same check holds for it.
    other = requests.Session()
    guard(other, PUBLIC_ONLY)
    with pytest.raises(DestinationRefused, match="link-local"):
        other.get("http://metadata.example.org/latest", timeout=1, allow_redirects=False)
    assert httpserver.log == []


def test_the_allowance_needs_a_reason_and_practice_show_shows_it():
    document = practice_document(network={"allow_private": True})
    with pytest.raises(Exception, match="network.reason"):
        validate_document(document)
    practice = Practice.from_document(validate_document(practice_document()))
    assert practice.redacted()["network"] == {
        "allow_private": True, "reason": "the tests' servers listen on loopback"}
    assert practice.network.allow_private and practice.delivery.sms.network.allow_private
