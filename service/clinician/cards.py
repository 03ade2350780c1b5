"""CDS Hooks cards from a client's stored clinician state (CONTRACT §8.1). Pure: no I/O.

- An open rupture: one card, `warning` (`critical` when unresolved), the reasons and the session
  date, `overrideReasons` with `acknowledged`, and the SMART trend link when the practice has
  the app. Once acknowledged (for its current stage) the card stays, as `info`, and says who
  acknowledged it and when: the rupture is still open, but nobody needs to be interrupted again.
  When an acknowledged rupture turns `unresolved`, that is news: the card is `critical` again.
- A rupture snoozed from the SMART view (alert_actions.py): no card until the snooze ends; a
  snooze, like an acknowledgment, covers its stage only.
- Otherwise, with `info_cards`: one `info` card with the last total, its date and the direction.
- Nothing known, or nothing returned: no card.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from service.clinician.alert_actions import actor_words
from service.domain.scoring import plain_number

SOURCE = {"label": "alliance-feedback"}
OVERRIDE_SYSTEM = "https://alliance-feedback.org/cds-hooks/override-reason"
ACKNOWLEDGED = {"code": "acknowledged", "system": OVERRIDE_SYSTEM,
                "display": "Acknowledged: I will address the alliance with the client"}
# Card ids are stable per rupture episode and stage (a new stage is a new card to act on).
CARD_NAMESPACE = uuid.UUID("5d0f3c8e-6a43-4d0e-9a53-3f1c2b7a9e10")
SUMMARY_LIMIT = 139
# Markdown that could change how a reason renders (ids from the EHR are interpolated).
_MARKDOWN = re.compile(r"([\\`*_\[\]<>#|~])")


@dataclass(frozen=True)
class CardSettings:
    info_cards: bool
    timezone: str
    smart_launch_url: str | None = None
    total_max: float | None = None
    now: datetime | None = None  # a snooze ending later hides the rupture card


def rupture_card_uuid(practice_id: str, episode_id: str, stage: str) -> str:
    return str(uuid.uuid5(CARD_NAMESPACE, f"{practice_id}/{episode_id}/{stage}"))


def info_card_uuid(practice_id: str, patient_id: str, session_at: datetime | None) -> str:
    stamp = session_at.isoformat() if session_at else "-"
    return str(uuid.uuid5(CARD_NAMESPACE, f"{practice_id}/{patient_id}/info/{stamp}"))


def build_cards(state: Mapping | None, settings: CardSettings) -> list[dict]:
    """The cards for one client's state (a row of clinician_states with its acknowledgment)."""
    if state is None:
        return []
    if state["episode_id"] and state["stage"] in ("rupture", "unresolved"):
        return [] if _snoozed(state, settings) else [_rupture_card(state, settings)]
    if settings.info_cards and state["returned_count"] and state["last_total"] is not None:
        return [_info_card(state, settings)]
    return []


def _rupture_card(state: Mapping, settings: CardSettings) -> dict:
    unresolved = state["stage"] == "unresolved"
    acknowledged = state.get("acknowledged_at") is not None
    since = _date(state["opened_session_at"] or state["stage_session_at"], settings)
    if unresolved:
        summary = f"Unresolved alliance rupture, open since the session of {since}"
    else:
        summary = f"Alliance rupture after the session of {since}"
    reasons = list(state["stage_reasons"] or [])
    if reasons and not unresolved:
        summary += f": {reasons[0]}"
    # Plain lines and a list: read well as markdown (CDS Hooks) and as plain text.
    detail = [f"Seen after the session of {_date(state['stage_session_at'], settings)}:", ""]
    detail += [f"- {_escape(reason)}" for reason in reasons] or ["- (no reasons stored)"]
    detail += ["", _latest_line(state, settings)]
    card = {"uuid": state["card_uuid"], "source": dict(SOURCE),
            "indicator": "critical" if unresolved else "warning"}
    if acknowledged:
        card["indicator"] = "info"
        summary = "Acknowledged: " + summary[0].lower() + summary[1:]
        detail += ["", f"Acknowledged by {_escape(actor_words(state['acknowledged_by']))} on "
                       f"{_date(state['acknowledged_at'], settings)}; still open until the "
                       "alliance recovers."]
    else:
        card["overrideReasons"] = [dict(ACKNOWLEDGED)]
    card["summary"] = _short(summary)
    card["detail"] = "\n".join(detail)
    _add_trend_link(card, settings)
    return card


def _snoozed(state: Mapping, settings: CardSettings) -> bool:
    until = state.get("snoozed_until")
    return until is not None and settings.now is not None and until > settings.now


def _info_card(state: Mapping, settings: CardSettings) -> dict:
    total = _score(state["last_total"], settings.total_max)
    when = _date(state["last_session_at"], settings)
    direction = _direction(state["last_total"], state["previous_total"])
    detail = [f"Alliance total {total} after the session of {when} ({direction}).",
              f"Surveys returned: {state['returned_count']}."]
    reasons = [reason for reason in state["last_reasons"] or []]
    if reasons:
        detail += ["", "Last survey:", ""] + [f"- {_escape(reason)}" for reason in reasons]
    card = {"uuid": info_card_uuid(state["practice_id"], state["patient_id"],
                                   state["last_session_at"]),
            "summary": _short(f"Alliance {total} on {when}, {direction}"),
            "indicator": "info", "source": dict(SOURCE), "detail": "\n".join(detail)}
    _add_trend_link(card, settings)
    return card


def _latest_line(state: Mapping, settings: CardSettings) -> str:
    if state["last_total"] is None:
        return "No survey returned since the rupture."
    total = _score(state["last_total"], settings.total_max)
    return (f"Latest returned survey: alliance total {total} after the session of "
            f"{_date(state['last_session_at'], settings)}.")


def _add_trend_link(card: dict, settings: CardSettings) -> None:
    if settings.smart_launch_url:
        card["links"] = [{"label": "Alliance trend", "url": settings.smart_launch_url,
                          "type": "smart"}]


def _direction(last: float, previous: float | None) -> str:
    if previous is None:
        return "the first survey returned"
    if last > previous:
        return f"up from {plain_number(round(previous, 1))}"
    if last < previous:
        return f"down from {plain_number(round(previous, 1))}"
    return "unchanged from the survey before"


def _score(total: float, total_max: float | None) -> str:
    shown = str(plain_number(round(total, 1)))
    return f"{shown} of {plain_number(total_max)}" if total_max else shown


def _date(when: datetime | None, settings: CardSettings) -> str:
    if when is None:
        return "an unknown date"
    return when.astimezone(ZoneInfo(settings.timezone)).date().isoformat()


def _escape(text: str) -> str:
    return _MARKDOWN.sub(r"\\\1", text)


def _short(text: str) -> str:
    if len(text) <= SUMMARY_LIMIT:
        return text
    cut = text[: SUMMARY_LIMIT - 1].rsplit(" ", 1)[0].rstrip(" ,;:")
    return cut + "…"
