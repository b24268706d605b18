"""A stock site's items, kept by its managers (/s/{site}/items): add, edit from the version
the form showed (409 with what changed), search, take out of use and back, and what that
means for stocktakes — each a plain form; refusals at the field with nothing written."""

from __future__ import annotations

import uuid

import pytest

from tables.activity import Activity
from tables.base import write_tx
from tables.stocktakes import Item, StocktakeLine, create_stocktake, populate
from tests.conftest import soup, texts
from tests.factories import actor, site_id, site_of_its_own


@pytest.fixture
async def bar(as_user):
    """A hotel bar of the test's own (its two items: FZ000, a keg of 88 pints, and FZ001,
    lemons by the kg, both on a populated draft stocktake) and its manager, signed in."""
    made = await site_of_its_own("hotel")
    manager = await as_user(made["username"])
    return Bar(made["slug"], made["username"], manager)


class Bar:
    def __init__(self, slug: str, username: str, manager) -> None:
        self.slug, self.username, self.manager = slug, username, manager
        self.items = f"/s/{slug}/items"

    async def sid(self) -> int:
        return await site_id(self.slug)

    async def item(self, sku: str) -> dict:
        return (
            await Item.select().where((Item.site == await self.sid()) & (Item.sku == sku)).first()
        )

    async def count(self) -> tuple[int, int]:
        """Items and trail lines of the site: what a refusal must leave as it was."""
        sid = await self.sid()
        trail = await Activity.count().where(Activity.site == sid)
        return (await Item.count().where(Item.site == sid), trail)

    async def add(self, **values: str) -> dict:
        body = new_item(**values)
        added = await self.manager.post(self.items, body)
        assert added.status_code == 303, added.text
        item = await self.item(body["sku"].strip().upper())
        assert item is not None
        return item

    def edit_url(self, item: dict) -> str:
        return f"{self.items}/{item['id']}"

    async def save(self, item: dict, version: int | None = None, **changes: str):
        values = {**form_of(item), **changes, "version": str(version or item["version"])}
        return await self.manager.post(self.edit_url(item), values)

    async def in_use(self, item: dict, yes: bool):
        url = f"{self.edit_url(item)}/in-use"
        return await self.manager.post(url, {"in_use": "yes" if yes else "no"})

    async def listed(self, query: str = "") -> list[str]:
        page = await self.manager.get(f"{self.items}{query}")
        assert page.status_code == 200
        return texts(page, ".item-row__sku")

    async def new_stocktake(self) -> int:
        """A draft stocktake of a day no other covers, populated: its id."""
        sid, me = await self.sid(), await actor(self.username)
        async with write_tx():
            made = await create_stocktake(sid, {"period_start": DAY, "period_end": DAY}, me)
        await populate(sid, made["id"], me)
        return made["id"]


DAY = "2020-01-31"


def new_item(**values: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:6].upper()
    return {
        "sku": f"BK-{tag}",
        "name": f"Guinness 50L {tag}",
        "category": "Beer kegs",
        "unit": "keg",
        "sub_units": "88",
        "sub_unit": "pint",
        "unit_cost": "170.5",
        **values,
    }


def form_of(item: dict) -> dict[str, str]:
    """The edit form's fields as the page shows them for this item."""
    from tables.items import form_values

    return form_values(item)


async def skus_on(stocktake_id: int) -> set[str]:
    rows = await StocktakeLine.select(StocktakeLine.item.sku.as_alias("sku")).where(
        StocktakeLine.stocktake == stocktake_id
    )
    return {row["sku"] for row in rows}


async def test_a_manager_adds_an_item_and_finds_it_on_the_list(bar):
    before = await bar.count()

    added = await bar.manager.post(bar.items, new_item(sku=" bk-new.1_a ", unit_cost="2.1"))

    assert added.status_code == 303
    item = await bar.item("BK-NEW.1_A")  # trimmed, in capitals
    assert added.headers["location"] == f"{bar.items}#item-{item['id']}"
    assert (item["unit_cost"], item["sub_units"], item["active"], item["version"]) == (
        21_000, 88, True, 1,
    )  # fmt: skip
    page = await bar.manager.get(bar.items)
    assert f"Added {item['name']} (BK-NEW.1_A)." in page.text
    row = texts(page, f"#item-{item['id']} td")
    assert row == ["BK-NEW.1_A", "Beer kegs", "keg (88 pints)", "2.10"]
    assert await bar.count() == (before[0] + 1, before[1] + 1)
    [line] = await Activity.select().where(
        (Activity.entity_type == "item") & (Activity.entity_id == item["id"])
    )
    assert line["summary"] == f"added the item {item['name']} (BK-NEW.1_A)"


async def test_the_stocktakes_page_links_to_the_items_for_managers_only(bar, as_user):
    page = await bar.manager.get(f"/s/{bar.slug}/stocktakes")
    assert [a["href"] for a in soup(page).select(".page-head a")] == [bar.items]
    erin = await as_user("erin")
    assert "/s/killarney/items" not in (await erin.get("/s/killarney/stocktakes")).text


async def test_an_edit_saves_from_its_version_and_the_trail_says_what_changed(bar):
    item = await bar.add(unit_cost="1")
    name = f"Guinness Draught {uuid.uuid4().hex[:4]}"
    page = await bar.manager.get(bar.edit_url(item))
    assert soup(page).select_one("input[name=version]")["value"] == "1"
    assert soup(page).select_one("#f-unit_cost")["value"] == "1"

    saved = await bar.save(item, name=name, unit_cost="2.5")

    assert saved.status_code == 303
    now = await bar.item(item["sku"])
    assert (now["name"], now["unit_cost"], now["version"]) == (name, 25_000, 2)
    assert f"Saved {name}: name, unit cost." in (await bar.manager.get(bar.items)).text
    line = await (
        Activity.select()
        .where((Activity.verb == "item.edit") & (Activity.entity_id == item["id"]))
        .first()
    )
    assert line["summary"] == (
        f"edited the item {name} ({item['sku']}): name {item['name']} → {name}, unit cost 1 → 2.5"
    )


async def test_saving_an_unchanged_form_writes_nothing(bar):
    item = await bar.add()
    before = await bar.count()

    saved = await bar.save(item)

    assert saved.status_code == 303
    assert "Nothing changed." in (await bar.manager.get(bar.items)).text
    assert (await bar.item(item["sku"]))["version"] == 1 and await bar.count() == before


async def test_search_by_name_or_sku_and_filter_by_category(bar):
    tag = uuid.uuid4().hex[:6].upper()
    gin = await bar.add(sku=f"SP-{tag}", name=f"Dingle Gin {tag}", category="Spirits")
    jager = await bar.add(sku=f"SP-J{tag}", name=f"Jägermeister {tag}", category="Spirits")
    keg = await bar.add(sku=f"BK-{tag}", name=f"Heineken {tag}", category="Beer kegs")

    assert await bar.listed("?q=dingle") == [gin["sku"]]
    assert await bar.listed(f"?q=sp-j{tag.lower()}") == [jager["sku"]]  # a SKU, any case
    assert await bar.listed("?q=JÄGER") == [jager["sku"]]
    assert await bar.listed(f"?q={tag}&category=Spirits") == [gin["sku"], jager["sku"]]
    assert await bar.listed(f"?q={tag}") == [keg["sku"], gin["sku"], jager["sku"]]  # by category
    assert await bar.listed("?q=%00") != []  # unreadable: no search
    page = await bar.manager.get(f"{bar.items}?q=nothing-like-it")
    assert texts(page, "#items .empty") == ["No item matches. Show all in use"]


async def test_an_item_out_of_use_is_left_out_of_later_stocktakes(bar):
    item = await bar.add()
    draft = await bar.new_stocktake()  # populated with it
    assert item["sku"] in await skus_on(draft)

    closed = await bar.in_use(item, yes=False)

    assert closed.status_code == 303 and closed.headers["location"] == bar.edit_url(item)
    assert (await bar.item(item["sku"]))["active"] is False
    assert item["sku"] not in await bar.listed()
    assert item["sku"] in await bar.listed("?inactive=on")
    page = await bar.manager.get(f"{bar.items}?inactive=on")
    assert texts(page, f"#item-{item['id']} .badge") == ["Out of use"]
    assert item["sku"] not in await skus_on(await bar.new_stocktake())
    assert item["sku"] in await skus_on(draft)  # the draft's line stays

    assert (await bar.in_use(item, yes=True)).status_code == 303
    assert item["sku"] in await skus_on(await bar.new_stocktake())
    verbs = await Activity.select(Activity.verb).where(Activity.entity_id == item["id"])
    assert [v["verb"] for v in verbs if v["verb"] != "item.add"] == [
        "item.out_of_use", "item.in_use",
    ]  # fmt: skip


async def test_a_stale_save_is_409_showing_what_changed_and_keeps_theirs(bar):
    item = await bar.add(unit_cost="1")
    theirs = await bar.save(item, name="Theirs", unit_cost="1.25")
    assert theirs.status_code == 303

    mine = await bar.save(item, name="Mine")  # from version 1 too

    assert mine.status_code == 409
    assert texts(mine, "#item-conflict strong")[0].startswith("Fuzz ")  # who saved: the manager
    assert texts(mine, "#item-conflict li") == [
        "Name is now Theirs (you chose Mine)",
        "Unit cost is now 1.25 (you chose 1)",
    ]
    doc = soup(mine)
    assert doc.select_one("#f-name")["value"] == "Mine"  # what they typed, kept
    assert doc.select_one("input[name=version]")["value"] == "2"  # saving again replaces theirs
    now = await bar.item(item["sku"])
    assert (now["name"], now["unit_cost"], now["version"]) == ("Theirs", 12_500, 2)

    again = await bar.save(now, name="Mine", unit_cost="1")
    assert again.status_code == 303 and (await bar.item(item["sku"]))["name"] == "Mine"


GOOD = new_item()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sku", "", "Enter the SKU."),
        ("sku", "X" * 41, "A SKU has at most 40 characters."),
        ("sku", "BK 1", "A SKU is letters, digits"),
        ("sku", "BK\x001", "A SKU is letters, digits"),
        ("sku", "<b>1</b>", "A SKU is letters, digits"),
        ("name", "", "Enter the item's name."),
        ("name", "   ", "Enter the item's name."),
        ("name", "x" * 201, "has at most 200 characters"),
        ("name", "Gin\x00", "has characters that cannot be typed"),
        ("name", "Gin\nTonic", "has characters that cannot be typed"),
        ("category", "", "Enter a category."),
        ("category", "x" * 61, "has at most 60 characters"),
        ("unit", "", "Enter the unit it is counted in"),
        ("unit", "x" * 31, "has at most 30 characters"),
        ("sub_units", "0", "a whole number from 1 to 10,000"),
        ("sub_units", "10001", "a whole number from 1 to 10,000"),
        ("sub_units", "1.5", "a whole number from 1 to 10,000"),
        ("sub_units", str(2**31), "a whole number from 1 to 10,000"),
        ("sub_unit", "", "Enter the sub-unit's name"),  # 88 of them: named
        ("unit_cost", "", "Enter the unit cost (0 if it has none)."),
        ("unit_cost", "1e30", "A unit cost is money. Enter a number like 12.5."),
        ("unit_cost", "NaN", "A unit cost is money. Enter a number like 12.5."),
        ("unit_cost", "-1", "A unit cost is money. It cannot be negative."),
        ("unit_cost", "1.23456", "A unit cost is money. Use at most 4 decimals."),
        ("unit_cost", str(2**31), "A unit cost is money. At most 999,999.9999."),
        ("unit_cost", "1" + "0" * 30, "A unit cost is money. At most 999,999.9999."),
        ("unit_cost", "1\x00", "A unit cost is money. Enter a number like 12.5."),
    ],
)
async def test_bad_input_is_refused_at_its_field_and_nothing_written(bar, field, value, message):
    before = await bar.count()

    refused = await bar.manager.post(bar.items, {**new_item(), field: value})

    assert refused.status_code == 422
    [error] = texts(refused, f"#f-{field}-error")
    assert message in error
    assert soup(refused).select_one("#new-item-form").find_parent("details").has_attr("open")
    assert await bar.count() == before


async def test_a_taken_sku_in_another_case_names_the_item_that_has_it(bar):
    keg = await bar.item("FZ000")  # the site's own keg
    before = await bar.count()

    refused = await bar.manager.post(bar.items, new_item(sku=" fz000"))

    assert refused.status_code == 422
    assert texts(refused, "#f-sku-error") == [f"FZ000 is already the SKU of {keg['name']}."]
    assert await bar.count() == before
    other = await bar.add()
    taken = await bar.save(other, sku="Fz000")
    assert taken.status_code == 422 and "already the SKU of" in texts(taken, "#f-sku-error")[0]
    assert (await bar.item(other["sku"]))["version"] == 1


async def test_markup_is_shown_as_text_in_the_list_and_in_a_refused_form(bar):
    name = f"<script>alert({uuid.uuid4().hex[:4]})</script>"
    item = await bar.add(name=name, category="<i>Spirits</i>")
    page = await bar.manager.get(bar.items)
    assert texts(page, f"#item-{item['id']} th a") == [name]
    assert name not in page.text and "<i>Spirits</i>" not in page.text

    refused = await bar.manager.post(bar.items, new_item(name=name, unit_cost="-1"))
    assert refused.status_code == 422
    assert soup(refused).select_one("#f-name")["value"] == name
    assert name not in refused.text


async def test_bad_edits_are_422_at_the_field_and_leave_the_item_as_it_was(bar):
    item = await bar.add()
    before = await bar.count()

    for changes, field in [
        ({"name": ""}, "name"),
        ({"unit_cost": "1e30"}, "unit_cost"),
        ({"sub_units": "0"}, "sub_units"),
    ]:
        refused = await bar.save(item, **changes)
        assert refused.status_code == 422, changes
        assert texts(refused, f"#f-{field}-error")
    bad_version = await bar.manager.post(bar.edit_url(item), {**form_of(item), "version": "x"})
    assert bad_version.status_code == 422
    assert "reload the page" in bad_version.text
    assert await bar.item(item["sku"]) == item and await bar.count() == before


async def test_a_draft_stocktake_keeps_its_measure_and_cost_while_labels_follow(bar):
    keg = await bar.item("FZ000")  # a line on the site's populated draft stocktake
    [line] = await StocktakeLine.select().where(StocktakeLine.item == keg["id"])

    measure = await bar.save(keg, sub_units="50", sub_unit="litre")
    assert measure.status_code == 422
    assert (
        "can change once that stocktake is approved or deleted"
        in texts(measure, "#f-sub_units-error")[0]
    )
    assert (await bar.item("FZ000"))["sub_units"] == 88

    # (the factory's keg has no sub-unit name: the form asks for one)
    renamed = await bar.save(keg, name="Guinness 50L", sub_unit="pint", unit_cost="2")
    assert renamed.status_code == 303
    [after] = await StocktakeLine.select().where(StocktakeLine.id == line["id"])
    assert after["unit_cost"] == line["unit_cost"] == 10_000  # the draft keeps its cost
    label = await StocktakeLine.select(StocktakeLine.item.name.as_alias("name")).where(
        StocktakeLine.id == line["id"]
    )
    assert label == [{"name": "Guinness 50L"}]  # the name follows
    later = await bar.new_stocktake()
    [fresh] = await StocktakeLine.select().where(
        (StocktakeLine.stocktake == later) & (StocktakeLine.item == keg["id"])
    )
    assert fresh["unit_cost"] == 20_000


async def test_staff_get_403_and_another_sites_item_is_404(bar, as_user):
    erin, admin = await as_user("erin"), await as_user("admin")
    ours = await bar.item("FZ000")
    theirs = await Item.select().where(Item.site == await site_id("killarney")).first()

    assert (await erin.get("/s/killarney/items")).status_code == 403
    assert (await erin.post("/s/killarney/items", new_item())).status_code == 403
    assert (await erin.get(f"/s/killarney/items/{theirs['id']}")).status_code == 403
    assert (
        await erin.post(f"/s/killarney/items/{theirs['id']}/in-use", {"in_use": "no"})
    ).status_code == 403
    assert (await admin.get("/s/killarney/items")).status_code == 200
    for url in (f"/s/killarney/items/{ours['id']}", f"/s/killarney/items/{2**31 - 1}"):
        assert (await admin.get(url)).status_code == 404
        assert (await admin.post(url, form_of(ours) | {"version": "1"})).status_code == 404
        assert (await admin.post(f"{url}/in-use", {"in_use": "no"})).status_code == 404
    assert await bar.item("FZ000") == ours
