"""Named factories for tests: parcels received at a site, drafts by destination."""

from __future__ import annotations

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
