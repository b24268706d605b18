"""The appointments dashboard over HTTP (SPEC §5.2; seed 001): today's list and the bays'
schedule, booking, the status buttons, check-in onto the workflow board, editing under a
lock, other days, the poll with the page's day, bad input and isolation."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from routes.appointments import APPOINTMENT, APPOINTMENTS
from routes.live import Change, Render
from tables.appointments import Appointment, Bay, bays_of, today
from tables.boards import Board, Ticket
from tables.people import SiteRef
from tests.conftest import events_of, soup, texts
from tests.factories import site_id

PAGE = "/s/workshop/appointments"
FAR = date(2031, 3, 4)  # a day of the tests' own: the demo books today and tomorrow


def htmx(client) -> dict[str, str]:
    return {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": client.csrftoken}


async def workshop() -> SiteRef:
    site = await SiteRef.load(await site_id("workshop"))
    assert site is not None
    return site


async def a_bay(name: str | None = None) -> dict:
    """A bay of the test's own at the workshop (so tests never share a slot)."""
    site = await workshop()
    position = len(await bays_of(site.id)) + 1
    name = name or f"Test bay {position}"
    bay = Bay({Bay.site: site.id, Bay.name: name, Bay.position: position})
    await bay.save()
    return {"id": bay.id, "name": name}


def booking(at: dict, day: date = FAR, start: str = "09:00", end: str = "10:00", **kw) -> dict:
    return {
        "customer": "Jane Muthoni",
        "phone": "+254 700 000 000",
        "vehicle_registration": "KCA 123A",
        "make_model": "Toyota Probox",
        "service": "Full service",
        "bay": str(at["id"]),
        "starts_at": f"{day.isoformat()}T{start}",
        "ends_at": f"{day.isoformat()}T{end}",
        "notes": "",
        **kw,
    }


async def book(client, bay: dict, **kw) -> dict:
    made = await client.post(PAGE, booking(bay, **kw))
    assert made.status_code == 303, made.text
    appointment_id = int(made.headers["location"].rsplit("#appointment-", 1)[1])
    return await Appointment.select().where(Appointment.id == appointment_id).first()


async def fresh(appointment: dict) -> dict:
    return await Appointment.select().where(Appointment.id == appointment["id"]).first()


def partials(html: str) -> list[str]:
    """The regions an answer or event redraws or adds to (its <hx-partial>s' and
    <hx-upsert>s' targets)."""
    return re.findall(r'<hx-(?:partial|upsert) hx-target="#([^"]+)"', html)


async def open_editor(client, appointment: dict) -> dict[str, str]:
    """Take the booking's editor; its form's hidden fields (version, lock token, CSRF)."""
    opened = await client.post(f"{PAGE}/{appointment['id']}/edit/open")
    editor = await client.get(opened.headers["location"])
    return {
        i["name"]: i.get("value", "")
        for i in soup(editor).select("#editor form input[type=hidden]")
    }


def day_page(day: date) -> str:
    return f"{PAGE}?day={day.isoformat()}"


# -- the dashboard ---------------------------------------------------------------------------


async def test_today_shows_the_demo_bookings_in_the_list_and_the_grid_with_counts(as_user):
    frank = await as_user("frank")
    page = await frank.get(PAGE)
    assert page.status_code == 200
    day = today((await workshop()).tz)
    region = soup(page).select_one(f"#day-{day.isoformat()}")
    assert region is not None
    bookings = region.select(".booking")
    assert len(bookings) >= 12
    assert {b["class"][1] for b in bookings} >= {
        "booking--scheduled", "booking--checked_in", "booking--in_progress",
        "booking--done", "booking--cancelled", "booking--no_show",
    }  # fmt: skip
    assert re.match(rf"{len(bookings)} bookings · ", texts(page, ".day__counts")[0])
    # The grid: a column per bay, a block per booking still on (not cancelled / no-show).
    assert [b.get_text() for b in region.select(".schedule__bay")][:3] == [
        "Bay 1",
        "Bay 2",
        "Bay 3",
    ]
    on = [b for b in bookings if not {"booking--cancelled", "booking--no_show"} & set(b["class"])]
    assert len(region.select(".schedule .slot")) == len(on)
    assert region.select_one(".schedule[data-today] .schedule__now") is not None


async def test_other_days_by_links_and_by_the_picker_and_a_bad_day_is_today(as_user):
    frank = await as_user("frank")
    page = await frank.get(day_page(FAR))
    assert soup(page).select_one(f"#day-{FAR.isoformat()}") is not None
    links = {a.get_text(strip=True): a["href"] for a in soup(page).select(".day-nav a")}
    assert links["← Previous day"].endswith(f"?day={(FAR - timedelta(days=1)).isoformat()}")
    assert links["Next day →"].endswith(f"?day={(FAR + timedelta(days=1)).isoformat()}")
    assert "Today" in links
    picker = soup(page).select_one("form.day-nav__pick")
    assert (
        picker["method"] == "get" and picker.select_one("input[name=day]")["value"] == "2031-03-04"
    )
    for bad in ("tomorrowish", "2031-02-30", "0001-01-01", "9" * 5000, "\x00"):
        shown = await frank.get(PAGE, params={"day": bad})
        assert shown.status_code == 200, bad
        assert "here is today" in texts(shown, ".alert")[0]
        today_id = f"#day-{today((await workshop()).tz).isoformat()}"
        assert soup(shown).select_one(today_id) is not None


# -- booking --------------------------------------------------------------------------------


async def test_booking_by_plain_form_lands_on_its_day_with_a_message(as_user):
    frank = await as_user("frank")
    bay = await a_bay()
    made = await frank.post(PAGE, booking(bay))
    assert made.status_code == 303
    assert made.headers["location"].startswith(f"{PAGE}?day=2031-03-04#appointment-")
    page = await frank.get(made.headers["location"])
    assert texts(page, ".messages li, .flash")[:1] or "Booked Jane Muthoni" in page.text
    row = soup(page).select_one(f"#{made.headers['location'].rsplit('#', 1)[1]}")
    assert "09:00" in row.get_text() and bay["name"] in row.get_text()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"ends_at": "2031-03-04T08:00"}, "ends_at", "after the start"),
        ({"ends_at": "2031-03-05T15:00"}, "ends_at", "at most 12 hours"),
        ({"bay": "999999"}, "bay", "this site's bays"),
        ({"phone": "1" * 5000}, "phone", ""),
        ({"starts_at": "tomorrowish"}, "starts_at", ""),
        ({"customer": ""}, "customer", ""),
        ({"customer": "a\x00b"}, "customer", ""),
    ],
)
async def test_bad_bookings_are_refused_at_the_field_and_nothing_is_written(
    as_user, change, field, message
):
    frank = await as_user("frank")
    bay = await a_bay()
    before = await Appointment.count()
    refused = await frank.post(PAGE, booking(bay, **change))
    assert refused.status_code == 422
    error = texts(refused, f"#f-{field}-error")
    assert error and message in error[0], (error, refused.text[:500])
    kept = soup(refused).select_one("#new-appointment-form input[name=service]")["value"]
    assert kept == "Full service"  # what was typed stays
    assert await Appointment.count() == before


async def test_another_sites_bay_is_refused_like_an_unknown_one(as_user):
    admin = await as_user("admin")
    nairobi_bay = Bay({Bay.site: await site_id("nairobi"), Bay.name: "Not ours", Bay.position: 1})
    await nairobi_bay.save()
    refused = await admin.post(PAGE, booking({"id": nairobi_bay.id}))
    assert refused.status_code == 422
    assert "this site's bays" in texts(refused, "#f-bay-error")[0]


async def test_markup_in_names_is_shown_as_text(as_user):
    frank = await as_user("frank")
    bay = await a_bay()
    made = await book(frank, bay, customer="<script>alert(1)</script>", start="11:00", end="12:00")
    page = await frank.get(day_page(FAR))
    assert "<script>alert(1)</script>" not in page.text
    assert (
        "<script>alert(1)</script>"
        in soup(page).select_one(f"#appointment-{made['id']}").get_text()
    )


async def test_an_overlap_is_refused_naming_the_booking_it_clashes_with(as_user):
    frank = await as_user("frank")
    bay = await a_bay()
    await book(frank, bay)
    refused = await frank.post(PAGE, booking(bay, customer="Other", start="09:30", end="10:30"))
    assert refused.status_code == 422
    said = texts(refused, "#f-starts_at-error")[0]
    assert "Jane Muthoni" in said and "09:00" in said, said


async def test_two_people_booking_one_slot_at_once_exactly_one_wins(as_user):
    frank, admin = await as_user("frank"), await as_user("admin")
    bay = await a_bay()
    answers = await asyncio.gather(
        frank.post(PAGE, booking(bay, customer="Frank's customer")),
        admin.post(PAGE, booking(bay, customer="Ada's customer", start="09:30", end="10:30")),
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [303, 422], codes
    loser = next(a for a in answers if a.status_code == 422)
    won = await Appointment.select().where(Appointment.bay == bay["id"])
    assert len(won) == 1
    assert won[0]["customer"] in texts(loser, "#f-starts_at-error")[0]


# -- the status buttons and check-in ---------------------------------------------------------


async def test_the_buttons_walk_the_status_graph_and_a_stale_one_is_409(as_user):
    frank, admin = await as_user("frank"), await as_user("admin")
    bay = await a_bay()
    made = await book(frank, bay)
    url = f"{PAGE}/{made['id']}"
    row = soup(await frank.get(day_page(FAR))).select_one(f"#appointment-{made['id']}")
    buttons = [b.get_text(" ", strip=True) for b in row.select("button")]
    assert buttons[0].startswith("Check in") and any(
        b.startswith("Cancel the booking") for b in buttons
    )
    # Finish before check-in: not a button, and refused if posted anyway.
    refused = await frank.post(f"{url}/status", {"to": "done", "version": made["version"]})
    assert refused.status_code == 422
    checked = await frank.post(f"{url}/check-in", {"version": made["version"]}, headers=htmx(frank))
    assert checked.status_code == 200
    assert "the job is on the workflow board" in checked.text
    # Ada's page still showed the version before the check-in: her cancel is refused.
    stale = await admin.post(f"{url}/status", {"to": "cancelled", "version": made["version"]})
    assert stale.status_code == 409
    assert "Not changed" in stale.text
    now = await fresh(made)
    started = await frank.post(f"{url}/status", {"to": "in_progress", "version": now["version"]})
    assert started.status_code == 303
    assert (await fresh(made))["status"] == "in_progress"


async def test_check_in_puts_one_linked_job_on_the_workflow_board(as_user):
    frank = await as_user("frank")
    bay = await a_bay()
    made = await book(frank, bay, start="13:00", end="15:30")
    url = f"{PAGE}/{made['id']}"
    assert (await frank.post(f"{url}/check-in", {"version": made["version"]})).status_code == 303
    again = await frank.post(f"{url}/check-in", {"version": made["version"]})
    assert again.status_code in (303, 409, 422)
    cards = await Ticket.select().where(Ticket.appointment == made["id"])
    assert len(cards) == 1
    card = cards[0]
    board = await Board.select().where(Board.id == card["board"]).first()
    assert board["kind"] == "workflow"
    assert (card["vehicle_registration"], card["customer"]) == ("KCA 123A", "Jane Muthoni")
    assert (await fresh(made))["ticket"] == card["id"]
    # Linked both ways: the booking links to its job, the job to its booking.
    job = await frank.get(f"{url}/job")
    assert job.status_code == 303 and job.headers["location"].endswith(f"/tickets/{card['id']}")
    back = await frank.get(url)
    assert back.headers["location"].endswith(f"?day=2031-03-04#appointment-{made['id']}")
    board_page = await frank.get(job.headers["location"])
    link = soup(board_page).select_one(f"#ticket-{card['id']} .ticket__booking a")
    assert link["href"] == url


async def test_a_check_in_is_published_on_the_board_and_on_the_dashboard(app, as_user):
    frank = await as_user("frank")
    bay = await a_bay()
    made = await book(frank, bay, start="16:00", end="17:00")
    site = await workshop()
    workflow = (
        await Board.select().where((Board.site == site.id) & (Board.kind == "workflow")).first()
    )
    feed = app.state.services.broker.subscribe(
        [f"board:{site.id}:{workflow['id']}", APPOINTMENTS.topic(site, {})]
    )
    try:
        await asyncio.sleep(0.05)
        await frank.post(f"{PAGE}/{made['id']}/check-in", {"version": made["version"]})
        seen: dict[str, str] = {}
        async with asyncio.timeout(5):
            while len(seen) < 2:
                event = await anext(feed)
                if not event.ephemeral:
                    seen[event.topic.split(":")[0]] = event.html
    finally:
        feed.close()
    card = (await Ticket.select().where(Ticket.appointment == made["id"]).first())["id"]
    assert f'id="ticket-{card}"' in seen["board"]
    assert partials(seen["appointments"]) == [
        "counts-2031-03-04",
        "bookings-2031-03-04",
        "schedule-2031-03-04",
    ]
    assert "Checked in" in seen["appointments"]


# -- live: what a change redraws, and the poll of a page's own day ---------------------------


async def test_a_change_redraws_only_its_day_and_an_edit_to_another_day_both(app, as_user):
    frank = await as_user("frank")
    bay = await a_bay()
    made = await book(frank, bay)
    site, locks = await workshop(), app.state.services.locks
    html = await APPOINTMENTS.render(
        Render(site, {}, Change(items={"appointment": {made["id"]}}), locks)
    )
    # The booking's row and block and the day's counts: not the day.
    assert partials(html) == ["counts-2031-03-04", "bookings-2031-03-04", "schedule-2031-03-04"]
    assert len(html) < 8000
    # Editing it to the next day, under its lock: both days are redrawn for everyone.
    opened = await frank.post(f"{PAGE}/{made['id']}/edit/open")
    assert opened.status_code == 303
    editor = await frank.get(opened.headers["location"])
    hidden = {
        i["name"]: i.get("value", "")
        for i in soup(editor).select("#editor form input[type=hidden]")
    }
    feed = app.state.services.broker.subscribe([APPOINTMENTS.topic(site, {})])
    try:
        await asyncio.sleep(0.05)
        saved = await frank.post(
            f"{PAGE}/{made['id']}/edit",
            {**hidden, **booking(bay, day=FAR + timedelta(days=1))},
        )
        assert saved.status_code == 303, saved.text
        async with asyncio.timeout(5):
            event = await anext(feed)
            while event.ephemeral or "appointment.save" not in event.kind:
                event = await anext(feed)
    finally:
        feed.close()
    # The day it left, whole; on the day it went to, its row, block and the counts.
    shown = partials(event.html)
    assert "day-2031-03-04" in shown
    assert {"counts-2031-03-05", "bookings-2031-03-05", "schedule-2031-03-05"} <= set(shown)


async def test_the_poll_draws_the_day_its_page_shows_and_204_when_nothing_changed(as_user):
    frank = await as_user("frank")
    page = await frank.get(day_page(FAR))
    live = soup(page).select_one("#live")
    poll = live["data-poll-url"]
    assert poll.endswith("?day=2031-03-04")
    assert "day=2031-03-04" in live["hx-sse:connect"]
    cursor = soup(page).select_one("#live-cursor")["data-cursor"]
    quiet = await frank.get(poll, params={"day": "2031-03-04", "cursor": cursor})
    assert quiet.status_code in (200, 204)  # other tests may have booked meanwhile
    stale = await frank.get(poll, params={"day": "2031-03-04", "cursor": "garbage"})
    assert stale.status_code == 200
    assert partials(stale.text)[0] == "day-2031-03-04"


async def test_others_see_is_editing_and_get_423(as_user):
    frank, admin = await as_user("frank"), await as_user("admin")
    bay = await a_bay()
    made = await book(frank, bay, start="07:00", end="07:45")
    opened = await frank.post(f"{PAGE}/{made['id']}/edit/open")
    assert opened.status_code == 303
    page = await admin.get(day_page(FAR))
    badge = texts(page, f"#appointment-{made['id']} .booking__lock")
    assert badge == ["Frank Mutua is editing this booking"]
    editor = await admin.get(f"{PAGE}/{made['id']}/edit")
    hidden = {
        i["name"]: i.get("value", "")
        for i in soup(editor).select("#editor form input[type=hidden]")
    }
    refused = await admin.post(
        f"{PAGE}/{made['id']}/edit", {**hidden, **booking(bay, customer="Mine")}
    )
    assert refused.status_code == 423
    assert (await fresh(made))["customer"] == "Jane Muthoni"
    assert APPOINTMENT.prefix(await workshop())


# -- who may -----------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["alice", "oscar"])
async def test_outsiders_get_404_on_every_appointments_page_action_and_stream(as_user, username):
    one = await Appointment.select().where(Appointment.site == await site_id("workshop")).first()
    user = await as_user(username)
    url = f"{PAGE}/{one['id']}"
    for method, path in [
        ("GET", PAGE),
        ("POST", PAGE),
        ("GET", f"{PAGE}/wall"),
        ("GET", f"{PAGE}/live"),
        ("GET", f"{PAGE}/live/poll"),
        ("GET", f"{PAGE}/live/status"),
        ("POST", f"{PAGE}/live/beat"),
        ("GET", url),
        ("GET", f"{url}/job"),
        ("POST", f"{url}/status"),
        ("POST", f"{url}/check-in"),
        ("GET", f"{url}/edit"),
        ("POST", f"{url}/edit/open"),
        ("POST", f"{url}/edit"),
    ]:
        answer = await (user.get(path) if method == "GET" else user.post(path, {"to": "done"}))
        assert answer.status_code == 404, (method, path)
    assert (await fresh(one))["version"] == one["version"]


async def test_another_sites_booking_id_is_404_for_a_member(as_user):
    admin = await as_user("admin")
    bay = Bay({Bay.site: await site_id("nairobi"), Bay.name: "N1", Bay.position: 1})
    await bay.save()
    row = Appointment({
        Appointment.site: await site_id("nairobi"), Appointment.bay: bay.id,
        Appointment.customer: "Elsewhere", Appointment.service: "x",
        Appointment.starts_at: datetime(2031, 3, 4, 9, tzinfo=UTC),
        Appointment.ends_at: datetime(2031, 3, 4, 10, tzinfo=UTC),
    })  # fmt: skip
    await row.save()
    assert (await admin.get(f"{PAGE}/{row.id}")).status_code == 404
    assert (await admin.post(f"{PAGE}/{row.id}/check-in", {"version": 1})).status_code == 404


async def test_the_wall_shows_the_schedule_without_controls(as_user):
    frank = await as_user("frank")
    wall = await frank.get(f"{PAGE}/wall")
    assert wall.status_code == 200
    page = soup(wall)
    assert "wall-page" in page.body["class"]
    assert page.select_one(".schedule") is not None
    assert page.select_one("#new-appointment-form") is None


async def test_a_dublin_booking_at_nine_shows_at_nine_either_side_of_the_clock_change(as_user):
    """Europe/Dublin goes from GMT to IST on 29 March 2026: 09:00 is 09:00 UTC before and
    08:00 UTC after, and both dashboards say 09:00."""
    admin = await as_user("admin")
    killarney = await site_id("killarney")
    bay = Bay({Bay.site: killarney, Bay.name: "Yard", Bay.position: 1})
    await bay.save()
    page = "/s/killarney/appointments"
    for day in (date(2026, 3, 28), date(2026, 3, 30)):
        made = await admin.post(page, booking({"id": bay.id}, day=day))
        assert made.status_code == 303, made.text
        mine = made.headers["location"].rsplit("#appointment-", 1)[1]  # others book that day too
        shown = await admin.get(f"{page}?day={day.isoformat()}")
        assert texts(shown, f"#appointment-{mine} .booking__time") == ["09:00\N{EN DASH}10:00"]
        assert texts(shown, f"#slot-{mine} .slot__time") == ["09:00\N{EN DASH}10:00"], day
    stored = await Appointment.select(Appointment.starts_at).where(Appointment.bay == bay.id)
    assert sorted(r["starts_at"].astimezone(UTC).hour for r in stored) == [8, 9]


async def test_a_page_of_today_turns_over_at_the_sites_midnight_a_chosen_day_does_not(as_user):
    frank = await as_user("frank")
    site = await workshop()
    tomorrow = today(site.tz) + timedelta(days=1)
    for path in (PAGE, f"{PAGE}/wall"):
        rollover = soup(await frank.get(path)).select_one("#rollover")
        assert rollover["data-at"] == f"{tomorrow.isoformat()}T00:00:00+03:00"  # Nairobi
    assert soup(await frank.get(day_page(FAR))).select_one("#rollover") is None


async def test_an_edit_that_keeps_the_time_and_bay_redraws_only_that_booking(app, as_user):
    frank = await as_user("frank")
    bay = await a_bay()
    made = await book(frank, bay, start="17:00", end="18:00")
    hidden = await open_editor(frank, made)
    site = await workshop()
    feed = app.state.services.broker.subscribe([APPOINTMENTS.topic(site, {})])
    try:
        await asyncio.sleep(0.05)
        form = {**hidden, **booking(bay, start="17:00", end="18:00", notes="Bring the key")}
        assert (await frank.post(f"{PAGE}/{made['id']}/edit", form)).status_code == 303
        async with asyncio.timeout(5):
            event = await anext(feed)
            while event.ephemeral or "appointment.save" not in event.kind:
                event = await anext(feed)
    finally:
        feed.close()
    assert "day-2031-03-04" not in partials(event.html)
    assert "Bring the key" in event.html


async def test_editing_a_checked_in_booking_updates_its_job_card_for_everyone(app, as_user):
    frank = await as_user("frank")
    bay = await a_bay()
    made = await book(frank, bay, start="14:00", end="15:00")
    await frank.post(f"{PAGE}/{made['id']}/check-in", {"version": made["version"]})
    card = await Ticket.select().where(Ticket.appointment == made["id"]).first()
    hidden = await open_editor(frank, made)
    site = await workshop()
    changed = booking(
        bay, start="14:00", end="16:30", customer="Otieno Motors", service="Clutch replacement"
    )

    async def save() -> None:
        saved = await frank.post(f"{PAGE}/{made['id']}/edit", {**hidden, **changed})
        assert saved.status_code == 303, saved.text

    [event] = await events_of(app, f"board:{site.id}:{card['board']}", save)

    after = await Ticket.select().where(Ticket.id == card["id"]).first()
    assert (after["customer"], after["service"], after["title"]) == (
        "Otieno Motors",
        "Clutch replacement",
        "Clutch replacement",  # the title was the service it was made with
    )
    assert after["due_out_at"] == datetime(2031, 3, 4, 13, 30, tzinfo=UTC)  # 16:30 in Nairobi
    assert after["version"] == card["version"] + 1  # an editor open on the card hears of it
    assert f'id="ticket-{card["id"]}"' in event.html and "Otieno Motors" in event.html
