"""The `alliance` command line: thin wrappers that parse, call and print."""

from __future__ import annotations

import json
import sys
from datetime import timezone
from pathlib import Path

import click

from service.config import ConfigError, Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def _services():
    from service.bootstrap import bootstrap
    from service.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_format, settings.log_level)
    return bootstrap(settings)


@click.group()
def main() -> None:
    """alliance-feedback: therapeutic-alliance surveys, scores and rupture flags for your EHR."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64),
              help="Request threads of the WSGI server.")
@click.option("--workers/--no-workers", "with_workers", default=None,
              help="Run the relay and consumer in this process (default: on the embedded broker).")
def serve(host: str, port: int, threads: int, with_workers: bool | None) -> None:
    """Run the web app (plus, on the embedded default, the workers in the same process).

    The server is waitress: production-grade and threaded in one process, so the relay and the
    consumer share the process that owns the embedded SQLite files.
    """
    import signal

    import waitress

    from service.runtime import Workers
    from service.web import create_app

    services = _services()
    try:
        app = create_app(services=services, host=host)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    workers = None
    if with_workers if with_workers is not None else services.settings.embedded_broker:
        _declare_queues(services.settings)
        workers = Workers(services).start()
    server = waitress.create_server(app, host=host, port=port, threads=threads,
                                    ident="alliance-feedback")
    # SIGTERM (a service manager stopping us) ends the loop the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    click.echo(f"alliance-feedback listening on http://{host}:{port}", err=True)
    try:
        server.run()
    finally:
        if workers:
            workers.stop()


def _exit_on_signal(*_args) -> None:
    raise SystemExit(0)


@main.command()
@click.option("--relay/--no-relay", default=True, show_default=True,
              help="Also run an outbox relay.")
@click.option("--consumers", default=None, type=click.IntRange(1, 32),
              help="Consumer threads (default: 4 per CPU, at most 16; see docs/scaling.md).")
def worker(relay: bool, consumers: int | None) -> None:
    """Run queue consumers, the outbox relay and scheduler (reminders, expiry, retries)."""
    from service.runtime import default_consumers, run_forever

    services = _services()
    _declare_queues(services.settings)
    run_forever(services, relay=relay, consumers=consumers or default_consumers())


def _declare_queues(settings) -> None:
    from service.messaging.declare import QueueMismatch
    from service.runtime import declare_queues

    try:
        declare_queues(settings)
    except QueueMismatch as error:
        raise click.ClickException(str(error)) from None
    except ValueError as error:  # a malformed list of broker URLs
        raise click.ClickException(f"ALLIANCE_BROKER_URL: {error}") from None


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations."""
    from service.persistence.migrate import upgrade

    services = _services()
    sealed = upgrade(services.engine, services.settings.secret_keys)
    click.echo("database is up to date")
    if sealed and not services.settings.is_sqlite:
        click.echo(f"{sealed} rows stored in plaintext were encrypted; their old versions stay "
                   "in the database files until PostgreSQL rewrites them: run VACUUM FULL "
                   "clients, webhook_events, responses (docs/security.md)")


@main.group()
def practice() -> None:
    """Practices (tenants)."""


@practice.command("apply")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
def practice_apply(file: str) -> None:
    """Create or update a practice from a JSON document; prints its id."""
    from service import practices
    services = _services()
    raw = _read_json(file)
    catalogue = services.instruments()

    def extra_checks(document: dict) -> list[str]:
        with services.engine.begin() as conn:
            shared = practices.shared_secret_problems(conn, services.box, document)
        return (_practice_checks(document, catalogue) + shared
                + practices.deployment_problems(document, services.settings))

    try:
        document = practices.validate_document(raw, extra_checks)
    except practices.InvalidPractice as error:
        click.echo(f"refused {file}: nothing was changed", err=True)
        for problem in error.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(2)
    from service.handlers.polling import start_polling

    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())
        poll = practices.Practice.from_document(document).ehr.poll
        start_polling(conn, document["id"], poll, services.clock())
    click.echo(document["id"])


def _practice_checks(document: dict, catalogue: dict) -> list[str]:
    from service.domain.ruptures import RuptureRules

    problems = []
    instrument = document["survey"]["instrument"]
    if instrument not in catalogue:
        problems.append(f"survey.instrument: unknown instrument {instrument!r} "
                        f"(known: {', '.join(sorted(catalogue))})")
    elif not getattr(catalogue[instrument], "sendable", True):
        problems.append(f"survey.instrument: {instrument!r} has no item wording loaded "
                        "(alliance instruments load FILE)")
    try:
        RuptureRules.from_overrides(document.get("rupture_rules"))
    except ValueError as error:
        problems.append(f"rupture_rules: {error}")
    return problems


PRACTICE_COLUMNS = ("id", "name", "timezone", "ehr", "channels", "webhook_secrets", "fhir_auth")


@practice.command("list")
def practice_list() -> None:
    """One line per practice: id, name, time zone, EHR, how webhooks authenticate (no secrets).

    The ehr column is the FHIR base URL, or for another EHR type the type and where it writes
    (e.g. "webhook https://ehr.example/alliance")."""
    from service import practices

    services = _services()
    with services.engine.begin() as conn:
        found = practices.load_all(conn, services.box)
    click.echo("\t".join(PRACTICE_COLUMNS))
    for item in found:
        click.echo("\t".join((
            item.id, item.name, item.timezone, item.ehr.summary, ",".join(item.delivery.channels),
            str(len(item.webhook_secrets)), "+".join(item.fhir_notifications.configured) or "-")))


@practice.command("show")
@click.argument("practice_id")
def practice_show(practice_id: str) -> None:
    """Show a practice's document with its secrets redacted."""
    from service import practices

    services = _services()
    with services.engine.begin() as conn:
        found = practices.load(conn, services.box, practice_id)
    if found is None:
        raise click.ClickException(f"no practice with id {practice_id!r}")
    click.echo(json.dumps(found.redacted(), indent=2))


@main.group()
def events() -> None:
    """The event log: what arrived and what it was taken for."""


@events.command("list")
@click.option("--practice", "practice_id", default=None, help="Only this practice's events.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
def events_list(practice_id: str | None, limit: int) -> None:
    """One line per event, newest first: what arrived through which door (`source`), its
    outcome, and why it was ignored.

    Prints opaque ids only: never the payload, so no contact details or names.
    """
    from service.persistence.queries import events as stored

    services = _services()
    with services.engine.begin() as conn:
        rows = stored.recent(conn, practice_id, limit)
    click.echo("\t".join(stored.LIST_COLUMNS))
    for row in rows:
        click.echo("\t".join(_event_cell(name, row[name]) for name in stored.LIST_COLUMNS))


def _event_cell(name: str, value) -> str:
    if value is None:
        return "-"
    if name == "received_at":
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if name == "outcome" and value == "accepted":
        return "accepted (waiting for the worker)"
    # Tabs or newlines from a sender's ids would break the columns.
    return " ".join(str(value).split())


@main.group()
def surveys() -> None:
    """Surveys: where each one stands, and why one was not delivered."""


@surveys.command("list")
@click.option("--practice", "practice_id", default=None)
@click.option("--status", default=None,
              help="scheduled, sent, answered, expired, closed, skipped or failed")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
def surveys_list(practice_id: str | None, status: str | None, limit: int) -> None:
    """One line per survey, newest first (ids and states only, no personal data)."""
    from service.persistence.queries import surveys as stored

    services = _services()
    with services.engine.begin() as conn:
        rows = stored.recent(conn, practice_id, status, limit)
    for row in rows:
        click.echo("\t".join(str(row[name] or "-") for name in stored.LIST_COLUMNS))


def _read_json(file: str):
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        return json.loads(text)
    except OSError as error:
        raise click.ClickException(f"cannot read {file}: {error.strerror}") from None
    except ValueError as error:
        click.echo(f"refused {file}: nothing was changed", err=True)
        click.echo(f"  - not JSON: {error}", err=True)
        sys.exit(2)


def _register_extensions() -> None:
    from service import (
        cli_alerts,
        cli_api_keys,
        cli_broker,
        cli_clinician,
        cli_dlq,
        cli_doors,
        cli_keys,
        cli_privacy,
        cli_science,
        demo,
    )

    cli_broker.register(main)
    demo.register(main, services=_services)
    cli_keys.register(main, _services)
    cli_doors.register(main, practice, _services)
    cli_api_keys.register(practice, _services)
    cli_science.register(main, practice_rules_lookup=_practice_rules,
                         instruments_dir=lambda: _settings().instruments_dir)
    cli_clinician.register(main, _services)
    cli_dlq.register(main, _services)
    cli_privacy.register(main, _services)
    cli_alerts.register(main, _services)  # after cli_science: it adds to the ruptures group


def _practice_rules(practice_id: str) -> dict:
    from service import practices

    services = _services()
    with services.engine.begin() as conn:
        found = practices.load(conn, services.box, practice_id)
    if found is None:
        raise KeyError(practice_id)
    return found.rupture_rules


_register_extensions()
