"""`alliance clinician …`: what clinicians see in their EHR (CDS Hooks cards)."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    @main.group()
    def clinician() -> None:
        """What clinicians see in their EHR (CDS Hooks cards)."""

    @clinician.command("refresh")
    @click.option("--practice", "practice_id", default=None, help="Only this practice.")
    def refresh(practice_id: str | None) -> None:
        """Recompute every client's card state from the stored assessments.

        Each assessment already does this for its client; run it once after upgrading a
        database that holds assessments made before the CDS service existed."""
        from service.cli import _services
        from service.clinician.clinician_state import refresh_all

        services = _services()
        with services.engine.begin() as conn:
            count = refresh_all(conn, services.clock(), practice_id)
        click.echo(f"refreshed {count} client(s)")
