"""The dispatch pages as their users meet them (SPEC §5.5; seed 004): the live status
board with its filters and bulk change, a new dispatch, one dispatch's steps, details
under a soft lock and timeline, "my dispatches", and a finalised draft joining the board.
Plain forms first; htmx answers checked where they differ. Both engines."""

from __future__ import annotations

import asyncio
import re

from bs4 import BeautifulSoup

from routes.dispatches import DISPATCH, DISPATCHES
from tables.dispatches import (
    Dispatch,
    DispatchStatusHistory,
    TruckChecklist,
    VehicleDispatch,
    assign,
    create_dispatch,
)
from tests.conftest import events_of, soup, texts
from tests.factories import actor, draft_of, make_asset, make_parcels, site_id, vehicle_id
from tests.test_drafts import open_transport, transport_fields

BOARD = "/s/nairobi/dispatches"


def htmx(client) -> dict[str, str]:
    return {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": client.csrftoken}


async def a_dispatch(type_key: str = "vehicle", model=None, title: str = "Run to Thika", **more):
    """A new dispatch of a new asset at nairobi, made as admin."""
    asset = await make_asset("nairobi", type_key, model, reading=1000)
    admin = await actor("admin")
    values = {"title": title, "asset": str(asset["id"]), "priority": "normal", **more}
    row = await create_dispatch(await site_id("nairobi"), values, admin)
    return row, asset


async def test_the_board_shows_open_dispatches_by_status_most_urgent_first(as_user):
    alice = await as_user("alice")
    page = await alice.get(BOARD)
    assert page.status_code == 200
    heads = [
        h.get_text(" ", strip=True).rsplit(" ", 1)[0] for h in soup(page).select(".dcolumn__head")
    ]
    assert heads == ["Created", "Assigned", "In Progress"]
    for column in soup(page).select(".dcolumn__cards"):
        ranks = [li["data-rank"] for li in column.select("li.dcard")]
        assert ranks == sorted(ranks, key=lambda r: [int(p) for p in r.split("-")])
    counted = sum(
        len(soup(page).select(f"#cards-{s} li.dcard"))
        for s in ("created", "assigned", "in_progress")
    )
    assert counted == await Dispatch.count().where(
        (Dispatch.site == await site_id("nairobi"))
        & Dispatch.status.is_in(["created", "assigned", "in_progress"])
    )
    critical = await alice.get(BOARD, params={"priority": "critical"})
    shown = {li["data-priority"] for li in soup(critical).select("li.dcard")}
    assert shown <= {"critical"}
    # Hostile filters are ignored, never a 500.
    for value in ("'; drop", "\x00", "9" * 40, "<b>"):
        assert (
            await alice.get(BOARD, params={"priority": value, "asset": value})
        ).status_code == 200


async def test_outsiders_get_the_same_404_as_an_unknown_site(as_user):
    dana = await as_user("dana")  # nakuru only
    row, _ = await a_dispatch()
    for url in (BOARD, f"{BOARD}/{row['id']}", f"{BOARD}/new", f"{BOARD}/mine"):
        assert (await dana.get(url)).status_code == 404
    answer = await dana.post(f"{BOARD}/{row['id']}/step", {"to": "assigned", "version": "1"})
    assert answer.status_code == 404
    assert (await Dispatch.select().where(Dispatch.id == row["id"]).first())["status"] == "created"


async def test_a_new_dispatch_by_plain_form_or_bad_input_at_its_fields(app, as_user):
    alice = await as_user("alice")
    asset = await make_asset("nairobi", "vehicle")
    theirs = await make_asset("nakuru", "vehicle")
    before = await Dispatch.count()
    bad = {
        "title": "x" * 5000,
        "description": "<script>alert(1)</script>",
        "asset": str(theirs["id"]),
        "priority": "urgent-ish",
        "due_at": "1850-01-01T10:00",
    }
    refused = await alice.post(f"{BOARD}", bad)
    assert refused.status_code == 422
    invalid = {f.select_one("[name]")["name"] for f in soup(refused).select(".field--invalid")}
    assert invalid == {"title", "description", "asset", "priority", "due_at"}
    assert all(texts(refused, ".field--invalid .field__error"))
    assert soup(refused).select_one("#f-description").get_text() == bad["description"]
    assert await Dispatch.count() == before
    topic = DISPATCHES.topic(alice_site := await site_ref("nairobi"), {})
    answers = []

    async def create():
        answers.append(
            await alice.post(
                BOARD, {"title": "Pallets to Thika", "asset": str(asset["id"]), "priority": "high"}
            )
        )

    (event,) = await events_of(app, topic, create)
    made = await Dispatch.select().where(Dispatch.title == "Pallets to Thika").first()
    assert answers[0].status_code == 303
    assert answers[0].headers["location"] == f"{BOARD}/{made['id']}"
    assert 'hx-target="#cards-created"' in event.html and "Pallets to Thika" in event.html
    assert alice_site.slug == "nairobi"


async def test_an_unknown_asset_or_a_title_of_markup_is_refused_at_its_field(as_user):
    alice = await as_user("alice")
    asset = await make_asset("nairobi", "vehicle")
    before = await Dispatch.count()
    cases = [
        ({"asset": "999999999"}, "asset"),
        ({"asset": "abc"}, "asset"),
        ({"asset": str(2**63)}, "asset"),
        ({"title": "<img src=x onerror=alert(1)>"}, "title"),
        ({"title": "\x00"}, "title"),
        ({"due_at": "2026-02-30T10:00"}, "due_at"),
    ]
    for change, field in cases:
        form = {"title": "A run", "asset": str(asset["id"]), "priority": "normal", **change}
        refused = await alice.post(BOARD, form)
        assert refused.status_code == 422, change
        invalid = {f.select_one("[name]")["name"] for f in soup(refused).select(".field--invalid")}
        assert invalid == {field}, (change, invalid)
    assert await Dispatch.count() == before


async def site_ref(slug: str):
    from tables.people import Site, SiteRef

    row = await Site.select().where(Site.slug == slug).first()
    return SiteRef(row["id"], row["slug"], row["name"], row["timezone"])


async def test_steps_follow_the_graph_and_a_truck_needs_its_checklist_or_an_override(app, as_user):
    admin, alice = await as_user("admin"), await as_user("alice")
    row, _ = await a_dispatch("truck", title="Cement to Athi River")
    page = f"{BOARD}/{row['id']}"
    # Straight to Completed is not a step from Created.
    refused = await alice.post(f"{page}/step", {"to": "completed", "version": "1"})
    assert refused.status_code == 422
    assert "Completed" in soup(refused).select_one(".alert--bad").get_text()
    people = {
        o.get_text(strip=True): o["value"]
        for o in soup(await alice.get(page)).select("#f-assignee option")
    }
    assigned = await alice.post(
        f"{page}/assign", {"assignee": people["Bob Wilson"], "version": "1"}
    )
    assert assigned.status_code == 303
    version = str((await Dispatch.select().where(Dispatch.id == row["id"]).first())["version"])
    # In Progress: the truck's checklist is not done; a dispatcher cannot override.
    blocked = await alice.post(f"{page}/step", {"to": "in_progress", "version": version})
    assert blocked.status_code == 422 and "checklist" in blocked.text
    tried = await alice.post(
        f"{page}/step",
        {"to": "in_progress", "version": version, "override": "on", "reason": "Late"},
    )
    assert tried.status_code == 422
    no_reason = await admin.post(
        f"{page}/step", {"to": "in_progress", "version": version, "override": "on"}
    )
    assert no_reason.status_code == 422
    topic = DISPATCH.topic(await site_ref("nairobi"), {"dispatch": row["id"]})

    async def override():
        done = await admin.post(
            f"{page}/step",
            {
                "to": "in_progress",
                "version": version,
                "override": "on",
                "reason": "Checked by phone",
            },
        )
        assert done.status_code == 303

    (event,) = await events_of(app, topic, override)
    assert "Override" in event.html and "Checked by phone" in event.html
    shown = await alice.get(page)
    entries = soup(shown).select(".timeline__entry")
    assert [e.select_one("strong").get_text() for e in entries if e.select_one("strong")] == [
        "Created",
        "Assigned",
        "In Progress",
    ]
    assert "timeline__entry--override" in entries[-1]["class"]
    history = await DispatchStatusHistory.select().where(
        DispatchStatusHistory.dispatch == row["id"]
    )
    assert [h["to_status"] for h in history] == ["created", "assigned", "in_progress"]
    # Cancelling needs a reason.
    version = str((await Dispatch.select().where(Dispatch.id == row["id"]).first())["version"])
    refused = await alice.post(
        f"{page}/step", {"to": "cancelled", "version": version, "reason": ""}
    )
    assert refused.status_code == 422
    stale = await alice.post(f"{page}/step", {"to": "completed", "version": "1"})
    assert stale.status_code == 409 and "meanwhile" in stale.text


async def test_a_dispatch_offers_only_steps_it_can_take_and_every_form_in_its_live_head(
    app, as_user
):
    """Nobody assigned: no "Mark Assigned" (it could only be refused), a hint to assign
    instead. And the head every viewer receives carries the assign form with the version
    they now see, so a reassignment after someone else's change is not refused."""
    alice = await as_user("alice")
    row, _ = await a_dispatch(title="Crates to Ruiru")
    page = f"{BOARD}/{row['id']}"
    answer = await alice.get(page)
    shown = soup(answer)
    assert texts(answer, ".step button") == ["Cancel the dispatch"]
    assert "Assign someone to move it to Assigned." in shown.select_one("#dispatch-head").text
    people = {o.get_text(strip=True): o["value"] for o in shown.select("#f-assignee option")}

    topic = DISPATCH.topic(await site_ref("nairobi"), {"dispatch": row["id"]})

    async def assign_bob():
        done = await alice.post(
            f"{page}/assign", {"assignee": people["Bob Wilson"], "version": "1"}
        )
        assert done.status_code == 303

    (event,) = await events_of(app, topic, assign_bob)
    head = BeautifulSoup(event.html, "html.parser").select_one("#dispatch-head")
    version = str((await Dispatch.select().where(Dispatch.id == row["id"]).first())["version"])
    assert version != "1"
    assert head.select_one("form.assign input[name=version]")["value"] == version
    assert head.select_one("#f-assignee option[selected]").get_text() == "Bob Wilson"
    assert [b.get_text() for b in head.select(".step button")] == [
        "Mark In Progress",
        "Cancel the dispatch",
    ]
    again = await alice.post(
        f"{page}/assign", {"assignee": people["Charlie Smith"], "version": version}
    )
    assert again.status_code == 303


async def test_the_checklist_is_edited_under_a_lock_with_big_toggles_and_version_checks(
    app, as_user
):
    alice, bob = await as_user("alice"), await as_user("bob")
    row, _ = await a_dispatch("truck", title="Steel to Mombasa")
    editor = f"{BOARD}/{row['id']}/details/truck_checklist"
    assert (await alice.post(f"{editor}/open")).status_code == 303
    page = await alice.get(editor)
    toggles = soup(page).select("fieldset.toggle")
    assert len(toggles) == 11 and all(len(t.select("input[type=radio]")) == 3 for t in toggles)
    token = soup(page).select_one("input[name=token]")["value"]
    version = soup(page).select_one("input[name=version]")["value"]
    # Bob sees who is editing it.
    shown = await bob.get(f"{BOARD}/{row['id']}")
    assert (
        "Being edited by Alice Wanjiru"
        in soup(shown).select_one("#detail-truck_checklist").get_text()
    )
    values = {name: "yes" for name in ("tires", "lights", "brakes", "fluids", "safety_equipment",
              "cargo_secured", "weight_distribution", "manifest_verified", "registration_current",
              "insurance_current", "permits")}  # fmt: skip
    board = DISPATCHES.topic(await site_ref("nairobi"), {})
    answers = []

    async def save():
        form = {**values, "notes": "All good", "version": version, "token": token}
        answers.append(await alice.post(editor, form))

    (event,) = await events_of(app, board, save)  # its card on the board no longer "needs"
    assert answers[0].status_code == 303
    assert f"dispatch-{row['id']}" in event.html and "needs a completed checklist" not in event.html
    checklist = await TruckChecklist.select().where(TruckChecklist.dispatch == row["id"]).first()
    assert checklist["brakes"] is True and checklist["completed_by_name"] == "Alice Wanjiru"
    # A second save from the old version: 409, nothing overwritten.
    assert (await bob.post(f"{editor}/open")).status_code == 303
    bobs = soup(await bob.get(editor)).select_one("input[name=token]")["value"]
    stale = await bob.post(editor, {**values, "brakes": "no", "version": version, "token": bobs})
    assert stale.status_code == 409
    checklist = await TruckChecklist.select().where(TruckChecklist.dispatch == row["id"]).first()
    assert checklist["brakes"] is True


async def test_mileage_end_before_start_is_refused_at_its_field(as_user):
    alice = await as_user("alice")
    row, _ = await a_dispatch("vehicle", title="Parts run")
    editor = f"{BOARD}/{row['id']}/details/vehicle_dispatch"
    await alice.post(f"{editor}/open")
    page = await alice.get(editor)
    form = {
        "token": soup(page).select_one("input[name=token]")["value"],
        "version": soup(page).select_one("input[name=version]")["value"],
        "mileage_start": "1500",
        "mileage_end": "1400",
        "destination_address": "<b>Thika</b>",
        "passengers": str(2**63),
    }
    refused = await alice.post(editor, form)
    assert refused.status_code == 422
    invalid = {f.select_one("[name]")["name"] for f in soup(refused).select(".field--invalid")}
    assert invalid == {"destination_address", "passengers"}  # each at its field
    assert len(texts(refused, ".field__error")) == 2
    assert soup(refused).select_one("#f-mileage_end")["value"] == "1400"
    form.update(destination_address="Thika", passengers="2")
    refused = await alice.post(editor, form)  # now the mileage rule speaks
    assert refused.status_code == 422
    assert texts(refused, ".field__error") == [
        "The mileage at the end cannot be below the start, 1,500 km."
    ]
    detail = await VehicleDispatch.select().where(VehicleDispatch.dispatch == row["id"]).first()
    assert detail["mileage_end"] is None and detail["destination_address"] == ""
    saved = await alice.post(editor, {**form, "mileage_end": "1620", "safety_check_done": "on"})
    assert saved.status_code == 303
    detail = await VehicleDispatch.select().where(VehicleDispatch.dispatch == row["id"]).first()
    assert (detail["mileage_start"], detail["mileage_end"]) == (1500, 1620)
    assert detail["safety_check_done"] is True and detail["destination_address"] == "Thika"


async def test_a_bulk_change_is_all_or_nothing_with_a_result_per_dispatch(app, as_user):
    admin = await as_user("admin")
    truck, _ = await a_dispatch("truck", title="Bulk truck")
    van, _ = await a_dispatch("vehicle", title="Bulk van")
    sid, me = await site_id("nairobi"), await actor("admin")
    for row in (truck, van):
        await assign(sid, row["id"], me.id, me, 1)
    rows = {
        r["id"]: r
        for r in await Dispatch.select().where(Dispatch.id.is_in([truck["id"], van["id"]]))
    }
    ticks = [f"{i}:{rows[i]['version']}" for i in (truck["id"], van["id"])]
    refused = await admin.post(f"{BOARD}/bulk", {"dispatches": ticks, "to": "in_progress"})
    assert refused.status_code == 409
    results = texts(refused, ".bulk-results__item")
    assert any(r.startswith(truck["number"]) and "checklist" in r for r in results), results
    assert any(r.startswith(van["number"]) and "could go" in r for r in results), results
    after = await Dispatch.select().where(Dispatch.id.is_in([truck["id"], van["id"]]))
    assert {r["status"] for r in after} == {"assigned"}
    topic = DISPATCHES.topic(await site_ref("nairobi"), {})

    async def both():
        done = await admin.post(
            f"{BOARD}/bulk", {"dispatches": ticks, "to": "cancelled", "reason": "Rain"}
        )
        assert done.status_code == 303

    truck_page = DISPATCH.topic(await site_ref("nairobi"), {"dispatch": truck["id"]})
    feed = app.state.services.broker.subscribe([truck_page])
    try:
        (event,) = await events_of(app, topic, both)
        told = await asyncio.wait_for(anext(feed), 5)
    finally:
        feed.close()
    assert event.html.count("<hx-partial") >= 2 and f"dispatch-{truck['id']}" in event.html
    assert "hx-upsert" not in event.html  # cancelled: off the board
    # The truck's own page is told to fetch itself again (not drawn 50 times by the bulk).
    assert 'id="live-refetch"' in told.html and len(told.html) < 500
    refetched = await admin.get(
        f"{BOARD}/{truck['id']}/live/poll", params={"regions": "dispatch-head"}
    )
    assert "Cancelled" in soup(refetched).select_one("#dispatch-head .status").get_text()
    odd = await admin.post(
        f"{BOARD}/bulk", {"dispatches": ["²:1", "1:²", "x", ""], "to": "assigned"}
    )
    assert odd.status_code == 422
    htmx_refused = await admin.post(
        f"{BOARD}/bulk", {"dispatches": ticks, "to": "assigned"}, headers=htmx(admin)
    )
    assert htmx_refused.status_code == 409
    assert '<hx-partial hx-target="#bulk-results"' in htmx_refused.text


async def test_my_dispatches_have_one_big_button_for_the_next_step(as_user):
    bob = await as_user("bob")
    row, _ = await a_dispatch("vehicle", title="Bob's run")
    sid, me = await site_id("nairobi"), await actor("bob")
    await assign(sid, row["id"], me.id, await actor("admin"), 1)
    page = await bob.get(f"{BOARD}/mine")
    item = soup(page).select_one(f"#mine-{row['id']}")
    assert item is not None
    (button,) = item.select("button")
    assert button.get_text(" ", strip=True).startswith("Mark In Progress")
    form = {i["name"]: i["value"] for i in item.select("input[type=hidden]")}
    done = await bob.post(f"{BOARD}/{row['id']}/step", form)
    assert done.status_code == 303 and done.headers["location"] == f"{BOARD}/mine"
    assert (await Dispatch.select().where(Dispatch.id == row["id"]).first())[
        "status"
    ] == "in_progress"


async def test_a_finalised_draft_joins_the_status_board_live(app, as_user):
    alice = await as_user("alice")
    town = f"Town{id(app) % 10000}F"
    (parcel,) = await make_parcels("nairobi", town, 1)
    await alice.post("/s/nairobi/drafts/add", {"parcel": [parcel["id"]]})
    draft = await draft_of(town)
    fields = transport_fields(await open_transport(alice, draft["id"]))
    vehicle = {**fields, "vehicle": await vehicle_id("KCC 789C"), "driver": "Bob Wilson"}
    assert (
        await alice.post(f"/s/nairobi/drafts/{draft['id']}/transport", vehicle)
    ).status_code == 303
    topic = DISPATCHES.topic(await site_ref("nairobi"), {})

    async def finalise():
        done = await alice.post(f"/s/nairobi/drafts/{draft['id']}/finalise")
        assert done.status_code == 200

    events = await events_of(app, topic, finalise)
    made = await Dispatch.select().order_by(Dispatch.id, ascending=False).first()
    assert any(f"dispatch-{made['id']}" in e.html and "hx-upsert" in e.html for e in events)
    page = await alice.get(f"{BOARD}/{made['id']}")
    assert page.status_code == 200
    assert re.search(r"1 — the manifest", page.text)
