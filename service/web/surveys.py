"""The client's side: the survey page (HTML, no JavaScript needed) and its JSON API (§4).

The page speaks English or Spanish, carries a CSRF token bound to the survey, and limits form
posts per link and address; the JSON API keeps the contract's problem+json answers, is limited
the same way (reads and answers counted apart) and carries the page's no-store and
no-referrer headers.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from flask import Blueprint, current_app, jsonify, render_template, request
from marshmallow import ValidationError

from schemas.base import error_map
from schemas.surveys import AnswersRequest, SurveyView
from service.domain.instruments import Instrument
from service.domain.scoring import InvalidAnswers, score, validate_answers
from service.handlers.consent import client_of_survey
from service.handlers.surveys import OpenSurvey, SurveyUnavailable, open_survey, record_answers
from service.web import i18n
from service.web.problems import Problem

bp = Blueprint("surveys", __name__)

POSTS_PER_WINDOW = 10
POST_WINDOW = timedelta(minutes=1)
CSRF_FIELD = "csrf_token"
# Survey pages hold a link token and health questions: never cached, never sent as a referrer,
# never framed (the consent buttons must not be clickjacked), no script at all.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}
# The JSON API's answers hold the same link token (in the URL) and questions.
API_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
API_PREFIX = "/api/v1/surveys/"


class RateLimiter:
    """At most `limit` hits per key within a sliding `window`; in memory, per process."""

    def __init__(self, limit: int, window: timedelta, max_keys: int = 10_000):
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._hits: dict[tuple, deque] = {}
        self._lock = threading.Lock()

    def allow(self, key: tuple, now: datetime) -> bool:
        """Count a hit for `key`; False when the key is over its limit (the hit is not counted)."""
        cutoff = now - self.window
        with self._lock:
            if len(self._hits) >= self.max_keys:
                self._forget_before(cutoff)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= cutoff:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True

    def _forget_before(self, cutoff: datetime) -> None:
        stale = [key for key, hits in self._hits.items() if not hits or hits[-1] <= cutoff]
        for key in stale:
            del self._hits[key]
        if len(self._hits) >= self.max_keys:
            # Memory must stay bounded even under a flood of distinct keys.
            self._hits.clear()


# ---- helpers shared with the consent pages --------------------------------------------------

def services():
    """The wired services of the running app."""
    return current_app.extensions["alliance"]


def page_language(stored_locale: str | None) -> str:
    """?lang, else the client's stored locale, else the browser's Accept-Language."""
    return i18n.choose_language(request.args.get("lang"), stored_locale,
                                request.accept_languages.values())


def render_page(template: str, language: str, status: int = 200, **context):
    """Render a client page in `language` with the page headers."""
    html = render_template(template, lang=language, t=i18n.strings(language), **context)
    response = current_app.make_response((html, status))
    response.headers.update(PAGE_HEADERS)
    return response


def message_page(status: int, language: str):
    """A friendly page for 400, 404, 409, 410 and 429."""
    response = render_page("message.html", language, status, code=status)
    if status == 429:
        response.headers["Retry-After"] = str(int(POST_WINDOW.total_seconds()))
    return response


def post_allowed(token: str, purpose: str = "form") -> bool:
    """Count a form post (or an API call, by purpose) against its link and the sender's
    address: at most POSTS_PER_WINDOW of each within POST_WINDOW."""
    limiter = current_app.extensions.setdefault(
        "alliance.form_limiter", RateLimiter(POSTS_PER_WINDOW, POST_WINDOW))
    key = (token, request.remote_addr) if purpose == "form" else (token, request.remote_addr,
                                                                  purpose)
    return limiter.allow(key, services().clock())


@bp.after_request
def _api_headers(response):
    if request.path.startswith(API_PREFIX):
        response.headers.update(API_HEADERS)
    return response


def _limit_api(token: str, purpose: str) -> None:
    if not post_allowed(token, purpose):
        raise Problem(429, "Too many requests", f"at most {POSTS_PER_WINDOW} requests a minute "
                      "for one survey from one address: wait a minute and try again",
                      slug="rate-limited",
                      headers={"Retry-After": str(int(POST_WINDOW.total_seconds()))})


def csrf_valid(survey_id: str, purpose: str) -> bool:
    """Whether the posted form carries this survey's token for `purpose`."""
    return services().forms.valid(survey_id, purpose, request.form.get(CSRF_FIELD))


def csrf_for(survey_id: str, purpose: str) -> str:
    return services().forms.token(survey_id, purpose)


def link_client(token: str):
    """(survey id, client) behind a link token; either may be None."""
    survey_id = services().signer.survey_id(token)
    return survey_id, (client_of_survey(services(), survey_id) if survey_id else None)


# ---- JSON API (CONTRACT §4) -----------------------------------------------------------------

def _open(token: str) -> OpenSurvey:
    wired = services()
    return open_survey(wired, token, wired.instruments())


@bp.get("/api/v1/surveys/<token>")
def survey_json(token: str):
    """The items to ask, for a client app that renders its own form."""
    _limit_api(token, "api-read")
    survey = _api(token)
    return jsonify(SurveyView().dump(_view(survey)))


def _json_or_empty():
    """The JSON body, or {} when it is not JSON (the schema then names what is missing)."""
    try:
        return request.get_json(silent=True) or {}
    except RecursionError:  # json raises this, not ValueError, on very deep nesting
        return {}


@bp.post("/api/v1/surveys/<token>/response")
def submit_json(token: str):
    """Answers as JSON; 201 when stored, 422 naming each wrong item."""
    _limit_api(token, "api-answer")
    survey = _api(token)
    try:
        body = AnswersRequest().load(_json_or_empty())
    except ValidationError as error:
        errors = error_map(error)
        detail = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise Problem(422, "Invalid answers", detail, errors) from None
    try:
        answers = validate_answers(survey.instrument, body["answers"])
    except InvalidAnswers as error:
        detail = "; ".join(f"{k}: {v}" for k, v in error.errors.items())
        raise Problem(422, "Invalid answers", detail, dict(error.errors)) from None
    try:
        response_id = record_answers(services(), survey, answers, score(survey.instrument, answers))
    except SurveyUnavailable as error:
        raise Problem(error.status, "Survey unavailable", str(error)) from None
    return jsonify(status="recorded", response_id=response_id), 201


def _api(token: str) -> OpenSurvey:
    try:
        return _open(token)
    except SurveyUnavailable as error:
        titles = {404: "Unknown survey", 409: "Already answered", 410: "Survey closed"}
        raise Problem(error.status, titles[error.status], str(error)) from None


def _view(survey: OpenSurvey) -> dict:
    return {"instrument": survey.instrument.id, "title": survey.instrument.title,
            "items": survey.instrument.public_items(), "expires_at": survey.expires_at,
            "locale": survey.locale}


# ---- the page -------------------------------------------------------------------------------

@bp.get("/s/<token>")
def page(token: str):
    """The survey page."""
    _survey_id, client = link_client(token)
    language = page_language(client.locale if client else None)
    try:
        survey = _open(token)
    except SurveyUnavailable as error:
        return message_page(error.status, language)
    return _form_page(survey, token, language)


@bp.post("/s/<token>")
def submit_page(token: str):
    """The form post: thanks page, or the form again with a message next to each wrong item."""
    _survey_id, client = link_client(token)
    language = page_language(client.locale if client else None)
    if not post_allowed(token):
        return message_page(429, language)
    try:
        survey = _open(token)
    except SurveyUnavailable as error:
        return message_page(error.status, language)
    if not csrf_valid(survey.id, "answer"):
        return message_page(400, language)
    values = {item.link_id: request.form.get(item.link_id, "") for item in survey.instrument.items}
    try:
        answers = validate_answers(survey.instrument, form_answers(survey.instrument, values))
        record_answers(services(), survey, answers, score(survey.instrument, answers))
    except InvalidAnswers as error:
        errors = i18n.field_messages(language, survey.instrument, error.errors)
        return _form_page(survey, token, language, values, errors, status=422)
    except SurveyUnavailable as error:
        return message_page(error.status, language)
    return render_page("thanks.html", language, practice_name=survey.practice_name)


def form_answers(instrument: Instrument, form: dict) -> dict:
    """Form strings → typed answers; what cannot be converted is passed on for the domain to
    name."""
    answers: dict = {}
    for item in instrument.items:
        raw = (form.get(item.link_id) or "").strip()
        if raw == "":
            continue
        if item.type == "integer":
            answers[item.link_id] = int(raw) if raw.lstrip("-").isdigit() else raw
        elif item.type == "decimal":
            try:
                answers[item.link_id] = float(raw)
            except ValueError:
                answers[item.link_id] = raw
        elif item.type == "boolean":
            answers[item.link_id] = {"yes": True, "no": False}.get(raw, raw)
        else:
            answers[item.link_id] = raw
    return answers


def _form_page(survey: OpenSurvey, token: str, language: str, values: dict | None = None,
               errors: dict | None = None, status: int = 200):
    other = next(code for code in i18n.LANGUAGES if code != language)
    return render_page(
        "survey.html", language, status, survey=survey, token=token,
        items=i18n.page_items(survey.instrument, language), values=values or {},
        errors=errors or {}, csrf_token=csrf_for(survey.id, "answer"), csrf_field=CSRF_FIELD,
        closes_on=i18n.long_date(survey.expires_at, language),
        other_language=other, other_language_name=i18n.strings(other)["language_name"],
    )
