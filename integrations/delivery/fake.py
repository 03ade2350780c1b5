"""An in-memory channel for tests: records what it sends and fails on request."""

from __future__ import annotations

from datetime import datetime

from integrations.delivery.contact import normalize_email, normalize_phone
from integrations.delivery.errors import DeliveryError, DeliveryTemporaryError
from integrations.delivery.port import Contact, Notice, Receipt, SurveyMessage


class FakeChannel:
    """Stands in for a real channel; `name` decides which contact field it accepts.

    'sms' takes the phone and 'email' the e-mail address, as the real channels do; any other
    name accepts every contact, like the log channel.
    """

    def __init__(
        self, name: str = "sms", *, fail_times: int = 0, error: DeliveryError | None = None
    ) -> None:
        self.name = name
        self.sent: list[SurveyMessage] = []
        self.notices: list[Notice] = []
        self.attempts = 0
        self.lookups = 0
        self._failures_left = 0
        self._error: DeliveryError = DeliveryTemporaryError("simulated outage")
        self.fail_next(fail_times, error)

    def fail_next(self, times: int, error: DeliveryError | None = None) -> None:
        """Make the next `times` sends raise `error` (default: a temporary outage)."""
        self._failures_left = times
        if error is not None:
            self._error = error

    def accepts(self, contact: Contact | None) -> str | None:
        """Return the address the matching real channel would use."""
        if self.name == "sms":
            return normalize_phone(contact.phone) if contact else None
        if self.name == "email":
            return normalize_email(contact.email) if contact else None
        return self.name

    def find_sent(self, message: SurveyMessage, since: datetime) -> Receipt | None:
        """Like a provider's message list: a receipt when this survey's message of this kind
        was accepted (`sent`), else None."""
        self.lookups += 1
        for number, sent in enumerate(self.sent, start=1):
            if (sent.survey_id, sent.kind) == (message.survey_id, message.kind):
                return Receipt(channel=self.name, provider_message_id=f"fake-{number}")
        return None

    def send(self, message: SurveyMessage) -> Receipt:
        """Record the message, or raise the configured error while failures remain."""
        self.attempts += 1
        if self._failures_left > 0:
            self._failures_left -= 1
            raise self._error
        self.sent.append(message)
        return Receipt(channel=self.name, provider_message_id=f"fake-{len(self.sent)}")

    def send_notice(self, notice: Notice) -> Receipt:
        """Record a notice to the practice's staff, or fail like `send`."""
        self.attempts += 1
        if self._failures_left > 0:
            self._failures_left -= 1
            raise self._error
        self.notices.append(notice)
        return Receipt(channel=self.name, provider_message_id=f"fake-notice-{len(self.notices)}")
