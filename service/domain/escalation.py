"""Escalation (CONTRACT §9.1): an `unresolved` rupture that nobody acknowledged in time becomes
a FHIR Task to the practice's supervisor; acknowledgment or repair completes that Task.

    assessment says unresolved ──▶ escalation due at (first unresolved + escalate_after_hours)
                                        │
              due: episode open, not acknowledged since it became unresolved, no Task yet
                                        ▼
                                 Task requested ──acknowledge | repair──▶ Task completed

Pure decisions on values; the handlers (`service/handlers/escalation.py`) load the facts, ask
here, and do what the answer says. An acknowledgment counts only when it was made at or after
the moment the episode became unresolved: an acknowledged rupture that turns unresolved is news
(the CDS card turns critical again), so it needs a new look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# Who records escalation's actions (service.domain.alert_actions) in alert_actions.
ACTOR, SOURCE = "service", "escalation"
TASK_TEXT = "Review therapeutic alliance rupture"
# Kinds of Task written for an episode: the alert itself (alerts.write `task`) and the
# escalation to the supervisor. Each has its own identifier, so both can exist.
ALERT_TASK, ESCALATION_TASK = "alert", "escalation"
REQUESTED = "requested"  # an escalation or alert Task still open (then "completed")


def escalation_due(unresolved_since: datetime, after_hours: float) -> datetime:
    """When an episode unresolved since `unresolved_since` is escalated (fractional hours)."""
    return unresolved_since + timedelta(hours=after_hours)


@dataclass(frozen=True)
class EscalationFacts:
    """What the due job knows of one episode when it runs."""

    episode_open: bool
    acknowledged: bool  # an `acknowledge` since the episode became unresolved
    escalates: bool  # the practice (still) names alerts.escalate_to
    task_written: bool  # an escalation Task is already recorded for the episode


def escalation_decision(facts: EscalationFacts) -> str | None:
    """None: write the Task now; otherwise, in plain words, why not."""
    if facts.task_written:
        return "already escalated"
    if not facts.episode_open:
        return "the rupture was repaired in time"
    if facts.acknowledged:
        return "a clinician acknowledged it in time"
    if not facts.escalates:
        return "the practice no longer escalates"
    return None


def completion_due(task_status: str, episode_open: bool, acknowledged: bool) -> bool:
    """Whether a requested escalation Task is to be completed now."""
    return task_status == REQUESTED and (not episode_open or acknowledged)
