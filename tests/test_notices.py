"""The site notice: soft locks (423) and optimistic concurrency (409) on a real page."""

from __future__ import annotations

import asyncio

import pytest

from tables.activity import Activity
from tables.base import StaleVersion, update_versioned
from tables.notices import SiteNotice
from tables.people import Site
from tests.conftest import soup, texts

EDIT = SAVE = "/s/nairobi/notice"  # GET shows the editor, POST saves it
OPEN = "/s/nairobi/notice/open"  # taking the lock is a post


@pytest.fixture(autouse=True)
async def unlocked_notice(app):
    """Each test starts with an empty notice nobody is editing."""
    nairobi = await Site.select(Site.id).where(Site.slug == "nairobi").first()
    await SiteNotice.update({SiteNotice.text: ""}, force=True)
    for key in list((await app.state.services.locks.holders("notice:")).keys()):
        await app.state.services.locks.break_lock(key)
    yield nairobi["id"]


def editor_fields(response) -> dict[str, str]:
    form = soup(response).select_one("#editor form.editor__form")
    return {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}


async def open_editor(client):
    """What the "Edit notice" button does: post to take the lock, land on the editor."""
    opened = await client.post(OPEN)
    assert opened.status_code == 303 and opened.headers["location"] == EDIT
    return await client.get(EDIT)


async def notice_text(site_id: int) -> str:
    return (await SiteNotice.for_site(site_id))["text"]


async def test_opening_the_editor_takes_the_lock_and_others_see_who(as_user):
    alice, bob = await as_user("alice"), await as_user("bob")
    opened = await open_editor(alice)
    assert opened.status_code == 200 and editor_fields(opened)["token"]
    home = await bob.get("/s/nairobi/")
    assert texts(home, ".notice__lock") == ["Being edited by Alice Wanjiru"]
    theirs = await bob.get(EDIT)
    assert texts(theirs, "#editor .lock-state")[0].startswith("Being edited by Alice Wanjiru until")
    assert soup(theirs).select_one("#editor fieldset").has_attr("disabled")  # read-only
    assert soup(theirs).select_one("#editor")["data-lock-state"] == "held"


async def test_looking_at_the_editor_takes_no_lock(as_user, app, unlocked_notice):
    """A GET only shows: a link elsewhere cannot make a signed-in user take a lock."""
    alice = await as_user("alice")
    page = await alice.get(EDIT)
    assert page.status_code == 200 and editor_fields(page)["token"] == ""
    assert soup(page).select_one("#editor")["data-lock-state"] == "free"
    assert await app.state.services.locks.holders("notice:") == {}


async def test_saving_publishes_the_notice_records_it_and_frees_the_lock(as_user, unlocked_notice):
    alice, bob = await as_user("alice"), await as_user("bob")
    fields = editor_fields(await open_editor(alice))
    saved = await alice.post(SAVE, {**fields, "text": "Gate 2 closed until noon"})
    assert saved.status_code == 303
    assert await notice_text(unlocked_notice) == "Gate 2 closed until noon"
    home = await bob.get("/s/nairobi/")
    assert texts(home, ".notice__text") == ["Gate 2 closed until noon"]
    assert texts(home, ".notice__lock") == []
    assert "updated the site notice" in texts(home, ".activity__what")[0]
    assert editor_fields(await open_editor(bob))["token"]  # bob may edit now


async def test_a_save_while_someone_else_holds_the_lock_gets_423_naming_them(
    as_user, unlocked_notice
):
    alice, bob = await as_user("alice"), await as_user("bob")
    await open_editor(alice)
    fields = editor_fields(await open_editor(bob))
    refused = await bob.post(SAVE, {**fields, "text": "bob's version"})
    assert refused.status_code == 423
    message = texts(refused, "#editor .lock-state")[0]
    assert "Being edited by Alice Wanjiru until" in message
    assert soup(refused).select_one("textarea").get_text() == "bob's version"  # kept
    assert await notice_text(unlocked_notice) == ""


async def test_a_stale_version_gets_409_with_the_current_text_and_nothing_overwritten(
    as_user, app, unlocked_notice
):
    alice, bob = await as_user("alice"), await as_user("bob")
    alices = editor_fields(await open_editor(alice))
    await app.state.services.locks.break_lock(f"notice:{unlocked_notice}:")  # her lock lapsed
    bobs = editor_fields(await open_editor(bob))
    assert (await bob.post(SAVE, {**bobs, "text": "Bob's news"})).status_code == 303
    stale = await alice.post(SAVE, {**alices, "text": "Alice's news"})
    assert stale.status_code == 409
    alert = " ".join(texts(stale, "#editor .alert"))
    assert "Bob Wilson saved a newer version while you were editing." in alert
    assert texts(stale, ".conflict__theirs") == ["Bob's news"]
    assert soup(stale).select_one("textarea").get_text() == "Alice's news"
    assert await notice_text(unlocked_notice) == "Bob's news"
    # Saving again from the 409 page is a deliberate overwrite, based on the new version.
    again = await alice.post(SAVE, {**editor_fields(stale), "text": "Alice's news"})
    assert again.status_code == 303
    assert await notice_text(unlocked_notice) == "Alice's news"


async def test_two_saves_of_the_same_version_cannot_both_win(unlocked_notice):
    notice = await SiteNotice.for_site(unlocked_notice)
    results = await asyncio.gather(
        *(
            update_versioned(SiteNotice, notice["id"], notice["version"], {"text": f"v{i}"})
            for i in range(10)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1
    assert all(isinstance(r, StaleVersion) for r in results if r not in winners)
    assert await notice_text(unlocked_notice) == winners[0]["text"]


async def test_too_long_a_notice_is_sent_back_with_422_and_kept(as_user, unlocked_notice):
    alice = await as_user("alice")
    fields = editor_fields(await open_editor(alice))
    response = await alice.post(SAVE, {**fields, "text": "x" * 1001})
    assert response.status_code == 422
    assert texts(response, ".field__error") == [
        "The notice is too long (at most 1,000 characters)."
    ]
    assert len(soup(response).select_one("textarea").get_text()) == 1001
    assert await notice_text(unlocked_notice) == ""


async def test_a_manager_can_take_over_and_it_is_recorded(as_user, unlocked_notice):
    alice, admin = await as_user("alice"), await as_user("admin")
    alices = editor_fields(await open_editor(alice))
    page = await admin.get(EDIT)
    assert texts(page, ".break-lock button") == ["Take over from Alice Wanjiru"]
    taken = await admin.post("/s/nairobi/notice/break")
    assert taken.status_code == 303
    assert editor_fields(await open_editor(admin))["token"]
    trail = await Activity.recent(unlocked_notice, 1)
    assert trail[0]["summary"] == "took over editing the site notice from Alice Wanjiru"
    assert trail[0]["actor_name"] == "Ada Manager"
    refused = await alice.post(SAVE, {**alices, "text": "too late"})  # alice is told
    assert refused.status_code == 423
    assert "Being edited by Ada Manager" in texts(refused, "#editor .lock-state")[0]


async def test_only_managers_may_break_a_lock(as_user):
    alice, bob = await as_user("alice"), await as_user("bob")
    await open_editor(alice)
    response = await bob.post("/s/nairobi/notice/break")
    assert response.status_code == 403


async def test_the_open_editor_renews_its_lock_and_learns_when_it_lost_it(as_user, app):
    alice, admin = await as_user("alice"), await as_user("admin")
    token = editor_fields(await open_editor(alice))["token"]
    assert (await alice.post("/s/nairobi/notice/lock", {"token": token})).status_code == 204
    await admin.post("/s/nairobi/notice/break")
    lost = await alice.post("/s/nairobi/notice/lock", {"token": token})
    assert lost.status_code == 409


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", EDIT), ("POST", SAVE), ("POST", OPEN), ("POST", "/s/nairobi/notice/break")],
)
async def test_outsiders_get_404(as_user, method, path):
    oscar = await as_user("oscar")
    response = await (oscar.get(path) if method == "GET" else oscar.post(path, {"text": "x"}))
    assert response.status_code == 404
