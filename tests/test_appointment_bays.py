"""A workshop's bays, set up by its managers (/s/{site}/appointments/bays): add, rename,
order on the schedule, take out of use and back — each a plain form, each on every open
dashboard at once; refusals at the field with nothing written."""

from __future__ import annotations

import uuid

import pytest

from routes.appointments import APPOINTMENTS
from tables.activity import Activity
from tables.appointments import MAX_BAYS, Bay, bays_of
from tables.people import SiteRef
from tests.conftest import events_of, texts
from tests.factories import site_id, site_of_its_own
from tests.test_appointments import FAR, booking


@pytest.fixture
async def shop(as_user):
    """A workshop of the test's own (its 3 bays: Bay 1, 2 and 3) and its manager, signed in: the
    tests add, move and close bays as they like without touching the demo's."""
    made = await site_of_its_own("workshop")
    manager = await as_user(made["username"])
    return Shop(made["slug"], manager)


class Shop:
    def __init__(self, slug: str, manager) -> None:
        self.slug, self.manager = slug, manager
        self.page = f"/s/{slug}/appointments"
        self.bays = f"{self.page}/bays"

    async def bay(self, name: str) -> dict | None:
        sid = await site_id(self.slug)
        return await Bay.select().where((Bay.site == sid) & (Bay.name == name)).first()

    async def add(self, name: str) -> dict:
        added = await self.manager.post(self.bays, {"name": name})
        assert added.status_code == 303, added.text
        bay = await self.bay(name)
        assert bay is not None
        return bay

    async def heads(self) -> list[str]:
        page = await self.manager.get(f"{self.page}?day={FAR.isoformat()}")
        return texts(page, ".schedule__bay")


def unique(prefix: str = "Bay") -> str:
    return f"{prefix} {uuid.uuid4().hex[:6]}"


async def test_a_manager_adds_renames_and_orders_bays_and_the_schedule_follows(shop):
    first, second = unique(), unique()
    await shop.add(first)
    bay = await shop.add(second)
    assert await shop.heads() == ["Bay 1", "Bay 2", "Bay 3", first, second]

    moved = await shop.manager.post(f"{shop.bays}/{bay['id']}/move", {"way": "earlier"})
    assert moved.status_code == 303 and moved.headers["location"] == shop.bays
    assert await shop.heads() == ["Bay 1", "Bay 2", "Bay 3", second, first]

    renamed = unique("Tyres")
    saved = await shop.manager.post(f"{shop.bays}/{bay['id']}", {"name": renamed, "was": second})
    assert saved.status_code == 303
    assert f"Saved {renamed}." in (await shop.manager.get(shop.bays)).text
    assert await shop.heads() == ["Bay 1", "Bay 2", "Bay 3", renamed, first]
    trail = await Activity.select(Activity.summary).where(Activity.entity_id == bay["id"])
    assert {row["summary"] for row in trail} >= {
        f"added the bay {second}",
        f"moved the bay {second} one place left",
        f"renamed the bay {second} to {renamed}",
    }


async def test_a_bay_out_of_use_leaves_the_schedule_and_comes_back(shop):
    bay = await shop.bay("Bay 2")

    closed = await shop.manager.post(f"{shop.bays}/{bay['id']}/in-use", {"in_use": "no"})
    assert closed.status_code == 303
    assert await shop.heads() == ["Bay 1", "Bay 3"]
    assert bay["id"] not in [b.id for b in await bays_of(bay["site"])]  # not bookable either
    refused = await shop.manager.post(shop.page, booking(bay))
    assert refused.status_code == 422 and await shop.bay("Bay 2")
    assert texts(await shop.manager.get(shop.bays), ".bays--out .bay__name") == ["Bay 2"]

    opened = await shop.manager.post(f"{shop.bays}/{bay['id']}/in-use", {"in_use": "yes"})
    assert opened.status_code == 303
    assert await shop.heads() == ["Bay 1", "Bay 2", "Bay 3"]


async def test_a_bay_with_bookings_to_come_stays_in_use(shop):
    # A bay of its own: the shop's stock booking (today, in its first bay) is still to
    # come early in the day, and would make it two.
    name = unique()
    bay = await shop.add(name)
    booked = await shop.manager.post(shop.page, booking(bay))  # on FAR, years ahead
    assert booked.status_code == 303

    refused = await shop.manager.post(f"{shop.bays}/{bay['id']}/in-use", {"in_use": "no"})

    assert refused.status_code == 422
    assert f"{name} still has 1 booking to come: move or cancel it first." in refused.text
    assert (await shop.bay(name))["active"] is True


async def test_no_more_bays_in_use_than_the_schedule_has_columns_for(shop):
    for n in range(4, MAX_BAYS + 1):
        await shop.add(f"Bay {n}")
    before = await Bay.count()

    refused = await shop.manager.post(shop.bays, {"name": unique()})

    assert refused.status_code == 422
    assert f"at most {MAX_BAYS} bays" in texts(refused, "#f-name-error")[0]
    assert await Bay.count() == before


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Enter the bay's name."),
        ("   ", "Enter the bay's name."),
        ("x" * 61, "at most 60 characters"),
        ("Bay\x00 9", "cannot be typed"),
        ("bay 1", "There is already a bay called bay 1."),  # its Bay 1, in any case
    ],
)
async def test_bad_bay_names_are_refused_at_the_field_and_nothing_written(shop, name, message):
    before = await Bay.count()

    refused = await shop.manager.post(shop.bays, {"name": name})

    assert refused.status_code == 422
    assert message in texts(refused, "#f-name-error")[0]
    assert await Bay.count() == before


async def test_markup_in_a_bay_name_is_shown_as_text(shop):
    name = f"<b>{uuid.uuid4().hex[:6]}</b>"

    await shop.add(name)

    assert name in await shop.heads()
    assert name not in (await shop.manager.get(shop.page)).text  # only escaped


async def test_a_rename_from_a_stale_name_is_409_with_the_name_now(shop):
    bay = await shop.bay("Bay 3")
    theirs = unique("Alignment")
    await shop.manager.post(f"{shop.bays}/{bay['id']}", {"name": theirs, "was": "Bay 3"})

    mine = await shop.manager.post(f"{shop.bays}/{bay['id']}", {"name": "Mine", "was": "Bay 3"})

    assert mine.status_code == 409
    assert f"someone renamed it to {theirs} meanwhile" in mine.text
    assert (await shop.bay(theirs))["id"] == bay["id"]


async def test_staff_get_403_and_another_sites_bay_is_404(shop, as_user):
    frank, admin = await as_user("frank"), await as_user("admin")
    theirs = await shop.bay("Bay 1")

    assert (await frank.get("/s/workshop/appointments/bays")).status_code == 403
    assert (
        await frank.post("/s/workshop/appointments/bays", {"name": unique()})
    ).status_code == 403
    assert "Bays</a>" not in (await frank.get("/s/workshop/appointments")).text
    foreign = f"/s/workshop/appointments/bays/{theirs['id']}/move"
    assert (await admin.post(foreign, {"way": "later"})).status_code == 404


async def test_a_bay_change_tells_every_dashboard_to_fetch_its_day(app, shop):
    site = await SiteRef.load(await site_id(shop.slug))

    async def add() -> None:
        await shop.add(unique())

    [event] = await events_of(app, APPOINTMENTS.topic(site, {}), add)
    assert 'id="live-refetch"' in event.html and 'data-regions="day"' in event.html
