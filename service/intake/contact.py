"""Contact values as an EHR records them, checked and capped before anything stores them.

The rules are those of `integrations/delivery/contact.py` (E.164, RFC 5321 lengths, BCP 47).
A value that fails them is dropped, never stored in part: the log line names the field and
why, never the value. A client left without phone and e-mail is read from the EHR later,
or has no way to be reached, which the survey's status then says.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from integrations.delivery.contact import (
    email_problem,
    fitted_locale,
    locale_problem,
    phone_from_text,
)
from integrations.delivery.port import Contact

log = structlog.get_logger(__name__)


def checked_contact(phones: Iterable[str], emails: Iterable[str],
                    locale: str | None) -> Contact | None:
    """The first usable phone and e-mail (in the caller's order of preference) and the locale;
    None when neither a phone nor an e-mail address is usable."""
    phone = _first_usable("phone", phones, phone_from_text)
    email = _first_usable("email", emails, _email)
    if locale is not None:
        locale = _first_usable("locale", [locale], _locale)
    if not (phone or email):
        return None
    return Contact(phone=phone, email=email, locale=locale)


def _first_usable(field: str, values: Iterable[str], check) -> str | None:
    first_reason = None
    for value in values:
        usable, reason = check(value)
        if usable:
            return usable
        first_reason = first_reason or reason
    if first_reason:
        log.info("contact value dropped", field=field, reason=first_reason)
    return None


def _email(value: str) -> tuple[str | None, str | None]:
    address = value.strip()
    problem = email_problem(address)
    return (None, problem) if problem else (address, None)


def _locale(value: str) -> tuple[str | None, str | None]:
    tag = value.strip()
    problem = locale_problem(tag)
    return (None, problem) if problem else (fitted_locale(tag), None)
