"""Dates and durations for the scheduler."""

import calendar
import datetime as dt
import re

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text):
    """Convert a string like 1h30m or 45s into a number of seconds."""
    matches = _DURATION.findall(text.strip().lower())
    if not matches or "".join(n + u for n, u in matches) != text.strip().lower():
        raise ValueError(f"bad duration: {text!r}")
    return sum(int(n) * _UNITS[u] for n, u in matches)


def humanize_seconds(seconds):
    """Describe an interval in words, for example 3 hours ago or in 2 days."""
    future = seconds < 0
    seconds = abs(int(seconds))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            label = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {label}" if future else f"{label} ago"
    return "just now"


def add_business_days(start, days):
    """Move a date forward by working days, skipping Saturdays and Sundays."""
    current = start
    while days > 0:
        current += dt.timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def last_day_of_month(year, month):
    """Find the final calendar day of a month, leap years included."""
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def week_bounds(day):
    """Get the Monday and Sunday of the week that contains a date."""
    monday = day - dt.timedelta(days=day.weekday())
    return monday, monday + dt.timedelta(days=6)


def parse_iso_timestamp(text):
    """Read an ISO 8601 timestamp, accepting a trailing Z for UTC."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return dt.datetime.fromisoformat(text)


def age_in_years(born, today):
    """Work out how old someone is on a given day from their birth date."""
    years = today.year - born.year
    if (today.month, today.day) < (born.month, born.day):
        years -= 1
    return years


def overlaps(a_start, a_end, b_start, b_end):
    """Tell whether two time ranges share any moment."""
    return a_start < b_end and b_start < a_end
