"""Dispatches on assets (seed 004; SPEC §5.5).

A dispatch is a work order for one of a site's assets: a readable number (D-00042),
title, description, priority, due time, the assigned person (someone who works at the
site), the asset's location copied when it was made, and a status that follows one
graph only:

    Created → Assigned → In Progress → Completed, and any open status → Cancelled.

Each transition stamps its time (assigned_at, started_at, completed_at, cancelled_at),
adds a status history row (from, to, reason, by, at) and an operational event, and a line
in the site's trail. Cancelling needs a reason; so does a manager's override.

Detail records. What a dispatch carries beyond its own columns lives in detail tables,
one kind per table, made when the dispatch is made: the kinds configured for the asset's
type (`AssetTypeDetailSet`) plus those added for its make/model (`MakeModelDetailSet`),
each once, listed in the master table `DispatchDetail`. A kind is a `DetailKind` in
`DETAIL_KINDS`: its table, its editable fields with their types and limits, what must
hold before the dispatch may enter a status (a truck's pre-trip checklist before "In
Progress"), its cross-field rules and who-signed-when stamps. Adding a kind later is one
table (with `DetailColumns`) and one `register(DetailKind(...))`; creation, saving,
validation, the transition rules and the views all go through the registry.

Rules that protect people: a failed or incomplete requirement (the checklist) refuses
the transition unless a manager overrides it with a reason, and the override is written
into the history; mileage end ≥ start ≥ the asset's last known reading; completing a
dispatch moves the asset's reading on to the mileage at the end.

Concurrency. Every write to a dispatch is one conditional UPDATE of its row (… WHERE
version = ? AND status = ?): of two people moving the same dispatch at once, one wins
and the other gets StaleVersion. A detail save first touches the dispatch row (so on
PostgreSQL it waits for, and is seen by, a transition in flight), then saves the detail
row from its own version. Every public rule runs in one write transaction — its own, or
the caller's when called inside `write_tx()` — and a refusal leaves nothing written.

Every function takes the site's id first and refuses what is not that site's with the
same sentence as an id that does not exist.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import (
    Boolean,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.reference import LazyTableReference
from piccolo.table import Table

from tables.activity import Activity
from tables.assets import (
    METER_MAX,
    Asset,
    AssetType,
    AssetView,
    MakeModel,
    line_of_text,
    site_asset,
    whole_number,
)
from tables.base import Actor, DomainError, InvalidInput, StaleVersion, update_versioned, write_tx
from tables.people import Site, site_member
from tables.values import DATETIME, UNTYPEABLE, row_id, typeable

TITLE_MAX = 200
DESCRIPTION_MAX = 5000
REASON_MAX = 500
NOTES_MAX = 2000
EARLIEST_DUE = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_DUE_YEARS = 10
BULK_MAX = 500
MARKUP = re.compile(r"<\s*[A-Za-z!/?]")  # a tag opening; "load < 5 t" is still fine
PLAIN = "Plain text only: leave out markup like <b> or <script>."


def now() -> datetime:
    return datetime.now(UTC)


class DispatchStatus(StrEnum):
    created = "created"
    assigned = "assigned"
    in_progress = "in_progress"
    completed = "completed"
    cancelled = "cancelled"

    @property
    def word(self) -> str:
        return WORDS[self]


WORDS = {
    DispatchStatus.created: "Created",
    DispatchStatus.assigned: "Assigned",
    DispatchStatus.in_progress: "In Progress",
    DispatchStatus.completed: "Completed",
    DispatchStatus.cancelled: "Cancelled",
}
OPEN = (DispatchStatus.created, DispatchStatus.assigned, DispatchStatus.in_progress)
NEXT: dict[DispatchStatus, tuple[DispatchStatus, ...]] = {
    DispatchStatus.created: (DispatchStatus.assigned, DispatchStatus.cancelled),
    DispatchStatus.assigned: (DispatchStatus.in_progress, DispatchStatus.cancelled),
    DispatchStatus.in_progress: (DispatchStatus.completed, DispatchStatus.cancelled),
    DispatchStatus.completed: (),
    DispatchStatus.cancelled: (),
}
STAMPS = {  # the column each status stamps when a dispatch enters it
    DispatchStatus.assigned: "assigned_at",
    DispatchStatus.in_progress: "started_at",
    DispatchStatus.completed: "completed_at",
    DispatchStatus.cancelled: "cancelled_at",
}


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    critical = "critical"

    @property
    def word(self) -> str:
        return self.value.capitalize()


PRIORITY_ORDER = {p: i for i, p in enumerate(reversed(Priority))}  # critical first


# -- tables ---------------------------------------------------------------------------------


class Dispatch(Table):
    id: Serial
    number = Varchar(length=20, unique=True)  # "D-00042", readable over the radio
    title = Varchar(length=200)
    status = Varchar(length=20, choices=DispatchStatus, default=DispatchStatus.created)
    site = ForeignKey(Site, null=False, index=True)
    # The asset (any type: the name is from the days when only vans were dispatched).
    vehicle = ForeignKey(Asset, null=True)
    driver_name = Varchar(length=100, default="")  # a finalised draft's driver, as typed
    created_by = ForeignKey(BaseUser, null=True)
    created_by_name = Varchar(length=150)
    created_at = Timestamptz(default=TimestamptzNow())
    description = Text(default="")
    priority = Varchar(length=10, choices=Priority, default=Priority.normal)
    assigned_to = ForeignKey(BaseUser, null=True, on_delete=OnDelete.set_null)
    assigned_to_name = Varchar(length=150, default="")
    location = Varchar(length=100, default="")  # the asset's, when the dispatch was made
    due_at = Timestamptz(null=True, default=None)
    assigned_at = Timestamptz(null=True, default=None)
    started_at = Timestamptz(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)
    cancelled_at = Timestamptz(null=True, default=None)
    version = Integer(default=1)  # bumped by every change of the dispatch itself
    updated_by_name = Varchar(length=150, default="")
    updated_at = Timestamptz(null=True, default=None)

    @staticmethod
    def number_for(dispatch_id: int) -> str:
        return f"D-{dispatch_id:05d}"


class DispatchParcel(Table):
    id: Serial
    dispatch = ForeignKey(Dispatch, null=False, index=True)
    parcel: ForeignKey = ForeignKey(
        LazyTableReference("Parcel", module_path="tables.drafts"), null=False, unique=True
    )


class DispatchStatusHistory(Table, tablename="dispatch_status_history"):
    id: Serial
    dispatch = ForeignKey(Dispatch, null=False, index=True)
    from_status = Varchar(length=20, null=True, default=None)  # None: the dispatch was made
    to_status = Varchar(length=20)
    reason = Varchar(length=REASON_MAX, default="")
    override = Boolean(default=False)  # a manager started it despite a requirement
    changed_by = ForeignKey(BaseUser, null=True, on_delete=OnDelete.set_null)
    changed_by_name = Varchar(length=150)
    changed_at = Timestamptz(default=TimestamptzNow())


class EventKind(StrEnum):
    created = "created"
    status = "status"
    detail = "detail"


class DispatchEvent(Table, tablename="dispatch_event"):
    """The operational event log: one at creation, one per status change (linked to its
    history row), one per detail saved."""

    id: Serial
    site = ForeignKey(Site, null=False)
    dispatch = ForeignKey(Dispatch, null=False, index=True)
    history = ForeignKey(DispatchStatusHistory, null=True, on_delete=OnDelete.set_null)
    kind = Varchar(length=20, choices=EventKind)
    summary = Varchar(length=300)
    actor = ForeignKey(BaseUser, null=True, on_delete=OnDelete.set_null)
    actor_name = Varchar(length=150)
    created_at = Timestamptz(default=TimestamptzNow())


class DispatchDetail(Table, tablename="dispatch_detail"):
    """The master list of a dispatch's detail records: one row per kind it carries (unique
    per dispatch and kind, by the migration); the kind's own row points back here."""

    id: Serial
    dispatch = ForeignKey(Dispatch, null=False)
    kind = Varchar(length=40)  # a key of DETAIL_KINDS
    position = Integer(default=0)  # the order they are shown in
    created_at = Timestamptz(default=TimestamptzNow())


class AssetTypeDetailSet(Table, tablename="asset_type_dispatch_detail_set"):
    """Which detail kinds a dispatch of an asset type gets (unique per type and kind)."""

    id: Serial
    asset_type = ForeignKey(AssetType, null=False)
    kind = Varchar(length=40)
    active = Boolean(default=True)


class MakeModelDetailSet(Table, tablename="make_model_dispatch_detail_set"):
    """Detail kinds a make/model adds to its type's (unique per make/model and kind)."""

    id: Serial
    make_model = ForeignKey(MakeModel, null=False)
    kind = Varchar(length=40)
    active = Boolean(default=True)


class DetailColumns:
    """What every detail table has (a mixin: Piccolo copies these columns into each)."""

    dispatch = ForeignKey(Dispatch, null=False, index=True)
    detail = ForeignKey(DispatchDetail, null=False, unique=True)
    version = Integer(default=1)
    updated_by_name = Varchar(length=150, default="")
    updated_at = Timestamptz(null=True, default=None)


class VehicleDispatch(DetailColumns, Table, tablename="vehicle_dispatch"):
    destination_address = Varchar(length=300, default="")
    route_notes = Text(default="")
    fuel_start = Integer(null=True, default=None)  # percent of a full tank
    fuel_end = Integer(null=True, default=None)
    mileage_start = Integer(null=True, default=None)  # km on the odometer
    mileage_end = Integer(null=True, default=None)
    driver_notes = Text(default="")
    passengers = Integer(null=True, default=None)
    safety_check_done = Boolean(default=False)
    safety_check_by = ForeignKey(BaseUser, null=True, on_delete=OnDelete.set_null)
    safety_check_by_name = Varchar(length=150, default="")
    safety_check_at = Timestamptz(null=True, default=None)


class TruckChecklist(DetailColumns, Table, tablename="truck_dispatch_checklist"):
    """The pre-trip checklist. Each check is None (not checked yet), True (passed) or
    False (failed): a failed check is not the same as one nobody looked at."""

    tires = Boolean(null=True, default=None)
    lights = Boolean(null=True, default=None)
    brakes = Boolean(null=True, default=None)
    fluids = Boolean(null=True, default=None)
    safety_equipment = Boolean(null=True, default=None)
    cargo_secured = Boolean(null=True, default=None)
    weight_distribution = Boolean(null=True, default=None)
    manifest_verified = Boolean(null=True, default=None)
    registration_current = Boolean(null=True, default=None)
    insurance_current = Boolean(null=True, default=None)
    permits = Boolean(null=True, default=None)
    notes = Text(default="")
    completed_by = ForeignKey(BaseUser, null=True, on_delete=OnDelete.set_null)
    completed_by_name = Varchar(length=150, default="")
    completed_at = Timestamptz(null=True, default=None)


class ColdChainLog(DetailColumns, Table, tablename="cold_chain_log"):
    """A refrigerated body's log (a make/model addition: reefer trucks only)."""

    setpoint_c = Integer(null=True, default=None)
    pre_cooled = Boolean(default=False)
    temperature_at_loading_c = Integer(null=True, default=None)
    temperature_at_delivery_c = Integer(null=True, default=None)
    notes = Text(default="")


# -- the detail registry --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DetailField:
    """An editable field of a detail kind. `kind`: "line" (one line of text), "text"
    (several lines), "number" (whole, least..most), "flag" (yes/no), "check" (passed,
    failed or not checked)."""

    name: str
    label: str
    kind: str
    most: int = 0  # characters, or the largest number
    least: int = 0
    unit: str = ""


@dataclass(frozen=True, slots=True)
class DetailContext:
    """What a kind's rules may look at besides the row: the dispatch, its asset, who."""

    dispatch: Mapping[str, Any]
    asset: Mapping[str, Any] | None
    actor: Actor
    at: datetime


Row = Mapping[str, Any]
Rule = Callable[[Row, Row, DetailContext], dict[str, str]]  # (before, after) -> errors
Stamp = Callable[[Row, Row, DetailContext], dict[str, Any]]  # (before, after) -> columns
Requirement = Callable[[Row], str | None]  # why not yet, or None


@dataclass(frozen=True)
class DetailKind:
    key: str  # what configuration and the master list store: "truck_checklist"
    label: str  # "Truck pre-trip checklist"
    table: type[Table]
    fields: tuple[DetailField, ...]
    # Before the dispatch may enter a status: the reason it may not yet (None: it may).
    requires: Mapping[DispatchStatus, Requirement] = field(default_factory=dict)
    rules: Rule | None = None  # cross-field rules on the row as it would be saved
    stamp: Stamp | None = None  # who/when columns a save sets
    summary: Callable[[Row], str] | None = None  # a short state for cards and timelines

    def field_named(self, name: str) -> DetailField | None:
        return next((f for f in self.fields if f.name == name), None)

    def problem(self, row: Row, status: DispatchStatus) -> str | None:
        need = self.requires.get(status)
        return need(row) if need else None

    def complete(self, row: Row) -> bool:
        """Nothing it requires for any status is missing."""
        return all(need(row) is None for need in self.requires.values())


DETAIL_KINDS: dict[str, DetailKind] = {}


def register(kind: DetailKind) -> DetailKind:
    """Add a detail kind: its table must have `DetailColumns` (and a migration)."""
    if kind.key in DETAIL_KINDS:
        raise ValueError(f"detail kind {kind.key!r} is registered twice")
    for name in ("dispatch", "detail", "version", "updated_by_name", "updated_at"):
        if name not in {c._meta.name for c in kind.table._meta.columns}:
            raise ValueError(f"{kind.table.__name__} lacks DetailColumns.{name}")
    DETAIL_KINDS[kind.key] = kind
    return kind


def _vehicle_rules(before: Row, after: Row, ctx: DetailContext) -> dict[str, str]:
    errors = {}
    start, end = after["mileage_start"], after["mileage_end"]
    reading = ctx.asset["meter_reading"] if ctx.asset else None
    if start is not None and start != before["mileage_start"] and reading is not None:
        if start < reading:
            errors["mileage_start"] = (
                f"The mileage at the start cannot be below the asset's last reading,"
                f" {reading:,} km."
            )
    if end is not None:
        if start is None:
            errors["mileage_end"] = "Enter the mileage at the start first."
        elif end < start:
            errors["mileage_end"] = (
                f"The mileage at the end cannot be below the start, {start:,} km."
            )
    return errors


def _vehicle_stamp(before: Row, after: Row, ctx: DetailContext) -> dict[str, Any]:
    if after["safety_check_done"] and not before["safety_check_done"]:
        return {
            "safety_check_by": ctx.actor.id or None,
            "safety_check_by_name": ctx.actor.name,
            "safety_check_at": ctx.at,
        }
    if not after["safety_check_done"] and before["safety_check_done"]:
        return {"safety_check_by": None, "safety_check_by_name": "", "safety_check_at": None}
    return {}


def _vehicle_end(row: Row) -> str | None:
    if row["mileage_start"] is not None and row["mileage_end"] is None:
        return "needs the mileage at the end"
    return None


VEHICLE_DISPATCH = register(
    DetailKind(
        key="vehicle_dispatch",
        label="Vehicle dispatch",
        table=VehicleDispatch,
        fields=(
            DetailField("destination_address", "Destination address", "line", 300),
            DetailField("route_notes", "Route notes", "text", NOTES_MAX),
            DetailField("fuel_start", "Fuel at the start", "number", 100, 0, "%"),
            DetailField("fuel_end", "Fuel at the end", "number", 100, 0, "%"),
            DetailField("mileage_start", "Mileage at the start", "number", METER_MAX, 0, "km"),
            DetailField("mileage_end", "Mileage at the end", "number", METER_MAX, 0, "km"),
            DetailField("driver_notes", "Driver's notes", "text", NOTES_MAX),
            DetailField("passengers", "Passengers", "number", 100),
            DetailField("safety_check_done", "Safety check done", "flag"),
        ),
        requires={DispatchStatus.completed: _vehicle_end},
        rules=_vehicle_rules,
        stamp=_vehicle_stamp,
        summary=lambda r: (
            f"{r['mileage_end'] - r['mileage_start']:,} km"
            if r["mileage_start"] is not None and r["mileage_end"] is not None
            else ""
        ),
    )
)

CHECKS = (
    ("tires", "Tires"),
    ("lights", "Lights"),
    ("brakes", "Brakes"),
    ("fluids", "Fluids"),
    ("safety_equipment", "Safety equipment"),
    ("cargo_secured", "Cargo secured"),
    ("weight_distribution", "Weight distribution"),
    ("manifest_verified", "Manifest verified"),
    ("registration_current", "Registration current"),
    ("insurance_current", "Insurance current"),
    ("permits", "Permits"),
)


def checklist_problem(row: Row) -> str | None:
    failed = [label.lower() for name, label in CHECKS if row[name] is False]
    if failed:
        return f"failed its checklist ({', '.join(failed)})"
    if any(row[name] is None for name, _ in CHECKS):
        return "needs a completed checklist"
    return None


def _checklist_stamp(before: Row, after: Row, ctx: DetailContext) -> dict[str, Any]:
    done_before, done = checklist_problem(before) is None, checklist_problem(after) is None
    if done and not done_before:
        return {
            "completed_by": ctx.actor.id or None,
            "completed_by_name": ctx.actor.name,
            "completed_at": ctx.at,
        }
    if done_before and not done:
        return {"completed_by": None, "completed_by_name": "", "completed_at": None}
    return {}


def _checklist_summary(row: Row) -> str:
    passed = sum(1 for name, _ in CHECKS if row[name] is True)
    return checklist_problem(row) or f"{passed} of {len(CHECKS)} passed"


TRUCK_CHECKLIST = register(
    DetailKind(
        key="truck_checklist",
        label="Truck pre-trip checklist",
        table=TruckChecklist,
        fields=(
            *(DetailField(name, label, "check") for name, label in CHECKS),
            DetailField("notes", "Notes", "text", NOTES_MAX),
        ),
        requires={DispatchStatus.in_progress: checklist_problem},
        stamp=_checklist_stamp,
        summary=lambda r: f"{sum(1 for n, _ in CHECKS if r[n] is True)} of {len(CHECKS)} passed",
    )
)


def _cold_chain_rules(before: Row, after: Row, ctx: DetailContext) -> dict[str, str]:
    if after["pre_cooled"] and after["setpoint_c"] is None:
        return {"setpoint_c": "Enter the set point the body was pre-cooled to."}
    return {}


COLD_CHAIN = register(
    DetailKind(
        key="cold_chain",
        label="Cold chain log",
        table=ColdChainLog,
        fields=(
            DetailField("setpoint_c", "Set point", "number", 30, -30, "°C"),
            DetailField("pre_cooled", "Body pre-cooled", "flag"),
            DetailField("temperature_at_loading_c", "At loading", "number", 40, -40, "°C"),
            DetailField("temperature_at_delivery_c", "At delivery", "number", 40, -40, "°C"),
            DetailField("notes", "Notes", "text", NOTES_MAX),
        ),
        requires={
            DispatchStatus.in_progress: lambda r: (
                None if r["pre_cooled"] else "needs the body pre-cooled"
            ),
            DispatchStatus.completed: lambda r: (
                None
                if r["temperature_at_delivery_c"] is not None
                else "needs the temperature at delivery"
            ),
        },
        rules=_cold_chain_rules,
    )
)


def detail_kind(key: str) -> DetailKind:
    kind = DETAIL_KINDS.get(key) if isinstance(key, str) else None
    if kind is None:
        raise DomainError("There is no such detail.", field="kind")
    return kind


# -- errors ---------------------------------------------------------------------------------

NO_DISPATCH = "There is no such dispatch."


class TransitionRefused(DomainError):
    """The status graph or a requirement does not allow this change."""


class DispatchChanged(StaleVersion):
    """Someone changed the dispatch since the version the user saw."""


@dataclass(frozen=True, slots=True)
class ItemResult:
    id: int
    number: str
    ok: bool
    message: str = ""

    def __str__(self) -> str:
        return f"{self.number}: {self.message}" if self.message else self.number


class BulkRefused(DomainError):
    """A bulk change refused as a whole: `results` says, per dispatch, which would have
    gone through and why the others could not. Nothing was changed."""

    def __init__(self, results: list[ItemResult]) -> None:
        refused = [r for r in results if not r.ok]
        super().__init__("Nothing was changed. " + "; ".join(str(r) for r in refused) + ".")
        self.results = results


# -- input ----------------------------------------------------------------------------------


def _plain(read: tuple[str, str]) -> tuple[str, str]:
    """Text read by a reader, refused when it carries markup (dispatch texts are shown on
    tablets, printed and sent out by the API: they are plain text)."""
    text, why = read
    return ("", PLAIN) if not why and MARKUP.search(text) else (text, why)


def _text_block(raw: Any, most: int, called: str) -> tuple[str, str]:
    """Several lines of text, or ("", why not)."""
    if raw is None:
        return "", ""
    if not isinstance(raw, str):
        return "", f"{called} is text."
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    if not typeable(text, multiline=True):
        return "", UNTYPEABLE
    text = text.strip()
    if len(text) > most:
        return "", f"{called} has at most {most:,} characters."
    return text, ""


def parse_due(raw: Any, tz: ZoneInfo, at: datetime | None = None) -> tuple[datetime | None, str]:
    """A due time: a datetime (naive ones are in the site's time zone), or text as a
    datetime-local field sends it (2026-12-31T14:30), or a date (due at its end); from
    2000 to ten years ahead. (None, "") for nothing; (None, why) when it is not one."""
    if raw is None or raw == "":
        return None, ""
    moment: datetime | None = None
    if isinstance(raw, datetime):
        moment = raw if raw.tzinfo else raw.replace(tzinfo=tz)
    elif isinstance(raw, date):
        moment = datetime.combine(raw, time(23, 59), tz)
    elif isinstance(raw, str) and len(raw) <= 40 and typeable(raw):
        text = raw.strip()
        try:
            if DATETIME.fullmatch(text):
                moment = datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=tz)
            elif len(text) == 10:
                moment = datetime.combine(date.fromisoformat(text), time(23, 59), tz)
            else:
                moment = datetime.fromisoformat(text)
                moment = moment if moment.tzinfo else moment.replace(tzinfo=tz)
        except ValueError:
            moment = None
    if moment is None:
        return None, "Enter the due date and time like 2026-12-31 14:30, or leave it empty."
    latest = (at or now()).replace(microsecond=0) + timedelta(days=365 * LATEST_DUE_YEARS)
    # By year first: comparing 0001-01-01 or 9999-12-31 with an offset overflows.
    if moment.year < EARLIEST_DUE.year or moment < EARLIEST_DUE:
        return None, "A due date is in the year 2000 or later."
    if moment.year > latest.year or moment > latest:
        return None, f"A due date is at most {LATEST_DUE_YEARS} years ahead."
    return moment.astimezone(UTC), ""


async def _site_tz(site_id: int) -> ZoneInfo:
    row = await Site.select(Site.timezone).where(Site.id == site_id).first()
    if row is None:
        raise DomainError("There is no such site.")
    return ZoneInfo(row["timezone"])


async def read_dispatch_values(site_id: int, values: Mapping[str, Any]) -> dict[str, Any]:
    """A new dispatch's fields from a form (text) or a JSON body (typed): title,
    description, priority, asset (id), assignee (id or empty), due_at. The values to
    store, or InvalidInput with a message per wrong field, all at once."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    out["title"], why = _plain(
        line_of_text(values.get("title"), TITLE_MAX, "A title", required=True)
    )
    if why:
        errors["title"] = "Give the dispatch a title." if why.endswith("needed.") else why
    out["description"], why = _plain(
        _text_block(values.get("description"), DESCRIPTION_MAX, "A description")
    )
    if why:
        errors["description"] = why
    priority = values.get("priority") or Priority.normal.value
    priority = priority.strip().lower() if isinstance(priority, str) else ""
    if priority not in Priority.__members__:
        errors["priority"] = "Choose a priority: Low, Normal, High or Critical."
    out["priority"] = priority
    try:
        out["asset"] = await site_asset(site_id, values.get("asset"))
    except DomainError as problem:
        errors["asset"] = str(problem)
    out["assignee"] = None
    raw = values.get("assignee")
    if raw not in (None, ""):
        out["assignee"] = await site_member(site_id, row_id(raw))
        if out["assignee"] is None:
            errors["assignee"] = "Choose someone who works at this site, or nobody."
    out["due_at"], why = parse_due(values.get("due_at"), await _site_tz(site_id))
    if why:
        errors["due_at"] = why
    if errors:
        raise InvalidInput(errors)
    return out


def _read_field(spec: DetailField, raw: Any) -> tuple[Any, str]:
    """A detail field's value from a form or JSON, or (None, why not)."""
    if spec.kind == "line":
        return _plain(line_of_text(raw, spec.most, spec.label))
    if spec.kind == "text":
        return _plain(_text_block(raw, spec.most, spec.label))
    if spec.kind == "number":
        if raw is None or raw == "":
            return None, ""
        return whole_number(raw, spec.least, spec.most, spec.label)
    if spec.kind == "flag":
        if isinstance(raw, bool):
            return raw, ""
        if raw is None or (
            isinstance(raw, str) and raw.strip().lower() in ("", "off", "false", "no", "0")
        ):
            return False, ""
        if isinstance(raw, str) and raw.strip().lower() in ("on", "true", "yes", "1"):
            return True, ""
        return None, f"{spec.label}: yes or no."
    if spec.kind == "check":  # passed, failed, or not checked
        if raw is None or isinstance(raw, bool):
            return raw, ""
        text = raw.strip().lower() if isinstance(raw, str) else "?"
        if text in ("", "unchecked", "none", "null"):
            return None, ""
        if text in ("pass", "passed", "ok", "on", "true", "yes", "1"):
            return True, ""
        if text in ("fail", "failed", "false", "no", "0"):
            return False, ""
        return None, f"{spec.label}: passed, failed or not checked."
    raise AssertionError(f"unknown field kind {spec.kind}")


# -- writing --------------------------------------------------------------------------------


async def _record(
    dispatch: Mapping[str, Any],
    actor: Actor,
    kind: EventKind,
    summary: str,
    history_id: int | None = None,
    at: datetime | None = None,
    trail: bool = True,
) -> None:
    """The dispatch's event and (unless the caller writes its own) the site's trail line."""
    await DispatchEvent.insert(
        DispatchEvent(
            site=dispatch["site"],
            dispatch=dispatch["id"],
            history=history_id,
            kind=kind,
            summary=summary[:300],
            actor=actor.id or None,
            actor_name=actor.name,
            created_at=at or now(),
        )
    )
    if not trail:
        return
    await Activity.record(
        dispatch["site"],
        actor,
        f"dispatch.{kind.value}",
        f"{dispatch['number']}: {summary}",
        "dispatch",
        dispatch["id"],
    )


async def _history(
    dispatch_id: int,
    from_status: str | None,
    to_status: str,
    actor: Actor,
    at: datetime,
    reason: str = "",
    override: bool = False,
) -> int:
    rows = await DispatchStatusHistory.insert(
        DispatchStatusHistory(
            dispatch=dispatch_id,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            override=override,
            changed_by=actor.id or None,
            changed_by_name=actor.name,
            changed_at=at,
        )
    ).returning(DispatchStatusHistory.id)
    return rows[0]["id"]


async def configured_kinds(asset_type_id: int | None, make_model_id: int | None) -> list[str]:
    """The detail kinds a dispatch of this type and make/model gets: the type's active
    ones, then those its make/model adds, each once, in registry order within each."""
    order = list(DETAIL_KINDS)
    by_type = await AssetTypeDetailSet.select(AssetTypeDetailSet.kind).where(
        (AssetTypeDetailSet.asset_type == (asset_type_id or -1))
        & AssetTypeDetailSet.active.eq(True)
    )
    by_model = await MakeModelDetailSet.select(MakeModelDetailSet.kind).where(
        (MakeModelDetailSet.make_model == (make_model_id or -1))
        & MakeModelDetailSet.active.eq(True)
    )
    kinds: list[str] = []
    for rows in (by_type, by_model):
        for key in sorted((r["kind"] for r in rows if r["kind"] in DETAIL_KINDS), key=order.index):
            if key not in kinds:
                kinds.append(key)
    return kinds


async def new_dispatch(
    site_id: int,
    asset: AssetView,
    actor: Actor,
    title: str,
    *,
    description: str = "",
    priority: str = Priority.normal,
    assignee: Mapping[str, Any] | None = None,
    due_at: datetime | None = None,
    driver_name: str = "",
    how: str = "",
    trail: bool = True,
) -> dict[str, Any]:
    """Make a dispatch from values already checked (create_dispatch's and a finalised
    draft's): its number, exactly the details its asset's type and make/model configure,
    the first history row, the creation event (worded by `how`) and a trail line (unless
    `trail` is False: the caller records its own). Call inside a write transaction."""
    stamp = now()
    rows = await Dispatch.insert(
        Dispatch(
            number=f"new-{uuid.uuid4().hex[:16]}",  # unique until the id is known
            title=title,
            description=description,
            priority=priority,
            status=DispatchStatus.created,
            site=site_id,
            vehicle=asset.id,
            driver_name=driver_name,
            assigned_to=assignee["id"] if assignee else None,
            assigned_to_name=assignee["name"] if assignee else "",
            location=asset.location,
            due_at=due_at,
            created_by=actor.id or None,
            created_by_name=actor.name,
            created_at=stamp,
            updated_by_name=actor.name,
            updated_at=stamp,
        )
    ).returning(Dispatch.id)
    dispatch_id = rows[0]["id"]
    number = Dispatch.number_for(dispatch_id)
    saved = await (
        Dispatch.update({Dispatch.number: number})
        .where(Dispatch.id == dispatch_id)
        .returning(*Dispatch._meta.columns)
    )
    dispatch = saved[0]
    kinds = await configured_kinds(asset.type_id, asset.make_model_id)
    for position, key in enumerate(kinds):
        master = await DispatchDetail.insert(
            DispatchDetail(dispatch=dispatch_id, kind=key, position=position, created_at=stamp)
        ).returning(DispatchDetail.id)
        table = DETAIL_KINDS[key].table
        await table.insert(table(dispatch=dispatch_id, detail=master[0]["id"]))
    history = await _history(dispatch_id, None, DispatchStatus.created, actor, stamp)
    summary = how or f"created for {asset.registration}"
    await _record(dispatch, actor, EventKind.created, summary, history, stamp, trail)
    return dispatch


async def create_dispatch(site_id: int, values: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    """A new dispatch of one of the site's assets (see `read_dispatch_values` for
    `values`). Returns its row; InvalidInput for every wrong field at once."""
    async with write_tx():
        checked = await read_dispatch_values(site_id, values)
        asset = checked["asset"]
        return await new_dispatch(
            site_id,
            asset,
            actor,
            checked["title"],
            description=checked["description"],
            priority=checked["priority"],
            assignee=checked["assignee"],
            due_at=checked["due_at"],
            how=f"created “{checked['title']}” for {asset.registration}",
        )


async def _dispatch(site_id: int, dispatch_id: Any) -> dict[str, Any]:
    wanted = row_id(dispatch_id)
    if wanted is None or row_id(site_id) is None:
        raise DomainError(NO_DISPATCH, field="dispatch")
    row = await (
        Dispatch.select().where((Dispatch.id == wanted) & (Dispatch.site == site_id)).first()
    )
    if row is None:
        raise DomainError(NO_DISPATCH, field="dispatch")
    return row


def _status(value: Any) -> DispatchStatus:
    text = value.strip().lower().replace(" ", "_") if isinstance(value, str) else ""
    if text not in DispatchStatus.__members__:
        raise InvalidInput(
            {"to": "Choose a status: Created, Assigned, In Progress, Completed or Cancelled."}
        )
    return DispatchStatus(text)


def graph_problem(current: str, to: DispatchStatus, assigned: bool) -> str | None:
    """Why the graph does not allow current -> to (None: it does)."""
    here = DispatchStatus(current)
    if to == here:
        return f"is already {here.word}"
    if not NEXT[here]:
        return f"is {here.word}: it can no longer change"
    if to not in NEXT[here]:
        allowed = " or ".join(s.word for s in NEXT[here])
        return f"cannot go from {here.word} to {to.word} (only to {allowed})"
    if to == DispatchStatus.assigned and not assigned:
        return "has nobody assigned: choose who does it first"
    return None


async def _requirements(dispatch_ids: list[int], to: DispatchStatus) -> dict[int, list[str]]:
    """Per dispatch, what its details still need before it may enter `to`: one query per
    kind that has a requirement for that status."""
    problems: dict[int, list[str]] = {}
    for kind in DETAIL_KINDS.values():
        if to not in kind.requires:
            continue
        dispatch_col: Any = kind.table._meta.get_column_by_name("dispatch")
        rows = await kind.table.select().where(dispatch_col.is_in(dispatch_ids or [-1]))
        for row in rows:
            why = kind.problem(row, to)
            if why:
                problems.setdefault(row["dispatch"], []).append(why)
    return problems


@dataclass(frozen=True, slots=True)
class _Plan:
    dispatch: dict[str, Any]
    to: DispatchStatus
    blocked: list[str]  # requirements not met (overridden when `override`)


def _check_reason(to: DispatchStatus, reason: Any, override: bool) -> str:
    text, why = _plain(line_of_text(reason, REASON_MAX, "A reason"))
    if why:
        raise InvalidInput({"reason": why})
    if not text and to == DispatchStatus.cancelled:
        raise InvalidInput({"reason": "Say why the dispatch is cancelled."})
    if not text and override:
        raise InvalidInput({"reason": "Say why you override."})
    return text


async def _apply(plan: _Plan, actor: Actor, reason: str, override: bool) -> dict[str, Any]:
    """Write one planned transition from the version it was planned on."""
    row, to = plan.dispatch, plan.to
    stamp = now()
    values: dict[Any, Any] = {
        Dispatch.status: to,
        Dispatch.version: Dispatch.version + 1,
        Dispatch.updated_by_name: actor.name,
        Dispatch.updated_at: stamp,
        Dispatch._meta.get_column_by_name(STAMPS[to]): stamp,
    }
    saved = await (
        Dispatch.update(values)
        .where(
            (Dispatch.id == row["id"])
            & (Dispatch.version == row["version"])
            & (Dispatch.status == row["status"])
        )
        .returning(*Dispatch._meta.columns)
    )
    if not saved:
        current = await Dispatch.select().where(Dispatch.id == row["id"]).first()
        assert current is not None
        raise DispatchChanged(current, {"status": (to.value, current["status"])})
    overridden = override and bool(plan.blocked)
    history = await _history(
        row["id"], row["status"], to, actor, stamp, reason, override=overridden
    )
    summary = f"{DispatchStatus(row['status']).word} → {to.word}"
    if overridden:
        summary += f", overriding: {'; '.join(plan.blocked)}"
    if reason:
        summary += f" ({reason})"
    await _record(saved[0], actor, EventKind.status, summary, history, stamp)
    if to == DispatchStatus.completed:
        await _advance_meter(row)
    return saved[0]


async def _advance_meter(dispatch: Mapping[str, Any]) -> None:
    """The asset's last known reading moves on to the dispatch's mileage at the end
    (never back: a later trip may have been recorded first)."""
    if dispatch["vehicle"] is None:
        return
    detail = await (
        VehicleDispatch.select(VehicleDispatch.mileage_end)
        .where(VehicleDispatch.dispatch == dispatch["id"])
        .first()
    )
    end = detail["mileage_end"] if detail else None
    if end is None:
        return
    await Asset.update({Asset.meter_reading: end}).where(
        (Asset.id == dispatch["vehicle"])
        & (Asset.meter_reading.is_null() | (Asset.meter_reading < end))
    )


def _blocked(plan_blocked: list[str], override: bool, manager: bool) -> str | None:
    if not plan_blocked:
        return None
    if override and manager:
        return None
    why = "; ".join(plan_blocked)
    if override:
        return f"{why} (only a manager can override)"
    return why


async def transition(
    site_id: int,
    dispatch_id: Any,
    to: Any,
    actor: Actor,
    version: Any,
    reason: Any = "",
    override: bool = False,
    manager: bool = False,
) -> dict[str, Any]:
    """Move a dispatch along the graph from the `version` the user saw. A reason is
    needed to cancel, and to override; a requirement of its details (a truck's checklist
    before In Progress) refuses the move unless a manager overrides with a reason, which
    the history records. Returns the dispatch's row. TransitionRefused (why),
    InvalidInput (reason, to), DispatchChanged (someone was first)."""
    target = _status(to)
    text = _check_reason(target, reason, override)
    seen = row_id(version)
    async with write_tx():
        row = await _dispatch(site_id, dispatch_id)
        if seen is None or seen != row["version"]:
            raise DispatchChanged(row, {"status": (target.value, row["status"])})
        why = graph_problem(row["status"], target, row["assigned_to"] is not None)
        if why:
            raise TransitionRefused(f"{row['number']} {why}.", field="to")
        blocked = (await _requirements([row["id"]], target)).get(row["id"], [])
        refusal = _blocked(blocked, override, manager)
        if refusal:
            raise TransitionRefused(f"{row['number']} {refusal}.", field="to")
        return await _apply(_Plan(row, target, blocked), actor, text, override)


async def bulk_transition(
    site_id: int,
    dispatch_ids: Iterable[Any],
    to: Any,
    actor: Actor,
    versions: Mapping[int, int] | None = None,
    reason: Any = "",
    override: bool = False,
    manager: bool = False,
) -> list[dict[str, Any]]:
    """Move every one of the dispatches, or none: BulkRefused with a result per
    dispatch ("D-00041: needs a completed checklist") when any one may not move, and
    nothing changed. `versions` (id -> the version the user saw) refuses those changed
    since. Returns the rows, in the order given."""
    target = _status(to)
    text = _check_reason(target, reason, override)
    wanted = [row_id(i) for i in dispatch_ids]
    if not wanted:
        raise InvalidInput({"dispatches": "Tick at least one dispatch."})
    if len(wanted) > BULK_MAX:
        raise InvalidInput({"dispatches": f"At most {BULK_MAX} dispatches at once."})
    if any(i is None for i in wanted):
        raise InvalidInput({"dispatches": NO_DISPATCH})
    ids = list(dict.fromkeys(i for i in wanted if i is not None))
    async with write_tx():
        rows = await Dispatch.select().where(Dispatch.id.is_in(ids) & (Dispatch.site == site_id))
        by_id = {r["id"]: r for r in rows}
        blocked = await _requirements(list(by_id), target)
        results: list[ItemResult] = []
        plans: list[_Plan] = []
        for dispatch_id in ids:
            row = by_id.get(dispatch_id)
            if row is None:
                results.append(ItemResult(dispatch_id, f"#{dispatch_id}", False, NO_DISPATCH))
                continue
            seen = versions.get(dispatch_id) if versions is not None else row["version"]
            why = graph_problem(row["status"], target, row["assigned_to"] is not None)
            if seen != row["version"]:
                why = f"was changed by {row['updated_by_name'] or 'someone'} meanwhile"
            why = why or _blocked(blocked.get(dispatch_id, []), override, manager)
            results.append(ItemResult(dispatch_id, row["number"], why is None, why or ""))
            plans.append(_Plan(row, target, blocked.get(dispatch_id, [])))
        if not all(r.ok for r in results):
            raise BulkRefused(results)
        saved = []
        for plan in plans:
            try:
                saved.append(await _apply(plan, actor, text, override))
            except DispatchChanged:  # changed between the read and the write: all or nothing
                results = [
                    r if r.id != plan.dispatch["id"] else
                    ItemResult(r.id, r.number, False, "was changed by someone else meanwhile")
                    for r in results
                ]  # fmt: skip
                raise BulkRefused(results) from None
        return saved


async def assign(
    site_id: int, dispatch_id: Any, assignee: Any, actor: Actor, version: Any
) -> dict[str, Any]:
    """Give an open dispatch to someone who works at the site, from the `version` the user
    saw; a Created one becomes Assigned (with its history row and event)."""
    seen = row_id(version)
    async with write_tx():
        row = await _dispatch(site_id, dispatch_id)
        person = await site_member(site_id, row_id(assignee))
        if person is None:
            raise InvalidInput({"assignee": "Choose someone who works at this site."})
        if row["status"] not in OPEN:
            word = DispatchStatus(row["status"]).word
            raise TransitionRefused(
                f"{row['number']} is {word}: it can no longer change.", field="assignee"
            )
        stamp = now()
        try:
            saved = await update_versioned(
                Dispatch,
                row["id"],
                seen or 0,
                {
                    "assigned_to": person["id"],
                    "assigned_to_name": person["name"],
                    "updated_by_name": actor.name,
                    "updated_at": stamp,
                },
                compare=("assigned_to_name",),
            )
        except StaleVersion as stale:
            raise DispatchChanged(stale.current, stale.changes) from None
        await _record(saved, actor, EventKind.detail, f"assigned to {person['name']}", at=stamp)
        if saved["status"] == DispatchStatus.created:
            return await _apply(
                _Plan(saved, DispatchStatus.assigned, []), actor, "", override=False
            )
        return saved


async def update_detail(
    site_id: int,
    dispatch_id: Any,
    kind: str,
    values: Mapping[str, Any],
    version: Any,
    actor: Actor,
) -> dict[str, Any]:
    """Save the fields of one of a dispatch's details that `values` names (others keep
    theirs; names that are not its fields are ignored), from the detail's `version` the
    user saw. InvalidInput per wrong field (limits, mileage end ≥ start ≥ the asset's
    last reading); StaleVersion when someone saved first; refused once the dispatch is
    completed or cancelled. Returns the detail's row."""
    spec = detail_kind(kind)
    seen = row_id(version)
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {}
    for name, raw in values.items():
        field_spec = spec.field_named(name)
        if field_spec is None:
            continue
        value, why = _read_field(field_spec, raw)
        if why:
            errors[name] = why
        changes[name] = value
    if errors:
        raise InvalidInput(errors)
    async with write_tx():
        stamp = now()
        touched = await (
            Dispatch.update({Dispatch.updated_at: stamp})  # waits for a transition in flight
            .where((Dispatch.id == (row_id(dispatch_id) or -1)) & (Dispatch.site == site_id))
            .returning(*Dispatch._meta.columns)
        )
        if not touched:
            raise DomainError(NO_DISPATCH, field="dispatch")
        dispatch = touched[0]
        if dispatch["status"] not in OPEN:
            word = DispatchStatus(dispatch["status"]).word
            raise DomainError(f"{dispatch['number']} is {word}: its details are final.")
        table = spec.table
        dispatch_col: Any = table._meta.get_column_by_name("dispatch")
        before = await table.select().where(dispatch_col == dispatch["id"]).first()
        if before is None:
            raise DomainError(f"{dispatch['number']} has no {spec.label.lower()}.", field="kind")
        after = {**before, **changes}
        asset = None
        if dispatch["vehicle"] is not None:
            asset = await Asset.select().where(Asset.id == dispatch["vehicle"]).first()
        context = DetailContext(dispatch, asset, actor, stamp)
        errors = spec.rules(before, after, context) if spec.rules else {}
        if errors:
            raise InvalidInput(errors)
        stamped = spec.stamp(before, after, context) if spec.stamp else {}
        saved = await update_versioned(
            table,
            before["id"],
            seen or 0,
            {**changes, **stamped, "updated_by_name": actor.name, "updated_at": stamp},
            compare=tuple(changes),
        )
        changed = [
            spec.field_named(n).label.lower()  # type: ignore[union-attr]
            for n in changes
            if before[n] != saved[n]
        ]
        if changed:
            summary = f"{spec.label}: {', '.join(changed)}"
            if spec.summary and (state := spec.summary(saved)):
                summary += f" — {state}"
            await _record(dispatch, actor, EventKind.detail, summary, at=stamp)
        return saved


async def set_detail_kind(
    kind: str, active: bool, *, asset_type_id: int | None = None, make_model_id: int | None = None
) -> None:
    """Configure a detail kind for an asset type or (as an addition) a make/model, or
    switch it off. Affects dispatches made from now on. Call inside a write transaction."""
    key = detail_kind(kind).key
    if asset_type_id is not None:
        found = await (
            AssetTypeDetailSet.update({AssetTypeDetailSet.active: active})
            .where(
                (AssetTypeDetailSet.asset_type == asset_type_id) & (AssetTypeDetailSet.kind == key)
            )
            .returning(AssetTypeDetailSet.id)
        )
        if not found:
            await AssetTypeDetailSet.insert(
                AssetTypeDetailSet(asset_type=asset_type_id, kind=key, active=active)
            )
    elif make_model_id is not None:
        found = await (
            MakeModelDetailSet.update({MakeModelDetailSet.active: active})
            .where(
                (MakeModelDetailSet.make_model == make_model_id) & (MakeModelDetailSet.kind == key)
            )
            .returning(MakeModelDetailSet.id)
        )
        if not found:
            await MakeModelDetailSet.insert(
                MakeModelDetailSet(make_model=make_model_id, kind=key, active=active)
            )
    else:
        raise DomainError("Choose an asset type or a make and model.")


# -- reading --------------------------------------------------------------------------------


@dataclass
class DispatchCard:
    """A dispatch as a card or a list row shows it."""

    id: int
    number: str
    title: str
    status: str
    priority: str
    version: int
    asset_id: int | None
    asset: str  # "KCC 789C · Isuzu NQR"
    asset_type: str  # "Truck"
    assignee_id: int | None
    assignee: str
    location: str
    due_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    overdue: bool
    needs: list[str] = field(default_factory=list)  # what blocks its next step

    @property
    def status_word(self) -> str:
        return DispatchStatus(self.status).word

    @property
    def priority_word(self) -> str:
        return Priority(self.priority).word

    @property
    def next_status(self) -> DispatchStatus | None:
        """The next step forward on the graph (None when closed)."""
        forward = [s for s in NEXT[DispatchStatus(self.status)] if s != DispatchStatus.cancelled]
        return forward[0] if forward else None


def _card_columns() -> tuple[Any, ...]:
    return (
        Dispatch.id,
        Dispatch.number,
        Dispatch.title,
        Dispatch.status,
        Dispatch.priority,
        Dispatch.version,
        Dispatch.vehicle,
        Dispatch.assigned_to,
        Dispatch.assigned_to_name,
        Dispatch.location,
        Dispatch.due_at,
        Dispatch.created_at,
        Dispatch.started_at,
        Dispatch.completed_at,
        Dispatch.vehicle.registration.as_alias("registration"),
        Dispatch.vehicle.make.as_alias("make"),
        Dispatch.vehicle.model.as_alias("model"),
        Dispatch.vehicle.name.as_alias("asset_name"),
        Dispatch.vehicle._.type._.name.as_alias("asset_type"),
    )


def _card(row: Mapping[str, Any], at: datetime) -> DispatchCard:
    what = MakeModel.label_of(row["make"] or "", row["model"] or "") or row["asset_name"] or ""
    asset = f"{row['registration']} · {what}" if row["registration"] and what else ""
    due = row["due_at"]
    return DispatchCard(
        id=row["id"],
        number=row["number"],
        title=row["title"],
        status=row["status"],
        priority=row["priority"],
        version=row["version"],
        asset_id=row["vehicle"],
        asset=asset or (row["registration"] or ""),
        asset_type=row["asset_type"] or "",
        assignee_id=row["assigned_to"],
        assignee=row["assigned_to_name"],
        location=row["location"],
        due_at=due,
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        overdue=due is not None and due < at and row["status"] in OPEN,
    )


def _urgency(card: DispatchCard) -> tuple[int, datetime, int]:
    far = datetime.max.replace(tzinfo=UTC)
    return (PRIORITY_ORDER[Priority(card.priority)], card.due_at or far, card.id)


async def _with_needs(cards: list[DispatchCard]) -> list[DispatchCard]:
    """Fill each open card's `needs` for its next step: one query per detail kind with a
    requirement, whatever the number of cards."""
    by_next: dict[DispatchStatus, list[int]] = {}
    for card in cards:
        if card.next_status is not None:
            by_next.setdefault(card.next_status, []).append(card.id)
    wanted = {c.id: c for c in cards}
    for kind in DETAIL_KINDS.values():
        statuses = [s for s in kind.requires if s in by_next]
        if not statuses:
            continue
        ids = [i for s in statuses for i in by_next[s]]
        dispatch_col: Any = kind.table._meta.get_column_by_name("dispatch")
        for row in await kind.table.select().where(dispatch_col.is_in(ids)):
            card = wanted[row["dispatch"]]
            assert card.next_status is not None
            why = kind.problem(row, card.next_status)
            if why:
                card.needs.append(why)
    return cards


@dataclass
class BoardFilters:
    priority: str = ""
    asset: int | None = None
    assignee: int | None = None

    @classmethod
    def of(cls, values: Mapping[str, Any] | BoardFilters | None) -> BoardFilters:
        if isinstance(values, BoardFilters):
            return values
        values = values or {}
        priority = values.get("priority")
        priority = priority.strip().lower() if isinstance(priority, str) else ""
        return cls(
            priority=priority if priority in Priority.__members__ else "",
            asset=row_id(values.get("asset")),
            assignee=row_id(values.get("assignee")),
        )

    def where(self) -> Any:
        condition: Any = None
        parts = []
        if self.priority:
            parts.append(Dispatch.priority == self.priority)
        if self.asset is not None:
            parts.append(Dispatch.vehicle == self.asset)
        if self.assignee is not None:
            parts.append(Dispatch.assigned_to == self.assignee)
        for part in parts:
            condition = part if condition is None else condition & part
        return condition

    @property
    def active(self) -> bool:
        return bool(self.priority or self.asset or self.assignee)


@dataclass
class StatusColumn:
    status: str
    cards: list[DispatchCard] = field(default_factory=list)

    @property
    def word(self) -> str:
        return DispatchStatus(self.status).word


@dataclass
class StatusBoard:
    columns: list[StatusColumn]
    filters: BoardFilters
    overdue: int

    @property
    def cards(self) -> list[DispatchCard]:
        return [c for column in self.columns for c in column.cards]


async def status_board(
    site_id: int,
    filters: Mapping[str, Any] | BoardFilters | None = None,
    at: datetime | None = None,
    only: list[int] | None = None,
) -> StatusBoard:
    """The site's open dispatches in a column per open status, most urgent first
    (priority, then due time), with asset, assignee, overdue and what blocks each one's
    next step — or just those `only` names, for redrawing them. 1 query, plus one per
    detail kind with a requirement, for any number of dispatches."""
    at = at or now()
    chosen = BoardFilters.of(filters)
    where: Any = (Dispatch.site == site_id) & Dispatch.status.is_in(list(OPEN))
    if (extra := chosen.where()) is not None:
        where &= extra
    if only is not None:
        where &= Dispatch.id.is_in([i for i in only if row_id(i)] or [-1])
    rows = await Dispatch.select(*_card_columns()).where(where)
    cards = await _with_needs([_card(r, at) for r in rows])
    columns = {s: StatusColumn(s.value) for s in OPEN}
    for card in sorted(cards, key=_urgency):
        columns[DispatchStatus(card.status)].cards.append(card)
    return StatusBoard(
        columns=list(columns.values()),
        filters=chosen,
        overdue=sum(1 for c in cards if c.overdue),
    )


async def my_dispatches(
    site_id: int, user_id: int, at: datetime | None = None
) -> list[DispatchCard]:
    """The open dispatches assigned to someone at a site, most urgent first, each with
    its next step and what blocks it."""
    at = at or now()
    rows = await Dispatch.select(*_card_columns()).where(
        (Dispatch.site == site_id)
        & (Dispatch.assigned_to == user_id)
        & Dispatch.status.is_in(list(OPEN))
    )
    return sorted(await _with_needs([_card(r, at) for r in rows]), key=_urgency)


async def asset_dispatches(
    site_id: int, asset_id: Any, at: datetime | None = None
) -> list[DispatchCard]:
    """Every dispatch of one of the site's assets, newest first: 2 queries."""
    asset = await site_asset(site_id, asset_id)
    at = at or now()
    rows = await (
        Dispatch.select(*_card_columns())
        .where((Dispatch.site == site_id) & (Dispatch.vehicle == asset.id))
        .order_by(Dispatch.id, ascending=False)
    )
    return [_card(r, at) for r in rows]


@dataclass
class DetailView:
    id: int  # the kind's row
    kind: str
    label: str
    version: int
    fields: tuple[DetailField, ...]
    values: dict[str, Any]
    row: dict[str, Any]
    problems: dict[str, str]  # status -> what it still needs for it
    summary: str

    @property
    def complete(self) -> bool:
        return not self.problems


@dataclass
class TimelineEntry:
    at: datetime
    kind: str  # "created", "status", "detail"
    by: str
    summary: str
    from_status: str | None = None
    to_status: str | None = None
    reason: str = ""
    override: bool = False


@dataclass
class DispatchView:
    card: DispatchCard
    description: str
    driver_name: str
    created_by: str
    assigned_at: datetime | None
    cancelled_at: datetime | None
    details: list[DetailView]
    timeline: list[TimelineEntry]
    parcels: int

    def detail(self, kind: str) -> DetailView | None:
        return next((d for d in self.details if d.kind == kind), None)


async def details_of(dispatch_id: int) -> list[DetailView]:
    """A dispatch's details in the master list's order: 1 query for the list plus 1 per
    kind it carries."""
    master = await (
        DispatchDetail.select()
        .where(DispatchDetail.dispatch == dispatch_id)
        .order_by(DispatchDetail.position)
        .order_by(DispatchDetail.id)
    )
    views = []
    for entry in master:
        kind = DETAIL_KINDS.get(entry["kind"])
        if kind is None:  # a kind since unregistered: its rows stay, unshown
            continue
        detail_col: Any = kind.table._meta.get_column_by_name("detail")
        row = await kind.table.select().where(detail_col == entry["id"]).first()
        if row is None:
            continue
        problems = {s.value: why for s in kind.requires if (why := kind.problem(row, s))}
        views.append(
            DetailView(
                id=row["id"],
                kind=kind.key,
                label=kind.label,
                version=row["version"],
                fields=kind.fields,
                values={f.name: row[f.name] for f in kind.fields},
                row=row,
                problems=problems,
                summary=kind.summary(row) if kind.summary else "",
            )
        )
    return views


async def timeline_of(dispatch_id: int) -> list[TimelineEntry]:
    """The status history merged with the events, in the order they happened: each
    history row with its event as one entry, other events (details saved, assigned) as
    their own. 2 queries."""
    history = await DispatchStatusHistory.select().where(
        DispatchStatusHistory.dispatch == dispatch_id
    )
    events = await DispatchEvent.select().where(DispatchEvent.dispatch == dispatch_id)
    told = {e["history"]: e for e in events if e["history"] is not None}
    entries: list[tuple[datetime, int, int, TimelineEntry]] = []
    for h in history:
        event = told.get(h["id"])
        entries.append(
            (
                h["changed_at"],
                event["id"] if event else 0,
                0,
                TimelineEntry(
                    at=h["changed_at"],
                    kind=event["kind"] if event else EventKind.status.value,
                    by=h["changed_by_name"],
                    summary=event["summary"] if event else "",
                    from_status=h["from_status"],
                    to_status=h["to_status"],
                    reason=h["reason"],
                    override=bool(h["override"]),
                ),
            )
        )
    for e in events:
        if e["history"] is None:
            entry = TimelineEntry(e["created_at"], e["kind"], e["actor_name"], e["summary"])
            entries.append((e["created_at"], e["id"], 1, entry))
    return [entry for *_, entry in sorted(entries, key=lambda t: t[:3])]


async def dispatch_view(site_id: int, dispatch_id: Any, at: datetime | None = None) -> DispatchView:
    """One of the site's dispatches as its page shows it: the card, its details with
    what each still needs, and its timeline."""
    wanted = row_id(dispatch_id)
    row = None
    if wanted is not None:
        row = await (
            Dispatch.select(
                *_card_columns(),
                Dispatch.description,
                Dispatch.driver_name,
                Dispatch.created_by_name,
                Dispatch.assigned_at,
                Dispatch.cancelled_at,
            )
            .where((Dispatch.id == wanted) & (Dispatch.site == site_id))
            .first()
        )
    if row is None:
        raise DomainError(NO_DISPATCH, field="dispatch")
    (card,) = await _with_needs([_card(row, at or now())])
    return DispatchView(
        card=card,
        description=row["description"],
        driver_name=row["driver_name"],
        created_by=row["created_by_name"],
        assigned_at=row["assigned_at"],
        cancelled_at=row["cancelled_at"],
        details=await details_of(row["id"]),
        timeline=await timeline_of(row["id"]),
        parcels=await DispatchParcel.count().where(DispatchParcel.dispatch == row["id"]),
    )


@dataclass
class Average:
    label: str
    dispatches: int
    seconds: int  # the mean time from creation to completion, rounded to the second


@dataclass
class Report:
    start: datetime
    end: datetime
    by_status: dict[str, int]  # of the dispatches created in the period, every status
    by_asset_type: list[Average]  # of those completed in the period
    by_priority: list[Average]
    completed: int


def _mean(total: int, count: int) -> int:
    """Integer mean rounded half up: exact, whatever the engine."""
    return (2 * total + count) // (2 * count)


async def report(site_id: int, start: datetime, end: datetime) -> Report:
    """Counts by status of the dispatches created in [start, end), and the average time
    to complete — creation to completion, in whole seconds — by asset type and by
    priority of those completed in it. 2 queries; sums are of integer seconds."""
    if end <= start:
        raise InvalidInput({"end": "The period must end after it starts."})
    created = await Dispatch.select(Dispatch.status).where(
        (Dispatch.site == site_id) & (Dispatch.created_at >= start) & (Dispatch.created_at < end)
    )
    by_status = {s.value: 0 for s in DispatchStatus}
    for row in created:
        by_status[row["status"]] += 1
    done = await Dispatch.select(
        Dispatch.created_at,
        Dispatch.completed_at,
        Dispatch.priority,
        Dispatch.vehicle._.type._.name.as_alias("asset_type"),
    ).where(
        (Dispatch.site == site_id)
        & (Dispatch.status == DispatchStatus.completed)
        & (Dispatch.completed_at >= start)
        & (Dispatch.completed_at < end)
    )
    types: dict[str, list[int]] = {}
    priorities: dict[str, list[int]] = {}
    for row in done:
        delta = row["completed_at"] - row["created_at"]
        seconds = delta.days * 86_400 + delta.seconds  # whole seconds, exactly
        for table, key in ((types, row["asset_type"] or "—"), (priorities, row["priority"])):
            table.setdefault(key, [0, 0])
            table[key][0] += seconds
            table[key][1] += 1
    return Report(
        start=start,
        end=end,
        by_status=by_status,
        by_asset_type=[
            Average(name, n, _mean(total, n)) for name, (total, n) in sorted(types.items())
        ],
        by_priority=[
            Average(Priority(p).word, priorities[p][1], _mean(*priorities[p]))
            for p in Priority
            if p.value in priorities
        ],
        completed=len(done),
    )
