"""Every five minutes: a banner on the chart of each client with an open alliance rupture.

The service is asked for the practice's open ruptures and for those closed within the last
LOOKBACK_DAYS, so a banner goes away after a repair even when a run or two failed. The key is
the same for every client (a banner belongs to one patient), so adding it again replaces the
text and removing it needs nothing but the patient.
"""

import arrow
from canvas_sdk.effects import Effect
from canvas_sdk.effects.banner_alert import AddBannerAlert, RemoveBannerAlert
from canvas_sdk.handlers.cron_task import CronTask
from logger import log

from alliance_feedback.service_client import AlertsUnavailable, Settings, read_alerts

BANNER_KEY = "alliance-rupture"
NARRATIVE_MAX = 90
LOOKBACK_DAYS = 7


class RuptureBanners(CronTask):
    """Adds or removes the alliance-rupture banner per client, from the service's alerts."""

    SCHEDULE = "*/5 * * * *"

    def execute(self) -> list[Effect]:
        """Read the alerts and turn them into banner effects; nothing changes if that fails."""
        settings = Settings(self.secrets)
        missing = settings.missing("service_url", "practice_id", "api_key")
        if missing:
            log.error("alliance-feedback: variables not set: " + ", ".join(missing))
            return []
        since = arrow.get(self.event.target.id).shift(days=-LOOKBACK_DAYS).to("UTC")
        try:
            alerts = read_alerts(settings, since.format("YYYY-MM-DDTHH:mm:ss") + "Z")
        except AlertsUnavailable as error:
            log.error("alliance-feedback: alerts not read: " + str(error))
            return []
        return banner_effects(alerts)


def banner_effects(alerts: list) -> list[Effect]:
    """One AddBannerAlert per client with an open rupture; a RemoveBannerAlert per client whose
    rupture closed and who has no open one."""
    open_alerts: dict = {}
    closed: set = set()
    for alert in alerts:
        patient_id = alert.get("patient_id") if isinstance(alert, dict) else None
        if not isinstance(patient_id, str) or not patient_id:
            continue
        if alert.get("status") == "open":
            open_alerts.setdefault(patient_id, alert)
        else:
            closed.add(patient_id)
    effects = [add_banner(patient_id, open_alerts[patient_id])
               for patient_id in sorted(open_alerts)]
    for patient_id in sorted(closed - set(open_alerts)):
        effects.append(RemoveBannerAlert(patient_id=patient_id, key=BANNER_KEY).apply())
    return effects


def add_banner(patient_id: str, alert: dict) -> Effect:
    return AddBannerAlert(
        patient_id=patient_id,
        key=BANNER_KEY,
        narrative=narrative(alert),
        placement=[AddBannerAlert.Placement.CHART, AddBannerAlert.Placement.APPOINTMENT_CARD],
        intent=AddBannerAlert.Intent.WARNING,
    ).apply()


def narrative(alert: dict) -> str:
    """The service's summary (written to fit), cut to the banner's 90 characters if it does not."""
    text = " ".join(str(alert.get("summary") or "Alliance rupture: see the alliance trend").split())
    if len(text) <= NARRATIVE_MAX:
        return text
    return text[: NARRATIVE_MAX - 1].rstrip() + "…"
