"""Dispatch rules on the tables alone, on SQLite and PostgreSQL alike: details made exactly
as the asset's type and make/model configure them, the status graph and its reasons, the
truck checklist and a manager's override, bulk changes all or nothing, mileage rules and
the asset's reading, versions and concurrency, hostile input refused with nothing
written, a finalised draft joining in, the views, and the demo data."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tables.activity import Activity
from tables.assets import Asset, AssetType, MakeModel
from tables.base import Actor, DomainError, InvalidInput, StaleVersion, write_tx
from tables.dispatches import (
    CHECKS,
    DETAIL_KINDS,
    NEXT,
    BulkRefused,
    ColdChainLog,
    Dispatch,
    DispatchChanged,
    DispatchDetail,
    DispatchEvent,
    DispatchParcel,
    DispatchStatus,
    DispatchStatusHistory,
    MakeModelDetailSet,
    TransitionRefused,
    TruckChecklist,
    VehicleDispatch,
    asset_dispatches,
    bulk_transition,
    create_dispatch,
    dispatch_view,
    my_dispatches,
    report,
    status_board,
    transition,
    update_detail,
)
from tables.drafts import add_parcels, finalise, set_transport
from tests.conftest import count_queries
from tests.factories import actor, make_asset, make_parcels, site_id, vehicle_id

REEFER = ("Isuzu", "FRR Reefer")
ALL_PASSED = {name: "pass" for name, _ in CHECKS}


async def new(kind: str = "vehicle", model=None, reading=None, **values) -> dict:
    """A dispatch at nairobi of an asset of the test's own, made by the manager."""
    asset = await make_asset("nairobi", kind, model, reading)
    values = {"title": "Eldoret run", "asset": asset["id"], **values}
    return await create_dispatch(await site_id("nairobi"), values, await actor("admin"))


async def row(dispatch_id: int) -> dict:
    return await Dispatch.select().where(Dispatch.id == dispatch_id).first()


async def move(dispatch: dict, to: str, who: str = "admin", **kw) -> dict:
    current = await row(dispatch["id"])
    return await transition(
        current["site"], dispatch["id"], to, await actor(who), current["version"], **kw
    )


async def detail(dispatch: dict, table) -> dict:
    return await table.select().where(table.dispatch == dispatch["id"]).first()


async def fill(dispatch: dict, kind: str, table, values: dict, who: str = "alice") -> dict:
    current = await detail(dispatch, table)
    return await update_detail(
        dispatch["site"], dispatch["id"], kind, values, current["version"], await actor(who)
    )


async def history(dispatch: dict) -> list[tuple]:
    rows = await (
        DispatchStatusHistory.select()
        .where(DispatchStatusHistory.dispatch == dispatch["id"])
        .order_by(DispatchStatusHistory.id)
    )
    return [(r["from_status"], r["to_status"], r["reason"], r["override"]) for r in rows]


async def assigned(kind: str = "vehicle", model=None, reading=None) -> dict:
    alice = await actor("alice")
    return await new(kind, model, reading, assignee=str(alice.id))


async def to_status(dispatch: dict, status: str) -> None:
    """Walk a dispatch along the graph (a checklist passed on the way when it has one)."""
    path = {
        "created": [],
        "assigned": ["assigned"],
        "in_progress": ["assigned", "in_progress"],
        "completed": ["assigned", "in_progress", "completed"],
        "cancelled": ["cancelled"],
    }[status]
    for step in path:
        if step == "in_progress" and await detail(dispatch, TruckChecklist):
            await fill(dispatch, "truck_checklist", TruckChecklist, ALL_PASSED)
        await move(dispatch, step, reason="Postponed" if step == "cancelled" else "")


async def master_list(dispatch: dict) -> list[str]:
    rows = await (
        DispatchDetail.select(DispatchDetail.kind)
        .where(DispatchDetail.dispatch == dispatch["id"])
        .order_by(DispatchDetail.position)
    )
    return [r["kind"] for r in rows]


# -- details from configuration -------------------------------------------------------------


async def test_a_reefer_truck_gets_its_types_details_and_its_models_addition():
    dispatch = await assigned("truck", REEFER)
    assert await master_list(dispatch) == ["vehicle_dispatch", "truck_checklist", "cold_chain"]
    for table in (VehicleDispatch, TruckChecklist, ColdChainLog):
        made = await table.select().where(table.dispatch == dispatch["id"])
        assert len(made) == 1
        owner = await DispatchDetail.select().where(DispatchDetail.id == made[0]["detail"]).first()
        assert owner["dispatch"] == dispatch["id"]
    view = await dispatch_view(dispatch["site"], dispatch["id"])
    assert [d.label for d in view.details] == [
        "Vehicle dispatch",
        "Truck pre-trip checklist",
        "Cold chain log",
    ]


async def test_another_truck_model_gets_only_the_types_details():
    dispatch = await new("truck", ("Isuzu", "NQR"))
    assert await master_list(dispatch) == ["vehicle_dispatch", "truck_checklist"]
    assert await ColdChainLog.count().where(ColdChainLog.dispatch == dispatch["id"]) == 0


async def test_a_vehicle_gets_only_the_vehicle_dispatch_and_a_forklift_nothing():
    van = await new("vehicle", ("Toyota", "Hiace"))
    assert await master_list(van) == ["vehicle_dispatch"]
    assert await TruckChecklist.count().where(TruckChecklist.dispatch == van["id"]) == 0
    forklift = await new("forklift")
    assert await master_list(forklift) == []


async def test_a_switched_off_model_set_is_not_made_any_more():
    model = await MakeModel.select().where(MakeModel.model == REEFER[1]).first()
    await MakeModelDetailSet.update({MakeModelDetailSet.active: False}).where(
        MakeModelDetailSet.make_model == model["id"]
    )
    try:
        dispatch = await new("truck", REEFER)
        assert await master_list(dispatch) == ["vehicle_dispatch", "truck_checklist"]
    finally:
        await MakeModelDetailSet.update({MakeModelDetailSet.active: True}).where(
            MakeModelDetailSet.make_model == model["id"]
        )


async def test_creating_writes_the_number_location_history_and_event():
    asset = await make_asset("nairobi", "vehicle")
    await Asset.update({Asset.location: "Yard C"}).where(Asset.id == asset["id"])
    dispatch = await create_dispatch(
        await site_id("nairobi"),
        {"title": "  Kisumu   pick-up ", "asset": str(asset["id"]), "priority": "High"},
        await actor("alice"),
    )
    assert dispatch["number"] == f"D-{dispatch['id']:05d}"
    assert (dispatch["title"], dispatch["priority"], dispatch["status"]) == (
        "Kisumu pick-up",
        "high",
        "created",
    )
    assert dispatch["location"] == "Yard C"
    assert await history(dispatch) == [(None, "created", "", False)]
    events = await DispatchEvent.select().where(DispatchEvent.dispatch == dispatch["id"])
    assert [e["kind"] for e in events] == ["created"]
    assert events[0]["history"] is not None
    trail = await Activity.select().where(
        (Activity.entity_type == "dispatch") & (Activity.entity_id == dispatch["id"])
    )
    assert [t["verb"] for t in trail] == ["dispatch.created"]


# -- the status graph -----------------------------------------------------------------------

INVALID = [
    (here, there) for here in DispatchStatus for there in DispatchStatus if there not in NEXT[here]
]


@pytest.mark.parametrize(("here", "there"), INVALID, ids=[f"{h}-{t}" for h, t in INVALID])
async def test_every_move_off_the_graph_is_refused_with_a_message(here, there):
    dispatch = await assigned()
    await to_status(dispatch, here)
    before = await row(dispatch["id"])
    rows_before = await history(dispatch)
    with pytest.raises(TransitionRefused) as refused:
        await move(dispatch, there, reason="Because")
    assert str(refused.value).startswith(f"{dispatch['number']} ")
    assert here.word in str(refused.value)
    assert await row(dispatch["id"]) == before
    assert await history(dispatch) == rows_before


async def test_the_happy_path_stamps_each_time_and_logs_each_step():
    dispatch = await assigned()
    for step in ("assigned", "in_progress", "completed"):
        await move(dispatch, step)
    done = await row(dispatch["id"])
    assert done["status"] == "completed" and done["version"] == 4
    assert done["created_at"] <= done["assigned_at"] <= done["started_at"] <= done["completed_at"]
    assert [h[:2] for h in await history(dispatch)] == [
        (None, "created"),
        ("created", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "completed"),
    ]
    events = await DispatchEvent.select().where(DispatchEvent.dispatch == dispatch["id"])
    assert [e["kind"] for e in events] == ["created", "status", "status", "status"]


async def test_assigning_needs_someone_assigned():
    dispatch = await new()
    with pytest.raises(TransitionRefused, match="nobody assigned"):
        await move(dispatch, "assigned")


async def test_cancelling_needs_a_reason_which_the_history_keeps():
    dispatch = await assigned()
    for blank in ("", "   "):
        with pytest.raises(InvalidInput) as refused:
            await move(dispatch, "cancelled", reason=blank)
        assert refused.value.errors == {"reason": "Say why the dispatch is cancelled."}
    assert (await row(dispatch["id"]))["status"] == "created"
    await move(dispatch, "cancelled", reason="Customer postponed")
    assert (await history(dispatch))[-1] == ("created", "cancelled", "Customer postponed", False)
    assert (await row(dispatch["id"]))["cancelled_at"] is not None


# -- the truck checklist --------------------------------------------------------------------


async def test_in_progress_needs_a_completed_checklist_or_a_managers_override_with_a_reason():
    dispatch = await assigned("truck")
    await move(dispatch, "assigned")
    await fill(dispatch, "truck_checklist", TruckChecklist, {"tires": "pass", "lights": "pass"})
    with pytest.raises(TransitionRefused, match="needs a completed checklist"):
        await move(dispatch, "in_progress", who="alice")
    with pytest.raises(TransitionRefused, match="only a manager can override"):
        await move(dispatch, "in_progress", who="alice", reason="In a hurry", override=True)
    with pytest.raises(InvalidInput, match="Say why you override"):
        await move(dispatch, "in_progress", override=True, manager=True)
    assert (await row(dispatch["id"]))["status"] == "assigned"
    await move(dispatch, "in_progress", reason="Checked on paper", override=True, manager=True)
    assert (await history(dispatch))[-1] == (
        "assigned",
        "in_progress",
        "Checked on paper",
        True,
    )
    timeline = (await dispatch_view(dispatch["site"], dispatch["id"])).timeline
    assert [(e.from_status, e.to_status) for e in timeline if e.to_status] == [
        (None, "created"),
        ("created", "assigned"),
        ("assigned", "in_progress"),
    ]
    assert timeline[-1].override and "overriding: needs a completed checklist" in (
        timeline[-1].summary
    )
    times = [e.at for e in timeline]
    assert times == sorted(times)
    assert any(e.kind == "detail" and "Truck pre-trip checklist" in e.summary for e in timeline)


async def test_a_failed_check_blocks_the_start_and_says_which():
    dispatch = await assigned("truck")
    await move(dispatch, "assigned")
    await fill(dispatch, "truck_checklist", TruckChecklist, {**ALL_PASSED, "brakes": "fail"})
    with pytest.raises(TransitionRefused, match=r"failed its checklist \(brakes\)"):
        await move(dispatch, "in_progress")
    assert (await detail(dispatch, TruckChecklist))["completed_at"] is None
    await fill(dispatch, "truck_checklist", TruckChecklist, {"brakes": "pass"})
    signed = await detail(dispatch, TruckChecklist)
    assert signed["completed_by_name"] == "Alice Wanjiru" and signed["completed_at"]
    await move(dispatch, "in_progress", who="alice")
    assert (await history(dispatch))[-1][3] is False  # no override needed


# -- bulk -----------------------------------------------------------------------------------


async def test_a_bulk_change_with_one_blocked_dispatch_changes_nothing_and_says_why():
    vans = [await assigned() for _ in range(2)]
    truck = await assigned("truck")
    ticked = [*vans, truck]
    for each in ticked:
        await move(each, "assigned")
    before = [await row(d["id"]) for d in ticked]
    events = await DispatchEvent.count()
    site = truck["site"]
    with pytest.raises(BulkRefused) as refused:
        await bulk_transition(site, [d["id"] for d in ticked], "in_progress", await actor("bob"))
    results = {r.number: (r.ok, r.message) for r in refused.value.results}
    assert results == {
        vans[0]["number"]: (True, ""),
        vans[1]["number"]: (True, ""),
        truck["number"]: (False, "needs a completed checklist"),
    }
    assert f"{truck['number']}: needs a completed checklist" in str(refused.value)
    assert [await row(d["id"]) for d in ticked] == before
    assert await DispatchEvent.count() == events
    await fill(truck, "truck_checklist", TruckChecklist, ALL_PASSED)
    moved = await bulk_transition(
        site, [d["id"] for d in ticked], "in_progress", await actor("bob")
    )
    assert [m["status"] for m in moved] == ["in_progress"] * 3


async def test_a_bulk_change_refuses_stale_and_foreign_dispatches_as_a_whole():
    mine = await assigned()
    theirs = await create_dispatch(
        await site_id("nakuru"),
        {"title": "Nakuru run", "asset": (await make_asset("nakuru", "vehicle"))["id"]},
        await actor("admin"),
    )
    with pytest.raises(BulkRefused) as refused:
        await bulk_transition(
            mine["site"], [mine["id"], theirs["id"]], "cancelled", await actor("admin"),
            reason="Rain",
        )  # fmt: skip
    assert [(r.ok, r.message) for r in refused.value.results] == [
        (True, ""),
        (False, "There is no such dispatch."),
    ]
    with pytest.raises(BulkRefused, match=r"changed by .* meanwhile"):
        await bulk_transition(
            mine["site"], [mine["id"]], "cancelled", await actor("admin"),
            versions={mine["id"]: mine["version"] + 1}, reason="Rain",
        )  # fmt: skip
    assert (await row(mine["id"]))["status"] == "created"
    assert (await row(theirs["id"]))["status"] == "created"


# -- mileage --------------------------------------------------------------------------------


async def test_mileage_end_at_least_start_at_least_the_assets_reading_and_completion_moves_it():
    dispatch = await assigned("vehicle", reading=50_000)
    await move(dispatch, "assigned")
    with pytest.raises(InvalidInput) as refused:
        await fill(dispatch, "vehicle_dispatch", VehicleDispatch, {"mileage_start": "49999"})
    assert "50,000 km" in refused.value.errors["mileage_start"]
    await fill(dispatch, "vehicle_dispatch", VehicleDispatch, {"mileage_start": "50010"})
    with pytest.raises(InvalidInput) as refused:
        await fill(dispatch, "vehicle_dispatch", VehicleDispatch, {"mileage_end": "50009"})
    assert refused.value.errors["mileage_end"].startswith("The mileage at the end cannot be")
    assert (await detail(dispatch, VehicleDispatch))["mileage_end"] is None
    await move(dispatch, "in_progress")
    with pytest.raises(TransitionRefused, match="needs the mileage at the end"):
        await move(dispatch, "completed")
    await fill(dispatch, "vehicle_dispatch", VehicleDispatch, {"mileage_end": "50230"})
    asset = await Asset.select().where(Asset.id == dispatch["vehicle"]).first()
    assert asset["meter_reading"] == 50_000  # not before completion
    await move(dispatch, "completed")
    asset = await Asset.select().where(Asset.id == dispatch["vehicle"]).first()
    assert asset["meter_reading"] == 50_230
    with pytest.raises(DomainError, match="details are final"):
        await fill(dispatch, "vehicle_dispatch", VehicleDispatch, {"driver_notes": "late"})


async def test_a_safety_check_is_signed_by_who_ticked_it():
    dispatch = await assigned()
    saved = await fill(dispatch, "vehicle_dispatch", VehicleDispatch, {"safety_check_done": "on"})
    assert saved["safety_check_by_name"] == "Alice Wanjiru" and saved["safety_check_at"]
    saved = await fill(dispatch, "vehicle_dispatch", VehicleDispatch, {"safety_check_done": ""})
    assert (saved["safety_check_by_name"], saved["safety_check_at"]) == ("", None)


# -- versions and concurrency ---------------------------------------------------------------


async def test_a_transition_from_a_stale_version_is_refused():
    dispatch = await assigned()
    await move(dispatch, "assigned")
    with pytest.raises(DispatchChanged) as stale:
        await transition(
            dispatch["site"], dispatch["id"], "cancelled", await actor("bob"),
            dispatch["version"], reason="Rain",
        )  # fmt: skip
    assert stale.value.current["status"] == "assigned"


async def test_two_saves_of_a_detail_from_one_version_one_wins():
    dispatch = await assigned()
    first = await detail(dispatch, VehicleDispatch)
    alice, bob = await actor("alice"), await actor("bob")
    await update_detail(
        dispatch["site"], dispatch["id"], "vehicle_dispatch", {"passengers": "2"},
        first["version"], alice,
    )  # fmt: skip
    with pytest.raises(StaleVersion) as stale:
        await update_detail(
            dispatch["site"], dispatch["id"], "vehicle_dispatch", {"passengers": "3"},
            first["version"], bob,
        )  # fmt: skip
    assert stale.value.changes == {"passengers": (3, 2)}


async def test_two_people_moving_one_dispatch_at_once_exactly_one_wins():
    dispatch = await assigned()
    people = [await actor("alice"), await actor("bob")]

    async def one(who: Actor):
        try:
            return await transition(
                dispatch["site"], dispatch["id"], "assigned", who, dispatch["version"]
            )
        except DispatchChanged as stale:
            return stale

    outcomes = await asyncio.gather(*(one(p) for p in people))
    won = [o for o in outcomes if isinstance(o, dict)]
    lost = [o for o in outcomes if isinstance(o, DispatchChanged)]
    assert (len(won), len(lost)) == (1, 1)
    assert [h[:2] for h in await history(dispatch)] == [(None, "created"), ("created", "assigned")]
    assert (await row(dispatch["id"]))["version"] == 2


# -- hostile input --------------------------------------------------------------------------

HOSTILE = [
    ({"title": "x" * 5000}, "title"),
    ({"title": "Eldoret\x00run"}, "title"),
    ({"title": ""}, "title"),
    ({"title": "<script>alert(1)</script>"}, "title"),
    ({"description": "Fragile <img src=x onerror=alert(1)>"}, "description"),
    ({"due_at": "1850-01-01T10:00"}, "due_at"),
    ({"due_at": "9999-12-31T23:59"}, "due_at"),
    ({"due_at": "0001-01-01T00:00"}, "due_at"),
    ({"due_at": "tomorrow"}, "due_at"),
    ({"asset": 2**31}, "asset"),
    ({"asset": str(2**63)}, "asset"),
    ({"asset": "-1"}, "asset"),
    ({"assignee": 2**63}, "assignee"),
    ({"priority": "urgent!"}, "priority"),
]


@pytest.mark.parametrize(("values", "field"), HOSTILE, ids=[f for _, f in HOSTILE])
async def test_hostile_values_are_refused_at_their_field_with_nothing_written(values, field):
    asset = await make_asset("nairobi", "vehicle")
    counts = (await Dispatch.count(), await DispatchDetail.count(), await DispatchEvent.count())
    with pytest.raises(InvalidInput) as refused:
        await create_dispatch(
            await site_id("nairobi"),
            {"title": "Eldoret run", "asset": asset["id"], **values},
            await actor("admin"),
        )
    assert field in refused.value.errors
    after = (await Dispatch.count(), await DispatchDetail.count(), await DispatchEvent.count())
    assert after == counts


async def test_another_sites_asset_is_refused():
    nakuru_van = await make_asset("nakuru", "vehicle")
    with pytest.raises(InvalidInput) as refused:
        await create_dispatch(
            await site_id("nairobi"),
            {"title": "Eldoret run", "asset": nakuru_van["id"]},
            await actor("admin"),
        )
    assert refused.value.errors == {"asset": "Choose one of this site's assets."}


DETAIL_HOSTILE = [
    ({"mileage_start": str(2**31)}, "mileage_start"),
    ({"mileage_start": 2**63}, "mileage_start"),
    ({"fuel_start": "101"}, "fuel_start"),
    ({"fuel_end": "-1"}, "fuel_end"),
    ({"passengers": "two"}, "passengers"),
    ({"driver_notes": "n" * 2001}, "driver_notes"),
    ({"route_notes": "Turn left <b>here</b>"}, "route_notes"),
    ({"destination_address": "Kisumu\x00"}, "destination_address"),
]


@pytest.mark.parametrize(("values", "field"), DETAIL_HOSTILE, ids=[f for _, f in DETAIL_HOSTILE])
async def test_hostile_detail_values_are_refused_with_nothing_written(values, field):
    dispatch = await assigned()
    before = await detail(dispatch, VehicleDispatch)
    with pytest.raises(InvalidInput) as refused:
        await fill(dispatch, "vehicle_dispatch", VehicleDispatch, values)
    assert field in refused.value.errors
    assert await detail(dispatch, VehicleDispatch) == before


async def test_text_that_only_looks_like_markup_is_kept_as_typed():
    dispatch = await new(description="Load < 5 t & keep > 2 m from the wall")
    assert dispatch["description"] == "Load < 5 t & keep > 2 m from the wall"


async def test_unknown_kinds_and_other_sites_dispatches_are_no_such_thing():
    dispatch = await assigned()
    nakuru = await site_id("nakuru")
    with pytest.raises(DomainError, match="no such dispatch"):
        await transition(nakuru, dispatch["id"], "assigned", await actor("dana"), 1)
    with pytest.raises(DomainError, match="no such detail"):
        await update_detail(dispatch["site"], dispatch["id"], "x", {}, 1, await actor("alice"))
    with pytest.raises(DomainError, match="no such dispatch"):
        await dispatch_view(nakuru, dispatch["id"])


# -- finalised drafts -----------------------------------------------------------------------


async def test_a_finalised_draft_becomes_a_dispatch_with_details_history_and_its_manifest(town):
    nairobi = await site_id("nairobi")
    alice = await actor("alice")
    parcels = await make_parcels("nairobi", town, 2)
    ttl = timedelta(hours=1)
    async with write_tx():
        added = await add_parcels(nairobi, [p["id"] for p in parcels], alice, ttl)
        draft_id = next(iter(added.added))
        await set_transport(nairobi, draft_id, 1, await vehicle_id("KCC 789C"), "Bob W", alice, ttl)
        made = await finalise(nairobi, draft_id, alice)
    dispatch = await row(made["id"])
    assert (dispatch["status"], dispatch["title"], dispatch["driver_name"]) == (
        "created",
        f"{town} run",
        "Bob W",
    )
    assert await master_list(dispatch) == ["vehicle_dispatch", "truck_checklist"]  # an NQR truck
    assert await history(dispatch) == [(None, "created", "", False)]
    (event,) = await DispatchEvent.select().where(DispatchEvent.dispatch == dispatch["id"])
    assert event["summary"] == f"finalised from the {town} draft (2 parcels)"
    assert await DispatchParcel.count().where(DispatchParcel.dispatch == dispatch["id"]) == 2
    board = await status_board(nairobi, only=[dispatch["id"]])
    assert [c.number for c in board.columns[0].cards] == [dispatch["number"]]


# -- views ----------------------------------------------------------------------------------


async def test_the_status_board_groups_open_dispatches_most_urgent_first_with_overdue():
    nairobi = await site_id("nairobi")
    past = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    low = await new(priority="low")
    late = await new(priority="critical", due_at=past)
    truck = await assigned("truck")
    await move(truck, "assigned")
    done = await assigned()
    await to_status(done, "completed")
    ids = [low["id"], late["id"], truck["id"], done["id"]]
    board = await status_board(nairobi, only=ids)
    assert [(c.word, [d.number for d in c.cards]) for c in board.columns] == [
        ("Created", [late["number"], low["number"]]),
        ("Assigned", [truck["number"]]),
        ("In Progress", []),
    ]
    created = board.columns[0].cards
    assert (created[0].overdue, created[1].overdue) == (True, False)
    assert board.columns[1].cards[0].needs == ["needs a completed checklist"]
    filtered = await status_board(nairobi, {"priority": "critical"}, only=ids)
    assert [c.number for c in filtered.cards] == [late["number"]]


@pytest.mark.parametrize("count", [3, 30])
async def test_the_status_board_reads_in_a_fixed_number_of_queries(count):
    asset = await make_asset("nairobi", "truck")
    admin = await actor("admin")
    nairobi = await site_id("nairobi")
    values = {"asset": asset["id"], "assignee": str((await actor("bob")).id)}
    made = [
        await create_dispatch(nairobi, {"title": f"Run {i}", **values}, admin) for i in range(count)
    ]
    await bulk_transition(nairobi, [d["id"] for d in made], "assigned", admin)
    with count_queries() as seen:
        board = await status_board(nairobi, only=[d["id"] for d in made])
    assert len(board.cards) == count
    # The dispatches, and one query per detail kind that can block their next step.
    assert len(seen) == 1 + sum(1 for k in DETAIL_KINDS.values() if "in_progress" in k.requires)


async def test_my_dispatches_and_an_assets_history():
    dispatch = await assigned()
    await move(dispatch, "assigned")
    alice = await actor("alice")
    mine = await my_dispatches(dispatch["site"], alice.id)
    card = next(c for c in mine if c.id == dispatch["id"])
    assert card.next_status == DispatchStatus.in_progress
    again = await create_dispatch(
        dispatch["site"], {"title": "Second trip", "asset": dispatch["vehicle"]}, alice
    )
    numbers = [c.number for c in await asset_dispatches(dispatch["site"], dispatch["vehicle"])]
    assert numbers == [again["number"], dispatch["number"]]


async def test_the_report_counts_by_status_and_averages_exactly():
    # A site of its own would be cleaner; a period no demo dispatch falls in will do.
    nairobi = await site_id("nairobi")
    start = datetime(2031, 3, 1, tzinfo=UTC)
    made = []
    for i, (kind, priority, seconds) in enumerate(
        [("vehicle", "high", 3600), ("vehicle", "high", 3601), ("truck", "low", 100)]
    ):
        alice = await actor("alice")
        dispatch = await new(kind, priority=priority, assignee=str(alice.id))
        await to_status(dispatch, "completed")
        created = start + timedelta(days=i)
        await Dispatch.update(
            {
                Dispatch.created_at: created,
                Dispatch.completed_at: created + timedelta(seconds=seconds),
            }
        ).where(Dispatch.id == dispatch["id"])
        made.append(dispatch)
    cancelled = await new()
    await to_status(cancelled, "cancelled")
    await Dispatch.update({Dispatch.created_at: start}).where(Dispatch.id == cancelled["id"])
    result = await report(nairobi, start, start + timedelta(days=30))
    assert result.by_status == {
        "created": 0,
        "assigned": 0,
        "in_progress": 0,
        "completed": 3,
        "cancelled": 1,
    }
    assert [(a.label, a.dispatches, a.seconds) for a in result.by_asset_type] == [
        ("Truck", 1, 100),
        ("Vehicle", 2, 3601),  # 3600.5 rounds half up
    ]
    assert [(a.label, a.dispatches, a.seconds) for a in result.by_priority] == [
        ("Low", 1, 100),
        ("High", 2, 3601),
    ]


# -- the demo -------------------------------------------------------------------------------


async def test_the_demo_has_assets_by_type_and_forty_dispatches_with_histories():
    types = await AssetType.select(AssetType.name).order_by(AssetType.name)
    assert {"Forklift", "Truck", "Vehicle"} <= {t["name"] for t in types}
    reefer = await MakeModel.select().where(MakeModel.model == REEFER[1]).first()
    extra = await MakeModelDetailSet.select(MakeModelDetailSet.kind).where(
        MakeModelDetailSet.make_model == reefer["id"]
    )
    assert extra == [{"kind": "cold_chain"}]
    for registration in ("KCC 789C", "KBZ 123A", "KDA 456B", "KCB 321D"):
        asset = await Asset.select(Asset.type.name).where(Asset.registration == registration)
        assert asset[0]["type.name"] in ("Vehicle", "Truck"), registration
    demo_sites = [await site_id("nairobi"), await site_id("nakuru")]
    demo = await Dispatch.select().where(  # not the tests': theirs are of "T …" assets
        Dispatch.site.is_in(demo_sites)
        & (Dispatch.created_by_name == "Ada Manager")
        & Dispatch.vehicle.registration.not_like("T %")
    )
    by_status = {s.value: 0 for s in DispatchStatus}
    for d in demo:
        by_status[d["status"]] += 1
    assert len(demo) >= 40
    assert all(n >= 3 for n in by_status.values()), by_status
    firsts = await DispatchStatusHistory.select().where(
        DispatchStatusHistory.from_status.is_null()
        & DispatchStatusHistory.dispatch.is_in([d["id"] for d in demo])
    )
    assert len(firsts) == len(demo)
    overrides = await DispatchStatusHistory.count().where(
        DispatchStatusHistory.override.eq(True) & (DispatchStatusHistory.reason != "")
    )
    assert overrides >= 1


async def test_demo_dispatch_numbers_are_unique_and_readable():
    numbers = [r["number"] for r in await Dispatch.select(Dispatch.number)]
    assert len(numbers) == len(set(numbers))
    assert all(n.startswith("D-") and n[2:].isdigit() and len(n) >= 7 for n in numbers)
