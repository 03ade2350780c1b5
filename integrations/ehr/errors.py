"""Errors raised by EHR gateways, split by what the caller should do next."""

from __future__ import annotations


class EhrError(Exception):
    """Any failure talking to the EHR."""


class EhrTransientError(EhrError):
    """Worth retrying later: timeouts, connection errors, 5xx, 429."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EhrPermanentError(EhrError):
    """The EHR refused the request; retrying unchanged will not help."""

    def __init__(
        self, message: str, status: int, operation_outcome: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.operation_outcome = operation_outcome


class EhrConflict(EhrPermanentError):
    """A version-aware update lost a race (409 / 412): re-read and try again."""


class EhrNotFound(EhrPermanentError):
    """The resource does not exist (404)."""


class EhrAuthError(EhrPermanentError):
    """Authentication or authorization failed, even after one token refresh."""


def refused_destination(what: str, reason: Exception) -> EhrPermanentError:
    """The call was never made: the practice's network settings do not allow its address
    (`integrations/network.py`). Status 0 (no HTTP answer); the OperationOutcome is our own,
    so the dead-letter store says why."""
    detail = f"{what} not sent: {reason}"
    outcome = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "security", "diagnostics": detail}]}
    return EhrPermanentError(detail, 0, outcome)
