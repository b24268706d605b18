"""Boards, the parts around moving and editing: "Bob is moving #12" and "Bob is typing…"
(ephemeral: live only, never replayed, throttled), renaming a board (live on the board
and on the list of boards, version-checked) and the read-only wall screen."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from live.broker import Subscription
from live.events import Event
from live.stream import PING_KIND
from tables.boards import Board
from tests.conftest import soup, texts
from tests.factories import site_id
from tests.test_boards import BOARDS, htmx, new_board, new_ticket


async def next_event(sub: Subscription, timeout: float = 5.0) -> Event:  # noqa: ASYNC109
    return await asyncio.wait_for(anext(sub), timeout)


async def events_until(sub: Subscription, done, timeout: float = 5.0) -> list[Event]:  # noqa: ASYNC109
    """Events of the feed (presence and heartbeats left out) up to the first `done` one."""
    seen: list[Event] = []
    async with asyncio.timeout(timeout):
        while not seen or not done(seen[-1]):
            event = await anext(sub)
            if event.kind not in ("presence", PING_KIND):  # the hub's heartbeat is a "ping"
                seen.append(event)
    return seen


def board_topic(board: dict) -> str:
    return f"board:{board['site']}:{board['id']}"


@contextlib.asynccontextmanager
async def bob_typing_on(app, as_user, title: str) -> AsyncIterator[tuple[Any, str, Subscription]]:
    """bob, the typing URL of a new card on alice's new board, and a feed of the board's
    events (closed afterwards)."""
    alice, bob = await as_user("alice"), await as_user("bob")
    board = await new_board(alice)
    card = await new_ticket(alice, board, title)
    feed = app.state.services.broker.subscribe([board_topic(board)])
    try:
        await asyncio.sleep(0.05)
        yield bob, f"{board['url']}/tickets/{card['id']}/typing", feed
    finally:
        feed.close()


async def test_a_drag_shows_who_is_moving_the_card_live_only(app, as_user):
    alice, bob = await as_user("alice"), await as_user("bob")
    board = await new_board(alice)
    card = await new_ticket(alice, board, "Pallet jack wheel")
    broker = app.state.services.broker
    feed = broker.subscribe([board_topic(board)])
    url = f"{board['url']}/tickets/{card['id']}/moving"
    try:
        await asyncio.sleep(0.05)
        assert (await bob.post(url, {"state": "start"}, headers=htmx(bob))).status_code == 204
        started = (await events_until(feed, lambda e: e.kind == "indicator"))[-1]
        assert (await bob.post(url, {"state": "end"}, headers=htmx(bob))).status_code == 204
        ended = (await events_until(feed, lambda e: e.kind == "indicator"))[-1]
    finally:
        feed.close()
    assert started.ephemeral and started.actor == "bob"
    assert f'hx-target="#moving-{card["id"]}"' in started.html
    assert f"Bob Wilson is moving #{card['number']}" in started.html
    assert 'data-user="bob"' in started.html  # bob's own page hides it
    assert ended.ephemeral and "is moving" not in ended.html
    # Never replayed: nothing of it is kept for a viewer who reconnects.
    kept = await broker.since(board_topic(board), "")
    assert kept is None or not any(e.kind == "indicator" for e in kept)
    # The card on a fresh page has the empty slot the indicator goes into.
    page = await alice.get(board["url"])
    assert soup(page).select_one(f"#ticket-{card['id']} #moving-{card['id']}") is not None


async def test_typing_is_shown_at_most_once_a_second_per_typist(app, as_user):
    async with bob_typing_on(app, as_user, "Forklift battery") as (bob, url, feed):
        for _ in range(5):  # a burst of keystrokes
            assert (await bob.post(url, {"state": "start"})).status_code == 204
        await bob.post(url, {"state": "end"})
        seen = await events_until(feed, lambda e: "is typing" not in e.html)
    ticket = url.removesuffix("/typing")
    card_id = ticket.rsplit("/", 1)[1]
    shows = [e for e in seen if "Bob Wilson is typing…" in e.html]
    assert len(shows) == 1, [e.html for e in seen]
    assert f'hx-target="#typing-{card_id}"' in shows[0].html  # a line of its own
    assert 'hx-swap="delete"' in seen[-1].html  # stopping takes just bob's line away
    page = await bob.get(ticket)
    assert soup(page).select_one(f"#typing-{card_id}[aria-live]") is not None


async def test_typing_again_after_stopping_is_shown_at_once(app, as_user):
    """The throttle holds back a burst, not a new start: bob stops typing and starts
    again within the second, and the others see him typing again."""
    async with bob_typing_on(app, as_user, "Dock door seal") as (bob, url, feed):
        for state in ("start", "end", "start"):
            assert (await bob.post(url, {"state": state})).status_code == 204
        seen = await events_until(feed, lambda e: e.kind == "indicator", timeout=5)
        seen += await events_until(feed, lambda e: e.kind == "indicator", timeout=5)
        seen += await events_until(feed, lambda e: e.kind == "indicator", timeout=0.9)
    typing = ["Bob Wilson is typing…" in e.html for e in seen if e.kind == "indicator"]
    assert typing == [True, False, True]


async def test_renaming_a_board_is_live_on_it_and_on_the_list(app, as_user):
    alice, bob = await as_user("alice"), await as_user("bob")
    board = await new_board(alice)
    topics = [board_topic(board), f"boards:{board['site']}"]
    feed = app.state.services.broker.subscribe(topics)
    try:
        await asyncio.sleep(0.05)
        renamed = await alice.post(
            f"{board['url']}/rename", {"name": "Cold room <b>A</b>", "version": board["version"]}
        )
        assert renamed.status_code == 303
        seen = await events_until(
            feed, lambda e: e.kind == "board.rename" and "board-head" in e.html
        )
    finally:
        feed.close()
    on_list = [e for e in seen if e.topic == topics[1]]
    assert on_list and "Cold room &lt;b&gt;A&lt;/b&gt;" in on_list[-1].html
    assert "Cold room &lt;b&gt;A&lt;/b&gt;" in seen[-1].html
    assert texts(await bob.get(board["url"]), "#board-head h1") == ["Cold room <b>A</b>"]
    # Bob renames from the name he saw before: refused, nothing written.
    stale = await bob.post(f"{board['url']}/rename", {"name": "Mine", "version": board["version"]})
    assert stale.status_code == 409
    assert "saved a newer version" in stale.text
    assert soup(stale).select_one("#f-board-name")["value"] == "Mine"  # his value kept
    assert (await Board.select().where(Board.id == board["id"]).first())[
        "name"
    ] == "Cold room <b>A</b>"


@pytest.mark.parametrize("name", ["", " ", "x" * 5000])
async def test_a_bad_board_name_is_refused_at_the_field(as_user, name):
    alice = await as_user("alice")
    board = await new_board(alice)
    refused = await alice.post(
        f"{board['url']}/rename", {"name": name, "version": board["version"]}
    )
    assert refused.status_code == 422
    assert texts(refused, "#f-board-name-error")
    assert (await Board.select().where(Board.id == board["id"]).first())["name"] == board["name"]


async def test_the_wall_shows_the_board_large_and_without_controls(as_user):
    alice = await as_user("alice")
    ops = (
        await Board.select()
        .where((Board.name == "Ops tickets") & (Board.site == await site_id("nairobi")))
        .first()
    )
    wall = await alice.get(f"{BOARDS}/{ops['id']}/wall")
    assert wall.status_code == 200
    page = soup(wall)
    assert "wall-page" in page.body["class"]
    assert page.select_one("#live[hx-sse\\:connect]") is not None  # the same live stream
    assert len(page.select(".ticket")) >= 50
    # Read-only: hidden controls, and nothing new to add here.
    assert page.select_one("#new-ticket-form") is None
