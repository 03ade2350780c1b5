"""`alliance mllp` (the HL7 v2 MLLP listener) and `alliance practice poll` (a FHIR poll now,
or a backfill): the doors for EHRs that cannot sign our events."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import datetime, timezone

import click


def register(main: click.Group, practice_group: click.Group, services: Callable) -> None:
    main.add_command(_mllp_command(services))
    practice_group.add_command(_poll_command(services))


def _mllp_command(services_factory: Callable) -> click.Command:
    @click.command("mllp")
    @click.option("--host", default="0.0.0.0", show_default=True)
    @click.option("--port", required=True, type=click.IntRange(0, 65535))
    @click.option(
        "--practice",
        "practice_id",
        default=None,
        help="Serve this practice only (else MSH-6, receiving facility, names it).",
    )
    @click.option("--max-message-kib", default=256, show_default=True, type=click.IntRange(1, 256))
    @click.option(
        "--idle-timeout",
        default=600.0,
        show_default=True,
        type=click.FloatRange(1),
        help="Seconds a connection may stay silent before it is closed.",
    )
    @click.option("--max-clients", default=32, show_default=True, type=click.IntRange(1, 1024))
    def mllp(
        host: str,
        port: int,
        practice_id: str | None,
        max_message_kib: int,
        idle_timeout: float,
        max_clients: int,
    ) -> None:
        """Receive HL7 v2 over MLLP: every message is stored before its ACK AA is sent."""
        from service.handlers.hl7v2 import mllp_callbacks
        from service.intake.mllp import MllpServer, start

        services = services_factory()
        on_message, on_too_large = mllp_callbacks(services, practice_id)
        server = MllpServer(
            (host, port),
            on_message,
            on_too_large,
            max_message=max_message_kib * 1024,
            idle_timeout=idle_timeout,
            max_clients=max_clients,
        )
        stopping = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.set())
        start(server)
        click.echo(f"alliance-feedback MLLP listening on {host}:{server.port}", err=True)
        stopping.wait()
        server.shutdown()
        server.server_close()

    return mllp


def _poll_command(services_factory: Callable) -> click.Command:
    @click.command("poll")
    @click.argument("practice_id")
    @click.option(
        "--since",
        type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
        default=None,
        help="Backfill: search from this UTC date instead of the cursor.",
    )
    def poll(practice_id: str, since: datetime | None) -> None:
        """Poll a practice's EHR now (or backfill with --since) and record what it finds."""
        from integrations.ehr.errors import EhrError
        from service import practices
        from service.handlers.polling import poll_once

        services = services_factory()
        with services.engine.begin() as conn:
            found = practices.load(conn, services.box, practice_id)
        if found is None:
            raise click.ClickException(f"no practice with id {practice_id!r}")
        if not found.ehr.poll:
            raise click.ClickException(f"practice {practice_id!r} has no ehr.poll setting")
        start = since.replace(tzinfo=timezone.utc) if since else None
        while True:  # a long backlog: each round resumes after the newest visit it saw
            try:
                result = poll_once(services, found, since=start)
            except EhrError as error:
                raise click.ClickException(f"the EHR search failed: {error}") from None
            counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(result.outcomes.items()))
            click.echo(
                f"{result.resource} updated since {result.since:%Y-%m-%dT%H:%M:%SZ}: "
                f"{result.found} found ({counts or 'none'})"
            )
            if not result.more:
                return
            start = result.newest

    return poll
