"""Asset pages (SPEC §5.5; seed 004): the site's assets, one asset with its dispatch
history, adding an asset (managers), and the detail-set configuration (managers) — what
it changes for dispatches created afterwards. Outsiders get 404 everywhere, staff 403 on
what is for managers, bad input a message at its field and nothing written."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from piccolo.apps.user.tables import BaseUser

from tables.activity import Activity
from tables.assets import Asset, AssetType, MakeModel, create_asset, ensure_asset_type
from tables.base import write_tx
from tables.dispatches import (
    DETAIL_KINDS,
    AssetTypeDetailSet,
    Dispatch,
    DispatchDetail,
    DispatchEvent,
    DispatchParcel,
    DispatchStatusHistory,
    MakeModelDetailSet,
    asset_dispatches,
    configured_kinds,
    create_dispatch,
)
from tables.people import Membership, Organisation, Site, SiteRef
from tests.conftest import soup, texts
from tests.factories import actor, site_id

# -- a site, asset types and makes/models of the test's own --------------------------------

SITES: list[int] = []
TYPES: list[int] = []


@dataclass
class Depot:
    site: SiteRef
    url: str  # /s/<slug>


async def own_site(timezone: str = "Africa/Nairobi") -> Depot:
    """A Demo Logistics site with admin (manager) and erin (staff) as its members."""
    org = (await Site.select(Site.organisation).where(Site.slug == "nairobi").first())[
        "organisation"
    ]
    slug = f"t-{uuid.uuid4().hex[:10]}"
    made = await Site.insert(
        Site(organisation=org, slug=slug, name=f"Depot {slug}", timezone=timezone)
    ).returning(Site.id)
    sid = made[0]["id"]
    SITES.append(sid)
    for username, role in (("admin", "manager"), ("erin", "staff")):
        user = await BaseUser.select(BaseUser.id).where(BaseUser.username == username).first()
        await Membership.insert(Membership(user=user["id"], site=sid, role=role))
    site = await SiteRef.load(sid)
    assert site is not None
    return Depot(site, f"/s/{slug}")


async def own_type(org: int, name: str = "") -> tuple[int, int]:
    """An asset type (no detail kinds yet) of the organisation, and a make/model of it."""
    key = f"t-{uuid.uuid4().hex[:8]}"
    async with write_tx():
        type_id = await ensure_asset_type(org, key, name or f"Kind {key}")
        rows = await MakeModel.insert(
            MakeModel(asset_type=type_id, make="Testa", model=key)
        ).returning(MakeModel.id)
    TYPES.append(type_id)
    return type_id, rows[0]["id"]


async def demo_org() -> int:
    return (await Organisation.select(Organisation.id).where(Organisation.name == "Demo Logistics")
            .first())["id"]  # fmt: skip


async def own_asset(site: int, type_id: int, make_model: int | None = None) -> dict:
    async with write_tx():
        return await create_asset(
            site,
            {"asset_type": type_id, "make_model": make_model or "",
             "registration": f"T {uuid.uuid4().hex[:8].upper()}", "location": "Yard T"},
        )  # fmt: skip


@pytest.fixture(autouse=True)
async def remove_what_tests_made():
    yield
    sites, SITES[:] = list(SITES), []
    types, TYPES[:] = list(TYPES), []
    dispatches = Dispatch.select(Dispatch.id).where(Dispatch.site.is_in(sites or [-1]))
    async with write_tx():
        for kind in DETAIL_KINDS.values():
            column = kind.table._meta.get_column_by_name("dispatch")
            await kind.table.delete().where(column.is_in(dispatches))
        await DispatchEvent.delete().where(DispatchEvent.dispatch.is_in(dispatches))
        await DispatchStatusHistory.delete().where(DispatchStatusHistory.dispatch.is_in(dispatches))
        await DispatchDetail.delete().where(DispatchDetail.dispatch.is_in(dispatches))
        await DispatchParcel.delete().where(DispatchParcel.dispatch.is_in(dispatches))
        await Dispatch.delete().where(Dispatch.site.is_in(sites or [-1]))
        await Asset.delete().where(Asset.site.is_in(sites or [-1]))
        models = MakeModel.select(MakeModel.id).where(MakeModel.asset_type.is_in(types or [-1]))
        await MakeModelDetailSet.delete().where(MakeModelDetailSet.make_model.is_in(models))
        await AssetTypeDetailSet.delete().where(AssetTypeDetailSet.asset_type.is_in(types or [-1]))
        await MakeModel.delete().where(MakeModel.asset_type.is_in(types or [-1]))
        await AssetType.delete().where(AssetType.id.is_in(types or [-1]))
        await Activity.delete().where(Activity.site.is_in(sites or [-1]))
        await Membership.delete().where(Membership.site.is_in(sites or [-1]))
        await Site.delete().where(Site.id.is_in(sites or [-1]))


async def asset_of(registration: str) -> dict:
    return await Asset.select().where(Asset.registration == registration).first()


def error_at(response, name: str) -> str:
    found = soup(response).select_one(f"#f-{name}-error")
    return " ".join(found.get_text(" ").split()) if found else ""


# -- the list and one asset -----------------------------------------------------------------


async def test_the_assets_page_lists_the_sites_assets_with_a_link_to_each(as_user):
    alice = await as_user("alice")
    page = await alice.get("/s/nairobi/assets")
    assert page.status_code == 200
    truck = await asset_of("KCC 789C")
    row = soup(page).select_one(f"#asset-{truck['id']}")
    cells = [" ".join(c.get_text(" ").split()) for c in row.select("th, td")]
    assert cells[:5] == ["KCC 789C", "Isuzu NQR", "Truck", "Isuzu NQR", "Nairobi depot, yard A"]
    assert cells[6] == "3,500 kg" and cells[5].endswith(" km")
    assert row.select_one("a")["href"] == f"/s/nairobi/assets/{truck['id']}"
    shown = texts(page, ".asset-row th")
    assert "FL-01" in shown and "KCD 654E" not in shown  # nakuru's stays at nakuru
    assert shown == sorted(shown)
    # A dispatcher may look, not add or configure.
    assert not soup(page).select("#new-asset-form")
    assert "Detail sets" not in page.text
    assert (await alice.get("/s/nairobi/assets/config")).status_code == 403


async def test_an_asset_page_shows_its_dispatch_history_with_links(as_user):
    alice = await as_user("alice")
    truck = await asset_of("KCC 789C")
    history = await asset_dispatches(await site_id("nairobi"), truck["id"])
    assert history, "the demo dispatches KCC 789C"
    page = await alice.get(f"/s/nairobi/assets/{truck['id']}")
    assert page.status_code == 200
    assert texts(page, ".asset-history__row th") == [d.number for d in history]
    for d in history:
        row = soup(page).select_one(f"#dispatch-{d.id}")
        assert row.select_one("a")["href"] == f"/s/nairobi/dispatches/{d.id}"
        assert d.title in row.get_text() and d.status_word in row.get_text()
    kinds = texts(page, ".asset-facts__kinds")
    assert kinds == ["Vehicle dispatch, Truck pre-trip checklist"]


async def test_another_sites_asset_is_as_unknown_as_a_missing_one(as_user):
    admin = await as_user("admin")  # a member of both sites
    nakurus = await asset_of("KCD 654E")
    for path in (f"/s/nairobi/assets/{nakurus['id']}", "/s/nairobi/assets/2147483647",
                 f"/s/nairobi/assets/{2**63}", "/s/nairobi/assets/abc"):  # fmt: skip
        assert (await admin.get(path)).status_code == 404, path
    assert (await admin.get(f"/s/nakuru/assets/{nakurus['id']}")).status_code == 200


PAGES = ["/assets", "/assets/config", "/dispatches/reports", "/dispatches/reports.csv"]


@pytest.mark.parametrize("username", ["oscar", "dana"])
async def test_outsiders_get_404_on_every_page_and_action(as_user, username):
    outsider = await as_user(username)  # another organisation's manager; nakuru's dispatcher
    truck = await asset_of("KCC 789C")
    before = await Asset.count()
    for path in [*PAGES, f"/assets/{truck['id']}"]:
        assert (await outsider.get(f"/s/nairobi{path}")).status_code == 404, path
    kind = await AssetType.select().where(AssetType.key == "truck").first()
    posts = [
        ("/assets", {"asset_type": kind["id"], "registration": "KZZ 001Z"}),
        ("/assets/config", {"shown": f"type-{kind['id']}"}),
    ]
    for path, form in posts:
        assert (await outsider.post(f"/s/nairobi{path}", form)).status_code == 404, path
    assert await Asset.count() == before
    assert await configured_kinds(kind["id"], None) == ["vehicle_dispatch", "truck_checklist"]


async def test_staff_get_403_with_a_readable_page_on_config_and_adding(as_user):
    depot = await own_site()
    type_id, _ = await own_type(await demo_org())
    erin = await as_user("erin")
    listed = await erin.get(f"{depot.url}/assets")
    assert listed.status_code == 200 and not soup(listed).select("#new-asset-form")
    config = await erin.get(f"{depot.url}/assets/config")
    assert config.status_code == 403
    assert "Only a manager of" in config.text and soup(config).select_one("h1").get_text()
    refused = await erin.post(
        f"{depot.url}/assets/config", {"shown": f"type-{type_id}", f"type-{type_id}": "cold_chain"}
    )
    assert refused.status_code == 403
    assert await configured_kinds(type_id, None) == []
    added = await erin.post(
        f"{depot.url}/assets", {"asset_type": type_id, "registration": "KZZ 002Z"}
    )
    assert added.status_code == 403
    assert not await Asset.exists().where(Asset.site == depot.site.id)


# -- adding an asset --------------------------------------------------------------------------


async def test_a_manager_adds_an_asset_and_lands_on_its_page(as_user):
    depot = await own_site()
    type_id, model_id = await own_type(await demo_org(), "Tipper")
    admin = await as_user("admin")
    registration = f"KT {uuid.uuid4().hex[:5].upper()}"
    form = {"asset_type": type_id, "make_model": model_id, "registration": registration.lower(),
            "name": "", "location": "Quarry gate", "meter_reading": "12,500",
            "capacity_kg": "8000"}  # fmt: skip
    added = await admin.post(f"{depot.url}/assets", form)
    assert added.status_code == 303, added.text
    row = await asset_of(registration)
    assert added.headers["location"] == f"{depot.url}/assets/{row['id']}"
    assert (row["site"], row["type"], row["make_model"]) == (depot.site.id, type_id, model_id)
    assert (row["meter_reading"], row["capacity_kg"], row["location"]) == (
        12_500,
        8000,
        "Quarry gate",
    )
    landed = await admin.get(added.headers["location"])
    assert f"Added {registration}." in landed.text
    assert texts(landed, "h1") == [registration]
    assert texts(landed, ".asset-facts__reading") == ["12,500 km"]
    trail = await Activity.select().where(Activity.site == depot.site.id).first()
    assert trail["verb"] == "asset.create" and registration in trail["summary"]
    listed = await admin.get(f"{depot.url}/assets")
    assert texts(listed, ".asset-row th") == [registration]


HOSTILE_ASSETS = [
    ("registration", "K" * 5000),
    ("registration", "KBC\x00123"),
    ("registration", "<b>KBC</b>"),
    ("name", "Big\x00truck"),
    ("name", "<script>alert(1)</script>"),
    ("location", "<img src=x onerror=alert(1)>"),
    ("location", "y" * 5000),
    ("meter_reading", str(2**63)),
    ("meter_reading", "-5"),
    ("meter_reading", "1e999"),
    ("capacity_kg", str(2**63)),
    ("capacity_kg", "lots"),
    ("asset_type", str(2**63)),
    ("asset_type", "foreign"),  # another organisation's asset type
    ("asset_type", ""),
    ("make_model", "other-type"),  # a make/model of another asset type
    ("make_model", str(2**63)),
]


@pytest.mark.parametrize(
    ("name", "value"), HOSTILE_ASSETS, ids=[f"{n}={v[:12]!r}" for n, v in HOSTILE_ASSETS]
)
async def test_a_bad_asset_is_refused_at_its_field_and_nothing_is_written(as_user, name, value):
    depot = await own_site()
    type_id, model_id = await own_type(await demo_org())
    _, other_model = await own_type(await demo_org())
    if value == "foreign":
        other = (
            await Organisation.select(Organisation.id)
            .where(Organisation.name == "Other Co")
            .first()
        )
        value = str((await own_type(other["id"]))[0])
    elif value == "other-type":
        value = str(other_model)
    admin = await as_user("admin")
    form = {"asset_type": str(type_id), "make_model": str(model_id),
            "registration": f"KX {uuid.uuid4().hex[:5].upper()}", "name": "Tipper",
            "location": "Yard", "meter_reading": "100", "capacity_kg": "0"}  # fmt: skip
    form[name] = value
    before = await Asset.count()
    for headers in (None, {"HX-Request": "true", "HX-Request-Type": "full"}):
        refused = await admin.post(f"{depot.url}/assets", form, headers=headers)
        assert refused.status_code == 422, (name, value[:20])
        assert error_at(refused, name), soup(refused).select(".field__error")
        assert "<script>alert(1)</script>" not in refused.text
        kept = soup(refused).select_one(f"#f-{name}")
        if kept.name == "input":
            assert kept["value"] == value.replace("\x00", "")  # values kept (typeable)
        else:
            chosen = kept.select_one("option[selected]")
            assert (chosen["value"] if chosen else "") in (value, "")
        assert soup(refused).select_one("#new-asset-form")  # the form, open again
    assert await Asset.count() == before
    assert not await Activity.exists().where(Activity.site == depot.site.id)


# -- the detail-set configuration ----------------------------------------------------------


async def test_the_configuration_page_shows_every_type_and_make_model_with_its_kinds(as_user):
    admin = await as_user("admin")
    page = await admin.get("/s/nairobi/assets/config")
    assert page.status_code == 200
    assert "affect dispatches created from now on" in page.text
    truck = await AssetType.select().where(AssetType.key == "truck").first()
    fieldset = soup(page).select_one(f"#type-{truck['id']}")
    boxes = {b["value"]: b.has_attr("checked") for b in fieldset.select("input[type=checkbox]")}
    assert boxes == {"vehicle_dispatch": True, "truck_checklist": True, "cold_chain": False}
    reefer = await MakeModel.select().where(MakeModel.model == "FRR Reefer").first()
    fieldset = soup(page).select_one(f"#model-{reefer['id']}")
    ticked = [b["value"] for b in fieldset.select("input[checked]")]
    assert ticked == ["cold_chain"]
    assert "Vehicle dispatch, Truck pre-trip checklist" in fieldset.get_text()
    assert "Isuzu FRR Reefer (Truck)" in fieldset.select_one("legend").get_text()
    # Other Co's types are not Demo Logistics' business.
    assert len(soup(page).select(".detail-set")) == await AssetType.count().where(
        AssetType.organisation == truck["organisation"]
    ) + await MakeModel.count().where(MakeModel.asset_type._.organisation == truck["organisation"])


async def test_configuration_changes_what_dispatches_created_afterwards_get(as_user):
    depot = await own_site()
    type_id, model_id = await own_type(await demo_org(), "Flatbed")
    plain, modelled = (
        await own_asset(depot.site.id, type_id),
        await own_asset(depot.site.id, type_id, model_id),
    )
    admin, ada = await as_user("admin"), await actor("admin")
    config = f"{depot.url}/assets/config"
    demo_truck = await AssetType.select().where(AssetType.key == "truck").first()

    async def kinds_of_new(asset: dict) -> list[str]:
        made = await create_dispatch(depot.site.id, {"title": "Haul", "asset": asset["id"]}, ada)
        rows = (
            await DispatchDetail.select(DispatchDetail.kind)
            .where(DispatchDetail.dispatch == made["id"])
            .order_by(DispatchDetail.position)
        )
        return [r["kind"] for r in rows]

    assert await kinds_of_new(plain) == []
    saved = await admin.post(
        config, {"shown": f"type-{type_id}", f"type-{type_id}": "vehicle_dispatch"}
    )
    assert saved.status_code == 303 and saved.headers["location"] == config
    assert "dispatches created from now on" in (await admin.get(config)).text
    first = await kinds_of_new(modelled)
    assert first == ["vehicle_dispatch"]
    # The make/model adds to its type's.
    form = {
        "shown": [f"type-{type_id}", f"model-{model_id}"],
        f"type-{type_id}": ["vehicle_dispatch", "truck_checklist"],
        f"model-{model_id}": "cold_chain",
    }
    assert (await admin.post(config, form)).status_code == 303
    assert await kinds_of_new(modelled) == ["vehicle_dispatch", "truck_checklist", "cold_chain"]
    assert await kinds_of_new(plain) == ["vehicle_dispatch", "truck_checklist"]
    # Dispatches made before keep what they had.
    earliest = (
        await Dispatch.select(Dispatch.id)
        .where(Dispatch.vehicle == modelled["id"])
        .order_by(Dispatch.id)
        .first()
    )
    assert [r["kind"] for r in await DispatchDetail.select(DispatchDetail.kind).where(
        DispatchDetail.dispatch == earliest["id"])] == ["vehicle_dispatch"]  # fmt: skip
    # Unticking switches a kind off; what the page did not show is left alone.
    assert (await admin.post(config, {"shown": f"type-{type_id}"})).status_code == 303
    assert await kinds_of_new(modelled) == ["cold_chain"]
    assert await configured_kinds(demo_truck["id"], None) == ["vehicle_dispatch", "truck_checklist"]
    trail = (
        await Activity.select()
        .where((Activity.site == depot.site.id) & (Activity.verb == "asset.config"))
        .order_by(Activity.id)
    )
    assert len(trail) == 3 and "Cold chain log on for Testa" in trail[1]["summary"]
    unchanged = await admin.post(config, {"shown": f"type-{type_id}"})
    assert "Nothing changed." in (await admin.get(unchanged.headers["location"])).text


@pytest.mark.parametrize("kind", ["nope", "\x00", "x" * 5000, "<script>"])
async def test_an_unknown_detail_kind_is_refused_and_nothing_changes(as_user, kind):
    depot = await own_site()
    type_id, _ = await own_type(await demo_org())
    admin = await as_user("admin")
    form = {"shown": f"type-{type_id}", f"type-{type_id}": ["vehicle_dispatch", kind]}
    refused = await admin.post(f"{depot.url}/assets/config", form)
    assert refused.status_code == 422
    assert "could not be read" in refused.text and "<script>" not in refused.text
    assert await configured_kinds(type_id, None) == []
