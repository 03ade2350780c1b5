"""What a row of `alert_actions` says was done about an alert (CONTRACT §9): the one
vocabulary of the SMART view, the CDS feedback, escalation and the governance report."""

from __future__ import annotations

ACKNOWLEDGE, SNOOZE = "acknowledge", "snooze"  # by a clinician
ESCALATE, COMPLETE_ESCALATION = "escalate", "complete-escalation"  # by the service
