"""Connections to the broker: RabbitMQ with publisher confirms, or the embedded SQLite queue."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from kombu import Connection


def connect(url: str) -> Connection:
    """A kombu connection; AMQP publishes wait for the broker's confirm."""
    options = {}
    if url.startswith(("amqp", "pyamqp")):
        options = {"confirm_publish": True}
    elif url.startswith("sqla+"):
        # kombu hands these to create_engine: wait for SQLite's lock instead of failing.
        options = {"connect_args": {"timeout": 30}}
    return Connection(url, transport_options=options, heartbeat=0, connect_timeout=5)


def purge_delivered(queue_db: Path) -> int:
    """Delete delivered messages from the embedded queue; returns how many.

    kombu's SQLAlchemy transport hides a message when it hands it out and never deletes it, so
    the file would grow forever. Deleting hidden ones loses nothing: a message handed out but
    never finished is published again from the outbox."""
    try:
        with contextlib.closing(sqlite3.connect(queue_db, timeout=30)) as db, db:
            return db.execute("DELETE FROM kombu_message WHERE visible = 0").rowcount
    except sqlite3.OperationalError:  # no message table yet: nothing was ever queued
        return 0
