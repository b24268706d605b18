"""What a form or a JSON body sends, read as values to store: every area's tables share
these, so that "an id", "a date" and "text somebody could type" mean one thing everywhere.

Each reader answers None (or False) for anything it cannot take; the caller says which
field was wrong, in its own words.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

# PostgreSQL's `integer`, which every id and count column is: a bigger number can name no
# row, and asyncpg would refuse to send it (a 500) rather than find nothing.
INT_MAX = 2**31 - 1
# ASCII digits only: str.isdigit() also takes "²" and "١٢", which int() refuses or reads.
ROW_ID = re.compile(r"[0-9]{1,10}")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?")
UNTYPEABLE = "Use letters, digits and punctuation: this has characters nobody can type."


def typeable(text: str, multiline: bool = False) -> bool:
    """No NUL bytes or other control characters (newlines and tabs where text has lines)."""
    return not any(
        unicodedata.category(ch) in ("Cc", "Cs") and not (multiline and ch in "\n\t") for ch in text
    )


def row_id(value: Any) -> int | None:
    """A row id as a form (text) or a JSON body (a number) sends it, or None when it
    cannot name a row."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= INT_MAX else None
    text = value.strip() if isinstance(value, str) else ""
    number = int(text) if ROW_ID.fullmatch(text) else 0
    return number if 0 < number <= INT_MAX else None


def parse_date(text: str) -> date | None:
    """An ISO date (2026-12-31) and nothing looser; None when it is not one."""
    if not DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_moment(text: str, tz: ZoneInfo) -> datetime | None:
    """A date and time as a datetime-local field sends it (2026-12-31T14:30), read in the
    site's time zone; None when it is not one (or when it is the last hours of year 9999
    west of Greenwich, which in UTC would be in year 10000)."""
    if not DATETIME.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
