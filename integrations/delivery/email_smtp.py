"""E-mail over SMTP: one multipart/alternative message, plain text plus HTML (CONTRACT §2)."""

from __future__ import annotations

import re
import smtplib
import ssl
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid

from integrations.delivery.contact import normalize_email
from integrations.delivery.errors import (
    DeliveryError,
    DeliveryPermanentError,
    DeliveryTemporaryError,
)
from integrations.delivery.messages import render_email
from integrations.delivery.port import Contact, Receipt, SurveyMessage

DEFAULT_TIMEOUT = 20.0  # seconds, per socket operation
__all__ = ["SmtpEmailChannel", "normalize_email"]

_ENHANCED_STATUS = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})")


class SmtpEmailChannel:
    """Sends the survey link as an e-mail through an SMTP relay (STARTTLS and AUTH optional).

    The practice name becomes the From display name unless `sender` already has one.
    """

    name = "email"

    def __init__(
        self,
        smtp_host: str,
        smtp_port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host = smtp_host
        self._port = smtp_port
        self._sender_name, self._sender_address = _split_sender(sender)
        self._starttls = starttls
        self._credentials = (username, password or "") if username else None
        self._timeout = timeout
        self._ssl_context = ssl_context or ssl.create_default_context()

    def accepts(self, contact: Contact | None) -> str | None:
        """Return the client's e-mail address, or None when there is no usable one."""
        return normalize_email(contact.email) if contact else None

    def send(self, message: SurveyMessage) -> Receipt:
        """Submit the e-mail to the relay; raise DeliveryError when it is refused."""
        to = normalize_email(message.to)
        if to is None:
            raise DeliveryPermanentError("invalid-address", "recipient is not a plain address")
        email = self.compose(message, to)
        try:
            self._submit(email, to)
        except (smtplib.SMTPException, OSError) as exc:
            raise error_for_exception(exc) from exc
        return Receipt(channel=self.name, provider_message_id=email["Message-ID"])

    def compose(self, message: SurveyMessage, to: str) -> EmailMessage:
        """Build the MIME message for one recipient."""
        subject, text, html = render_email(message)
        email = EmailMessage()
        email["From"] = Address(
            self._sender_name or message.practice_name.strip(), addr_spec=self._sender_address
        )
        email["To"] = Address(addr_spec=to)
        email["Subject"] = subject
        email["Date"] = format_datetime(datetime.now(timezone.utc))
        email["Message-ID"] = make_msgid(domain=self._sender_address.rpartition("@")[2])
        # RFC 3834: keeps out-of-office replies from answering an automated message.
        email["Auto-Submitted"] = "auto-generated"
        if message.unsubscribe_link:
            email["List-Unsubscribe"] = f"<{message.unsubscribe_link}>"
        email.set_content(text)
        email.add_alternative(html, subtype="html")
        return email

    def _submit(self, email: EmailMessage, to: str) -> None:
        # Host and port go to the constructor: starttls() checks the certificate against the
        # host given there, not the one given to connect().
        smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        try:
            if self._starttls:
                smtp.starttls(context=self._ssl_context)
            if self._credentials:
                smtp.login(*self._credentials)
            smtp.send_message(email, from_addr=self._sender_address, to_addrs=[to])
        finally:
            _close_quietly(smtp)


def error_for_exception(exc: smtplib.SMTPException | OSError) -> DeliveryError:
    """Map an smtplib or socket failure to a temporary or permanent delivery error."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
        return _error_for_reply(code, reply)
    if isinstance(exc, smtplib.SMTPAuthenticationError) and 500 <= exc.smtp_code < 600:
        return DeliveryPermanentError(
            "auth-failed", f"SMTP login refused ({exc.smtp_code})", provider_code=str(exc.smtp_code)
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return _error_for_reply(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryPermanentError("misconfigured", "SMTP server lacks STARTTLS or AUTH")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryPermanentError("tls-failed", "SMTP server certificate not trusted")
    return DeliveryTemporaryError(f"SMTP server unreachable ({type(exc).__name__})")


def _error_for_reply(code: int, reply: bytes | str) -> DeliveryError:
    # The server's reply text often repeats the address; keep only the codes.
    enhanced = _enhanced_status(reply)
    provider_code = f"{code} {enhanced}" if enhanced else str(code)
    detail = f"SMTP server answered {provider_code}"
    if 500 <= code < 600:
        reason = "invalid-address" if enhanced and enhanced.startswith("5.1.") else "rejected"
        return DeliveryPermanentError(reason, detail, provider_code=provider_code)
    return DeliveryTemporaryError(detail, provider_code=provider_code)


def _enhanced_status(reply: bytes | str) -> str | None:
    raw = reply.encode("utf-8", "replace") if isinstance(reply, str) else reply
    match = _ENHANCED_STATUS.match(raw or b"")
    return match.group(1).decode("ascii") if match else None


def _split_sender(sender: str) -> tuple[str, str]:
    [(display_name, address)] = getaddresses([sender])
    if normalize_email(address) is None:
        raise ValueError(f"sender {sender!r} is not an e-mail address")
    return display_name, address


def _close_quietly(smtp: smtplib.SMTP) -> None:
    # The outcome is already decided; a failing QUIT must neither mask an error nor turn a
    # delivered message into a retry.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
