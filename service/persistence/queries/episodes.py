"""Rupture episodes (`service.domain.episodes`): at most one open per client, with its Flag."""

from __future__ import annotations

from dataclasses import asdict, fields

from sqlalchemy import Connection, select, update

from service.domain.episodes import OPEN, RuptureEpisode
from service.persistence.tables import rupture_episodes

_COLUMNS = [rupture_episodes.c[f.name] for f in fields(RuptureEpisode)]


def open_for_client(conn: Connection, practice_id: str, patient_id: str) -> RuptureEpisode | None:
    """The client's open episode, if there is one."""
    row = conn.execute(select(*_COLUMNS).where(
        rupture_episodes.c.practice_id == practice_id,
        rupture_episodes.c.patient_id == patient_id,
        rupture_episodes.c.status == OPEN)).mappings().first()
    return RuptureEpisode(**row) if row else None


def load(conn: Connection, episode_id: str | None) -> RuptureEpisode | None:
    """One episode by id (None for None: an assessment that belongs to no episode)."""
    if episode_id is None:
        return None
    row = conn.execute(
        select(*_COLUMNS).where(rupture_episodes.c.id == episode_id)
    ).mappings().first()
    return RuptureEpisode(**row) if row else None


def insert(conn: Connection, episode: RuptureEpisode) -> None:
    """Store a new episode."""
    conn.execute(rupture_episodes.insert().values(**asdict(episode)))


def save(conn: Connection, episode: RuptureEpisode) -> None:
    """Store an episode's Flag and status as they now stand."""
    values = {name: value for name, value in asdict(episode).items() if name != "id"}
    conn.execute(update(rupture_episodes).where(rupture_episodes.c.id == episode.id)
                 .values(**values))
