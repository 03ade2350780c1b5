"""What a clinician may do about an open rupture from the SMART view (CONTRACT §9.1), and what
the episode's stored actions add up to. Pure: rows in, decisions and words out.

- **Acknowledge** (optional note): the CDS card turns `info` and says who acknowledged it
  (cards.py). An acknowledgment counts for the stage it was made in: when the rupture turns
  `unresolved`, it is news, and a new acknowledgment is asked for. Acknowledging a stage that
  is acknowledged already (here or by CDS Hooks feedback) adds nothing.
- **Snooze** for 1..`max_snooze_days` days, at most `max_snoozes` times per episode: until then
  the EHR gets no card for the rupture. Like an acknowledgment, a snooze covers its stage only.
  A snooze is not an acknowledgment: it does not stop an escalation.

docs/alerts.md ("Acknowledge and snooze") says the same for clinicians and operators.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from service.domain.alert_actions import ACKNOWLEDGE, COMPLETE_ESCALATION, ESCALATE, SNOOZE

SOURCE = "smart-view"
NOTE_MAX = 1000  # characters of a note (a sentence or two; a chart note belongs in the EHR)
ALREADY_ACKNOWLEDGED = "already-acknowledged"
DONE = {ACKNOWLEDGE: "acknowledged", SNOOZE: "snoozed"}  # the view's status after each action


class ActionRefused(Exception):
    """An action turned down, with why in words for the clinician; nothing was stored."""

    def __init__(self, status: int, title: str, detail: str):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


@dataclass(frozen=True)
class Limits:
    max_snooze_days: int
    max_snoozes: int


@dataclass(frozen=True)
class Entry:
    """One stored action, its note opened."""

    action: str
    actor: str
    source: str
    at: datetime
    note: str | None = None
    until: datetime | None = None

    @property
    def who(self) -> str:
        return actor_words(self.actor)

    def what(self, zone: ZoneInfo) -> str:
        if self.action == ACKNOWLEDGE and self.source == "cds-feedback":
            return "Acknowledged in the EHR (CDS Hooks card)"
        if self.action == SNOOZE and self.until is not None:
            return f"Snoozed until {moment_words(self.until, zone)}"
        return ACTION_WORDS.get(self.action, self.action)

    def as_dict(self) -> dict:
        return {"action": self.action, "actor": self.actor, "source": self.source,
                "at": self.at.isoformat(), "note": self.note,
                "until": self.until.isoformat() if self.until else None}


ACTION_WORDS = {ACKNOWLEDGE: "Acknowledged", SNOOZE: "Snoozed",
                ESCALATE: "Escalated to the supervisor",
                COMPLETE_ESCALATION: "Escalation task completed"}


@dataclass(frozen=True)
class EpisodeActions:
    """An open episode's actions (oldest first) as of `now`, and the practice's limits."""

    episode_id: str
    entries: tuple[Entry, ...]
    stage_since: datetime | None  # the current stage began (None: count every action)
    limits: Limits
    now: datetime

    def _this_stage(self, entry: Entry) -> bool:
        return self.stage_since is None or entry.at >= self.stage_since

    @property
    def acknowledgment(self) -> Entry | None:
        """The first acknowledgment of the current stage, if any."""
        return next((e for e in self.entries if e.action == ACKNOWLEDGE and self._this_stage(e)),
                    None)

    @property
    def snoozed_until(self) -> datetime | None:
        """The end of the snooze in force now (of this stage), if any."""
        ends = [e.until for e in self.entries if e.action == SNOOZE and e.until is not None
                and self._this_stage(e)]
        latest = max(ends, default=None)
        return latest if latest is not None and latest > self.now else None

    @property
    def snoozes_used(self) -> int:
        return sum(1 for e in self.entries if e.action == SNOOZE)

    @property
    def snoozes_left(self) -> int:
        return max(0, self.limits.max_snoozes - self.snoozes_used)

    def as_dict(self) -> dict:
        """What view.json adds to the open rupture."""
        acknowledged = self.acknowledgment
        until = self.snoozed_until
        return {"episode_id": self.episode_id,
                "acknowledged": acknowledged.as_dict() if acknowledged else None,
                "snoozed_until": until.isoformat() if until else None,
                "snoozes_left": self.snoozes_left,
                "max_snooze_days": self.limits.max_snooze_days,
                "actions": [entry.as_dict() for entry in self.entries]}


def checked_note(text: str | None) -> str | None:
    """The note to store (None when blank), or ActionRefused when it is over NOTE_MAX.
    Line breaks count as one character, as the textarea's `maxlength` counts them (a browser
    sends them as CRLF)."""
    note = (text or "").replace("\r\n", "\n").strip()
    if len(note) > NOTE_MAX:
        raise ActionRefused(400, "The note is too long",
                            f"A note holds at most {NOTE_MAX} characters; this one has "
                            f"{len(note)}. Shorten it and send the form again. Nothing was "
                            "stored.")
    return note or None


def checked_days(text: str | None, limits: Limits) -> int:
    """The snooze's length in days, or ActionRefused when it is not 1..max_snooze_days."""
    most = limits.max_snooze_days
    try:
        days = int((text or "").strip())
    except ValueError:
        days = 0
    if not 1 <= days <= most:
        raise ActionRefused(400, "Snooze for 1 to " + _days(most),
                            f"This practice allows a snooze of 1 to {_days(most)}; the form "
                            f"asked for '{(text or '')[:20]}'. Nothing was stored.")
    return days


def decide(action: str, state: EpisodeActions, days: int | None = None):
    """ALREADY_ACKNOWLEDGED, or the `until` of the action to store (None for an
    acknowledgment); ActionRefused when the practice's snooze count is used up."""
    if action == ACKNOWLEDGE:
        return ALREADY_ACKNOWLEDGED if state.acknowledgment is not None else None
    if state.snoozes_left == 0:
        raise ActionRefused(409, "No snooze left for this rupture",
                            f"This practice allows {_times(state.limits.max_snoozes)} per "
                            "rupture, and they are used. Acknowledge it, or talk it through "
                            "with the client. Nothing was stored.")
    return state.now + timedelta(days=days)


def actor_words(actor: str) -> str:
    """Who acted, in words: the EHR user's reference, or what stands for them."""
    if actor.startswith("cds-client:"):
        return "a clinician in the EHR (CDS Hooks feedback)"
    if actor.startswith("smart-launch:"):
        return f"a user of the EHR at {actor.removeprefix('smart-launch:')} (the launch named " \
               "no user)"
    if actor == "service":
        return "the service"
    return actor


def moment_words(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local.day} {local.strftime('%b %Y, %H:%M')} ({local.tzname()})"


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def _times(count: int) -> str:
    return {0: "no snooze", 1: "one snooze"}.get(count, f"{count} snoozes")
