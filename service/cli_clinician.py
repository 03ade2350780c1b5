"""`alliance clinician …`: what clinicians see in their EHR (CDS Hooks cards)."""

from __future__ import annotations

from collections.abc import Callable

import click


def register(main: click.Group, services: Callable) -> None:
    """Add the `clinician` group; `services` builds the service from the environment."""

    @main.group()
    def clinician() -> None:
        """What clinicians see in their EHR (CDS Hooks cards)."""

    @clinician.command("refresh")
    @click.option("--practice", "practice_id", default=None, help="Only this practice.")
    def refresh(practice_id: str | None) -> None:
        """Recompute every client's card state from the stored assessments.

        Each assessment already does this for its client; run it once after upgrading a
        database that holds assessments made before the CDS service existed."""
        from service.clinician.clinician_state import refresh_all

        built = services()
        with built.engine.begin() as conn:
            count = refresh_all(conn, built.clock(), practice_id)
        click.echo(f"refreshed {count} client(s)")
