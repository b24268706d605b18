"""Draft rules on the tables alone: concurrent adds merge, a parcel lands in one draft,
untouched drafts expire — enforced by the database on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tables.base import Actor, write_tx
from tables.drafts import (
    Draft,
    DraftParcel,
    DraftStatus,
    Parcel,
    ParcelStatus,
    add_parcels,
    board,
    expire_due,
)
from tests.factories import ALICE, draft_of, make_parcels, site_id


async def test_ten_concurrent_adds_by_different_people_all_land(town):
    parcels = await make_parcels("nairobi", town, 10)
    sid = await site_id("nairobi")

    async def add(i: int) -> None:
        async with write_tx(Parcel._meta.db):
            await add_parcels(
                sid, [parcels[i]["id"]], Actor(ALICE, f"Dispatcher {i}"), timedelta(hours=1)
            )

    await asyncio.gather(*(add(i) for i in range(10)))
    drafts = await Draft.select(Draft.id).where(
        (Draft.destination == town) & (Draft.status == DraftStatus.active)
    )
    assert len(drafts) == 1  # one shared draft, not ten
    assert await DraftParcel.count().where(DraftParcel.draft == drafts[0]["id"]) == 10
    view = (await board(sid, [drafts[0]["id"]])).drafts[0]
    assert len(view.contributors) == 10


async def test_one_parcel_added_to_two_drafts_at_once_ends_in_exactly_one(town):
    sid = await site_id("nairobi")
    (parcel,) = await make_parcels("nairobi", town, 1)

    async def add(who: int):
        async with write_tx(Parcel._meta.db):
            return await add_parcels(
                sid, [parcel["id"]], Actor(ALICE, f"D{who}"), timedelta(hours=1)
            )

    results = await asyncio.gather(*(add(i) for i in range(1, 6)))
    assert sum(r.count for r in results) == 1
    refusals = [why for r in results for _, why in r.refused]
    assert refusals and all(why == f"is already in the {town} draft" for why in refusals)
    assert await DraftParcel.count().where(DraftParcel.parcel == parcel["id"]) == 1


async def test_drafts_untouched_past_their_time_expire_and_release(town):
    sid = await site_id("nairobi")
    (parcel,) = await make_parcels("nairobi", town, 1)
    async with write_tx(Parcel._meta.db):
        await add_parcels(sid, [parcel["id"]], Actor(ALICE, "A"), timedelta(hours=24))
    assert town not in [d["destination"] for d in await expire_due()]  # still fresh
    # A day passes for this draft alone (others in the shared test database keep theirs).
    draft = await draft_of(town)
    await Draft.update({Draft.expires_at: datetime.now(UTC) - timedelta(minutes=1)}).where(
        Draft.id == draft["id"]
    )
    expired = await expire_due()
    assert [d["destination"] for d in expired] == [town]
    assert await draft_of(town) is None
    status = await Parcel.select(Parcel.status).where(Parcel.id == parcel["id"]).first()
    assert status["status"] == ParcelStatus.available
