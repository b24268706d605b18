"""The `id` path convertor: `/drafts/{draft:id}` matches only a row id that can exist.

Every id column is PostgreSQL's `integer`, so an id is 1..2,147,483,647 (`INT_MAX`). A
bigger number names no row, and asyncpg refuses to send it at all (a 500 rather than a
404), so such paths do not match: they are a 404 before any handler runs. Leading zeros do
not match either (one URL per row).

Importing this module registers the convertor; do it before any route using `:id` is built.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

from routes.forms import INT_MAX

# 1..999,999,999, then the ten-digit numbers up to 2,147,483,647 digit by digit.
ID_REGEX = (
    "(?:[1-9][0-9]{0,8}"
    "|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
    "|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]"
    "|214748364[0-7])"
)
assert INT_MAX == 2_147_483_647  # ID_REGEX spells this bound out


class IdConvertor(Convertor[int]):
    regex = ID_REGEX

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        value = int(value)
        assert 1 <= value <= INT_MAX, f"{value} cannot be a row id"
        return str(value)


register_url_convertor("id", IdConvertor())
