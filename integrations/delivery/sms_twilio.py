"""SMS through a Twilio-compatible REST API (CONTRACT §2: delivery.sms)."""

from __future__ import annotations

import requests

from integrations.delivery.contact import normalize_phone
from integrations.delivery.errors import (
    DeliveryError,
    DeliveryPermanentError,
    DeliveryTemporaryError,
)
from integrations.delivery.messages import render_sms
from integrations.delivery.port import Contact, Receipt, SurveyMessage

DEFAULT_API_BASE = "https://api.twilio.com"
DEFAULT_TIMEOUT = (5.0, 15.0)  # (connect, read) seconds
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
    ) -> None:
        self.messages_url = (
            f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        )
        self._auth = (account_sid, auth_token)
        self._sender = sender
        self._session = session or requests.Session()
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

    def _post(self, form: dict[str, str]) -> requests.Response:
        # A read timeout after the request went out may still mean the SMS was created; the
        # caller's retry can then send it twice, which beats never sending it.
        try:
            return self._session.post(
                self.messages_url, data=form, auth=self._auth, timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise DeliveryTemporaryError("SMS provider timed out") from exc
        except requests.RequestException as exc:
            unreachable = f"SMS provider unreachable ({type(exc).__name__})"
            raise DeliveryTemporaryError(unreachable) from exc


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
