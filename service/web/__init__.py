"""The Flask application factory."""

from __future__ import annotations

import uuid

import structlog
from flask import Flask, request
from werkzeug.exceptions import HTTPException

from integrations.network import host_kind
from service.bootstrap import Services, bootstrap
from service.config import ConfigError, Settings
from service.logging import configure_logging
from service.web.problems import Problem

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None, services: Services | None = None, *,
               host: str | None = None) -> Flask:
    """Build the web app; gunicorn calls it with no arguments (settings from the environment).

    `host` is the address the server listens on, when the caller knows it (`alliance serve`):
    the demo EHR and FHIR store are mounted only on a loopback host, ALLIANCE_DEMO=1, SQLite.
    """
    settings = settings or (services.settings if services else Settings.from_env())
    _check_demo(settings, host)
    configure_logging(settings.log_format, settings.log_level)
    services = services or bootstrap(settings)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=1024 * 1024)  # the webhook routes allow 256 KiB
    app.extensions["alliance"] = services

    from service.web import (
        alerts_api,
        cds_hooks,
        consent,
        healthie,
        hl7v2,
        ops,
        smart,
        surveys,
        webhooks,
    )

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(hl7v2.bp)
    app.register_blueprint(healthie.bp)
    app.register_blueprint(smart.bp)
    app.register_blueprint(surveys.bp)
    app.register_blueprint(consent.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(alerts_api.bp)
    app.register_blueprint(cds_hooks.bp)
    if settings.demo:
        from service.web.demo_ehr import create_demo_ehr_blueprint
        from service.web.demo_fhir import create_demo_fhir_blueprint

        # Before the demo FHIR store, whose /<type>/<id> would otherwise take the SMART
        # configuration's path.
        app.register_blueprint(create_demo_ehr_blueprint(settings.var_dir))
        app.register_blueprint(create_demo_fhir_blueprint(settings.var_dir / "demo-fhir"),
                               url_prefix="/demo/fhir")
    _install_error_handlers(app)
    _install_request_logging(app)
    return app


def _check_demo(settings: Settings, host: str | None) -> None:
    """ALLIANCE_DEMO=1 mounts unauthenticated demo pages (a FHIR store that takes writes, an
    authorization server that approves everyone): refuse to start where they could be reached
    from another machine or sit beside real data."""
    if not settings.demo:
        return
    if not settings.is_sqlite:
        raise ConfigError("ALLIANCE_DEMO=1 is refused with a database other than SQLite: the "
                          "demo EHR and FHIR store are for a local trial, never beside real data")
    if host is None or host_kind(host) != "loopback":
        where = f"on {host}" if host else "outside `alliance serve`"
        raise ConfigError(f"ALLIANCE_DEMO=1 is refused {where}: the demo EHR and FHIR store are "
                          "served only by `alliance serve --host 127.0.0.1` (a loopback host)")


def _install_error_handlers(app: Flask) -> None:
    app.register_error_handler(Problem, lambda problem: problem.response())

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if request.path.startswith(("/api/", "/webhooks/", "/cds/")):
            slug = (error.name or "error").lower().replace(" ", "-")
            problem = Problem(error.code or 500, error.name, error.description or error.name,
                              slug=slug)
            return problem.response()
        return error

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        # The route pattern, not the path: survey paths carry the client's link token.
        log.exception("unhandled error", route=_route())
        if request.path.startswith("/s/"):
            from service.web.surveys import message_page, page_language

            return message_page(500, page_language(None))
        return Problem(500, "Internal error",
                       "something went wrong on our side; nothing was stored").response()


def _route() -> str:
    return request.url_rule.rule if request.url_rule else "(unmatched)"


def _install_request_logging(app: Flask) -> None:
    @app.before_request
    def _bind():
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=str(uuid.uuid4()))

    @app.after_request
    def _log(response):
        # Paths hold survey tokens: log the route pattern, never the token itself.
        log.info("request", method=request.method, route=_route(), status=response.status_code)
        return response
