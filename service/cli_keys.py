"""`alliance keys …`: rotating the service key (ALLIANCE_SECRET_KEYS)."""

from __future__ import annotations

import click


def register(main: click.Group, services_factory) -> None:
    @main.group()
    def keys() -> None:
        """The service key: signs survey links and forms, encrypts what is stored."""

    @keys.command("rotate")
    def rotate() -> None:
        """Re-encrypt everything stored under the newest key of ALLIANCE_SECRET_KEYS.

        Put the new key first in ALLIANCE_SECRET_KEYS (keep the old ones after it), restart, run
        this once; the old keys can then be removed once open survey links have expired.
        """
        from service.persistence.queries.clients import rehash_phones
        from service.persistence.queries.sealed import CLIENT, PRACTICE, reseal_all

        services = services_factory()
        try:
            with services.engine.begin() as conn:
                counts = reseal_all(conn, {PRACTICE: services.box, CLIENT: services.vault})
                remade, kept = rehash_phones(conn, services.vault)
        except ValueError as error:
            raise click.ClickException(f"{error}; nothing was changed") from None
        for column, count in counts.items():
            click.echo(f"{column}: {count} re-encrypted")
        click.echo(f"clients.phone_hash: {remade} re-hashed")
        if kept:
            click.echo(f"clients.phone_hash: {kept} kept under the key that made them (clients "
                       "who opted out, whose number is no longer stored): each is re-made when "
                       "that client texts or has a session; a START from the others is not "
                       "recognised once that key leaves ALLIANCE_SECRET_KEYS")
        if len(services.settings.secret_keys) > 1:
            click.echo("older keys may be removed from ALLIANCE_SECRET_KEYS once the survey links "
                       "they signed have expired")
