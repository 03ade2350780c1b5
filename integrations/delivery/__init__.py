"""Survey delivery channels: SMS (Twilio-compatible), e-mail (SMTP) and the demo log channel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
    name: str, config: Mapping[str, Any] | None, *, session: requests.Session | None = None
) -> Channel:
    """Build a channel from its block of a practice's `delivery` settings (CONTRACT §2).

    Raises ValueError naming the missing or wrong field, e.g. "delivery.sms.account_sid".
    """
    if name == "sms":
        return _build_sms(config, session)
    if name == "email":
        return _build_email(config)
    if name == "log":
        return LogChannel()
    raise ValueError(f"delivery.channels: unknown channel {name!r} (expected sms, email or log)")


def _build_sms(config: Mapping[str, Any] | None, session: requests.Session | None) -> Channel:
    fields = _settings("sms", config)
    provider = fields.get("provider", "twilio")
    if provider != "twilio":
        raise ValueError(f"delivery.sms.provider: unsupported {provider!r} (expected 'twilio')")
    api_base = fields.get("api_base", sms_twilio.DEFAULT_API_BASE)
    if not isinstance(api_base, str) or not api_base.startswith(("https://", "http://")):
        raise ValueError("delivery.sms.api_base must be an http(s) URL")
    return TwilioSmsChannel(
        api_base,
        _required_text(fields, "sms", "account_sid"),
        _required_text(fields, "sms", "auth_token"),
        _required_text(fields, "sms", "from"),
        session=session,
        timeout=_timeout(fields, "sms") or sms_twilio.DEFAULT_TIMEOUT,
    )


def _build_email(config: Mapping[str, Any] | None) -> Channel:
    fields = _settings("email", config)
    host = _required_text(fields, "email", "smtp_host")
    port = fields.get("smtp_port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError("delivery.email.smtp_port must be a port number (1-65535)")
    starttls = fields.get("starttls", False)
    if not isinstance(starttls, bool):
        raise ValueError("delivery.email.starttls must be true or false")
    sender = _required_text(fields, "email", "from")
    username = _optional_text(fields, "email", "username")
    password = _optional_text(fields, "email", "password")
    if password and not username:
        raise ValueError("delivery.email.username is required when a password is given")
    timeout = _timeout(fields, "email") or email_smtp.DEFAULT_TIMEOUT
    try:
        return SmtpEmailChannel(
            host,
            port,
            sender,
            starttls=starttls,
            username=username,
            password=password,
            timeout=timeout,
        )
    except ValueError as exc:
        raise ValueError(f"delivery.email.from: {exc}") from exc


def _settings(channel: str, config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not isinstance(config, Mapping):
        raise ValueError(f"delivery.{channel} settings are required")
    return config


def _required_text(fields: Mapping[str, Any], channel: str, key: str) -> str:
    value = fields.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"delivery.{channel}.{key} is required (a non-empty string)")
    return value.strip()


def _optional_text(fields: Mapping[str, Any], channel: str, key: str) -> str | None:
    if fields.get(key) in (None, ""):
        return None
    return _required_text(fields, channel, key)


def _timeout(fields: Mapping[str, Any], channel: str) -> float | None:
    value = fields.get("timeout_seconds")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"delivery.{channel}.timeout_seconds must be a positive number")
    return float(value)
