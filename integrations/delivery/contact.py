"""What a client's contact values may be: the one copy of these rules, for the intake, the
practice document, the channels and the SMS keywords alike.

- Phone: E.164 (`+`, country code, at most 15 digits). Separators between the digits are
  allowed and removed; a number without its country code is refused (which country?).
- E-mail: RFC 5321 §4.5.3.1 lengths (local part at most 64 characters, the whole address at
  most 254, the longest a forward-path can carry), one `@`, no blanks or control characters.
- Locale: a BCP 47 language tag in its simple, common form: a 2–8 letter language, then
  `-`-separated subtags of 1–8 letters or digits (`en`, `es-MX`, `zh-Hant-TW`). A tag longer
  than the 16 characters kept is shortened as RFC 4647 §3.4 ("lookup") does: subtags are
  removed from the end, and a single-character subtag left last goes too.
"""

from __future__ import annotations

import re

E164 = re.compile(r"\+[1-9]\d{6,14}")
MAX_EMAIL, MAX_EMAIL_LOCAL_PART, MAX_LOCALE = 254, 64, 16

_SEPARATORS = re.compile(r"[\s().-]")
# A number at the start of the value, and what follows it (a comment such as "(mobile)").
_LEADING_NUMBER = re.compile(r"(\+[\d\s().-]*\d)(.*)", re.DOTALL)
_EXTENSION = re.compile(r"(?i)(ext|extn|extension|x\s*\d|#|,|;|p\s*\d|w\s*\d)")
_ANOTHER_NUMBER = re.compile(r"\+|\d[\d\s().-]{2,}\d")
# Deliberately plain: ASCII only (no SMTPUTF8 needed), no spaces, quotes or angle brackets,
# which also rules out header injection.
_PLAIN_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")
_BLANK_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def normalize_phone(raw: str | None) -> str | None:
    """The E.164 form of a phone number ('+1 (555) 123-4567' -> '+15551234567'), or None."""
    if not raw:
        return None
    compact = _SEPARATORS.sub("", raw)
    return compact if E164.fullmatch(compact) else None


def phone_from_text(raw: str) -> tuple[str | None, str | None]:
    """(the E.164 number, None), or (None, why not) for a phone as an EHR records it.

    A number followed by a comment ("+1 555 765 4321 (mobile - call after 6pm)") is taken; an
    extension, a second number or a number without its country code is not: texting a number
    other than the client's own mobile is worse than not texting.
    """
    number = normalize_phone(raw.strip())
    if number:
        return number, None
    match = _LEADING_NUMBER.fullmatch(raw.strip())
    if match is None:
        return None, "not an international (E.164) number"
    digits, rest = match.groups()
    comment = rest.strip().lstrip("(").strip()
    if rest and not rest[0].isspace() and not rest.startswith("("):
        return None, "the number runs into other text"
    if _EXTENSION.match(comment):
        return None, "an extension, not a number of its own"
    if _ANOTHER_NUMBER.search(comment):
        return None, "more than one number"
    number = normalize_phone(digits)
    return (number, None) if number else (None, "not an E.164 number (7 to 15 digits after +)")


def email_problem(address: str) -> str | None:
    """Why `address` cannot be an SMTP mailbox, or None."""
    if len(address) > MAX_EMAIL:
        return f"longer than {MAX_EMAIL} characters"
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return "not an e-mail address"
    if len(local) > MAX_EMAIL_LOCAL_PART:
        return f"the part before @ is longer than {MAX_EMAIL_LOCAL_PART} characters"
    if _BLANK_OR_CONTROL.search(address):
        return "holds blanks or control characters"
    return None


def normalize_email(raw: str | None) -> str | None:
    """The address stripped of surrounding blanks if it is a plain mailbox, else None."""
    if not raw:
        return None
    candidate = raw.strip()
    if _PLAIN_EMAIL.fullmatch(candidate) and email_problem(candidate) is None:
        return candidate
    return None


def locale_problem(tag: str) -> str | None:
    """Why `tag` is not a language tag of the simple form above (any length), or None."""
    return None if _LANGUAGE_TAG.fullmatch(tag) else "not a BCP 47 language tag such as en or es-MX"


def fitted_locale(tag: str) -> str:
    """A valid tag shortened to MAX_LOCALE characters, RFC 4647 lookup style."""
    subtags = tag.split("-")
    while len("-".join(subtags)) > MAX_LOCALE or len(subtags[-1]) == 1:
        subtags.pop()
    return "-".join(subtags)
