"""The practice's `retention` section and when the daily run falls due."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from service import practices
from service.handlers.retention import next_run
from support import practice_document


def test_the_defaults_are_180_days_of_contact_and_730_of_responses():
    document = practices.validate_document(practice_document())
    assert document["retention"] == {"contact_days": 180, "responses_days": 730}
    keep = practices.Practice.from_document(document).retention
    assert (keep.contact_days, keep.responses_days) == (180, 730)


@pytest.mark.parametrize("section, problem", [
    ({"contact_days": 0}, "retention.contact_days: Must be greater than or equal to 1 and less than or equal "
     "to 3653."),
    ({"contact_days": "180"}, "retention.contact_days: Not a valid integer."),
    ({"responses_days": 7}, "retention.responses_days: Must be greater than or equal to 30 and less than or "
     "equal to 3653."),
    ({"contact_days": 400, "responses_days": 365},
     "retention.responses_days: must be at least contact_days"),
    ({"keep_forever": True}, "retention.keep_forever: Unknown field."),
])
def test_a_bad_retention_section_is_refused_naming_the_field(section, problem):
    with pytest.raises(practices.InvalidPractice) as refused:
        practices.validate_document(practice_document(retention=section))
    assert problem in refused.value.problems


@pytest.mark.parametrize("now, due", [
    (datetime(2026, 11, 26, 2, 59, tzinfo=timezone.utc), datetime(2026, 11, 26, 3, 0)),
    (datetime(2026, 11, 26, 3, 0, tzinfo=timezone.utc), datetime(2026, 11, 27, 3, 0)),
    (datetime(2026, 12, 31, 23, 0, tzinfo=timezone.utc), datetime(2027, 1, 1, 3, 0)),
])
def test_the_daily_run_is_due_at_three_utc(now, due):
    assert next_run(now) == due.replace(tzinfo=timezone.utc)
