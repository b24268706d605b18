"""Demo data (SPEC §2): the same rows on every fresh start, loaded by one idempotent loader.

Areas add their own rows by appending a loader to `AREA_LOADERS`; each receives the `Demo`
record of what the foundation made and must itself be idempotent (look up before insert).

    python demo.py            load what is missing
    python demo.py --reset    delete everything and load afresh
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.apps.user.tables import BaseUser
from piccolo.table import Table
from piccolo_api.session_auth.tables import SessionsBase

import demo_tokens
from tables.activity import Activity
from tables.apitokens import ApiToken
from tables.appointments import (
    Appointment,
    Bay,
    Status,
    change_status,
    check_in,
    create_appointment,
    today,
)
from tables.assets import (
    Asset,
    AssetType,
    MakeModel,
    create_asset,
    ensure_asset_type,
    ensure_make_model,
)
from tables.base import Actor, write_tx
from tables.boards import (
    WAITING_PARTS,
    Board,
    BoardColumn,
    Comment,
    Ticket,
    add_comment,
    create_board,
    create_ticket,
    move_ticket,
)
from tables.dispatches import (
    CHECKS,
    AssetTypeDetailSet,
    ColdChainLog,
    Dispatch,
    DispatchDetail,
    DispatchEvent,
    DispatchParcel,
    DispatchStatusHistory,
    MakeModelDetailSet,
    TruckChecklist,
    VehicleDispatch,
    create_dispatch,
    set_detail_kind,
    transition,
    update_detail,
)
from tables.drafts import Draft, DraftParcel, Parcel, add_parcels, set_transport
from tables.notices import SiteNotice
from tables.orgs import Account, OrgActivity
from tables.people import Membership, Organisation, Role, Site, SiteKind, slug_from_name
from tables.stocktakes import (
    Adjustment,
    AppliedCount,
    Item,
    Movement,
    Stocktake,
    StocktakeLine,
    add_movement,
    approve,
    count_line,
    create_stocktake,
    lines_by_id,
    populate,
    stocktake_view,
)

PASSWORD = "demo"

ORGANISATIONS = ["Demo Logistics", "Other Co"]

SITES = [
    # slug, organisation, name, kind, time zone
    ("nairobi", "Demo Logistics", "Nairobi Branch", SiteKind.branch, "Africa/Nairobi"),
    ("nakuru", "Demo Logistics", "Nakuru Branch", SiteKind.branch, "Africa/Nairobi"),
    (
        "killarney",
        "Demo Logistics",
        "Killarney Hotel Bar & Kitchen",
        SiteKind.hotel,
        "Europe/Dublin",
    ),
    ("workshop", "Demo Logistics", "Westlands Auto Workshop", SiteKind.workshop, "Africa/Nairobi"),
    ("other", "Other Co", "Other Co Depot", SiteKind.depot, "Europe/London"),
]

USERS = [
    # username, first, last, memberships [(site, role)], platform operator?
    ("alice", "Alice", "Wanjiru", [("nairobi", Role.dispatcher)], False),
    ("bob", "Bob", "Wilson", [("nairobi", Role.dispatcher)], False),
    ("charlie", "Charlie", "Smith", [("nairobi", Role.dispatcher)], False),
    ("dana", "Dana", "Kiprop", [("nakuru", Role.dispatcher)], False),
    ("erin", "Erin", "O'Sullivan", [("killarney", Role.staff)], False),
    ("frank", "Frank", "Mutua", [("workshop", Role.staff)], False),
    (
        "admin",
        "Ada",
        "Manager",
        [(s, Role.manager) for s in ("nairobi", "nakuru", "killarney", "workshop")],
        False,
    ),
    ("oscar", "Oscar", "Other", [("other", Role.manager)], False),
    ("ops", "Platform", "Operator", [], True),
]


@dataclass
class Demo:
    """What the foundation loaded, by natural key, for the area loaders to build on."""

    organisations: dict[str, int] = field(default_factory=dict)
    sites: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)


NAMES = {username: f"{first} {last}" for username, first, last, *_ in USERS}

# -- drafts (SPEC §5.1) ---------------------------------------------------------------

VEHICLES = [  # the drafts' vehicles (load_assets makes them, with the other assets)
    # site, registration, make, model, capacity kg
    ("nairobi", "KCC 789C", "Isuzu", "NQR", 3500),
    ("nairobi", "KBZ 123A", "Toyota", "Hiace", 1200),
    ("nairobi", "KDA 456B", "Mitsubishi", "Canter", 3000),
    ("nakuru", "KCB 321D", "Isuzu", "NPR", 2500),
]
GOODS = [
    "Spare parts",
    "Documents",
    "Textiles",
    "Electronics",
    "Medical supplies",
    "Books",
    "Seeds",
    "Kitchenware",
    "Tyres",
    "Solar panel",
]


def demo_parcels(prefix: str, towns: list[str], count: int) -> list[tuple[str, str, str, str]]:
    """(code, destination, description, weight kg) — the same list on every start."""
    return [
        (
            f"{prefix}-{i:04d}",
            towns[(i - 1) % len(towns)],
            GOODS[(i * 3) % len(GOODS)],
            f"{2 + (i * 37) % 180 / 4:.1f}",
        )
        for i in range(1, count + 1)
    ]


async def load_drafts(demo: Demo) -> None:
    """Vehicles, parcels, and a draft in progress at each courier branch."""
    async with write_tx(Parcel._meta.db):  # the vehicles are load_assets'
        batches = [
            (
                "nairobi",
                "alice",
                demo_parcels("NBO", ["Eldoret", "Kisumu", "Mombasa", "Nakuru"], 40),
            ),
            ("nakuru", "dana", demo_parcels("NKR", ["Nairobi", "Eldoret", "Naivasha"], 12)),
        ]
        for slug, receiver, parcels in batches:
            actor = Actor(demo.users[receiver], NAMES[receiver])
            for code, town, what, weight in parcels:
                if not await Parcel.exists().where(Parcel.code == code):
                    await Parcel.receive(demo.sites[slug], actor, code, town, what, weight)
    for slug, who, town, codes, registration, driver in [
        ("nairobi", "alice", "Kisumu", ["NBO-0002", "NBO-0006"], "KBZ 123A", "Peter Otieno"),
        ("nakuru", "dana", "Nairobi", ["NKR-0001", "NKR-0004"], "KCB 321D", "Grace Njeri"),
    ]:
        site_id = demo.sites[slug]
        if await Draft.exists().where((Draft.site == site_id) & (Draft.destination == town)):
            continue
        user = (
            await BaseUser.select(BaseUser.first_name, BaseUser.last_name)
            .where(BaseUser.id == demo.users[who])
            .first()
        )
        assert user is not None
        actor = Actor(demo.users[who], f"{user['first_name']} {user['last_name']}")
        ids = [p["id"] for p in await Parcel.select(Parcel.id).where(Parcel.code.is_in(codes))]
        async with write_tx(Parcel._meta.db):
            added = await add_parcels(site_id, ids, actor, DRAFT_TTL)
            draft_id = next(iter(added.added))
            vehicle = await Asset.select(Asset.id).where(Asset.registration == registration).first()
            assert vehicle is not None
            await set_transport(site_id, draft_id, 1, vehicle["id"], driver, actor, DRAFT_TTL)


DRAFT_TTL = timedelta(hours=24)

# -- assets and dispatches (SPEC §5.5) --------------------------------------------------

ASSET_TYPES = [("vehicle", "Vehicle"), ("truck", "Truck"), ("forklift", "Forklift")]
# asset type key -> its makes/models; the reefer truck adds a cold chain log
MAKE_MODELS = {
    "vehicle": [("Toyota", "Hiace"), ("Toyota", "Probox")],
    "truck": [
        ("Isuzu", "NQR"),
        ("Isuzu", "NPR"),
        ("Mitsubishi", "Canter"),
        ("Isuzu", "FRR Reefer"),
    ],
    "forklift": [("Toyota", "8FBE20")],
}
TYPE_DETAILS = {"vehicle": ["vehicle_dispatch"], "truck": ["vehicle_dispatch", "truck_checklist"]}
MODEL_DETAILS = {("Isuzu", "FRR Reefer"): ["cold_chain"]}
TYPE_OF = {"Hiace": "vehicle", "Probox": "vehicle", "8FBE20": "forklift"}  # else a truck
ASSETS = [
    # site, registration or tag, make, model, capacity kg, location, last reading km
    *((*v, "Nairobi depot, yard A", 84_000 + 9_000 * i) for i, v in enumerate(VEHICLES)),
    ("nairobi", "KDB 777R", "Isuzu", "FRR Reefer", 5000, "Nairobi depot, cold bay", 41_250),
    ("nairobi", "KCX 218T", "Toyota", "Probox", 450, "Nairobi depot, yard B", 132_900),
    ("nairobi", "FL-01", "Toyota", "8FBE20", 0, "Nairobi warehouse", None),  # lifts, not a van
    ("nakuru", "KCD 654E", "Toyota", "Hiace", 1200, "Nakuru depot", 57_300),
    ("nakuru", "KDC 990W", "Mitsubishi", "Canter", 3000, "Nakuru depot", 23_800),
    ("nakuru", "FL-02", "Toyota", "8FBE20", 0, "Nakuru warehouse", None),
]
DISPATCH_TITLES = [
    "Eldoret express",
    "Kisumu pick-up",
    "Mombasa road freight",
    "Naivasha flowers (chilled)",
    "Thika spare parts",
    "Airport documents",
    "Machakos medical supplies",
    "Nyeri school books",
    "Load the Kisumu container",
    "Nanyuki solar panels",
    "Kericho tea samples",
    "Returns to the Westlands shop",
]
# site, statuses (in order of age: the oldest first), who they are assigned to
DISPATCH_PLAN = [
    (
        "nairobi",
        ["completed"] * 8 + ["cancelled"] * 3 + ["in_progress"] * 6
        + ["assigned"] * 7 + ["created"] * 6,
        ["alice", "bob", "charlie", "admin"],
    ),
    (
        "nakuru",
        ["completed"] * 3 + ["cancelled"] + ["in_progress"] * 2 + ["assigned"] * 2
        + ["created"] * 2,
        ["dana", "admin"],
    ),
]  # fmt: skip
PRIORITIES = ["normal", "high", "low", "normal", "critical", "normal", "high"]
STEPS = {  # minutes after creation a status was entered
    "assigned": 25,
    "in_progress": 70,
    "cancelled": 45,
}


async def load_assets(demo: Demo) -> None:
    """Demo Logistics' asset types, makes/models and detail sets, and the assets at
    nairobi and nakuru (the drafts' vehicles among them)."""
    organisation = demo.organisations["Demo Logistics"]
    async with write_tx(Asset._meta.db):
        types = {key: await ensure_asset_type(organisation, key, name) for key, name in ASSET_TYPES}
        models = {
            (make, model): await ensure_make_model(types[key], make, model)
            for key, pairs in MAKE_MODELS.items()
            for make, model in pairs
        }
        for key, kinds in TYPE_DETAILS.items():
            for kind in kinds:
                await set_detail_kind(kind, True, asset_type_id=types[key])
        for pair, kinds in MODEL_DETAILS.items():
            for kind in kinds:
                await set_detail_kind(kind, True, make_model_id=models[pair])
        for slug, registration, make, model, capacity, location, reading in ASSETS:
            if await Asset.exists().where(Asset.registration == registration):
                continue
            await create_asset(
                demo.sites[slug],
                {
                    "asset_type": types[TYPE_OF.get(model, "truck")],
                    "make_model": models[(make, model)],
                    "registration": registration,
                    "name": f"{make} {model}",
                    "location": location,
                    "meter_reading": reading,
                    "capacity_kg": capacity,
                },
            )


async def _detail_version(dispatch_id: int, table: type[Table]) -> int | None:
    dispatch_col: Any = table._meta.get_column_by_name("dispatch")
    row = await table.select().where(dispatch_col == dispatch_id).first()
    return row["version"] if row else None


async def _fill_for(site_id: int, dispatch: dict, status: str, trip: int, actor: Actor) -> None:
    """What the driver records on the way to `status`: a passed checklist, the mileage
    (from the asset's reading on), the reefer's log."""
    reached = DISPATCH_ORDER.index(status)
    if (version := await _detail_version(dispatch["id"], TruckChecklist)) is not None:
        if reached >= DISPATCH_ORDER.index("in_progress"):
            checks = {name: "pass" for name in (name for name, _ in CHECKS)}
            await update_detail(site_id, dispatch["id"], "truck_checklist", checks, version, actor)
    if (version := await _detail_version(dispatch["id"], ColdChainLog)) is not None:
        values = {"setpoint_c": "3", "pre_cooled": "on", "temperature_at_loading_c": "4"}
        if status == "completed":
            values["temperature_at_delivery_c"] = "5"
        if reached >= DISPATCH_ORDER.index("in_progress"):
            await update_detail(site_id, dispatch["id"], "cold_chain", values, version, actor)
    if (version := await _detail_version(dispatch["id"], VehicleDispatch)) is not None:
        asset = (
            await Asset.select(Asset.meter_reading).where(Asset.id == dispatch["vehicle"]).first()
        )
        start = (asset["meter_reading"] if asset else 0) or 0
        values = {"destination_address": dispatch["title"].split(" ")[0] + " town centre"}
        if reached >= DISPATCH_ORDER.index("in_progress"):
            values |= {
                "mileage_start": str(start + 3),
                "fuel_start": "80",
                "safety_check_done": "on",
            }
        if status == "completed":
            values |= {"mileage_end": str(start + 3 + trip), "fuel_end": "35", "passengers": "1"}
        await update_detail(site_id, dispatch["id"], "vehicle_dispatch", values, version, actor)


DISPATCH_ORDER = ["created", "assigned", "in_progress", "completed"]


async def _backdate(
    dispatch_id: int, created: datetime, minutes_to_complete: int, due: datetime
) -> None:
    """Spread a demo dispatch's history over real time, as if it had happened: created at
    `created`, each later status at its usual minutes after (completion after
    `minutes_to_complete`), its events with its history rows."""
    at = {
        "created": created,
        **{s: created + timedelta(minutes=m) for s, m in STEPS.items()},
        "completed": created + timedelta(minutes=minutes_to_complete),
    }
    for row in await DispatchStatusHistory.select().where(
        DispatchStatusHistory.dispatch == dispatch_id
    ):
        when = at[row["to_status"]]
        await DispatchStatusHistory.update({DispatchStatusHistory.changed_at: when}).where(
            DispatchStatusHistory.id == row["id"]
        )
        await DispatchEvent.update({DispatchEvent.created_at: when}).where(
            DispatchEvent.history == row["id"]
        )
    await DispatchEvent.update(
        {DispatchEvent.created_at: at["assigned"] + timedelta(minutes=5)}
    ).where((DispatchEvent.dispatch == dispatch_id) & DispatchEvent.history.is_null())
    stamps: dict[Any, Any] = {
        Dispatch.created_at: created,
        Dispatch.updated_at: created,
        Dispatch.due_at: due,
    }
    current = await Dispatch.select().where(Dispatch.id == dispatch_id).first()
    assert current is not None
    for status, column in (
        ("assigned", Dispatch.assigned_at),
        ("in_progress", Dispatch.started_at),
        ("completed", Dispatch.completed_at),
        ("cancelled", Dispatch.cancelled_at),
    ):
        if current[column._meta.name] is not None:
            stamps[column] = at[status]
            stamps[Dispatch.updated_at] = max(stamps[Dispatch.updated_at], at[status])
    await Dispatch.update(stamps).where(Dispatch.id == dispatch_id)


async def load_dispatches(demo: Demo) -> None:
    """~40 dispatches at nairobi and nakuru in every status, made and moved through the
    rules (details filled in as drivers would), then spread over the last days: some
    overdue, one truck started on a manager's override, one stopped by a failed brake
    check."""
    manager = Actor(demo.users["admin"], NAMES["admin"])
    stamp = datetime.now(UTC)
    n = 0
    for slug, statuses, people in DISPATCH_PLAN:
        site_id = demo.sites[slug]
        if await Dispatch.exists().where(
            (Dispatch.site == site_id) & Dispatch.title.is_in(DISPATCH_TITLES)
        ):
            continue
        assets = [
            a["id"]
            for a in await Asset.select(Asset.id)
            .where((Asset.site == site_id) & Asset.make_model.model.not_in(["8FBE20"]))
            .order_by(Asset.registration)
        ]
        for i, status in enumerate(statuses):
            who = Actor(demo.users[people[i % len(people)]], NAMES[people[i % len(people)]])
            created = stamp - timedelta(hours=4 * (len(statuses) - i) + 1)
            async with write_tx(Dispatch._meta.db):
                dispatch = await create_dispatch(
                    site_id,
                    {
                        "title": DISPATCH_TITLES[n % len(DISPATCH_TITLES)],
                        "description": "Call the consignee an hour ahead." if n % 3 == 0 else "",
                        "priority": PRIORITIES[n % len(PRIORITIES)],
                        "asset": assets[n % len(assets)],
                        "assignee": str(who.id) if status != "created" else "",
                    },
                    manager,
                )
                version = dispatch["version"]
                overridden = status == "in_progress" and i == statuses.index("in_progress")
                reach = status if status in DISPATCH_ORDER else "assigned"  # then cancelled
                for step in DISPATCH_ORDER[1 : DISPATCH_ORDER.index(reach) + 1]:
                    if not overridden or step != "in_progress":
                        await _fill_for(site_id, dispatch, step, 40 + (n * 37) % 300, who)
                    moved = await transition(
                        site_id,
                        dispatch["id"],
                        step,
                        manager if overridden and step == "in_progress" else who,
                        version,
                        reason="Checklist on paper: the tablet was flat."
                        if overridden and step == "in_progress"
                        else "",
                        override=overridden and step == "in_progress",
                        manager=True,
                    )
                    version = moved["version"]
                if status == "cancelled":
                    await transition(
                        site_id, dispatch["id"], "cancelled", manager, version,
                        reason="The customer postponed the delivery.",
                    )  # fmt: skip
                if status == "assigned" and i == statuses.index("assigned"):
                    checklist = await _detail_version(dispatch["id"], TruckChecklist)
                    if checklist is not None:  # a failed brake check keeps it in the yard
                        await update_detail(
                            site_id, dispatch["id"], "truck_checklist",
                            {"tires": "pass", "lights": "pass", "brakes": "fail"}, checklist, who,
                        )  # fmt: skip
                # Due later today or tomorrow; one in five already overdue.
                due = (
                    created + timedelta(hours=3)
                    if n % 5 == 0
                    else stamp + timedelta(hours=2 + (n * 7) % 30)
                )
                await _backdate(dispatch["id"], created, 90 + (n * 53) % 600, due)
            n += 1


# -- boards (SPEC §5.2, §5.3) ------------------------------------------------------------

OPS_TASKS = [
    "Fix the label printer at the counter",
    "Chase Mombasa about the missing manifest",
    "Renew KCC 789C's insurance",
    "Order more 40x30 boxes",
    "Train Peter on the scanner",
    "Call the Kisumu agent about late pick-ups",
    "Replace the loading bay light",
    "Update the Eldoret price list",
    "Check the Hiace's tyre pressure",
    "Count the returns shelf",
    "Book the Canter's service",
    "Reply to the Nakuru complaint",
    "Tidy the parcel cage",
    "Set up the new tablet at dispatch",
    "Archive last month's load sheets",
]
OPS_COLUMNS = [("todo", 24), ("in_progress", 14), ("review", 8), ("done", 14)]
OPS_COMMENTS = [
    "I'll take this one after lunch.",
    "Spoke to them: they promise it by Friday.",
    "Needs a manager's sign-off first.",
    "Done on my side, please check.",
    "The supplier is out of stock until next week.",
]

VEHICLES_IN = ["KCA 123A", "KBX 442M", "KDG 908T", "KCU 771P", "KDA 310Z", "KBT 065Q"]
CUSTOMERS = [
    "Jane Muthoni",
    "Otieno Motors",
    "Grace Achieng",
    "Kamau & Sons",
    "Fatuma Ali",
    "Sunrise Tours",
    "David Kiptoo",
]
SERVICES = [
    "Full service",
    "Brake pads and discs",
    "Clutch replacement",
    "Wheel alignment",
    "Timing belt",
    "Suspension bushes",
    "Diagnostics: engine light",
    "Air-con regas",
]
PARTS = ["Brake discs (Toyota)", "Clutch kit", "Timing belt kit", "Rear shock absorbers"]
# column key, jobs, hours in the column for each (the thresholds are 24 h amber, 72 h red)
JOB_COLUMNS = [
    ("estimates", [2, 30, 8, 80, 26]),  # within its WIP limit of 6
    ("in_progress", [4, 28, 75, 6, 12, 50]),  # 6 jobs against a WIP limit of 4
    (WAITING_PARTS, [20, 40, 90, 10, 60, 3]),
    ("completed", [1, 2, 3, 5, 8, 9, 14, 20, 30, 40, 50, 60, 70]),
]


def _local(at: datetime, tz: ZoneInfo) -> str:
    """A moment as a datetime-local field sends it, in the site's time zone."""
    return at.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


async def _board_named(site_id: int, name: str) -> bool:
    return await Board.exists().where((Board.site == site_id) & (Board.name == name))


async def load_boards(demo: Demo) -> None:
    """Nairobi's "Ops tickets" board and the workshop's "Workflow" board, through the
    board rules, then with time in column set back so the ageing colours show."""
    people = {u: Actor(demo.users[u], NAMES[u]) for u in ("alice", "bob", "charlie", "frank")}
    people["admin"] = Actor(demo.users["admin"], NAMES["admin"])
    nairobi, workshop = demo.sites["nairobi"], demo.sites["workshop"]
    today = datetime.now(UTC).date()
    if not await _board_named(nairobi, "Ops tickets"):
        dispatchers = [people["alice"], people["bob"], people["charlie"]]
        async with write_tx(Board._meta.db):
            board = await create_board(nairobi, "Ops tickets", "tickets", people["alice"])
            columns = await _column_ids(board["id"])
            n = 0
            for key, count in OPS_COLUMNS:
                for _ in range(count):
                    who = dispatchers[n % 3]
                    values = {
                        "title": OPS_TASKS[n % len(OPS_TASKS)],
                        "description": "Raised at the morning briefing." if n % 4 == 0 else "",
                        "priority": ("normal", "high", "low", "urgent", "normal")[n % 5],
                        "assignee": str(dispatchers[(n + 1) % 3].id) if n % 3 else "",
                        "due_date": str(today + timedelta(days=n % 9 - 2)) if n % 2 else "",
                    }
                    card = await create_ticket(nairobi, board["id"], columns[key], values, who)
                    if n % 4 == 1:
                        for i in range(1 + n % 3):
                            author = dispatchers[(n + i + 1) % 3]
                            text = OPS_COMMENTS[(n + i) % len(OPS_COMMENTS)]
                            await add_comment(nairobi, card["id"], text, author)
                    n += 1
    if not await _board_named(workshop, "Workflow"):
        tz = ZoneInfo("Africa/Nairobi")
        staff = [people["frank"], people["admin"]]
        stamp = datetime.now(UTC)
        async with write_tx(Board._meta.db):
            board = await create_board(workshop, "Workflow", "workflow", people["admin"])
            columns = await _column_ids(board["id"])
            n = 0
            for key, ages in JOB_COLUMNS:
                for hours in ages:
                    due_out = stamp + timedelta(hours=(n * 7) % 60 - 12)  # some passed
                    values = {
                        "title": SERVICES[n % len(SERVICES)],
                        "vehicle_registration": VEHICLES_IN[n % len(VEHICLES_IN)],
                        "customer": CUSTOMERS[n % len(CUSTOMERS)],
                        "service": SERVICES[n % len(SERVICES)],
                        "due_out_at": _local(due_out, tz),
                        "priority": "high" if n % 5 == 0 else "normal",
                        "assignee": str(people["frank"].id) if n % 2 else "",
                    }
                    if key == WAITING_PARTS:
                        values["parts_reason"] = PARTS[n % len(PARTS)]
                        values["parts_eta"] = _local(stamp + timedelta(hours=20 + n * 5), tz)
                    card = await create_ticket(
                        workshop, board["id"], columns[key], values, staff[n % 2]
                    )
                    entered = stamp - timedelta(hours=hours)
                    await Ticket.update(
                        {Ticket.entered_column_at: entered, Ticket.created_at: entered}
                    ).where(Ticket.id == card["id"])
                    n += 1


async def _column_ids(board_id: int) -> dict[str, int]:
    rows = await BoardColumn.select(BoardColumn.key, BoardColumn.id).where(
        BoardColumn.board == board_id
    )
    return {row["key"]: row["id"] for row in rows}


# -- appointments (SPEC §5.2) -------------------------------------------------------------

BAYS = ["Bay 1", "Bay 2", "Bay 3"]
# day (0 today, 1 tomorrow), bay, start, minutes, customer, registration, make and model,
# service, the status it ends in (a checked-in one has its card in Estimates; in-progress
# and done ones were checked in too, and their cards moved along with them)
BOOKINGS = [
    (0, 0, "08:00", 60, "Jane Muthoni", "KCA 123A", "Toyota Fielder", "Full service", "done"),
    (0, 0, "09:30", 90, "Otieno Motors", "KBX 442M", "Isuzu D-Max", "Brake pads and discs",
     "in_progress"),
    (0, 0, "11:30", 60, "Grace Achieng", "KDG 908T", "Mazda Demio", "Wheel alignment",
     "scheduled"),
    (0, 0, "14:00", 120, "Kamau & Sons", "KCU 771P", "Toyota Probox", "Clutch replacement",
     "scheduled"),
    (0, 1, "08:00", 90, "Fatuma Ali", "KDA 310Z", "Nissan Note", "Timing belt", "done"),
    (0, 1, "10:00", 60, "Sunrise Tours", "KBT 065Q", "Toyota Hiace", "Air-con regas",
     "checked_in"),
    (0, 1, "11:00", 60, "David Kiptoo", "KCE 502L", "Subaru Forester", "Diagnostics: engine light",
     "cancelled"),
    (0, 1, "11:30", 60, "Mary Wambui", "KDC 118H", "Honda Fit", "Full service", "scheduled"),
    (0, 1, "15:00", 90, "Peter Njoroge", "KCS 777B", "Toyota Hilux", "Suspension bushes",
     "scheduled"),
    (0, 2, "08:30", 60, "Ahmed Hassan", "KBY 230C", "Nissan X-Trail", "Wheel alignment",
     "no_show"),
    (0, 2, "10:30", 120, "Lucy Chebet", "KDE 941K", "VW Polo", "Brake pads and discs",
     "scheduled"),
    (0, 2, "13:00", 60, "Otieno Motors", "KCQ 415F", "Isuzu NPR", "Full service", "scheduled"),
    (0, 2, "15:30", 90, "Samuel Mwangi", "KCM 066D", "Mitsubishi Pajero", "Timing belt",
     "scheduled"),
    (1, 0, "09:00", 120, "Grace Achieng", "KDG 908T", "Mazda Demio", "Clutch replacement",
     "scheduled"),
    (1, 1, "10:00", 60, "Jane Muthoni", "KCA 123A", "Toyota Fielder", "Air-con regas",
     "scheduled"),
    (1, 2, "14:00", 90, "Kamau & Sons", "KBZ 660G", "Toyota Land Cruiser", "Full service",
     "scheduled"),
]  # fmt: skip
PHONES = ["+254 712 345 678", "0722 100 200", "+254 733 555 010", ""]
# Where each status's card ends up on the workflow board.
CARD_COLUMNS = {"in_progress": "in_progress", "done": "completed"}


async def load_appointments(demo: Demo) -> None:
    """The workshop's three bays and a day of bookings in every status (today in the
    site's time zone, as of the load), plus a few tomorrow, through the appointment
    rules: check-ins make their cards on the "Workflow" board."""
    workshop = demo.sites["workshop"]
    if not await Bay.exists().where(Bay.site == workshop):
        await Bay.insert(
            *(Bay(site=workshop, name=name, position=i) for i, name in enumerate(BAYS))
        )
    if await Appointment.exists().where(Appointment.site == workshop):
        return
    tz = ZoneInfo("Africa/Nairobi")
    day = today(tz)
    bays = [
        b["id"] for b in await Bay.select(Bay.id).where(Bay.site == workshop).order_by(Bay.position)
    ]
    staff = [Actor(demo.users["admin"], NAMES["admin"]), Actor(demo.users["frank"], NAMES["frank"])]
    async with write_tx(Appointment._meta.db):
        for n, booking in enumerate(BOOKINGS):
            days, bay, at, minutes, customer, reg, car, service, status = booking
            starts = datetime.fromisoformat(f"{day + timedelta(days=days)}T{at}")
            row = await create_appointment(
                workshop,
                {
                    "customer": customer,
                    "phone": PHONES[n % len(PHONES)],
                    "vehicle_registration": reg,
                    "make_model": car,
                    "service": service,
                    "bay": str(bays[bay]),
                    "starts_at": f"{starts:%Y-%m-%dT%H:%M}",
                    "ends_at": f"{starts + timedelta(minutes=minutes):%Y-%m-%dT%H:%M}",
                    "notes": "Customer waits on site." if n % 5 == 1 else "",
                },
                staff[0],
            )
            if status == Status.scheduled:
                continue
            if status in (Status.cancelled, Status.no_show):
                await change_status(workshop, row["id"], row["version"], status, staff[0])
                continue
            mechanic = staff[n % 2]
            checked = await check_in(workshop, row["id"], row["version"], mechanic)
            version = checked.appointment["version"]
            steps = {"in_progress": ["in_progress"], "done": ["in_progress", "done"]}
            for step in steps.get(status, []):
                saved = await change_status(workshop, row["id"], version, step, mechanic)
                version = saved["version"]
            if status in CARD_COLUMNS:  # the job's card follows it along the board
                columns = await _column_ids(checked.board_id)
                to = columns[CARD_COLUMNS[status]]
                await move_ticket(workshop, checked.ticket_id, 1, to, None, mechanic)


# -- stocktakes (SPEC §5.4) ------------------------------------------------------------------

# category, SKU prefix, unit, sub-units per unit, sub-unit, cost range (whole euro), names
CATALOGUE: list[tuple[str, str, str, int, str, tuple[int, int], list[str]]] = [
    ("Spirits", "SP", "bottle", 10, "tenth", (14, 48), [
        f"{brand} {size}"
        for brand in [
            "Jameson Irish Whiskey", "Jameson Black Barrel", "Powers Gold Label", "Paddy",
            "Tullamore D.E.W.", "Redbreast 12", "Green Spot", "Bushmills Original",
            "Teeling Small Batch", "Writers' Tears", "Glenfiddich 12", "Johnnie Walker Black",
            "Hennessy VS", "Cork Dry Gin", "Dingle Gin", "Gunpowder Gin", "Bombay Sapphire",
            "Hendrick's Gin", "Smirnoff Red", "Absolut Vodka", "Grey Goose", "Bacardi Carta Blanca",
            "Captain Morgan Spiced", "Kraken Black Spiced", "Baileys Original",
            "Cointreau", "Disaronno", "Tia Maria", "Jägermeister", "Aperol",
        ]
        for size in ("70cl", "1L")
    ]),
    ("Beer kegs", "BK", "keg", 88, "pint", (140, 230), [
        "Guinness 50L", "Smithwick's Red 50L", "Heineken 50L", "Carlsberg 50L",
        "Hop House 13 50L", "Rockshore 50L", "Coors 50L", "Birra Moretti 30L",
        "Beamish Stout 50L", "Murphy's Stout 50L", "Bulmers Cider 50L", "Orchard Thieves 50L",
        "Wicklow Wolf Locavore 30L", "Kinnegar Scraggy Bay 30L",
    ]),
    ("Bottled beer", "BB", "bottle", 1, "", (1, 3), [
        f"{beer} {size}"
        for beer in [
            "Heineken", "Corona Extra", "Budweiser", "Peroni Nastro Azzurro", "Sol",
            "Guinness", "Heineken 0.0", "Erdinger Alkoholfrei", "Bulmers Original",
            "Kopparberg Strawberry & Lime", "Galway Hooker IPA", "O'Hara's Irish Red",
            "Porterhouse Oyster Stout", "Franciscan Well Rebel Red", "Stella Artois",
            "Desperados", "Magners Original", "Brewdog Punk IPA",
        ]
        for size in ("330ml", "500ml")
    ]),
    ("Wine", "WN", "bottle", 5, "glass", (6, 32), [
        f"{wine} {year}"
        for wine in [
            "Casillero del Diablo Merlot", "Campo Viejo Rioja", "Oyster Bay Sauvignon Blanc",
            "Santa Rita 120 Cabernet", "Kim Crawford Pinot Noir", "Villa Maria Riesling",
            "Louis Jadot Chablis", "Marqués de Riscal Reserva", "Yellow Tail Shiraz",
            "Mud House Sauvignon Blanc", "Whispering Angel Rosé", "Prosecco DOC Extra Dry",
            "Moët & Chandon Brut", "Faustino VII Tempranillo", "Jacob's Creek Chardonnay",
        ]
        for year in ("2022", "2023", "2024")
    ]),
    ("Minerals", "MN", "bottle", 1, "", (1, 2), [
        f"{drink} {size}"
        for drink in [
            "Coca-Cola", "Diet Coke", "Coke Zero", "Club Orange", "Club Lemon", "7UP",
            "Fanta Orange", "Schweppes Tonic", "Schweppes Slimline Tonic", "Fever-Tree Tonic",
            "Ballygowan Still", "Ballygowan Sparkling", "Red Bull", "Britvic Orange",
            "Lucozade Original",
        ]
        for size in ("200ml", "500ml")
    ]),
    ("Food", "FD", "kg", 1, "", (2, 30), [
        "Irish beef striploin", "Beef mince", "Chicken breast", "Chicken wings",
        "Pork sausages", "Streaky bacon", "Back rashers", "Black pudding", "White pudding",
        "Smoked salmon", "Cod fillets", "Hake fillets", "Prawns", "Mussels",
        "Cheddar cheese", "Cashel Blue", "Butter", "Cream", "Eggs (dozen)", "Milk",
        "Rooster potatoes", "Chips (frozen)", "Onions", "Carrots", "Mushrooms",
        "Tomatoes", "Lettuce", "Lemons", "Limes", "Brown bread mix", "Flour",
        "Caster sugar", "Basmati rice", "Penne pasta", "Chopped tomatoes",
        "Vegetable oil", "Olive oil", "Mayonnaise", "Ketchup", "Coffee beans",
    ]),
    ("Cleaning", "CL", "each", 1, "", (2, 25), [
        "Glass washer detergent 5L", "Glass washer rinse aid 5L", "Dishwasher tablets",
        "Floor cleaner 5L", "Sanitiser spray", "Bleach 5L", "Hand soap 5L", "Blue roll",
        "Bin liners (roll)", "Toilet rolls (pack)", "Oven cleaner", "Beer line cleaner 5L",
        "Microfibre cloths (pack)", "Mop heads", "Degreaser 5L",
    ]),
    ("Snacks", "SN", "box", 12, "packet", (8, 24), [
        "Tayto Cheese & Onion", "Tayto Salt & Vinegar", "King Crisps Cheese & Onion",
        "Hunky Dorys Buffalo", "Keogh's Sea Salt", "Pringles Original",
        "KP Dry Roasted Peanuts", "Bacon Fries", "Scampi Fries", "Cashew nuts",
        "Mixed nuts", "Popcorn",
    ]),
]  # fmt: skip


def demo_items() -> list[dict]:
    """Killarney's catalogue (≥ 250 items), the same on every start."""
    items = []
    for category, prefix, unit, sub_units, sub_unit, (low, high), names in CATALOGUE:
        for n, name in enumerate(names, 1):
            cents = low * 100 + (n * 737) % ((high - low) * 100 + 1)
            items.append(
                {
                    "sku": f"{prefix}{n:03d}",
                    "name": name,
                    "category": category,
                    "unit": unit,
                    "sub_units": sub_units,
                    "sub_unit": sub_unit,
                    "unit_cost": cents * 100,  # ten-thousandths
                }
            )
    return items


def _demo_count(n: int, line, near: bool) -> tuple[str, str]:
    """A count as erin would type it: near the expected quantity (a small variance), or
    (for the first stocktake, when nothing was expected) a plausible amount on hand."""
    base = int(line.expected) if near else 2 + (n * 7) % 11
    if line.sub_units > 1:
        return str(max(base - (n % 2), 0)), str((n * 3) % line.sub_units)
    if line.unit == "kg":
        return f"{base + (n % 4) / 4:.2f}" if not near else f"{line.expected - n % 3:.3f}", ""
    return str(max(base + (n % 3) - 1, 0)), ""


async def load_stocktakes(demo: Demo) -> None:
    """Killarney's catalogue, last month's approved stocktake (so openings are real) and
    this month's draft in progress: some lines counted by erin, some movements (a few
    after their line was counted), a variance threshold sending a few back for a
    recount."""
    killarney = demo.sites["killarney"]
    known = {row["sku"] for row in await Item.select(Item.sku).where(Item.site == killarney)}
    missing = [Item(site=killarney, **item) for item in demo_items() if item["sku"] not in known]
    if missing:
        await Item.insert(*missing)
    if await Stocktake.exists().where(Stocktake.site == killarney):
        return
    erin = Actor(demo.users["erin"], NAMES["erin"])
    manager = Actor(demo.users["admin"], NAMES["admin"])
    this_month = today(ZoneInfo("Europe/Dublin")).replace(day=1)
    last_end = this_month - timedelta(days=1)
    next_month = (this_month + timedelta(days=32)).replace(day=1)
    async with write_tx(Stocktake._meta.db):
        past = await create_stocktake(
            killarney,
            {"period_start": str(last_end.replace(day=1)), "period_end": str(last_end)},
            manager,
        )
        await populate(killarney, past["id"], manager)
        for n, line in enumerate((await stocktake_view(killarney, past["id"])).lines):
            full, partial = _demo_count(n, line, near=False)
            await count_line(killarney, line.id, line.version, full, partial, erin)
        await approve(killarney, past["id"], manager)
    async with write_tx(Stocktake._meta.db):
        draft = await create_stocktake(
            killarney,
            {
                "period_start": str(this_month),
                "period_end": str(next_month - timedelta(days=1)),
                "variance_threshold": "40",
            },
            manager,
        )
        await populate(killarney, draft["id"], manager)
        lines = (await stocktake_view(killarney, draft["id"])).lines
        for n, line in enumerate(lines[::3]):
            if n % 5 == 0:  # a delivery before the count
                await add_movement(killarney, line.id, "purchase", "2", f"INV-{4100 + n}", erin)
            if n % 7 == 3:
                await add_movement(killarney, line.id, "waste", "0.5", "Breakage", erin)
            fresh = (await lines_by_id(killarney, [line.id]))[line.id]
            full, partial = _demo_count(n, fresh, near=True)
            await count_line(killarney, line.id, fresh.version, full, partial, erin)
        for n, line in enumerate(lines[1::3][:8]):  # deliveries on uncounted lines
            await add_movement(
                killarney, line.id, "purchase", str(1 + n % 3), f"INV-42{n:02d}", erin
            )
        for n, line in enumerate(lines[::3][2:5]):  # after their count: "moved since counted"
            kind = "purchase" if n % 2 == 0 else "waste"
            await add_movement(
                killarney, line.id, kind, "1", "Late delivery" if n % 2 == 0 else "Spillage", erin
            )


AREA_LOADERS: list[Callable[[Demo], Awaitable[None]]] = [
    load_assets,
    load_drafts,
    load_dispatches,
    load_boards,
    load_appointments,
    load_stocktakes,
]

# Deleted child-first by --reset.
TABLES: list[type[Table]] = [
    Adjustment,
    AppliedCount,
    Movement,
    StocktakeLine,
    Stocktake,
    Item,
    Appointment,
    Bay,
    Comment,
    Ticket,
    BoardColumn,
    Board,
    ColdChainLog,
    TruckChecklist,
    VehicleDispatch,
    DispatchDetail,
    DispatchEvent,
    DispatchStatusHistory,
    DispatchParcel,
    DraftParcel,
    Draft,
    Dispatch,
    Parcel,
    Asset,
    MakeModelDetailSet,
    AssetTypeDetailSet,
    MakeModel,
    AssetType,
    SiteNotice,
    Activity,
    OrgActivity,
    Account,
    Membership,
    Site,
    Organisation,
    SessionsBase,
    ApiToken,
    BaseUser,
]


async def _organisations(demo: Demo) -> None:
    for name in ORGANISATIONS:
        row = await Organisation.objects().get_or_create(Organisation.name == name)
        if not row.slug:  # /o/demo-logistics, /o/other-co
            await Organisation.update({Organisation.slug: slug_from_name(name)}).where(
                Organisation.id == row.id
            )
        demo.organisations[name] = row.id


async def _sites(demo: Demo) -> None:
    for slug, org, name, kind, tz in SITES:
        row = await Site.objects().where(Site.slug == slug).first()
        if row is None:
            row = Site(
                slug=slug, organisation=demo.organisations[org], name=name, kind=kind, timezone=tz
            )
            await row.save()
        demo.sites[slug] = row.id


async def _users(demo: Demo) -> None:
    for username, first, last, memberships, operator in USERS:
        user = await BaseUser.objects().where(BaseUser.username == username).first()
        if user is None:
            # BaseUser(...) rather than create_user(): the spec's demo password "demo" is
            # shorter than create_user's policy minimum; it is still hashed (PBKDF2).
            user = BaseUser(
                username=username,
                password=PASSWORD,
                first_name=first,
                last_name=last,
                email=f"{username}@example.com",
                active=True,
                admin=operator,  # piccolo_admin's own check
                superuser=operator,  # our /admin guard: platform operators only
            )
            await user.save()
        demo.users[username] = user.id
        for slug, role in memberships:
            site_id = demo.sites[slug]
            exists = await Membership.exists().where(
                (Membership.user == user.id) & (Membership.site == site_id)
            )
            if not exists:
                await Membership(user=user.id, site=site_id, role=role).save()


async def load() -> Demo:
    """Load whatever demo rows are missing; running it twice changes nothing."""
    demo = Demo()
    async with write_tx(Site._meta.db):
        await _organisations(demo)
        await _sites(demo)
        await _users(demo)
    for loader in AREA_LOADERS:
        await loader(demo)
    await demo_tokens.load_api_tokens()
    return demo


async def is_loaded() -> bool:
    return await Organisation.exists().where(Organisation.name == ORGANISATIONS[0])


async def reset() -> Demo:
    """Delete every row the app holds and load the demo afresh."""
    async with write_tx(Site._meta.db):
        for table in TABLES:
            await table.delete(force=True)
    return await load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reset", action="store_true", help="delete everything, then load")
    args = parser.parse_args()
    demo = asyncio.run(reset() if args.reset else load())
    print(f"Demo data ready: {len(demo.sites)} sites, {len(demo.users)} users (password: demo)")


if __name__ == "__main__":
    main()
