"""`alliance retention run`, `alliance patients export|erase`, `alliance audit list`:
clients' data over time, a client's rights over it, and who read it (CONTRACT §11)."""

from __future__ import annotations

import getpass
import json
from datetime import datetime, timezone

import click


def register(main: click.Group, services_factory) -> None:
    @main.group()
    def retention() -> None:
        """Deleting clients' data that is kept no longer (docs/security.md)."""

    @retention.command("run")
    def retention_run() -> None:
        """Apply the retention rules now (the worker does so daily); prints what was deleted.

        Finished jobs after ALLIANCE_JOB_RETENTION_DAYS; a client's contact details
        retention.contact_days after their last session; responses, with their surveys and
        assessments, after retention.responses_days (practice settings)."""
        from service.handlers.retention import REPORTED, run_retention

        counts = run_retention(services_factory())
        for name, words in REPORTED.items():
            click.echo(f"{words}: {counts[name]}")

    @main.group()
    def patients() -> None:
        """What the service holds on one client: export it, or erase it."""

    @patients.command("export")
    @click.option("--practice", "practice_id", required=True)
    @click.option("--patient", "patient_id", required=True)
    def patients_export(practice_id: str, patient_id: str) -> None:
        """Print everything held on the client as JSON (contact details and answers in the
        clear); recorded in the audit log."""
        from service.handlers.privacy import export_client

        found = export_client(services_factory(), practice_id, patient_id, _actor())
        if found is None:
            raise click.ClickException(f"nothing is held on patient {patient_id!r} of practice "
                                       f"{practice_id!r}")
        click.echo(json.dumps(found, indent=2, default=_plain))

    @patients.command("erase")
    @click.option("--practice", "practice_id", required=True)
    @click.option("--patient", "patient_id", required=True)
    def patients_erase(practice_id: str, patient_id: str) -> None:
        """Delete everything the service holds on the client and print the counts. What was
        written into the EHR stays there; the audit log keeps its rows (ids only) and this one."""
        from service.handlers.privacy import erase_client

        counts, kept = erase_client(services_factory(), practice_id, patient_id, _actor())
        for table, count in counts.items():
            click.echo(f"{table}: {count} deleted")
        click.echo("kept: the audit log (who read the client's data, ids only), and what was "
                   f"written into the EHR ({len(kept)} alert resource(s) there: "
                   f"{', '.join(kept) or '-'})")

    @main.group()
    def audit() -> None:
        """Who read clients' data: the SMART view, the CDS service, the alerts API, the CLI."""

    @audit.command("list")
    @click.option("--practice", "practice_id", default=None)
    @click.option("--since", default=None, help="ISO 8601 date or time (UTC unless it says).")
    @click.option("--patient", "patient_id", default=None)
    @click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
    def audit_list(practice_id: str | None, since: str | None, patient_id: str | None,
                   limit: int) -> None:
        """One line per access, newest first: when, practice, patient, who, through what,
        what they did and read (ids only)."""
        from service.persistence.queries import audit as stored

        services = services_factory()
        with services.engine.begin() as conn:
            rows = stored.recent(conn, practice_id, _since(since), patient_id, limit)
        click.echo("\t".join(stored.LIST_COLUMNS))
        for row in rows:
            click.echo("\t".join(_cell(row[name]) for name in stored.LIST_COLUMNS))


def _actor() -> str:
    """Who runs the command, for the audit log: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "cli:unknown"


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time",
                                 param_hint="--since") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return " ".join(str(value).split())  # ids from requests may hold tabs or newlines


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else str(value)
