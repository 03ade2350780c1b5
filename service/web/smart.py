"""The SMART on FHIR trend app (CONTRACT §8.2): EHR launch, callback, and the trend view.

Embedded browsers share sessionStorage between app instances and often drop third-party
cookies, so every piece of state lives in the database, keyed by the OAuth `state` or by a
random session cookie; the browser holds nothing but those random values. Tokens are never
sent to the browser, and none is kept: the view reads the service's own tables.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from functools import partial
from zoneinfo import ZoneInfo

import structlog
from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, url_for

from integrations.ehr.smart_launch import SmartLaunchClient, SmartLaunchError
from integrations.settings import PUBLIC_ONLY
from service import practices
from service.clinician.alert_actions import (
    ACKNOWLEDGE,
    NOTE_MAX,
    SNOOZE,
    ActionRefused,
    moment_words,
)
from service.clinician.chart import MAX_POINTS, build_charts
from service.clinician.table import table_rows
from service.clinician.trend import build_trend, latest_instrument
from service.domain.ruptures import RuptureRules
from service.persistence.queries import audit, smart_sessions
from service.persistence.queries import trend as trend_queries
from service.persistence.queries.smart_sessions import PendingLaunch, SmartSession, digest
from service.web import smart_actions

bp = Blueprint("smart", __name__, url_prefix="/smart")
log = structlog.get_logger(__name__)

BROWSER_COOKIE = "alliance_smart_browser"  # binds a launch's state to the browser that began it
SESSION_COOKIE = "alliance_smart_session"
LAUNCH_LIFETIME = timedelta(minutes=10)
SESSION_LIFETIME = timedelta(hours=8)
# The patient is the launch's, never a parameter; `done` names the action just taken (PRG).
VIEW_PARAMETERS: frozenset[str] = frozenset({"done"})
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff"}


class Refusal(Exception):
    """A request the app turns down: a page (or problem+json) naming why, showing no data."""

    def __init__(self, status: int, title: str, detail: str):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


@bp.get("/<practice_id>/launch")
def launch(practice_id: str):
    """EHR launch (iss + launch) or standalone launch (iss only): on to the authorize step."""
    app_config = _smart_app(practice_id)
    iss = _trusted_iss(app_config, request.args.get("iss"))
    client = _client(practice_id)
    config = client.discover(iss)
    state, verifier, nonce = (secrets.token_urlsafe(32), secrets.token_urlsafe(48),
                              secrets.token_urlsafe(16))
    browser = request.cookies.get(BROWSER_COOKIE) or secrets.token_urlsafe(32)
    services, now = _services(), _services().clock()
    pending = PendingLaunch(practice_id=practice_id, browser_hash=digest(browser), iss=iss,
                            launch=request.args.get("launch") or None,
                            sealed_verifier=services.box.seal({"v": verifier}), nonce=nonce,
                            expires_at=now + LAUNCH_LIFETIME)
    with services.engine.begin() as conn:
        smart_sessions.save_launch(conn, state, pending, now=now)
    response = redirect(client.authorization_url(
        config, app_config, redirect_uri=_redirect_uri(practice_id), state=state,
        code_verifier=verifier, nonce=nonce, launch=pending.launch), 302)
    _set_cookie(response, BROWSER_COOKIE, browser, LAUNCH_LIFETIME)
    return response


@bp.get("/<practice_id>/callback")
def callback(practice_id: str):
    """Check state and browser, exchange the code, keep the launch patient in a session."""
    app_config = _smart_app(practice_id)
    pending = _take_launch(practice_id, request.args.get("state", ""))
    if request.args.get("error"):
        raise Refusal(400, "The EHR did not authorize the app",
                      f"The EHR answered: {request.args['error'][:100]}. Open the app again "
                      "from the EHR.")
    code = request.args.get("code") or _refuse_missing("code")
    services = _services()
    verifier = services.box.open(pending.sealed_verifier)["v"]
    client = _client(practice_id)
    grant = client.exchange_code(client.discover(pending.iss), app_config,
                                 redirect_uri=_redirect_uri(practice_id), code=code,
                                 code_verifier=verifier, nonce=pending.nonce)
    token, now = secrets.token_urlsafe(32), services.clock()
    with services.engine.begin() as conn:
        smart_sessions.save_session(conn, token, SmartSession(
            practice_id=practice_id, patient_id=grant.patient, fhir_user=grant.fhir_user,
            iss=pending.iss, created_at=now, expires_at=now + SESSION_LIFETIME))
    response = redirect(url_for(".view", practice_id=practice_id), 303)
    _set_cookie(response, SESSION_COOKIE, token, SESSION_LIFETIME)
    return response


@bp.get("/<practice_id>/view")
def view(practice_id: str):
    """The launch patient's alliance trend: charts, table, open rupture and what was done
    about it, with the forms to act on it (HTML, no script)."""
    session, trend, alert = _trend_of_session(practice_id, "trend view",
                                              bands_for_last=MAX_POINTS)
    services = _services()
    forms = alert and trend.open_rupture and smart_actions.tokens(
        services, _session_key(), alert.episode_id)
    status = smart_actions.status_text(request.args.get("done"), alert, g.practice.timezone)
    zone = ZoneInfo(g.practice.timezone)
    return render_template("smart_view.html", trend=trend, session=session, alert=alert,
                           forms=forms, status=status, note_max=NOTE_MAX, zone=zone,
                           moment=partial(moment_words, zone=zone),
                           charts=build_charts(trend), rows=table_rows(trend))


@bp.get("/<practice_id>/view.json")
def view_json(practice_id: str):
    """The same data as JSON (the open rupture with its actions)."""
    session, trend, alert = _trend_of_session(practice_id, "trend data")
    body = {**trend.as_dict(), "fhir_user": session.fhir_user}
    if body["open_rupture"] is not None and alert is not None:
        body["open_rupture"].update(alert.as_dict())
    return jsonify(body)


@bp.post("/<practice_id>/rupture/<episode_id>/acknowledge")
def acknowledge(practice_id: str, episode_id: str):
    """Acknowledge the launch patient's open rupture (optional note); back to the view."""
    return _act(practice_id, episode_id, ACKNOWLEDGE)


@bp.post("/<practice_id>/rupture/<episode_id>/snooze")
def snooze(practice_id: str, episode_id: str):
    """Snooze the launch patient's open rupture for `days`; back to the view."""
    return _act(practice_id, episode_id, SNOOZE)


def _act(practice_id: str, episode_id: str, action: str):
    session = _session(practice_id)
    done = smart_actions.perform(_services(), g.practice, session, _session_key(), episode_id,
                                 action, request.form)
    # POST-redirect-GET: a reload shows the view, never sends the form again.
    return redirect(url_for(".view", practice_id=practice_id, done=done) + "#status", 303)


@bp.after_request
def _headers(response):
    response.headers.update(PAGE_HEADERS)
    ancestors = " ".join(g.get("frame_ancestors") or []) or "'none'"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        f"base-uri 'none'; frame-ancestors {ancestors}")
    return response


@bp.errorhandler(Refusal)
def _refused(refusal: Refusal):
    return _refusal_response(refusal.status, refusal.title, refusal.detail)


@bp.errorhandler(ActionRefused)
def _action_refused(refusal: ActionRefused):
    back = url_for(".view", practice_id=request.view_args["practice_id"])
    return _refusal_response(refusal.status, refusal.title, refusal.detail, back=back)


def _refusal_response(status: int, title: str, detail: str, back: str | None = None):
    # For operators: the route and what was refused (titles and details carry no patient data).
    log.info("smart request refused", status=status, reason=title)
    if request.path.endswith(".json"):
        from service.web.problems import Problem

        return Problem(status, title, detail).response()
    return render_template("smart_message.html", title=title, detail=detail, back=back), status


@bp.errorhandler(SmartLaunchError)
def _launch_failed(error: SmartLaunchError):
    title = ("The launch request was refused" if error.status == 400
             else "The EHR's sign-in did not work")
    log.warning("smart launch failed", check=error.message[:200])  # names a check, no patient
    return _refusal_response(error.status, title, error.message[:300] + ".")


def _trend_of_session(practice_id: str, what: str, bands_for_last: int | None = None):
    session = _session(practice_id)
    services = _services()
    practice = g.practice
    with services.engine.begin() as conn:  # the read and its audit row, together
        rows = trend_queries.client_surveys(conn, practice_id, session.patient_id)
        episode = trend_queries.open_episode(conn, practice_id, session.patient_id)
        alert = episode and smart_actions.load(conn, services, practice, session.patient_id,
                                               episode.id)
        reader = smart_actions.reader(session)
        audit.record(conn, [audit.Access(practice_id, session.patient_id, reader, audit.SMART,
                                         audit.READ, what)], services.clock())
    instruments = services.instruments()
    instrument = instruments.get(latest_instrument(rows, practice.survey.instrument))
    if instrument is None:
        raise Refusal(500, "Unknown instrument", "The client's surveys use an instrument this "
                      "service no longer has; nothing can be drawn.")
    rules = RuptureRules.from_overrides(practice.rupture_rules)
    return session, build_trend(session.patient_id, rows, instrument, rules, practice.timezone,
                                episode, bands_for_last), alert or None


def _session_key() -> str:
    """The stored key of this browser's SMART session (what the action forms are bound to)."""
    return digest(request.cookies.get(SESSION_COOKIE, ""))


def _session(practice_id: str) -> SmartSession:
    _smart_app(practice_id)
    extra = sorted(set(request.args) - VIEW_PARAMETERS)
    if extra:
        raise Refusal(400, "Not a parameter of this view",
                      f"This view shows the patient the EHR launched it for; it takes no "
                      f"'{extra[0]}' parameter. Open the app again from the patient's chart.")
    token = request.cookies.get(SESSION_COOKIE)
    services = _services()
    with services.engine.connect() as conn:
        found = token and smart_sessions.find_session(conn, token, practice_id,
                                                      now=services.clock())
    if not found:
        raise Refusal(401, "Open the app from the EHR",
                      "There is no signed-in launch for this browser (or it has expired). Open "
                      "the Alliance trend from the patient's chart in the EHR.")
    return found


def _take_launch(practice_id: str, state: str) -> PendingLaunch:
    if not state:
        _refuse_missing("state")
    services = _services()
    with services.engine.begin() as conn:
        pending = smart_sessions.take_launch(conn, state, practice_id, now=services.clock())
    if pending is None:
        raise Refusal(400, "This sign-in cannot be used",
                      "The sign-in state is unknown, expired or already used. Open the app "
                      "again from the EHR.")
    browser = request.cookies.get(BROWSER_COOKIE, "")
    if not hmac.compare_digest(pending.browser_hash, digest(browser)):
        raise Refusal(400, "This sign-in began in another browser",
                      "The sign-in was started in a different browser (or its cookie was "
                      "blocked). Open the app again from the EHR.")
    return pending


def _smart_app(practice_id: str) -> dict:
    services = _services()
    with services.engine.connect() as conn:
        practice = practices.load(conn, services.box, practice_id)
    if practice is None or not practice.smart_app:
        raise Refusal(404, "Unknown app", "No SMART app is registered under this address.")
    g.practice = practice
    g.frame_ancestors = practice.smart_app.get("frame_ancestors") or []
    return practice.smart_app


def _trusted_iss(app_config: dict, iss: str | None) -> str:
    issuers = app_config["issuers"]
    if not iss and len(issuers) == 1:
        return issuers[0]  # a standalone launch may leave out the only issuer
    wanted = (iss or "").rstrip("/")
    match = next((known for known in issuers if known.rstrip("/") == wanted), None)
    if match is None:
        raise Refusal(400, "This EHR is not registered",
                      "The launch came from an EHR (iss) this practice has not registered for "
                      "the app. Ask the practice to add it to smart_app.issuers.")
    return match


def _refuse_missing(name: str):
    raise Refusal(400, "Incomplete sign-in", f"The EHR's answer has no '{name}'. Open the app "
                  "again from the EHR.")


def _redirect_uri(practice_id: str) -> str:
    return f"{_services().settings.public_url}/smart/{practice_id}/callback"


def _set_cookie(response, name: str, value: str, lifetime: timedelta) -> None:
    # In an EHR's iframe our cookies are third-party: SameSite=None needs Secure, and
    # Partitioned (CHIPS) keeps them where third-party cookies are otherwise blocked.
    secure = _services().settings.public_url.startswith("https://")
    response.set_cookie(name, value, max_age=int(lifetime.total_seconds()), path="/smart/",
                        httponly=True, secure=secure, samesite="None" if secure else "Lax",
                        partitioned=secure)


def _services():
    return current_app.extensions["alliance"]


def _client(practice_id: str) -> SmartLaunchClient:
    """The process's launch client for the practice's network settings (one per setting, so
    the discovery and key-set caches are shared by the practices that allow the same)."""
    practice = _services().practice(practice_id)
    network = practice.network if practice else PUBLIC_ONLY
    clients = current_app.extensions.setdefault("alliance_smart_clients", {})
    if network.allow_private not in clients:
        clients[network.allow_private] = SmartLaunchClient(network=network)
    return clients[network.allow_private]
