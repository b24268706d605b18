"""The live-area kit as its users meet it, through the drafts page and the site home:
messages that survive a redirect, one form's errors on that form only, the no-JS status
frame, what one action publishes (a row, a line — not whole lists), locks that lapse,
and the manager's take-over. Runs on SQLite + memory and PostgreSQL + Redis alike."""

from __future__ import annotations

import asyncio
import re

import pytest

from live.broker import Subscription
from live.events import Event
from routes.drafts import TRANSPORT
from routes.editing import release_lapsed
from tables.activity import Activity
from tables.drafts import Draft
from tables.people import SiteRef
from tests.conftest import soup, texts
from tests.factories import draft_of, make_parcels, site_id, vehicle_id

DRAFTS = "/s/nairobi/drafts"


async def next_event(sub: Subscription, timeout: float = 5.0) -> Event:  # noqa: ASYNC109
    return await asyncio.wait_for(anext(sub), timeout)


@pytest.fixture
async def nairobi() -> SiteRef:
    site = await SiteRef.load(await site_id("nairobi"))
    assert site is not None
    return site


async def test_a_plain_post_is_followed_by_its_message_on_the_page_it_lands_on(as_user, town):
    (parcel,) = await make_parcels("nairobi", town, 1)
    alice = await as_user("alice")
    added = await alice.post(f"{DRAFTS}/add", {"parcel": [parcel["id"]]})
    assert added.status_code == 303
    page = await alice.get(added.headers["location"])
    assert texts(page, ".messages .alert") == ["Added 1 parcel."]
    assert texts(await alice.get(DRAFTS), ".messages .alert") == []  # shown once


async def test_a_refused_scan_shows_on_the_scan_box_only_which_comes_back_empty(as_user):
    """Without JavaScript the whole page comes back; the Receive form is not touched."""
    alice = await as_user("alice")
    page = await alice.post(f"{DRAFTS}/scan", {"code": "NOPE-9999"})
    assert page.status_code == 422
    assert texts(page, "#scan-error") == ["No parcel NOPE-9999 at this branch."]
    assert soup(page).select_one("#scan-code")["value"] == ""  # the next scan replaces it
    assert soup(page).select_one("#scan-code").has_attr("autofocus")
    assert texts(page, "#receive-form .field__error") == []
    assert not soup(page).select_one("details.receive").has_attr("open")
    assert soup(page).select_one("#r-code")["value"] == ""


async def test_a_bad_parcel_keeps_its_values_in_its_own_form(as_user):
    alice = await as_user("alice")
    form = {"code": "NEW-77", "destination": "Eldoret", "description": "Box", "weight": "-1"}
    page = await alice.post(f"{DRAFTS}/parcels", form)
    assert page.status_code == 422
    assert soup(page).select_one("details.receive").has_attr("open")
    assert soup(page).select_one("#r-code")["value"] == "NEW-77"
    assert texts(page, "#scan-error") == []


async def test_the_status_frame_counts_changes_since_the_page_was_loaded(as_user, town):
    """For a page without JavaScript: a small frame says it is out of date; the page
    itself (and what its user typed) is never reloaded."""
    (parcel,) = await make_parcels("nairobi", town, 1)
    alice, bob = await as_user("alice"), await as_user("bob")
    # Another test's lock lapsing is a real change to this page too: load it again until
    # nothing happened between loading it and asking the frame.
    for _ in range(10):
        page = await alice.get(DRAFTS)
        src = soup(page).select_one("noscript iframe.live-frame")["src"]
        fresh = await alice.get(src)
        if texts(fresh, "p") == ["Up to date"]:
            break
        await asyncio.sleep(0.5)
    assert not soup(page).select('meta[http-equiv="refresh"]')
    assert texts(fresh, "p") == ["Up to date"]
    assert fresh.headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in fresh.headers["content-security-policy"]
    await bob.post(f"{DRAFTS}/add", {"parcel": [parcel["id"]]})
    stale = await alice.get(src)
    # At least bob's add (other tests' lapsing locks may add a change of their own).
    (said,) = texts(stale, "p")
    assert re.fullmatch(r"[1-9]\d* changes? since you loaded this page\. Refresh", said), said
    assert soup(stale).select_one("a[target=_top]")["href"] == DRAFTS
    garbage = await alice.get(f"{DRAFTS}/live/status?cursor=nonsense&page=https://evil.example/")
    assert texts(garbage, "p") == ["This page may be out of date. Refresh"]
    assert soup(garbage).select_one("a")["href"] == DRAFTS  # never another site's page


async def test_receiving_a_parcel_publishes_its_row_and_one_activity_line(app, as_user, nairobi):
    """Not the whole parcel table to every viewer, nor the whole activity list."""
    alice = await as_user("alice")
    broker = app.state.services.broker
    drafts_feed = broker.subscribe([f"drafts:{nairobi.id}"])
    home_feed = broker.subscribe([f"site:{nairobi.id}"])
    try:
        form = {"code": "ROW-0001", "destination": "Eldoret", "description": "Box", "weight": "2"}
        assert (await alice.post(f"{DRAFTS}/parcels", form)).status_code == 303
        row = await next_event(drafts_feed)
        line = await next_event(home_feed)
    finally:
        drafts_feed.close()
        home_feed.close()
    assert '<hx-upsert hx-target="#parcel-rows" key="data-key" sort>' in row.html
    assert row.html.count("<tr ") == 1 and 'hx-target="#parcels"' not in row.html
    assert line.html.count('class="activity__line"') == 1
    assert "received ROW-0001 for Eldoret" in line.html


async def test_a_lock_that_lapses_clears_its_badge_for_everyone(app, as_user, town, nairobi):
    """A tablet that vanished holding "Vehicle & driver": once its lock runs out, the
    watcher republishes the draft without the badge."""
    (parcel,) = await make_parcels("nairobi", town, 1)
    alice = await as_user("alice")
    await alice.post(f"{DRAFTS}/add", {"parcel": [parcel["id"]]})
    draft = await draft_of(town)
    svc = app.state.services
    key = TRANSPORT.key(nairobi, {"draft": draft["id"]})
    await svc.locks.acquire(key, 2, "Bob Wilson", ttl=0.2)
    page = await alice.get(DRAFTS)
    assert texts(page, f"#draft-{draft['id']} .draft__lock") == ["Being edited by Bob Wilson"]
    feed = svc.broker.subscribe([f"drafts:{nairobi.id}"])
    try:
        await asyncio.sleep(0.4)
        await release_lapsed(svc)  # or the app's own watcher got there first: either tells
        event = await next_event(feed)
        # Heartbeats and presence; and another test's lock may lapse meanwhile.
        while event.ephemeral or f'hx-target="#draft-{draft["id"]}"' not in event.html:
            event = await next_event(feed)
    finally:
        feed.close()
    assert event.kind == "draft_transport.lapsed"
    assert f'hx-target="#draft-{draft["id"]}"' in event.html
    assert "Being edited by" not in event.html
    assert texts(await alice.get(DRAFTS), f"#draft-{draft['id']} .draft__lock") == []


async def test_looking_at_the_transport_editor_takes_no_lock(app, as_user, town, nairobi):
    (parcel,) = await make_parcels("nairobi", town, 1)
    alice = await as_user("alice")
    await alice.post(f"{DRAFTS}/add", {"parcel": [parcel["id"]]})
    draft = await draft_of(town)
    page = await alice.get(f"{DRAFTS}/{draft['id']}/transport")
    assert page.status_code == 200
    assert soup(page).select_one("#editor")["data-lock-state"] == "free"
    key = TRANSPORT.key(nairobi, {"draft": draft["id"]})
    assert await app.state.services.locks.holder(key) is None


async def test_a_manager_takes_over_the_transport_editor(as_user, town, nairobi):
    (parcel,) = await make_parcels("nairobi", town, 1)
    bob, admin = await as_user("bob"), await as_user("admin")
    await bob.post(f"{DRAFTS}/add", {"parcel": [parcel["id"]]})
    draft = await draft_of(town)
    editor = f"{DRAFTS}/{draft['id']}/transport"
    await bob.post(f"{editor}/open")
    bobs = await bob.get(editor)
    token = soup(bobs).select_one("input[name=token]")["value"]
    held = await admin.get(editor)
    assert texts(held, ".editor__break button") == ["Take over from Bob Wilson"]
    assert (await admin.post(f"{editor}/break")).status_code == 303
    refused = await bob.post(
        editor,
        {"version": "1", "token": token, "vehicle": await vehicle_id("KCC 789C"), "driver": "X"},
    )
    assert refused.status_code == 423
    assert "Being edited by Ada Manager" in texts(refused, ".lock-state")[0]
    assert (await bob.post(f"{editor}/lock", {"token": token})).status_code == 409
    trail = await Activity.recent(nairobi.id, 1)
    assert trail[0]["summary"] == (
        f"took over editing the {town} draft's vehicle and driver from Bob Wilson"
    )
    assert (await Draft.select(Draft.driver_name).where(Draft.id == draft["id"]).first())[
        "driver_name"
    ] == ""


async def test_driver_suggestions_come_from_the_site_itself(as_user):
    """Nakuru's editor suggests nakuru's people and drivers, never nairobi's."""
    dana = await as_user("dana")
    draft = await Draft.select(Draft.id).where(Draft.destination == "Nairobi").first()
    page = await dana.get(f"/s/nakuru/drafts/{draft['id']}/transport")
    names = [o["value"] for o in soup(page).select("#drivers option")]
    assert "Grace Njeri" in names  # the driver nakuru's own draft uses
    assert not {"Bob Wilson", "Charlie Smith", "Alice Wanjiru"} & set(names)


async def test_finalising_asks_first_and_the_trail_links_to_the_manifest(as_user, town):
    parcels = await make_parcels("nairobi", town, 2, weight="3")
    charlie = await as_user("charlie")
    await charlie.post(f"{DRAFTS}/add", {"parcel": [p["id"] for p in parcels]})
    draft = await draft_of(town)
    await Draft.update(
        {Draft.vehicle: await vehicle_id("KDA 456B"), Draft.driver_name: "Grace Njeri"}
    ).where(Draft.id == draft["id"])
    confirm = await charlie.get(f"{DRAFTS}/{draft['id']}/finalise")
    facts = texts(confirm, ".draft__facts dd")
    assert facts[0] == "2 parcels, 6.0 kg of 3000 kg" and facts[2] == "Grace Njeri"
    assert texts(confirm, "main button[type=submit]") == ["Finalise → dispatch"]
    done = await charlie.post(f"{DRAFTS}/{draft['id']}/finalise")
    number = texts(done, "h1")[0].split("→ ")[1]
    again = await charlie.post(f"{DRAFTS}/{draft['id']}/finalise")  # a double tap
    assert texts(again, "h1") == [f"Finalised → {number}"]  # the same news, not an error
    home = await charlie.get("/s/nairobi/")
    link = soup(home).find("a", string=lambda t: t and number in t)
    assert link is not None and link["href"].endswith("/manifest")


async def test_a_lapsed_notice_lock_clears_its_badge_too(app, as_user, nairobi):
    """The notice is edited site-wide (no entity id in its lock key): its lapse is
    noticed and the site home redrawn without the badge, like a draft's."""
    from routes.sites import NOTICE

    svc, alice = app.state.services, await as_user("alice")
    await svc.locks.acquire(NOTICE.key(nairobi, {}), 2, "Bob Wilson", ttl=0.3)
    assert texts(await alice.get("/s/nairobi/"), ".notice__lock") == ["Being edited by Bob Wilson"]
    feed = svc.broker.subscribe([f"site:{nairobi.id}"])
    try:
        await asyncio.sleep(0.5)
        await release_lapsed(svc)
        event = await next_event(feed)
        while event.ephemeral:
            event = await next_event(feed)
    finally:
        feed.close()
    assert event.kind == "notice.lapsed" and 'hx-target="#notice"' in event.html
    assert "Being edited by" not in event.html
