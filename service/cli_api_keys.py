"""`alliance practice api-key create|revoke|list`: the keys a practice's own software (the
Canvas plugin) presents to the alerts API. A key is shown once, when it is made."""

from __future__ import annotations

from datetime import timezone

import click


def register(practice: click.Group, services) -> None:
    """Add `practice api-key …`; `services` wires the service (the CLI's own factory)."""

    def _services_for(practice_id: str):
        from service import practices

        wired = services()
        with wired.engine.begin() as conn:
            known = practices.exists(conn, practice_id)
        if not known:
            raise click.ClickException(f"no practice with id {practice_id!r}")
        return wired

    @practice.group("api-key")
    def api_key() -> None:
        """API keys for the alerts API (GET /api/v1/practices/{id}/alerts)."""

    @api_key.command("create")
    @click.argument("practice_id")
    @click.option("--label", default=None, help="What the key is for, e.g. 'canvas plugin'.")
    def create(practice_id: str, label: str | None) -> None:
        """Make a key; it is printed once, as the last word, and only its digest is kept."""
        from service import api_keys

        services = _services_for(practice_id)
        with services.engine.begin() as conn:
            issued = api_keys.create(conn, practice_id, services.clock(), label)
        click.echo(f"API key {issued.key_id} for practice {practice_id} (shown only now; "
                   f"revoke with: alliance practice api-key revoke {practice_id} "
                   f"{issued.key_id}): {issued.key}")

    @api_key.command("revoke")
    @click.argument("practice_id")
    @click.argument("key_id")
    def revoke(practice_id: str, key_id: str) -> None:
        """Revoke a key at once: the next request with it gets 401."""
        from service import api_keys

        services = _services_for(practice_id)
        with services.engine.begin() as conn:
            revoked = api_keys.revoke(conn, practice_id, key_id, services.clock())
        if not revoked:
            raise click.ClickException(
                f"practice {practice_id!r} has no live API key {key_id!r}")
        click.echo(f"revoked API key {key_id} of practice {practice_id}")

    @api_key.command("list")
    @click.argument("practice_id")
    def list_keys(practice_id: str) -> None:
        """The practice's keys: id, label, created, revoked (never the key itself)."""
        from service.persistence.queries.api_keys import practice_keys

        services = _services_for(practice_id)
        with services.engine.begin() as conn:
            found = practice_keys(conn, practice_id)
        click.echo("\t".join(("key_id", "label", "created_at", "revoked_at")))
        for key in found:
            click.echo("\t".join((key["id"], " ".join((key["label"] or "-").split()),
                                  _when(key["created_at"]), _when(key["revoked_at"]))))


def _when(value) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"
