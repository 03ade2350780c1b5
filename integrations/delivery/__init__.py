"""Survey delivery channels: SMS (Twilio-compatible), e-mail (SMTP) and the demo log channel."""

from __future__ import annotations

import requests

from integrations.delivery import email_smtp, sms_twilio
from integrations.delivery.email_smtp import SmtpEmailChannel
from integrations.delivery.errors import (
    DeliveryError,
    DeliveryPermanentError,
    DeliveryTemporaryError,
)
from integrations.delivery.log_channel import LogChannel
from integrations.delivery.port import Channel, Contact, Receipt, SurveyMessage
from integrations.delivery.sms_twilio import TwilioSmsChannel
from integrations.settings import ChannelSettings, EmailSettings, SmsSettings

CHANNEL_NAMES = ("sms", "email", "log")

__all__ = [
    "CHANNEL_NAMES",
    "Channel",
    "Contact",
    "DeliveryError",
    "DeliveryPermanentError",
    "DeliveryTemporaryError",
    "LogChannel",
    "Receipt",
    "SmtpEmailChannel",
    "SurveyMessage",
    "TwilioSmsChannel",
    "build_channel",
]


def build_channel(
    name: str, settings: ChannelSettings, *, session: requests.Session | None = None,
    log_enabled: bool = False,
) -> Channel:
    """Build a channel from a practice's typed settings for it (`delivery.sms`, `delivery.email`;
    none for `log`, which writes links only with `log_enabled`: the local demo). The settings
    were validated with the practice document: nothing is checked again here. Raises
    ValueError for an unknown channel or settings of the wrong kind."""
    if name == "sms" and isinstance(settings, SmsSettings):
        return TwilioSmsChannel(
            settings.api_base, settings.account_sid, settings.auth_token, settings.sender,
            session=session, timeout=settings.timeout_seconds or sms_twilio.DEFAULT_TIMEOUT,
            network=settings.network)
    if name == "email" and isinstance(settings, EmailSettings):
        return SmtpEmailChannel(
            settings.smtp_host, settings.smtp_port, settings.sender, tls=settings.tls,
            username=settings.username, password=settings.password,
            timeout=settings.timeout_seconds or email_smtp.DEFAULT_TIMEOUT,
            network=settings.network)
    if name == "log":
        return LogChannel(enabled=log_enabled)
    if name in ("sms", "email"):
        raise ValueError(f"delivery.{name} settings are required")
    raise ValueError(f"delivery.channels: unknown channel {name!r} (expected sms, email or log)")
