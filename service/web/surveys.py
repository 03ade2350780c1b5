"""The client's side: the survey page (HTML, no JavaScript needed) and its JSON API (§4)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, request
from marshmallow import ValidationError

from schemas.base import error_map
from schemas.surveys import AnswersRequest, SurveyView
from service.domain.instruments import Instrument, instrument_catalogue
from service.domain.scoring import InvalidAnswers, score, validate_answers
from service.handlers.surveys import OpenSurvey, SurveyUnavailable, open_survey, record_answers
from service.web.problems import Problem

bp = Blueprint("surveys", __name__)


def _services():
    return current_app.extensions["alliance"]


def _open(token: str) -> OpenSurvey:
    services = _services()
    return open_survey(services, token, instrument_catalogue(services.settings.instruments_dir))


@bp.get("/api/v1/surveys/<token>")
def survey_json(token: str):
    """The items to ask, for a client app that renders its own form."""
    survey = _api(token)
    return jsonify(SurveyView().dump(_view(survey)))


@bp.post("/api/v1/surveys/<token>/response")
def submit_json(token: str):
    """Answers as JSON; 201 when stored, 422 naming each wrong item."""
    survey = _api(token)
    try:
        body = AnswersRequest().load(request.get_json(silent=True) or {})
    except ValidationError as error:
        errors = error_map(error)
        raise Problem(422, "Invalid answers", "; ".join(f"{k}: {v}" for k, v in errors.items()), errors)
    try:
        answers = validate_answers(survey.instrument, body["answers"])
    except InvalidAnswers as error:
        detail = "; ".join(f"{k}: {v}" for k, v in error.errors.items())
        raise Problem(422, "Invalid answers", detail, dict(error.errors)) from None
    try:
        response_id = record_answers(_services(), survey, answers, score(survey.instrument, answers))
    except SurveyUnavailable as error:
        raise Problem(error.status, "Survey unavailable", str(error)) from None
    return jsonify(status="recorded", response_id=response_id), 201


@bp.get("/s/<token>")
def page(token: str):
    """The survey page."""
    survey = _page_or_error(token)
    if not isinstance(survey, OpenSurvey):
        return survey
    return render_template("survey.html", survey=survey, items=_page_items(survey.instrument),
                           values={}, errors={})


@bp.post("/s/<token>")
def submit_page(token: str):
    """The form post: thanks page, or the form again with a message next to each wrong item."""
    survey = _page_or_error(token)
    if not isinstance(survey, OpenSurvey):
        return survey
    values = {key: value for key, value in request.form.items()}
    try:
        answers = validate_answers(survey.instrument, form_answers(survey.instrument, values))
        record_answers(_services(), survey, answers, score(survey.instrument, answers))
    except InvalidAnswers as error:
        return render_template("survey.html", survey=survey, items=_page_items(survey.instrument),
                               values=values, errors=error.errors), 422
    except SurveyUnavailable as error:
        return _unavailable(error)
    return render_template("thanks.html", practice_name=survey.practice_name)


def form_answers(instrument: Instrument, form: dict) -> dict:
    """Form strings → typed answers; what cannot be converted is passed on for the domain to name."""
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


def _api(token: str) -> OpenSurvey:
    try:
        return _open(token)
    except SurveyUnavailable as error:
        titles = {404: "Unknown survey", 409: "Already answered", 410: "Survey closed"}
        raise Problem(error.status, titles[error.status], str(error)) from None


def _page_or_error(token: str):
    try:
        return _open(token)
    except SurveyUnavailable as error:
        return _unavailable(error)


def _unavailable(error: SurveyUnavailable):
    return render_template("unavailable.html", status=error.status), error.status


def _view(survey: OpenSurvey) -> dict:
    return {"instrument": survey.instrument.id, "title": survey.instrument.title,
            "items": survey.instrument.public_items(), "expires_at": survey.expires_at,
            "locale": survey.locale}


def _page_items(instrument: Instrument) -> list:
    return list(instrument.items)
