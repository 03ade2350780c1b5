"""POST /webhooks/{practice_id}/healthie on SQLite and PostgreSQL: Healthie's signed thin
webhooks stored before the answer, every refusal storing nothing, repeats answered as such."""

from __future__ import annotations

import json

import pytest
from healthie_support import HEALTHIE_SECRET, healthie_event, healthie_practice, signed
from sqlalchemy import func, select

from service import practices
from service.intake.facts import EhrRead, NeedsRead
from service.intake.payload import load_outcome
from service.persistence.tables import outbox, session_keys, webhook_events
from service.web import create_app
from support import PAYLOADS, practice_document

URL = "/webhooks/northside/healthie"
VECTORS = json.loads((PAYLOADS / "vendors" / "healthie-signature-vectors.json").read_text())


@pytest.fixture
def client(services):
    store(services, healthie_practice("https://api.healthie.test/graphql"))
    return create_app(services=services).test_client()


def store(services, document) -> None:
    document = practices.validate_document(document)
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())


def rows(services) -> dict[str, int]:
    with services.engine.begin() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar()
            for t in (webhook_events, outbox, session_keys)
        }


def events(services) -> list[dict]:
    with services.engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(select(webhook_events)).mappings()]
    return [{**row, "payload": services.vault.open(row["sealed_payload"])} for row in rows]


def post(client, document=None, **sign_options):
    body, headers = signed(
        document if document is not None else healthie_event("4321"), **sign_options
    )
    return client.post(URL, data=body, headers=headers)


def test_a_status_change_is_stored_for_the_worker_and_answered_202(client, services):
    answered = post(client)
    assert answered.status_code == 202, answered.get_json()
    assert answered.get_json()["status"] == "accepted" and answered.get_json()["duplicate"] is False
    [event] = events(services)
    assert event["source"] == "healthie" and event["event_type"] == "appointment.updated"
    # Stored through the one payload schema: the worker reads appointment 4321 from Healthie.
    assert event["session_id"] == "4321"
    assert load_outcome(event["payload"]) == NeedsRead(EhrRead("Appointment", "4321"))
    assert event["delivery_id"].startswith("sha256:")
    assert rows(services) == {"webhook_events": 1, "outbox": 1, "session_keys": 0}


@pytest.mark.parametrize("vector", VECTORS["vectors"][:2], ids=lambda v: v["name"])
def test_requests_signed_by_healthies_sample_are_accepted(services, vector):
    document = healthie_practice("https://api.healthie.test/graphql")
    document["healthie"]["webhook_secret"] = VECTORS["secret"]
    store(services, document)
    client = create_app(services=services).test_client()
    headers = {
        "Content-Type": "application/json",
        "Content-Digest": vector["content_digest"],
        "Signature-Input": vector["signature_input"],
        "Signature": vector["signature"],
    }
    answered = client.post(vector["path"], data=vector["body"], headers=headers)
    assert answered.status_code == 202, answered.get_json()


def test_an_integer_resource_id_is_the_same_appointment(client, services):
    assert post(client, healthie_event(4321)).status_code == 202
    assert load_outcome(events(services)[0]["payload"]) == NeedsRead(EhrRead("Appointment", "4321"))


def test_a_replayed_delivery_is_a_duplicate_and_stores_nothing_more(client, services):
    first = post(client)
    again = post(client)
    assert again.status_code == 200
    assert again.get_json() == {**first.get_json(), "duplicate": True}
    assert rows(services) == {"webhook_events": 1, "outbox": 1, "session_keys": 0}


def test_other_events_are_recorded_with_the_reason(client, services):
    answered = post(
        client,
        {
            "resource_id": "123",
            "resource_id_type": "FormAnswerGroup",
            "event_type": "form_answer_group.locked",
        },
    )
    assert answered.status_code == 202
    assert "not an appointment change" in answered.get_json()["ignored"]
    assert rows(services) == {"webhook_events": 1, "outbox": 0, "session_keys": 0}


def tamper_body(body, headers):
    return body.replace(b"4321", b"4322"), headers


def tamper_signature(body, headers):
    return body, {**headers, "Signature": "sig1=" + "0" * 64}


def without(name):
    return lambda body, headers: (body, {k: v for k, v in headers.items() if k != name})


@pytest.mark.parametrize(
    "mutate, status, needle",
    [
        (tamper_body, 401, "Content-Digest does not match the body"),
        (tamper_signature, 401, "does not verify"),
        (without("Content-Digest"), 401, "missing header(s): Content-Digest"),
        (without("Signature"), 401, "missing header(s): Signature"),
        (without("Signature-Input"), 401, "missing header(s): Signature-Input"),
        (lambda b, h: (b, {**h, "Content-Type": "text/plain"}), 415, "application/json"),
        (lambda b, h: (b + b" " * 300_000, h), 413, "256 KiB"),
    ],
)
def test_refusals_name_the_problem_and_store_nothing(client, services, mutate, status, needle):
    body, headers = mutate(*signed(healthie_event("4321")))
    refused = client.post(URL, data=body, headers=headers)
    assert refused.status_code == status
    assert refused.mimetype == "application/problem+json"
    assert needle in refused.get_json()["detail"]
    assert rows(services) == {"webhook_events": 0, "outbox": 0, "session_keys": 0}


@pytest.mark.parametrize(
    "body, status, needle",
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 422, "must be a JSON object"),
        (b'{"resource_id": true, "event_type": "appointment.updated"}', 422, "resource_id"),
        (b"[" * 5000 + b"]" * 5000, 400, "nested too deeply"),
    ],
)
def test_signed_but_malformed_bodies_are_refused_and_store_nothing(
    client, services, body, status, needle
):
    body, headers = signed(body)
    refused = client.post(URL, data=body, headers=headers)
    assert refused.status_code == status, refused.get_json()
    assert needle in refused.get_json()["detail"]
    assert rows(services) == {"webhook_events": 0, "outbox": 0, "session_keys": 0}


def test_an_unknown_practice_is_answered_as_a_bad_signature(client, services):
    wrong = post(client, secret="whsec_not-the-practice-secret")
    body, headers = signed(healthie_event("4321"), "/webhooks/nowhere/healthie")
    unknown = client.post("/webhooks/nowhere/healthie", data=body, headers=headers)
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.get_json() == wrong.get_json()
    assert rows(services) == {"webhook_events": 0, "outbox": 0, "session_keys": 0}


def test_a_practice_without_healthie_cannot_be_reached_through_this_door(services):
    store(services, practice_document())
    client = create_app(services=services).test_client()
    refused = post(client)
    assert refused.status_code == 401
    assert rows(services)["webhook_events"] == 0


def test_another_practices_secret_is_refused(client, services):
    other = healthie_practice("https://api.healthie.test/graphql", id="southside")
    other["healthie"]["webhook_secret"] = "whsec_southside-healthie-secret"
    store(services, other)
    assert post(client, secret="whsec_southside-healthie-secret").status_code == 401
    assert post(client, secret=HEALTHIE_SECRET).status_code == 202
