"""Presence behaviour, one test body run against the in-process and the Redis backend.

The Redis runs need a reachable server (``REDIS_URL``, default the local one); when it is
down they error out instead of skipping, so a green run always covers both backends.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
import redis.asyncio as aioredis

from live.presence import (
    ConnectionOwnerMismatch,
    MemoryPresence,
    PresenceStore,
    RedisPresence,
    Viewer,
)
from tests.conftest import delete_namespace

# tests/conftest.py rewrites REDIS_URL for the app under test (and drops it in SQLite
# mode), so the suite-wide TEST_REDIS_URL comes first.
REDIS_URL = (
    os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
)
TTL = 0.8
GRACE = 0.3
# Sleeps past a deadline use this margin so scheduling jitter cannot flip the outcome.
MARGIN = 0.15
PAGE = "site:3:home"

ALICE = Viewer.for_user(1, "alice", "Alice Smith")
BOB = Viewer.for_user(2, "bob", "Bob Wilson")


def conn() -> str:
    return uuid4().hex


@pytest.fixture(params=["memory", "redis"])
async def presence(request: pytest.FixtureRequest) -> AsyncIterator[PresenceStore]:
    if request.param == "memory":
        yield MemoryPresence(ttl=TTL, grace=GRACE)
        return
    namespace = f"fbtest-{uuid4().hex[:8]}"
    # A blocking pool queues commands beyond its size; the default pool raises
    # MaxConnectionsError once 100 commands are in flight (redis-py 8).
    client = aioredis.Redis.from_pool(
        aioredis.BlockingConnectionPool.from_url(
            REDIS_URL, max_connections=20, decode_responses=True
        )
    )
    try:
        await client.ping()
        yield RedisPresence(client, namespace, ttl=TTL, grace=GRACE)
    finally:
        await delete_namespace(client, namespace)
        await client.aclose()


def test_viewer_derives_display_and_initials() -> None:
    assert Viewer.for_user(2, "bob", "Bob Wilson").initials == "BW"
    assert Viewer.for_user(3, "mary", "Mary Ann van Dyke").initials == "MD"
    plain = Viewer.for_user(1, "alice")
    assert (plain.display, plain.initials) == ("alice", "A")
    assert Viewer.for_user(4, "zoe", "  ").display == "zoe"
    assert Viewer.from_json(BOB.to_json()) == BOB


async def test_two_users_joining_are_both_listed_and_each_join_is_reported_once(
    presence: PresenceStore,
) -> None:
    alice_conn, bob_conn = conn(), conn()

    assert await presence.heartbeat(PAGE, bob_conn, BOB) is True
    assert await presence.heartbeat(PAGE, alice_conn, ALICE) is True
    assert await presence.heartbeat(PAGE, alice_conn, ALICE) is False
    assert await presence.heartbeat(PAGE, bob_conn, BOB) is False

    assert await presence.viewers(PAGE) == [ALICE, BOB]


async def test_same_user_in_two_tabs_is_listed_once_and_closing_one_tab_is_no_leave(
    presence: PresenceStore,
) -> None:
    tab1, tab2 = conn(), conn()
    assert await presence.heartbeat(PAGE, tab1, ALICE) is True
    assert await presence.heartbeat(PAGE, tab2, ALICE) is False
    assert await presence.viewers(PAGE) == [ALICE]

    assert await presence.leave(PAGE, tab1) is False
    await asyncio.sleep(GRACE + MARGIN)
    await presence.heartbeat(PAGE, tab2, ALICE)

    assert await presence.sweep(PAGE) == []
    assert await presence.viewers(PAGE) == [ALICE]


async def test_leave_is_reported_by_sweep_once_the_grace_is_over(presence: PresenceStore) -> None:
    alice_conn = conn()
    await presence.heartbeat(PAGE, alice_conn, ALICE)
    await presence.heartbeat(PAGE, conn(), BOB)

    assert await presence.leave(PAGE, alice_conn) is True
    assert await presence.sweep(PAGE) == []
    assert await presence.viewers(PAGE) == [ALICE, BOB]

    await asyncio.sleep(GRACE + MARGIN)
    assert await presence.sweep(PAGE) == [ALICE]
    assert await presence.viewers(PAGE) == [BOB]
    assert await presence.sweep(PAGE) == []


async def test_many_pages_are_swept_at_once_each_with_its_own_leaves(
    presence: PresenceStore,
) -> None:
    """The hub sweeps every page it holds streams of in one call (one round trip on Redis):
    each page reports who left it, and only it."""
    pages = [f"{PAGE}-{i}" for i in range(30)]
    leaving = {page: conn() for page in pages[::3]}
    for page in pages:
        await presence.heartbeat(page, leaving.get(page) or conn(), ALICE)
        await presence.heartbeat(page, conn(), BOB)
    for page, alice_conn in leaving.items():
        assert await presence.leave(page, alice_conn) is True

    assert await presence.sweep_all(pages) == {page: [] for page in pages}
    await asyncio.sleep(GRACE + MARGIN)
    swept = await presence.sweep_all(pages)
    assert swept == {page: [ALICE] if page in leaving else [] for page in pages}
    assert await presence.sweep_all([]) == {}
    for page in pages:
        assert await presence.viewers(page) == ([BOB] if page in leaving else [ALICE, BOB])


async def test_quick_reconnect_within_the_grace_reports_neither_leave_nor_join(
    presence: PresenceStore,
) -> None:
    old, new = conn(), conn()
    assert await presence.heartbeat(PAGE, old, ALICE) is True

    assert await presence.leave(PAGE, old) is True
    assert await presence.heartbeat(PAGE, new, ALICE) is False

    await asyncio.sleep(GRACE + MARGIN)
    assert await presence.sweep(PAGE) == []
    assert await presence.viewers(PAGE) == [ALICE]


async def test_heartbeat_on_a_leaving_connection_cancels_the_leave(
    presence: PresenceStore,
) -> None:
    only = conn()
    await presence.heartbeat(PAGE, only, ALICE)
    await presence.leave(PAGE, only)

    assert await presence.heartbeat(PAGE, only, ALICE) is False
    await asyncio.sleep(GRACE + MARGIN)

    assert await presence.sweep(PAGE) == []
    assert await presence.viewers(PAGE) == [ALICE]


async def test_vanished_connection_disappears_after_the_ttl_via_sweep(
    presence: PresenceStore,
) -> None:
    alice_conn, bob_conn = conn(), conn()
    await presence.heartbeat(PAGE, alice_conn, ALICE)
    await presence.heartbeat(PAGE, bob_conn, BOB)

    await asyncio.sleep(TTL / 2)
    await presence.heartbeat(PAGE, bob_conn, BOB)
    assert await presence.sweep(PAGE) == []

    await asyncio.sleep(TTL / 2 + MARGIN)
    assert await presence.viewers(PAGE) == [BOB]
    assert await presence.sweep(PAGE) == [ALICE]
    assert await presence.sweep(PAGE) == []
    # Gone for good, so coming back is a fresh join.
    assert await presence.heartbeat(PAGE, alice_conn, ALICE) is True


async def test_leave_of_an_unknown_connection_changes_nothing(presence: PresenceStore) -> None:
    await presence.heartbeat(PAGE, conn(), ALICE)

    assert await presence.leave(PAGE, conn()) is False
    await asyncio.sleep(GRACE + MARGIN)

    assert await presence.sweep(PAGE) == []
    assert await presence.viewers(PAGE) == [ALICE]


async def test_a_connection_cannot_change_hands(presence: PresenceStore) -> None:
    shared = conn()
    await presence.heartbeat(PAGE, shared, ALICE)

    with pytest.raises(ConnectionOwnerMismatch):
        await presence.heartbeat(PAGE, shared, BOB)
    assert await presence.viewers(PAGE) == [ALICE]


async def test_two_hundred_viewers_on_one_page_are_listed_once_each_and_sorted(
    presence: PresenceStore,
) -> None:
    shuffled = random.Random(4).sample(range(200), 200)
    # Mixed case, so only a case-insensitive sort puts them in numeric order.
    people = [
        Viewer.for_user(i, f"user{i}", f"{('person', 'Person')[i % 2]} {n:03d}")
        for i, n in enumerate(shuffled)
    ]
    # Every tenth person has a second tab open, which must not list them twice.
    tabs = [(conn(), v) for v in people] + [(conn(), v) for v in people[::10]]

    joins = await asyncio.gather(*(presence.heartbeat(PAGE, c, v) for c, v in tabs))

    assert sum(joins) == 200
    listed = await presence.viewers(PAGE)
    assert [int(v.display[-3:]) for v in listed] == list(range(200))
    assert sorted(listed, key=lambda v: v.user_id) == people


async def test_pages_are_independent(presence: PresenceStore) -> None:
    home, board = "site:3:home", "site:3:board:7"
    alice_home, alice_board, bob_board = conn(), conn(), conn()
    assert await presence.heartbeat(home, alice_home, ALICE) is True
    assert await presence.heartbeat(board, alice_board, ALICE) is True
    assert await presence.heartbeat(board, bob_board, BOB) is True
    assert await presence.viewers(home) == [ALICE]
    assert await presence.viewers(board) == [ALICE, BOB]

    assert await presence.leave(board, alice_home) is False
    assert await presence.leave(board, alice_board) is True
    await asyncio.sleep(GRACE + MARGIN)

    assert await presence.sweep(board) == [ALICE]
    assert await presence.sweep(home) == []
    assert await presence.viewers(home) == [ALICE]
    assert await presence.viewers("site:4:home") == []
