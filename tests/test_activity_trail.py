"""The site trail's new lines are published from what the action recorded, once its
transaction has committed: never a line that was rolled back, never read back first."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from tables.activity import Activity
from tables.base import Actor, after_commit, write_tx
from tests.conftest import soup
from tests.factories import site_id

ALICE = Actor(0, "Alice Wanjiru")


@pytest.fixture
async def site() -> int:
    return await site_id("nairobi")


async def test_after_commit_waits_for_the_outermost_transaction_and_skips_a_rollback():
    ran: list[str] = []
    after_commit(lambda: ran.append("outside"))  # no transaction: at once
    assert ran == ["outside"]
    async with write_tx():
        after_commit(lambda: ran.append("outer"))
        async with write_tx():
            after_commit(lambda: ran.append("inner"))
        assert ran == ["outside"]  # the inner one commits nothing by itself
    assert ran == ["outside", "outer", "inner"]
    with pytest.raises(RuntimeError):
        async with write_tx():
            after_commit(lambda: ran.append("rolled back"))
            raise RuntimeError("the action failed")
    assert ran == ["outside", "outer", "inner"]


async def test_a_line_of_a_rolled_back_action_is_never_published(site):
    Activity.start_recording()
    with pytest.raises(RuntimeError):
        async with write_tx():
            await Activity.record(site, ALICE, "note", "this never happened")
            raise RuntimeError("the action failed after recording")
    assert Activity.take_recorded() == []
    assert "this never happened" not in [r["summary"] for r in await Activity.recent(site, 5)]


async def test_a_committed_line_is_published_as_stored(site):
    Activity.start_recording()
    async with write_tx():
        await Activity.record(site, ALICE, "note", "<b>markup</b> and 300+ " + "x" * 300)
    [published] = Activity.take_recorded()
    [stored] = await Activity.recent(site, 1)
    assert published["created_at"] == stored["created_at"]
    assert {**published, "created_at": None} == {**stored, "created_at": None}
    assert len(published["summary"]) == 300  # cut as it is stored
    assert Activity.take_recorded() == []  # taken once


async def test_a_note_reaches_the_list_as_the_page_draws_it(as_user, app):
    """The line travelling on the stream is the one a fresh page shows."""
    alice = await as_user("alice")
    hub = app.state.services.hub
    feed = hub.broker.subscribe([f"site:{await site_id('nairobi')}"])
    try:
        response = await alice.post("/s/nairobi/notes", {"note": "Gate 3 <is> open"})
        assert response.status_code == 303
        event = await anext(feed)
    finally:
        feed.close()
    page = await alice.get("/s/nairobi/")
    line = soup(page).select_one("#activity-list li")
    assert line is not None and "Gate 3 <is> open" in line.get_text()
    published = BeautifulSoup(event.html, "html.parser").select_one("li")
    assert str(published) == str(line)  # time, who, what, escaped: the same element
