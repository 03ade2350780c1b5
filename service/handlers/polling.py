"""FHIR polling on the outbox scheduler: the recurring `ehr.poll` job of each practice.

Each run searches the EHR from the practice's cursor (minus the overlap), records every result
as an arrival, moves the cursor to the newest `meta.lastUpdated` it saw, and schedules the next
run as an outbox row, in the transaction that finishes this one. So the schedule lives in the
database, as reminders do: a worker that dies mid-poll leaves its job to be run again (the
arrivals it already recorded are duplicates then), and no poll is ever lost.

Next runs are due on a grid of `every_minutes` and keyed by their slot, so two chains (a
practice applied again while its chain is queued) merge into one at their next slot. A 429 or
5xx answer backs off (Retry-After, else exponential) and keeps the chain; an EHR that refuses
(401, 403, a bad request) dead-letters the job, and `alliance dlq replay` resumes it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection

from integrations.ehr.errors import EhrAuthError, EhrPermanentError, EhrTransientError
from integrations.settings import EhrPollSettings
from service import practices
from service.handlers.events import record_arrival
from service.handlers.ports import Ports
from service.handlers.runner import JobContext, PermanentFailure, backoff_seconds
from service.intake.polling import arrival_from_resource, last_updated, search_params
from service.persistence import outbox
from service.persistence.queries import poll_cursors
from service.practices import Practice

log = structlog.get_logger(__name__)

JOB_KIND = "ehr.poll"
# Pages one run reads; a longer backlog is read by the next run, due at once.
MAX_POLL_PAGES = 50
MAX_BACKOFF_SECONDS = 3600.0


@dataclass
class PollResult:
    resource: str
    since: datetime
    outcomes: Counter = field(default_factory=Counter)
    newest: datetime | None = None
    more: bool = False  # stopped at the page bound: a backlog remains

    @property
    def found(self) -> int:
        return sum(self.outcomes.values())


def start_polling(conn: Connection, practice_id: str, poll: EhrPollSettings | None,
                  now: datetime) -> None:
    """On `practice apply`: start the cursor now (history is `practice poll --since`'s job)
    and queue a first run; a chain already queued merges with it at its next slot."""
    if not poll:
        return
    poll_cursors.start_at(conn, practice_id, poll.resource, now)
    outbox.enqueue(
        conn,
        JOB_KIND,
        {"practice_id": practice_id},
        now=now,
        practice_id=practice_id,
        dedupe_key=f"poll:{practice_id}:start:{now.isoformat()}",
    )


def poll_once(
    services: Ports, practice: Practice, since: datetime | None = None, resume: bool = False
) -> PollResult:
    """Search once and record every result; raises the gateway's errors (the caller decides).

    `since` (a backfill) replaces the cursor as the start; the cursor still only moves forward.
    `resume` continues a backlog cut short by the page bound: from the cursor itself (`ge`, no
    overlap), or a backlog longer than the overlap window would be read from its start again.
    """
    settings = practice.ehr.poll
    resource, now = settings.resource, services.clock()
    start = _search_start(services, practice.id, resource, since, now)
    result = PollResult(resource, start)
    params = _search_params(settings, start, since, resume)
    pages = services.ehr_for(practice.ehr).search_pages(resource, params)
    _record_pages(services, practice, pages, result)
    with services.engine.begin() as conn:
        poll_cursors.advance(conn, practice.id, resource, result.newest, now)
    _log_polled(practice.id, result)
    return result


def poll_ehr(ctx: JobContext) -> None:
    """Job `ehr.poll`: poll one practice, then schedule its next run."""
    services = ctx.services
    with services.engine.begin() as conn:
        practice = practices.load(conn, services.box, ctx.job.payload["practice_id"])
    poll = practice.ehr.poll if practice else None
    if not poll:
        return  # polling switched off (or the practice is gone): the chain ends here
    resume = bool(ctx.job.payload.get("resume"))
    try:
        result = poll_once(services, practice, resume=resume)
        delay, key = _next_run(services.clock(), practice.id, poll, result.more, ctx.job.id)
        resume = result.more
    except EhrTransientError as error:  # the retry resumes where this run would have
        delay, key = _back_off(services, practice, poll, error, ctx.job.id)
    except (EhrAuthError, EhrPermanentError) as error:
        raise PermanentFailure(
            "the EHR refused the poll's search",
            {"http_status": error.status, "resource_type": poll.resource},
        ) from None
    with services.engine.begin() as conn:
        payload = {"practice_id": practice.id, "resume": resume}
        ctx.enqueue(
            conn,
            JOB_KIND,
            payload,
            dedupe_key=key,
            available_at=services.clock() + timedelta(seconds=delay),
        )
        ctx.complete(conn)


def _search_start(
    services: Ports, practice_id: str, resource: str, since: datetime | None, now: datetime
) -> datetime:
    """Where the search starts: the backfill's `since`, else the cursor, else now."""
    with services.engine.begin() as conn:
        cursor = poll_cursors.get(conn, practice_id, resource)
    return since or (cursor.cursor if cursor and cursor.cursor else now)


def _search_params(
    settings: EhrPollSettings, start: datetime, since: datetime | None, resume: bool
) -> dict[str, str]:
    """A backfill or a resumed backlog reads from `start` exactly; a scheduled run overlaps."""
    if since or resume:
        return search_params(settings.resource, start, 0, "ge" if resume and not since else "gt")
    return search_params(settings.resource, start, settings.overlap_minutes)


def _record_pages(
    services: Ports, practice: Practice, pages: Iterable[list[dict]], result: PollResult
) -> None:
    for number, page in enumerate(pages, start=1):
        _record_page(services, practice, page, result)
        if number >= MAX_POLL_PAGES:
            # Perhaps more: the next run, due at once, finds out. Only when the cursor moved,
            # or a server that ignores _lastUpdated would be searched again and again.
            start = result.since
            result.more = bool(result.newest and (start is None or result.newest > start))
            break


def _record_page(
    services: Ports, practice: Practice, page: list[dict], result: PollResult
) -> None:
    for resource in page:
        try:
            arrival = arrival_from_resource(resource)
        except ValueError:
            result.outcomes["unusable"] += 1
            continue
        recorded = record_arrival(services, practice, arrival)
        result.outcomes[recorded.outcome] += 1
        updated = last_updated(resource)
        if updated and (result.newest is None or updated > result.newest):
            result.newest = updated


def _log_polled(practice_id: str, result: PollResult) -> None:
    log.info(
        "ehr polled",
        practice_id=practice_id,
        resource=result.resource,
        found=result.found,
        more=result.more,
        **{k.replace("-", "_"): v for k, v in result.outcomes.items()},
    )


def _next_run(
    now: datetime, practice_id: str, poll: EhrPollSettings, more: bool, job_id: str
) -> tuple[float, str]:
    """(seconds until the next run, its dedupe key): the next slot of the grid, or at once."""
    if more:
        return 0.0, f"poll:{practice_id}:more:{job_id}"
    every = poll.every_minutes * 60
    slot = int(now.timestamp() // every) + 1
    return slot * every - now.timestamp(), f"poll:{practice_id}:{every}:{slot}"


def _back_off(
    services: Ports, practice: Practice, poll: EhrPollSettings, error, job_id: str
) -> tuple[float, str]:
    with services.engine.begin() as conn:
        failures = poll_cursors.failed(
            conn, practice.id, poll.resource, str(error), services.clock()
        )
    delay = error.retry_after if error.retry_after is not None else backoff_seconds(failures - 1)
    log.warning(
        "ehr poll backs off", practice_id=practice.id, failures=failures, delay_s=round(delay, 1)
    )
    return min(delay, MAX_BACKOFF_SECONDS), f"poll:{practice.id}:retry:{job_id}"
