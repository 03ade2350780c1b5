"""The write-back for `ehr.type` `healthie`: AllianceRecordWriter's methods over Healthie's API.

- Scores: a finished form answer group (`createFormAnswerGroup`, `finished: true`) on the
  practice's alliance form, with `external_id` `alliance-<response id>`. Healthie has no
  idempotency key, so the writer first looks the external_id up (`formAnswerGroup`) and
  creates only when nothing carries it.
- Rupture: a `HIGH` CareAlert with an expiry (`expires_on`, `care_alert_days` ahead) whose
  content ends with a reference to the rupture episode; CareAlerts have no external_id, so the
  reference is how a retry finds the alert it already made. Unresolved: the text is updated and
  the expiry moved on. Repaired: `deleteCareAlert`, unless it is already gone.

The flag id stored for a CareAlert is `<patient id>/<care alert id>`: repair needs the patient
to list the active alerts and see whether the alert is still there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta

from integrations.ehr.writer import AllianceRecord, FlagRef, WrittenScores
from integrations.healthie.port import HealthieApi

FORM_NAME = "Therapeutic alliance check"


class HealthieRecordWriter:
    """write_scores, raise_flag, update_flag_text, resolve_flag, as the other record writers."""

    def __init__(self, api: HealthieApi, section: Mapping, clock: Callable[[], datetime]) -> None:
        self._api = api
        self._form_id = section.get("form_id")
        self._fields = dict(section.get("form_fields") or {})
        self._alert_days = int(section.get("care_alert_days") or 30)
        self._clock = clock

    def write_scores(self, record: AllianceRecord) -> WrittenScores:
        """One finished form answer group per response, however often called."""
        external_id = f"alliance-{record.response_id}"
        existing = self._api.form_answer_group_id(external_id)
        if existing is None:
            existing = self._api.create_form_answer_group(
                {
                    "user_id": record.patient_id,
                    "custom_module_form_id": self._form_id,
                    "appointment_id": record.session_id,
                    "finished": True,
                    "name": FORM_NAME,
                    "external_id": external_id,
                    "form_answers": self._answers(record),
                }
            )
        return WrittenScores(existing, existing)

    def raise_flag(self, record: AllianceRecord, text: str, episode_id: str) -> FlagRef:
        """A HIGH CareAlert for the episode, created once."""
        alerts = self._api.active_care_alerts(record.patient_id)
        alert_id = _marked(alerts, episode_id) or self._create_alert(
            record.patient_id, text, episode_id)
        return FlagRef(f"{record.patient_id}/{alert_id}", None, episode_id)

    def update_flag_text(self, flag: FlagRef, text: str) -> FlagRef:
        """New text and a later expiry; a new alert if someone removed the old one meanwhile."""
        patient_id, alert_id = _split(flag.id)
        alerts = self._api.active_care_alerts(patient_id)  # one listing for both questions
        if alert_id not in {str(alert["id"]) for alert in alerts}:
            alert_id = _marked(alerts, flag.identifier) or self._create_alert(
                patient_id, text, flag.identifier)
            return FlagRef(f"{patient_id}/{alert_id}", None, flag.identifier)
        self._api.update_care_alert(
            {
                "id": alert_id,
                "content": alert_content(text, flag.identifier),
                "expires_on": self._expires_on().isoformat(),
            }
        )
        return flag

    def resolve_flag(self, flag: FlagRef, ended_at: datetime) -> FlagRef:
        """Delete the CareAlert: the alliance was repaired (nothing to do if it is gone)."""
        patient_id, alert_id = _split(flag.id)
        if alert_id in self._active_ids(patient_id):
            self._api.delete_care_alert(alert_id)
        return flag

    def _create_alert(self, patient_id: str, text: str, episode_id: str) -> str:
        return self._api.create_care_alert(
            {
                "patient_id": patient_id,
                "content": alert_content(text, episode_id),
                "priority": "HIGH",
                "expires_on": self._expires_on().isoformat(),
            }
        )

    def _active_ids(self, patient_id: str) -> set[str]:
        return {str(alert["id"]) for alert in self._api.active_care_alerts(patient_id)}

    def _expires_on(self) -> date:
        return self._clock().date() + timedelta(days=self._alert_days)

    def _answers(self, record: AllianceRecord) -> list[dict]:
        values = {
            "summary": summary(record),
            "total": _number(record.total),
            "pomp": _number(record.pomp),
            "decision": record.decision,
            "interpretation": record.interpretation or "",
            **{name: _number(value) for name, value in record.subscales.items()},
        }
        return [
            {"custom_module_id": module_id, "answer": values[name]}
            for name, module_id in self._fields.items()
            if name in values
        ]


def summary(record: AllianceRecord) -> str:
    """One line a clinician reads on the chart (no names: the chart already says whose it is)."""
    parts = [
        (
            f"Alliance {_number(record.total)} of {_number(record.total_max)}"
            f" ({_number(record.pomp)}% of the scale)"
        )
    ]
    if record.subscales:
        parts.append(
            ", ".join(f"{name} {_number(value)}" for name, value in record.subscales.items())
        )
    parts.append(f"decision: {record.decision}")
    text = "; ".join(parts) + "."
    return f"{text} {' '.join(record.reasons)}".strip()


def episode_marker(episode_id: str) -> str:
    return f"[alliance ref {episode_id.replace('-', '')[:12]}]"


def alert_content(text: str, episode_id: str) -> str:
    return f"{text} {episode_marker(episode_id)}"


def _split(flag_id: str) -> tuple[str, str]:
    patient_id, _, alert_id = flag_id.rpartition("/")
    return patient_id, alert_id


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _marked(alerts: list[dict], episode_id: str) -> str | None:
    """The id of the alert written for this episode (its content carries the marker)."""
    marker = episode_marker(episode_id)
    return next((str(alert["id"]) for alert in alerts if marker in (alert.get("content") or "")),
                None)
