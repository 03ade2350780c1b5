"""The delivery port: what a channel is given, what it returns, and what it must offer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

MESSAGE_KINDS = frozenset({"invitation", "reminder"})


@dataclass(frozen=True)
class SurveyMessage:
    """One invitation or reminder to answer a survey, addressed for one channel."""

    kind: str
    to: str
    link: str
    practice_name: str
    locale: str
    expires_at: datetime
    unsubscribe_link: str | None
    survey_id: str

    def __post_init__(self) -> None:
        if self.kind not in MESSAGE_KINDS:
            raise ValueError(f"kind must be one of {sorted(MESSAGE_KINDS)}, not {self.kind!r}")
        if self.expires_at.tzinfo is None or self.expires_at.utcoffset() is None:
            raise ValueError("expires_at must be timezone-aware")


@dataclass(frozen=True)
class Notice:
    """A message to the practice's staff, not to a client: fixed words and a link, never
    personal data. `key` is stable per notice (a resend carries the same Message-ID)."""

    to: str
    subject: str
    text: str
    key: str


@dataclass(frozen=True)
class Receipt:
    """Proof that the provider accepted a message (not that it reached the client)."""

    channel: str
    provider_message_id: str | None = None


@dataclass(frozen=True)
class Contact:
    """How a client can be reached, as known from the webhook or the EHR."""

    phone: str | None = None
    email: str | None = None
    locale: str | None = None


@runtime_checkable
class Channel(Protocol):
    """A way to get a survey link to a client."""

    name: str

    def send(self, message: SurveyMessage) -> Receipt:
        """Hand the message to the provider or raise a DeliveryError."""
        ...

    def accepts(self, contact: Contact) -> str | None:
        """Return the address this channel would use for the contact, or None."""
        ...

    def find_sent(self, message: SurveyMessage, since: datetime) -> Receipt | None:
        """Ask the provider whether this message already went out at `since` or later (an
        earlier attempt may have been accepted without our knowing): its receipt, or None when
        it did not or the channel cannot tell. Raises a DeliveryError when it cannot ask now."""
        ...
