"""Outbound HTTP: one configured requests.Session per peer, never without a timeout."""

from __future__ import annotations

import email.utils
from datetime import timezone
from typing import Any

import requests

USER_AGENT = "alliance-feedback/0.1"
# (connect, read) seconds: connect slightly above a TCP retransmit window, read bounded so a
# stuck peer can never hold a worker.
DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 10.0)
# Failures where the peer may never have seen the request, or we never saw its answer.
TRANSPORT_FAILURES = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
)


class TimeoutSession(requests.Session):
    """A requests.Session that applies a default timeout to every request that names none."""

    def __init__(self, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any):
        """Send the request, filling in the default timeout when the caller gave none."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


def build_session(
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT, user_agent: str = USER_AGENT
) -> requests.Session:
    """Build a session with our User-Agent and a default timeout on every request."""
    session = TimeoutSession(timeout)
    session.headers["User-Agent"] = user_agent
    return session


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; obsolete formats may parse naive
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)
