"""Connections to the broker: RabbitMQ with publisher confirms, or the embedded SQLite queue."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
from pathlib import Path

from kombu import Connection

AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")


def broker_urls(url: str) -> list[str]:
    """The nodes of a broker URL: `amqp://a//;amqp://b//;amqp://c//` lists a cluster's nodes
    (kombu's failover syntax). Several URLs must all be AMQP: failover between unlike brokers
    would lose sight of the queued messages."""
    urls = [part.strip() for part in url.split(";") if part.strip()]
    if not urls:
        raise ValueError("the broker URL is empty")
    if len(urls) > 1 and not all(part.startswith(AMQP_SCHEMES) for part in urls):
        raise ValueError("several broker URLs (separated by ';') must all be amqp:// URLs "
                         "of the nodes of one RabbitMQ cluster")
    return urls


def connect(url: str) -> Connection:
    """A kombu connection; AMQP publishes wait for the broker's confirm.

    With several node URLs, each connection starts at a random node and fails over to the next
    in turn, so a pool of workers spreads over the cluster and outlives the loss of a node."""
    urls = broker_urls(url)
    options = {}
    if urls[0].startswith(AMQP_SCHEMES):
        options = {"confirm_publish": True}
    elif urls[0].startswith("sqla+"):
        # kombu hands these to create_engine: wait for SQLite's lock instead of failing.
        options = {"connect_args": {"timeout": 30}}
    start = random.randrange(len(urls))
    return Connection(";".join(urls[start:] + urls[:start]), transport_options=options,
                      heartbeat=0, connect_timeout=5, failover_strategy="round-robin")


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
    nodes = [Connection(node).as_uri() for node in url.split(";") if node.strip()]
    if len(nodes) > 1:
        return f"the broker nodes {', '.join(nodes)}"
    return f"the broker {nodes[0] if nodes else url}"  # kombu masks the password


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
