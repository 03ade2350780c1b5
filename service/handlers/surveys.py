"""Surveys: schedule one per completed session, send and remind through the practice's
channels, expire, and take the client's answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Connection

from integrations.delivery.errors import DeliveryPermanentError, DeliveryTemporaryError
from integrations.delivery.port import Contact, SurveyMessage
from service import practices
from service.domain.instruments import Instrument
from service.handlers.ports import Ports
from service.handlers.runner import JobContext, PermanentFailure, RetryLater
from service.handlers.timing import send_time
from service.intake.facts import SessionFacts
from service.persistence import outbox
from service.persistence.queries import clients, responses, sends
from service.persistence.queries import surveys as stored
from service.persistence.queries.surveys import (
    ANSWERED,
    CLOSED,
    EXPIRED,
    FAILED,
    OPEN,
    SCHEDULED,
    SENT,
    SKIPPED,
)
from service.practices import Practice

log = structlog.get_logger(__name__)

__all__ = [
    "ANSWERED", "CLOSED", "EXPIRED", "FAILED", "OPEN", "SCHEDULED", "SENT", "SKIPPED",
    "OpenSurvey", "SurveyUnavailable", "expire_survey", "open_survey", "record_answers",
    "schedule_survey", "send_invitation", "send_reminder",
]


def schedule_survey(ctx: JobContext, conn: Connection, practice: Practice, event_id: str,
                    session: SessionFacts) -> str | None:
    """Create the survey for a completed session; returns why not, if it is not sent.
    Raises ContactNotStorable (before writing anything) for a contact value that cannot fit."""
    now = ctx.services.clock()
    client = clients.count_session(conn, ctx.services.vault, practice.id, session.patient_id,
                                  session.contact, now)
    _close_open_surveys(ctx, conn, practice.id, session.patient_id)
    if client["opted_out_at"] is not None:
        return "the client opted out of surveys"
    settings = practice.survey
    if (client["sessions_completed"] - 1) % settings.every_nth_session:
        return f"surveys go out every {settings.every_nth_session} sessions"
    survey_id = str(uuid.uuid4())
    due = send_time(now, settings.send_delay_minutes, practice.timezone, settings.quiet_hours)
    created = stored.create(conn, dict(
        id=survey_id, practice_id=practice.id, patient_id=session.patient_id,
        session_id=session.session_id, event_id=event_id, instrument_id=settings.instrument,
        status=SCHEDULED, created_at=now, send_at=due,
        expires_at=due + timedelta(hours=settings.expire_after_hours),
        session_ended_at=session.ended_at or now,
    ))
    if not created:
        return "a survey for this session already exists"
    ctx.enqueue(conn, "survey.send", {"survey_id": survey_id}, available_at=due,
                dedupe_key=f"send:{survey_id}")
    return None


def _close_open_surveys(ctx: JobContext, conn: Connection, practice_id: str,
                        patient_id: str) -> None:
    """The client's next session took place: an open survey closes. One that reached the client
    and was not answered counts as not returned, as an expired one does."""
    closed = stored.close_open(conn, practice_id, patient_id, "the next session took place")
    for survey_id, sent_at in closed:
        if sent_at is not None:
            ctx.enqueue(conn, "survey.missed", {"survey_id": survey_id},
                        dedupe_key=f"assess:{survey_id}")


def send_invitation(ctx: JobContext) -> None:
    """Job `survey.send`: deliver the link through the first channel that works."""
    survey, practice, client = _load(ctx)
    if survey["status"] != SCHEDULED:
        return
    if client and client["opted_out_at"] is not None:
        return _finish(ctx, survey["id"], status=SKIPPED, status_reason="the client opted out")
    now = ctx.services.clock()
    expires_at = now + timedelta(hours=practice.survey.expire_after_hours)
    channel, refused = _deliver(ctx, survey, practice, client, "invitation", expires_at)
    with ctx.services.engine.begin() as conn:
        ctx.complete(conn)
        sends.clear(conn, survey["id"], "invitation")
        if channel is None:
            stored.set_status(conn, survey["id"], status=FAILED, status_reason=(
                f"no channel could reach the client ({'; '.join(refused)})"))
            return
        if not stored.move(conn, survey["id"], SCHEDULED, status=SENT, channel=channel,
                           sent_at=now, expires_at=expires_at):
            return  # answered (or closed) in the moment between the message and this commit
        remind_at = now + timedelta(hours=practice.survey.reminder_after_hours)
        ctx.enqueue(conn, "survey.remind", {"survey_id": survey["id"]}, available_at=remind_at,
                    dedupe_key=f"remind:{survey['id']}")
        ctx.enqueue(conn, "survey.expire", {"survey_id": survey["id"]}, available_at=expires_at,
                    dedupe_key=f"expire:{survey['id']}")


def send_reminder(ctx: JobContext) -> None:
    """Job `survey.remind`: one reminder, only if the survey is still unanswered."""
    survey, practice, client = _load(ctx)
    if survey["status"] != SENT or survey["reminded_at"] is not None:
        return
    if client and client["opted_out_at"] is not None:
        return
    channel, _refused = _deliver(ctx, survey, practice, client, "reminder", survey["expires_at"],
                                 only=survey["channel"])
    with ctx.services.engine.begin() as conn:
        ctx.complete(conn)
        sends.clear(conn, survey["id"], "reminder")
        if channel:
            stored.move(conn, survey["id"], SENT, reminded_at=ctx.services.clock())


def expire_survey(ctx: JobContext) -> None:
    """Job `survey.expire`: close an unanswered survey and let the rupture rules see it."""
    survey_id = ctx.job.payload["survey_id"]
    with ctx.services.engine.begin() as conn:
        if stored.move(conn, survey_id, SENT, status=EXPIRED):
            # A survey not returned after a low session is itself a signal (science §3.2 d).
            ctx.enqueue(conn, "survey.missed", {"survey_id": survey_id},
                        dedupe_key=f"assess:{survey_id}")
        ctx.complete(conn)


def _deliver(ctx: JobContext, survey: dict, practice: Practice, client: dict | None, kind: str,
             expires_at: datetime, only: str | None = None) -> tuple[str | None, list[str]]:
    """Try the practice's channels in order: the channel that worked (or None), and refusals."""
    contact = Contact(phone=client and client["phone"], email=client and client["email"],
                      locale=client and client["locale"])
    temporary: list[DeliveryTemporaryError] = []
    permanent: list[str] = []
    for name in practice.delivery.channels:
        if only and name != only:
            continue
        failure = _send_by(ctx, name, survey, practice, contact, kind, expires_at)
        if failure is None:
            log.info("survey delivered", channel=name, kind=kind, survey_id=survey["id"])
            return name, permanent
        if isinstance(failure, DeliveryTemporaryError):
            temporary.append(failure)
        else:
            permanent.append(f"{name}: {failure}")
    if temporary:
        delays = [e.retry_after for e in temporary if e.retry_after]
        raise RetryLater("every channel failed for now", max(delays) if delays else None,
                         {"refused": permanent})
    log.error("survey undeliverable", survey_id=survey["id"], refused=permanent)
    return None, permanent


def _send_by(ctx: JobContext, name: str, survey: dict, practice: Practice, contact: Contact,
             kind: str, expires_at: datetime) -> DeliveryTemporaryError | str | None:
    """Send through one channel: None when it went out, else the temporary error or why the
    channel refused for good."""
    channel = ctx.services.channel_for(name, practice.delivery.settings_for(name))
    address = channel.accepts(contact)
    if address is None:
        return "no address"
    try:
        _send_once(ctx, name, channel, _message(ctx.services, survey, practice, contact, kind,
                                                address, expires_at))
    except DeliveryTemporaryError as error:
        log.warning("delivery failed for now", channel=name, survey_id=survey["id"])
        return error
    except DeliveryPermanentError as error:
        log.warning("delivery refused", channel=name, survey_id=survey["id"], reason=error.reason)
        return error.reason
    return None


def _send_once(ctx: JobContext, name: str, channel, message: SurveyMessage) -> None:
    """Hand the message to the provider, at most once as far as the provider can tell: the
    send is marked in flight (committed) before the call, so a rerun after a worker died
    between the provider's "accepted" and the job's commit finds the mark and asks the
    provider (`find_sent`) before sending again. SMTP cannot be asked: e-mail is sent again,
    with the same Message-ID."""
    key = (message.survey_id, message.kind, name)
    with ctx.services.engine.begin() as conn:
        since = sends.in_flight_since(conn, *key)
        if since is None:
            sends.mark(conn, *key, ctx.services.clock())
    if since is not None:
        receipt = channel.find_sent(message, since)
        log.info("send in flight found", channel=name, kind=message.kind,
                 survey_id=message.survey_id, already_sent=receipt is not None)
        if receipt is not None:
            return
    channel.send(message)


def _message(ports: Ports, survey: dict, practice: Practice, contact: Contact, kind: str,
             address: str, expires_at: datetime) -> SurveyMessage:
    link = ports.survey_link(ports.signer.token_for(survey["id"]))
    return SurveyMessage(
        kind=kind, to=address, link=link, practice_name=practice.name,
        locale=(contact.locale or "en"),
        expires_at=expires_at.astimezone(ZoneInfo(practice.timezone)),
        unsubscribe_link=f"{link}/unsubscribe", survey_id=survey["id"],
    )


def _load(ctx: JobContext) -> tuple[dict, Practice, dict | None]:
    with ctx.services.engine.begin() as conn:
        survey = stored.find(conn, ctx.job.payload["survey_id"])
        if survey is None:
            raise PermanentFailure("survey no longer exists")
        practice = practices.load(conn, ctx.services.box, survey["practice_id"])
        client = clients.find(conn, ctx.services.vault, survey["practice_id"],
                              survey["patient_id"])
    return survey, practice, client


def _finish(ctx: JobContext, survey_id: str, **values) -> None:
    with ctx.services.engine.begin() as conn:
        ctx.complete(conn)
        stored.set_status(conn, survey_id, **values)


# ---- the client's side: reading and answering ------------------------------------------------

class SurveyUnavailable(Exception):
    """The link cannot be used: `status` is 404 (unknown), 409 (answered) or 410 (expired)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class OpenSurvey:
    id: str
    practice_id: str
    practice_name: str
    instrument: Instrument
    expires_at: datetime
    locale: str


def open_survey(ports: Ports, token: str, instruments: dict[str, Instrument]) -> OpenSurvey:
    """The survey behind a link, if it can still be answered."""
    survey_id = ports.signer.survey_id(token)
    if survey_id is None:
        raise SurveyUnavailable(404, "this link is not known")
    with ports.engine.begin() as conn:
        row = stored.find_with_locale(conn, survey_id)
        practice = practices.load(conn, ports.box, row["practice_id"]) if row else None
    # A scheduled survey is answerable: its link exists only once the message has gone out, and
    # the client may tap it before the worker has committed the survey as sent.
    if row is None or row["status"] in (SKIPPED, FAILED):
        raise SurveyUnavailable(404, "this link is not known")
    if row["status"] == ANSWERED:
        raise SurveyUnavailable(409, "this survey has already been answered")
    if row["status"] in (EXPIRED, CLOSED) or row["expires_at"] <= ports.clock():
        raise SurveyUnavailable(410, "this survey has closed")
    return OpenSurvey(row["id"], row["practice_id"], practice.name,
                      instruments[row["instrument_id"]], row["expires_at"], row["locale"] or "en")


def record_answers(ports: Ports, survey: OpenSurvey, answers: dict, scores) -> str:
    """Store validated, scored answers and queue the write-back; single use (409 on a race)."""
    response_id = str(uuid.uuid4())
    now = ports.clock()
    with ports.engine.begin() as conn:
        if not stored.move(conn, survey.id, OPEN, status=ANSWERED, answered_at=now):
            raise SurveyUnavailable(409, "this survey has already been answered")
        responses.add(conn, ports.vault, response_id, survey.id, answers, scores, now)
        outbox.enqueue(conn, "response.writeback", {"survey_id": survey.id}, now=now,
                       practice_id=survey.practice_id, dedupe_key=f"assess:{survey.id}")
    log.info("survey answered", survey_id=survey.id, practice_id=survey.practice_id)
    return response_id
