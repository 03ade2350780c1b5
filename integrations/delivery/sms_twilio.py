"""SMS through a Twilio-compatible REST API (CONTRACT §2: delivery.sms).

`find_sent` asks the provider whether a message already went out: the survey handler does so
before sending again when an earlier attempt may have reached the provider (the worker was
killed between Twilio's "accepted" and the commit, or the answer timed out).
"""

from __future__ import annotations

import email.utils
from datetime import datetime, timedelta, timezone

import requests

from integrations.delivery.contact import normalize_phone
from integrations.delivery.errors import (
    DeliveryError,
    DeliveryPermanentError,
    DeliveryTemporaryError,
)
from integrations.delivery.messages import render_sms
from integrations.delivery.port import Contact, Receipt, SurveyMessage
from integrations.http import build_session
from integrations.network import DestinationRefused
from integrations.settings import PUBLIC_ONLY, NetworkSettings

DEFAULT_TIMEOUT = (5.0, 15.0)  # (connect, read) seconds
# How far back a lookup reaches before the in-flight mark: the provider's clock and ours.
CLOCK_SKEW = timedelta(minutes=2)
LOOKUP_PAGE_SIZE = 50
__all__ = ["TwilioSmsChannel", "error_for_response", "normalize_phone"]

# Twilio error codes that retrying cannot fix. Codes not listed fall back to the HTTP status.
_PERMANENT_REASONS = {
    21211: "invalid-number",  # invalid 'To' phone number
    21217: "invalid-number",  # phone number does not appear to be valid
    21265: "invalid-number",  # 'To' cannot be a short code
    21214: "unreachable",  # 'To' phone number cannot be reached
    21612: "unreachable",  # this To/From pair cannot be connected
    21614: "not-mobile",  # 'To' is not a mobile number
    21408: "region-not-permitted",  # sending to this region is not enabled
    21610: "opted-out",  # the recipient replied STOP
    21212: "misconfigured",  # invalid 'From' number
    21606: "misconfigured",  # 'From' is not a message-capable number of this account
    21659: "misconfigured",  # 'From' is not a Twilio number
    21660: "misconfigured",  # 'From' does not belong to this account
    20003: "auth-failed",  # authentication failed
}
# A 400 that only means "slow down": the sender's queue is full.
_TEMPORARY_CODES = frozenset({21611})


class TwilioSmsChannel:
    """Sends the survey link as one short SMS through the Messages resource."""

    name = "sms"

    def __init__(
        self,
        api_base: str,
        account_sid: str,
        auth_token: str,
        sender: str,
        *,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        network: NetworkSettings = PUBLIC_ONLY,
    ) -> None:
        self.messages_url = (
            f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        )
        self._auth = (account_sid, auth_token)
        self._sender = sender
        self._session = session or build_session(timeout, network=network)
        self._timeout = timeout

    def accepts(self, contact: Contact | None) -> str | None:
        """Return the client's phone in E.164 form, or None when there is no usable number."""
        return normalize_phone(contact.phone) if contact else None

    def send(self, message: SurveyMessage) -> Receipt:
        """Create the message at the provider; raise DeliveryError when it is refused."""
        to = normalize_phone(message.to)
        if to is None:
            raise DeliveryPermanentError("invalid-number", "recipient is not an E.164 number")
        form = {"To": to, "From": self._sender, "Body": render_sms(message)}
        response = self._post(form)
        if 200 <= response.status_code < 300:
            return Receipt(channel=self.name, provider_message_id=_message_sid(response))
        raise error_for_response(response)

    def find_sent(self, message: SurveyMessage, since: datetime) -> Receipt | None:
        """The provider's record of this message (its link in the body) sent to the client
        from our number at `since` or later, or None. Raises DeliveryError when the provider
        cannot be asked now.

        Two questions: the messages sent since that day (`DateSent>=`, as the resource filters
        by day), then the latest messages to the client whatever their date: a message still
        queued at the provider has no date sent yet and is missing from the first answer.
        """
        to = normalize_phone(message.to)
        if to is None:
            return None
        earliest = since.astimezone(timezone.utc) - CLOCK_SKEW
        base = {"To": to, "From": self._sender, "PageSize": str(LOOKUP_PAGE_SIZE)}
        for query in ({**base, "DateSent>": earliest.date().isoformat()}, base):
            for found in self._listed(query):
                if _is_our_message(found, message.link, earliest):
                    return Receipt(channel=self.name, provider_message_id=found.get("sid"))
        return None

    def _listed(self, query: dict[str, str]) -> list[dict]:
        response = self._call("GET", params=query)
        if not 200 <= response.status_code < 300:
            raise error_for_response(response)
        try:
            listed = response.json().get("messages")
        except (ValueError, AttributeError):
            listed = None
        if not isinstance(listed, list):
            raise DeliveryTemporaryError("SMS provider listed messages without a messages list")
        return [item for item in listed if isinstance(item, dict)]

    def _post(self, form: dict[str, str]) -> requests.Response:
        # A read timeout after the request went out may still mean the SMS was created: the
        # survey handler asks (find_sent) before it sends again.
        return self._call("POST", data=form)

    def _call(self, method: str, **kwargs) -> requests.Response:
        try:
            return self._session.request(
                method, self.messages_url, auth=self._auth, timeout=self._timeout,
                allow_redirects=False, **kwargs,
            )
        except requests.Timeout as exc:
            raise DeliveryTemporaryError("SMS provider timed out") from exc
        except requests.RequestException as exc:
            unreachable = f"SMS provider unreachable ({type(exc).__name__})"
            raise DeliveryTemporaryError(unreachable) from exc
        except DestinationRefused as exc:
            raise DeliveryPermanentError("misconfigured", f"SMS provider not called: {exc}") \
                from None


def _is_our_message(found: dict, link: str, earliest: datetime) -> bool:
    """An outbound message carrying this survey's link, created no earlier than `earliest`."""
    if not str(found.get("direction", "")).startswith("outbound"):
        return False
    if link not in str(found.get("body") or ""):
        return False
    created = _rfc2822(found.get("date_created")) or _rfc2822(found.get("date_sent"))
    return created is None or created >= earliest


def _rfc2822(value) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(value) if isinstance(value, str) else None
    except (TypeError, ValueError):
        return None


def error_for_response(response: requests.Response) -> DeliveryError:
    """Map a non-2xx provider answer to a temporary or permanent delivery error."""
    status = response.status_code
    code = _twilio_error_code(response)
    provider_code = str(code) if code is not None else None
    # Twilio's own error text repeats the phone number, so only status and code are kept.
    detail = f"SMS provider answered HTTP {status}" + (f" (code {code})" if code else "")
    if status == 429 or status >= 500 or code in _TEMPORARY_CODES:
        return DeliveryTemporaryError(
            detail, retry_after=_retry_after(response), provider_code=provider_code
        )
    reason = _PERMANENT_REASONS.get(code) if code is not None else None
    return DeliveryPermanentError(
        reason or _reason_for_status(status), detail, provider_code=provider_code
    )


def _reason_for_status(status: int) -> str:
    if status in (401, 403):
        return "auth-failed"
    if status < 400 or status == 404:
        return "misconfigured"  # a redirect or an unknown account: the api_base or SID is wrong
    return "rejected"


def _twilio_error_code(response: requests.Response) -> int | None:
    try:
        code = response.json().get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


def _message_sid(response: requests.Response) -> str | None:
    try:
        sid = response.json().get("sid")
    except (ValueError, AttributeError):
        return None
    return sid if isinstance(sid, str) else None


def _retry_after(response: requests.Response) -> float | None:
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
