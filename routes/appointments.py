"""Today's appointments and the bays' schedule (SPEC §5.2; seed 001): the workshop's
live dashboard at /s/{site}/appointments, its wall screen, and check-in onto the
workflow board.

One live area, `APPOINTMENTS`, whose page shows one day (`?day=2026-12-05`, today by
default): the day's list with counts per status, and a grid of bays by time. Its topic is the
site's: a change is drawn once, as the regions of the day(s) it touched (`#day-<date>`),
and a dashboard showing another day ignores them. A day is small (tens of bookings), so
a change redraws that day's list and grid whole. The day is the page's filter: its
stream and poll carry it, so a resync or a poll draws the day that page shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from routes.access import require_manager, site_of
from routes.boards import BOARD
from routes.common import AREAS, Area, path_for, redirect, render, services, wants_fragment
from routes.editing import Editing, LockEditor, Saved, Saving
from routes.forms import FormErrors, read_form
from routes.fragments import delete, partial, render_fragment, toast, upsert
from routes.live import Change, Forms, FormSpec, LiveArea, Params, Render, held_by
from tables.appointments import (
    BAY_NAME_MAX,
    EDITABLE,
    ON_THE_JOB,
    WORDS,
    YEARS,
    AppointmentView,
    DayView,
    Status,
    add_bay,
    appointments_by_id,
    bay_settings,
    bays_of,
    change_status,
    check_in,
    create_appointment,
    day_view,
    move_bay,
    open_appointment,
    rename_bay,
    set_bay_in_use,
    site_bay,
    today,
    update_appointment,
)
from tables.base import DomainError, InvalidInput, StaleVersion, write_tx
from tables.boards import open_ticket
from tables.people import SiteRef

AREAS.append(Area("Appointments", "appointments", "Today's bookings and the bays' schedule"))

QUARTER = 15  # minutes in a row of the schedule
OPENS, CLOSES = 7, 19  # the schedule's usual hours; a day's bookings outside widen it
# The status buttons of a booking, by the word on them; the last two (the booking will not
# happen) sit behind "More…", out of the way of a thumb.
LABELS = {
    Status.in_progress: "Start",
    Status.done: "Finish",
    Status.no_show: "No-show",
    Status.cancelled: "Cancel the booking",
}
BUTTONS = {
    "steps": [Status.in_progress, Status.done],
    "ends": [Status.no_show, Status.cancelled],
    "labels": LABELS,
    "words": WORDS,
}


# -- which day ------------------------------------------------------------------------------


def chosen_day(text: str, tz: ZoneInfo) -> tuple[date, str]:
    """The day a page asks for (`?day=2026-12-05`), and a sentence if it could not be
    read (then today). Years far off are refused too: nobody books there."""
    if not text:
        return today(tz), ""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return today(tz), "That is not a date, so here is today."
    if day.year not in YEARS:
        return today(tz), "That day is out of range, so here is today."
    return day, ""


def day_url(site: SiteRef, day: date, *, wall: bool = False) -> str:
    base = path_for("appointments_wall" if wall else "appointments", site=site.slug)
    return f"{base}?{urlencode({'day': day.isoformat()})}"


def days_of(appointment: AppointmentView) -> set[date]:
    """The local days a booking shows on (one, or two if it runs past midnight)."""
    last = appointment.end - timedelta(microseconds=1)
    return {appointment.start.date(), last.date()}


# -- the schedule grid ----------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A booking on the grid: its bay's column, first row and rows spanned (classes in
    app.css: no inline styles under our CSP)."""

    appointment: AppointmentView
    column: int
    row: int
    span: int


@dataclass(frozen=True)
class Schedule:
    hours: list[int]  # the hours labelled down the side
    rows: int
    blocks: list[Block]
    first: datetime  # the local time of row 0 (for the "now" line)

    @classmethod
    def of(cls, day: DayView) -> Schedule:
        """From 07:00 to 19:00 in quarter hours, widened to show every booking of the day."""
        start = datetime.combine(day.day, time(0), day.tz)
        end = start + timedelta(days=1)
        opens, closes = OPENS, CLOSES
        for a in day.appointments:
            opens = min(opens, max(a.start, start).hour)
            last = min(a.end, end) - start
            closes = max(closes, min(24, -(-int(last.total_seconds()) // 3600)))
        first = start.replace(hour=opens)
        columns = {bay.id: n for n, bay in enumerate(day.bays, start=1)}
        blocks = []
        for a in day.appointments:
            if a.bay_id not in columns or a.status in (Status.cancelled, Status.no_show):
                continue
            top = max(0, int((max(a.start, first) - first).total_seconds() // 60) // QUARTER)
            bottom = -(-int((min(a.end, end) - first).total_seconds() // 60) // QUARTER)
            blocks.append(Block(a, columns[a.bay_id], top, max(1, bottom - top)))
        rows = (closes - opens) * 60 // QUARTER
        return cls(list(range(opens, closes)), rows, blocks, first)


# -- the renderer -----------------------------------------------------------------------------


def day_context(site: SiteRef, view: DayView, editors: Mapping[int, str]) -> dict:
    """What the day's fragments need: the same for every viewer."""
    return {
        "site": site,
        "d": view,
        "schedule": Schedule.of(view),
        "editors": editors,
        "is_today": view.day == today(site.tz),
        **BUTTONS,
    }


async def day_html(
    site: SiteRef, day: date, editors: Mapping[int, str], only: set[int] | None = None
) -> str:
    """A day's region whole; or, given `only` (the bookings a change touched), just those
    bookings' rows and blocks and the day's counts — a few kB however full the day is.
    Whole when the day's schedule spans other hours than usual (a row's place depends on
    where the grid starts)."""
    view = await day_view(site.id, day)
    context = day_context(site, view, editors)
    schedule: Schedule = context["schedule"]
    if only is None or (schedule.hours[0], schedule.hours[-1]) != (OPENS, CLOSES - 1):
        fragment = render_fragment("appointments/_day.html", **context)
        return partial(f"day-{day.isoformat()}", fragment)
    blocks = {b.appointment.id: b for b in schedule.blocks}
    html = partial(
        f"counts-{day.isoformat()}", render_fragment("appointments/_counts.html", **context)
    )
    for a in view.appointments:
        if a.id not in only:
            continue
        row = render_fragment("appointments/_booking.html", a=a, **context)
        html += upsert(f"bookings-{day.isoformat()}", row, key="data-key")
        if a.id in blocks:
            slot = render_fragment("appointments/_slot.html", block=blocks[a.id], **context)
            html += upsert(f"schedule-{day.isoformat()}", slot)
        else:  # cancelled or a no-show: its time is free again
            html += delete(f"slot-{a.id}")
    return html


async def render_appointments(view: Render) -> str:
    """The days a change touched: whole for a resync or a poll (the page's own day) or a
    day an edit moved a booking away from; else the bookings it touched, in place."""
    site, change = view.site, view.change
    whole = {date.fromisoformat(w[4:]) for w in change.whole if w.startswith("day-")}
    if change.redraws("day"):
        whole.add(chosen_day(view.filters.get("day", ""), site.tz)[0])
    ids = sorted({*change.ids("appointment"), *change.new("appointment")})
    touched: dict[date, set[int]] = {}
    for appointment in (await appointments_by_id(site.id, ids)).values():
        for day in days_of(appointment):
            touched.setdefault(day, set()).add(appointment.id)
    editors = await view.editing(APPOINTMENT.prefix(site))
    html = ""
    for day in sorted(whole | set(touched)):
        html += await day_html(site, day, editors, None if day in whole else touched[day])
    return html


APPOINTMENTS = LiveArea(
    "appointments",
    render=render_appointments,
    regions={"day"},
    filters=("day",),
    forms={
        "appointment": FormSpec(None, "new-appointment-form", "customer"),
        "status": FormSpec(None, "toasts", "version"),
    },
)


# -- pages ------------------------------------------------------------------------------------


async def dashboard_context(request: Request, wall: bool = False) -> dict:
    access = site_of(request)
    day, problem = chosen_day(request.query_params.get("day", ""), access.tz)
    view = await day_view(access.site_id, day)
    editors = await held_by(services(request).locks, APPOINTMENT.prefix(access.ref))
    return {
        **day_context(access.ref, view, editors),
        "day": day,
        "problem": problem,
        "days": {
            "before": day_url(access.ref, day - timedelta(days=1), wall=wall),
            "after": day_url(access.ref, day + timedelta(days=1), wall=wall),
            "today": day_url(access.ref, today(access.tz), wall=wall),
            "wall": day_url(access.ref, day, wall=True),
        },
        # A dashboard or wall showing "today" (no day asked for) moves on at midnight.
        "rolls_at": None if request.query_params.get("day") else midnight_after(day, access.tz),
        "live": await APPOINTMENTS.view(request),
    }


def midnight_after(day: date, tz: ZoneInfo) -> str:
    return datetime.combine(day + timedelta(days=1), time(0), tz).isoformat()


@APPOINTMENTS.page
async def appointments_page(request: Request, forms: Forms | None = None) -> Response:
    context = await dashboard_context(request)
    site = site_of(request)
    context.update(bays=await bays_of(site.site_id), forms=forms or Forms())
    return render(request, "appointments/page.html", context)


async def appointments_wall(request: Request) -> Response:
    """The day's schedule in large type for a screen in the workshop: read-only."""
    return render(request, "appointments/wall.html", await dashboard_context(request, wall=True))


async def the_appointment(request: Request) -> AppointmentView:
    try:
        return await open_appointment(site_of(request).site_id, request.path_params["appointment"])
    except DomainError as gone:
        raise HTTPException(404, str(gone)) from None


async def appointment_link(request: Request) -> Response:
    """Where a booking is shown: its day's dashboard (the workflow card links here)."""
    appointment = await the_appointment(request)
    url = day_url(site_of(request).ref, appointment.start.date())
    return redirect(request, f"{url}#appointment-{appointment.id}")


async def appointment_job(request: Request) -> Response:
    """The booking's job on the workflow board (made when it was checked in)."""
    appointment = await the_appointment(request)
    try:
        ticket = await open_ticket(site_of(request).site_id, appointment.ticket or 0)
    except DomainError:
        raise HTTPException(404, "This booking has no job on the board.") from None
    url = path_for(
        "ticket", site=site_of(request).ref.slug, board=ticket.board_id, ticket=ticket.id
    )
    return redirect(request, url)


# -- actions ----------------------------------------------------------------------------------


async def appointment_create(request: Request) -> Response:
    access, form = site_of(request), await read_form(request)
    values = {name: form.raw(name) for name in EDITABLE}
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        async with write_tx():
            made = await create_appointment(access.site_id, values, access.actor)
    except DomainError as problem:
        return await APPOINTMENTS.refuse(request, "appointment", problem, values)
    booked = (await appointments_by_id(access.site_id, [made["id"]]))[made["id"]]
    notice = f"Booked {booked.customer} in {booked.bay_name} at {booked.label}."
    back = day_url(access.ref, booked.start.date()) + f"#appointment-{booked.id}"
    change = Change(added={"appointment": {booked.id}})
    return await APPOINTMENTS.done(
        request, change, kind="appointment.create", notice=notice, back=back
    )


async def appointment_status(request: Request) -> Response:
    """Start, finish, no-show, cancel: one step along the status graph, from the version
    the user saw."""
    appointment = await the_appointment(request)
    access, form = site_of(request), await read_form(request)
    version = form.integer("version", label="the version", minimum=1)
    to = form.raw("to")
    if form.errors or version is None:
        return await APPOINTMENTS.refuse(request, "status", FormErrors(form.errors))
    if to not in {s.value for s in Status} or to == Status.checked_in:
        return await APPOINTMENTS.refuse(request, "status", "Choose one of the buttons shown.")
    try:
        async with write_tx():
            await change_status(access.site_id, appointment.id, version, to, access.actor)
    except StaleVersion as stale:
        return await stale_answer(request, appointment, stale)
    except DomainError as problem:
        return await APPOINTMENTS.refuse(request, "status", problem)
    notice = f"{appointment.customer} ({appointment.label}): {Status(to).word}."
    return await done_with(request, appointment, "appointment.status", notice)


async def appointment_check_in(request: Request) -> Response:
    """Check in: the booking is here, and its job goes on the workflow board."""
    appointment = await the_appointment(request)
    access, form = site_of(request), await read_form(request)
    version = form.integer("version", label="the version", minimum=1)
    if form.errors or version is None:
        return await APPOINTMENTS.refuse(request, "status", FormErrors(form.errors))
    try:
        async with write_tx():
            checked = await check_in(access.site_id, appointment.id, version, access.actor)
    except StaleVersion as stale:
        return await stale_answer(request, appointment, stale)
    except DomainError as problem:
        return await APPOINTMENTS.refuse(request, "status", problem)
    board = (BOARD, {"board": checked.board_id}, Change(added={"ticket": {checked.ticket_id}}))
    notice = f"Checked in {appointment.customer}: the job is on the workflow board."
    return await done_with(request, appointment, "appointment.check_in", notice, also=[board])


async def done_with(
    request: Request,
    appointment: AppointmentView,
    kind: str,
    notice: str,
    also: Sequence[tuple[LiveArea, Params, Change]] = (),
) -> Response:
    change = Change(items={"appointment": {appointment.id}})
    back = (
        day_url(site_of(request).ref, appointment.start.date()) + f"#appointment-{appointment.id}"
    )
    return await APPOINTMENTS.done(request, change, kind=kind, notice=notice, back=back, also=also)


async def stale_answer(
    request: Request, appointment: AppointmentView, stale: StaleVersion
) -> Response:
    """Someone changed the booking since: 409, said in words, with the booking as it is
    now (the screen may be behind its stream); a plain form gets the page, fresh."""
    message = f"Not changed: {stale} It now shows as it is."
    if not wants_fragment(request):
        return await APPOINTMENTS.refuse(request, "status", message, status=409)
    site = site_of(request).ref
    change = Change(items={"appointment": {appointment.id}})
    html = await APPOINTMENTS.render(Render(site, {}, change, services(request).locks))
    return HTMLResponse(html + toast(message, "error"), status_code=409)


# -- editing a booking, under a soft lock -------------------------------------------------------


async def load_appointment(site: SiteRef, params: Params) -> Editing:
    a = await open_appointment(site.id, params["appointment"])
    extra = {"a": a, "bays": await bays_of(site.id)}
    return Editing(a.form_values(), a.version, f"the booking of {a.who}, {a.label}", extra)


async def save_appointment(saving: Saving) -> Saved:
    if saving.form.errors:
        raise InvalidInput(saving.form.errors)
    before = await open_appointment(saving.site.id, saving.params["appointment"])
    values = {name: saving.form.raw(name) for name in EDITABLE}
    after = await update_appointment(
        saving.site.id, before.id, saving.version, values, saving.actor
    )
    # Moved (another time, bay or day): the day(s) it was on are redrawn whole, so that no
    # row or block is left where it was and the list keeps its order.
    place = (before.starts_at, before.ends_at, before.bay_id)
    moved = place != (after["starts_at"], after["ends_at"], after["bay"])
    days = days_of(before) if moved else set()
    also = Change(whole={f"day-{day.isoformat()}" for day in days})
    notice = f"Saved {values['customer'].strip() or before.customer}'s booking."
    return Saved(notice, also, elsewhere=await job_follows(saving.site, before, after))


async def job_follows(
    site: SiteRef, before: AppointmentView, after: Mapping
) -> list[tuple[LiveArea, Params, Change]]:
    """The card of a checked-in booking, on the workflow board, when the edit changed what
    it shows (the tables copied it over in the same transaction)."""
    if before.ticket is None:
        return []
    shown = [getattr(before, column) != after[column] for column in ON_THE_JOB]
    if not any(shown):
        return []
    card = await open_ticket(site.id, before.ticket)
    return [(BOARD, {"board": card.board_id}, Change(items={"ticket": {card.id}}))]


APPOINTMENT = LockEditor(
    APPOINTMENTS,
    "appointment",
    params=("appointment",),
    load=load_appointment,
    save=save_appointment,
    template="appointments/edit.html",
    redraw=lambda p: Change(items={"appointment": {p["appointment"]}}),
    entity="appointment",
    # Back to the booking's own day (its link redirects there), not today's.
    back=lambda site, p: path_for("appointment", site=site.slug, appointment=p["appointment"]),
)


# -- the bays, set up by a manager ------------------------------------------------------------


async def bays_page(
    request: Request,
    *,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    failed: int = 0,
    status_code: int = 200,
) -> Response:
    """The site's bays: add, rename, order on the schedule, take out of use. A refused
    form comes back with its message at its field and what was typed (`failed`: the bay
    whose form it was; 0 for the new bay's)."""
    access = require_manager(request)
    context = {
        "bays": await bay_settings(access.site_id),
        "errors": errors or {},
        "values": values or {},
        "failed": failed,
    }
    return render(request, "appointments/bays.html", context, status_code=status_code)


async def bays_changed(request: Request, kind: str, notice: str) -> Response:
    """After commit: every open dashboard fetches its day again (the grid's columns), and
    the manager goes back to the bays with the notice."""
    access = site_of(request)
    change = Change(refetch={"day"})
    await APPOINTMENTS.publish(
        services(request), access.ref, {}, change, kind=kind, actor=access.username
    )
    return redirect(request, path_for("appointment_bays", site=access.ref.slug), notice)


async def bay_refused(request: Request, problem: DomainError, bay: int, values: dict) -> Response:
    errors = problem.errors if isinstance(problem, InvalidInput) else {"name": str(problem)}
    status = 409 if isinstance(problem, StaleVersion) else 422
    if isinstance(problem, StaleVersion):
        now = problem.current["name"]
        errors = {"name": f"Not renamed: someone renamed it to {now} meanwhile."}
        values = {**values, "name": now, "was": now}
    return await bays_page(request, errors=errors, values=values, failed=bay, status_code=status)


async def the_bay(request: Request) -> int:
    """The bay the path names, if it is one of the site's (404 otherwise), for its manager."""
    access = require_manager(request)
    try:
        await site_bay(access.site_id, request.path_params["bay"])
    except DomainError as gone:
        raise HTTPException(404, str(gone)) from None
    return int(request.path_params["bay"])


def bay_name(form) -> dict[str, str]:
    """The name as typed (for the form again) — read as a line of text, so that a bad one
    is an error at the field."""
    form.text("name", label="the bay's name", max_length=BAY_NAME_MAX)
    return {"name": form.raw("name")}


async def bay_add(request: Request) -> Response:
    access, form = require_manager(request), await read_form(request)
    values = bay_name(form)
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        async with write_tx():
            bay = await add_bay(access.site_id, values, access.actor)
    except DomainError as problem:
        return await bay_refused(request, problem, 0, values)
    return await bays_changed(request, "bay.add", f"Added {bay['name']}.")


async def bay_rename(request: Request) -> Response:
    bay_id = await the_bay(request)
    access, form = site_of(request), await read_form(request)
    values = {**bay_name(form), "was": form.raw("was")}
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        async with write_tx():
            bay = await rename_bay(access.site_id, bay_id, values["was"], values, access.actor)
    except DomainError as problem:
        return await bay_refused(request, problem, bay_id, values)
    return await bays_changed(request, "bay.rename", f"Saved {bay['name']}.")


async def bay_in_use(request: Request) -> Response:
    bay_id = await the_bay(request)
    access, form = site_of(request), await read_form(request)
    in_use = form.raw("in_use")
    try:
        if form.errors or in_use not in ("yes", "no"):
            raise DomainError("Choose one of the buttons shown.")
        async with write_tx():
            bay = await set_bay_in_use(access.site_id, bay_id, in_use == "yes", access.actor)
    except DomainError as problem:
        return await bay_refused(request, problem, bay_id, {})
    words = "is in use again" if bay["active"] else "is out of use"
    return await bays_changed(request, "bay.in_use", f"{bay['name']} {words}.")


async def bay_move(request: Request) -> Response:
    bay_id = await the_bay(request)
    access, form = site_of(request), await read_form(request)
    way = form.raw("way")
    try:
        if form.errors or way not in ("earlier", "later"):
            raise DomainError("Choose one of the buttons shown.")
        async with write_tx():
            await move_bay(access.site_id, bay_id, way == "earlier", access.actor)
    except DomainError as problem:
        return await bay_refused(request, problem, bay_id, {})
    return await bays_changed(request, "bay.move", "Moved.")


ONE = "/appointments/{appointment:id}"
BAY = "/appointments/bays/{bay:id}"

routes = [
    Route("/appointments", appointments_page, name="appointments"),
    Route("/appointments", appointment_create, methods=["POST"], name="appointment_create"),
    Route("/appointments/wall", appointments_wall, name="appointments_wall"),
    Route("/appointments/bays", bays_page, name="appointment_bays"),
    Route("/appointments/bays", bay_add, methods=["POST"], name="appointment_bay_add"),
    Route(BAY, bay_rename, methods=["POST"], name="appointment_bay_rename"),
    Route(f"{BAY}/in-use", bay_in_use, methods=["POST"], name="appointment_bay_in_use"),
    Route(f"{BAY}/move", bay_move, methods=["POST"], name="appointment_bay_move"),
    *APPOINTMENTS.routes("/appointments"),
    Route(ONE, appointment_link, name="appointment"),
    Route(f"{ONE}/job", appointment_job, name="appointment_job"),
    Route(f"{ONE}/status", appointment_status, methods=["POST"], name="appointment_status"),
    Route(f"{ONE}/check-in", appointment_check_in, methods=["POST"], name="appointment_check_in"),
    *APPOINTMENT.routes(f"{ONE}/edit"),
]
