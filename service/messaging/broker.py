"""Connections to the broker: RabbitMQ with publisher confirms, or the embedded SQLite queue."""

from __future__ import annotations

import contextlib
import os
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


def describe_broker(url: str) -> str:
    """The broker in words for operators, without its password."""
    if url.startswith("sqla+sqlite:///"):
        return f"the embedded queue {url.removeprefix('sqla+sqlite:///')}"
    return f"the broker {Connection(url).as_uri()}"  # kombu masks the password


def what_to_do(url: str) -> str:
    """The advice that goes with a broker that cannot be used."""
    if url.startswith("sqla+sqlite:///"):
        return ("check that its folder exists and is writable and that the file is a SQLite "
                "database; deleting the file is safe, unfinished jobs are published again")
    return "check that RabbitMQ runs and that ALLIANCE_BROKER_URL is right"


def embedded_queue_problem(queue_db: Path) -> str | None:
    """Why the embedded queue file cannot be used, or None (a cheap check for /readyz)."""
    folder = queue_db.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} does not exist or is not writable"
    try:
        with contextlib.closing(sqlite3.connect(queue_db, timeout=2)) as db:
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error as error:
        return f"{queue_db} cannot be read as a SQLite database ({error})"
    return None
