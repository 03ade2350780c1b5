"""A client's history through the real pipeline: signed session events a week apart, surveys
sent, answered (or left unanswered, so the next session closes them as not returned), scored,
assessed and written back."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from service.demo import session_completed, signed_event
from support import DEMO_SECRET

GOOD = {"bond": 10, "goals": 9, "approach": 9, "overall": 10}  # total 38
FINE = {"bond": 9, "goals": 9, "approach": 10, "overall": 9}  # total 37
DIP = {"bond": 4, "goals": 6, "approach": 5, "overall": 4, "tension": True, "tension_intensity": 3}
SLIP = {"bond": 6, "goals": 8, "approach": 6, "overall": 6, "tension": True, "tension_intensity": 4}
# steady, a rupture, a survey not returned, repair, steady, and a new rupture still open:
# what the screenshots show
STORY = [GOOD, FINE, GOOD, FINE, GOOD, DIP, None, FINE, GOOD, GOOD, SLIP]
# a rupture nobody answers after: it goes unresolved, then the client comes back
SILENT = [GOOD, GOOD, GOOD, DIP, None, None, None, None, FINE]


def seed_history(client, run_due, channels, patient_id: str, answers: list[dict | None], *,
                 practice_id: str = "northside", secret: str = DEMO_SECRET,
                 first_session: datetime | None = None, prefix: str = "enc",
                 channel: str = "sms") -> None:
    """Sessions one week apart ending last week; None leaves that survey unanswered."""
    first = first_session or (datetime.now(timezone.utc) - timedelta(weeks=len(answers)))
    for number, answer in enumerate(answers, start=1):
        event = session_completed(f"{prefix}-{patient_id}-{number}", patient_id,
                                  phone="+15551234567" if channel == "sms" else None)
        ended = first + timedelta(weeks=number - 1)
        event["data"]["ended_at"] = ended.strftime("%Y-%m-%dT%H:%M:%SZ")
        body, headers = signed_event(secret, event, when=datetime.now(timezone.utc))
        sent = client.post(f"/webhooks/{practice_id}/events", data=body, headers=headers)
        assert sent.status_code == 202, sent.get_data(as_text=True)
        run_due()
        if answer is None:
            continue
        token = channels[channel].sent[-1].link.rsplit("/s/", 1)[1]
        answered = client.post(f"/api/v1/surveys/{token}/response", json={"answers": answer})
        assert answered.status_code == 201, answered.get_data(as_text=True)
        run_due()
