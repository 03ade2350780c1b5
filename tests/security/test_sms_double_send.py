"""Finding 7 of the security review (left open by the reliability work): a worker killed between
the SMS provider's "accepted" and the job's commit sent that SMS again on the rerun. The send is
now marked in flight (committed) before the provider call; a rerun that finds the mark asks the
provider (Twilio's Messages list) before it sends again. The real Twilio channel against a
Twilio played by pytest-httpserver, on both databases."""

from __future__ import annotations

import email.utils
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select
from werkzeug import Response

from integrations.delivery import build_channel
from integrations.settings import SmsSettings
from service.demo import session_completed, signed_event
from service.persistence.tables import sends_in_flight, surveys
from service.web import create_app
from support import DEMO_SECRET, loopback_network

ACCOUNT = "AC0123456789abcdef0123456789abcdef"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
PHONE = "+15551234567"


class WorkerKilled(BaseException):
    """The process dies: nothing after this point runs (the runner catches only Exception)."""


class Twilio:
    """Keeps the messages it accepted and lists them, as Twilio's Messages resource does."""

    def __init__(self, httpserver, clock):
        self.accepted: list[dict] = []
        self.clock = clock
        httpserver.expect_request(MESSAGES, method="POST").respond_with_handler(self.create)
        httpserver.expect_request(MESSAGES, method="GET").respond_with_handler(self.list)

    def create(self, request):
        now = email.utils.format_datetime(self.clock(), usegmt=True)
        message = {"sid": f"SM{len(self.accepted):032d}", "direction": "outbound-api",
                   "to": request.form["To"], "from": request.form["From"],
                   "body": request.form["Body"], "status": "sent", "date_created": now,
                   "date_sent": now}
        self.accepted.append(message)
        return Response(json.dumps(message), status=201, content_type="application/json")

    def list(self, request):
        found = [m for m in self.accepted if m["to"] == request.args["To"]]
        return Response(json.dumps({"messages": found, "next_page_uri": None}),
                        content_type="application/json")


@pytest.fixture
def twilio(httpserver, clock):
    return Twilio(httpserver, clock)


@pytest.fixture
def sms_channel(httpserver, channels):
    """The real Twilio channel in place of the fake one; `kill` says when the worker dies."""
    real = build_channel("sms", SmsSettings(ACCOUNT, "tok", "+15550001111",
                                            api_base=httpserver.url_for("/"),
                                            network=loopback_network()))

    class Dying:
        name = "sms"
        kill: str | None = None  # "after-accepted" | "before-call" | None

        def accepts(self, contact):
            return real.accepts(contact)

        def find_sent(self, message, since):
            return real.find_sent(message, since)

        def send(self, message):
            if self.kill == "before-call":
                self.kill = None
                raise WorkerKilled()
            receipt = real.send(message)
            if self.kill == "after-accepted":
                self.kill = None
                raise WorkerKilled()
            return receipt

    channels["sms"] = Dying()
    return channels["sms"]


def session(services, clock):
    client = create_app(services=services).test_client()
    body, headers = signed_event(DEMO_SECRET, session_completed("enc-1", "pat-1", phone=PHONE),
                                 when=datetime.now(timezone.utc))
    assert client.post("/webhooks/northside/events", data=body, headers=headers).status_code == 202


def rerun_after_the_crash(services, clock, run_due):
    # The relay publishes a job again once it has been published for redeliver_after seconds
    # without finishing: what happens after a worker died mid-job.
    clock.advance(seconds=services.settings.redeliver_after + 1)
    run_due()


def survey_row(services) -> dict:
    with services.engine.begin() as conn:
        return dict(conn.execute(select(surveys)).mappings().one())


def marks(services) -> int:
    with services.engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(sends_in_flight)).scalar()


def test_a_worker_killed_after_twilio_accepted_does_not_send_again(
        services, practice, clock, run_due, twilio, sms_channel, httpserver):
    session(services, clock)
    sms_channel.kill = "after-accepted"
    with pytest.raises(WorkerKilled):
        run_due()
    assert len(twilio.accepted) == 1 and survey_row(services)["status"] == "scheduled"
    assert marks(services) == 1  # committed before the provider was called

    rerun_after_the_crash(services, clock, run_due)

    assert len(twilio.accepted) == 1  # asked, found, not sent again
    assert [r.method for r, _ in httpserver.log] == ["POST", "GET"]
    row = survey_row(services)
    assert row["status"] == "sent" and row["channel"] == "sms"
    assert marks(services) == 0


def test_a_worker_killed_before_the_call_sends_once_on_the_rerun(
        services, practice, clock, run_due, twilio, sms_channel, httpserver):
    session(services, clock)
    sms_channel.kill = "before-call"
    with pytest.raises(WorkerKilled):
        run_due()
    assert twilio.accepted == [] and marks(services) == 1

    rerun_after_the_crash(services, clock, run_due)

    assert len(twilio.accepted) == 1  # asked, not found (both questions), sent
    assert [r.method for r, _ in httpserver.log] == ["GET", "GET", "POST"]
    assert survey_row(services)["status"] == "sent" and marks(services) == 0


def test_an_ordinary_send_asks_nothing(services, practice, clock, run_due, twilio, sms_channel,
                                       httpserver):
    session(services, clock)
    run_due()
    assert [r.method for r, _ in httpserver.log] == ["POST"]
    assert survey_row(services)["status"] == "sent" and marks(services) == 0


def test_the_reminder_is_not_taken_for_the_invitation(services, practice, clock, run_due, twilio,
                                                      sms_channel, httpserver):
    session(services, clock)
    run_due()
    clock.advance(hours=24, seconds=1)
    sms_channel.kill = "after-accepted"
    with pytest.raises(WorkerKilled):
        run_due()
    rerun_after_the_crash(services, clock, run_due)

    assert len(twilio.accepted) == 2  # the invitation and one reminder
    assert survey_row(services)["reminded_at"] is not None
