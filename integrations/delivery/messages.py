"""The wording of survey invitations and reminders, in English and Spanish.

Pure functions: no I/O. Messages name the practice, never the client. Spanish uses "usted",
the safer register for health care. Spanish SMS wording avoids á, í, ó and ú (not in the GSM-7
alphabet) so a message still fits one 160-character segment; it says "consulta" for that
reason, while e-mail says "sesión".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

from integrations.delivery.port import SurveyMessage

SUPPORTED_LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"

GSM7_SEGMENT = 160
UCS2_SEGMENT = 70

# GSM 03.38 basic alphabet (without the escape code) and its extension table; an extension
# character costs two septets.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# Warmest first; render_sms takes the first that fits one segment. Every variant names the
# practice (carriers require the sender to be identified) and says how to opt out; STOP is
# the keyword providers honour in every language.
_SMS_VARIANTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("en", "invitation"): (
        "{practice}: How did your session go? It takes 30 seconds and helps your therapist: "
        "{link} Reply STOP to opt out",
        "{practice}: How was your session? 30-second survey: {link} Reply STOP to opt out",
        "{practice}: 30-second survey: {link} Reply STOP to opt out",
    ),
    ("en", "reminder"): (
        "{practice}: A gentle reminder - your 30-second survey about your session is still "
        "open: {link} Reply STOP to opt out",
        "{practice}: Reminder - 30-second survey: {link} Reply STOP to opt out",
        "{practice}: Survey reminder: {link} Reply STOP to opt out",
    ),
    ("es", "invitation"): (
        "{practice}: ¿Qué tal su consulta? 30 segundos que ayudan a su terapeuta: {link} "
        "Responda STOP para darse de baja",
        "{practice}: ¿Qué tal su consulta? Encuesta de 30 segundos: {link} "
        "Responda STOP para darse de baja",
        "{practice}: Encuesta de 30 segundos: {link} Responda STOP para darse de baja",
    ),
    ("es", "reminder"): (
        "{practice}: Le recordamos que la encuesta de 30 segundos sobre su consulta sigue "
        "abierta: {link} Responda STOP para darse de baja",
        "{practice}: Recordatorio - encuesta de 30 segundos: {link} "
        "Responda STOP para darse de baja",
        "{practice}: Encuesta pendiente: {link} Responda STOP para darse de baja",
    ),
}


@dataclass(frozen=True)
class _EmailWording:
    subject: dict[str, str]  # by message kind
    opening: dict[str, str]  # by message kind; {practice}
    greeting: str
    purpose: str
    button: str
    fallback: str
    expiry: str  # {expiry}
    unsubscribe_ask: str
    unsubscribe_action: str
    automated: str


_EMAIL_WORDING = {
    "en": _EmailWording(
        subject={
            "invitation": "How did your session go?",
            "reminder": "Reminder: how did your session go?",
        },
        opening={
            "invitation": "Thank you for your session with {practice}. "
            "We would like to hear how it went for you.",
            "reminder": "A gentle reminder from {practice}: the short survey about your "
            "recent session is still open.",
        },
        greeting="Hello,",
        purpose="It takes about 30 seconds. Your answers go to your therapist, to help make "
        "your sessions as useful as possible for you. There are no right or wrong answers.",
        button="Answer the survey",
        fallback="If the button does not work, copy this address into your browser:",
        expiry="The link is open until {expiry}.",
        unsubscribe_ask="Prefer not to get these surveys?",
        unsubscribe_action="Unsubscribe",
        automated="This is an automated message and replies are not read. If you need help "
        "urgently, call your local emergency number.",
    ),
    "es": _EmailWording(
        subject={
            "invitation": "¿Qué tal le fue en su sesión?",
            "reminder": "Recordatorio: ¿qué tal le fue en su sesión?",
        },
        opening={
            "invitation": "Gracias por confiar en {practice}. "
            "Nos gustaría saber cómo le fue en su sesión.",
            "reminder": "Le escribimos de {practice} para recordarle que la breve encuesta "
            "sobre su sesión reciente sigue abierta.",
        },
        greeting="Hola:",
        purpose="Solo le tomará unos 30 segundos. Sus respuestas llegan a su terapeuta para "
        "que las sesiones le resulten lo más útiles posible. No hay respuestas correctas ni "
        "incorrectas.",
        button="Responder la encuesta",
        fallback="Si el botón no funciona, copie esta dirección en su navegador:",
        expiry="El enlace estará disponible hasta el {expiry}.",
        unsubscribe_ask="¿Prefiere no recibir estas encuestas?",
        unsubscribe_action="Darse de baja",
        automated="Este es un mensaje automático y las respuestas a este correo no se leen. "
        "Si necesita ayuda urgente, llame al número de emergencias de su localidad.",
    ),
}

_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}
_MONTHS = {
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
    "es": (
        "enero", "febrero", "marzo", "abril", "mayo", "junio",
        "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre",
    ),
}


def resolve_language(locale: str | None) -> str:
    """Map a locale tag ('es-MX', 'es_US', 'EN') to a supported language, defaulting to 'en'."""
    primary = (locale or "").strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def gsm7_length(text: str) -> int | None:
    """Count GSM-7 septets in text, or None when it needs UCS-2."""
    length = 0
    for char in text:
        if char in _GSM7_BASIC:
            length += 1
        elif char in _GSM7_EXTENSION:
            length += 2
        else:
            return None
    return length


def fits_one_segment(text: str) -> bool:
    """Tell whether text goes out as a single SMS segment."""
    septets = gsm7_length(text)
    if septets is None:
        return len(text.encode("utf-16-le")) // 2 <= UCS2_SEGMENT
    return septets <= GSM7_SEGMENT


def render_sms(message: SurveyMessage) -> str:
    """Render the SMS body: the warmest wording that fits one segment, else the shortest."""
    variants = _SMS_VARIANTS[(resolve_language(message.locale), message.kind)]
    rendered = [
        variant.format(practice=message.practice_name.strip(), link=message.link)
        for variant in variants
    ]
    return next((text for text in rendered if fits_one_segment(text)), rendered[-1])


def render_email(message: SurveyMessage) -> tuple[str, str, str]:
    """Render the e-mail as (subject, plain-text body, HTML body)."""
    language = resolve_language(message.locale)
    wording = _EMAIL_WORDING[language]
    subject = wording.subject[message.kind]
    opening = wording.opening[message.kind].format(practice=message.practice_name.strip())
    expiry = wording.expiry.format(expiry=format_expiry(message.expires_at, language))
    text = _email_text(message, wording, opening, expiry)
    html = _email_html(message, wording, language, subject, opening, expiry)
    return subject, text, html


def format_expiry(moment: datetime, language: str) -> str:
    """Spell out a moment in its own time zone, e.g. 'Sunday, November 29 at 3:00 PM CST'."""
    weekday = _WEEKDAYS[language][moment.weekday()]
    month = _MONTHS[language][moment.month - 1]
    zone = moment.tzname()
    if language == "es":
        spelled = f"{weekday} {moment.day} de {month} a las {moment:%H:%M}"
        return f"{spelled} ({zone})" if zone else spelled
    hour = moment.hour % 12 or 12
    meridiem = "AM" if moment.hour < 12 else "PM"
    spelled = f"{weekday}, {month} {moment.day} at {hour}:{moment:%M} {meridiem}"
    return f"{spelled} {zone}" if zone else spelled


def _email_text(
    message: SurveyMessage, wording: _EmailWording, opening: str, expiry: str
) -> str:
    paragraphs = [
        wording.greeting,
        opening,
        wording.purpose,
        f"{wording.button}: {message.link}",
        expiry,
    ]
    if message.unsubscribe_link:
        paragraphs.append(
            f"{wording.unsubscribe_ask} {wording.unsubscribe_action}: {message.unsubscribe_link}"
        )
    paragraphs.append(wording.automated)
    return "\n\n".join(paragraphs) + "\n"


_HTML_PAGE = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{subject}</title>
</head>
<body style="margin:0;padding:24px 16px;background:#ffffff;color:#1f2933;\
font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;">
<main style="max-width:560px;margin:0 auto;">
<p>{greeting}</p>
<p>{opening}</p>
<p>{purpose}</p>
<p style="margin:28px 0;"><a href="{link}" style="display:inline-block;padding:12px 24px;\
background:#1d4ed8;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:bold;">\
{button}</a></p>
<p>{expiry}</p>
<p style="font-size:14px;color:#4b5563;">{fallback}<br><a href="{link}" \
style="color:#1d4ed8;word-break:break-all;">{link}</a></p>
<hr style="border:none;border-top:1px solid #d1d5db;margin:28px 0 16px;">
{unsubscribe}<p style="font-size:14px;color:#4b5563;">{automated}</p>
</main>
</body>
</html>
"""


def _email_html(
    message: SurveyMessage,
    wording: _EmailWording,
    language: str,
    subject: str,
    opening: str,
    expiry: str,
) -> str:
    unsubscribe = ""
    if message.unsubscribe_link:
        unsubscribe = (
            f'<p style="font-size:14px;color:#4b5563;">{escape(wording.unsubscribe_ask)} '
            f'<a href="{escape(message.unsubscribe_link)}" style="color:#1d4ed8;">'
            f"{escape(wording.unsubscribe_action)}</a></p>\n"
        )
    return _HTML_PAGE.format(
        lang=language,
        subject=escape(subject),
        greeting=escape(wording.greeting),
        opening=escape(opening),
        purpose=escape(wording.purpose),
        link=escape(message.link),
        button=escape(wording.button),
        expiry=escape(expiry),
        fallback=escape(wording.fallback),
        unsubscribe=unsubscribe,
        automated=escape(wording.automated),
    )
