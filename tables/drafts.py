"""Shared dispatch drafts (seed 000, SPEC §5.1).

Parcels are received at their origin site. A site has at most one *active* draft per
destination, shared by all its dispatchers: they add and remove parcels (adds from
several people merge), set the vehicle and driver (versioned), clear it, or finalise it
into a Dispatch. Drafts are never deleted: they close as finalised, cleared or expired,
which keeps the trail and lets a late finaliser be told who finalised and into which
dispatch.

Concurrency rules, each enforced by the database rather than by luck:
* a parcel is claimed by one conditional UPDATE (status available -> drafted), so of two
  drafts adding the same parcel at once exactly one gets it; a unique index on
  draft_parcel.parcel backs that up;
* the active draft of a (site, destination) is created with INSERT … ON CONFLICT DO
  NOTHING against a partial unique index, so concurrent first adds share one draft;
* finalising flips status active -> finalised with one conditional UPDATE: one winner,
  one dispatch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tables.activity import SYSTEM, Activity
from tables.assets import Asset, site_asset
from tables.base import Actor, DomainError, InvalidInput, StaleVersion, kg, update_versioned
from tables.dispatches import Dispatch, DispatchParcel, new_dispatch
from tables.people import Membership, Site, display_name

CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{2,19}")
MAX_WEIGHT_KG = Decimal(30_000)


class ParcelStatus(StrEnum):
    available = "available"
    drafted = "drafted"
    dispatched = "dispatched"


class DraftStatus(StrEnum):
    active = "active"
    finalised = "finalised"
    cleared = "cleared"
    expired = "expired"


def now() -> datetime:
    return datetime.now(UTC)


def normal_destination(text: str) -> str:
    """One spelling per town, so "eldoret " and "Eldoret" share a draft."""
    return " ".join(text.split()).title()


class Parcel(Table):
    id: Serial
    site = ForeignKey(Site, null=False, index=True)  # where it was received (origin)
    code = Varchar(length=20, unique=True)
    destination = Varchar(length=60)
    description = Varchar(length=300, default="")
    weight_g = Integer()  # grams: exact on SQLite too, where Numeric is a float
    status = Varchar(length=20, choices=ParcelStatus, default=ParcelStatus.available, index=True)
    received_by_name = Varchar(length=150, default="")
    received_at = Timestamptz(default=TimestamptzNow())

    @classmethod
    def validate(cls, code: str, destination: str, description: str, weight: str) -> dict[str, Any]:
        """The values to store, or InvalidInput with a message per field."""
        errors: dict[str, str] = {}
        code = code.strip().upper()
        if not CODE.fullmatch(code):
            errors["code"] = "A code is 3 to 20 letters, digits or dashes, like NBO-0042."
        destination = normal_destination(destination)
        if not destination:
            errors["destination"] = "Enter the destination town."
        elif len(destination) > 60 or not destination.isprintable():
            errors["destination"] = "A destination is a town name of at most 60 characters."
        description = description.strip()
        if len(description) > 300:
            errors["description"] = "A description has at most 300 characters."
        try:
            weight_kg = Decimal(weight.strip().replace(",", ".")) if len(weight) <= 20 else None
        except InvalidOperation:
            weight_kg = None
        # Checked before any arithmetic: "1e999999" is a valid Decimal that overflows.
        in_range = (
            weight_kg is not None and weight_kg.is_finite() and 0 < weight_kg <= MAX_WEIGHT_KG
        )
        grams = round(weight_kg * 1000) if in_range and weight_kg is not None else 0
        if grams < 1:
            # Weights are kept in whole grams: 0.0004 kg would be stored as nothing at all.
            errors["weight"] = (
                f"Enter the weight in kg, at least 0.001 and at most {MAX_WEIGHT_KG:,}."
            )
        if errors:
            raise InvalidInput(errors)
        return {
            "code": code,
            "destination": destination,
            "description": description,
            "weight_g": grams,
        }

    @classmethod
    async def receive(
        cls, site_id: int, actor: Actor, code: str, destination: str, description: str, weight: str
    ) -> Parcel:
        values = cls.validate(code, destination, description, weight)
        if await cls.exists().where(cls.code == values["code"]):
            raise InvalidInput({"code": f"{values['code']} is already registered."})
        parcel = cls(site=site_id, received_by_name=actor.name, **values)
        await parcel.save()
        await Activity.record(
            site_id,
            actor,
            "parcel.receive",
            f"received {parcel.code} for {parcel.destination}",
            "parcel",
            parcel.id,
        )
        return parcel


class Draft(Table):
    id: Serial
    site = ForeignKey(Site, null=False, index=True)
    destination = Varchar(length=60)
    status = Varchar(length=20, choices=DraftStatus, default=DraftStatus.active)
    vehicle = ForeignKey(Asset, null=True)
    driver_name = Varchar(length=100, default="")
    version = Integer(default=1)  # of the vehicle and driver: parcel adds merge instead
    created_by = ForeignKey(BaseUser, null=True)
    created_by_name = Varchar(length=150)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_by_name = Varchar(length=150)
    updated_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(default=TimestamptzNow())
    closed_by_name = Varchar(length=150, default="")
    closed_at = Timestamptz(null=True, default=None)
    dispatch = ForeignKey(Dispatch, null=True)


class DraftParcel(Table):
    id: Serial
    draft = ForeignKey(Draft, null=False, index=True)
    parcel = ForeignKey(Parcel, null=False, unique=True)  # in at most one draft
    added_by = ForeignKey(BaseUser, null=True)
    added_by_name = Varchar(length=150)
    added_at = Timestamptz(default=TimestamptzNow())


@dataclass
class AddResult:
    """What an add did: parcels added per draft, and refusals with their reason."""

    added: dict[int, list[str]] = field(default_factory=dict)  # draft id -> parcel codes
    refused: list[tuple[str, str]] = field(default_factory=list)  # (code or id, why)
    parcel_ids: list[int] = field(default_factory=list)  # the parcels that went in
    created: set[int] = field(default_factory=set)  # drafts this add opened

    @property
    def count(self) -> int:
        return sum(len(codes) for codes in self.added.values())


class AlreadyFinalised(DomainError):
    """The draft was finalised by someone else first: not an error for the user."""

    def __init__(self, by: str, number: str, dispatch_id: int | None) -> None:
        super().__init__(f"Finalised by {by} → {number}")
        self.by = by
        self.number = number
        self.dispatch_id = dispatch_id


async def _record(site_id: int, actor: Actor, verb: str, summary: str, draft_id: int) -> None:
    await Activity.record(site_id, actor, verb, summary, "draft", draft_id)


async def _active_draft(
    site_id: int, destination: str, actor: Actor, ttl: timedelta
) -> tuple[int, bool]:
    """The active draft's id for (site, destination), created if there is none; and
    whether this call created it."""
    stamp = now()
    created = (
        await Draft.insert(
            Draft(
                site=site_id,
                destination=destination,
                created_by=actor.id,
                created_by_name=actor.name,
                updated_by_name=actor.name,
                expires_at=stamp + ttl,
            )
        )
        .on_conflict(action="DO NOTHING")
        .returning(Draft.id)
    )
    if created:
        return created[0]["id"], True
    row = await (
        Draft.select(Draft.id)
        .where(
            (Draft.site == site_id)
            & (Draft.destination == destination)
            & (Draft.status == DraftStatus.active)
        )
        .first()
    )
    assert row is not None
    return row["id"], False


async def _touch(draft_id: int, actor: Actor, ttl: timedelta) -> None:
    stamp = now()
    await Draft.update(
        {Draft.updated_by_name: actor.name, Draft.updated_at: stamp, Draft.expires_at: stamp + ttl}
    ).where(Draft.id == draft_id)


async def _refusal(parcel: dict[str, Any] | None, site_id: int) -> str:
    if parcel is None or parcel["site"] != site_id:
        return "is not a parcel of this branch"
    if parcel["status"] == ParcelStatus.dispatched:
        return "is already dispatched"
    row = await (
        DraftParcel.select(DraftParcel.draft.destination)
        .where(DraftParcel.parcel == parcel["id"])
        .first()
    )
    where = row["draft.destination"] if row else "another"
    return f"is already in the {where} draft"


async def add_parcels(
    site_id: int, parcel_ids: list[int], actor: Actor, ttl: timedelta
) -> AddResult:
    """Put each available parcel into the active draft of its destination.

    Call inside one write transaction. Parcels that cannot be added (another branch's,
    dispatched, already in a draft, unknown) are reported, not raised: the others land.
    """
    result = AddResult()
    ids = sorted(set(parcel_ids))
    claimed = await (
        Parcel.update({Parcel.status: ParcelStatus.drafted})
        .where(
            Parcel.id.is_in(ids or [-1])
            & (Parcel.site == site_id)
            & (Parcel.status == ParcelStatus.available)
        )
        .returning(Parcel.id, Parcel.code, Parcel.destination)
    )
    got = {row["id"] for row in claimed}
    missing = [i for i in ids if i not in got]
    if missing:
        rows = await Parcel.select().where(Parcel.id.is_in(missing))
        by_id = {row["id"]: row for row in rows}
        for parcel_id in missing:
            parcel = by_id.get(parcel_id)
            name = parcel["code"] if parcel and parcel["site"] == site_id else f"#{parcel_id}"
            result.refused.append((name, await _refusal(parcel, site_id)))
    by_destination: dict[str, list[dict[str, Any]]] = {}
    for row in claimed:
        by_destination.setdefault(row["destination"], []).append(row)
    for destination, parcels in sorted(by_destination.items()):
        draft_id, opened = await _active_draft(site_id, destination, actor, ttl)
        if opened:
            result.created.add(draft_id)
        result.parcel_ids.extend(p["id"] for p in parcels)
        await DraftParcel.insert(
            *(
                DraftParcel(
                    draft=draft_id, parcel=p["id"], added_by=actor.id, added_by_name=actor.name
                )
                for p in parcels
            )
        )
        await _touch(draft_id, actor, ttl)
        codes = sorted(p["code"] for p in parcels)
        result.added[draft_id] = codes
        await _record(
            site_id,
            actor,
            "draft.add_parcels",
            f"added {', '.join(codes)} to the {destination} draft",
            draft_id,
        )
    return result


async def add_code(site_id: int, code: str, actor: Actor, ttl: timedelta) -> AddResult:
    """The scan box: add the parcel a typed or scanned code names to its destination's
    draft, or say clearly why not (naming the code, since the box is emptied for the next
    scan). Call inside one write transaction."""
    result = await add_parcels(site_id, [await parcel_id_for_code(site_id, code)], actor, ttl)
    if not result.count:  # lost a race with someone adding it at the same moment
        raise DomainError(f"{code.strip().upper()} {result.refused[0][1]}.", field="code")
    return result


async def parcel_id_for_code(site_id: int, code: str) -> int:
    """A typed or scanned code to the site's parcel, with a clear refusal."""
    code = code.strip().upper()
    if not CODE.fullmatch(code):
        shown = code[:40] + ("…" if len(code) > 40 else "")
        raise DomainError(f"“{shown}” is not a parcel code (like NBO-0042).", field="code")
    parcel = await Parcel.select().where(Parcel.code == code).first()
    if parcel is None or parcel["site"] != site_id:
        raise DomainError(f"No parcel {code} at this branch.", field="code")
    if parcel["status"] != ParcelStatus.available:
        raise DomainError(f"{code} {await _refusal(parcel, site_id)}.", field="code")
    return parcel["id"]


async def _draft(site_id: int, draft_id: int) -> dict[str, Any]:
    """An active draft of the site, or a DomainError saying what became of it."""
    draft = await Draft.select().where((Draft.id == draft_id) & (Draft.site == site_id)).first()
    if draft is None:
        raise DomainError("There is no such draft.")
    if draft["status"] == DraftStatus.finalised:
        number = (
            await Dispatch.select(Dispatch.number).where(Dispatch.id == draft["dispatch"]).first()
            or {}
        ).get("number", "")
        raise AlreadyFinalised(draft["closed_by_name"], number, draft["dispatch"])
    if draft["status"] != DraftStatus.active:
        by = draft["closed_by_name"] or "the system"
        raise DomainError(f"The {draft['destination']} draft was {draft['status']} by {by}.")
    return draft


async def remove_parcel(
    site_id: int, draft_id: int, parcel_id: int, actor: Actor, ttl: timedelta
) -> str:
    """Take a parcel out of a draft; it is available again. Returns its code."""
    draft = await _draft(site_id, draft_id)
    removed = await (
        DraftParcel.delete()
        .where((DraftParcel.draft == draft_id) & (DraftParcel.parcel == parcel_id))
        .returning(DraftParcel.parcel)
    )
    if not removed:
        raise DomainError("That parcel is not in this draft any more.")
    rows = await (
        Parcel.update({Parcel.status: ParcelStatus.available})
        .where(Parcel.id == parcel_id)
        .returning(Parcel.code)
    )
    code = rows[0]["code"]
    await _touch(draft_id, actor, ttl)
    await _record(
        site_id,
        actor,
        "draft.remove_parcel",
        f"removed {code} from the {draft['destination']} draft",
        draft_id,
    )
    return code


async def set_transport(
    site_id: int,
    draft_id: int,
    expected_version: int,
    vehicle_id: int | None,
    driver_name: str,
    actor: Actor,
    ttl: timedelta,
) -> dict[str, Any]:
    """Set the vehicle and driver, if nobody changed them since `expected_version`."""
    draft = await _draft(site_id, draft_id)
    errors: dict[str, str] = {}
    driver_name = " ".join(driver_name.split())
    if len(driver_name) > 100 or not driver_name.isprintable():
        errors["driver"] = "A driver's name has at most 100 characters."
    vehicle = None
    if vehicle_id is not None:
        vehicle = (
            await Asset.select().where((Asset.id == vehicle_id) & (Asset.site == site_id)).first()
        )
        if vehicle is None:
            errors["vehicle"] = "Choose one of this branch's vehicles."
    if errors:
        raise InvalidInput(errors)
    stamp = now()
    try:
        await update_versioned(
            Draft,
            draft_id,
            expected_version,
            {
                "vehicle": vehicle_id,
                "driver_name": driver_name,
                "updated_by_name": actor.name,
                "updated_at": stamp,
                "expires_at": stamp + ttl,
            },
            compare=("vehicle", "driver_name"),
            where=Draft.status == DraftStatus.active,
        )
    except StaleVersion as stale:
        await _draft(site_id, draft_id)  # closed meanwhile: say that instead
        raise StaleVersion(stale.current, await _readable(stale.changes)) from None
    parts = []
    if vehicle_id != draft["vehicle"]:
        parts.append(f"vehicle {vehicle['registration'] if vehicle else 'none'}")
    if driver_name != draft["driver_name"]:
        parts.append(f"driver {driver_name or 'none'}")
    await _record(
        site_id,
        actor,
        "draft.set_transport",
        f"set {' and '.join(parts) or 'no change'} on the {draft['destination']} draft",
        draft_id,
    )
    return await _draft(site_id, draft_id)


async def _readable(changes: dict[str, tuple[Any, Any]]) -> dict[str, tuple[Any, Any]]:
    """A 409's changes as people say them: vehicles by registration, "driver" not
    "driver_name", nothing as "none"."""
    readable: dict[str, tuple[Any, Any]] = {}
    if "vehicle" in changes:
        ids = [i for i in changes["vehicle"] if i]
        rows = await Asset.select(Asset.id, Asset.registration).where(Asset.id.is_in(ids or [-1]))
        names = {row["id"]: row["registration"] for row in rows}
        readable["vehicle"] = tuple(names.get(i, "none") for i in changes["vehicle"])  # type: ignore[assignment]
    if "driver_name" in changes:
        yours, theirs = changes["driver_name"]
        readable["driver"] = (yours or "none", theirs or "none")
    return readable


async def _close(draft: dict[str, Any], status: DraftStatus, by: str) -> bool:
    """Flip an active draft to closed; False if someone else closed it first."""
    closed = await (
        Draft.update({Draft.status: status, Draft.closed_by_name: by, Draft.closed_at: now()})
        .where((Draft.id == draft["id"]) & (Draft.status == DraftStatus.active))
        .returning(Draft.id)
    )
    return bool(closed)


async def _release_parcels(draft_id: int) -> list[dict[str, Any]]:
    released = (
        await DraftParcel.delete()
        .where(DraftParcel.draft == draft_id)
        .returning(DraftParcel.parcel)
    )
    ids = [row["parcel"] for row in released]
    if not ids:
        return []
    rows = await (
        Parcel.update({Parcel.status: ParcelStatus.available})
        .where(Parcel.id.is_in(ids))
        .returning(Parcel.id, Parcel.code)
    )
    return sorted(rows, key=lambda row: row["code"])


async def clear(site_id: int, draft_id: int, actor: Actor) -> list[dict[str, Any]]:
    """Drop a draft for everyone; its parcels become available. Returns them (id, code)."""
    draft = await _draft(site_id, draft_id)
    if not await _close(draft, DraftStatus.cleared, actor.name):
        await _draft(site_id, draft_id)  # raises with what happened instead
    released = await _release_parcels(draft_id)
    await _record(
        site_id,
        actor,
        "draft.clear",
        f"cleared the {draft['destination']} draft ({len(released)} parcels released)",
        draft_id,
    )
    return released


async def finalise(site_id: int, draft_id: int, actor: Actor) -> dict[str, Any]:
    """Turn the draft into a Dispatch carrying its parcels; exactly one finaliser wins.

    The loser gets AlreadyFinalised (who, which dispatch), which the page shows as news,
    not as an error.
    """
    draft = await _draft(site_id, draft_id)
    parcels = await DraftParcel.select(DraftParcel.parcel, DraftParcel.parcel.weight_g).where(
        DraftParcel.draft == draft_id
    )
    errors = {}
    if not parcels:
        errors["parcels"] = "Add at least one parcel before finalising."
    vehicle = None
    if draft["vehicle"] is None:
        errors["vehicle"] = "Choose a vehicle before finalising."
    else:
        vehicle = await Asset.select().where(Asset.id == draft["vehicle"]).first()
    if not draft["driver_name"]:
        errors["driver"] = "Name the driver before finalising."
    if vehicle and vehicle["capacity_kg"]:
        load = sum(p["parcel.weight_g"] for p in parcels)
        over = load - vehicle["capacity_kg"] * 1000
        if over > 0:
            errors["vehicle"] = f"{vehicle['registration']} is over capacity by {kg(over)} kg."
    if errors:
        raise InvalidInput(errors)
    if not await _close(draft, DraftStatus.finalised, actor.name):
        await _draft(site_id, draft_id)  # raises AlreadyFinalised for the second finaliser
    ids = [p["parcel"] for p in parcels]
    # A dispatch like any other: its details from the vehicle's type and make/model, its
    # first history row and event (the trail line is the finalise's, below).
    dispatch = await new_dispatch(
        site_id,
        await site_asset(site_id, draft["vehicle"]),
        actor,
        f"{draft['destination']} run",
        driver_name=draft["driver_name"],
        how=f"finalised from the {draft['destination']} draft ({len(ids)} parcels)",
        trail=False,
    )
    number = dispatch["number"]
    await Draft.update({Draft.dispatch: dispatch["id"]}).where(Draft.id == draft_id)
    await DispatchParcel.insert(*(DispatchParcel(dispatch=dispatch["id"], parcel=i) for i in ids))
    await DraftParcel.delete().where(DraftParcel.draft == draft_id)
    await Parcel.update({Parcel.status: ParcelStatus.dispatched}).where(Parcel.id.is_in(ids))
    # The line is about the dispatch, so the trail links to its manifest.
    await Activity.record(
        site_id,
        actor,
        "draft.finalise",
        f"finalised the {draft['destination']} draft → {number} ({len(ids)} parcels)",
        "dispatch",
        dispatch["id"],
    )
    return {
        "id": dispatch["id"],
        "number": number,
        "parcels": len(ids),
        "parcel_ids": ids,
        "destination": draft["destination"],
    }


async def expire_due(at: datetime | None = None) -> list[dict[str, Any]]:
    """Close every active draft untouched past its expiry and release its parcels.

    Safe to run from several processes at once: each draft is closed by one of them.
    Returns the drafts it expired (with `site`), for publishing.
    """
    due = await (
        Draft.update(
            {
                Draft.status: DraftStatus.expired,
                Draft.closed_by_name: "expiry",
                Draft.closed_at: now(),
            }
        )
        .where((Draft.status == DraftStatus.active) & (Draft.expires_at < (at or now())))
        .returning(Draft.id, Draft.site, Draft.destination)
    )
    for draft in due:
        released = await _release_parcels(draft["id"])
        draft["released"] = [row["id"] for row in released]
        await Activity.record(
            draft["site"],
            SYSTEM,
            "draft.expire",
            f"the {draft['destination']} draft expired ({len(released)} parcels released)",
            "draft",
            draft["id"],
        )
    return due


# -- the drafts page, read in a fixed number of queries whatever the counts ---------------


@dataclass
class DraftParcelView:
    id: int
    code: str
    description: str
    weight_g: int
    added_by: str
    added_at: datetime


@dataclass
class DraftView:
    id: int
    destination: str
    version: int
    vehicle_id: int | None
    vehicle: str  # "KCC 789C · Isuzu NQR", or ""
    capacity_kg: int
    driver: str
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    expires_at: datetime
    parcels: list[DraftParcelView] = field(default_factory=list)
    contributors: list[str] = field(default_factory=list)

    @property
    def load_g(self) -> int:
        return sum(p.weight_g for p in self.parcels)

    @property
    def load_share(self) -> int:
        """Percent of the vehicle's capacity used (0 without a vehicle)."""
        return round(self.load_g / (self.capacity_kg * 10)) if self.capacity_kg else 0

    def others(self, name: str) -> list[str]:
        return [c for c in self.contributors if c != name]


@dataclass
class ParcelView:
    id: int
    code: str
    destination: str
    description: str
    weight_g: int
    status: str
    draft_destination: str = ""


@dataclass
class Board:
    drafts: list[DraftView]


async def board(site_id: int, only: list[int] | None = None) -> Board:
    """The site's active drafts (or just those of `only`) with their parcels and
    contributors, and the site's vehicles: 4 queries for any number of drafts."""
    where = (Draft.site == site_id) & (Draft.status == DraftStatus.active)
    if only is not None:
        where &= Draft.id.is_in(only or [-1])
    drafts = await (
        Draft.select(
            *Draft.all_columns(),
            Draft.vehicle.registration,
            Draft.vehicle.make,
            Draft.vehicle.model,
            Draft.vehicle.capacity_kg,
        )
        .where(where)
        .order_by(Draft.destination)
    )
    ids = [d["id"] for d in drafts] or [-1]
    in_drafts = await (
        DraftParcel.select(
            DraftParcel.draft,
            DraftParcel.parcel,
            DraftParcel.parcel.code,
            DraftParcel.parcel.description,
            DraftParcel.parcel.weight_g,
            DraftParcel.added_by_name,
            DraftParcel.added_at,
        )
        .where(DraftParcel.draft.is_in(ids))
        .order_by(DraftParcel.added_at)
    )
    trail = await (
        Activity.select(Activity.entity_id, Activity.actor_name)
        .where((Activity.entity_type == "draft") & Activity.entity_id.is_in(ids))
        .order_by(Activity.id)
    )
    views: dict[int, DraftView] = {}
    for d in drafts:
        vehicle = (
            f"{d['vehicle.registration']} · {d['vehicle.make']} {d['vehicle.model']}".strip()
            if d["vehicle"]
            else ""
        )
        views[d["id"]] = DraftView(
            id=d["id"],
            destination=d["destination"],
            version=d["version"],
            vehicle_id=d["vehicle"],
            vehicle=vehicle,
            capacity_kg=d["vehicle.capacity_kg"] or 0,
            driver=d["driver_name"],
            created_by=d["created_by_name"],
            created_at=d["created_at"],
            updated_by=d["updated_by_name"],
            updated_at=d["updated_at"],
            expires_at=d["expires_at"],
            contributors=[d["created_by_name"]],
        )
    for row in in_drafts:
        views[row["draft"]].parcels.append(
            DraftParcelView(
                id=row["parcel"],
                code=row["parcel.code"],
                description=row["parcel.description"],
                weight_g=row["parcel.weight_g"],
                added_by=row["added_by_name"],
                added_at=row["added_at"],
            )
        )
    for row in trail:  # contributors: everyone in the draft's history, first come first
        view = views[row["entity_id"]]
        if row["actor_name"] not in view.contributors:
            view.contributors.append(row["actor_name"])
    return Board(list(views.values()))


async def open_draft(site_id: int, draft_id: int) -> DraftView:
    """One active draft of the site, or a DomainError saying what became of it."""
    found = (await board(site_id, only=[draft_id])).drafts
    if not found:
        await _draft(site_id, draft_id)  # raises: finalised by whom, cleared, no such draft
        raise DomainError("There is no such draft.")
    return found[0]


async def parcel_rows(site_id: int, ids: list[int] | None = None) -> list[ParcelView]:
    """The site's parcels not yet dispatched (or just those `ids`), in page order, each
    with the destination of the draft it is in: 2 queries."""
    where = (Parcel.site == site_id) & (Parcel.status != ParcelStatus.dispatched)
    if ids is not None:
        where &= Parcel.id.is_in(ids or [-1])
    rows = await (
        Parcel.select(
            Parcel.id,
            Parcel.code,
            Parcel.destination,
            Parcel.description,
            Parcel.weight_g,
            Parcel.status,
        )
        .where(where)
        .order_by(Parcel.destination)
        .order_by(Parcel.code)
    )
    drafted = [r["id"] for r in rows if r["status"] == ParcelStatus.drafted]
    placed = await DraftParcel.select(DraftParcel.parcel, DraftParcel.draft.destination).where(
        DraftParcel.parcel.is_in(drafted or [-1])
    )
    where_is = {row["parcel"]: row["draft.destination"] for row in placed}
    return [ParcelView(**r, draft_destination=where_is.get(r["id"], "")) for r in rows]


async def vehicles(site_id: int) -> list[dict[str, Any]]:
    return await (
        Asset.select(Asset.id, Asset.registration, Asset.make, Asset.model, Asset.capacity_kg)
        .where((Asset.site == site_id) & (Asset.capacity_kg > 0))
        .order_by(Asset.registration)
    )


async def driver_suggestions(site_id: int) -> list[str]:
    """Names for the driver field: the site's own people, and the drivers its drafts and
    dispatches have used — never another site's."""
    people = await Membership.select(
        Membership.user.username, Membership.user.first_name, Membership.user.last_name
    ).where(Membership.site == site_id)
    names = {
        display_name(p["user.first_name"], p["user.last_name"], p["user.username"]) for p in people
    }
    used = await Draft.select(Draft.driver_name).where(Draft.site == site_id).distinct()
    names |= {row["driver_name"] for row in used}
    driven = await Dispatch.select(Dispatch.driver_name).where(Dispatch.site == site_id).distinct()
    names |= {row["driver_name"] for row in driven}
    return sorted(name for name in names if name)
