"""When to send: send delay and the practice's quiet hours (no messages at night)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.practices import QuietHours


def send_time(now: datetime, delay_minutes: float, timezone: str,
              quiet_hours: QuietHours | None) -> datetime:
    """The earliest moment after the delay that is outside the quiet hours, in UTC."""
    due = now + timedelta(minutes=delay_minutes)
    if not quiet_hours:
        return due
    zone = ZoneInfo(timezone)
    local = due.astimezone(zone)
    start, end = _clock(quiet_hours.start), _clock(quiet_hours.end)
    if not _is_quiet(local.time(), start, end):
        return due
    morning = datetime.combine(local.date(), end, tzinfo=zone)
    if morning <= local:
        morning = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
    return morning.astimezone(due.tzinfo)


def _is_quiet(moment: time, start: time, end: time) -> bool:
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end  # the window crosses midnight, e.g. 21:00–08:00


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))
