"""The demo channel: writes the survey link to the log instead of sending it."""

from __future__ import annotations

import structlog

from integrations.delivery.port import Contact, Receipt, SurveyMessage

logger = structlog.get_logger(__name__)

# What accepts() returns: the log needs no address, and this placeholder is safe to store.
LOG_ADDRESS = "log"


class LogChannel:
    """Logs the link (never the address) so a local demo can open the survey."""

    name = "log"

    def accepts(self, contact: Contact | None) -> str | None:
        """Accept every client, even one with no contact details."""
        return LOG_ADDRESS

    def send(self, message: SurveyMessage) -> Receipt:
        """Log the link with opaque ids only."""
        logger.info(
            "survey link ready",
            survey_id=message.survey_id,
            kind=message.kind,
            link=message.link,
            expires_at=message.expires_at.isoformat(),
        )
        return Receipt(channel=self.name, provider_message_id=None)
