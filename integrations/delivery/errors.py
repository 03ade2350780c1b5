"""Errors a delivery channel raises; the caller retries temporary ones and records permanent ones.

Messages never carry the recipient's address or the provider's free text (which often repeats
the address), only codes, so an error can be logged as it is.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """A survey message could not be handed to the provider."""

    def __init__(self, detail: str, *, provider_code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.provider_code = provider_code


class DeliveryTemporaryError(DeliveryError):
    """Worth retrying later: timeouts, connection errors, HTTP 5xx/429, SMTP 4xx."""

    def __init__(
        self,
        detail: str,
        *,
        retry_after: float | None = None,
        provider_code: str | None = None,
    ) -> None:
        super().__init__(detail, provider_code=provider_code)
        self.retry_after = retry_after


class DeliveryPermanentError(DeliveryError):
    """Retrying cannot help; `reason` is a short stable tag such as 'opted-out'.

    Reasons used by the channels: 'invalid-number', 'not-mobile', 'unreachable',
    'region-not-permitted', 'opted-out', 'invalid-address', 'rejected', 'auth-failed',
    'misconfigured', 'tls-failed'.
    """

    def __init__(
        self, reason: str, detail: str | None = None, *, provider_code: str | None = None
    ) -> None:
        super().__init__(detail or reason, provider_code=provider_code)
        self.reason = reason
