"""Named factories for tests: parcels received at a site, drafts by destination."""

from __future__ import annotations

import contextlib
import uuid

from tables.base import Actor
from tables.dispatches import Asset
from tables.drafts import Draft, DraftStatus, Parcel
from tables.people import Site

ALICE = 1  # the demo's first user: any real user id will do for the trail


async def site_id(slug: str) -> int:
    return (await Site.select(Site.id).where(Site.slug == slug).first())["id"]


async def make_parcels(slug: str, destination: str, count: int, weight: str = "10") -> list[dict]:
    """Receive `count` parcels at a site (as the demo's alice would)."""
    sid = await site_id(slug)
    made = []
    for _ in range(count):
        code = f"T-{uuid.uuid4().hex[:8].upper()}"
        parcel = await Parcel.receive(sid, Actor(ALICE, "Test"), code, destination, "Box", weight)
        made.append({"id": parcel.id, "code": parcel.code})
    return made


async def vehicle_id(registration: str) -> int:
    return (await Asset.select(Asset.id).where(Asset.registration == registration).first())["id"]


async def draft_of(destination: str) -> dict:
    return await (
        Draft.select()
        .where((Draft.destination == destination) & (Draft.status == DraftStatus.active))
        .first()
    )


# -- assets and dispatches ----------------------------------------------------------------


async def actor(username: str) -> Actor:
    """A demo user as the trail names them."""
    from piccolo.apps.user.tables import BaseUser

    user = await BaseUser.select().where(BaseUser.username == username).first()
    return Actor(user["id"], f"{user['first_name']} {user['last_name']}")


async def make_asset(
    slug: str, type_key: str, make_model: tuple[str, str] | None = None, reading: int | None = None
) -> dict:
    """An asset of the test's own at a demo site (capacity 0: it stays off the drafts'
    vehicle list), of a demo asset type and, optionally, make/model."""
    from tables.assets import AssetType, MakeModel, create_asset
    from tables.base import write_tx

    sid = await site_id(slug)
    kind = await AssetType.select().where(AssetType.key == type_key).first()
    model = None
    if make_model:
        model = await (
            MakeModel.select(MakeModel.id)
            .where((MakeModel.make == make_model[0]) & (MakeModel.model == make_model[1]))
            .first()
        )
    async with write_tx():
        return await create_asset(
            sid,
            {
                "asset_type": kind["id"],
                "make_model": model["id"] if model else "",
                "registration": f"T {uuid.uuid4().hex[:8].upper()}",
                "meter_reading": reading,
            },
        )


# -- real ids for the route sweep and the form fuzz ---------------------------------------


async def _first_id(query) -> int | None:
    row = await query.first()
    return row["id"] if row else None


async def real_ids(slug: str, newest: bool = False) -> dict[str, int]:
    """One real row id per path parameter of the `/s/{site}` routes, of entities of that
    site, consistent with each other (a ticket of that board, a line of that stocktake, a
    movement of that line): what the route sweep and the form fuzz put in paths. The
    oldest of each kind (`newest`: the newest, an open board and a draft stocktake first).
    A kind of entity the site has none of is left out."""
    from tables.appointments import Appointment, Bay
    from tables.boards import Board, Ticket
    from tables.dispatches import Dispatch
    from tables.stocktakes import Item, Movement, Stocktake, StocktakeLine

    sid = await site_id(slug)
    up = not newest

    async def first(table, where, *order) -> dict | None:
        query = table.select(*table.all_columns()).where(where)
        for column in order:
            query = query.order_by(column, ascending=up if column._meta.name == "id" else False)
        return await query.first()

    def id_of(row: dict | None, column: str = "id") -> int | None:
        return row[column] if row else None

    active = Draft.status == DraftStatus.active
    ids: dict[str, int | None] = {
        "draft": id_of(await first(Draft, (Draft.site == sid) & active, Draft.id)),
        "appointment": id_of(await first(Appointment, Appointment.site == sid, Appointment.id)),
        "dispatch": id_of(await first(Dispatch, Dispatch.site == sid, Dispatch.id)),
        "asset": id_of(await first(Asset, Asset.site == sid, Asset.id)),
        "bay": id_of(await first(Bay, Bay.site == sid, Bay.id)),
        "item": id_of(await first(Item, Item.site == sid, Item.id)),
    }
    open_board = (Ticket.board._.site == sid) & (Ticket.board._.archived == False)  # noqa: E712
    ticket = await first(Ticket, open_board, Ticket.id)
    board = await first(Board, (Board.site == sid) & (Board.archived == False), Board.id)  # noqa: E712
    if ticket:
        ids |= {"board": ticket["board"], "ticket": ticket["id"]}
    else:
        ids["board"] = id_of(board) or id_of(await first(Board, Board.site == sid, Board.id))
    # A draft stocktake's before an approved one's ("draft" > "approved", descending).
    movement = await first(
        Movement, Movement.line._.stocktake._.site == sid, Movement.line._.stocktake._.status,
        Movement.id,
    )  # fmt: skip
    if movement:
        line = await StocktakeLine.select().where(StocktakeLine.id == movement["line"]).first()
        ids |= {"stocktake": line["stocktake"], "line": line["id"], "movement": movement["id"]}
    elif line := await first(
        StocktakeLine, StocktakeLine.stocktake._.site == sid, StocktakeLine.stocktake._.status,
        StocktakeLine.id,
    ):  # fmt: skip
        ids |= {"stocktake": line["stocktake"], "line": line["id"]}
    else:
        ids["stocktake"] = id_of(
            await first(Stocktake, Stocktake.site == sid, Stocktake.status, Stocktake.id)
        )
    return {name: value for name, value in ids.items() if value is not None}


async def real_org_ids(org_slug: str) -> dict[str, int]:
    """The same for the `/o/{org}` routes: a person of the organisation and one of its sites."""
    from tables.people import Membership, Organisation

    org = await Organisation.select(Organisation.id).where(Organisation.slug == org_slug).first()
    site = await (
        Site.select(Site.id).where(Site.organisation == org["id"]).order_by(Site.id).first()
    )
    person = await (
        Membership.select(Membership.user)
        .where(Membership.site._.organisation == org["id"])
        .order_by(Membership.id)
        .first()
    )
    return {"site_id": site["id"], "person": person["user"]}


async def api_token(username: str, name: str = "test") -> str:
    """An API token of a demo user (made as /me would, without the trail line); its secret."""
    from piccolo.apps.user.tables import BaseUser

    from tables.apitokens import ApiToken

    user = await BaseUser.select(BaseUser.id).where(BaseUser.username == username).first()
    return await ApiToken.create_token(user["id"], name=name)


async def site_of_its_own(kind: str = "workshop") -> dict:
    """An organisation, a site and a manager of the test's own (password "demo"), stocked
    with one of everything its pages work on (`stock_site`). For tests that post whatever
    they like — the form fuzz — without touching the demo's sites. Returns slug, username
    and the ids (as `real_ids`)."""
    from piccolo.apps.user.tables import BaseUser

    from tables.assets import AssetType, create_asset
    from tables.base import write_tx
    from tables.dispatches import DETAIL_KINDS, AssetTypeDetailSet
    from tables.orgs import OrgAccess, create_site
    from tables.people import Organisation
    from tables.stocktakes import Item

    tag = uuid.uuid4().hex[:8]
    username, slug = f"fz{tag}", f"fz-{tag}"
    user = BaseUser(username=username, password="demo", first_name="Fuzz", last_name=tag,
                    email=f"{username}@example.com", active=True)  # fmt: skip
    await user.save()
    org = Organisation(name=f"Fuzz {tag}", slug=f"fuzz-{tag}")
    await org.save()
    access = OrgAccess(org.id, f"fuzz-{tag}", f"Fuzz {tag}", user.id, f"Fuzz {tag}")
    async with write_tx():
        site = await create_site(access, slug=slug, name=f"Fuzz site {tag}", kind=kind,
                                 timezone="Africa/Nairobi")  # fmt: skip
        sid = site["id"]
        for n, (name, unit, sub_units) in enumerate((("Keg", "keg", 88), ("Lemons", "kg", 1))):
            await Item(site=sid, sku=f"FZ{n:03d}", name=f"{name} {tag}", category="Test",
                       unit=unit, sub_units=sub_units, unit_cost=10_000).save()  # fmt: skip
        [truck] = await AssetType.insert(AssetType(organisation=org.id, key="truck", name="Truck"))
        await AssetTypeDetailSet.insert(
            *(AssetTypeDetailSet(asset_type=truck["id"], kind=kind) for kind in DETAIL_KINDS)
        )
        await create_asset(sid, {"asset_type": truck["id"], "make_model": "",
                                 "registration": f"FZ {tag[:6].upper()}",
                                 "capacity_kg": 3000})  # fmt: skip
    await stock_site(slug)
    return {"slug": slug, "username": username, "ids": await real_ids(slug, newest=True)}


async def stock_site(slug: str) -> None:
    """One more of everything at a site of the test's own (as its first manager): a ticket
    (on an open board, made if none is), a booking, a stocktake with its lines and a
    movement, a draft, a dispatch. Run again when a test has deleted, archived, approved or
    finalised them."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from piccolo.apps.user.tables import BaseUser

    from tables.appointments import Bay, create_appointment
    from tables.base import DomainError, write_tx
    from tables.boards import Board, create_board, create_ticket
    from tables.dispatches import create_dispatch
    from tables.drafts import add_parcels
    from tables.people import Membership
    from tables.stocktakes import Stocktake, StocktakeLine, add_movement, create_stocktake, populate

    site = await Site.select(Site.id, Site.timezone).where(Site.slug == slug).first()
    sid = site["id"]
    manager = await (
        Membership.select(Membership.user).where(Membership.site == sid).order_by(Membership.id)
    ).first()
    user = await BaseUser.select().where(BaseUser.id == manager["user"]).first()
    me = Actor(user["id"], f"{user['first_name']} {user['last_name']}")
    tag = uuid.uuid4().hex[:8].upper()
    n = await Stocktake.count().where(Stocktake.site == sid)
    async with write_tx():
        board = await Board.select(Board.id).where(
            (Board.site == sid) & (Board.archived == False)  # noqa: E712
        ).first() or await create_board(sid, f"Board {tag}", "workflow", me)
        await create_ticket(sid, board["id"], None, {"title": f"Card {tag}"}, me)
    bay = await Bay.select(Bay.id).where(Bay.site == sid).first()
    if bay is None:
        [bay] = await Bay.insert(Bay(site=sid, name="Bay 1", position=0))
    # Today (its page shows it, with its buttons), at an hour no booking holds yet; a
    # stocktake of a day no other covers.
    today = datetime.now(ZoneInfo(site["timezone"])).date()
    for hour in sorted(range(24), key=lambda h: (h - 6 - n) % 24):
        booking = {
            "customer": "Jane Fuzz",
            "phone": "+254 700 000 000",
            "vehicle_registration": "KCA 1",
            "make_model": "Toyota Probox",
            "service": "Full service",
            "bay": str(bay["id"]),
            "starts_at": f"{today}T{hour:02d}:00",
            "ends_at": f"{today}T{hour:02d}:45",
            "notes": "",
        }
        with contextlib.suppress(DomainError):
            await create_appointment(sid, booking, me)
            break
    for back in range(n + 1, n + 400):
        day = str(today - timedelta(days=back))
        values = {"period_start": day, "period_end": day, "variance_threshold": "", "blind": ""}
        with contextlib.suppress(DomainError):
            async with write_tx():
                stocktake = await create_stocktake(sid, values, me)
            break
    await populate(sid, stocktake["id"], me)
    line = await (
        StocktakeLine.select(StocktakeLine.id).where(StocktakeLine.stocktake == stocktake["id"])
    ).first()
    async with write_tx():
        await add_movement(sid, line["id"], "purchase", "5", "INV-1", me)
    async with write_tx():
        parcel = await Parcel.receive(sid, me, f"FZ-{tag}", f"Town{tag}", "Box", "10")
        await add_parcels(sid, [parcel.id], me, timedelta(hours=4))
    asset = await Asset.select(Asset.id).where(Asset.site == sid).first()
    await create_dispatch(sid, {"title": f"Run {tag}", "asset": asset["id"]}, me)
