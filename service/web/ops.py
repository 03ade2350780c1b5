"""Operations endpoints: health, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import text

from service.web.openapi import openapi_document

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """The database and the broker are reachable."""
    services = current_app.extensions["alliance"]
    checks = {"database": _database_ok(services), "broker": _broker_ok(services)}
    ready = all(checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), (200 if ready else 503)


@bp.get("/metrics")
def metrics():
    registry = None
    if current_app.extensions["alliance"].settings.prometheus_multiproc_dir:
        # Several gunicorn workers: add up what each wrote to the shared folder.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry) if registry else generate_latest(),
                    mimetype=CONTENT_TYPE_LATEST)


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


def _database_ok(services) -> bool:
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _broker_ok(services) -> bool:
    from service.messaging.broker import connect

    try:
        with connect(services.settings.kombu_url) as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False
