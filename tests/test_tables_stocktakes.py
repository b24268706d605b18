"""Stocktake rules on the tables alone: exact quantities and money on both engines,
populate once (also when pressed twice at once, in chunks, all or nothing), counts that
carry what the counter saw, offline counts applied once, movements and "moved since
counted", the variance threshold and recounts, approval exactly once, bad input refused
at its field with nothing written, isolation between sites, views in a fixed number of
queries — on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from piccolo.apps.user.tables import BaseUser

from tables.activity import Activity
from tables.base import Actor, DomainError, InvalidInput, StaleVersion, write_tx
from tables.people import Organisation, Site
from tables.stocktakes import (
    NO_LINE,
    NO_MOVEMENT,
    NO_STOCKTAKE,
    Adjustment,
    AppliedCount,
    ApproveResult,
    Item,
    Movement,
    Stocktake,
    StocktakeLine,
    add_movement,
    approve,
    count_line,
    create_stocktake,
    delete_movement,
    delete_stocktake,
    export_rows,
    line_by_sku,
    lines_by_id,
    movement_stamps,
    movements_of,
    populate,
    stocktake_figures,
    stocktake_view,
    stocktakes_of,
    variance_by_category,
)
from tests.conftest import count_queries
from tests.factories import site_id

# -- factories ------------------------------------------------------------------------------


async def actor(username: str) -> Actor:
    user = await BaseUser.select().where(BaseUser.username == username).first()
    return Actor(user["id"], f"{user['first_name']} {user['last_name']}")


MADE: list[int] = []  # the sites this module made, removed after each test


async def new_site() -> int:
    """A site of the test's own, so populate sees only the test's items (removed with
    everything in it after the test, so site counts elsewhere stay as the demo made them)."""
    org = await Organisation.select(Organisation.id).first()
    slug = f"t-{uuid.uuid4().hex[:10]}"
    rows = await Site.insert(
        Site(organisation=org["id"], slug=slug, name=f"Bar {slug}", kind="hotel")
    ).returning(Site.id)
    MADE.append(rows[0]["id"])
    return rows[0]["id"]


@pytest.fixture(autouse=True)
async def remove_test_sites():
    yield
    sites, MADE[:] = list(MADE), []
    if not sites:
        return
    lines = StocktakeLine.select(StocktakeLine.id).where(
        StocktakeLine.stocktake._.site.is_in(sites)
    )
    async with write_tx():
        await Adjustment.delete().where(Adjustment.site.is_in(sites))
        await AppliedCount.delete().where(AppliedCount.line.is_in(lines))
        await Movement.delete().where(Movement.line.is_in(lines))
        await StocktakeLine.delete().where(
            StocktakeLine.stocktake.is_in(
                Stocktake.select(Stocktake.id).where(Stocktake.site.is_in(sites))
            )
        )
        await Stocktake.delete().where(Stocktake.site.is_in(sites))
        await Item.delete().where(Item.site.is_in(sites))
        await Activity.delete().where(Activity.site.is_in(sites))
        await Site.delete().where(Site.id.is_in(sites))


async def make_items(site: int, count: int = 1, **kw) -> list[dict]:
    """Items of a site: bottles counted in tenths at 2.10 unless told otherwise."""
    values = {
        "name": "Jameson 70cl",
        "category": "Spirits",
        "unit": "bottle",
        "sub_units": 10,
        "sub_unit": "tenth",
        "unit_cost": 21000,
        **kw,
    }
    made = []
    for start in range(0, count, 500):
        rows = await Item.insert(
            *(
                Item(site=site, sku=f"T{uuid.uuid4().hex[:10].upper()}", **values)
                for _ in range(start, min(count, start + 500))
            )
        ).returning(*Item.all_columns())
        made.extend(rows)
    return made


async def draft(site: int, threshold: str = "", blind: str = "") -> dict:
    return await create_stocktake(
        site,
        {
            "period_start": "2026-11-01",
            "period_end": "2026-11-30",
            "variance_threshold": threshold,
            "blind": blind,
        },
        await actor("admin"),
    )


async def populated(site: int, threshold: str = "", **kw) -> tuple[dict, list]:
    """A draft with one line per active item; returns it and its lines (LineViews)."""
    stocktake = await draft(site, threshold, **kw)
    await populate(site, stocktake["id"], await actor("admin"))
    return stocktake, (await stocktake_view(site, stocktake["id"])).lines


async def line(site: int, line_id: int):
    return (await lines_by_id(site, [line_id]))[line_id]


async def count(site: int, line_id: int, full: str, partial: str = "", **kw):
    who = kw.pop("who", None) or await actor("erin")
    current = await line(site, line_id)
    version = kw.pop("version", current.version)
    return await count_line(site, line_id, version, full, partial, who, **kw)


async def count_all(site: int, stocktake_id: int, full: str = "1") -> None:
    for each in (await stocktake_view(site, stocktake_id)).lines:
        await count(site, each.id, full)


# -- exactness ------------------------------------------------------------------------------


async def test_twelve_and_a_half_plus_three_tenths_three_times_less_a_tenth_is_exactly_13_3():
    site = await new_site()
    (item,) = await make_items(site)
    erin, admin = await actor("erin"), await actor("admin")
    # The opening is a real one: last stocktake's approved count of 12 bottles + 5 tenths.
    first, (only,) = await populated(site)
    await count(site, only.id, "12", "5")
    assert (await line(site, only.id)).counted == Decimal("12.5")
    await approve(site, first["id"], admin)
    second, (now,) = await populated(site)
    assert now.opening == Decimal("12.5")
    for _ in range(3):
        await add_movement(site, now.id, "purchase", "0.3", "INV-1", erin)
    await add_movement(site, now.id, "waste", "0.1", "Spilt", erin)
    view = await line(site, now.id)
    assert (view.purchases, view.waste, view.expected) == (
        Decimal("0.9"),
        Decimal("0.1"),
        Decimal("13.3"),
    )
    assert str(view.expected) == "13.3"
    await count(site, now.id, "13")
    view = await line(site, now.id)
    assert (view.counted, view.variance) == (Decimal("13"), Decimal("-0.3"))
    assert view.variance_value == Decimal("-0.63") and str(view.variance_value) == "-0.63"
    stored = await StocktakeLine.select().where(StocktakeLine.id == now.id).first()
    assert (stored["opening"], stored["purchases"], stored["waste"], stored["counted"]) == (
        12500,
        900,
        100,
        13000,
    )
    assert all(type(stored[n]) is int for n in ("opening", "purchases", "waste", "counted"))
    (row,) = await export_rows(site, second["id"])
    assert (row["expected"], row["counted"], row["variance"], row["variance_value"]) == (
        "13.3",
        "13",
        "-0.3",
        "-0.63",
    )
    assert (row["opening"], row["purchases"], row["waste"], row["unit_cost"]) == (
        "12.5",
        "0.9",
        "0.1",
        "2.1",
    )
    assert await variance_by_category(site, second["id"]) == [("Spirits", Decimal("-0.63"))]
    summaries = {s.id: s for s in await stocktakes_of(site)}
    assert summaries[second["id"]].variance_value == Decimal("-0.63")
    assert summaries[first["id"]].variance_value == Decimal("26.25")  # 12.5 x 2.10
    result = await approve(site, second["id"], admin)
    assert result.adjustments == 1
    adjustment = await Adjustment.select().where(Adjustment.stocktake == second["id"]).first()
    assert (adjustment["quantity"], adjustment["unit_cost"], adjustment["item"]) == (
        -300,
        21000,
        item["id"],
    )


async def test_a_partial_in_sub_units_that_do_not_divide_a_thousand_rounds_to_a_thousandth():
    site = await new_site()
    await make_items(site, unit="keg", sub_units=88, sub_unit="pint", unit_cost=1_800_000)
    _, (keg,) = await populated(site)
    await count(site, keg.id, "3", "1")
    view = await line(site, keg.id)
    assert (view.counted, view.counted_full, view.counted_partial) == (
        Decimal("3.011"),  # 3 + 1/88 = 3.01136…, half up to the thousandth
        Decimal("3"),
        Decimal("1"),
    )
    assert view.count_label == "3 keg + 1 pint"
    await count(site, keg.id, "0", "44")
    assert (await line(site, keg.id)).counted == Decimal("0.5")


# -- populate -------------------------------------------------------------------------------


async def test_populate_makes_one_line_per_active_item_and_a_second_press_adds_nothing():
    site = await new_site()
    await make_items(site, 3)
    await make_items(site, 1, active=False, name="Discontinued")
    stocktake = await draft(site)
    admin = await actor("admin")
    lines_before = await Activity.count().where(Activity.site == site)
    assert await populate(site, stocktake["id"], admin) == 3
    assert await populate(site, stocktake["id"], admin) == 0
    view = await stocktake_view(site, stocktake["id"])
    assert view.total == 3 and view.counted == 0 and view.progress == "0 of 3"
    assert all(line.opening == 0 and line.counted is None for line in view.lines)
    assert await Activity.count().where(Activity.site == site) == lines_before + 1
    # An item added later joins on the next press; the others are not doubled.
    await make_items(site, 2)
    assert await populate(site, stocktake["id"], admin) == 2
    assert await StocktakeLine.count().where(StocktakeLine.stocktake == stocktake["id"]) == 5


async def test_a_few_thousand_items_populate_in_chunks_with_progress_in_one_transaction():
    site = await new_site()
    await make_items(site, 1100)
    stocktake = await draft(site)
    seen: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))

    assert await populate(site, stocktake["id"], await actor("admin"), progress) == 1100
    assert seen == [(500, 1100), (1000, 1100), (1100, 1100)]
    assert await StocktakeLine.count().where(StocktakeLine.stocktake == stocktake["id"]) == 1100


async def test_a_populate_that_fails_half_way_leaves_no_lines():
    site = await new_site()
    await make_items(site, 700)
    stocktake = await draft(site)

    async def fail_after_first_chunk(done: int, total: int) -> None:
        raise RuntimeError("the connection dropped")

    with pytest.raises(RuntimeError):
        async with write_tx():
            await populate(site, stocktake["id"], await actor("admin"), fail_after_first_chunk)
    assert await StocktakeLine.count().where(StocktakeLine.stocktake == stocktake["id"]) == 0
    assert await populate(site, stocktake["id"], await actor("admin")) == 700


async def test_two_populates_at_the_same_moment_make_one_set_of_lines():
    site = await new_site()
    await make_items(site, 40)
    stocktake = await draft(site)
    people = [await actor("admin"), await actor("erin")]

    async def press(who: Actor) -> int:
        async with write_tx():
            return await populate(site, stocktake["id"], who)

    added = await asyncio.gather(*(press(p) for p in people))
    assert sorted(added) == [0, 40]
    assert await StocktakeLine.count().where(StocktakeLine.stocktake == stocktake["id"]) == 40


async def test_an_items_measure_cannot_change_under_a_populate_under_way():
    """A manager saves a new measure for an item while a populate is adding it to a draft:
    the save waits for the populate (its items are locked until it commits), then finds
    the draft counting the item and is refused — the line is never counted by a measure
    the item no longer has."""
    from tables.items import form_values, update_item

    site = await new_site()
    (keg,) = await make_items(site, 1, name="Guinness keg", unit="keg", sub_units=88)
    stocktake = await draft(site)
    admin = await actor("admin")
    halfway, go_on = asyncio.Event(), asyncio.Event()

    async def progress(done: int, total: int) -> None:
        halfway.set()  # its lines are written, not yet committed
        await go_on.wait()

    async def press() -> int:
        async with write_tx():
            return await populate(site, stocktake["id"], admin, progress)

    async def save_new_measure() -> None:
        async with write_tx():
            values = {**form_values(keg), "sub_units": "50"}
            await update_item(site, keg["id"], keg["version"], values, admin)

    populating = asyncio.create_task(press())
    await halfway.wait()
    saving = asyncio.create_task(save_new_measure())
    await asyncio.sleep(0.5)
    assert not saving.done()  # waiting for the populate
    go_on.set()
    assert await populating == 1
    with pytest.raises(InvalidInput) as refused:
        await saving
    assert "counts it by" in refused.value.errors["sub_units"]
    kept = await Item.select(Item.sub_units).where(Item.id == keg["id"]).first()
    assert kept["sub_units"] == 88


async def test_openings_come_from_the_last_approved_count_else_zero():
    site = await new_site()
    counted, fresh = await make_items(site, 2)
    admin = await actor("admin")
    first, lines = await populated(site)
    for each in lines:
        await count(site, each.id, "4" if each.item_id == counted["id"] else "0", "5")
    await approve(site, first["id"], admin)
    # A draft that was never approved does not count.
    _, lines = await populated(site)
    for each in lines:
        await count(site, each.id, "9")
    third, lines = await populated(site)
    openings = {each.item_id: each.opening for each in lines}
    assert openings == {counted["id"]: Decimal("4.5"), fresh["id"]: Decimal("0.5")}
    brand_new = (await make_items(site))[0]
    await populate(site, third["id"], admin)
    view = await stocktake_view(site, third["id"])
    assert {each.item_id: each.opening for each in view.lines}[brand_new["id"]] == 0


# -- counting -------------------------------------------------------------------------------


async def test_a_count_records_who_and_when_and_bumps_the_version():
    site = await new_site()
    await make_items(site)
    _, (only,) = await populated(site)
    result = await count(site, only.id, "3", "4")
    assert result.applied is True
    assert (result.line["counted"], result.line["version"]) == (3400, 2)
    view = await line(site, only.id)
    assert (view.counted, view.counted_by_name, view.version) == (
        Decimal("3.4"),
        "Erin O'Sullivan",
        2,
    )
    assert view.counted_at is not None and view.label.startswith("Jameson 70cl (T")
    entry = (await Activity.recent(site, 1))[0]
    assert entry["summary"] == f"counted {view.label}: 3.4 bottle"
    assert (entry["verb"], entry["entity_type"]) == ("stocktake.count", "stocktake")


async def test_two_counters_saving_one_line_from_one_version_one_wins_the_other_sees_both():
    site = await new_site()
    await make_items(site)
    _, (only,) = await populated(site)
    erin, admin = await actor("erin"), await actor("admin")

    async def save(who: Actor, full: str):
        try:
            async with write_tx():
                return await count_line(site, only.id, 1, full, "", who)
        except StaleVersion as stale:
            return stale

    outcomes = await asyncio.gather(save(erin, "3"), save(admin, "4"))
    (lost,) = [o for o in outcomes if isinstance(o, StaleVersion)]
    (won,) = [o for o in outcomes if not isinstance(o, StaleVersion)]
    winner = won.line["counted_by_name"]
    assert str(lost) == f"{winner} saved a newer version while you were editing."
    if winner == "Erin O'Sullivan":
        assert lost.changes == {"counted": ("4 bottle", "3 bottle")}
    else:
        assert lost.changes == {"counted": ("3 bottle", "4 bottle")}
    assert (await line(site, only.id)).version == 2


async def test_an_offline_count_sent_twice_is_applied_once():
    site = await new_site()
    await make_items(site)
    _, (only,) = await populated(site)
    erin = await actor("erin")
    first = await count_line(site, only.id, 1, "5", "", erin, client_id="tab-1:0001")
    again = await count_line(site, only.id, 1, "5", "", erin, client_id="tab-1:0001")
    assert (first.applied, again.applied) == (True, False)
    assert again.line["version"] == 2 and again.line["counted"] == 5000
    assert await AppliedCount.count().where(AppliedCount.line == only.id) == 1
    # Another count meanwhile; the old one arriving late is still recognised, not refused.
    await count_line(site, only.id, 2, "6", "", erin, client_id="tab-1:0002")
    late = await count_line(site, only.id, 1, "5", "", erin, client_id="tab-1:0001")
    assert late.applied is False and late.line["counted"] == 6000
    assert (await line(site, only.id)).version == 3


async def test_one_offline_count_sent_twice_at_the_same_moment_is_applied_once():
    site = await new_site()
    await make_items(site)
    _, (only,) = await populated(site)
    erin = await actor("erin")

    async def send() -> bool:
        async with write_tx():
            return (await count_line(site, only.id, 1, "7", "", erin, client_id="abc")).applied

    assert sorted(await asyncio.gather(send(), send())) == [False, True]
    assert (await line(site, only.id)).version == 2


# -- movements ------------------------------------------------------------------------------


async def test_a_movement_after_counting_flags_moved_since_counted_until_the_next_count():
    site = await new_site()
    await make_items(site)
    _, (only,) = await populated(site)
    erin = await actor("erin")
    await add_movement(site, only.id, "purchase", "2", "before", erin)
    assert (await line(site, only.id)).moved_since_counted is False
    await count(site, only.id, "2")
    made = await add_movement(site, only.id, "PURCHASE", "1", " INV  77 ", erin)
    assert (made["kind"], made["quantity"], made["reference"]) == ("purchase", 1000, "INV 77")
    view = await line(site, only.id)
    assert view.moved_since_counted is True and view.version == 2  # a count still counts
    assert view.expected == Decimal("3") and view.variance == Decimal("-1")
    listed = await movements_of(site, only.id)
    assert [(m["kind"], m["quantity"]) for m in listed] == [
        ("purchase", Decimal("2")),
        ("purchase", Decimal("1")),
    ]
    await count(site, only.id, "3")
    assert (await line(site, only.id)).moved_since_counted is False
    await delete_movement(site, made["id"], erin)
    view = await line(site, only.id)
    assert (view.expected, view.moved_since_counted) == (Decimal("2"), True)
    assert len(await movements_of(site, only.id)) == 1
    with pytest.raises(DomainError, match=NO_MOVEMENT):
        await delete_movement(site, made["id"], erin)


async def test_waste_cannot_exceed_what_is_expected_nor_a_deletion_leave_less_than_nothing():
    site = await new_site()
    await make_items(site)
    _, (only,) = await populated(site)
    erin = await actor("erin")
    with pytest.raises(InvalidInput) as refused:
        await add_movement(site, only.id, "waste", "0.1", "", erin)
    assert refused.value.errors == {"quantity": "Only 0 bottle expected: waste cannot be more."}
    bought = await add_movement(site, only.id, "purchase", "1", "", erin)
    await add_movement(site, only.id, "waste", "1", "", erin)
    with pytest.raises(DomainError) as refused_delete:
        await delete_movement(site, bought["id"], erin)
    assert refused_delete.value.field == "movement"
    assert (await line(site, only.id)).expected == 0


# -- the variance threshold and approval ----------------------------------------------------


async def test_a_count_over_the_threshold_is_sent_back_and_approval_waits_for_the_recount():
    site = await new_site()
    await make_items(site, 2)
    stocktake, (big, small) = await populated(site, threshold="5")
    admin = await actor("admin")
    await count(site, small.id, "2")  # 2 x 2.10 = 4.20: under
    await count(site, big.id, "3")  # 3 x 2.10 = 6.30: over
    view = await stocktake_view(site, stocktake["id"])
    assert view.variance_threshold == Decimal("5")
    assert [each.id for each in view.recount] == [big.id]
    flagged = await line(site, big.id)
    assert (flagged.over_threshold, flagged.needs_recount, flagged.flagged) == (True, True, True)
    assert not (await line(site, small.id)).over_threshold
    over = await stocktake_view(site, stocktake["id"], {"over": "on"})
    assert [each.id for each in over.lines] == [big.id]
    with pytest.raises(DomainError) as refused:
        await approve(site, stocktake["id"], admin)
    assert str(refused.value) == (
        f"1 line is over the variance threshold and must be recounted first: {flagged.label}."
    )
    assert refused.value.field == "status"
    assert (await Stocktake.select().where(Stocktake.id == stocktake["id"]).first())[
        "status"
    ] == "draft"
    # The recount stands, even still over: it was counted twice.
    await count(site, big.id, "3")
    recounted = await line(site, big.id)
    assert (recounted.over_threshold, recounted.needs_recount, recounted.recounted) == (
        True,
        False,
        True,
    )
    # A delivery that changes the figures sends it back again; one that brings it under clears.
    erin = await actor("erin")
    await add_movement(site, big.id, "purchase", "0.5", "", erin)
    assert (await line(site, big.id)).needs_recount is True
    await add_movement(site, big.id, "purchase", "2", "", erin)
    assert (await line(site, big.id)).needs_recount is False
    result = await approve(site, stocktake["id"], admin)
    assert result.adjustments == 2


async def test_approval_is_refused_while_lines_are_uncounted():
    site = await new_site()
    await make_items(site, 3)
    stocktake, lines = await populated(site)
    await count(site, lines[0].id, "1")
    with pytest.raises(DomainError, match=r"^2 lines are not counted yet \("):
        await approve(site, stocktake["id"], await actor("admin"))
    empty = await draft(site)
    with pytest.raises(DomainError, match="no lines: populate it first"):
        await approve(site, empty["id"], await actor("admin"))


async def test_approval_makes_one_adjustment_per_non_zero_variance_and_freezes_the_stocktake():
    site = await new_site()
    await make_items(site, 4)
    stocktake, lines = await populated(site)
    erin, admin = await actor("erin"), await actor("admin")
    await add_movement(site, lines[0].id, "purchase", "2", "", erin)
    for each, full in zip(lines, ["2", "0", "1", "0"], strict=True):
        await count(site, each.id, full)  # variances 0, 0, +1, 0
    result = await approve(site, stocktake["id"], admin)
    assert isinstance(result, ApproveResult) and result.adjustments == 1
    assert (result.stocktake["status"], result.stocktake["approved_by_name"]) == (
        "approved",
        "Ada Manager",
    )
    assert result.stocktake["approved_at"] is not None and result.stocktake["adjustments"] == 1
    assert await Adjustment.count().where(Adjustment.stocktake == stocktake["id"]) == 1
    entry = (await Activity.recent(site, 1))[0]
    assert entry["summary"] == "approved the stocktake 1–30 Nov 2026: 1 adjustment"  # noqa: RUF001
    # Read-only from now on.
    for attempt in (
        count(site, lines[1].id, "5"),
        add_movement(site, lines[1].id, "purchase", "1", "", erin),
        populate(site, stocktake["id"], admin),
    ):
        with pytest.raises(DomainError) as refused:
            await attempt
        assert refused.value.field == "status"
    with pytest.raises(DomainError, match="An approved stocktake cannot be deleted"):
        await delete_stocktake(site, stocktake["id"], admin)
    with pytest.raises(DomainError, match=r"^Already approved by Ada Manager\.$"):
        await approve(site, stocktake["id"], admin)
    view = await stocktake_view(site, stocktake["id"])
    assert view.approved and view.status_word == "Approved" and view.lines[0].approved


async def test_two_managers_approving_at_the_same_moment_make_one_set_of_adjustments():
    site = await new_site()
    await make_items(site, 6)
    stocktake, lines = await populated(site)
    for n, each in enumerate(lines):
        await count(site, each.id, str(n % 3))  # 4 of 6 non-zero
    people = [await actor("admin"), await actor("oscar")]

    async def press(who: Actor) -> ApproveResult | DomainError:
        try:
            async with write_tx():
                return await approve(site, stocktake["id"], who)
        except DomainError as refused:
            return refused

    outcomes = await asyncio.gather(*(press(p) for p in people))
    (won,) = [o for o in outcomes if isinstance(o, ApproveResult)]
    (lost,) = [o for o in outcomes if isinstance(o, DomainError)]
    assert won.adjustments == 4
    assert str(lost) == f"Already approved by {won.stocktake['approved_by_name']}."
    assert await Adjustment.count().where(Adjustment.stocktake == stocktake["id"]) == 4
    approvals = await Activity.count().where(
        (Activity.site == site) & (Activity.verb == "stocktake.approve")
    )
    assert approvals == 1


# -- bad input ------------------------------------------------------------------------------

BAD_COUNTS = [
    ("negative", "-1", "", "full", "A count: It cannot be negative."),
    ("huge exponent", "1e309", "", "full", "Enter a number like 12.5."),
    ("words", "abc", "", "full", "Enter a number like 12.5."),
    ("not a number", "NaN", "", "full", "Enter a number like 12.5."),
    ("infinity", "inf", "", "full", "Enter a number like 12.5."),
    ("empty", "", "", "full", "Enter a number like 12.5."),
    ("comma", "1,5", "", "full", "Enter a number like 12.5."),
    ("arabic digits", "\u0663", "", "full", "Enter a number like 12.5."),
    ("a million", "1000000", "", "full", "A count: At most 999,999.999."),
    ("5 kB", "9" * 5000, "", "full", "A count: At most 999,999.999."),
    ("4 decimals", "1.0001", "", "full", None),
    ("a fraction of a bottle", "1.5", "", "full", None),
    ("7 tenths of 6", "1", "7", "partial", None),
    ("negative partial", "1", "-2", "partial", "A partial count: It cannot be negative."),
    ("partial words", "1", "half", "partial", "A partial count: Enter a number like 12.5."),
]


@pytest.mark.parametrize(
    ("full", "partial", "field", "message"),
    [b[1:] for b in BAD_COUNTS],
    ids=[b[0] for b in BAD_COUNTS],
)
async def test_a_bad_count_is_refused_at_its_field_and_nothing_is_written(
    full, partial, field, message
):
    site = await new_site()
    await make_items(site, sub_units=10 if field != "partial" or partial != "7" else 6)
    _, (only,) = await populated(site)
    trail = await Activity.count()
    with pytest.raises(InvalidInput) as refused:
        async with write_tx():
            await count_line(site, only.id, 1, full, partial, await actor("erin"))
    assert list(refused.value.errors) == [field]
    if message:
        assert refused.value.errors[field] == message
    assert refused.value.field == field
    after = await line(site, only.id)
    assert (after.counted, after.version) == (None, 1)
    assert await Activity.count() == trail


async def test_a_partial_of_seven_where_a_unit_has_six_names_the_limit():
    site = await new_site()
    await make_items(site, unit="case", sub_units=6, sub_unit="bottle")
    _, (only,) = await populated(site)
    with pytest.raises(InvalidInput) as refused:
        await count(site, only.id, "1", "7")
    assert refused.value.errors == {
        "partial": "A case has 6 bottles: a partial is at most 5 (more is a whole case)."
    }
    await count(site, only.id, "1", "3")
    assert (await line(site, only.id)).counted == Decimal("1.5")


async def test_whole_unit_items_take_decimals_in_full_and_no_partial():
    site = await new_site()
    await make_items(site, unit="kg", sub_units=1, sub_unit="", name="Flour")
    _, (only,) = await populated(site)
    await count(site, only.id, "2.355")
    assert (await line(site, only.id)).counted == Decimal("2.355")
    with pytest.raises(InvalidInput) as refused:
        await count(site, only.id, "2", "1")
    assert refused.value.errors == {
        "partial": "This item is counted in kgs only: leave the partial empty."
    }


BAD_MOVEMENTS = [
    ("zero", {"quantity": "0"}, "quantity", "Give a quantity above 0."),
    ("negative", {"quantity": "-1"}, "quantity", "A quantity: It cannot be negative."),
    ("huge", {"quantity": "1e309"}, "quantity", "Enter a number like 12.5."),
    ("words", {"quantity": "abc"}, "quantity", "Enter a number like 12.5."),
    ("theft", {"kind": "theft"}, "kind", "Choose purchase or waste."),
    ("long reference", {"reference": "r" * 101}, "reference", None),
    ("NUL in reference", {"reference": "INV\x00"}, "reference", None),
]


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [b[1:] for b in BAD_MOVEMENTS],
    ids=[b[0] for b in BAD_MOVEMENTS],
)
async def test_a_bad_movement_is_refused_at_its_field_and_nothing_is_written(
    values, field, message
):
    site = await new_site()
    await make_items(site)
    _, (only,) = await populated(site)
    form = {"kind": "purchase", "quantity": "1", "reference": "INV-1", **values}
    trail = await Activity.count()
    with pytest.raises(InvalidInput) as refused:
        async with write_tx():
            await add_movement(
                site, only.id, form["kind"], form["quantity"], form["reference"],
                await actor("erin"),
            )  # fmt: skip
    assert list(refused.value.errors) == [field]
    if message:
        assert refused.value.errors[field] == message
    assert await Movement.count().where(Movement.line == only.id) == 0
    assert (await line(site, only.id)).expected == 0
    assert await Activity.count() == trail


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        (
            {"period_start": "", "period_end": "2026-02-30"},
            {
                "period_start": "Give the period's start like 2026-11-30.",
                "period_end": "Give the period's end like 2026-11-30.",
            },
        ),
        (
            {"period_start": "2026-11-30", "period_end": "2026-11-01"},
            {"period_end": "The period cannot end before it starts."},
        ),
        (
            {"period_start": "2026-11-01", "period_end": "2026-11-30", "variance_threshold": "-5"},
            {"variance_threshold": "A variance threshold is money. It cannot be negative."},
        ),
        (
            {"period_start": "2026-11-01", "period_end": "2026-11-30", "variance_threshold": "x"},
            {"variance_threshold": "A variance threshold is money. Enter a number like 12.5."},
        ),
    ],
)
async def test_a_bad_stocktake_is_refused_per_field(values, errors):
    site = await new_site()
    with pytest.raises(InvalidInput) as refused:
        await create_stocktake(site, values, await actor("admin"))
    assert refused.value.errors == errors
    assert await Stocktake.count().where(Stocktake.site == site) == 0


async def test_a_client_id_that_is_not_one_is_refused():
    site = await new_site()
    await make_items(site)
    _, (only,) = await populated(site)
    for bad in ("x" * 65, "a b", "<script>"):
        with pytest.raises(InvalidInput) as refused:
            await count(site, only.id, "1", client_id=bad)
        assert list(refused.value.errors) == ["client_id"]


# -- isolation between sites ----------------------------------------------------------------


async def test_another_sites_stocktake_line_and_movement_are_refused_like_unknown_ones():
    mine, theirs = await new_site(), await new_site()
    await make_items(theirs)
    stocktake, (their_line,) = await populated(theirs)
    erin, admin = await actor("erin"), await actor("admin")
    movement = await add_movement(theirs, their_line.id, "purchase", "1", "", erin)
    for attempt in (
        populate(mine, stocktake["id"], admin),
        approve(mine, stocktake["id"], admin),
        delete_stocktake(mine, stocktake["id"], admin),
        stocktake_view(mine, stocktake["id"]),
        export_rows(mine, stocktake["id"]),
        populate(mine, 2**31 + 5, admin),
        stocktake_view(mine, 99_999_999),
    ):
        with pytest.raises(DomainError) as refused:
            await attempt
        assert (str(refused.value), refused.value.field) == (NO_STOCKTAKE, "stocktake")
    for attempt in (
        count_line(mine, their_line.id, 1, "1", "", erin),
        add_movement(mine, their_line.id, "purchase", "1", "", erin),
        movements_of(mine, their_line.id),
        count_line(mine, 99_999_999, 1, "1", "", erin),
    ):
        with pytest.raises(DomainError) as refused:
            await attempt
        assert (str(refused.value), refused.value.field) == (NO_LINE, "line")
    with pytest.raises(DomainError, match=NO_MOVEMENT):
        await delete_movement(mine, movement["id"], erin)
    assert await lines_by_id(mine, [their_line.id]) == {}
    assert await line_by_sku(mine, stocktake["id"], their_line.sku) is None
    assert await stocktakes_of(mine) == []
    untouched = await line(theirs, their_line.id)
    assert (untouched.counted, untouched.purchases) == (None, Decimal("1"))


async def test_populate_takes_only_the_sites_own_items():
    mine, theirs = await new_site(), await new_site()
    await make_items(mine, 2)
    await make_items(theirs, 5)
    _, lines = await populated(mine)
    assert len(lines) == 2


# -- deleting -------------------------------------------------------------------------------


async def test_a_draft_is_deleted_with_its_lines_and_movements():
    site = await new_site()
    await make_items(site, 2)
    stocktake, lines = await populated(site)
    erin = await actor("erin")
    await add_movement(site, lines[0].id, "purchase", "1", "", erin)
    await count_line(site, lines[0].id, 1, "1", "", erin, client_id="c1")
    await delete_stocktake(site, stocktake["id"], await actor("admin"))
    assert await Stocktake.count().where(Stocktake.id == stocktake["id"]) == 0
    assert await StocktakeLine.count().where(StocktakeLine.stocktake == stocktake["id"]) == 0
    assert await Movement.count().where(Movement.line == lines[0].id) == 0
    assert await AppliedCount.count().where(AppliedCount.line == lines[0].id) == 0
    assert (await Activity.recent(site, 1))[0]["summary"] == (
        "deleted the stocktake 1–30 Nov 2026"  # noqa: RUF001
    )


# -- views ----------------------------------------------------------------------------------


async def test_the_view_groups_by_category_with_progress_and_filters():
    site = await new_site()
    await make_items(site, 2, category="Wine", name="Rioja", sub_units=5, sub_unit="glass")
    await make_items(site, 1, category="Beer kegs", name="Guinness", sub_units=88)
    await make_items(site, 1, category="Wine", name="Chablis", sub_units=5, sub_unit="glass")
    stocktake, lines = await populated(site, blind="on")
    assert [each.name for each in lines] == ["Guinness", "Chablis", "Rioja", "Rioja"]
    await count(site, lines[1].id, "1")
    view = await stocktake_view(site, stocktake["id"])
    assert view.blind and all(each.blind for each in view.lines)
    assert [(c.name, c.progress) for c in view.categories] == [
        ("Beer kegs", "0 of 1"),
        ("Wine", "1 of 3"),
    ]
    assert view.progress == "1 of 4" and view.label == "1–30 Nov 2026"  # noqa: RUF001
    searched = await stocktake_view(site, stocktake["id"], {"q": "  rIOJA "})
    assert [each.name for each in searched.lines] == ["Rioja", "Rioja"]
    assert [c.name for c in searched.shown] == ["Wine"]
    assert searched.categories[1].progress == "1 of 3"  # progress whatever the filter
    by_sku = await stocktake_view(site, stocktake["id"], {"q": lines[0].sku.lower()})
    assert [each.id for each in by_sku.lines] == [lines[0].id]
    kegs = await stocktake_view(site, stocktake["id"], {"category": "Beer kegs"})
    assert [each.id for each in kegs.lines] == [lines[0].id]
    uncounted = await stocktake_view(site, stocktake["id"], {"uncounted": "on"})
    assert lines[1].id not in [each.id for each in uncounted.lines]
    assert len(uncounted.lines) == 3
    found = await line_by_sku(site, stocktake["id"], f"  {lines[2].sku.lower()} ")
    assert found is not None and found.id == lines[2].id
    assert await line_by_sku(site, stocktake["id"], "NOPE") is None
    hostile = await stocktake_view(site, stocktake["id"], {"q": "\x00" * 5000, "category": 5})
    assert len(hostile.lines) == 4
    # What a saved count redraws: the same figures, without reading the lines as views.
    await count(site, lines[0].id, "2")
    whole, figures = (
        await stocktake_view(site, stocktake["id"]),
        await stocktake_figures(site, stocktake["id"]),
    )
    assert [(c.name, c.progress, c.variance_value) for c in figures.categories] == [
        (c.name, c.progress, c.variance_value) for c in whole.categories
    ]
    assert (figures.progress, figures.variance_value) == (whole.progress, whole.variance_value)


@pytest.mark.parametrize("lines", [10, 300])
async def test_views_read_in_a_fixed_number_of_queries(lines):
    site = await new_site()
    await make_items(site, lines // 2, category="Spirits")
    await make_items(site, lines - lines // 2, category="Wine", sub_units=5)
    stocktake, made = await populated(site)
    erin = await actor("erin")
    for each in made[:5]:
        await count(site, each.id, "1")
        await add_movement(site, each.id, "purchase", "1", "", erin)
    with count_queries() as seen:
        view = await stocktake_view(site, stocktake["id"], {"q": "a"})
    assert len(seen) == 2 and view.total == lines
    with count_queries() as seen:
        summaries = await stocktakes_of(site)
    assert len(seen) == 3 and summaries[0].total == lines and summaries[0].counted == 5
    with count_queries() as seen:
        found = await lines_by_id(site, [each.id for each in made])
    assert len(seen) == 1 and len(found) == lines
    with count_queries() as seen:
        figures = await stocktake_figures(site, stocktake["id"])
        stamps = await movement_stamps(stocktake["id"])
    assert len(seen) == 3 and figures.total == lines and figures.counted == 5
    assert figures.lines == [] and set(stamps) == {each.id for each in made[:5]}
    with count_queries() as seen:
        rows = await export_rows(site, stocktake["id"])
        await variance_by_category(site, stocktake["id"])
    assert len(seen) == 4 and len(rows) == lines


# -- the demo -------------------------------------------------------------------------------


async def test_the_demo_has_a_catalogue_an_approved_stocktake_and_a_draft_being_counted():
    killarney = await site_id("killarney")
    items = await Item.select(Item.category).where(Item.site == killarney)
    assert len(items) >= 250 and len({i["category"] for i in items}) >= 8
    approved, drafting = sorted(await stocktakes_of(killarney), key=lambda s: s.period_start)
    assert approved.status == "approved" and approved.adjustments > 0
    assert approved.counted == approved.total >= 250
    assert drafting.status == "draft" and 0 < drafting.counted < drafting.total
    view = await stocktake_view(killarney, drafting.id)
    assert any(each.opening > 0 for each in view.lines)  # openings from the approved count
    assert {each.counted_by_name for each in view.lines if each.is_counted} == {"Erin O'Sullivan"}
    assert any(each.moved_since_counted for each in view.lines)
    assert await Movement.count().where(Movement.line._.stocktake == drafting.id) > 0
