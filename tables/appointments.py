"""Workshop appointments: a site's bays and the bookings in them (seed 001; SPEC §5.2).

A site has bays (Bay 1, Bay 2, …); an appointment books one bay from `starts_at` to
`ends_at` (stored in UTC, shown and typed in the site's time zone) for a customer's
vehicle and a service. Its status follows one graph (`NEXT`):

    scheduled → checked in → in progress → done
    scheduled → cancelled | no-show;  checked in → cancelled

Checking in creates the job: a card in the "Estimates" column of the site's workflow
board (vehicle, customer, service, due out at the appointment's end), linked both ways
(`Appointment.ticket` and `Ticket.appointment`).

Every rule takes the site's id and refuses what is not that site's with the same
sentence as for an id that does not exist. Each write runs in one write transaction —
its own, or the caller's when called inside `write_tx()` — and records its own line in
the site's activity list.

Concurrency rules, enforced by the database:
* a bay's bookings do not overlap: among the ACTIVE appointments of one bay, the
  [start, end) intervals are disjoint (back to back is fine; cancelled and no-show ones
  free their slot). Every booking write first bumps its bay's `version` — one UPDATE of
  the bay row, which holds the row lock until commit on PostgreSQL; SQLite's IMMEDIATE
  write transaction already lets one writer in at a time — and only then looks for a
  clash. So of two people booking one slot at the same moment exactly one wins, and the
  other is told whose booking is there. A move to another bay locks both bays, in id
  order (no deadlock);
* edits and status changes carry the version the user saw (`update_versioned`): of two
  saves from one version, one wins and the other gets StaleVersion;
* checking in is idempotent: the first check-in creates the card; an appointment that is
  already checked in (a double tap, two people at once — whatever version they saw)
  answers with its existing card and `created=False`, so there is never a second card.
  Lock order everywhere: bay(s), then the appointment row, then the workflow board.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.columns import Boolean, Column, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.query.functions.aggregate import Count, Max
from piccolo.table import Table

from tables.activity import Activity
from tables.base import Actor, DomainError, InvalidInput, StaleVersion, update_versioned, write_tx
from tables.boards import BoardColumn, BoardKind, Ticket, create_ticket
from tables.people import Site, SiteRef
from tables.values import UNTYPEABLE, parse_moment, row_id, typeable

BAY_NAME_MAX = 60
NOTES_MAX = 2000
DASH = "\u2013"  # the en dash of "09:00–10:00"  # noqa: RUF003
# The days the dashboard shows (?day=…), and so the days a booking may be on: one in
# year 9999 would be stored and never seen.
YEARS = range(2000, 2101)
SHORTEST = timedelta(minutes=5)
LONGEST = timedelta(hours=12)


class Status(StrEnum):
    scheduled = "scheduled"
    checked_in = "checked_in"
    in_progress = "in_progress"
    done = "done"
    cancelled = "cancelled"
    no_show = "no_show"

    @property
    def word(self) -> str:
        return WORDS[self]


WORDS: dict[Status, str] = {
    Status.scheduled: "Scheduled",
    Status.checked_in: "Checked in",
    Status.in_progress: "In progress",
    Status.done: "Done",
    Status.cancelled: "Cancelled",
    Status.no_show: "No-show",
}
NEXT: dict[Status, frozenset[Status]] = {
    Status.scheduled: frozenset({Status.checked_in, Status.cancelled, Status.no_show}),
    Status.checked_in: frozenset({Status.in_progress, Status.cancelled}),
    Status.in_progress: frozenset({Status.done}),
    Status.done: frozenset(),
    Status.cancelled: frozenset(),
    Status.no_show: frozenset(),
}
ACTIVE: frozenset[Status] = frozenset(
    {Status.scheduled, Status.checked_in, Status.in_progress, Status.done}
)  # these occupy their bay; cancelled and no-show ones free it
CHECKED_IN = frozenset({Status.checked_in, Status.in_progress, Status.done})  # have a card
FINAL = frozenset({Status.done, Status.cancelled, Status.no_show})  # no more edits


def now() -> datetime:
    return datetime.now(UTC)


class Bay(Table):
    id: Serial
    site = ForeignKey(Site, null=False, index=True)
    name = Varchar(length=BAY_NAME_MAX)
    position = Integer(default=0)
    active = Boolean(default=True)
    # Bumped by every booking write in this bay, before anything else in that transaction:
    # the UPDATE is what serialises a bay's bookings (as the board row does for moves).
    version = Integer(default=1)


class Appointment(Table):
    id: Serial
    site = ForeignKey(Site, null=False)  # indexed by (site, starts_at), made by the migration
    bay = ForeignKey(Bay, null=False)  # indexed by (bay, starts_at), made by the migration
    customer = Varchar(length=100)
    phone = Varchar(length=30, default="")
    vehicle_registration = Varchar(length=20, default="")
    make_model = Varchar(length=100, default="")
    service = Varchar(length=200)
    starts_at = Timestamptz()  # UTC
    ends_at = Timestamptz()  # UTC; the slot is [starts_at, ends_at)
    status = Varchar(length=20, choices=Status, default=Status.scheduled)
    notes = Text(default="")
    ticket = Integer(null=True, default=None)  # the workflow card made at check-in
    version = Integer(default=1)  # bumped by every edit and status change
    created_by_name = Varchar(length=150)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_by_name = Varchar(length=150, default="")
    updated_at = Timestamptz(default=TimestamptzNow())


# -- input: what a form sends, as the values to store ---------------------------------

EDITABLE = (
    "customer",
    "phone",
    "vehicle_registration",
    "make_model",
    "service",
    "bay",
    "starts_at",
    "ends_at",
    "notes",
)
# Single-line text fields: form field -> (most characters, what it is called, required).
LINES: dict[str, tuple[int, str, str]] = {
    "customer": (100, "A customer's name", "Give the customer's name."),
    "phone": (30, "A phone number", ""),
    "vehicle_registration": (20, "A registration", ""),
    "make_model": (100, "A make and model", ""),
    "service": (200, "A service", "Say which service is booked."),
}
PHONE = re.compile(r"[0-9 +()\-]*[0-9][0-9 +()\-]*")
NO_BAY = "Choose one of this site's bays."
NO_APPOINTMENT = "There is no such appointment."
NO_SITE = "There is no such site."
START_FORMAT = "Give the start like 2026-12-31 09:00."
OUT_OF_RANGE = f"Book a day from {YEARS[0]} to {YEARS[-1]}."
END_FORMAT = "Give the end like 2026-12-31 10:00."


def _text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name)
    return value if isinstance(value, str) else ""


def local_text(at: datetime, tz: ZoneInfo) -> str:
    """A moment as a datetime-local field shows it, in the site's time zone."""
    return at.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


@dataclass
class _Booking:
    """A form read: the columns to store, a message per wrong field, and the booking's
    bay and times as they will be (the stored ones for fields an edit left out)."""

    columns: dict[str, Any]
    errors: dict[str, str]
    bay: dict[str, Any] | None
    starts_at: datetime | None
    ends_at: datetime | None


async def _read_booking(
    values: Mapping[str, Any], site_id: int, tz: ZoneInfo, current: Mapping[str, Any] | None
) -> _Booking:
    """Check a booking form. Creating (`current` None) reads every field; an edit reads
    the fields present and keeps the others. Names that are not fields are ignored."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    present = [n for n in EDITABLE if current is None or n in values]

    for name, (most, called, required) in LINES.items():
        if name not in present:
            continue
        text = _text(values, name)
        if not typeable(text):
            errors[name] = UNTYPEABLE
        elif not (text := " ".join(text.split())) and required:
            errors[name] = required
        elif len(text) > most:
            errors[name] = f"{called} has at most {most} characters."
        elif name == "phone" and text and not PHONE.fullmatch(text):
            errors[name] = "A phone number has only digits, spaces and + - ( )."
        out[name] = text.upper() if name == "vehicle_registration" else text
    if "notes" in present:
        notes = _text(values, "notes").replace("\r\n", "\n").replace("\r", "\n")
        if not typeable(notes, multiline=True):
            errors["notes"] = UNTYPEABLE
        elif len(notes := notes.strip()) > NOTES_MAX:
            errors["notes"] = f"Notes have at most {NOTES_MAX:,} characters."
        out["notes"] = notes

    bay: dict[str, Any] | None = None
    if "bay" in present:
        bay = await _active_bay(site_id, row_id(_text(values, "bay")))
        if bay is None:
            errors["bay"] = NO_BAY
        else:
            out["bay"] = bay["id"]
    elif current is not None:
        bay = {"id": current["bay"], "name": current.get("bay_name", "")}

    starts = current["starts_at"] if current is not None else None
    if "starts_at" in present:
        starts = parse_moment(_text(values, "starts_at").strip(), tz)
        if starts is None:
            errors["starts_at"] = START_FORMAT
        elif starts.astimezone(tz).year not in YEARS:
            errors["starts_at"], starts = OUT_OF_RANGE, None
        out["starts_at"] = starts
    ends = current["ends_at"] if current is not None else None
    if "ends_at" in present:
        ends = parse_moment(_text(values, "ends_at").strip(), tz)
        if ends is None:
            errors["ends_at"] = END_FORMAT
        out["ends_at"] = ends
    if starts is not None and ends is not None and "ends_at" not in errors:
        if ends <= starts:
            errors["ends_at"] = "The end must be after the start."
        elif ends - starts > LONGEST:
            errors["ends_at"] = "An appointment lasts at most 12 hours."
        elif ends - starts < SHORTEST:
            errors["ends_at"] = "An appointment lasts at least 5 minutes."
    return _Booking(out, errors, bay, starts, ends)


# -- lookups every rule starts with ------------------------------------------------------


async def _site(site_id: int) -> SiteRef:
    site = await SiteRef.load(site_id) if row_id(site_id) is not None else None
    if site is None:
        raise DomainError(NO_SITE)
    return site


async def _active_bay(site_id: int, bay_id: int | None) -> dict[str, Any] | None:
    """One of the site's active bays (id, name, position), or None."""
    if bay_id is None:
        return None
    return await (
        Bay.select(Bay.id, Bay.name, Bay.position)
        .where((Bay.id == bay_id) & (Bay.site == site_id) & (Bay.active.eq(True)))
        .first()
    )


async def _appointment(site_id: int, appointment_id: int) -> dict[str, Any]:
    """One of the site's appointments with its bay's name and the site's time zone (`tz`),
    or DomainError."""
    if row_id(appointment_id) is None:
        raise DomainError(NO_APPOINTMENT)
    row = await (
        Appointment.select(
            *Appointment.all_columns(),
            Appointment.bay.name.as_alias("bay_name"),
            Appointment.site.timezone.as_alias("timezone"),
        )
        .where((Appointment.id == appointment_id) & (Appointment.site == site_id))
        .first()
    )
    if row is None:
        raise DomainError(NO_APPOINTMENT)
    row["tz"] = ZoneInfo(row.pop("timezone"))
    return row


async def _lock_bays(site_id: int, bay_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Bump each bay's version, in id order: from here to commit, this transaction is the
    only one writing bookings in these bays. Returns the site's bays among them."""
    locked = {}
    for bay_id in sorted(set(bay_ids)):
        rows = await (
            Bay.update({Bay.version: Bay.version + 1})
            .where((Bay.id == bay_id) & (Bay.site == site_id))
            .returning(Bay.id, Bay.name, Bay.active, Bay.version)
        )
        if rows:
            locked[bay_id] = rows[0]
    return locked


def _who(row: Mapping[str, Any]) -> str:
    """ "Jane Muthoni (KCA 123A)", or just the name when no registration was given."""
    reg = row.get("vehicle_registration")
    return f"{row['customer']} ({reg})" if reg else str(row["customer"])


def _span(starts: datetime, ends: datetime, tz: ZoneInfo) -> str:
    return f"{starts.astimezone(tz):%H:%M}{DASH}{ends.astimezone(tz):%H:%M}"


def _when(at: datetime, tz: ZoneInfo) -> str:
    """ "09:00 on Sat 5 Dec" in the site's time."""
    local = at.astimezone(tz)
    return f"{local:%H:%M} on {local:%a} {local.day} {local:%b}"


async def _refuse_clash(
    bay: Mapping[str, Any],
    starts: datetime,
    ends: datetime,
    tz: ZoneInfo,
    exclude: int | None = None,
) -> None:
    """DomainError at the start field, naming the other booking, when an active
    appointment of the bay overlaps [starts, ends). Call with the bay locked."""
    where: Any = (
        (Appointment.bay == bay["id"])
        & Appointment.status.is_in(sorted(ACTIVE))
        & (Appointment.starts_at < ends)
        & (Appointment.ends_at > starts)
    )
    if exclude is not None:
        where &= Appointment.id != exclude
    other = await (
        Appointment.select(
            Appointment.customer,
            Appointment.vehicle_registration,
            Appointment.starts_at,
            Appointment.ends_at,
        )
        .where(where)
        .order_by(Appointment.starts_at)
        .first()
    )
    if other is not None:
        span = _span(other["starts_at"], other["ends_at"], tz)
        raise DomainError(f"{bay['name']} is booked {span} by {_who(other)}.", field="starts_at")


async def _record(site_id: int, actor: Actor, verb: str, summary: str, appointment_id: int) -> None:
    await Activity.record(site_id, actor, verb, summary, "appointment", appointment_id)


# -- bookings -----------------------------------------------------------------------------


async def create_appointment(site_id: int, values: Mapping[str, str], actor: Actor) -> dict:
    """Book a bay (fields: EDITABLE, as form text; times in the site's time zone).
    Returns the appointment's row. InvalidInput for wrong fields (all at once), or
    DomainError at "starts_at" naming the booking it would overlap."""
    async with write_tx():
        site = await _site(site_id)
        booking = await _read_booking(values, site.id, site.tz, None)
        if booking.errors:
            raise InvalidInput(booking.errors)
        assert booking.bay and booking.starts_at and booking.ends_at
        bay = (await _lock_bays(site.id, [booking.bay["id"]])).get(booking.bay["id"])
        if bay is None or not bay["active"]:  # taken out of use a moment ago
            raise InvalidInput({"bay": NO_BAY})
        await _refuse_clash(bay, booking.starts_at, booking.ends_at, site.tz)
        stamp = now()
        rows = await Appointment.insert(
            Appointment(
                site=site.id,
                status=Status.scheduled,
                created_by_name=actor.name,
                created_at=stamp,
                updated_by_name=actor.name,
                updated_at=stamp,
                **booking.columns,
            )
        ).returning(*Appointment._meta.columns)
        row = rows[0]
        summary = f"booked {_who(row)} in {bay['name']} at {_when(row['starts_at'], site.tz)}"
        await _record(site.id, actor, "appointment.create", summary, row["id"])
        return row


def _shown(name: str, value: Any, tz: ZoneInfo, bays: Mapping[int, str]) -> str:
    """A field's value as a person reads it on a 409 page."""
    if value is None or value == "":
        return "none"
    if name == "bay":
        return bays.get(value, "another bay")
    if isinstance(value, datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    return str(value)


async def update_appointment(
    site_id: int,
    appointment_id: int,
    expected_version: int,
    values: Mapping[str, str],
    actor: Actor,
) -> dict:
    """Save an appointment's fields (those of EDITABLE present in `values`; the others
    keep their value) if nobody changed it since `expected_version`, else StaleVersion
    whose `changes` say, readably, what differs from what was submitted (field -> (yours,
    theirs)). A booking moved in time or to another bay must not overlap another one
    there. Done, cancelled and no-show appointments cannot be changed. Returns the row."""
    async with write_tx():
        row = await _appointment(site_id, appointment_id)
        tz = row["tz"]
        _changeable(row)
        booking = await _read_booking(values, site_id, tz, row)
        if booking.errors:
            raise InvalidInput(booking.errors)
        assert booking.bay and booking.starts_at and booking.ends_at
        locked = await _lock_bays(site_id, [row["bay"], booking.bay["id"]])
        bay = locked.get(booking.bay["id"])
        if bay is None or (booking.bay["id"] != row["bay"] and not bay["active"]):
            raise InvalidInput({"bay": NO_BAY})
        changes = {**booking.columns, "updated_by_name": actor.name, "updated_at": now()}
        compare = tuple(booking.columns)
        if row["version"] == expected_version:  # else update_versioned says who won
            await _refuse_clash(bay, booking.starts_at, booking.ends_at, tz, row["id"])
        try:
            saved = await update_versioned(
                Appointment,
                row["id"],
                expected_version,
                changes,
                compare=compare,
                where=(Appointment.site == site_id)
                & Appointment.status.is_in(sorted(ACTIVE - FINAL)),
            )
        except StaleVersion as stale:
            _changeable(stale.current)
            names = {b["id"]: b["name"] for b in locked.values()}
            if stale.current["bay"] not in names:  # moved meanwhile to a bay we did not lock
                theirs = await Bay.select(Bay.name).where(Bay.id == stale.current["bay"]).first()
                names[stale.current["bay"]] = theirs["name"] if theirs else "another bay"
            readable = {
                name: (_shown(name, yours, tz, names), _shown(name, theirs, tz, names))
                for name, (yours, theirs) in stale.changes.items()
            }
            raise StaleVersion(stale.current, readable) from None
        summary = (
            f"changed the booking of {_who(saved)}: {bay['name']} at "
            f"{_when(saved['starts_at'], tz)}"
        )
        await _record(site_id, actor, "appointment.update", summary, row["id"])
        await _job_follows(row, saved, actor)
        return saved


# What a checked-in booking's job card shows of it: the booking's column -> the card's.
ON_THE_JOB = {
    "vehicle_registration": "vehicle_registration",
    "customer": "customer",
    "service": "service",
    "ends_at": "due_out_at",
}


async def _job_follows(before: Mapping[str, Any], after: Mapping[str, Any], actor: Actor) -> None:
    """A checked-in booking edited: what changed of what its card shows goes to the card
    (and its title, while the title is still the service it was made with), whose version
    moves on — an editor open on the card then says what changed rather than undo it."""
    if before["ticket"] is None:
        return
    changed = {
        card: after[column]
        for column, card in ON_THE_JOB.items()
        if before[column] != after[column]
    }
    if not changed:
        return
    card = await Ticket.select(Ticket.title).where(Ticket.id == before["ticket"]).first()
    if card is not None and "service" in changed and card["title"] == before["service"]:
        changed["title"] = after["service"]
    columns: dict[Column | str, Any] = {
        Ticket._meta.get_column_by_name(name): value for name, value in changed.items()
    }
    await Ticket.update(
        {
            **columns,
            Ticket.version: Ticket.version + 1,
            Ticket.updated_by_name: actor.name,
            Ticket.updated_at: now(),
        }
    ).where(Ticket.id == before["ticket"])


def _changeable(row: Mapping[str, Any]) -> None:
    """Done, cancelled and no-show appointments are history: they cannot be edited."""
    status = Status(row["status"])
    if status in FINAL:
        what = {
            Status.done: "A finished",
            Status.cancelled: "A cancelled",
            Status.no_show: "A no-show",
        }[status]
        raise DomainError(f"{what} appointment cannot be changed.")


# -- status -------------------------------------------------------------------------------

_ALREADY = {
    Status.scheduled: "This appointment is already scheduled.",
    Status.checked_in: "This appointment is already checked in.",
    Status.in_progress: "This appointment is already in progress.",
    Status.done: "This appointment is already done.",
    Status.cancelled: "This appointment is already cancelled.",
    Status.no_show: "This appointment is already marked a no-show.",
}
_AS_IS = {
    Status.scheduled: "A scheduled appointment",
    Status.checked_in: "A checked-in appointment",
    Status.in_progress: "An appointment in progress",
}
_TO_BE = {
    Status.scheduled: "scheduled again",
    Status.checked_in: "checked in again",
    Status.in_progress: "started",
    Status.done: "finished",
    Status.cancelled: "cancelled",
    Status.no_show: "marked a no-show",
}
_HINTS = {
    (Status.scheduled, Status.in_progress): ": check it in first.",
    (Status.scheduled, Status.done): ": check it in and start it first.",
    (Status.checked_in, Status.done): ": start it first.",
    (Status.checked_in, Status.no_show): ": the customer is here.",
    (Status.in_progress, Status.cancelled): ": finish it instead.",
    (Status.in_progress, Status.no_show): ": the customer is here.",
}


def _check_move(current: str, to: Status) -> None:
    """DomainError naming the current status unless `to` follows it in NEXT."""
    status = Status(current)
    if to in NEXT[status]:
        return
    if status == to or status in FINAL:
        raise DomainError(_ALREADY[status], field="status")
    hint = _HINTS.get((status, to), ".")
    raise DomainError(f"{_AS_IS[status]} cannot be {_TO_BE[to]}{hint}", field="status")


def _status(to: Status | str) -> Status:
    try:
        return Status(to)
    except ValueError:
        raise DomainError("There is no such status.", field="status") from None


_DONE_VERBS = {
    Status.in_progress: "started work on {who} in {bay}",
    Status.done: "finished {who} in {bay}",
    Status.cancelled: "cancelled the booking of {who} in {bay} at {when}",
    Status.no_show: "marked {who} as a no-show ({bay} at {when})",
}


async def change_status(
    site_id: int,
    appointment_id: int,
    expected_version: int,
    to: Status | str,
    actor: Actor,
) -> dict:
    """Move an appointment along the status graph (NEXT) if nobody changed it since
    `expected_version` (else StaleVersion). A move the graph does not have is refused
    naming the current status. `to=checked_in` is a check-in (`check_in`: it creates the
    job card). Returns the saved row."""
    target = _status(to)
    if target is Status.checked_in:
        return (await check_in(site_id, appointment_id, expected_version, actor)).appointment
    async with write_tx():
        row = await _appointment(site_id, appointment_id)
        _check_move(row["status"], target)
        await _lock_bays(site_id, [row["bay"]])
        try:
            saved = await update_versioned(
                Appointment,
                row["id"],
                expected_version,
                {"status": target.value, "updated_by_name": actor.name, "updated_at": now()},
                compare=("status",),
                where=(Appointment.site == site_id) & (Appointment.status == row["status"]),
            )
        except StaleVersion as stale:
            _check_move(stale.current["status"], target)  # the better message, if it applies
            raise
        summary = _DONE_VERBS[target].format(
            who=_who(row), bay=row["bay_name"], when=_when(row["starts_at"], row["tz"])
        )
        await _record(site_id, actor, f"appointment.{target.value}", summary, row["id"])
        return saved


@dataclass
class CheckIn:
    """What a check-in did: the appointment's row, its job card (and that card's board),
    and whether this call made the card (False: it was checked in already)."""

    appointment: dict
    ticket_id: int
    board_id: int
    created: bool


NO_WORKFLOW = "This site has no workflow board to put the job on."


async def _estimates(site_id: int) -> dict[str, Any]:
    """The "estimates" column of the site's first workflow board that is not archived."""
    column = await (
        BoardColumn.select(BoardColumn.id, BoardColumn.board)
        .where(
            (BoardColumn.board.site == site_id)
            & (BoardColumn.board.kind == BoardKind.workflow.value)
            & (BoardColumn.board.archived == False)  # noqa: E712 (SQL, not Python)
            & (BoardColumn.key == "estimates")
        )
        .order_by(BoardColumn.board)
        .first()
    )
    if column is None:
        raise DomainError(NO_WORKFLOW)
    return column


async def _checked_in_already(row: Mapping[str, Any]) -> CheckIn:
    card = await Ticket.select(Ticket.board).where(Ticket.id == row["ticket"]).first()
    if card is None:
        raise DomainError(
            "This appointment is already checked in; its job card was deleted from the board."
        )
    names = {column._meta.name for column in Appointment._meta.columns}
    appointment = {k: v for k, v in row.items() if k in names}
    return CheckIn(appointment, row["ticket"], card["board"], created=False)


async def check_in(
    site_id: int, appointment_id: int, expected_version: int, actor: Actor
) -> CheckIn:
    """The customer is here: scheduled → checked in, and the job's card is made in the
    "Estimates" column of the site's workflow board (title and service = the service,
    vehicle, customer, due out = the appointment's end, linked both ways).

    Idempotent: an appointment that is already checked in (or further along) answers
    with its existing card and `created=False`, whatever version the caller saw — a
    double tap or two people at once make one card. Otherwise version-checked
    (StaleVersion); cancelled and no-show appointments are refused by name; a site
    without a workflow board is refused (NO_WORKFLOW)."""
    async with write_tx():
        row = await _appointment(site_id, appointment_id)
        if row["ticket"] is not None and row["status"] in CHECKED_IN:
            return await _checked_in_already(row)
        _check_move(row["status"], Status.checked_in)
        column = await _estimates(site_id)
        await _lock_bays(site_id, [row["bay"]])
        try:
            await update_versioned(
                Appointment,
                row["id"],
                expected_version,
                {
                    "status": Status.checked_in.value,
                    "updated_by_name": actor.name,
                    "updated_at": now(),
                },
                compare=("status",),
                where=(Appointment.site == site_id)
                & (Appointment.status == Status.scheduled.value),
            )
        except StaleVersion as stale:
            current = stale.current
            if current["ticket"] is not None and current["status"] in CHECKED_IN:
                return await _checked_in_already(current)  # someone checked it in first
            _check_move(current["status"], Status.checked_in)
            raise
        tz = row["tz"]
        due_out = local_text(row["ends_at"], tz)
        card = await create_ticket(
            site_id,
            column["board"],
            column["id"],
            {
                "title": row["service"],
                "vehicle_registration": row["vehicle_registration"],
                "customer": row["customer"],
                "service": row["service"],
                "due_out_at": due_out,
                "appointment": str(row["id"]),
            },
            actor,
        )
        if card["due_out_at"] != row["ends_at"]:  # seconds, or an hour a clock change repeats
            await Ticket.update({Ticket.due_out_at: row["ends_at"]}).where(Ticket.id == card["id"])
        saved = (
            await Appointment.update({Appointment.ticket: card["id"]})
            .where(Appointment.id == row["id"])
            .returning(*Appointment._meta.columns)
        )[0]
        summary = f"checked in {_who(row)} in {row['bay_name']} (job #{card['number']})"
        await _record(site_id, actor, "appointment.checked_in", summary, row["id"])
        return CheckIn(saved, card["id"], column["board"], created=True)


# -- reading: each in a fixed number of queries, whatever the counts ----------------------


def today(tz: ZoneInfo) -> date:
    """The date it is now in a time zone (the site's)."""
    return datetime.now(tz).date()


@dataclass
class BayView:
    id: int
    name: str
    position: int


@dataclass
class AppointmentView:
    id: int
    site_id: int
    bay_id: int
    bay_name: str
    customer: str
    phone: str
    vehicle_registration: str
    make_model: str
    service: str
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC
    status: str
    notes: str
    ticket: int | None
    version: int
    created_by_name: str
    created_at: datetime
    updated_by_name: str
    updated_at: datetime
    start: datetime  # in the site's time zone
    end: datetime  # in the site's time zone

    @property
    def status_word(self) -> str:
        return Status(self.status).word

    @property
    def minutes(self) -> int:
        return int((self.ends_at - self.starts_at).total_seconds() // 60)

    @property
    def label(self) -> str:
        """ "09:00-10:00" (with an en dash) in the site's time."""
        return f"{self.start:%H:%M}{DASH}{self.end:%H:%M}"

    @property
    def who(self) -> str:
        """ "Jane Muthoni (KCA 123A)"."""
        return _who({"customer": self.customer, "vehicle_registration": self.vehicle_registration})

    @property
    def next_statuses(self) -> list[Status]:
        """Where the status graph allows it to go from here, in the graph's order."""
        allowed = NEXT[Status(self.status)]
        return [s for s in Status if s in allowed]

    @property
    def editable(self) -> bool:
        return Status(self.status) not in FINAL

    def form_values(self) -> dict[str, str]:
        """The EDITABLE fields as the form shows them (times as datetime-local text in the
        site's time zone, the bay as its id)."""
        return {
            "customer": self.customer,
            "phone": self.phone,
            "vehicle_registration": self.vehicle_registration,
            "make_model": self.make_model,
            "service": self.service,
            "bay": str(self.bay_id),
            "starts_at": self.start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": self.end.strftime("%Y-%m-%dT%H:%M"),
            "notes": self.notes,
        }


_VIEW_FIELDS = (
    "id",
    "customer",
    "phone",
    "vehicle_registration",
    "make_model",
    "service",
    "starts_at",
    "ends_at",
    "status",
    "notes",
    "ticket",
    "version",
    "created_by_name",
    "created_at",
    "updated_by_name",
    "updated_at",
)


def _view(row: Mapping[str, Any], tz: ZoneInfo) -> AppointmentView:
    return AppointmentView(
        **{name: row[name] for name in _VIEW_FIELDS},
        site_id=row["site"],
        bay_id=row["bay"],
        bay_name=row["bay_name"],
        start=row["starts_at"].astimezone(tz),
        end=row["ends_at"].astimezone(tz),
    )


def _with_bay_name() -> tuple[Any, ...]:
    return (*Appointment.all_columns(), Appointment.bay.name.as_alias("bay_name"))


@dataclass
class DayView:
    site_id: int
    day: date
    tz: ZoneInfo
    bays: list[BayView]
    appointments: list[AppointmentView]  # by start, then bay position
    counts: dict[str, int]  # status -> how many (every status, 0 included)
    day_start: datetime  # UTC: local midnight
    day_end: datetime  # UTC: the next local midnight (23 or 25 hours later on a DST day)
    by_bay: dict[int, list[AppointmentView]] = field(default_factory=dict)

    def in_bay(self, bay_id: int) -> list[AppointmentView]:
        return self.by_bay.get(bay_id, [])


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """A local day as UTC [start, end): local midnight to the next local midnight."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


async def day_view(site_id: int, day: date) -> DayView:
    """A site's day as its dashboard shows it: the active bays in order and the
    appointments that overlap the local day (of any status; cancelled ones too), ordered
    by start then bay position, with counts per status. 3 queries for any number."""
    site = await _site(site_id)
    try:
        day_start, day_end = day_bounds(day, site.tz)
    except OverflowError:
        raise DomainError("There is no such day.") from None
    bays = await bays_of(site.id)
    rows = await (
        Appointment.select(*_with_bay_name(), Appointment.bay.position.as_alias("bay_position"))
        .where(
            (Appointment.site == site.id)
            & (Appointment.starts_at < day_end)
            & (Appointment.ends_at > day_start)
        )
        .order_by(Appointment.starts_at)
        .order_by(Appointment.bay.position)
        .order_by(Appointment.id)
    )
    appointments = [_view(row, site.tz) for row in rows]
    counts = {s.value: 0 for s in Status}
    by_bay: dict[int, list[AppointmentView]] = {}
    for view in appointments:
        counts[view.status] += 1
        by_bay.setdefault(view.bay_id, []).append(view)
    return DayView(
        site_id=site.id,
        day=day,
        tz=site.tz,
        bays=bays,
        appointments=appointments,
        counts=counts,
        day_start=day_start,
        day_end=day_end,
        by_bay=by_bay,
    )


async def appointments_by_id(site_id: int, ids: list[int]) -> dict[int, AppointmentView]:
    """Those of `ids` that are the site's appointments, for redrawing just them: 1 query
    for any number."""
    ids = [i for i in ids if row_id(i) is not None] or [-1]
    rows = await (
        Appointment.select(*_with_bay_name(), Appointment.site.timezone.as_alias("timezone"))
        .where(Appointment.id.is_in(ids) & (Appointment.site == site_id))
        .order_by(Appointment.id)
    )
    return {row["id"]: _view(row, ZoneInfo(row["timezone"])) for row in rows}


async def open_appointment(site_id: int, appointment_id: int) -> AppointmentView:
    """One of the site's appointments (for its editor or detail), or DomainError."""
    found = await appointments_by_id(site_id, [appointment_id])
    if appointment_id not in found:
        raise DomainError(NO_APPOINTMENT)
    return found[appointment_id]


async def bays_of(site_id: int) -> list[BayView]:
    """The site's bays in use, in order: 1 query."""
    rows = await (
        Bay.select(Bay.id, Bay.name, Bay.position)
        .where((Bay.site == site_id) & (Bay.active.eq(True)))
        .order_by(Bay.position)
        .order_by(Bay.id)
    )
    return [BayView(**row) for row in rows]


# -- a workshop's bays, managed by its managers -----------------------------------------------

WAITING = (Status.scheduled, Status.checked_in, Status.in_progress)  # still to happen or on
MAX_BAYS = 12  # in use at once: as many columns as the schedule has room for (app.css)
TOO_MANY = f"A schedule shows at most {MAX_BAYS} bays: take one out of use first."


async def _room_for_one_more(site_id: int) -> None:
    in_use = await Bay.count().where((Bay.site == site_id) & (Bay.active.eq(True)))
    if in_use >= MAX_BAYS:
        raise DomainError(TOO_MANY, field="name")


@dataclass
class BaySetting:
    """A bay as its settings page shows it: in use or not, and what is still booked in it."""

    id: int
    name: str
    position: int
    active: bool
    upcoming: int  # bookings not over yet that are still to happen or under way


async def bay_settings(site_id: int) -> list[BaySetting]:
    """Every bay of the site, in use first, in order, with its upcoming bookings: 2 queries."""
    rows = await (
        Bay.select(Bay.id, Bay.name, Bay.position, Bay.active)
        .where(Bay.site == site_id)
        .order_by(Bay.active, ascending=False)
        .order_by(Bay.position)
        .order_by(Bay.id)
    )
    busy = await (
        Appointment.select(Appointment.bay, Count(Appointment.id).as_alias("n"))
        .where(
            (Appointment.site == site_id)
            & Appointment.status.is_in([s.value for s in WAITING])
            & (Appointment.ends_at > now())
        )
        .group_by(Appointment.bay)
    )
    upcoming = {row["bay"]: row["n"] for row in busy}
    return [BaySetting(**row, upcoming=upcoming.get(row["id"], 0)) for row in rows]


def _bay_name(values: Mapping[str, Any]) -> str:
    name = _text(values, "name").strip()
    if not name:
        raise InvalidInput({"name": "Enter the bay's name."})
    if len(name) > BAY_NAME_MAX:
        raise InvalidInput({"name": f"A bay's name has at most {BAY_NAME_MAX} characters."})
    return name


async def _name_taken(site_id: int, name: str, other_than: int = 0) -> bool:
    rows = await Bay.select(Bay.id, Bay.name).where((Bay.site == site_id) & (Bay.id != other_than))
    return any(row["name"].casefold() == name.casefold() for row in rows)


async def site_bay(site_id: int, bay_id: int) -> dict[str, Any]:
    bay = await Bay.select().where((Bay.id == bay_id) & (Bay.site == site_id)).first()
    if bay is None:
        raise DomainError("That bay is not one of this site's.")
    return bay


async def add_bay(site_id: int, values: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    """A new bay at the end of the site's bays in use."""
    name = _bay_name(values)
    if await _name_taken(site_id, name):
        raise InvalidInput({"name": f"There is already a bay called {name}."})
    await _room_for_one_more(site_id)
    last = await Bay.select(Max(Bay.position).as_alias("p")).where(Bay.site == site_id).first()
    position = (last["p"] if last and last["p"] is not None else -1) + 1
    [bay] = await Bay.insert(Bay(site=site_id, name=name, position=position)).returning(
        *Bay.all_columns()
    )
    await Activity.record(site_id, actor, "bay.add", f"added the bay {name}", "bay", bay["id"])
    return bay


async def rename_bay(
    site_id: int, bay_id: int, was: str, values: Mapping[str, Any], actor: Actor
) -> dict[str, Any]:
    """Rename a bay from the name its renamer saw (`was`): if someone renamed it meanwhile,
    nothing is written and they are told its name now."""
    name = _bay_name(values)
    bay = await site_bay(site_id, bay_id)
    if bay["name"] != was:
        raise StaleVersion(bay, {"name": (was, bay["name"])})
    if name == bay["name"]:
        return bay
    if await _name_taken(site_id, name, other_than=bay_id):
        raise InvalidInput({"name": f"There is already a bay called {name}."})
    [saved] = await (
        Bay.update({Bay.name: name})
        .where((Bay.id == bay_id) & (Bay.name == was))
        .returning(*Bay.all_columns())
    )
    summary = f"renamed the bay {was} to {name}"
    await Activity.record(site_id, actor, "bay.rename", summary, "bay", bay_id)
    return saved


async def set_bay_in_use(site_id: int, bay_id: int, in_use: bool, actor: Actor) -> dict[str, Any]:
    """Take a bay out of use (not while bookings still to come are in it: they would vanish
    from the schedule) or back into use. Its past bookings keep their bay."""
    [bay] = (
        await Bay.update({Bay.version: Bay.version + 1})  # the bay's bookings wait for this
        .where((Bay.id == bay_id) & (Bay.site == site_id))
        .returning(*Bay.all_columns())
        or [None]
    )
    if bay is None:
        raise DomainError("That bay is not one of this site's.")
    if bay["active"] == in_use:
        return bay
    if in_use:
        await _room_for_one_more(site_id)
    else:
        waiting = await Appointment.count().where(
            (Appointment.bay == bay_id)
            & Appointment.status.is_in([s.value for s in WAITING])
            & (Appointment.ends_at > now())
        )
        if waiting:
            bookings = "booking" if waiting == 1 else "bookings"
            raise DomainError(
                f"{bay['name']} still has {waiting} {bookings} to come: move or cancel "
                f"{'it' if waiting == 1 else 'them'} first."
            )
    [saved] = await (
        Bay.update({Bay.active: in_use}).where(Bay.id == bay_id).returning(*Bay.all_columns())
    )
    verb, words = ("bay.reopen", "put back in use") if in_use else ("bay.close", "took out of use")
    await Activity.record(site_id, actor, verb, f"{words} the bay {bay['name']}", "bay", bay_id)
    return saved


async def move_bay(site_id: int, bay_id: int, earlier: bool, actor: Actor) -> None:
    """One place left (earlier) or right on the schedule, among the bays in use; the order
    is written back dense (0, 1, 2…), so two managers moving at once still end in one."""
    # Every bay of the site locked first (one UPDATE): moves are written one at a time.
    await Bay.update({Bay.version: Bay.version + 1}).where(Bay.site == site_id)
    bay = await site_bay(site_id, bay_id)
    rows = await (
        Bay.select(Bay.id, Bay.position)
        .where((Bay.site == site_id) & (Bay.active.eq(True)))
        .order_by(Bay.position)
        .order_by(Bay.id)
    )
    order = [row["id"] for row in rows]
    if bay_id not in order:
        raise DomainError(f"{bay['name']} is not in use: put it back in use first.")
    at = order.index(bay_id)
    to = at - 1 if earlier else at + 1
    if not 0 <= to < len(order):
        return
    order[at], order[to] = order[to], order[at]
    for position, bid in enumerate(order):
        await Bay.update({Bay.position: position}).where(Bay.id == bid)
    where = "left" if earlier else "right"
    summary = f"moved the bay {bay['name']} one place {where}"
    await Activity.record(site_id, actor, "bay.move", summary, "bay", bay_id)
