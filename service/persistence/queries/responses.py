"""Survey responses: the validated answers and the scores computed once, when they arrived.

The answers document (with any free text) is stored sealed with the client-data key; callers
give and get it in the clear. The scores stay readable for the rules and the trend view.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from service.crypto import ClientVault
from service.persistence.tables import responses


def add(conn: Connection, vault: ClientVault, response_id: str, survey_id: str, answers: dict,
        scores, now: datetime) -> None:
    """Store validated answers with their scores (service.domain.scoring.Scores)."""
    conn.execute(responses.insert().values(
        id=response_id, survey_id=survey_id, sealed_answers=vault.seal(answers),
        total=scores.total, subscales=dict(scores.subscales), pomp=scores.pomp,
        submitted_at=now))


def for_survey(conn: Connection, vault: ClientVault, survey_id: str) -> dict | None:
    """The response to a survey (id, answers, total, subscales, pomp, submitted_at), or None."""
    row = conn.execute(
        select(responses).where(responses.c.survey_id == survey_id)
    ).mappings().first()
    return opened(vault, row) if row else None


def opened(vault: ClientVault, row) -> dict:
    """A row holding `sealed_answers`, with `answers` in the clear instead (None stays None)."""
    found = {name: value for name, value in dict(row).items() if name != "sealed_answers"}
    sealed = row["sealed_answers"]
    return {**found, "answers": vault.open(sealed) if sealed is not None else None}
