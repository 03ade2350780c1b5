"""Which handler runs which kind of outbox job (an explicit table, no decorators)."""

from __future__ import annotations

from service.handlers import escalation
from service.handlers.events import process_event
from service.handlers.polling import poll_ehr
from service.handlers.retention import retention_job
from service.handlers.runner import Handler
from service.handlers.surveys import expire_survey, send_invitation, send_reminder
from service.handlers.writeback import assess_and_write_back

JOB_HANDLERS: dict[str, Handler] = {
    "event.process": process_event,
    "ehr.poll": poll_ehr,
    "survey.send": send_invitation,
    "survey.remind": send_reminder,
    "survey.expire": expire_survey,
    "response.writeback": assess_and_write_back,
    "survey.missed": assess_and_write_back,
    "retention.run": retention_job,
    "escalation.due": escalation.escalate,
    "escalation.complete": escalation.complete,
    "escalation.email": escalation.send_email,
}
