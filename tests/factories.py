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
