"""The demo channel: writes the survey link to the log instead of sending it."""

from __future__ import annotations

from datetime import datetime

import structlog

from integrations.delivery.errors import DeliveryPermanentError
from integrations.delivery.port import Contact, Receipt, SurveyMessage

logger = structlog.get_logger(__name__)

# What accepts() returns: the log needs no address, and this placeholder is safe to store.
LOG_ADDRESS = "log"


class LogChannel:
    """Logs the link (never the address) so a local demo can open the survey.

    A survey link in a log lets anyone who reads the log answer the survey: outside the local
    demo the channel is built `enabled=False` and refuses every message (the service decides,
    from ALLIANCE_DEMO and the database).
    """

    name = "log"

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def accepts(self, contact: Contact | None) -> str | None:
        """Accept every client, even one with no contact details."""
        return LOG_ADDRESS

    def find_sent(self, message: SurveyMessage, since: datetime) -> Receipt | None:
        """A log keeps no record to ask: None (the link is logged again)."""
        return None

    def send(self, message: SurveyMessage) -> Receipt:
        """Log the link with opaque ids only."""
        if not self.enabled:
            raise DeliveryPermanentError(
                "misconfigured", "the log channel is for the local demo only (ALLIANCE_DEMO=1 "
                                 "on SQLite); the link was not written")
        logger.info(
            "survey link ready",
            survey_id=message.survey_id,
            kind=message.kind,
            link=message.link,
            expires_at=message.expires_at.isoformat(),
        )
        return Receipt(channel=self.name, provider_message_id=None)
