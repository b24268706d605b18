"""The readers every area's tables share (tables/values.py): whatever arrives, a value that
can be stored or None — never an exception, never an id past PostgreSQL's integer."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tables.values import INT_MAX, parse_date, parse_moment, row_id, typeable

ANYTHING = st.one_of(
    st.text(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
    st.lists(st.integers(), max_size=3),
)


@given(ANYTHING)
def test_a_row_id_is_one_to_int_max_or_none(value):
    number = row_id(value)
    assert number is None or (type(number) is int and 1 <= number <= INT_MAX)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", 42),
        (" 7 ", 7),
        (42, 42),
        (str(INT_MAX), INT_MAX),
        (str(INT_MAX + 1), None),
        (2**31, None),
        ("0", None),
        ("-3", None),
        ("²", None),  # a digit to str.isdigit(), not to int()
        ("١٢", None),  # Arabic-Indic digits: int() would read them
        ("4\x002", None),
        ("1e3", None),
        (True, None),  # a JSON true is no id
        (3.0, None),
        ("", None),
        (None, None),
    ],
)
def test_row_ids_as_forms_and_json_send_them(value, expected):
    assert row_id(value) == expected


@given(st.text())
def test_dates_and_moments_never_raise(text):
    day = parse_date(text)
    moment = parse_moment(text, ZoneInfo("Africa/Nairobi"))
    assert day is None or isinstance(day, date)
    assert moment is None or moment.tzinfo is UTC


def test_a_moment_is_read_in_the_sites_time_zone():
    nairobi = ZoneInfo("Africa/Nairobi")  # UTC+3
    assert parse_moment("2026-12-31T14:30", nairobi) == datetime(2026, 12, 31, 11, 30, tzinfo=UTC)
    assert parse_moment("2026-02-30T10:00", nairobi) is None
    # West of Greenwich the year's last hours would be in year 10000 in UTC: unreadable.
    assert parse_moment("9999-12-31T23:30", ZoneInfo("America/Chicago")) is None
    assert parse_date("2026-02-30") is None and parse_date("2026-1-5") is None


def test_typeable_text_has_no_control_characters():
    assert typeable("Bay 3 \u2018open\u2019 \u2014 <b>ok</b>")
    assert not typeable("a\x00b") and not typeable("a\x85b")  # NUL, a C1 control
    assert not typeable("two\nlines") and typeable("two\nlines", multiline=True)
