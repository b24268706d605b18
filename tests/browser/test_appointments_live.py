"""The workshop's appointments dashboard in real browsers (seed 001, issue "Today's
appointments and schedule"): bookings and their status buttons reaching every screen of the
day live, check-in putting the job on the "Workflow" board, the polling fallback when the
stream cannot be held, the same actions as plain forms without JavaScript, and a change
from a screen that had not caught up being refused in words.

Seed 001 asks for: the admin dashboard's day list and schedule updated live, the workflow
board updated live, polling when the live connection fails, and nothing lost across it.

Every test books on a day of its own far in the future (`a_day()`: a random day in
2031-2035, never twice in a run) with customers of its own (`customer()`), so no test
depends on another or on the demo's today. The schedule shows 07:00-19:00 in quarter hours.
"""

from __future__ import annotations

import random
import re
import string
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Locator, Page, expect

from tests.browser.conftest import SiteClient, is_missing_favicon, sign_in
from tests.browser.pages import (
    TABLET,
    AppointmentsPage,
    AppointmentUsers,
    BoardPage,
    LockEditorPage,
    expect_location,
)

SITE = "workshop"
DASHBOARD = f"/s/{SITE}/appointments"
BOARDS = f"/s/{SITE}/boards"
SEEN = 1000  # ms: seed 001, a change appears on the other screens within 1 s
POLLED = 7000  # ms: polls every 5 s once the stream is given up (app.js), plus slack
STREAM_URL = re.compile(r"/s/workshop/appointments/live\?")  # not …/live/poll, …/live/beat
POLL_PATH = f"{DASHBOARD}/live/poll"
DASH = "\u2013"  # the en dash of "09:00-10:00" as the page shows it
TAP = 44  # px: the smallest touch target
NOT_CHANGED = re.compile(r"^Not changed: .+ saved a newer version while you were editing\.")

_days_taken: set[date] = set()


def a_day() -> str:
    """A day of the test's own (YYYY-MM-DD), 2031-2035, not used before in this run."""
    while True:
        day = date(2031, 1, 1) + timedelta(days=random.randrange(5 * 365))
        if day not in _days_taken:
            _days_taken.add(day)
            return day.isoformat()


def customer(first: str = "Wanjiku") -> str:
    """A customer of the test's own: "Wanjiku Qxvbt"."""
    return f"{first} {''.join(random.choices(string.ascii_lowercase, k=6)).title()}"


def registration() -> str:
    return f"K{''.join(random.choices(string.ascii_uppercase, k=2))} {random.randrange(100, 999)}T"


def booking_fields(
    who: str, bay: str = "Bay 2", starts: str = "10:00", ends: str = "11:30", **kw: str
) -> dict[str, str]:
    return {
        "customer": who,
        "phone": "+254 722 000 111",
        "registration": registration(),
        "make_model": "Toyota Fielder",
        "service": "Brake pads and discs",
        "bay": bay,
        "starts": starts,
        "ends": ends,
        **kw,
    }


def within(ms: float, *locators: Locator) -> float:
    """Wait until every locator is visible, all within one deadline of `ms` from now;
    the seconds it took."""
    started = time.monotonic()
    for locator in locators:
        left = ms - (time.monotonic() - started) * 1000
        expect(locator).to_be_visible(timeout=max(left, 1))
    return time.monotonic() - started


def answer_noise(message: ConsoleMessage) -> bool:
    """Chromium logs every 4xx answer to a fetch: a refused (409/422) stale step is the
    point of the test that watches for it."""
    return is_missing_favicon(message) or bool(re.search(r"status of 4(09|22) ", message.text))


@pytest.fixture
def dashboards(new_context: Callable[..., Any], base_url: str) -> AppointmentUsers:
    return AppointmentUsers(new_context, base_url)


# --- set-up over plain HTTP (no browser) -----------------------------------------------------


class Desk:
    """frank at the front desk over plain HTTP: bookings and their steps made without a
    browser, to set a day up (the form posts a no-JavaScript page makes)."""

    def __init__(self, base_url: str, username: str = "frank") -> None:
        self.client = SiteClient(base_url, username)
        page = self.client.get(DASHBOARD)
        self.bays = {o.get_text(strip=True): str(o["value"]) for o in page.select("#f-bay option")}

    def book(
        self,
        day: str,
        who: str,
        bay: str = "Bay 1",
        at: str = "09:00",
        to: str = "10:00",
        service: str = "Oil change",
    ) -> int:
        """Book over a plain form post; the new booking's id."""
        answer = self.client.post(
            DASHBOARD,
            {
                "customer": who,
                "phone": "0722 000 222",
                "vehicle_registration": registration(),
                "make_model": "Nissan Note",
                "service": service,
                "bay": self.bays[bay],
                "starts_at": f"{day}T{at}",
                "ends_at": f"{day}T{to}",
                "notes": "",
            },
        )
        assert answer.status_code == 303, f"booking {who}: {answer.status_code}"
        return int(answer.headers["location"].rsplit("#appointment-", 1)[1])

    def version(self, day: str, appointment: int) -> str:
        page = self.client.get(f"{DASHBOARD}?day={day}")
        field = page.select_one(f"#appointment-{appointment} input[name=version]")
        assert field is not None, f"#appointment-{appointment} has no buttons on {day}"
        return str(field["value"])

    def step(self, day: str, appointment: int, to: str) -> None:
        """ "checked_in", "in_progress", "done", "cancelled", "no_show"."""
        version = self.version(day, appointment)
        if to == "checked_in":
            answer = self.client.post(f"{DASHBOARD}/{appointment}/check-in", {"version": version})
        else:
            answer = self.client.post(
                f"{DASHBOARD}/{appointment}/status", {"version": version, "to": to}
            )
        assert answer.status_code == 303, f"{to} #{appointment}: {answer.status_code}"

    def edit(self, appointment: int, **values: str) -> None:
        """Through the booking's editor: take the lock, save the fields (which lets go)."""
        editor = f"{DASHBOARD}/{appointment}/edit"
        assert self.client.post(f"{editor}/open").status_code == 303
        form = self.client.get(editor).select_one("#editor form.editor__form")
        assert form is not None
        fields = {
            str(e["name"]): str(e.get("value", ""))
            for e in form.select("input[name]")
            if e.get("type") != "submit"
        }
        notes, bay = form.select_one("textarea[name=notes]"), form.select_one("#f-bay [selected]")
        assert notes is not None and bay is not None
        fields.update(notes=notes.get_text(), bay=str(bay["value"]), **values)
        fields.pop("csrftoken", None)
        answer = self.client.post(editor, fields)
        assert answer.status_code == 303, f"saving #{appointment}: {answer.status_code}"

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def desk(base_url: str) -> Iterator[Desk]:
    made = Desk(base_url)
    try:
        yield made
    finally:
        made.close()


# --- the workflow board ------------------------------------------------------------------


def open_workflow(page: Page) -> BoardPage:
    """From the site's boards, follow "Workflow" to its board; streaming."""
    page.goto(BOARDS)
    page.locator("main").get_by_role("link", name=re.compile(r"^Workflow\b")).click()
    expect(page.locator("#columns")).to_be_visible()
    path = re.sub(r"^https?://[^/]+", "", page.evaluate("location.href")).split("#")[0]
    assert re.fullmatch(rf"{BOARDS}/\d+/?", path), path
    board = BoardPage(page, path)
    return board.wait_live()


def estimates(board: BoardPage) -> Locator:
    """The board's "Estimates" column."""
    return board.page.locator("section.column").filter(
        has=board.page.get_by_role("heading", name=re.compile(r"^Estimates\b"))
    )


# --- 1. seed 001 on two tablets, and the workflow board on a third screen ----------------


def test_a_booking_and_its_check_in_reach_the_other_dashboard_and_the_workflow_board(
    dashboards: AppointmentUsers, new_context: Callable[..., Any], base_url: str
) -> None:
    day = a_day()
    frank = dashboards("frank", day)
    admin = dashboards("admin", day)
    expect(admin.presence_count).to_have_text("2 here", timeout=3000)
    expect(admin.bookings).to_have_count(0)
    expect(admin.region.locator(".empty")).to_have_text("No bookings on this day.")
    # the schedule: Bay 1-3 across, 07:00-18:00 labelled down the side
    expect(admin.bay_heads).to_have_text(["Bay 1", "Bay 2", "Bay 3"])
    expect(admin.hour_heads.first).to_have_text("07:00")
    expect(admin.hour_heads.last).to_have_text("18:00")
    admin.mark()

    # frank books, through the "New appointment" form
    who = customer()
    fields = booking_fields(who, bay="Bay 2", starts="10:00", ends="11:30")
    frank.fill_booking(**fields)
    with frank.page.expect_response(
        lambda r: r.request.method == "POST" and r.url.split("?")[0].endswith(DASHBOARD)
    ) as answer:
        frank.book_button.click()
    # a boosted form: 204 + HX-Location to the day, at the booking (303 without htmx)
    assert answer.value.status == 204, answer.value.status
    assert re.search(
        rf"{DASHBOARD}\?day={day}#appointment-\d+$", answer.value.headers["hx-location"]
    ), answer.value.headers
    took = within(SEEN, admin.booking(who), admin.slot(who))
    print(f"frank's booking on admin's dashboard {took * 1000:.0f} ms after frank's answer")
    assert took < SEEN / 1000

    # on admin's screen: the row, with everything frank typed, and the block in Bay 2
    row = admin.booking(who)
    expect(row).to_have_count(1)
    expect(row.locator(".booking__time")).to_have_text(f"10:00{DASH}11:30")
    expect(row.locator(".booking__bay")).to_have_text("Bay 2")
    expect(admin.badge(who)).to_have_text("Scheduled")
    expect(row.locator(".booking__who")).to_contain_text(fields["registration"])
    expect(row.locator(".booking__who")).to_contain_text("Toyota Fielder")
    expect(row.locator(".booking__service")).to_have_text("Brake pads and discs")
    expect(row.locator(".booking__phone")).to_have_text("+254 722 000 111")
    slot = admin.slot(who)
    expect(slot).to_have_count(1)
    # Bay 2's column, from 10:00 (3 h after 07:00: row 12) for 90 minutes (6 rows)
    expect(slot).to_have_class(re.compile(r"(^| )c-2 r-12 s-6( |$)"))
    expect(slot).to_have_class(re.compile(r"\bslot--scheduled\b"))
    expect(admin.counts).to_have_text("1 booking · 1 scheduled")
    assert admin.still_marked(), "admin's page was reloaded"

    # frank's own page: the day again (a boosted navigation), with his message
    frank.expect_here()
    expect(frank.messages).to_have_text(f"Booked {who} in Bay 2 at 10:00{DASH}11:30.")
    expect(frank.badge(who)).to_have_text("Scheduled")
    expect(frank.slot(who)).to_have_count(1)
    frank.wait_live()
    appointment = frank.booking_id(who)

    # a third screen: admin, in a second browser, on the site's "Workflow" board
    board_page = new_context(**TABLET).new_page()
    dashboards.watch("admin (workflow board)", board_page)
    sign_in(board_page, base_url, "admin", next_path=BOARDS)
    board = open_workflow(board_page)
    column = estimates(board)
    expect(column).to_have_count(1)
    expect(column.locator("li.ticket").filter(has_text=who)).to_have_count(0)
    board.mark()

    # frank checks the customer in
    assert frank.press(who, "Check in") == 200
    answered = time.monotonic()
    card = column.locator("li.ticket").filter(has_text=who)
    expect(card).to_have_count(1, timeout=SEEN)
    took = time.monotonic() - answered
    print(f"the job on the workflow board {took * 1000:.0f} ms after frank's check-in")
    assert took < SEEN / 1000
    expect(card.locator(".ticket__title")).to_contain_text("Brake pads and discs")
    expect(card.locator(".ticket__customer")).to_have_text(who)
    expect(card.locator(".ticket__vehicle")).to_have_text(fields["registration"])
    expect(card.locator(".ticket__due-out")).to_be_visible()
    ticket = int((card.get_attribute("id") or "").removeprefix("ticket-"))
    assert board.still_marked(), "the workflow board was reloaded"

    # both dashboards: "Checked in", and a link to the job
    expect(frank.toast(f"Checked in {who}: the job is on the workflow board.")).to_be_visible()
    for me in (admin, frank):
        expect(me.badge(who)).to_have_text("Checked in", timeout=SEEN)
        expect(me.job_link(who)).to_have_attribute(
            "href", f"{DASHBOARD}/{appointment}/job", timeout=SEEN
        )
        expect(me.button(who, "Check in")).to_have_count(0)
        expect(me.button(who, "Start")).to_be_visible()
        expect(me.slot(who)).to_have_class(re.compile(r"\bslot--checked_in\b"))
    expect(admin.counts).to_have_text("1 booking · 1 checked in")
    assert admin.still_marked(), "admin's page was reloaded"
    # one card, however it got there
    expect(board.page.locator("li.ticket").filter(has_text=who)).to_have_count(1)

    # the link leads to that card
    admin.job_link(who).click()
    expect_location(admin.page, re.compile(rf"{BOARDS}/\d+/tickets/{ticket}$"))
    expect(admin.page.locator(f"#ticket-{ticket}")).to_contain_text(who)
    dashboards.assert_clean()


# --- 2. the polling fallback --------------------------------------------------------------


def test_with_the_stream_blocked_the_dashboard_polls_and_goes_live_again_missing_nothing(
    dashboards: AppointmentUsers,
) -> None:
    day = a_day()
    blocked = {"now": True}
    polls: list[str] = []

    def block_the_stream(page: Page) -> None:
        page.route(STREAM_URL, lambda route: route.abort())
        page.on(
            "request",
            lambda r: polls.append(r.url) if r.url.split("?")[0].endswith(POLL_PATH) else None,
        )

    def blocked_noise(message: ConsoleMessage) -> bool:
        """Failed stream requests are logged while (and only while) they are blocked."""
        return is_missing_favicon(message) or (
            blocked["now"]
            and message.text.startswith(
                ("Failed to load resource: net::ERR_FAILED", "htmx: htmx:error")
            )
        )

    frank = dashboards("frank", day)
    admin = dashboards("admin", day, before=block_the_stream, ignore=blocked_noise, live=False)
    admin.record_pill()
    admin.mark()

    # three failed connects, then it polls, and says so
    expect(admin.status).to_have_text("Polling", timeout=10_000)
    expect(admin.status).to_have_attribute("data-state", "polling")
    assert polls, "no poll was made"
    assert all(f"day={day}" in url for url in polls), polls  # the poll asks for its day

    # frank books: it reaches admin by a poll
    first = customer("Achieng")
    assert frank.book(**booking_fields(first, bay="Bay 1", starts="08:00", ends="09:00")) == 204
    answered = time.monotonic()
    expect(admin.booking(first)).to_be_visible(timeout=POLLED)
    expect(admin.slot(first)).to_be_visible(timeout=1000)
    print(f"a booking reached the polling page after {time.monotonic() - answered:.1f} s")
    expect(admin.badge(first)).to_have_text("Scheduled")
    expect(admin.status).to_have_text("Polling")

    # the stream is let through again; frank checks in meanwhile (before or while the page
    # reconnects: a poll or the stream's replay must bring it)
    frank.expect_here()
    frank.wait_live()
    admin.page.unroute(STREAM_URL)
    assert frank.press(first, "Check in") == 200
    expect(admin.status).to_have_text("Live", timeout=15_000)
    blocked["now"] = False
    history = admin.pill_history()
    assert "polling" in history and history[-1] == "live", history
    expect(admin.badge(first)).to_have_text("Checked in", timeout=POLLED)

    # live again: frank's next changes arrive within 1 s
    second = customer("Otieno")
    assert frank.book(**booking_fields(second, bay="Bay 3", starts="13:00", ends="14:00")) == 204
    took = within(SEEN, admin.booking(second), admin.slot(second))
    assert took < SEEN / 1000, f"{took:.2f} s"
    frank.expect_here()
    frank.wait_live()
    assert frank.press(first, "Start") == 200
    expect(admin.badge(first)).to_have_text("In progress", timeout=SEEN)

    # nothing missed, nothing doubled, never reloaded
    expect(admin.bookings).to_have_count(2)
    expect(admin.slots).to_have_count(2)
    expect(admin.badge(second)).to_have_text("Scheduled")
    expect(admin.counts).to_have_text("2 bookings · 1 scheduled · 1 in progress")
    ids = admin.bookings.evaluate_all("(rows) => rows.map((r) => r.id)")
    assert len(ids) == len(set(ids)), ids
    assert admin.still_marked(), "admin's page was reloaded"
    expect(admin.toasts.locator(".toast--error")).to_have_count(0)  # the pill said it
    dashboards.assert_clean()


# --- 3. without JavaScript -------------------------------------------------------------------


def test_booking_check_in_and_cancel_by_plain_forms_without_javascript(
    new_context: Callable[..., Any], base_url: str, dashboards: AppointmentUsers
) -> None:
    day = a_day()
    page = new_context(java_script_enabled=False, **TABLET).new_page()
    problems = dashboards.watch("frank (no JavaScript)", page)
    frank = AppointmentsPage(page, day, problems=problems)
    sign_in(page, base_url, "frank", next_path=frank.path)
    frank.expect_here()
    expect(frank.live_frame).to_have_count(1)  # the no-JS "is this page up to date?" frame
    expect(frank.bookings).to_have_count(0)

    def post(action: Callable[[], None], pattern: str) -> str:
        """Do `action`, which posts a plain form: its 303's Location, once the page it
        leads to has loaded."""
        with (
            page.expect_response(
                lambda r: r.request.method == "POST" and re.search(pattern, r.url) is not None
            ) as answer,
            page.expect_navigation(),
        ):
            action()
        assert answer.value.request.headers.get("hx-request") is None, "an htmx request"
        assert answer.value.status == 303, f"{answer.value.status}: {answer.value.url}"
        return answer.value.headers["location"]

    # book: back to the day, at the booking, with a message
    who = customer("Kamau")
    frank.fill_booking(**booking_fields(who, bay="Bay 1", starts="09:30", ends="11:00"))
    went = post(frank.book_button.click, r"/appointments$")
    assert re.search(rf"{DASHBOARD}\?day={day}#appointment-\d+$", went), went
    frank.expect_here()
    expect(frank.messages).to_have_text(f"Booked {who} in Bay 1 at 09:30{DASH}11:00.")
    expect(frank.badge(who)).to_have_text("Scheduled")
    expect(frank.slot(who)).to_have_class(re.compile(r"(^| )c-1 r-10 s-6( |$)"))
    appointment = frank.booking_id(who)
    assert went.endswith(f"#appointment-{appointment}")

    # check in
    went = post(lambda: frank.button(who, "Check in").click(), r"/check-in$")
    assert went.endswith(f"?day={day}#appointment-{appointment}"), went
    frank.expect_here()
    expect(frank.messages).to_have_text(f"Checked in {who}: the job is on the workflow board.")
    expect(frank.badge(who)).to_have_text("Checked in")
    expect(frank.job_link(who)).to_be_visible()
    expect(frank.button(who, "Check in")).to_have_count(0)

    # cancel: "More…" (a native <details>, no script needed), then "Cancel the booking"
    frank.more(who).click()
    cancel = frank.button(who, "Cancel the booking")
    expect(cancel).to_be_visible()
    went = post(cancel.click, r"/status$")
    assert went.endswith(f"?day={day}#appointment-{appointment}"), went
    frank.expect_here()
    expect(frank.messages).to_have_text(f"{who} (09:30{DASH}11:00): Cancelled.")
    expect(frank.badge(who)).to_have_text("Cancelled")
    expect(frank.slot(who)).to_have_count(0)  # a cancelled booking frees its slot
    expect(frank.booking(who).locator(".booking__actions")).to_have_count(0)
    expect(frank.counts).to_have_text("1 booking · 1 cancelled")
    dashboards.assert_clean()


# --- 4. Start → Finish, and a change from a screen that had not caught up -----------------------


def test_start_and_finish_by_buttons_reach_the_other_dashboard(
    dashboards: AppointmentUsers, desk: Desk
) -> None:
    day = a_day()
    who = customer("Njeri")
    desk.book(day, who, bay="Bay 3", at="14:00", to="16:00")
    frank = dashboards("frank", day)
    admin = dashboards("admin", day)
    admin.mark()
    frank.mark()

    for label, word in (("Check in", "Checked in"), ("Start", "In progress"), ("Finish", "Done")):
        assert frank.press(who, label) == 200, label
        expect(admin.badge(who)).to_have_text(word, timeout=SEEN)
        expect(frank.badge(who)).to_have_text(word, timeout=SEEN)
    expect(frank.toast(f"{who} (14:00{DASH}16:00): Done.")).to_be_visible()
    for me in (frank, admin):
        expect(me.booking(who).locator(".booking__actions")).to_have_count(0)  # no steps left
        expect(me.slot(who)).to_have_class(re.compile(r"\bslot--done\b"))
        expect(me.counts).to_have_text("1 booking · 1 done")
        assert me.still_marked()
    dashboards.assert_clean()


def test_a_change_from_a_screen_behind_its_stream_is_refused_in_words(
    dashboards: AppointmentUsers, desk: Desk
) -> None:
    day = a_day()
    edited, cancelled = customer("Mwangi"), customer("Chebet")
    desk.book(day, edited, bay="Bay 1", at="09:00", to="10:00", service="Clutch")
    gone = desk.book(day, cancelled, bay="Bay 2", at="09:00", to="10:00")
    frank = dashboards("frank", day)
    admin = dashboards("admin", day, ignore=answer_noise)

    # admin's stream falls behind (its messages wait): her screen still shows both bookings
    # as they were when frank edits the first (a new version, same status) and cancels the
    # second
    admin.freeze()
    edit_service(frank, edited, "Clutch and flywheel")
    desk.step(day, gone, "cancelled")
    admin.page.wait_for_timeout(500)
    expect(admin.booking(edited).locator(".booking__service")).to_have_text("Clutch")
    expect(admin.badge(cancelled)).to_have_text("Scheduled")

    # her "Check in" from the old version: refused, and told so (409), nothing made
    assert admin.press(edited, "Check in") == 409
    expect(admin.toast(NOT_CHANGED)).to_be_visible()
    expect(admin.toast(NOT_CHANGED)).to_have_class(re.compile(r"\btoast--error\b"))
    # … and on a booking that was cancelled meanwhile: refused by name (422)
    assert admin.press(cancelled, "Check in") == 422
    expect(admin.toast("This appointment is already cancelled.")).to_be_visible()

    # once her stream catches up, the screen is right, and from it the check-in goes through
    admin.thaw()
    expect(admin.booking(edited).locator(".booking__service")).to_have_text(
        "Clutch and flywheel", timeout=SEEN
    )
    expect(admin.badge(cancelled)).to_have_text("Cancelled", timeout=SEEN)
    expect(admin.badge(edited)).to_have_text("Scheduled")
    assert admin.press(edited, "Check in") == 200
    frank.open().wait_live()  # (saving the edit left frank on today's dashboard: see below)
    expect(frank.badge(edited)).to_have_text("Checked in")
    dashboards.assert_clean()


def test_a_refused_change_shows_the_booking_as_it_is_now(
    dashboards: AppointmentUsers, desk: Desk
) -> None:
    """The 409 says "… It now shows as it is." — then the screen must show it so, from the
    answer itself: not only once a stream that is behind catches up (a tablet just woken,
    a slow link), or every tap meanwhile is refused again from the same stale version."""
    day = a_day()
    who = customer("Wafula")
    appointment = desk.book(day, who, bay="Bay 1", at="11:00", to="12:00", service="Clutch")
    admin = dashboards("admin", day, ignore=answer_noise)
    admin.freeze()
    desk.edit(appointment, service="Clutch and flywheel")
    admin.page.wait_for_timeout(300)
    expect(admin.booking(who).locator(".booking__service")).to_have_text("Clutch")

    assert admin.press(who, "Check in") == 409
    expect(admin.toast(NOT_CHANGED)).to_contain_text("It now shows as it is.")
    admin.page.wait_for_timeout(500)  # the answer's swaps have settled
    service = admin.booking(who).locator(".booking__service").inner_text()
    version = admin.booking(who).locator("input[name=version]").first.input_value()
    admin.thaw()
    expect(admin.booking(who).locator(".booking__service")).to_have_text(
        "Clutch and flywheel", timeout=SEEN
    )
    dashboards.assert_clean()
    assert (service, version) == ("Clutch and flywheel", desk.version(day, appointment)), (
        'after the 409 "Not changed: … It now shows as it is." admin\'s dashboard still '
        f"showed the booking as she had seen it (service {service!r}, version {version}): "
        "the answer is a toast only (routes/appointments.py stale_answer -> "
        "APPOINTMENTS.refuse(..., 'status', …), whose form has no fragment), so a screen "
        "whose stream is behind keeps the stale row and every tap is refused again"
    )


def test_saving_an_edited_booking_goes_back_to_its_day(dashboards: AppointmentUsers) -> None:
    """A booking on another day than today, edited from that day's dashboard: Save (and
    Cancel) go back to that day, at the booking — where "← The appointments" goes too."""
    day = a_day()
    who = customer("Kiprono")
    frank = dashboards("frank", day)
    assert frank.book(**booking_fields(who, bay="Bay 1", starts="15:00", ends="16:00")) == 204
    frank.expect_here()
    frank.wait_live()
    appointment = frank.booking_id(who)

    sent_to = edit_service(frank, who, "Brake fluid flush")
    # where Save led: the booking's day, with the saved service
    where = frank.page.evaluate("location.href")
    shown = frank.page.locator("main h1 .day-title").inner_text()
    dashboards.assert_clean()
    assert re.search(rf"{DASHBOARD}\?day={day}(#appointment-{appointment})?$", where), (
        f"saving the booking of {day} sent the page to {sent_to!r} (HX-Location) and it "
        f"showed {shown!r}: today's dashboard, where that booking is not shown. "
        "routes/editing.py LockEditor.back() is the area's page without its day filter, and "
        "routes/appointments.py's APPOINTMENT editor does not say which day"
    )
    expect(frank.booking(who).locator(".booking__service")).to_have_text("Brake fluid flush")


def edit_service(me: AppointmentsPage, who: str, service: str) -> str:
    """The booking's "Edit" (a POST that takes the lock), a new service, Save; where the
    save's answer sends the page (its HX-Location)."""
    me.button(who, "Edit").click()
    editor = LockEditorPage(me.page)
    editor.expect_state("mine")
    expect(editor.root.get_by_label("Customer", exact=True)).to_have_value(who)
    editor.root.get_by_label("Service", exact=True).fill(service)
    with me.page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/edit")
    ) as answer:
        editor.save_button.click()
    assert answer.value.status == 204, answer.value.status
    expect(me.page.locator("main .messages .alert")).to_have_text(f"Saved {who}'s booking.")
    return answer.value.headers.get("hx-location", "")


# --- 5. touch targets on a tablet -------------------------------------------------------------


def test_the_booking_buttons_are_big_enough_for_a_finger_on_a_tablet(
    dashboards: AppointmentUsers, desk: Desk
) -> None:
    day = a_day()
    waiting, here, working = customer("Auma"), customer("Baraka"), customer("Cherono")
    desk.book(day, waiting, bay="Bay 1", at="08:00", to="09:00")
    desk.step(day, desk.book(day, here, bay="Bay 2", at="08:00", to="09:30"), "checked_in")
    started = desk.book(day, working, bay="Bay 3", at="08:30", to="10:00")
    desk.step(day, started, "checked_in")
    desk.step(day, started, "in_progress")
    frank = dashboards("frank", day)
    page = frank.page
    assert page.viewport_size == {"width": 1024, "height": 768}
    assert page.evaluate("navigator.maxTouchPoints") > 0

    for who in (waiting, here):  # open every "More…" so its buttons are measured too
        frank.more(who).click()
        expect(frank.button(who, "Cancel the booking")).to_be_visible()
    targets = frank.bookings.locator(".booking__actions").locator("button, summary, a.button")
    labels = {
        " ".join(t.split()) for t in targets.evaluate_all("(els) => els.map((e) => e.textContent)")
    }
    for word in ("Check in", "Start", "Edit", "More…", "No-show", "Cancel the booking"):
        assert any(label.startswith(word) for label in labels), (word, labels)
    small = []
    for n in range(targets.count()):
        target = targets.nth(n)
        target.scroll_into_view_if_needed()
        box = target.bounding_box()
        assert box is not None
        if box["height"] < TAP or box["width"] < TAP:
            name = " ".join((target.text_content() or "").split())
            small.append(f"{name!r}: {box['width']:.0f}x{box['height']:.0f}")
    assert not small, f"booking buttons under {TAP} px: {small}"

    # the form's own controls too, and nothing scrolls sideways
    frank.new_appointment.locator("summary").click()
    for control in (frank.new_appointment.locator("summary"), frank.book_button):
        box = control.bounding_box()
        assert box is not None and box["height"] >= TAP, box
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the dashboard scrolls sideways by {overflow}px on a tablet"
    dashboards.assert_clean()
