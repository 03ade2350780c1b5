"""The port the service uses to talk to a practice's Healthie account.

Implementations raise integrations.ehr.errors: EhrTransientError (worth retrying),
EhrPermanentError and its EhrAuthError / EhrNotFound (not worth retrying unchanged).
"""

from __future__ import annotations

from typing import Protocol


class HealthieApi(Protocol):
    """The few Healthie GraphQL operations we need, with Healthie's own field names."""

    def appointment(self, appointment_id: str) -> dict | None:
        """The appointment (id, pm_status, date, length, deleted_at, user, attendees,
        provider), or None when Healthie has no such appointment."""
        ...

    def form_answer_group_id(self, external_id: str) -> str | None:
        """The id of the form answer group carrying this external_id, or None."""
        ...

    def create_form_answer_group(self, fields: dict) -> str:
        """createFormAnswerGroup with these input fields; returns the new id."""
        ...

    def active_care_alerts(self, patient_id: str) -> list[dict]:
        """The patient's care alerts that are neither deleted nor expired: [{id, content}]."""
        ...

    def create_care_alert(self, fields: dict) -> str:
        """createCareAlert with these input fields; returns the new id."""
        ...

    def update_care_alert(self, fields: dict) -> None:
        """updateCareAlert with these input fields (id included)."""
        ...

    def delete_care_alert(self, alert_id: str) -> None:
        """deleteCareAlert (Healthie soft-deletes it)."""
        ...
