"""`alliance broker …`: the RabbitMQ queues (check them, move them to another queue type)."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    main.add_command(broker)


@click.group()
def broker() -> None:
    """The broker's queues."""


@broker.command("check-queues")
def check_queues() -> None:
    """Declare the queues as this configuration wants them; fail naming any that differ."""
    from service.messaging.broker import connect
    from service.messaging.declare import QueueMismatch, ensure_topology

    settings = _settings()
    with connect(settings.kombu_url) as connection:
        try:
            ensure_topology(connection, settings.rabbitmq_queue_type)
        except QueueMismatch as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"queues are {settings.rabbitmq_queue_type}")


@broker.command("migrate-queues")
def migrate_queues() -> None:
    """Redeclare queues whose type differs from ALLIANCE_RABBITMQ_QUEUE_TYPE, keeping messages.

    Stop every `alliance worker` first (the command refuses while a queue has consumers).
    Waiting messages are moved to a holding queue `<name>.migrating`, the queue is deleted and
    declared again, and the messages are moved back; a run that was interrupted is finished by
    running it again."""
    from service.messaging.broker import connect
    from service.messaging.declare import MigrationRefused
    from service.messaging.declare import migrate_queues as migrate

    settings = _settings()
    if settings.embedded_broker:
        raise click.ClickException("the embedded broker has no queue types: nothing to migrate")
    with connect(settings.kombu_url) as connection:
        try:
            results = migrate(connection, settings.rabbitmq_queue_type)
        except MigrationRefused as error:
            raise click.ClickException(str(error)) from None
    for result in results:
        action = (f"redeclared as {settings.rabbitmq_queue_type}" if result.redeclared
                  else f"already {settings.rabbitmq_queue_type}")
        click.echo(f"{result.queue}: {action}, {result.messages_moved} message(s) moved back")


def _settings():
    from service.config import ConfigError, Settings

    try:
        return Settings.from_env()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
