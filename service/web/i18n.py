"""The words of the client's pages, in English and Spanish, and the choice of language.

Pure: no Flask. Item wording of an instrument is English in its file; the Spanish wording of our
own instrument (brief-alliance-check, Apache-2.0, free to translate) lives here, keyed by
instrument id and linkId. Spanish uses "usted", the register of the e-mail and SMS wording.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from service.domain.instruments import Instrument, Item
from service.domain.scoring import MAX_ANSWER_TEXT_CHARS, plain_number

LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"
# A scale with more choices than this wraps onto two rows on the narrowest phones.
ONE_ROW_CHOICES = 7

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "language_name": "English",
        "survey_title": "How was today's session?",
        "survey_lead": "{practice} asks a few quick questions (about 30 seconds). Your answers go "
                       "to your therapist so they can adjust how you work together. There are no "
                       "right or wrong answers.",
        "optional": "(optional)",
        "yes": "Yes",
        "no": "No",
        "submit": "Send my answers",
        "errors_one": "Please check 1 answer",
        "errors_many": "Please check {count} answers",
        "question": "Question {n}",
        "closes_on": "This link works once and closes on {date}.",
        "unsubscribe_link": "Stop receiving these surveys",
        "thanks_title": "Thank you",
        "thanks_body": "Your answers have been sent to your therapist at {practice}. If something "
                       "about the session bothered you, it is fine to bring it up next time.",
        "thanks_close": "You can close this page now.",
        "unavailable_title": "Survey not available",
        "404_title": "Link not found",
        "404_body": "We could not find this survey. Please check that the whole link was copied.",
        "409_title": "Already answered",
        "409_body": "This survey has already been answered. Thank you for your feedback.",
        "410_title": "This survey has closed",
        "410_body": "The time to answer this survey has passed. You will get a new one after "
                    "your next session.",
        "400_title": "Please try again",
        "400_body": "This form could not be accepted, so nothing was saved. Please open the link "
                    "from your message again.",
        "429_title": "Too many attempts",
        "429_body": "Please wait a minute, then try again. Nothing was lost.",
        "500_title": "Something went wrong",
        "500_body": "This is our fault, not yours. Please try again in a few minutes.",
        "unsubscribe_title": "Stop receiving surveys?",
        "unsubscribe_body": "{practice} will no longer send you a survey after your sessions. "
                            "Your care is not affected in any way.",
        "unsubscribe_button": "Yes, stop the surveys",
        "opted_out_title": "You will not receive more surveys",
        "opted_out_body": "{practice} will not send you surveys any more. If you change your "
                          "mind, you can receive them again.",
        "opt_in_button": "Receive surveys again",
        "opted_in_title": "You will receive surveys again",
        "opted_in_body": "{practice} will send you a short survey after your next sessions.",
        "opted_out_sms_body": "You asked {practice} by text message (STOP) not to send you "
                              "surveys. To receive them again, reply START to one of our text "
                              "messages.",
        "stale_title": "This link no longer changes your settings",
        "stale_body": "This link belongs to an earlier survey from {practice}. To stop the "
                      "surveys, use the link in your latest message, or reply STOP to our "
                      "text message.",
        "error_required_scale": "Please choose a number from {min} to {max}.",
        "error_range": "Please choose a whole number from {min} to {max}.",
        "error_number": "Please enter a number from {min} to {max}.",
        "error_yes_no": "Please choose yes or no.",
        "error_required_text": "Please write an answer.",
        "error_too_long": "Please shorten this to {max} characters or fewer.",
        "error_other": "Please check this answer.",
    },
    "es": {
        "language_name": "Español",
        "survey_title": "¿Qué tal la sesión de hoy?",
        "survey_lead": "{practice} le hace unas preguntas breves (unos 30 segundos). Sus "
                       "respuestas llegan a su terapeuta para que pueda ajustar la forma de "
                       "trabajar juntos. No hay respuestas correctas ni incorrectas.",
        "optional": "(opcional)",
        "yes": "Sí",
        "no": "No",
        "submit": "Enviar mis respuestas",
        "errors_one": "Revise 1 respuesta",
        "errors_many": "Revise {count} respuestas",
        "question": "Pregunta {n}",
        "closes_on": "Este enlace funciona una sola vez y se cierra el {date}.",
        "unsubscribe_link": "Dejar de recibir estas encuestas",
        "thanks_title": "Gracias",
        "thanks_body": "Sus respuestas se enviaron a su terapeuta de {practice}. Si algo de la "
                       "sesión le molestó, puede hablarlo con toda tranquilidad la próxima vez.",
        "thanks_close": "Ya puede cerrar esta página.",
        "unavailable_title": "Encuesta no disponible",
        "404_title": "Enlace no encontrado",
        "404_body": "No encontramos esta encuesta. Compruebe que copió el enlace completo.",
        "409_title": "Ya respondida",
        "409_body": "Esta encuesta ya fue respondida. Gracias por su opinión.",
        "410_title": "Esta encuesta está cerrada",
        "410_body": "Ya pasó el plazo para responder esta encuesta. Recibirá una nueva después "
                    "de su próxima sesión.",
        "400_title": "Inténtelo de nuevo",
        "400_body": "No pudimos aceptar este formulario, así que no se guardó nada. Vuelva a "
                    "abrir el enlace de su mensaje.",
        "429_title": "Demasiados intentos",
        "429_body": "Espere un minuto y vuelva a intentarlo. No se perdió nada.",
        "500_title": "Algo salió mal",
        "500_body": "El error es nuestro, no suyo. Vuelva a intentarlo en unos minutos.",
        "unsubscribe_title": "¿Dejar de recibir encuestas?",
        "unsubscribe_body": "{practice} ya no le enviará una encuesta después de sus sesiones. "
                            "Su atención no se ve afectada de ninguna manera.",
        "unsubscribe_button": "Sí, dejar de recibirlas",
        "opted_out_title": "No recibirá más encuestas",
        "opted_out_body": "{practice} ya no le enviará encuestas. Si cambia de opinión, puede "
                          "volver a recibirlas.",
        "opt_in_button": "Volver a recibir encuestas",
        "opted_in_title": "Volverá a recibir encuestas",
        "opted_in_body": "{practice} le enviará una breve encuesta después de sus próximas "
                         "sesiones.",
        "opted_out_sms_body": "Usted pidió a {practice} por mensaje de texto (STOP) que no le "
                              "enviara encuestas. Para volver a recibirlas, responda START a "
                              "uno de nuestros mensajes de texto.",
        "stale_title": "Este enlace ya no cambia sus preferencias",
        "stale_body": "Este enlace es de una encuesta anterior de {practice}. Para dejar de "
                      "recibir encuestas, use el enlace de su mensaje más reciente o responda "
                      "STOP a nuestro mensaje de texto.",
        "error_required_scale": "Elija un número del {min} al {max}.",
        "error_range": "Elija un número entero del {min} al {max}.",
        "error_number": "Escriba un número del {min} al {max}.",
        "error_yes_no": "Elija sí o no.",
        "error_required_text": "Escriba una respuesta.",
        "error_too_long": "Acorte el texto a {max} caracteres como máximo.",
        "error_other": "Revise esta respuesta.",
    },
}

_MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre"),
}

# (instrument id, language) → linkId → {"text", "low", "high"}
ITEM_TRANSLATIONS: dict[tuple[str, str], dict[str, dict[str, str]]] = {
    ("brief-alliance-check", "es"): {
        "bond": {"text": "¿En qué medida sintió hoy confianza y comodidad con su terapeuta?",
                 "low": "Nada", "high": "Por completo"},
        "goals": {"text": "¿En qué medida usted y su terapeuta están de acuerdo sobre lo que "
                          "quieren lograr?",
                  "low": "No estamos nada de acuerdo", "high": "Estamos totalmente de acuerdo"},
        "approach": {"text": "¿En qué medida le conviene la forma en que usted y su terapeuta "
                             "trabajan juntos en las sesiones?",
                     "low": "No me conviene", "high": "Me conviene por completo"},
        "overall": {"text": "En general, ¿cómo fue para usted la sesión de hoy?",
                    "low": "Muy mala", "high": "Excelente"},
        "tension": {"text": "¿Hubo algún momento hoy en que se sintió tenso o tensa, en "
                            "desacuerdo o decepcionado o decepcionada con su terapeuta?"},
        "tension_intensity": {"text": "Si fue así, ¿qué tan fuerte fue ese sentimiento? "
                                      "(1 = muy leve, 5 = muy fuerte)",
                              "low": "Muy leve", "high": "Muy fuerte"},
        "comment": {"text": "¿Hay algo que le gustaría que su terapeuta supiera? (opcional)"},
    },
}

_RANGE_MESSAGE = re.compile(r"^must be a (whole )?number from ")
_TOO_LONG_MESSAGE = re.compile(r"^must be at most (\d+) characters$")


@dataclass(frozen=True)
class PageItem:
    """One question as the page shows it, in the page's language."""

    link_id: str
    text: str
    type: str
    min: int | float | None
    max: int | float | None
    required: bool
    low_label: str | None
    high_label: str | None
    show_optional: bool

    @property
    def is_scale(self) -> bool:
        """A short whole-number range, shown as a row of choices (0–10, 1–5)."""
        return (self.type == "integer" and self.min is not None and self.max is not None
                and self.max - self.min <= 10)

    @property
    def choices(self) -> range:
        return range(int(self.min), int(self.max) + 1)

    @property
    def fits_one_row(self) -> bool:
        return len(self.choices) <= ONE_ROW_CHOICES

    @property
    def max_length(self) -> int:
        """The longest free text the domain accepts."""
        return MAX_ANSWER_TEXT_CHARS


def supported(tag: str | None) -> str | None:
    """The supported language of a tag such as 'es-MX' or 'en_US', or None."""
    if not tag:
        return None
    primary = tag.strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in LANGUAGES else None


def choose_language(requested: str | None, stored: str | None, accepted: Iterable[str]) -> str:
    """?lang wins; then the client's stored locale; then the browser's languages; then English."""
    for candidate in (requested, stored):
        language = supported(candidate)
        if language:
            return language
    for tag in accepted:
        language = supported(tag)
        if language:
            return language
    return DEFAULT_LANGUAGE


def strings(language: str) -> dict[str, str]:
    """The page strings of a language (English for anything unsupported)."""
    return STRINGS.get(language, STRINGS[DEFAULT_LANGUAGE])


def page_items(instrument: Instrument, language: str) -> list[PageItem]:
    """The instrument's items with wording and anchors in `language` where a translation exists."""
    table = ITEM_TRANSLATIONS.get((instrument.id, language), {})
    optional = strings(language)["optional"]
    items = []
    for item in instrument.items:
        words = table.get(item.link_id, {})
        text = words.get("text", item.text)
        items.append(PageItem(
            link_id=item.link_id, text=text, type=item.type,
            min=_number(item.min, item.type), max=_number(item.max, item.type),
            required=item.required,
            low_label=words.get("low", item.low_label),
            high_label=words.get("high", item.high_label),
            # The wording may already say it is optional; saying it twice reads badly.
            show_optional=not item.required and optional not in text,
        ))
    return items


def field_message(language: str, item: Item, english: str) -> str:
    """The localized message for the domain's English message about one item."""
    words = strings(language)
    bounds = {"min": plain_number(item.min) if item.min is not None else "",
              "max": plain_number(item.max) if item.max is not None else ""}
    if english == "required":
        if item.type == "boolean":
            return words["error_yes_no"]
        if item.type == "text":
            return words["error_required_text"]
        is_scale = item.type == "integer" and item.max - item.min <= 10
        return words["error_required_scale" if is_scale else "error_number"].format(**bounds)
    if _RANGE_MESSAGE.match(english):
        key = "error_range" if item.type == "integer" else "error_number"
        return words[key].format(**bounds)
    if english == "must be true or false":
        return words["error_yes_no"]
    too_long = _TOO_LONG_MESSAGE.match(english)
    if too_long:
        return words["error_too_long"].format(max=too_long.group(1))
    return words["error_other"]


def field_messages(language: str, instrument: Instrument, errors: dict[str, str]) -> dict[str, str]:
    """Localize every per-item message; keys stay the linkIds, in the instrument's order."""
    localized = {}
    for item in instrument.items:
        if item.link_id in errors:
            localized[item.link_id] = field_message(language, item, errors[item.link_id])
    return localized


def long_date(when: datetime, language: str) -> str:
    """'November 29' / '29 de noviembre'."""
    month = _MONTHS.get(language, _MONTHS[DEFAULT_LANGUAGE])[when.month - 1]
    return f"{when.day} de {month}" if language == "es" else f"{month} {when.day}"


def _number(value: float | None, item_type: str) -> int | float | None:
    if value is None:
        return None
    return int(value) if item_type == "integer" else value

