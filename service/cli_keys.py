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
        from service.persistence.queries.sealed import reseal_all

        services = services_factory()
        try:
            with services.engine.begin() as conn:
                counts = reseal_all(conn, services.box.reseal)
        except ValueError as error:
            raise click.ClickException(f"{error}; nothing was changed") from None
        for table, count in counts.items():
            click.echo(f"{table}: {count} re-encrypted")
        if len(services.settings.secret_keys) > 1:
            click.echo("older keys may be removed from ALLIANCE_SECRET_KEYS once the survey links "
                       "they signed have expired")
