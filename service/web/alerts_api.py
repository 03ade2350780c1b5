"""`GET /api/v1/practices/{practice_id}/alerts`: the practice's open alliance ruptures (and
those closed since `since`) for the practice's own software, such as the Canvas plugin.

Behind a practice API key (`Authorization: Bearer …`). A missing, malformed, unknown, revoked
or other practice's key, and an unknown practice, all get the same 401: the answer says
nothing about which practices or keys exist.
"""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError

from schemas.alerts import AlertsPage, AlertsQuery
from schemas.base import error_map
from service import api_keys
from service.clinician.alerts import alerts_page, record_read
from service.web.problems import Problem

bp = Blueprint("alerts_api", __name__)
QUERY, PAGE = AlertsQuery(), AlertsPage()


@bp.get("/api/v1/practices/<practice_id>/alerts")
def practice_alerts(practice_id: str):
    """One page of the practice's alerts (ids and plain words only)."""
    services = current_app.extensions["alliance"]
    with services.engine.begin() as conn:
        key_id = api_keys.authenticate(conn, practice_id, _bearer_token())
        if key_id is None:
            return _not_authenticated()
        query = _query()
        page = alerts_page(conn, practice_id, query["since"], _after(query["cursor"]),
                           query["limit"])
        record_read(conn, practice_id, key_id, page.alerts, services.clock())
    return jsonify(PAGE.dump({
        "practice_id": practice_id, "as_of": services.clock(), "alerts": page.alerts,
        "next_cursor": _cursor(page.last_id)}))


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _not_authenticated():
    response = Problem(401, "Not authenticated",
                       "send a live API key of this practice as 'Authorization: Bearer …' "
                       "(alliance practice api-key create)", slug="not-authenticated").response()
    response.headers["WWW-Authenticate"] = 'Bearer realm="alliance-feedback"'
    return response


def _query() -> dict:
    try:
        return QUERY.load(request.args.to_dict())
    except ValidationError as error:
        errors = error_map(error)
        detail = "; ".join(f"{name}: {message}" for name, message in errors.items())
        raise Problem(422, "Invalid query", detail, errors=errors) from None


def _cursor(last_id: str | None) -> str | None:
    if last_id is None:
        return None
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Problem(422, "Invalid query", "cursor: is not a cursor this API gave out",
                      errors={"cursor": "is not a cursor this API gave out"}) from None
