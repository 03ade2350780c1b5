"""The alliance-feedback service as the plugin sees it: settings, signed events out, alerts in.

Runs inside Canvas's plugin sandbox, so it uses only what the sandbox allows: base64, hashlib,
hmac, json, time, urllib.parse and the SDK's `Http` (30-second cap, no retries).
"""

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import quote, urlencode

from canvas_sdk.utils.http import Http
from requests.exceptions import RequestException

# Bounds on one cron run: at most this many pages of at most PAGE_SIZE alerts each.
PAGE_SIZE = 200
MAX_PAGES = 25


class Settings:
    """The plugin's variables (CANVAS_MANIFEST.json), read from the handler's `secrets`."""

    def __init__(self, secrets: dict) -> None:
        self.service_url = (secrets.get("ALLIANCE_SERVICE_URL") or "").strip().rstrip("/")
        self.practice_id = (secrets.get("ALLIANCE_PRACTICE_ID") or "").strip()
        self.webhook_secret = (secrets.get("ALLIANCE_WEBHOOK_SECRET") or "").strip()
        self.api_key = (secrets.get("ALLIANCE_API_KEY") or "").strip()
        self.smart_iss = (secrets.get("ALLIANCE_SMART_ISS") or "").strip()
        names = (secrets.get("ALLIANCE_NOTE_TYPES") or "").split(",")
        self.note_types = [name.strip().lower() for name in names if name.strip()]

    def missing(self, *names: str) -> list:
        """The variables among `names` (service_url, practice_id, …) that are not set."""
        return [name for name in names if not getattr(self, name)]

    def practice_url(self, *parts: str) -> str:
        """The service URL of these path segments; `{practice}` becomes the escaped practice id."""
        practice = quote(self.practice_id, safe="")
        return "/".join([self.service_url, *parts]).replace("{practice}", practice)


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """A Standard Webhooks `webhook-signature`: v1, HMAC-SHA256 of '{id}.{timestamp}.{body}'."""
    encoded_key = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    key = base64.b64decode(encoded_key)
    content = (message_id + "." + str(timestamp) + "." + body).encode("utf-8")
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


class NotDelivered(Exception):
    """The event did not reach the service (no connection, a timeout)."""


def post_event(settings: Settings, message_id: str, event: dict, now: float | None = None):
    """POST a signed native event to the practice's events route; returns the response, or
    raises NotDelivered when there was none."""
    body = json.dumps(event, separators=(",", ":"), sort_keys=True)
    timestamp = int(now if now is not None else time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(settings.webhook_secret, message_id, timestamp, body),
    }
    url = settings.practice_url("webhooks", "{practice}", "events")
    try:
        return Http().post(url, data=body.encode("utf-8"), headers=headers)
    except RequestException as error:
        raise NotDelivered(type(error).__name__) from None


class AlertsUnavailable(Exception):
    """The alerts could not be read; the banners are left as they are until the next run."""


def read_alerts(settings: Settings, since: str) -> list:
    """Every alert the service reports for `since` (open ruptures, and those closed since)."""
    url = settings.practice_url("api", "v1", "practices", "{practice}", "alerts")
    headers = {"Authorization": "Bearer " + settings.api_key, "Accept": "application/json"}
    alerts: list = []
    cursor = None
    for _page in range(MAX_PAGES):
        query = {"since": since, "limit": str(PAGE_SIZE)}
        if cursor:
            query["cursor"] = cursor
        try:
            response = Http().get(url + "?" + urlencode(query), headers=headers)
        except RequestException as error:
            raise AlertsUnavailable("no answer from the service: " + type(error).__name__) from None
        if response.status_code != 200:
            raise AlertsUnavailable("the service answered " + str(response.status_code))
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise AlertsUnavailable("the service's answer is not a JSON object")
        alerts.extend(document.get("alerts") or [])
        cursor = document.get("next_cursor")
        if not cursor:
            return alerts
    raise AlertsUnavailable("more than " + str(MAX_PAGES * PAGE_SIZE) + " alerts: stopped reading")
