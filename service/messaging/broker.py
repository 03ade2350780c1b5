"""Connections to the broker: RabbitMQ with publisher confirms, or the embedded SQLite queue."""

from __future__ import annotations

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
