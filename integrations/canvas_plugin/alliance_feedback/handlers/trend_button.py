"""An "Alliance trend" button in the chart header that opens the SMART trend view beside it.

Shown only where the practice has the trend app (ALLIANCE_SMART_ISS is set: the Canvas FHIR
base URL listed in the practice's `smart_app.issuers`). The view opens through the service's
SMART launch with Canvas's launch context (base64 JSON naming the patient), so the service
shows the patient Canvas authorises, never one named in the URL alone.
"""

import base64
import json
from urllib.parse import urlencode

from canvas_sdk.effects import Effect
from canvas_sdk.effects.launch_modal import LaunchModalEffect
from canvas_sdk.handlers.action_button import ActionButton

from alliance_feedback.service_client import Settings


class AllianceTrendButton(ActionButton):
    """Opens the alliance trend (SMART on FHIR app) in the chart's right pane."""

    BUTTON_TITLE = "Alliance trend"
    BUTTON_KEY = "alliance_feedback_trend"
    BUTTON_LOCATION = ActionButton.ButtonLocation.CHART_PATIENT_HEADER
    PRIORITY = 1

    def visible(self) -> bool:
        """Only where the practice has the trend app configured."""
        return not Settings(self.secrets).missing("service_url", "practice_id", "smart_iss")

    def handle(self) -> list[Effect]:
        """Open the launch URL for this chart's patient in the large right pane."""
        settings = Settings(self.secrets)
        if settings.missing("service_url", "practice_id", "smart_iss"):
            return []
        return [
            LaunchModalEffect(
                url=launch_url(settings, self.event.target.id),
                target=LaunchModalEffect.TargetType.RIGHT_CHART_PANE_LARGE,
                title="Alliance trend",
            ).apply()
        ]


def launch_url(settings: Settings, patient_id: str) -> str:
    """`{service}/smart/{practice}/launch?iss=…&launch=…` for an EHR launch from this chart."""
    context = json.dumps({"patient": patient_id}, separators=(",", ":"))
    launch = base64.b64encode(context.encode("utf-8")).decode("ascii")
    query = urlencode({"iss": settings.smart_iss, "launch": launch})
    return settings.practice_url("smart", "{practice}", "launch") + "?" + query
