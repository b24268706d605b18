"""Hostile values in every field of every appointments form (plain and htmx), and in the
day of the page and its poll: never a 500, a refusal writes nothing, markup stays text."""

from __future__ import annotations

import pytest

from tables.appointments import EDITABLE, Appointment
from tests.conftest import soup
from tests.test_appointments import FAR, PAGE, a_bay, book, booking, day_page, htmx
from tests.test_boards_hostile import HOSTILE


async def state_of(bay: dict) -> tuple:
    rows = await Appointment.select(
        Appointment.id, Appointment.customer, Appointment.status, Appointment.version,
        Appointment.starts_at, Appointment.ends_at, Appointment.bay,
    ).where(Appointment.bay == bay["id"]).order_by(Appointment.id)  # fmt: skip
    return tuple(tuple(r.values()) for r in rows)


@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v)[:24] for v in HOSTILE])
async def test_no_appointments_form_answers_a_hostile_value_with_a_500(as_user, value):
    frank = await as_user("frank")
    bay = await a_bay()
    made = await book(frank, bay, start="08:00", end="08:30")
    one = f"{PAGE}/{made['id']}"
    posts: list[tuple[str, dict]] = [
        (PAGE, booking(bay, start="10:00", end="11:00", **{name: value})) for name in EDITABLE
    ]
    posts += [
        (f"{one}/status", {"to": value, "version": made["version"]}),
        (f"{one}/status", {"to": "cancelled", "version": value}),
        (f"{one}/check-in", {"version": value}),
    ]
    for url, form in posts:
        for headers in (None, htmx(frank)):
            before = await state_of(bay)
            answer = await frank.post(url, form, headers=headers)
            assert answer.status_code < 500, (url, list(form), answer.status_code)
            if answer.status_code >= 400:
                assert await state_of(bay) == before, (url, list(form))
            assert "<script>alert(1)</script>" not in answer.text
            if answer.status_code == 303 and url == PAGE:  # accepted: out of the next one's way
                await Appointment.delete().where(
                    (Appointment.bay == bay["id"]) & (Appointment.id != made["id"])
                )
    # The editor, from the version it shows.
    opened = await frank.post(f"{one}/edit/open")
    editor = await frank.get(opened.headers["location"])
    hidden = {
        i["name"]: i.get("value", "")
        for i in soup(editor).select("#editor form input[type=hidden]")
    }
    for name in EDITABLE:
        before = await state_of(bay)
        form = {**hidden, **booking(bay, start="08:00", end="08:30"), name: value}
        answer = await frank.post(f"{one}/edit", form)
        assert answer.status_code < 500, (name, answer.status_code)
        if answer.status_code >= 400:
            assert await state_of(bay) == before, name
        else:
            fresh = await Appointment.select().where(Appointment.id == made["id"]).first()
            hidden["version"] = str(fresh["version"])
            reopened = await frank.post(f"{one}/edit/open")
            assert reopened.status_code == 303
            page = await frank.get(reopened.headers["location"])
            hidden = {
                i["name"]: i.get("value", "")
                for i in soup(page).select("#editor form input[type=hidden]")
            }
    # The day of the page, its poll and its wall.
    for path in (PAGE, f"{PAGE}/live/poll", f"{PAGE}/wall"):
        shown = await frank.get(path, params={"day": value, "cursor": value})
        assert shown.status_code in (200, 204), (path, shown.status_code)
    shown = await frank.get(day_page(FAR))
    assert shown.status_code == 200 and "<script>alert(1)</script>" not in shown.text
