"""Soft-lock behaviour, one test body run against the in-process and the Redis backend.

Each test gets two stores that share state: for Redis they are separate clients (two
connection pools, one decoding responses and one not), standing in for two processes;
in memory both are the same object, since that backend only serves one process. The
Redis runs error out rather than skip when the server is unreachable.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
import redis.asyncio as aioredis

from live.locks import LockHeld, LockInfo, LockStore, MemoryLocks, RedisLocks
from tests.conftest import delete_namespace

# tests/conftest.py rewrites REDIS_URL for the app under test (and drops it in SQLite
# mode), so the suite-wide TEST_REDIS_URL comes first.
REDIS_URL = (
    os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
)
SHORT_TTL = 0.3
MARGIN = 0.15
KEY = "site:3:draft:17"

Stores = tuple[LockStore, LockStore]


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    if request.param == "memory":
        shared = MemoryLocks()
        yield shared, shared
        return
    namespace = f"fbtest-{uuid4().hex[:8]}"
    first = aioredis.from_url(REDIS_URL, decode_responses=True)
    second = aioredis.from_url(REDIS_URL, decode_responses=False)
    try:
        await first.ping()
        await second.ping()
        yield RedisLocks(first, namespace), RedisLocks(second, namespace)
    finally:
        await delete_namespace(first, namespace)
        await first.aclose()
        await second.aclose()


@pytest.fixture
def locks(stores: Stores) -> LockStore:
    return stores[0]


async def test_second_holder_gets_lock_held_naming_the_first(locks: LockStore) -> None:
    mine = await locks.acquire(KEY, 1, "Alice Smith")
    assert mine.expires_at == pytest.approx(time.time() + 30, abs=2)

    with pytest.raises(LockHeld) as held:
        await locks.acquire(KEY, 2, "Bob Wilson")

    assert held.value.info == mine
    assert re.fullmatch(r"Being edited by Alice Smith until \d\d:\d\d:\d\d", str(held.value))
    assert await locks.holder(KEY) == mine


async def test_only_one_of_twenty_concurrent_acquirers_wins(stores: Stores) -> None:
    attempts = [stores[i % 2].acquire(KEY, 100 + i, f"Holder {i}") for i in range(20)]
    results = await asyncio.gather(*attempts, return_exceptions=True)

    winners = [r for r in results if isinstance(r, LockInfo)]
    refused = [r for r in results if isinstance(r, LockHeld)]
    assert len(winners) == 1 and len(refused) == 19
    assert all(r.info == winners[0] for r in refused)
    assert await stores[1].holder(KEY) == winners[0]


async def test_same_holder_reacquiring_gets_the_same_lock_renewed(stores: Stores) -> None:
    first = await stores[0].acquire(KEY, 1, "Alice Smith", ttl=SHORT_TTL)
    await asyncio.sleep(SHORT_TTL / 2)

    again = await stores[1].acquire(KEY, 1, "Alice Smith", ttl=SHORT_TTL)
    await asyncio.sleep(SHORT_TTL / 2 + MARGIN / 2)

    assert again.token == first.token
    assert again.expires_at > first.expires_at
    assert await stores[0].holder(KEY) == again


async def test_renew_needs_the_right_token(locks: LockStore) -> None:
    mine = await locks.acquire(KEY, 1, "Alice Smith", ttl=SHORT_TTL)

    assert await locks.renew(KEY, "not-the-token", ttl=SHORT_TTL) is False
    assert await locks.renew("site:3:draft:unlocked", mine.token) is False
    await asyncio.sleep(SHORT_TTL / 2)
    assert await locks.renew(KEY, mine.token, ttl=SHORT_TTL) is True
    await asyncio.sleep(SHORT_TTL / 2 + MARGIN / 2)

    current = await locks.holder(KEY)
    assert current is not None and current.token == mine.token
    assert current.expires_at > mine.expires_at


async def test_release_with_the_wrong_token_leaves_the_lock(locks: LockStore) -> None:
    mine = await locks.acquire(KEY, 1, "Alice Smith")

    assert await locks.release(KEY, "not-the-token") is False
    assert await locks.holder(KEY) == mine

    assert await locks.release(KEY, mine.token) is True
    assert await locks.holder(KEY) is None
    assert await locks.release(KEY, mine.token) is False


async def test_expired_lock_is_freed_and_another_holder_can_take_it(locks: LockStore) -> None:
    vanished = await locks.acquire(KEY, 1, "Alice Smith", ttl=SHORT_TTL)
    await asyncio.sleep(SHORT_TTL + MARGIN)
    assert await locks.holder(KEY) is None

    taken = await locks.acquire(KEY, 2, "Bob Wilson")

    assert taken.token != vanished.token
    # The vanished holder coming back late must not disturb the new one.
    assert await locks.renew(KEY, vanished.token) is False
    assert await locks.release(KEY, vanished.token) is False
    assert await locks.holder(KEY) == taken


async def test_break_lock_returns_the_old_holder_and_frees_it(locks: LockStore) -> None:
    old = await locks.acquire(KEY, 1, "Alice Smith")

    assert await locks.break_lock(KEY) == old
    assert await locks.holder(KEY) is None
    assert await locks.break_lock(KEY) is None

    manager = await locks.acquire(KEY, 9, "Admin")
    assert await locks.release(KEY, old.token) is False
    assert await locks.holder(KEY) == manager


async def test_holders_lists_only_matching_live_locks(locks: LockStore) -> None:
    await locks.acquire("site:3:draft:3", 3, "Expiring", ttl=SHORT_TTL)
    released = await locks.acquire("site:3:draft:4", 4, "Released")
    await locks.release("site:3:draft:4", released.token)
    wanted = {
        key: await locks.acquire(key, holder_id, name)
        for key, holder_id, name in [
            ("site:3:draft:1", 1, "Alice Smith"),
            ("site:3:draft:2", 2, "Bob Wilson"),
            ("site:3:draft:ñandú", 5, "Zoë"),
        ]
    }
    others = [
        await locks.acquire(key, 6, "Other")
        for key in ["site:3:board:1", "site:4:draft:1", "site:3:draft", "site:3:draftx:1"]
    ]
    await asyncio.sleep(SHORT_TTL + MARGIN)

    assert await locks.holders("site:3:draft:") == wanted
    assert await locks.holders("site:9:") == {}
    everything = await locks.holders("")
    assert everything == wanted | {info.key: info for info in others}


async def test_a_lapsed_lock_is_reported_once_whoever_asks(stores: Stores) -> None:
    """A holder that vanished: one process (of two asking) learns of it and clears the
    badge; released and broken locks are not lapses (their badge was cleared then)."""
    first, second = stores
    await first.acquire("lapse:3:1", 1, "Vanished", ttl=SHORT_TTL)
    kept = await first.acquire("lapse:3:2", 2, "Released", ttl=SHORT_TTL)
    await first.acquire("lapse:3:3", 3, "Broken", ttl=SHORT_TTL)
    await first.acquire("lapse:3:4", 4, "Still here", ttl=30)
    await first.release("lapse:3:2", kept.token)
    await second.break_lock("lapse:3:3")
    assert await first.lapsed() == [] and await second.lapsed() == []  # nothing ran out yet
    await asyncio.sleep(SHORT_TTL + MARGIN)
    reports = await asyncio.gather(first.lapsed(), second.lapsed(), first.lapsed())
    assert sorted(key for report in reports for key in report) == ["lapse:3:1"]
    assert await first.holders("lapse:") == {"lapse:3:4": await first.holder("lapse:3:4")}


async def test_lock_held_message_names_the_holder_and_when_it_frees_up() -> None:
    info = LockInfo("k", 2, "Bob Wilson", "t", expires_at=1_700_000_000.2)
    frees_at = time.strftime("%H:%M:%S", time.localtime(1_700_000_001))

    assert str(LockHeld(info)) == f"Being edited by Bob Wilson until {frees_at}"


async def test_release_holder_frees_only_that_holders_locks_and_reports_them_lapsed(
    stores: Stores,
) -> None:
    here, there = stores
    await here.acquire("site:3:draft:1", 7, "Gina")
    await here.acquire("site:4:notice:", 7, "Gina")
    await here.acquire("site:3:draft:2", 8, "Bob Wilson")
    await here.lapsed()  # nothing lapsed yet; start clean

    assert await there.release_holder(7) == ["site:3:draft:1", "site:4:notice:"]

    assert await here.holder("site:3:draft:1") is None
    assert await here.holder("site:4:notice:") is None
    bob = await here.holder("site:3:draft:2")
    assert bob is not None and bob.holder == "Bob Wilson"
    # Freed locks are reported once, like lapses, so their badges clear everywhere.
    assert await here.lapsed() == ["site:3:draft:1", "site:4:notice:"]
    assert await there.lapsed() == []
    assert await here.release_holder(7) == []
    info = await there.acquire("site:3:draft:1", 9, "Dana Kiprop")
    assert info.holder == "Dana Kiprop"
