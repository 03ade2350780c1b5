"""An in-memory HealthieApi, for unit tests and local runs: appointments the test puts in, form
answer groups and care alerts the writer makes (soft-deleted as Healthie does)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from datetime import date, datetime, timezone

from integrations.ehr.errors import EhrError, EhrNotFound


class InMemoryHealthie:
    """HealthieApi with Healthie's semantics for what we use; `fail_next` injects errors."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._clock = clock
        self._ids = itertools.count(1001)
        self.appointments: dict[str, dict] = {}
        self.form_answer_groups: dict[str, dict] = {}
        self.care_alerts: dict[str, dict] = {}
        self.calls: list[str] = []
        self._failures: list[tuple[str | None, EhrError, bool]] = []

    def fail_next(
        self, error: EhrError, operation: str | None = None, after_write: bool = False
    ) -> None:
        """The next call (of that operation, or any) raises; after_write: it takes effect first."""
        self._failures.append((operation, error, after_write))

    def appointment(self, appointment_id: str) -> dict | None:
        self._call("appointment")
        found = self.appointments.get(str(appointment_id))
        return copy.deepcopy(found) if found else None

    def form_answer_group_id(self, external_id: str) -> str | None:
        self._call("formAnswerGroup")
        return next(
            (
                group_id
                for group_id, group in self.form_answer_groups.items()
                if group.get("external_id") == external_id
            ),
            None,
        )

    def create_form_answer_group(self, fields: dict) -> str:
        group_id = str(next(self._ids))
        return self._write(
            "createFormAnswerGroup",
            lambda: self.form_answer_groups.__setitem__(group_id, copy.deepcopy(fields)),
            group_id,
        )

    def active_care_alerts(self, patient_id: str) -> list[dict]:
        self._call("careAlerts")
        today = self._clock().date()
        return [
            {"id": alert_id, "content": alert["content"]}
            for alert_id, alert in self.care_alerts.items()
            if alert["patient_id"] == str(patient_id)
            and not alert["deleted"]
            and not _expired(alert, today)
        ]

    def create_care_alert(self, fields: dict) -> str:
        alert_id = str(next(self._ids))
        alert = {**copy.deepcopy(fields), "patient_id": str(fields["patient_id"]), "deleted": False}
        return self._write(
            "createCareAlert", lambda: self.care_alerts.__setitem__(alert_id, alert), alert_id
        )

    def update_care_alert(self, fields: dict) -> None:
        alert = self._alert(fields["id"], "updateCareAlert")
        self._write(
            "updateCareAlert",
            lambda: alert.update({k: v for k, v in fields.items() if k != "id"}),
            None,
        )

    def delete_care_alert(self, alert_id: str) -> None:
        alert = self._alert(alert_id, "deleteCareAlert")
        self._write("deleteCareAlert", lambda: alert.update(deleted=True), None)

    def _alert(self, alert_id: str, operation: str) -> dict:
        alert = self.care_alerts.get(str(alert_id))
        if alert is None or alert["deleted"]:
            self._call(operation)
            raise EhrNotFound(f"Healthie {operation}: care alert not found", 200)
        return alert

    def _write(self, operation: str, effect: Callable[[], None], result):
        failure = self._planned(operation)
        self.calls.append(operation)
        if failure and not failure[2]:
            raise failure[1]
        effect()
        if failure:
            raise failure[1]
        return result

    def _call(self, operation: str) -> None:
        failure = self._planned(operation)
        self.calls.append(operation)
        if failure:
            raise failure[1]

    def _planned(self, operation: str):
        for index, failure in enumerate(self._failures):
            if failure[0] in (None, operation):
                return self._failures.pop(index)
        return None


def _expired(alert: dict, today: date) -> bool:
    expires_on = alert.get("expires_on")
    return bool(expires_on) and date.fromisoformat(expires_on) < today
