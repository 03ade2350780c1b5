"""`alliance demo …`: helpers for trying the service locally (the embedded demo practice)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

import click
import requests
from standardwebhooks import Webhook


def signed_event(secret: str, event: dict, *, msg_id: str | None = None,
                 when: datetime | None = None) -> tuple[bytes, dict]:
    """Body and Standard Webhooks headers for an event, as an EHR would send it."""
    body = json.dumps(event).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = when or datetime.now(timezone.utc)
    signature = Webhook(secret).sign(msg_id, when, body.decode())
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
               "webhook-signature": signature, "content-type": "application/json"}
    return body, headers


def session_completed(session_id: str, patient_id: str, *, phone: str | None = None,
                      email: str | None = None) -> dict:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {"session_id": session_id, "patient_id": patient_id, "practitioner_id": "prac-3",
            "ended_at": now, "status": "completed"}
    contact = {key: value for key, value in (("phone", phone), ("email", email)) if value}
    if contact:
        data["contact"] = {**contact, "locale": "en"}
    return {"type": "session.completed", "timestamp": now, "data": data}


def register(main: click.Group, services: Callable[[], object]) -> None:
    """Add `alliance demo …`; `services` wires the service (the CLI's own factory)."""

    @main.group()
    def demo() -> None:
        """Try the service locally."""

    @demo.command("send-event")
    @click.option("--practice", "practice_id", default="demo", show_default=True)
    @click.option("--session", "session_id", default=None, help="Session id (default: a new one).")
    @click.option("--patient", "patient_id", default="demo-client-1", show_default=True)
    @click.option("--url", default=None, help="Service base URL (default: ALLIANCE_PUBLIC_URL).")
    def send_event(practice_id: str, session_id: str | None, patient_id: str,
                   url: str | None) -> None:
        """Send a signed session.completed event to a practice, as its EHR would."""
        from service import practices

        wired = services()
        with wired.engine.begin() as conn:
            found = practices.load(conn, wired.box, practice_id)
        if found is None or not found.webhook_secrets:
            raise click.ClickException(f"no practice {practice_id!r} with a webhook secret")
        session_id = session_id or f"demo-session-{uuid.uuid4().hex[:8]}"
        event = session_completed(session_id, patient_id)
        body, headers = signed_event(found.webhook_secrets[0], event)
        base = (url or wired.settings.public_url).rstrip("/")
        # A signed request is never re-sent to wherever a redirect points.
        answer = requests.post(f"{base}/webhooks/{practice_id}/events", data=body,
                               headers=headers, timeout=10, allow_redirects=False)
        click.echo(f"{answer.status_code} {answer.text.strip()}")
