"""E-mail over SMTP: one multipart/alternative message, plain text plus HTML (CONTRACT §2).

TLS: `starttls` (the default) or `implicit`, with the certificate checked against the host
name; `none` only for a relay on this machine. A login never runs without TLS: a channel
configured with a username and `none` refuses before it connects.

SMTP cannot be asked what it accepted. So a message whose "250 accepted" was lost (the worker
killed between the relay's answer and the commit) is sent again, with the same Message-ID,
derived from the survey and the kind of message: mailboxes that drop repeated Message-IDs
(Gmail among them) show it once, and the relay's log can be searched by it.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import uuid
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses

from integrations.delivery.contact import normalize_email
from integrations.delivery.errors import (
    DeliveryError,
    DeliveryPermanentError,
    DeliveryTemporaryError,
)
from integrations.delivery.messages import render_email
from integrations.delivery.port import Contact, Notice, Receipt, SurveyMessage
from integrations.network import DestinationRefused, connect_checked
from integrations.settings import PUBLIC_ONLY, TLS_MODES, NetworkSettings

DEFAULT_TIMEOUT = 20.0  # seconds, per socket operation
__all__ = ["SmtpEmailChannel", "normalize_email"]

_ENHANCED_STATUS = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})")
# Message-IDs are a UUID of the survey and the kind, in this namespace (fixed: changing it
# would give a resent message a new id).
_MESSAGE_IDS = uuid.UUID("0f4c7d52-3f0e-4a53-9c1b-6d2f8a1e5b90")


class SmtpEmailChannel:
    """Sends the survey link as an e-mail through an SMTP relay (TLS, and AUTH only over it).

    The practice name becomes the From display name unless `sender` already has one.
    """

    name = "email"

    def __init__(
        self,
        smtp_host: str,
        smtp_port: int,
        sender: str,
        *,
        tls: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        network: NetworkSettings = PUBLIC_ONLY,
    ) -> None:
        if tls not in TLS_MODES:
            raise ValueError(f"tls must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        self._host = smtp_host
        self._port = smtp_port
        self._sender_name, self._sender_address = _split_sender(sender)
        self._tls = tls
        self._credentials = (username, password or "") if username else None
        self._timeout = timeout
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._network = network

    def accepts(self, contact: Contact | None) -> str | None:
        """Return the client's e-mail address, or None when there is no usable one."""
        return normalize_email(contact.email) if contact else None

    def send(self, message: SurveyMessage) -> Receipt:
        """Submit the e-mail to the relay; raise DeliveryError when it is refused."""
        to = normalize_email(message.to)
        if to is None:
            raise DeliveryPermanentError("invalid-address", "recipient is not a plain address")
        return self._deliver(self.compose(message, to), to)

    def send_notice(self, notice: Notice) -> Receipt:
        """Send a plain-text notice to the practice's staff (an escalation); the same
        Message-ID for the same `notice.key`."""
        to = normalize_email(notice.to)
        if to is None:
            raise DeliveryPermanentError("invalid-address", "recipient is not a plain address")
        email = self._envelope(self._sender_name, to, notice.subject, f"notice:{notice.key}")
        email.set_content(notice.text)
        return self._deliver(email, to)

    def _deliver(self, email: EmailMessage, to: str) -> Receipt:
        if self._credentials and self._tls == "none":
            raise DeliveryPermanentError(
                "misconfigured", "SMTP login refused without TLS: set delivery.email.tls to "
                                 "starttls or implicit")
        try:
            self._submit(email, to)
        except DestinationRefused as exc:
            raise DeliveryPermanentError("misconfigured", f"SMTP relay not called: {exc}") \
                from None
        except (smtplib.SMTPException, OSError) as exc:
            raise error_for_exception(exc) from exc
        return Receipt(channel=self.name, provider_message_id=email["Message-ID"])

    def find_sent(self, message: SurveyMessage, since: datetime) -> Receipt | None:
        """SMTP cannot be asked what a relay accepted: always None (the message is sent again,
        with the same Message-ID)."""
        return None

    def compose(self, message: SurveyMessage, to: str) -> EmailMessage:
        """Build the MIME message for one recipient."""
        subject, text, html = render_email(message)
        email = self._envelope(self._sender_name or message.practice_name.strip(), to, subject,
                               f"{message.survey_id}:{message.kind}")
        if message.unsubscribe_link:
            email["List-Unsubscribe"] = f"<{message.unsubscribe_link}>"
        email.set_content(text)
        email.add_alternative(html, subtype="html")
        return email

    def _envelope(self, sender_name: str, to: str, subject: str, key: str) -> EmailMessage:
        """The headers every message of ours carries; the same Message-ID for the same key."""
        email = EmailMessage()
        email["From"] = Address(sender_name, addr_spec=self._sender_address)
        email["To"] = Address(addr_spec=to)
        email["Subject"] = subject
        email["Date"] = format_datetime(datetime.now(timezone.utc))
        email["Message-ID"] = message_id(key, self._sender_address.rpartition("@")[2])
        # RFC 3834: keeps out-of-office replies from answering an automated message.
        email["Auto-Submitted"] = "auto-generated"
        return email

    def _submit(self, email: EmailMessage, to: str) -> None:
        # Host and port go to the constructor: starttls() and implicit TLS check the
        # certificate against the host given there, not the address connected to.
        smtp = self._connect()
        try:
            if self._tls == "starttls":
                smtp.starttls(context=self._ssl_context)
            if self._credentials:
                smtp.login(*self._credentials)
            smtp.send_message(email, from_addr=self._sender_address, to_addrs=[to])
        finally:
            _close_quietly(smtp)

    def _connect(self) -> smtplib.SMTP:
        if self._tls == "implicit":
            return _CheckedSMTPSSL(self._host, self._port, timeout=self._timeout,
                                   context=self._ssl_context, network=self._network)
        return _CheckedSMTP(self._host, self._port, timeout=self._timeout,
                            network=self._network)


class _CheckedSMTP(smtplib.SMTP):
    """smtplib.SMTP that connects only to an address the network settings allow."""

    def __init__(self, *args, network: NetworkSettings = PUBLIC_ONLY, **kwargs) -> None:
        self._network = network  # before super().__init__, which connects
        super().__init__(*args, **kwargs)

    def _get_socket(self, host, port, timeout):
        return connect_checked(host, port, timeout, self._network, self.source_address)


class _CheckedSMTPSSL(smtplib.SMTP_SSL, _CheckedSMTP):
    """Implicit TLS: SMTP_SSL wraps the socket that _CheckedSMTP connected (the MRO puts
    _CheckedSMTP._get_socket behind SMTP_SSL's)."""

    def __init__(self, *args, network: NetworkSettings = PUBLIC_ONLY, **kwargs) -> None:
        self._network = network  # SMTP_SSL.__init__ calls SMTP.__init__ itself, which connects
        smtplib.SMTP_SSL.__init__(self, *args, **kwargs)


def message_id(key: str, domain: str) -> str:
    """The same Message-ID every time the message with this key (a survey's message of one
    kind, `{survey_id}:{kind}`; a notice, `notice:{key}`) is sent."""
    return f"<{uuid.uuid5(_MESSAGE_IDS, key)}@{domain}>"


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
    if isinstance(exc, ssl.SSLError):
        return DeliveryPermanentError("tls-failed", f"TLS with the SMTP server failed "
                                                    f"({exc.reason or type(exc).__name__})")
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
