"""FHIR polling (CONTRACT §10) against a FHIR server played by pytest-httpserver, on SQLite and
PostgreSQL: every page, the overlap, 429 with Retry-After, 5xx, both resources, dedupe with the
notification route, SMART backend auth, the schedule in the outbox, the backfill command, and a
polled visit through to its survey and write-back."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from werkzeug import Request, Response

from integrations.settings import EhrPollSettings
from service import practices
from service.bootstrap import bootstrap
from service.handlers import polling
from service.handlers.polling import poll_once, start_polling
from service.persistence import outbox as outbox_rows
from service.persistence.queries import poll_cursors
from service.persistence.tables import outbox, surveys, webhook_events
from service.web import create_app
from support import PAYLOADS, TEST_SECRET_KEY, practice_document

FHIR_JSON = "application/fhir+json"
ENCOUNTER = json.loads((PAYLOADS / "fhir-r4" / "Encounter-f001.json").read_text())
US_CORE_ENCOUNTER = json.loads(
    (PAYLOADS / "fhir-r4" / "uscore-encounter-example-1.json").read_text()
)
APPOINTMENT = json.loads((PAYLOADS / "fhir-r4" / "Appointment-example.json").read_text())
HIGH = {"bond": 9, "goals": 9, "approach": 9, "overall": 10, "tension": False}
SMART = PAYLOADS / "smart-backend"


class FhirServer:
    """Search pages and Patients to serve; records every request; accepts creates."""

    def __init__(self, httpserver):
        self.httpserver = httpserver
        self.pages: dict[str, list[list[dict]]] = {}
        self.failures: list[tuple[int, dict]] = []
        self.searches: list[dict] = []
        self.created: list[dict] = []
        self.authorizations: list[str | None] = []
        httpserver.expect_request("/fhir/Encounter").respond_with_handler(self._search("Encounter"))
        httpserver.expect_request("/fhir/Appointment").respond_with_handler(
            self._search("Appointment")
        )
        httpserver.expect_request("/fhir/Patient/f001").respond_with_json(
            {
                "resourceType": "Patient",
                "id": "f001",
                "telecom": [{"system": "phone", "value": "+15557654321", "use": "mobile"}],
            }
        )
        for kind in ("QuestionnaireResponse", "Observation", "Flag"):
            httpserver.expect_request(f"/fhir/{kind}", method="POST").respond_with_handler(
                self._create
            )

    @property
    def base(self) -> str:
        return self.httpserver.url_for("/fhir")

    def serve(self, resource: str, *pages: list[dict]) -> None:
        """Serve these pages to a search, keeping to its _lastUpdated filter as a server does
        (a page left empty by the filter is dropped)."""
        self.pages[resource] = [list(page) for page in pages]

    def _search(self, resource: str):
        def handle(request: Request) -> Response:
            self.authorizations.append(request.headers.get("Authorization"))
            if self.failures:
                status, headers = self.failures.pop(0)
                return Response("busy", status=status, headers=headers)
            page = int(request.args.get("page", "1"))
            if page == 1:
                self.searches.append(dict(request.args))
                since = request.args.get("_lastUpdated", "gt1900-01-01T00:00:00Z")[2:]
                self.current = [
                    [r for r in p if _instant(r) > _instant_of(since)]
                    for p in self.pages.get(resource, [[]])
                ]
                self.current = [p for p in self.current if p] or [[]]
            bundle = {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [
                    {"resource": r, "search": {"mode": "match"}} for r in self.current[page - 1]
                ],
            }
            if page < len(self.current):
                bundle["link"] = [
                    {"relation": "next", "url": f"{self.base}/{resource}?page={page + 1}"}
                ]
            return Response(json.dumps(bundle), content_type=FHIR_JSON)

        return handle

    def _create(self, request: Request) -> Response:
        resource = json.loads(request.data)
        resource["id"] = f"new-{len(self.created) + 1}"
        resource["meta"] = {"versionId": "1"}
        self.created.append(resource)
        return Response(json.dumps(resource), status=201, content_type=FHIR_JSON)


def _instant_of(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _instant(resource: dict) -> datetime:
    return _instant_of(resource["meta"]["lastUpdated"])


def updated(resource: dict, when: str, **changes) -> dict:
    copied = copy.deepcopy(resource)
    copied.setdefault("meta", {})["lastUpdated"] = when
    copied.update(changes)
    return copied


@pytest.fixture
def fhir(httpserver):
    return FhirServer(httpserver)


@pytest.fixture
def services(database, settings_for, clock, channels):
    """The real FHIR gateway (to the test's server), fakes only for the delivery channels."""
    url, engine = database
    return bootstrap(
        settings_for(url),
        engine=engine,
        clock=clock,
        channel_for=lambda name, _config: channels[name],
    )


def save_practice(services, fhir, resource="Encounter", auth=None, **poll):
    ehr = {
        "type": "fhir-r4",
        "base_url": fhir.base,
        "auth": auth or {"type": "none"},
        "poll": {"resource": resource, "every_minutes": 5, **poll},
    }
    document = practices.validate_document(practice_document(ehr=ehr))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())
        start_polling(conn, document["id"], EhrPollSettings.from_document(ehr["poll"]),
                      services.clock())
    with services.engine.begin() as conn:
        return practices.load(conn, services.box, document["id"])


def rows(services, table, *columns):
    with services.engine.begin() as conn:
        return [tuple(row) for row in conn.execute(select(*(table.c[c] for c in columns)))]


def cursor(services, resource="Encounter"):
    with services.engine.begin() as conn:
        return poll_cursors.get(conn, "northside", resource)


def poll_jobs(services):
    with services.engine.begin() as conn:
        return conn.execute(
            select(outbox.c.status, outbox.c.available_at, outbox.c.dedupe_key)
            .where(outbox.c.kind == "ehr.poll")
            .order_by(outbox.c.created_at, outbox.c.available_at)
        ).all()


def test_every_page_is_read_and_the_cursor_moves_to_the_newest_resource(services, fhir, clock):
    practice = save_practice(services, fhir)
    fhir.serve(
        "Encounter",
        [updated(ENCOUNTER, "2026-11-26T15:01:00Z")],
        [updated(US_CORE_ENCOUNTER, "2026-11-26T15:03:00+00:00")],
        [updated(ENCOUNTER, "2026-11-26T15:02:00Z", id="f002")],
    )
    clock.advance(minutes=5)
    result = poll_once(services, practice)

    assert result.found == 3 and result.outcomes == {"accepted": 3}
    # The search started 10 minutes (the default overlap) before the cursor, set at apply.
    assert fhir.searches == [
        {"status": "finished", "_lastUpdated": "gt2026-11-26T14:50:00Z", "_sort": "_lastUpdated"}
    ]
    assert cursor(services).cursor == datetime(2026, 11, 26, 15, 3, tzinfo=timezone.utc)
    assert sorted(rows(services, webhook_events, "source", "delivery_id")) == [
        ("poll", "Encounter/example-1"),
        ("poll", "Encounter/f001"),
        ("poll", "Encounter/f002"),
    ]


def test_the_overlap_finds_a_late_indexed_visit_and_repeats_are_duplicates(services, fhir, clock):
    practice = save_practice(services, fhir, overlap_minutes=15)
    fhir.serve("Encounter", [updated(ENCOUNTER, "2026-11-26T15:04:00Z")])
    poll_once(services, practice)
    # Indexed late: its lastUpdated (15:00) is older than the cursor (15:04), inside the overlap.
    late = updated(ENCOUNTER, "2026-11-26T15:00:00Z", id="late")
    fhir.serve("Encounter", [updated(ENCOUNTER, "2026-11-26T15:04:00Z"), late])
    second = poll_once(services, practice)

    assert fhir.searches[1]["_lastUpdated"] == "gt2026-11-26T14:49:00Z"
    assert second.outcomes == {"duplicate-delivery": 1, "accepted": 1}
    assert len(rows(services, webhook_events, "id")) == 2
    assert cursor(services).cursor == datetime(2026, 11, 26, 15, 4, tzinfo=timezone.utc)


def test_appointments_are_polled_as_fulfilled(services, fhir):
    practice = save_practice(services, fhir, resource="Appointment")
    fhir.serve("Appointment", [updated(APPOINTMENT, "2026-11-26T15:01:00Z", status="fulfilled")])
    result = poll_once(services, practice)
    assert fhir.searches[0]["status"] == "fulfilled"
    assert result.outcomes == {"accepted": 1}
    assert rows(services, webhook_events, "delivery_id", "session_id", "patient_id") == [
        ("Appointment/example", "example", "example")
    ]


def test_a_result_that_is_not_finished_after_all_is_recorded_as_ignored(services, fhir):
    practice = save_practice(services, fhir)
    fhir.serve("Encounter", [updated(ENCOUNTER, "2026-11-26T15:01:00Z", status="in-progress")])
    assert poll_once(services, practice).outcomes == {"ignored": 1}


def test_a_visit_announced_by_notification_and_then_polled_gets_one_survey(services, fhir, run_due):
    practice = save_practice(services, fhir)
    encounter = updated(ENCOUNTER, "2026-11-26T15:01:00Z")
    notification = {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [
            {
                "resource": {
                    "resourceType": "Parameters",
                    "parameter": [
                        {
                            "name": "subscription",
                            "valueReference": {"reference": "Subscription/s1"},
                        },
                        {"name": "type", "valueCode": "event-notification"},
                        {
                            "name": "notification-event",
                            "part": [
                                {"name": "event-number", "valueString": "1"},
                                {
                                    "name": "focus",
                                    "valueReference": {"reference": "Encounter/f001"},
                                },
                            ],
                        },
                    ],
                }
            },
            {"fullUrl": f"{fhir.base}/Encounter/f001", "resource": encounter},
        ],
    }
    web = create_app(services=services).test_client()
    answered = web.post(
        "/webhooks/northside/fhir",
        json=notification,
        headers={"Authorization": "Bearer channel-token-0123456789"},
    )
    assert answered.status_code == 202, answered.get_json()
    fhir.serve("Encounter", [encounter])
    assert poll_once(services, practice).outcomes == {"duplicate-session": 1}
    run_due()
    with services.engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(surveys)).scalar() == 1


def test_the_job_schedules_the_next_run_on_the_grid_and_chains_merge(
    services, fhir, clock, run_due
):
    save_practice(services, fhir)
    clock.advance(seconds=30)
    save_practice(services, fhir)  # applied again: a second first run is queued
    run_due()
    jobs = poll_jobs(services)
    assert [status for status, _, _ in jobs].count("done") == 2
    pending = [job for job in jobs if job.status == "pending"]
    assert len(pending) == 1  # both runs asked for the same next slot: one run
    assert pending[0].available_at == datetime(2026, 11, 26, 15, 5, tzinfo=timezone.utc)
    clock.advance(minutes=5)
    run_due()
    assert len(fhir.searches) == 3
    [next_run] = [job for job in poll_jobs(services) if job.status == "pending"]
    assert next_run.available_at == datetime(2026, 11, 26, 15, 10, tzinfo=timezone.utc)


def test_429_backs_off_for_retry_after_and_keeps_the_schedule(services, fhir, clock, run_due):
    save_practice(services, fhir)
    fhir.failures = [(429, {"Retry-After": "120"})]
    fhir.serve("Encounter", [updated(ENCOUNTER, "2026-11-26T15:01:00Z")])
    assert run_due() == [("ehr.poll", "done")]
    [retry] = [job for job in poll_jobs(services) if job.status == "pending"]
    assert retry.available_at == clock.now + timedelta(seconds=120)
    state = cursor(services)
    assert state.failures == 1 and "429" in state.last_error
    assert rows(services, webhook_events, "id") == []

    clock.advance(seconds=120)
    assert run_due()[0] == ("ehr.poll", "done")
    assert len(rows(services, webhook_events, "id")) == 1
    assert cursor(services).failures == 0 and cursor(services).last_error is None


def test_5xx_backs_off_exponentially(services, fhir, clock, run_due):
    save_practice(services, fhir)
    fhir.failures = [(503, {}), (502, {})]
    run_due()
    [first] = [job for job in poll_jobs(services) if job.status == "pending"]
    assert timedelta(seconds=1) <= first.available_at - clock.now <= timedelta(seconds=2)
    clock.advance(seconds=2)
    run_due()
    [second] = [job for job in poll_jobs(services) if job.status == "pending"]
    assert timedelta(seconds=2) <= second.available_at - clock.now <= timedelta(seconds=4)
    assert cursor(services).failures == 2


def test_an_ehr_that_refuses_the_search_dead_letters_the_job(services, fhir, run_due):
    save_practice(services, fhir)
    fhir.failures = [(403, {}), (403, {})]
    assert run_due() == [("ehr.poll", "dead")]
    with services.engine.begin() as conn:
        [dead] = outbox_rows.dead_letters(conn)
    assert dead.kind == "ehr.poll" and dead.last_error["http_status"] == 403


def test_a_long_backlog_is_read_by_the_next_run_at_once(
    services, fhir, clock, run_due, monkeypatch
):
    monkeypatch.setattr(polling, "MAX_POLL_PAGES", 2)
    save_practice(services, fhir)
    fhir.serve(
        "Encounter",
        *[[updated(ENCOUNTER, f"2026-11-26T15:0{n}:00Z", id=f"e{n}")] for n in range(1, 4)],
    )
    from service.handlers.registry import JOB_HANDLERS
    from service.handlers.runner import JobRunner

    with services.engine.begin() as conn:
        [first] = outbox_rows.claim_due(conn, now=clock.now, redeliver_after=120)
    assert JobRunner(services, JOB_HANDLERS)(first.id) == "done"
    assert len(fhir.searches) == 1 and len(rows(services, webhook_events, "id")) == 2
    [more] = [job for job in poll_jobs(services) if job.status == "pending"]
    assert more.available_at == clock.now and "more" in more.dedupe_key
    run_due()  # the rest, from the cursor the first run left
    assert len(rows(services, webhook_events, "id")) == 3
    assert fhir.searches[1]["_lastUpdated"] == "ge2026-11-26T15:02:00Z"  # from the cursor itself


def test_polling_switched_off_ends_the_schedule(services, fhir, run_due):
    practice = save_practice(services, fhir)
    ehr = {k: v for k, v in practice.ehr.document.items() if k != "poll"}
    document = {**practice.document, "ehr": ehr}
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())
    run_due()
    assert fhir.searches == [] and [job.status for job in poll_jobs(services)] == ["done"]


def test_smart_backend_auth_as_for_write_back(services, fhir, httpserver):
    (key,) = [k for k in json.loads((SMART / "ES384.private.json").read_text())["keys"] if "d" in k]
    httpserver.expect_request("/token", method="POST").respond_with_json(
        {"access_token": "polling-token", "token_type": "bearer", "expires_in": 300}
    )
    auth = {
        "type": "smart-backend",
        "token_url": httpserver.url_for("/token"),
        "client_id": "alliance",
        "private_key_jwk": key,
        "scope": "system/Encounter.rs",
    }
    practice = save_practice(services, fhir, auth=auth)
    fhir.serve("Encounter", [updated(ENCOUNTER, "2026-11-26T15:01:00Z")])
    poll_once(services, practice)
    assert fhir.authorizations == ["Bearer polling-token"]


def test_a_polled_visit_is_surveyed_and_written_back(services, fhir, channels, run_due):
    save_practice(services, fhir)
    fhir.serve("Encounter", [updated(ENCOUNTER, "2026-11-26T15:01:00Z")])
    run_due()  # the poll, then event.process (reads Patient/f001 for the phone), then the send
    [invitation] = channels["sms"].sent
    assert invitation.to == "+15557654321"
    token = invitation.link.rsplit("/s/", 1)[1]
    web = create_app(services=services).test_client()
    assert web.post(f"/api/v1/surveys/{token}/response", json={"answers": HIGH}).status_code == 201
    run_due()
    kinds = [resource["resourceType"] for resource in fhir.created]
    assert "QuestionnaireResponse" in kinds and "Observation" in kinds
    [response] = [r for r in fhir.created if r["resourceType"] == "QuestionnaireResponse"]
    assert response["encounter"]["reference"] == "Encounter/f001"
    with services.engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(surveys)).scalar() == 1


def test_practice_poll_since_backfills(services, fhir, database):
    save_practice(services, fhir)
    fhir.serve("Encounter", [updated(ENCOUNTER, "2026-03-02T09:00:00Z")])
    from service.cli import main

    url, _ = database
    env = {
        "ALLIANCE_DATABASE_URL": url,
        "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY,
        "ALLIANCE_LOG_FORMAT": "console",
        "ALLIANCE_LOG_LEVEL": "WARNING",
    }
    result = CliRunner().invoke(
        main, ["practice", "poll", "northside", "--since", "2026-03-01"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "1 found (1 accepted)" in result.output
    assert fhir.searches[-1]["_lastUpdated"] == "gt2026-03-01T00:00:00Z"  # no overlap on a backfill
    # The backfill never moves the cursor back.
    assert cursor(services).cursor == datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc)

    unknown = CliRunner().invoke(main, ["practice", "poll", "nowhere"], env=env)
    assert unknown.exit_code != 0 and "no practice" in unknown.output
