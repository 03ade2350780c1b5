"""Operations endpoints: health, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import text

from service.metrics import AlertCounts
from service.persistence.queries import governance
from service.web.openapi import openapi_document

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """The database and the broker are reachable, and this process's relay can publish."""
    services = current_app.extensions["alliance"]
    problems = {name: problem for name, problem in (
        ("database", _database_problem(services)), ("broker", _broker_problem(services)))
        if problem}
    checks = {"database": "database" not in problems, "broker": "broker" not in problems}
    body = {"status": "not ready" if problems else "ready", "checks": checks}
    if problems:
        body["problems"] = problems
    return jsonify(body), (503 if problems else 200)


@bp.get("/metrics")
def metrics():
    services = current_app.extensions["alliance"]
    registry = None
    if services.settings.prometheus_multiproc_dir:
        # Several gunicorn workers: add up what each wrote to the shared folder.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    # The alert counts come from the database, the same in every process (docs/alerts.md).
    stored = CollectorRegistry()
    stored.register(AlertCounts(lambda limit: _alert_counts(services, limit)))
    return Response((generate_latest(registry) if registry else generate_latest())
                    + generate_latest(stored), mimetype=CONTENT_TYPE_LATEST)


def _alert_counts(services, limit: int) -> list[tuple]:
    with services.engine.connect() as conn:
        return governance.alert_counts(conn, limit)


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


def _database_problem(services) -> str | None:
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as error:
        return f"the database cannot be reached ({type(error).__name__})"


def _broker_problem(services) -> str | None:
    from service.messaging.broker import (
        connect,
        describe_broker,
        embedded_queue_problem,
        what_to_do,
    )

    settings = services.settings
    relay = services.relay_health
    if relay is not None and relay.problem:
        return relay.problem
    if settings.embedded_broker:
        problem = embedded_queue_problem(settings.embedded_queue_file)
        return f"{problem}: {what_to_do(settings.kombu_url)}" if problem else None
    try:
        with connect(settings.kombu_url) as connection:
            # Ready if any node answers: one try per node of a cluster.
            connection.ensure_connection(max_retries=max(1, len(connection.alt)), timeout=2)
        return None
    except Exception as error:
        return (f"{describe_broker(settings.kombu_url)} cannot be reached "
                f"({type(error).__name__}): {what_to_do(settings.kombu_url)}")
