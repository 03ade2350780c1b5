"""A client's trend replayed through the real rupture engine (pure: no database), for the alert
document's tests: each session's answers scored and assessed in order, the
decisions and reasons stored as the trend query returns them, and the open episode."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from trend_history import FINE, GOOD, STORY

from service.clinician.trend import Trend, build_trend
from service.domain import instrument_catalogue
from service.domain.ruptures import RuptureRules, SessionObservation, assess_series
from service.persistence.queries.trend import EpisodeRow, SurveyRow

INSTRUMENT = instrument_catalogue()["brief-alliance-check"]
START = datetime(2026, 3, 2, 18, 0, tzinfo=timezone.utc)
# steady, a rupture, a survey not returned (the start of the trend view's story)
RUPTURE_STORY = STORY[:7]
REPAIR_STORY = [*RUPTURE_STORY, FINE, GOOD]


def replay(answers: list[dict | None], patient_id: str = "pat-17",
           timezone_name: str = "America/Chicago") -> tuple[Trend, list[SurveyRow]]:
    """The trend after these sessions (a week apart), with the episode the engine opened."""
    observations = [SessionObservation(f"enc-{n}", START + timedelta(weeks=n - 1), answer)
                    for n, answer in enumerate(answers, start=1)]
    assessments = assess_series(observations, INSTRUMENT, RuptureRules())
    rows, episode, opened = [], None, None
    for number, (answer, assessment) in enumerate(zip(answers, assessments), start=1):
        if assessment.decision in ("rupture", "unresolved") and episode is None:
            episode, opened = "episode-1", number
        in_episode = episode if assessment.decision in ("rupture", "unresolved",
                                                         "repaired") else None
        rows.append(_row(number, answer, assessment, in_episode))
    open_episode = None if episode is None else EpisodeRow(
        episode, START + timedelta(weeks=opened - 1), f"s{opened}")
    trend = build_trend(patient_id, rows, INSTRUMENT, RuptureRules(), timezone_name,
                        open_episode, bands_for_last=30)
    return trend, rows


def _row(number: int, answer: dict | None, assessment, episode_id: str | None) -> SurveyRow:
    when = START + timedelta(weeks=number - 1)
    scores = assessment.scores
    return SurveyRow(
        survey_id=f"s{number}", session_id=f"enc-{number}", instrument_id=INSTRUMENT.id,
        status="answered" if answer is not None else "expired", session_ended_at=when,
        created_at=when, total=None if scores is None else scores.total,
        subscales=None if scores is None else dict(scores.subscales),
        decision=assessment.decision, reasons=tuple(assessment.reasons), episode_id=episode_id)
