"""Contract of FhirGateway against an EHR played by pytest-httpserver: what we send, how we
read every answer."""

from __future__ import annotations

import json
import socket
import threading
import time
from email.utils import formatdate

import pytest
import requests
from werkzeug import Response

from integrations.ehr.auth import BearerAuth, NoAuth
from integrations.ehr.errors import (
    EhrAuthError,
    EhrConflict,
    EhrError,
    EhrNotFound,
    EhrPermanentError,
    EhrTransientError,
)
from integrations.ehr.fhir_client import FhirGateway, build_gateway
from integrations.ehr.port import Written
from integrations.http import build_session
from support import PAYLOADS, loopback_network

FHIR_JSON = "application/fhir+json"
NOW = 1_790_000_000.0
IDENTIFIER = "identifier=https://alliance-feedback.org/fhir/sid/flag|ep-1"
FLAG = {
    "resourceType": "Flag",
    "identifier": [{"system": "https://alliance-feedback.org/fhir/sid/flag", "value": "ep-1"}],
    "status": "active",
    "code": {"text": "Alliance rupture"},
    "subject": {"reference": "Patient/pat-17"},
}


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / "fhir-r4" / name).read_text(encoding="utf-8"))


@pytest.fixture
def gateway(httpserver) -> FhirGateway:
    return FhirGateway(httpserver.url_for("/fhir"), BearerAuth("tok-1"), clock=lambda: NOW,
                       network=loopback_network())


def only_request(httpserver):
    (entry,) = httpserver.log
    return entry[0]


def test_read_sends_accept_auth_and_user_agent(httpserver, gateway):
    patient = {"resourceType": "Patient", "id": "pat-17"}
    httpserver.expect_request("/fhir/Patient/pat-17", method="GET").respond_with_json(patient)

    assert gateway.read("Patient", "pat-17") == patient

    request = only_request(httpserver)
    assert request.headers["Accept"] == FHIR_JSON
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert request.headers["User-Agent"] == "alliance-feedback/0.1"


def test_conditional_create_sends_the_resource_and_if_none_exist(httpserver, gateway):
    stored = {**FLAG, "id": "f1", "meta": {"versionId": "1"}}
    httpserver.expect_request("/fhir/Flag", method="POST").respond_with_json(
        stored,
        status=201,
        headers={"ETag": 'W/"1"', "Location": httpserver.url_for("/fhir/Flag/f1/_history/1")},
        content_type=FHIR_JSON,
    )

    written = gateway.create(FLAG, if_none_exist=IDENTIFIER)

    assert written == Written("f1", "1", 'W/"1"', stored, created=True)
    request = only_request(httpserver)
    assert request.headers["Content-Type"].startswith(FHIR_JSON)
    assert request.headers["If-None-Exist"] == IDENTIFIER
    assert request.headers["Prefer"] == "return=representation"
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert json.loads(request.get_data()) == FLAG


def test_create_without_condition_sends_no_if_none_exist(httpserver, gateway):
    httpserver.expect_request("/fhir/Flag", method="POST").respond_with_json(
        {**FLAG, "id": "f1"}, status=201
    )

    gateway.create(FLAG, if_none_exist=None)

    assert "If-None-Exist" not in only_request(httpserver).headers


def test_create_answered_with_an_empty_body_reads_location_and_etag(httpserver, gateway):
    httpserver.expect_request("/fhir/Flag", method="POST").respond_with_data(
        "",
        status=201,
        headers={"Location": "https://ehr.example.org/fhir/Flag/f9/_history/4", "ETag": 'W/"4"'},
    )

    assert gateway.create(FLAG, IDENTIFIER) == Written("f9", "4", 'W/"4"', None, created=True)


def test_create_with_location_but_no_etag_takes_the_version_from_location(httpserver, gateway):
    httpserver.expect_request("/fhir/Flag", method="POST").respond_with_data(
        "", status=201, headers={"Location": "Flag/f9/_history/2"}
    )

    assert gateway.create(FLAG, IDENTIFIER) == Written("f9", "2", None, None, created=True)


def test_a_conditional_create_that_matched_is_not_created(httpserver, gateway):
    existing = {**FLAG, "id": "f1", "meta": {"versionId": "3"}}
    httpserver.expect_request("/fhir/Flag", method="POST").respond_with_json(existing, status=200)

    written = gateway.create(FLAG, IDENTIFIER)

    assert (written.id, written.version_id, written.created) == ("f1", "3", False)


def test_a_match_answered_without_body_or_location_is_found_by_search(httpserver, gateway):
    existing = {**FLAG, "id": "f1", "meta": {"versionId": "2"}}
    httpserver.expect_ordered_request("/fhir/Flag", method="POST").respond_with_data("", 200)
    httpserver.expect_ordered_request(
        "/fhir/Flag",
        method="GET",
        query_string={"identifier": "https://alliance-feedback.org/fhir/sid/flag|ep-1"},
    ).respond_with_json(
        {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": existing}]}
    )

    written = gateway.create(FLAG, IDENTIFIER)

    assert written == Written("f1", "2", 'W/"2"', existing, created=False)


def test_a_create_answer_without_any_id_is_an_error(httpserver, gateway):
    httpserver.expect_request("/fhir/Flag", method="POST").respond_with_data("", 201)

    with pytest.raises(EhrError, match="without an id"):
        gateway.create(FLAG, if_none_exist=None)


@pytest.mark.parametrize(("if_match", "sent"), [("3", 'W/"3"'), ('W/"3"', 'W/"3"'), ('"3"', '"3"')])
def test_update_is_a_put_with_if_match(httpserver, gateway, if_match, sent):
    flag = {**FLAG, "id": "f1", "status": "inactive"}
    httpserver.expect_request("/fhir/Flag/f1", method="PUT").respond_with_json(
        {**flag, "meta": {"versionId": "4"}}, headers={"ETag": 'W/"4"'}
    )

    written = gateway.update(flag, if_match=if_match)

    assert (written.id, written.version_id, written.etag, written.created) == (
        "f1", "4", 'W/"4"', False
    )
    request = only_request(httpserver)
    assert request.headers["If-Match"] == sent
    assert request.headers["Content-Type"].startswith(FHIR_JSON)
    assert json.loads(request.get_data()) == flag


def test_update_with_an_empty_answer_keeps_the_id_and_reads_the_etag(httpserver, gateway):
    httpserver.expect_request("/fhir/Flag/f1", method="PUT").respond_with_data(
        "", headers={"ETag": 'W/"5"'}
    )

    written = gateway.update({**FLAG, "id": "f1"}, if_match=None)

    assert written == Written("f1", "5", 'W/"5"', None, created=False)
    assert "If-Match" not in only_request(httpserver).headers


def test_update_without_an_id_is_refused_before_sending(httpserver, gateway):
    with pytest.raises(ValueError, match="without an id"):
        gateway.update(FLAG, if_match="1")
    assert httpserver.log == []


def test_search_follows_next_links_and_skips_included_resources(httpserver, gateway):
    first = {**FLAG, "id": "f1"}
    second = {**FLAG, "id": "f2"}
    httpserver.expect_ordered_request(
        "/fhir/Flag", method="GET", query_string={"subject": "Patient/pat-17"}
    ).respond_with_json(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "next", "url": httpserver.url_for("/fhir?page=2")}],
            "entry": [
                {"resource": first, "search": {"mode": "match"}},
                {"resource": {"resourceType": "Patient", "id": "p"}, "search": {"mode": "include"}},
            ],
        }
    )
    httpserver.expect_ordered_request("/fhir", query_string="page=2").respond_with_json(
        {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": second}]}
    )

    assert gateway.search("Flag", {"subject": "Patient/pat-17"}) == [first, second]


def test_search_never_follows_a_link_to_another_server(httpserver, gateway):
    httpserver.expect_request("/fhir/Flag").respond_with_json(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "next", "url": "https://elsewhere.example/fhir/Flag?p=2"}],
        }
    )

    with pytest.raises(EhrError, match="leaves the configured base URL"):
        gateway.search("Flag", {})


def test_a_search_answered_with_something_else_than_a_bundle_is_an_error(httpserver, gateway):
    httpserver.expect_request("/fhir/Flag").respond_with_json({"resourceType": "Flag"})

    with pytest.raises(EhrError, match="without a Bundle"):
        gateway.search("Flag", {})


def http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


VALIDATION_FAILED = payload("OperationOutcome-validationfail.json")
STATUS_CASES = [
    # (operation, status, headers, body, error class, status attr, retry_after)
    ("read", 404, {}, payload("OperationOutcome-exception.json"), EhrNotFound, 404, None),
    ("create", 400, {}, VALIDATION_FAILED, EhrPermanentError, 400, None),
    ("create", 422, {}, VALIDATION_FAILED, EhrPermanentError, 422, None),
    ("create", 412, {}, None, EhrPermanentError, 412, None),
    ("create", 409, {}, None, EhrPermanentError, 409, None),
    ("update", 409, {}, None, EhrConflict, 409, None),
    ("update", 412, {}, None, EhrConflict, 412, None),
    ("read", 403, {}, None, EhrAuthError, 403, None),
    ("read", 304, {}, None, EhrPermanentError, 304, None),
    ("read", 302, {"Location": "https://elsewhere.example/"}, None, EhrPermanentError, 302, None),
    ("create", 429, {"Retry-After": "7"}, None, EhrTransientError, None, 7.0),
    ("create", 429, {"Retry-After": http_date(NOW + 120)}, None, EhrTransientError, None, 120.0),
    ("create", 429, {"Retry-After": http_date(NOW - 120)}, None, EhrTransientError, None, 0.0),
    ("create", 429, {}, None, EhrTransientError, None, None),
    ("update", 500, {}, None, EhrTransientError, None, None),
    ("create", 502, {}, None, EhrTransientError, None, None),
    ("read", 503, {"Retry-After": "30"}, None, EhrTransientError, None, 30.0),
    ("search", 504, {}, None, EhrTransientError, None, None),
]


def call(gateway: FhirGateway, operation: str):
    if operation == "read":
        return gateway.read("Flag", "f1")
    if operation == "search":
        return gateway.search("Flag", {"identifier": "x"})
    if operation == "create":
        return gateway.create(FLAG, IDENTIFIER)
    return gateway.update({**FLAG, "id": "f1"}, if_match="1")


@pytest.mark.parametrize(
    ("operation", "status", "headers", "body", "error", "error_status", "retry_after"),
    STATUS_CASES,
    ids=[f"{case[0]}-{case[1]}-{i}" for i, case in enumerate(STATUS_CASES)],
)
def test_status_mapping(
    httpserver, gateway, operation, status, headers, body, error, error_status, retry_after
):
    path = "/fhir/Flag" if operation in ("create", "search") else "/fhir/Flag/f1"
    handler = httpserver.expect_request(path)
    if body is None:
        handler.respond_with_data("", status=status, headers=headers)
    else:
        handler.respond_with_json(body, status=status, headers=headers, content_type=FHIR_JSON)

    with pytest.raises(error) as raised:
        call(gateway, operation)

    assert type(raised.value) is error
    assert len(httpserver.log) == 1, "no automatic retries, no redirects followed"
    if error_status is not None:
        assert raised.value.status == error_status
        assert raised.value.operation_outcome == body
    else:
        assert raised.value.retry_after == retry_after


def test_a_refusal_names_the_operation_outcome_diagnostics(httpserver, gateway):
    outcome = payload("OperationOutcome-validationfail.json")
    httpserver.expect_request("/fhir/Flag").respond_with_json(outcome, status=400)

    with pytest.raises(EhrPermanentError) as raised:
        gateway.create(FLAG, IDENTIFIER)

    message = str(raised.value)
    assert "400" in message
    assert "error/structure" in message
    assert 'Error parsing resource XML (Unknown Content "label"' in message
    assert "Patient.identifier" in message


class RotatingTokens:
    """An AuthProvider issuing a new token after each invalidation."""

    def __init__(self) -> None:
        self.issued = 1
        self.invalidations = 0

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer t{self.issued}"}

    def invalidate(self) -> None:
        self.invalidations += 1
        self.issued += 1


def test_a_401_refreshes_the_token_and_retries_once(httpserver):
    tokens = RotatingTokens()
    gateway = FhirGateway(httpserver.url_for("/fhir"), tokens, network=loopback_network())
    httpserver.expect_ordered_request(
        "/fhir/Flag", method="POST", headers={"Authorization": "Bearer t1"}
    ).respond_with_data("", status=401)
    httpserver.expect_ordered_request(
        "/fhir/Flag",
        method="POST",
        headers={"Authorization": "Bearer t2", "If-None-Exist": IDENTIFIER},
    ).respond_with_json({**FLAG, "id": "f1"}, status=201)

    assert gateway.create(FLAG, IDENTIFIER).id == "f1"
    assert tokens.invalidations == 1
    httpserver.check_assertions()


def test_a_second_401_is_an_auth_error(httpserver):
    tokens = RotatingTokens()
    gateway = FhirGateway(httpserver.url_for("/fhir"), tokens, network=loopback_network())
    httpserver.expect_request("/fhir/Flag/f1").respond_with_data("", status=401)

    with pytest.raises(EhrAuthError) as raised:
        gateway.read("Flag", "f1")

    assert raised.value.status == 401
    assert tokens.invalidations == 1
    assert [r.headers["Authorization"] for r, _ in httpserver.log] == ["Bearer t1", "Bearer t2"]


@pytest.fixture
def silent_port():
    """A port that accepts connections (kernel backlog) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return port


def test_a_timeout_is_transient(silent_port):
    gateway = FhirGateway(f"http://127.0.0.1:{silent_port}/fhir", NoAuth(), timeout=(1, 0.2),
                          network=loopback_network())

    with pytest.raises(EhrTransientError, match="ReadTimeout"):
        gateway.read("Flag", "f1")


def test_a_refused_connection_is_transient(closed_port):
    gateway = FhirGateway(f"http://127.0.0.1:{closed_port}/fhir", NoAuth(),
                          network=loopback_network())

    with pytest.raises(EhrTransientError, match="ConnectionError"):
        gateway.create(FLAG, IDENTIFIER)


def test_the_session_applies_its_default_timeout(silent_port):
    session = build_session(timeout=(1, 0.2), network=loopback_network())

    with pytest.raises(requests.ReadTimeout):
        session.get(f"http://127.0.0.1:{silent_port}/")


@pytest.mark.parametrize("bad", ["../Patient", "Flag/x", "a" * 65, ""])
def test_ids_that_would_change_the_url_are_refused(httpserver, gateway, bad):
    with pytest.raises(ValueError):
        gateway.read("Flag", bad)
    assert httpserver.log == []


def test_build_gateway_from_a_practice_ehr_block(httpserver):
    httpserver.expect_request(
        "/fhir/Patient/pat-17", headers={"Authorization": "Bearer secret-token"}
    ).respond_with_json({"resourceType": "Patient", "id": "pat-17"})
    gateway = build_gateway(
        {
            "type": "fhir-r4",
            "base_url": httpserver.url_for("/fhir/"),
            "auth": {"type": "bearer", "token": "secret-token"},
        },
        loopback_network(),
    )

    assert gateway.read("Patient", "pat-17")["id"] == "pat-17"


def test_the_practice_read_timeout_bounds_a_slow_ehr(httpserver):
    released = threading.Event()

    def slow(_request):
        released.wait(5)  # answers only once the test has seen the timeout
        return Response(json.dumps({"resourceType": "Patient", "id": "p1"}), 200)

    httpserver.expect_request("/fhir/Patient/p1").respond_with_handler(slow)
    gateway = build_gateway({"type": "fhir-r4", "base_url": httpserver.url_for("/fhir"),
                             "timeout_seconds": 0.5}, loopback_network())
    # Without the setting the default read timeout (10 s) would wait for the answer.
    try:
        with pytest.raises(EhrTransientError):
            gateway.read("Patient", "p1")
    finally:
        released.set()
        deadline = time.monotonic() + 5
        while not httpserver.log and time.monotonic() < deadline:  # let the handler finish
            time.sleep(0.01)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"type": "hl7v2", "base_url": "https://x"}, "ehr.type"),
        ({"type": "fhir-r4"}, "ehr.base_url"),
        ({"type": "fhir-r4", "base_url": "https://x", "auth": {"type": "basic"}}, "ehr.auth.type"),
        ({"type": "fhir-r4", "base_url": "https://x", "auth": {"type": "bearer"}}, "token"),
    ],
)
def test_build_gateway_refuses_a_bad_config(config, message):
    with pytest.raises(ValueError, match=message):
        build_gateway(config)


def test_a_writer_built_from_the_practice_settings_writes_identifier_references(httpserver):
    from datetime import UTC, datetime

    from integrations.ehr import build_record_writer
    from integrations.ehr.records import AllianceRecord

    record = AllianceRecord(
        practice_id="northside", patient_id="MRN:00417", session_id="visit_2024/17 a",
        response_id="resp-1", instrument_url="https://alliance-feedback.org/fhir/Questionnaire/x",
        instrument_version="1.0.0", instrument_title="X",
        authored=datetime(2026, 11, 26, 15, 30, tzinfo=UTC), answers=(), total=4, total_max=40,
        subscales={}, pomp=10, decision="rupture", reasons=(), interpretation="low")
    httpserver.expect_request("/fhir/Flag", method="POST").respond_with_json(
        {**FLAG, "id": "f1", "meta": {"versionId": "1"}}, status=201, content_type=FHIR_JSON)
    writer = build_record_writer({
        "type": "fhir-r4", "base_url": httpserver.url_for("/fhir"),
        "identifier_systems": {"patient": "urn:oid:1.2.3"}}, loopback_network())

    writer.raise_flag(record, "Alliance rupture", "ep-1")

    sent = json.loads(only_request(httpserver).get_data())
    assert sent["subject"] == {"type": "Patient",
                               "identifier": {"system": "urn:oid:1.2.3", "value": "MRN:00417"}}
    assert sent["encounter"]["identifier"] == {
        "system": "https://alliance-feedback.org/fhir/sid/ehr-encounter-id",
        "value": "visit_2024/17 a"}
