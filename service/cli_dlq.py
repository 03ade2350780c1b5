"""`alliance dlq …`: the dead-letter store, work that failed permanently, and what the EHR said.

`list` prints one line per item (CONTRACT §5: id, practice, session id, resource type, HTTP
status), then the reason and the first issue of the EHR's OperationOutcome; `show` prints one
item whole, the OperationOutcome included, as the EHR sent it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import click

from integrations.ehr.outcomes import first_issue
from service.persistence import outbox

# The CLI's services (engine and clock), built on first use: `--help` needs no settings.
ServicesFactory = Callable[[], object]


def register(main: click.Group, services: ServicesFactory) -> None:
    """Add the `dlq` command group to the `alliance` CLI."""
    main.add_command(_dlq_group(services))


def _dlq_group(services: ServicesFactory) -> click.Group:
    @click.group("dlq")
    def dlq() -> None:
        """The dead-letter store: work that failed permanently."""

    @dlq.command("list")
    def dlq_list() -> None:
        """One line per item: id, practice, session id, resource type, HTTP status, reason,
        and what the EHR said (the first issue of its OperationOutcome)."""
        built = services()
        with built.engine.begin() as conn:
            for job in outbox.dead_letters(conn):
                click.echo("\t".join(_line(job)))

    @dlq.command("show")
    @click.argument("job_id")
    def dlq_show(job_id: str) -> None:
        """One item whole: the job, its attempts, and the error with the EHR's OperationOutcome."""
        built = services()
        with built.engine.begin() as conn:
            job = outbox.load(conn, job_id)
        if job is None or job.status != outbox.DEAD:
            raise click.ClickException(f"no dead-letter item {job_id}")
        click.echo(json.dumps(_described(job), indent=2, ensure_ascii=False, default=_text))

    @dlq.command("replay")
    @click.argument("job_id", required=False)
    @click.option("--all", "replay_all", is_flag=True, help="Replay every dead-letter item.")
    def dlq_replay(job_id: str | None, replay_all: bool) -> None:
        """Try a dead-letter item (or all of them) again."""
        if bool(job_id) == replay_all:
            raise click.UsageError("give one ID or --all")
        built = services()
        with built.engine.begin() as conn:
            count = outbox.replay(conn, None if replay_all else job_id, now=built.clock())
        if job_id and not count:
            raise click.ClickException(f"no dead-letter item {job_id}")
        click.echo(f"{count} item(s) queued again")

    @dlq.command("drop")
    @click.argument("job_id")
    def dlq_drop(job_id: str) -> None:
        """Discard a dead-letter item."""
        built = services()
        with built.engine.begin() as conn:
            if not outbox.drop(conn, job_id, now=built.clock()):
                raise click.ClickException(f"no dead-letter item {job_id}")
        click.echo(f"dropped {job_id}")

    return dlq


def _line(job: outbox.Job) -> list[str]:
    error = job.last_error if isinstance(job.last_error, dict) else {}
    cells = (job.id, job.practice_id or "-", error.get("session_id", "-"),
             error.get("resource_type", job.kind), error.get("http_status", "-"),
             error.get("reason", ""), first_issue(error.get("operation_outcome")) or "-")
    # Tabs or newlines in what a sender or an EHR wrote would break the columns.
    return [" ".join(str(cell).split()) or "-" for cell in cells]


def _described(job: outbox.Job) -> dict:
    return {"id": job.id, "kind": job.kind, "practice_id": job.practice_id,
            "status": job.status, "attempts": job.attempts, "created_at": job.created_at,
            "payload": job.payload, "last_error": job.last_error}


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
