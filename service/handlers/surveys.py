"""Surveys: schedule one per completed session, send and remind through the practice's
channels, expire, and take the client's answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Connection, select, update

from service import practices
from service.bootstrap import Services
from service.domain.instruments import Instrument
from service.handlers.runner import JobContext, PermanentFailure, RetryLater
from service.handlers.timing import send_time
from service.persistence import outbox
from service.persistence.sql import insert_if_absent
from service.persistence.tables import clients, responses, surveys
from service.practices import Practice

log = structlog.get_logger(__name__)

SCHEDULED, SENT, ANSWERED, EXPIRED, CLOSED, SKIPPED, FAILED = (
    "scheduled", "sent", "answered", "expired", "closed", "skipped", "failed")
OPEN = (SCHEDULED, SENT)


def schedule_survey(ctx: JobContext, conn: Connection, practice: Practice, event_id: str,
                    session: dict) -> str | None:
    """Create the survey for a completed session; returns why not, if it is not sent."""
    now = ctx.services.clock()
    patient_id = session["patient_id"]
    client = _remember_client(conn, practice.id, patient_id, session.get("contact"), now)
    _close_open_surveys(ctx, conn, practice.id, patient_id)
    if client["opted_out_at"] is not None:
        return "the client opted out of surveys"
    every = practice.survey.get("every_nth_session", 1)
    if (client["sessions_completed"] - 1) % every:
        return f"surveys go out every {every} sessions"
    settings = practice.survey
    survey_id = str(uuid.uuid4())
    due = send_time(now, settings["send_delay_minutes"], practice.timezone, settings.get("quiet_hours"))
    inserted = insert_if_absent(conn, surveys, dict(
        id=survey_id, practice_id=practice.id, patient_id=patient_id,
        session_id=session["session_id"], event_id=event_id,
        instrument_id=settings["instrument"], status=SCHEDULED, created_at=now, send_at=due,
        expires_at=due + timedelta(hours=settings["expire_after_hours"]),
        session_ended_at=_parse_time(session.get("ended_at")) or now,
    ))
    if not inserted:
        return "a survey for this session already exists"
    ctx.enqueue(conn, "survey.send", {"survey_id": survey_id}, available_at=due,
                dedupe_key=f"send:{survey_id}")
    return None


def _close_open_surveys(ctx: JobContext, conn: Connection, practice_id: str, patient_id: str) -> None:
    """The client's next session took place: an open survey closes. One that reached the client
    and was not answered counts as not returned, as an expired one does."""
    closed = conn.execute(update(surveys).where(
        surveys.c.practice_id == practice_id, surveys.c.patient_id == patient_id,
        surveys.c.status.in_(OPEN)).values(status=CLOSED, status_reason="the next session took place")
        .returning(surveys.c.id, surveys.c.sent_at)).all()
    for survey_id, sent_at in closed:
        if sent_at is not None:
            ctx.enqueue(conn, "survey.missed", {"survey_id": survey_id}, dedupe_key=f"assess:{survey_id}")


def send_invitation(ctx: JobContext) -> None:
    """Job `survey.send`: deliver the link through the first channel that works."""
    survey, practice, client = _load(ctx)
    if survey["status"] != SCHEDULED:
        return
    if client and client["opted_out_at"] is not None:
        return _finish(ctx, survey["id"], status=SKIPPED, status_reason="the client opted out")
    now = ctx.services.clock()
    expires_at = now + timedelta(hours=practice.survey["expire_after_hours"])
    channel, refused = _deliver(ctx, survey, practice, client, "invitation", expires_at)
    with ctx.services.engine.begin() as conn:
        ctx.complete(conn)
        if channel is None:
            conn.execute(update(surveys).where(surveys.c.id == survey["id"]).values(
                status=FAILED, status_reason=f"no channel could reach the client ({'; '.join(refused)})"))
            return
        sent = conn.execute(update(surveys).where(
            surveys.c.id == survey["id"], surveys.c.status == SCHEDULED).values(
            status=SENT, channel=channel, sent_at=now, expires_at=expires_at)).rowcount
        if not sent:  # answered (or closed) in the moment between the message and this commit
            return
        remind_at = now + timedelta(hours=practice.survey["reminder_after_hours"])
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
        if channel:
            conn.execute(update(surveys).where(surveys.c.id == survey["id"], surveys.c.status == SENT)
                         .values(reminded_at=ctx.services.clock()))


def expire_survey(ctx: JobContext) -> None:
    """Job `survey.expire`: close an unanswered survey and let the rupture rules see it."""
    with ctx.services.engine.begin() as conn:
        closed = conn.execute(update(surveys).where(
            surveys.c.id == ctx.job.payload["survey_id"], surveys.c.status == SENT
        ).values(status=EXPIRED)).rowcount
        if closed:
            # A survey not returned after a low session is itself a signal (science §3.2 d).
            ctx.enqueue(conn, "survey.missed", {"survey_id": ctx.job.payload["survey_id"]},
                        dedupe_key=f"assess:{ctx.job.payload['survey_id']}")
        ctx.complete(conn)


def _deliver(ctx: JobContext, survey: dict, practice: Practice, client: dict | None, kind: str,
             expires_at: datetime, only: str | None = None) -> tuple[str | None, list[str]]:
    """Try the practice's channels in order: the channel that worked (or None), and refusals."""
    from integrations.delivery.errors import DeliveryPermanentError, DeliveryTemporaryError
    from integrations.delivery.port import Contact, SurveyMessage

    contact = Contact(phone=client and client["phone"], email=client and client["email"],
                      locale=client and client["locale"])
    token = ctx.services.signer.token_for(survey["id"])
    temporary: list[DeliveryTemporaryError] = []
    permanent: list[str] = []
    for name in practice.delivery["channels"]:
        if only and name != only:
            continue
        channel = ctx.services.channel_for(name, practice.delivery.get(name))
        address = channel.accepts(contact)
        if address is None:
            permanent.append(f"{name}: no address")
            continue
        message = SurveyMessage(
            kind=kind, to=address, link=ctx.services.survey_link(token),
            practice_name=practice.name, locale=(contact.locale or "en"),
            expires_at=expires_at.astimezone(ZoneInfo(practice.timezone)),
            unsubscribe_link=f"{ctx.services.survey_link(token)}/unsubscribe", survey_id=survey["id"],
        )
        try:
            channel.send(message)
        except DeliveryTemporaryError as error:
            temporary.append(error)
            log.warning("delivery failed for now", channel=name, survey_id=survey["id"])
            continue
        except DeliveryPermanentError as error:
            permanent.append(f"{name}: {error.reason}")
            log.warning("delivery refused", channel=name, survey_id=survey["id"], reason=error.reason)
            continue
        log.info("survey delivered", channel=name, kind=kind, survey_id=survey["id"])
        return name, permanent
    if temporary:
        delays = [e.retry_after for e in temporary if e.retry_after]
        raise RetryLater("every channel failed for now", max(delays) if delays else None,
                         {"refused": permanent})
    log.error("survey undeliverable", survey_id=survey["id"], refused=permanent)
    return None, permanent


def _load(ctx: JobContext) -> tuple[dict, Practice, dict | None]:
    with ctx.services.engine.begin() as conn:
        survey = conn.execute(select(surveys).where(
            surveys.c.id == ctx.job.payload["survey_id"])).mappings().first()
        if survey is None:
            raise PermanentFailure("survey no longer exists")
        practice = practices.load(conn, ctx.services.box, survey["practice_id"])
        client = conn.execute(select(clients).where(
            clients.c.practice_id == survey["practice_id"],
            clients.c.patient_id == survey["patient_id"])).mappings().first()
    return dict(survey), practice, (dict(client) if client else None)


def _finish(ctx: JobContext, survey_id: str, **values) -> None:
    with ctx.services.engine.begin() as conn:
        ctx.complete(conn)
        conn.execute(update(surveys).where(surveys.c.id == survey_id).values(**values))


def _remember_client(conn: Connection, practice_id: str, patient_id: str, contact: dict | None,
                     now: datetime) -> dict:
    key = (clients.c.practice_id == practice_id, clients.c.patient_id == patient_id)
    insert_if_absent(conn, clients, dict(practice_id=practice_id, patient_id=patient_id,
                                         sessions_completed=0, updated_at=now))
    values: dict = {"sessions_completed": clients.c.sessions_completed + 1, "updated_at": now}
    for field in ("phone", "email", "locale"):
        if contact and contact.get(field):
            values[field] = contact[field]
    conn.execute(update(clients).where(*key).values(**values))
    return dict(conn.execute(select(clients).where(*key)).mappings().one())


def _parse_time(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


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


def open_survey(services: Services, token: str, instruments: dict[str, Instrument]) -> OpenSurvey:
    """The survey behind a link, if it can still be answered."""
    survey_id = services.signer.survey_id(token)
    if survey_id is None:
        raise SurveyUnavailable(404, "this link is not known")
    with services.engine.begin() as conn:
        row = conn.execute(select(surveys, clients.c.locale).outerjoin(clients, (
            clients.c.practice_id == surveys.c.practice_id) & (clients.c.patient_id == surveys.c.patient_id)
        ).where(surveys.c.id == survey_id)).mappings().first()
        practice = practices.load(conn, services.box, row["practice_id"]) if row else None
    # A scheduled survey is answerable: its link exists only once the message has gone out, and
    # the client may tap it before the worker has committed the survey as sent.
    if row is None or row["status"] in (SKIPPED, FAILED):
        raise SurveyUnavailable(404, "this link is not known")
    if row["status"] == ANSWERED:
        raise SurveyUnavailable(409, "this survey has already been answered")
    if row["status"] in (EXPIRED, CLOSED) or row["expires_at"] <= services.clock():
        raise SurveyUnavailable(410, "this survey has closed")
    return OpenSurvey(row["id"], row["practice_id"], practice.name,
                      instruments[row["instrument_id"]], row["expires_at"], row["locale"] or "en")


def record_answers(services: Services, survey: OpenSurvey, answers: dict, scores) -> str:
    """Store validated, scored answers and queue the write-back; single use (409 on a race)."""
    response_id = str(uuid.uuid4())
    now = services.clock()
    with services.engine.begin() as conn:
        taken = conn.execute(update(surveys).where(
            surveys.c.id == survey.id, surveys.c.status.in_(OPEN)).values(
            status=ANSWERED, answered_at=now)).rowcount
        if not taken:
            raise SurveyUnavailable(409, "this survey has already been answered")
        conn.execute(responses.insert().values(
            id=response_id, survey_id=survey.id, answers=answers, total=scores.total,
            subscales=dict(scores.subscales), pomp=scores.pomp, submitted_at=now))
        outbox.enqueue(conn, "response.writeback", {"survey_id": survey.id}, now=now,
                       practice_id=survey.practice_id, dedupe_key=f"assess:{survey.id}")
    log.info("survey answered", survey_id=survey.id, practice_id=survey.practice_id)
    return response_id
