"""Connections to the broker: RabbitMQ with publisher confirms, or the embedded SQLite queue."""

from __future__ import annotations

from kombu import Connection


def connect(url: str) -> Connection:
    """A kombu connection; AMQP publishes wait for the broker's confirm."""
    options = {}
    if url.startswith(("amqp", "pyamqp")):
        options = {"confirm_publish": True}
    elif url.startswith("sqla+"):
        # The embedded queue polls its table; 0.2 s keeps the demo snappy.
        options = {"polling_interval": 0.2}
    return Connection(url, transport_options=options, heartbeat=0, connect_timeout=5)
