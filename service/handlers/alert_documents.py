"""The documents an open rupture is written as (`alerts.write` document, CONTRACT §9.2): for
each `WriteDocument` of a write-back plan, the one-page PDF of the client's trend
(`service.clinician.trend_pdf`) and the words that go with it, ready for the record writer.

Read from the database like the SMART view reads it (the same query and trend), with the
episode the plan writes for, so a document that shows the repair still tells why the rupture
opened. The PDF holds the patient's id and scores, no name, contact or free-text answer.
"""

from __future__ import annotations

from datetime import datetime

from integrations.ehr.records import AlertDocument, AllianceRecord
from service.clinician.chart import MAX_POINTS
from service.clinician.trend import Trend, build_trend
from service.clinician.trend_pdf import AlertFacts, heading, render_trend_pdf
from service.domain.episodes import RuptureEpisode
from service.domain.instruments import Instrument
from service.domain.ruptures import RuptureRules
from service.domain.writeback import WriteBackPlan, WriteDocument
from service.handlers.ports import Ports
from service.persistence.queries import trend as trend_queries
from service.practices import Practice


def alert_documents(services: Ports, practice: Practice, instrument: Instrument,
                    plan: WriteBackPlan, record: AllianceRecord,
                    episode: RuptureEpisode | None) -> dict[str, AlertDocument]:
    """The documents the plan writes, by identifier (none: no query, no PDF)."""
    wanted = [effect for effect in plan.effects if isinstance(effect, WriteDocument)]
    if not wanted or episode is None:
        return {}
    with services.engine.begin() as conn:
        rows = trend_queries.client_surveys(conn, practice.id, record.patient_id)
    opened = trend_queries.EpisodeRow(episode.id, episode.opened_at, episode.opened_by_survey_id)
    trend = build_trend(record.patient_id, rows, instrument,
                        RuptureRules.from_overrides(practice.rupture_rules), practice.timezone,
                        opened, bands_for_last=MAX_POINTS)
    now = services.clock()
    return {effect.identifier: document(trend, effect, record, now, practice.timezone)
            for effect in wanted}


def document(trend: Trend, effect: WriteDocument, record: AllianceRecord, now: datetime,
             timezone: str) -> AlertDocument:
    """One document: the PDF, its title and description."""
    facts = AlertFacts(effect.state, effect.text, record.session_id, record.reasons, now,
                       timezone)
    description = (f"Alliance rupture repaired (it was: {heading(effect.text).lower()})"
                   if effect.state == "repaired" else effect.text)
    return AlertDocument(
        identifier=effect.identifier, title=f"Therapeutic alliance report: {facts.title}",
        description=description, pdf=render_trend_pdf(trend, facts), created=now,
        replaces=effect.replaces)
