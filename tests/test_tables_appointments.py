"""Appointment rules on the tables alone: input checked per field, no two active bookings
of a bay overlapping (also when two people book one slot at once), the status graph,
versions, check-in making exactly one linked job card, the site's time zone across a
clock change, and isolation between sites — on SQLite and PostgreSQL alike."""

# ruff: noqa: RUF001  (the en dash between two times is what people read)

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from piccolo.apps.user.tables import BaseUser

import demo
from tables.activity import Activity
from tables.appointments import (
    ACTIVE,
    EDITABLE,
    NEXT,
    NO_WORKFLOW,
    Appointment,
    Bay,
    CheckIn,
    Status,
    appointments_by_id,
    bays_of,
    change_status,
    check_in,
    create_appointment,
    day_view,
    open_appointment,
    today,
    update_appointment,
)
from tables.base import Actor, DomainError, InvalidInput, StaleVersion, write_tx
from tables.boards import Board, BoardColumn, Ticket
from tests.conftest import count_queries
from tests.factories import site_id

NAIROBI = ZoneInfo("Africa/Nairobi")
DUBLIN = ZoneInfo("Europe/Dublin")

# -- factories ------------------------------------------------------------------------------


async def actor(username: str) -> Actor:
    user = await BaseUser.select().where(BaseUser.username == username).first()
    return Actor(user["id"], f"{user['first_name']} {user['last_name']}")


async def make_bay(slug: str = "workshop", name: str | None = None) -> dict:
    """A bay of the test's own, so tests never share a schedule."""
    rows = await Bay.insert(
        Bay(site=await site_id(slug), name=name or f"Bay {uuid.uuid4().hex[:4]}", position=9)
    ).returning(*Bay.all_columns())
    return rows[0]


def form(at: dict, start: str = "2031-03-04T09:00", end: str = "2031-03-04T10:00", **kw) -> dict:
    """A booking form for a bay (`at`) as the page sends it (times in the site's time zone)."""
    return {
        "customer": "Jane Muthoni",
        "phone": "+254 712 345 678",
        "vehicle_registration": "KCA 123A",
        "make_model": "Toyota Fielder",
        "service": "Full service",
        "bay": str(at["id"]),
        "starts_at": start,
        "ends_at": end,
        "notes": "",
        **kw,
    }


async def book(bay: dict, start: str = "09:00", end: str = "10:00", day: str = "2031-03-04", **kw):
    who = kw.pop("who", None) or await actor("frank")
    return await create_appointment(
        bay["site"], form(bay, f"{day}T{start}", f"{day}T{end}", **kw), who
    )


async def fresh(appointment: dict) -> dict:
    return await Appointment.select().where(Appointment.id == appointment["id"]).first()


async def in_bay(bay: dict) -> list[tuple[datetime, datetime, str]]:
    rows = await (
        Appointment.select(Appointment.starts_at, Appointment.ends_at, Appointment.status)
        .where(Appointment.bay == bay["id"])
        .order_by(Appointment.starts_at)
    )
    return [(r["starts_at"], r["ends_at"], r["status"]) for r in rows]


def no_overlap(rows: list[tuple[datetime, datetime, str]]) -> bool:
    active = sorted((s, e) for s, e, status in rows if status in ACTIVE)
    return all(prev_end <= start for (_, prev_end), (start, _) in pairwise(active))


# -- booking ------------------------------------------------------------------------------


async def test_a_booking_is_stored_in_utc_shown_in_the_sites_time_and_recorded():
    bay = await make_bay(name="Bay 2")
    made = await book(
        bay, "09:00", "10:30", customer="  Jane   Muthoni ", vehicle_registration="kca 123a"
    )
    assert made["starts_at"] == datetime(2031, 3, 4, 6, 0, tzinfo=UTC)  # Nairobi is +3
    assert made["ends_at"] == datetime(2031, 3, 4, 7, 30, tzinfo=UTC)
    assert (made["customer"], made["vehicle_registration"]) == ("Jane Muthoni", "KCA 123A")
    assert (made["status"], made["version"], made["ticket"]) == ("scheduled", 1, None)
    assert made["created_by_name"] == made["updated_by_name"] == "Frank Mutua"
    view = await open_appointment(bay["site"], made["id"])
    assert (view.label, view.minutes, view.bay_name, view.status_word) == (
        "09:00–10:30",
        90,
        "Bay 2",
        "Scheduled",
    )
    assert view.start == datetime(2031, 3, 4, 9, 0, tzinfo=NAIROBI)
    assert view.form_values()["starts_at"] == "2031-03-04T09:00"
    assert set(view.form_values()) == set(EDITABLE)
    line = (await Activity.recent(bay["site"], 1))[0]
    assert (line["actor_name"], line["summary"]) == (
        "Frank Mutua",
        "booked Jane Muthoni (KCA 123A) in Bay 2 at 09:00 on Tue 4 Mar",
    )
    assert (line["entity_type"], line["entity_id"]) == ("appointment", made["id"])


BAD = [
    (
        "end before start",
        {"ends_at": "2031-03-04T08:00"},
        "ends_at",
        "The end must be after the start.",
    ),
    (
        "end at the start",
        {"ends_at": "2031-03-04T09:00"},
        "ends_at",
        "The end must be after the start.",
    ),
    (
        "30 hours",
        {"ends_at": "2031-03-05T15:00"},
        "ends_at",
        "An appointment lasts at most 12 hours.",
    ),
    (
        "4 minutes",
        {"ends_at": "2031-03-04T09:04"},
        "ends_at",
        "An appointment lasts at least 5 minutes.",
    ),
    (
        "year 9999",  # the dashboard shows 2000-2100: a booking there would never be seen
        {"starts_at": "9999-12-31T09:00", "ends_at": "9999-12-31T10:00"},
        "starts_at",
        "Book a day from 2000 to 2100.",
    ),
    (
        "year 1999",
        {"starts_at": "1999-12-31T09:00", "ends_at": "1999-12-31T10:00"},
        "starts_at",
        "Book a day from 2000 to 2100.",
    ),
    ("unknown bay", {"bay": "99999999"}, "bay", "Choose one of this site's bays."),
    ("huge bay id", {"bay": "9" * 40}, "bay", "Choose one of this site's bays."),
    ("bay as words", {"bay": "Bay 1"}, "bay", "Choose one of this site's bays."),
    ("no start", {"starts_at": ""}, "starts_at", "Give the start like 2026-12-31 09:00."),
    (
        "unreadable start",
        {"starts_at": "tomorrow 9"},
        "starts_at",
        "Give the start like 2026-12-31 09:00.",
    ),
    (
        "impossible start",
        {"starts_at": "2031-02-30T09:00"},
        "starts_at",
        "Give the start like 2026-12-31 09:00.",
    ),
    ("no end", {"ends_at": ""}, "ends_at", "Give the end like 2026-12-31 10:00."),
    ("5 kB phone", {"phone": "0" * 5000}, "phone", "A phone number has at most 30 characters."),
    (
        "letters in phone",
        {"phone": "call me"},
        "phone",
        "A phone number has only digits, spaces and + - ( ).",
    ),
    ("NUL in name", {"customer": "Jane\x00Muthoni"}, "customer", None),
    ("newline in name", {"customer": "Jane\nMuthoni"}, "customer", None),
    ("NUL in notes", {"notes": "ok\x00"}, "notes", None),
    ("no customer", {"customer": "   "}, "customer", "Give the customer's name."),
    (
        "long customer",
        {"customer": "J" * 101},
        "customer",
        "A customer's name has at most 100 characters.",
    ),
    ("no service", {"service": ""}, "service", "Say which service is booked."),
    ("long service", {"service": "s" * 201}, "service", "A service has at most 200 characters."),
    ("long registration", {"vehicle_registration": "K" * 21}, "vehicle_registration", None),
    ("long make", {"make_model": "m" * 101}, "make_model", None),
    ("long notes", {"notes": "n" * 2001}, "notes", "Notes have at most 2,000 characters."),
]


@pytest.mark.parametrize(
    ("values", "field", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
async def test_bad_input_is_refused_at_its_field_and_nothing_is_written(values, field, message):
    bay = await make_bay()
    lines, count = await Activity.count(), await Appointment.count()
    with pytest.raises(InvalidInput) as refused:
        async with write_tx():
            await create_appointment(bay["site"], form(bay, **values), await actor("frank"))
    assert list(refused.value.errors) == [field]
    if message:
        assert refused.value.errors[field] == message
    assert (await Activity.count(), await Appointment.count()) == (lines, count)
    assert (await Bay.select(Bay.version).where(Bay.id == bay["id"]).first())["version"] == 1


async def test_another_sites_bay_is_refused_like_an_unknown_one_and_all_bad_fields_at_once():
    bay, theirs = await make_bay(), await make_bay("nakuru")
    with pytest.raises(InvalidInput) as refused:
        await create_appointment(
            bay["site"],
            form(bay, bay=str(theirs["id"]), customer="", phone="x" * 5000, ends_at="2031-03-04"),
            await actor("frank"),
        )
    assert refused.value.errors == {
        "customer": "Give the customer's name.",
        "phone": "A phone number has at most 30 characters.",
        "bay": "Choose one of this site's bays.",
        "ends_at": "Give the end like 2026-12-31 10:00.",
    }
    assert await Appointment.count().where(Appointment.bay == theirs["id"]) == 0


async def test_markup_is_stored_as_typed():
    bay = await make_bay()
    made = await book(
        bay, customer="<script>alert(1)</script>", notes="<b>bold</b>\r\nline two", phone=""
    )
    assert made["customer"] == "<script>alert(1)</script>"  # the templates escape it
    assert made["notes"] == "<b>bold</b>\nline two"
    assert made["phone"] == ""


# -- bays are never double-booked -----------------------------------------------------------


async def test_an_overlap_is_refused_naming_the_other_booking_back_to_back_is_fine():
    bay = await make_bay(name="Bay 2")
    await book(bay, "09:00", "10:00")
    for start, end in [
        ("09:30", "10:30"),
        ("08:30", "09:01"),
        ("09:15", "09:45"),
        ("08:00", "11:00"),
    ]:
        with pytest.raises(DomainError) as refused:
            await book(bay, start, end, customer="Otieno Motors", vehicle_registration="KBX 442M")
        assert str(refused.value) == "Bay 2 is booked 09:00–10:00 by Jane Muthoni (KCA 123A)."
        assert refused.value.field == "starts_at"
    await book(bay, "10:00", "11:00", customer="Otieno Motors", vehicle_registration="")
    await book(bay, "08:00", "09:00", customer="Grace Achieng")
    with pytest.raises(DomainError, match=r"^Bay 2 is booked 10:00–11:00 by Otieno Motors\.$"):
        await book(bay, "10:30", "10:45")
    other_bay = await make_bay()
    await book(other_bay, "09:00", "10:00")  # the same time in another bay
    assert len(await in_bay(bay)) == 3


async def test_cancelled_and_no_show_bookings_free_their_slot():
    bay = await make_bay()
    frank = await actor("frank")
    first = await book(bay, "09:00", "10:00")
    await change_status(bay["site"], first["id"], 1, "cancelled", frank)
    second = await book(bay, "09:00", "10:00", customer="Otieno Motors")
    await change_status(bay["site"], second["id"], 1, Status.no_show, frank)
    third = await book(bay, "09:30", "10:30", customer="Grace Achieng")
    assert [s for *_, s in await in_bay(bay)] == ["cancelled", "no_show", "scheduled"]
    assert third["status"] == "scheduled"


async def test_two_people_booking_one_slot_at_once_exactly_one_wins():
    bay = await make_bay(name="Bay 3")
    people = {"Jane Muthoni": await actor("frank"), "Otieno Motors": await actor("admin")}

    async def attempt(customer: str) -> dict | DomainError:
        try:
            async with write_tx():
                return await book(bay, "09:00", "10:00", customer=customer, who=people[customer])
        except DomainError as refused:
            return refused

    outcomes = await asyncio.gather(*(attempt(c) for c in people))
    (won,) = [o for o in outcomes if isinstance(o, dict)]
    (lost,) = [o for o in outcomes if isinstance(o, DomainError)]
    assert str(lost) == f"Bay 3 is booked 09:00–10:00 by {won['customer']} (KCA 123A)."
    assert len(await in_bay(bay)) == 1


async def test_many_overlapping_bookings_at_once_leave_no_overlap():
    bay = await make_bay()
    slots = [
        (f"{9 + i // 2:02d}:{30 * (i % 2):02d}", f"{10 + i // 2:02d}:{30 * (i % 2):02d}")
        for i in range(8)
    ]

    async def attempt(i: int, start: str, end: str) -> bool:
        try:
            await book(bay, start, end, customer=f"Customer {i}")
            return True
        except DomainError:
            return False

    won = await asyncio.gather(*(attempt(i, s, e) for i, (s, e) in enumerate(slots)))
    rows = await in_bay(bay)
    assert len(rows) == sum(won) >= 3  # whatever the order, at least 3 of these fit
    assert no_overlap(rows)


# -- edits ------------------------------------------------------------------------------------


async def test_an_edit_moves_a_booking_and_checks_the_target_bay_but_not_itself():
    bay, other = await make_bay(name="Bay 1"), await make_bay(name="Bay 2")
    frank, admin = await actor("frank"), await actor("admin")
    mine = await book(bay, "09:00", "10:00")
    await book(other, "11:00", "12:00", customer="Otieno Motors", vehicle_registration="KBX 442M")
    # Longer, same bay: overlaps only itself.
    saved = await update_appointment(
        bay["site"], mine["id"], 1, form(bay, ends_at="2031-03-04T10:30"), admin
    )
    assert (saved["version"], saved["updated_by_name"]) == (2, "Ada Manager")
    with pytest.raises(
        DomainError, match=r"^Bay 2 is booked 11:00–12:00 by Otieno Motors \(KBX 442M\)\.$"
    ):
        await update_appointment(
            bay["site"], mine["id"], 2,
            form(other, "2031-03-04T10:30", "2031-03-04T11:30"), frank,
        )  # fmt: skip
    # Only the fields sent change: a drag to another bay and time.
    moved = await update_appointment(
        bay["site"], mine["id"], 2,
        {"bay": str(other["id"]), "starts_at": "2031-03-04T09:30", "ends_at": "2031-03-04T11:00"},
        frank,
    )  # fmt: skip
    assert (moved["bay"], moved["customer"], moved["version"]) == (other["id"], "Jane Muthoni", 3)
    assert await in_bay(bay) == []
    await book(bay, "09:00", "10:00", customer="Grace Achieng")  # the old slot is free
    line = (await Activity.recent(bay["site"], 2))[1]
    assert (
        line["summary"]
        == "changed the booking of Jane Muthoni (KCA 123A): Bay 2 at 09:30 on Tue 4 Mar"
    )


async def test_two_saves_from_one_version_one_wins_the_other_reads_what_changed():
    bay, other = await make_bay(name="Bay 1"), await make_bay(name="Bay 2")
    made = await book(bay, "09:00", "10:00")
    forms = {
        "Frank Mutua": form(bay, "2031-03-04T09:00", "2031-03-04T10:00", notes="Brakes squeal"),
        "Ada Manager": form(other, "2031-03-04T13:00", "2031-03-04T14:00"),
    }

    async def save(who: Actor):
        try:
            return await update_appointment(bay["site"], made["id"], 1, forms[who.name], who)
        except StaleVersion as stale:
            return stale

    outcomes = await asyncio.gather(save(await actor("frank")), save(await actor("admin")))
    (loser,) = [o for o in outcomes if isinstance(o, StaleVersion)]
    (saved,) = [o for o in outcomes if isinstance(o, dict)]
    assert saved["version"] == 2
    assert str(loser) == f"{saved['updated_by_name']} saved a newer version while you were editing."
    if saved["updated_by_name"] == "Frank Mutua":
        assert loser.changes == {
            "bay": ("Bay 2", "Bay 1"),
            "starts_at": ("2031-03-04 13:00", "2031-03-04 09:00"),
            "ends_at": ("2031-03-04 14:00", "2031-03-04 10:00"),
            "notes": ("none", "Brakes squeal"),
        }
    else:
        assert loser.changes == {
            "bay": ("Bay 1", "Bay 2"),
            "starts_at": ("2031-03-04 09:00", "2031-03-04 13:00"),
            "ends_at": ("2031-03-04 10:00", "2031-03-04 14:00"),
            "notes": ("Brakes squeal", "none"),
        }


async def test_finished_cancelled_and_no_show_bookings_cannot_be_edited():
    bay = await make_bay()
    frank = await actor("frank")
    for status, message in [
        ("cancelled", "A cancelled appointment cannot be changed."),
        ("no_show", "A no-show appointment cannot be changed."),
    ]:
        made = await book(bay, "09:00", "10:00")
        await change_status(bay["site"], made["id"], 1, status, frank)
        with pytest.raises(DomainError, match=f"^{message}$"):
            await update_appointment(bay["site"], made["id"], 2, {"notes": "Late"}, frank)
        assert (await fresh(made))["notes"] == ""


# -- the status graph -------------------------------------------------------------------------


async def put(made: dict, status: Status) -> dict:
    """Set a booking's status directly (the test's shortcut into any state)."""
    rows = await (
        Appointment.update({Appointment.status: status.value})
        .where(Appointment.id == made["id"])
        .returning(*Appointment.all_columns())
    )
    return rows[0]


PAIRS = [(a, b) for a in Status for b in Status if b is not Status.checked_in]


@pytest.mark.parametrize(("start", "to"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
async def test_status_changes_follow_the_graph_only(start, to):
    bay = await make_bay()
    made = await put(await book(bay, "09:00", "10:00"), start)
    frank = await actor("frank")
    if to in NEXT[start]:
        saved = await change_status(bay["site"], made["id"], 1, to, frank)
        assert (saved["status"], saved["version"]) == (to.value, 2)
    else:
        with pytest.raises(DomainError) as refused:
            await change_status(bay["site"], made["id"], 1, to, frank)
        assert refused.value.field == "status"
        assert (await fresh(made))["status"] == start.value


async def test_refusals_name_the_current_status():
    bay = await make_bay()
    frank = await actor("frank")
    made = await book(bay, "09:00", "10:00")
    sid = bay["site"]
    with pytest.raises(DomainError) as refused:
        await change_status(sid, made["id"], 1, "done", frank)
    assert str(refused.value) == (
        "A scheduled appointment cannot be finished: check it in and start it first."
    )
    with pytest.raises(
        DomainError, match=r"^A scheduled appointment cannot be started: check it in first\.$"
    ):
        await change_status(sid, made["id"], 1, "in_progress", frank)
    with pytest.raises(DomainError, match=r"^There is no such status\.$"):
        await change_status(sid, made["id"], 1, "exploded", frank)
    await change_status(sid, made["id"], 1, "cancelled", frank)
    for to in ("checked_in", "no_show", "cancelled", "done"):
        with pytest.raises(DomainError, match=r"^This appointment is already cancelled\.$"):
            await change_status(sid, made["id"], 1, to, frank)  # also from the old version
    with pytest.raises(DomainError, match=r"^This appointment is already cancelled\.$"):
        await check_in(sid, made["id"], 2, frank)
    assert await Ticket.count().where(Ticket.appointment == made["id"]) == 0


async def test_a_status_change_from_a_stale_version_is_refused():
    bay = await make_bay()
    frank, admin = await actor("frank"), await actor("admin")
    made = await book(bay, "09:00", "10:00")
    await update_appointment(bay["site"], made["id"], 1, {"notes": "Bring the spare key"}, admin)
    with pytest.raises(StaleVersion) as stale:
        await change_status(bay["site"], made["id"], 1, "no_show", frank)
    assert stale.value.current["status"] == "scheduled"
    assert str(stale.value) == "Ada Manager saved a newer version while you were editing."
    saved = await change_status(bay["site"], made["id"], 2, "no_show", frank)
    assert saved["status"] == "no_show"
    line = (await Activity.recent(bay["site"], 1))[0]
    assert (
        line["summary"]
        == "marked Jane Muthoni (KCA 123A) as a no-show (" + bay["name"] + " at 09:00 on Tue 4 Mar)"
    )


# -- check-in makes the job -------------------------------------------------------------------


async def workflow_estimates(slug: str = "workshop") -> tuple[int, int]:
    """The demo workflow board's id and its Estimates column's id."""
    board = (
        await Board.select(Board.id)
        .where((Board.site == await site_id(slug)) & (Board.name == "Workflow"))
        .first()
    )
    column = (
        await BoardColumn.select(BoardColumn.id)
        .where((BoardColumn.board == board["id"]) & (BoardColumn.key == "estimates"))
        .first()
    )
    return board["id"], column["id"]


async def test_checking_in_makes_one_linked_card_in_estimates():
    bay = await make_bay()
    frank = await actor("frank")
    made = await book(bay, "09:00", "10:30", service="Brake pads and discs")
    board_id, estimates = await workflow_estimates()
    done = await check_in(bay["site"], made["id"], 1, frank)
    assert isinstance(done, CheckIn) and done.created and done.board_id == board_id
    assert (done.appointment["status"], done.appointment["version"]) == ("checked_in", 2)
    assert done.appointment["ticket"] == done.ticket_id
    card = await Ticket.select().where(Ticket.id == done.ticket_id).first()
    assert (card["board"], card["column"], card["appointment"]) == (board_id, estimates, made["id"])
    assert (card["title"], card["service"]) == ("Brake pads and discs", "Brake pads and discs")
    assert (card["vehicle_registration"], card["customer"]) == ("KCA 123A", "Jane Muthoni")
    assert card["due_out_at"] == made["ends_at"] == datetime(2031, 3, 4, 7, 30, tzinfo=UTC)
    assert (await open_appointment(bay["site"], made["id"])).ticket == card["id"]
    # A double tap: the same version again, and any other version, answer with that card.
    for version in (1, 2, 7):
        again = await check_in(bay["site"], made["id"], version, frank)
        assert (again.created, again.ticket_id, again.board_id) == (False, card["id"], board_id)
    started = await change_status(bay["site"], made["id"], 2, "in_progress", frank)
    assert (await check_in(bay["site"], made["id"], 1, frank)).ticket_id == card["id"]
    assert started["ticket"] == card["id"]
    assert await Ticket.count().where(Ticket.appointment == made["id"]) == 1
    lines = [line["summary"] for line in await Activity.recent(bay["site"], 3)]
    assert f"checked in Jane Muthoni (KCA 123A) in {bay['name']} (job #{card['number']})" in lines


async def test_two_check_ins_at_once_make_one_card():
    bay = await make_bay()
    made = await book(bay, "09:00", "10:00")
    people = [await actor("frank"), await actor("admin")]

    async def tap(who: Actor) -> CheckIn | DomainError:
        try:
            async with write_tx():
                return await check_in(bay["site"], made["id"], 1, who)
        except DomainError as refused:
            return refused

    outcomes = await asyncio.gather(*(tap(who) for who in people))
    assert all(isinstance(o, CheckIn) for o in outcomes), outcomes
    assert sorted(o.created for o in outcomes) == [False, True]
    assert len({o.ticket_id for o in outcomes}) == 1
    assert await Ticket.count().where(Ticket.appointment == made["id"]) == 1
    assert (await fresh(made))["version"] == 2


async def test_change_status_to_checked_in_is_a_check_in():
    bay = await make_bay()
    made = await book(bay, "09:00", "10:00")
    saved = await change_status(bay["site"], made["id"], 1, "checked_in", await actor("frank"))
    assert saved["status"] == "checked_in" and saved["ticket"] is not None
    assert await Ticket.count().where(Ticket.appointment == made["id"]) == 1


async def test_a_site_without_a_workflow_board_cannot_check_in():
    bay = await make_bay("killarney")
    made = await book(bay, "09:00", "10:00", who=await actor("erin"))
    with pytest.raises(DomainError, match=f"^{NO_WORKFLOW}$"):
        await check_in(bay["site"], made["id"], 1, await actor("erin"))
    assert (await fresh(made))["status"] == "scheduled"
    assert (await fresh(made))["version"] == 1


# -- isolation --------------------------------------------------------------------------------


async def test_another_sites_appointments_are_no_such_thing():
    bay = await make_bay()
    made = await book(bay, "09:00", "10:00")
    nakuru, dana = await site_id("nakuru"), await actor("dana")
    no_such = pytest.raises(DomainError, match=r"^There is no such appointment\.$")
    with no_such:
        await update_appointment(nakuru, made["id"], 1, {"notes": "Mine now"}, dana)
    with no_such:
        await change_status(nakuru, made["id"], 1, "cancelled", dana)
    with no_such:
        await check_in(nakuru, made["id"], 1, dana)
    with no_such:
        await open_appointment(nakuru, made["id"])
    with no_such:
        await open_appointment(bay["site"], 2**40)
    assert await appointments_by_id(nakuru, [made["id"]]) == {}
    assert bay["id"] not in [b.id for b in await bays_of(nakuru)]
    assert await fresh(made) == made


# -- time zones and the day view --------------------------------------------------------------


async def test_the_sites_time_is_right_across_a_clock_change():
    """Ireland's clocks go forward at 01:00 on 29 March 2026: that day has 23 hours."""
    bay = await make_bay("killarney")
    erin = await actor("erin")
    sid = bay["site"]
    before = await book(bay, "09:00", "10:00", day="2026-03-28", who=erin)
    on = await book(bay, "10:00", "11:00", day="2026-03-29", who=erin, customer="Seán Murphy")
    after = await book(bay, "09:00", "10:00", day="2026-03-30", who=erin)
    late = await create_appointment(
        sid, form(bay, "2026-03-28T23:30", "2026-03-29T00:30", customer="Night owl"), erin
    )
    assert before["starts_at"] == datetime(2026, 3, 28, 9, 0, tzinfo=UTC)  # GMT
    assert after["starts_at"] == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # IST, UTC+1
    shown = await appointments_by_id(sid, [before["id"], after["id"]])
    assert [v.label for v in shown.values()] == ["09:00–10:00", "09:00–10:00"]
    assert [v.start.hour for v in shown.values()] == [9, 9]

    day = await day_view(sid, date(2026, 3, 29))
    assert day.day_end - day.day_start == timedelta(hours=23)
    assert (day.day_start, day.day_end) == (
        datetime(2026, 3, 29, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 23, 0, tzinfo=UTC),
    )
    ours = [a for a in day.appointments if a.bay_id == bay["id"]]
    assert [a.id for a in ours] == [late["id"], on["id"]]  # the one over midnight, then 10:00
    assert [a.label for a in ours] == ["23:30–00:30", "10:00–11:00"]
    assert day.tz == DUBLIN

    autumn = await day_view(sid, date(2026, 10, 25))  # clocks go back: 25 hours
    assert autumn.day_end - autumn.day_start == timedelta(hours=25)
    # A booking across the repeated hour lasts what the clocks say, in real minutes.
    repeated = await create_appointment(
        sid, form(bay, "2026-10-25T00:30", "2026-10-25T02:30"), erin
    )
    assert (await open_appointment(sid, repeated["id"])).minutes == 180


async def test_the_day_view_orders_counts_and_reads_in_a_fixed_number_of_queries():
    first, second = await make_bay("killarney", "Z first"), await make_bay("killarney", "Z second")
    await Bay.update({Bay.position: 20}).where(Bay.id == first["id"])
    await Bay.update({Bay.position: 21}).where(Bay.id == second["id"])
    erin = await actor("erin")
    sid = first["site"]
    day = "2032-06-01"
    a = await book(second, "09:00", "10:00", day=day, who=erin)
    b = await book(first, "09:00", "10:00", day=day, who=erin)
    c = await book(first, "08:00", "09:00", day=day, who=erin)
    await change_status(sid, c["id"], 1, "cancelled", erin)
    with count_queries() as seen:
        view = await day_view(sid, date(2032, 6, 1))
    assert len(seen) == 3
    assert [x.id for x in view.appointments] == [c["id"], b["id"], a["id"]]
    assert view.counts == {
        "scheduled": 2, "checked_in": 0, "in_progress": 0, "done": 0, "cancelled": 1, "no_show": 0,
    }  # fmt: skip
    assert [x.id for x in view.in_bay(first["id"])] == [c["id"], b["id"]]
    assert [bv.name for bv in view.bays][-2:] == ["Z first", "Z second"]
    for i in range(20):
        await book(first, f"{10 + i // 2:02d}:{30 * (i % 2):02d}",
                   f"{10 + i // 2:02d}:{30 * (i % 2) + 29:02d}", day=day, who=erin)  # fmt: skip
    with count_queries() as seen:
        bigger = await day_view(sid, date(2032, 6, 1))
        found = await appointments_by_id(sid, [x.id for x in bigger.appointments])
    assert len(bigger.appointments) == 23 and len(found) == 23
    assert len(seen) == 3 + 1
    assert await day_view(sid, date(2032, 6, 2)) is not None


def test_today_is_the_sites_date():
    assert today(NAIROBI) == datetime.now(NAIROBI).date()


# -- the demo ---------------------------------------------------------------------------------


async def test_the_demo_workshop_has_bays_and_a_day_in_every_status():
    workshop = await site_id("workshop")
    bays = await bays_of(workshop)
    assert [b.name for b in bays][:3] == ["Bay 1", "Bay 2", "Bay 3"]
    demo_bays = [b.id for b in bays[:3]]
    jane = await (
        Appointment.select(Appointment.starts_at)
        .where((Appointment.bay.is_in(demo_bays)) & (Appointment.customer == "Jane Muthoni"))
        .order_by(Appointment.starts_at)
        .first()
    )
    loaded = jane["starts_at"].astimezone(NAIROBI).date()  # the day the demo was loaded
    assert loaded in (today(NAIROBI), today(NAIROBI) - timedelta(days=1))
    day = await day_view(workshop, loaded)
    booked = {(b[4], b[5]) for b in demo.BOOKINGS}  # other tests may book these bays too
    ours = [
        a
        for a in day.appointments
        if a.bay_id in demo_bays and (a.customer, a.vehicle_registration) in booked
    ]
    assert len(ours) >= 12
    assert {a.status for a in ours} == {s.value for s in Status}
    assert all(8 <= a.start.hour and a.end.hour <= 17 for a in ours)
    tomorrow = await day_view(workshop, loaded + timedelta(days=1))
    assert len([a for a in tomorrow.appointments if a.bay_id in demo_bays]) >= 3
    rows = [a for a in ours if a.status in ("checked_in", "in_progress", "done")]
    board_id, estimates = await workflow_estimates()
    cards = {
        c["id"]: c for c in await Ticket.select().where(Ticket.id.is_in([a.ticket for a in rows]))
    }
    assert len(cards) == len(rows)
    for a in rows:
        assert cards[a.ticket]["appointment"] == a.id and cards[a.ticket]["board"] == board_id
    checked_in = [cards[a.ticket] for a in rows if a.status == "checked_in"]
    assert checked_in and all(c["column"] == estimates for c in checked_in)
    for bay_id in demo_bays:
        assert no_overlap(await in_bay({"id": bay_id}))


async def test_loading_the_demo_again_adds_no_appointments():
    before = (await Bay.count(), await Appointment.count(), await Ticket.count())
    await demo.load()
    assert (await Bay.count(), await Appointment.count(), await Ticket.count()) == before
