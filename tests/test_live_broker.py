"""The live layer's brokers: one test body, run against the in-process and the Redis backend.

Redis tests use a throwaway namespace per test and delete its keys afterwards. A Redis
that cannot be reached fails them: the suite must not go green without the real broker.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from live.backends import backends
from live.broker import Broker, Subscription
from live.events import MAX_CURSOR_LENGTH, Cursor, Event
from live.locks import MemoryLocks, RedisLocks
from live.memory_broker import MemoryBroker
from live.presence import MemoryPresence, RedisPresence
from live.redis_broker import RedisBroker
from tests.conftest import BROKER_REDIS_URL, delete_namespace
from tests.servers import RedisServer

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

MakeBroker = Callable[..., Awaitable[Broker]]


async def take(sub: Subscription, count: int, within: float = 5.0) -> list[Event]:
    """The next `count` events of `sub` (fails the test if they do not all arrive)."""

    async def collect() -> list[Event]:
        events: list[Event] = []
        async for event in sub:
            events.append(event)
            if len(events) == count:
                break
        return events

    return await asyncio.wait_for(collect(), within)


async def rest(sub: Subscription, within: float = 5.0) -> list[Event]:
    """Everything `sub` still yields until its iteration ends."""

    async def collect() -> list[Event]:
        return [event async for event in sub]

    return await asyncio.wait_for(collect(), within)


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def publish_many(broker: Broker, topic: str, count: int, prefix: str = "e") -> list[Event]:
    return [await broker.publish(topic, "note", "ann", f"<p>{prefix}{i}</p>") for i in range(count)]


# -- live delivery -------------------------------------------------------------------------


async def test_published_events_reach_every_subscriber_of_the_topic_in_order_and_no_other(
    make: MakeBroker,
) -> None:
    broker = await make()
    first, second = broker.subscribe(["a"]), broker.subscribe(["a"])
    only_b, both = broker.subscribe(["b"]), broker.subscribe(["a", "b"])

    a_events = await publish_many(broker, "a", 3, prefix="a")
    b_event = await broker.publish("b", "note", "bob", "<p>b</p>")

    assert await take(first, 3) == a_events
    assert await take(second, 3) == a_events
    assert await take(both, 4) == [*a_events, b_event]
    assert await take(only_b, 1) == [b_event]
    # Nothing of topic "a" is waiting behind it: the next event is the next on "b".
    sentinel = await broker.publish("b", "note", "bob", "<p>sentinel</p>")
    assert await take(only_b, 1) == [sentinel]
    assert [e.seq for e in a_events] == [1, 2, 3]
    assert (b_event.seq, sentinel.seq) == (1, 2)


async def test_concurrent_publishers_give_every_subscriber_one_gapless_order(
    make: MakeBroker, backend: str
) -> None:
    # With Redis, two broker instances stand for two server processes.
    brokers = [await make()] if backend == "memory" else [await make(), await make()]
    subs = [broker.subscribe(["t"]) for broker in brokers for _ in range(2)]

    async def publisher(n: int) -> list[Event]:
        broker = brokers[n % len(brokers)]
        return [await broker.publish("t", "note", f"user{n}", f"<p>{n}.{i}</p>") for i in range(5)]

    published = [
        event for batch in await asyncio.gather(*map(publisher, range(20))) for event in batch
    ]
    seen = [await take(sub, 100) for sub in subs]

    assert sorted(e.seq for e in published) == list(range(1, 101))
    for events in seen:
        assert [e.seq for e in events] == list(range(1, 101))
        assert events == seen[0]
    assert sorted(seen[0], key=lambda e: e.seq) == sorted(published, key=lambda e: e.seq)
    assert await brokers[-1].since("t", "") == seen[0]


async def test_ephemeral_events_are_delivered_live_but_never_replayed(make: MakeBroker) -> None:
    broker = await make()
    sub = broker.subscribe(["t"])
    await broker.publish_ephemeral("t", "activity", "bob", "<p>bob is moving #12</p>")
    stored = await broker.publish("t", "note", "bob", "<p>moved</p>")

    ephemeral, live = await take(sub, 2)

    assert ephemeral == Event("t", 0, "", "activity", "bob", "<p>bob is moving #12</p>", True)
    assert live == stored
    assert await broker.since("t", "") == [stored]
    assert await broker.since("t", stored.position) == []


async def test_waiting_with_a_timeout_loses_no_event(make: MakeBroker) -> None:
    # The stream layer waits with a heartbeat timeout; a timed-out wait must not eat events.
    broker = await make()
    sub = broker.subscribe(["t"])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(sub), 0.05)
    event = await broker.publish("t", "note", "ann", "<p>late</p>")
    assert await take(sub, 1) == [event]


async def test_closed_subscription_receives_nothing_more(make: MakeBroker) -> None:
    broker = await make()
    sub = broker.subscribe(["t"])
    await broker.publish("t", "note", "ann", "<p>1</p>")
    await eventually(lambda: sub.queued == 1)

    sub.close()
    sub.close()

    assert sub.closed and sub.queued == 0
    assert broker.subscriptions == 0
    assert await rest(sub) == []


# -- history -------------------------------------------------------------------------------


async def test_since_returns_exactly_the_events_after_a_position(make: MakeBroker) -> None:
    broker = await make()
    events = await publish_many(broker, "t", 5)

    assert await broker.since("t", events[1].position) == events[2:]
    assert await broker.since("t", events[-1].position) == []
    assert await broker.since("t", "") == events
    assert await broker.since("never-published", "") == []


@pytest.mark.parametrize(
    "position",
    ["garbage", "-1", "1-x", "99999", "9999999999999-0", "99999999999999999999999-0", "3\n", " 3"],
)
async def test_since_an_unknown_or_malformed_position_is_none(
    make: MakeBroker, position: str
) -> None:
    broker = await make()
    await publish_many(broker, "t", 5)

    assert await broker.since("t", position) is None
    assert await broker.since("never-published", position) is None


async def test_since_trimmed_history_is_none(make: MakeBroker) -> None:
    # Redis trims `MAXLEN ~` in whole stream nodes (about 100 entries), hence 250 events.
    broker = await make(max_len=10)
    events = await publish_many(broker, "t", 250)

    assert await broker.since("t", events[0].position) is None
    assert await broker.since("t", "") is None
    assert await broker.since("t", events[-3].position) == events[-2:]


async def test_since_history_older_than_retention_is_none(make: MakeBroker) -> None:
    broker = await make(retention_seconds=0.3)
    old = await publish_many(broker, "t", 250, prefix="old")
    await asyncio.sleep(0.4)
    new = await publish_many(broker, "t", 3, prefix="new")

    assert await broker.since("t", old[0].position) is None
    assert await broker.since("t", "") is None
    assert await broker.since("t", new[0].position) == new[1:]


async def test_page_cursor_resumes_with_events_published_after_render(make: MakeBroker) -> None:
    broker = await make()
    earlier = await broker.publish("busy", "note", "ann", "<p>before render</p>")

    rendered = await broker.cursor(["busy", "quiet"])
    after = [
        await broker.publish("busy", "note", "bob", "<p>after render</p>"),
        await broker.publish("quiet", "note", "bob", "<p>first ever</p>"),
    ]

    assert rendered.epoch == broker.epoch
    assert rendered.positions == {"busy": earlier.position}
    assert await broker.since("busy", rendered.position("busy")) == after[:1]
    assert await broker.since("quiet", rendered.position("quiet")) == after[1:]
    moved = rendered.advanced(after[0])
    assert moved.position("busy") == after[0].position
    assert rendered.position("busy") == earlier.position
    assert await broker.since("busy", moved.position("busy")) == []


# -- cursors -------------------------------------------------------------------------------


async def test_cursor_round_trips_through_its_encoding(make: MakeBroker) -> None:
    broker = await make()
    topics = ["site:1:drafts", "site:1:presence", "site:1:activity"]
    await broker.publish(topics[0], "note", "ann", "<p>1</p>")
    await broker.publish(topics[2], "note", "ann", "<p>2</p>")

    for shown in (topics[:1], topics):
        cursor = await broker.cursor(shown)
        text = cursor.encode(shown)
        assert Cursor.decode(text, shown) == cursor
        assert all(c.isalnum() or c in "._~-" for c in text)
    empty = await broker.cursor(["nothing-yet"])
    assert empty.positions == {}
    assert Cursor.decode(empty.encode(["nothing-yet"]), ["nothing-yet"]) == empty


def test_cursor_encoding_covers_empty_topics_and_unseen_positions() -> None:
    cursor = Cursor("e1", {"a": "1732246000000-0", "c": "7"})
    text = cursor.encode(["a", "b", "c"])
    assert text == "1.e1.1732246000000-0..7"
    assert Cursor.decode(text, ["a", "b", "c"]) == cursor
    assert Cursor.decode(Cursor("e1").encode([]), []) == Cursor("e1")


def test_advancing_a_cursor_over_an_ephemeral_event_keeps_its_position() -> None:
    cursor = Cursor("e1", {"a": "3"})
    assert cursor.advanced(Event("a", 0, "", "activity", "bob", "", True)) == cursor
    assert cursor.advanced(Event("a", 4, "4", "note", "bob", "")).positions == {"a": "4"}


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "1",
        "1.",
        "1.e1",  # too few positions
        "1.e1.1.2.3",  # too many positions
        "2.e1.1.2",  # unknown version
        "1..1.2",  # no epoch
        "1.e1.1 .2",
        "1.e1.1.2\n",
        "1.é.1.2",
        "1.e1.<script>.2",
        "a" * 10_000,
        "1.e1." + "9" * 10_000 + ".2",
        "1.e1.1.2" + "." * MAX_CURSOR_LENGTH,
    ],
)
def test_garbage_cursor_decodes_to_none(text: str | None) -> None:
    assert Cursor.decode(text, ["a", "b"]) is None


def test_encoding_refuses_positions_it_could_not_decode() -> None:
    with pytest.raises(ValueError):
        Cursor("e1", {"a": "x.y"}).encode(["a"])
    with pytest.raises(ValueError):
        Cursor("e1", {f"t{i}": "1732246000000-0" for i in range(40)}).encode(
            [f"t{i}" for i in range(40)]
        )


def test_event_json_round_trips_and_rejects_bad_shapes() -> None:
    event = Event("t", 3, "1732246000000-0", "note", "ann", '<p class="x">é</p>')
    text = event.to_json()
    assert ": " not in text and ", " not in text
    assert Event.from_json(text) == event
    for bad in (
        '{"topic": "t"}',
        "[]",
        '{"topic":"t","seq":true,"position":"","kind":"k","actor":"a","html":""}',
        "not json",
    ):
        with pytest.raises(ValueError):
            Event.from_json(bad)


# -- slow viewers --------------------------------------------------------------------------


async def test_slow_subscriber_is_cut_off_while_a_fast_one_gets_everything(
    make: MakeBroker,
) -> None:
    broker = await make()
    slow, fast = broker.subscribe(["t"]), broker.subscribe(["t"])
    reader = asyncio.create_task(take(fast, 300, within=15))

    published = await publish_many(broker, "t", 300)

    assert await reader == published
    assert slow.overflowed and not slow.reset and not slow.closed
    assert slow.queued == 0 and slow.queued_bytes == 0
    assert await rest(slow) == []
    assert broker.subscriptions == 1


async def test_subscriber_over_the_byte_cap_is_cut_off(make: MakeBroker) -> None:
    broker = await make()
    slow, fast = broker.subscribe(["t"]), broker.subscribe(["t"])
    reader = asyncio.create_task(take(fast, 3, within=15))

    published = [
        await broker.publish("t", "board", "ann", f"<div>{i}{'x' * 400_000}</div>")
        for i in range(3)
    ]

    assert await reader == published
    assert slow.overflowed
    assert slow.queued == 0 and slow.queued_bytes == 0
    assert await rest(slow) == []


# -- shutdown ------------------------------------------------------------------------------


async def test_stop_ends_a_thousand_open_subscriptions_promptly(make: MakeBroker) -> None:
    broker = await make()
    subs = [broker.subscribe([f"t{i % 10}"]) for i in range(1_000)]
    readers = [asyncio.create_task(rest(sub)) for sub in subs]
    await asyncio.sleep(0)

    await asyncio.wait_for(broker.stop(), 2.0)

    assert await asyncio.wait_for(asyncio.gather(*readers), 2.0) == [[]] * 1_000
    assert all(sub.closed for sub in subs)
    assert broker.subscribe(["t0"]).closed


async def test_backends_are_chosen_from_the_url_all_three_together() -> None:
    embedded = backends(None)
    assert isinstance(embedded.broker, MemoryBroker)
    assert isinstance(embedded.locks, MemoryLocks) and isinstance(embedded.presence, MemoryPresence)
    assert await embedded.broker.healthy()
    shared = backends(REDIS_URL, namespace="fbtest-x")
    assert isinstance(shared.broker, RedisBroker)
    assert isinstance(shared.locks, RedisLocks) and isinstance(shared.presence, RedisPresence)
    await shared.broker.stop()  # never started: stop only releases the client
    await shared.aclose()


# -- Redis only ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["redis"])
async def test_redis_loss_of_data_starts_a_new_epoch(
    make: MakeBroker, admin: aioredis.Redis, namespace: str
) -> None:
    broker, other_process = await make(), await make()
    await broker.publish("t", "note", "ann", "<p>1</p>")
    old = await broker.cursor(["t"])
    open_sub = broker.subscribe(["t"])
    assert await broker.healthy()

    # What FLUSHDB or a restart without persistence does to this namespace.
    await delete_namespace(admin, namespace)
    fresh = await broker.publish("t", "note", "ann", "<p>after the loss</p>")

    assert broker.epoch != old.epoch
    assert fresh.seq == 1
    assert open_sub.reset
    assert await broker.since("t", old.position("t")) is None
    # The other process learns the new epoch from the event itself.
    await eventually(lambda: other_process.epoch == broker.epoch)


@pytest.mark.parametrize("backend", ["redis"])
async def test_redis_reader_reconnects_and_resets_subscriptions(
    make: MakeBroker, admin: aioredis.Redis
) -> None:
    broker = await make()
    assert isinstance(broker, RedisBroker)
    before = broker.subscribe(["t"])
    pubsub_ids = [
        client["id"]
        for client in await admin.client_list()
        if client["name"] == broker.client_name and client["psub"] != "0"
    ]
    assert len(pubsub_ids) == 1  # one pub/sub connection per process

    await admin.client_kill_filter(_id=pubsub_ids[0])
    await eventually(lambda: before.reset)

    after = broker.subscribe(["t"])
    event = await broker.publish("t", "note", "ann", "<p>after reconnect</p>")
    assert await take(after, 1) == [event]
    assert await rest(before) == []


@pytest.mark.parametrize("backend", ["redis"])
async def test_a_lost_publish_makes_every_process_start_a_new_epoch(make: MakeBroker) -> None:
    """Redis was unreachable (its keys intact) when a committed change was published: no
    history holds it, so every viewer must resync rather than resume past it."""
    broker, other_process = await make(), await make()
    await broker.publish("t", "note", "ann", "<p>1</p>")
    old = await broker.cursor(["t"])
    here, there = broker.subscribe(["t"]), other_process.subscribe(["t"])

    broker.missed()
    after = await broker.publish("t", "note", "ann", "<p>after the loss</p>")

    assert broker.epoch != old.epoch and here.reset
    await eventually(lambda: other_process.epoch == broker.epoch and there.reset)
    fresh = other_process.subscribe(["t"])
    assert await broker.since("t", old.position("t")) == [after]  # history kept, new epoch
    assert not fresh.reset


@pytest.mark.parametrize("backend", ["redis"])
async def test_a_lost_publish_starts_a_new_epoch_when_the_reader_is_back(
    make: MakeBroker, admin: aioredis.Redis
) -> None:
    broker, other_process = await make(), await make()
    assert isinstance(broker, RedisBroker)
    old = await broker.cursor(["t"])
    there = other_process.subscribe(["t"])
    broker.missed()
    pubsub = [
        client["id"]
        for client in await admin.client_list()
        if client["name"] == broker.client_name and client["psub"] != "0"
    ]
    await admin.client_kill_filter(_id=pubsub[0])  # the reader reconnects, as after an outage

    await eventually(lambda: broker.epoch != old.epoch)
    await eventually(lambda: other_process.epoch == broker.epoch and there.reset)


async def test_a_stuck_render_lock_delays_a_publish_but_never_drops_it(namespace: str) -> None:
    """Ordering snapshots is worth waiting for, not worth losing an event over."""
    broker = RedisBroker(BROKER_REDIS_URL, namespace=namespace, serial_wait=0.3)
    await broker.start()
    other = aioredis.from_url(BROKER_REDIS_URL)
    try:
        await other.set(f"{namespace}:serial:t", "someone-else", px=60_000)  # a crashed holder
        sub = broker.subscribe(["t"])
        async with broker.serialised("t"):
            await broker.publish("t", "note", "alice", "<p>still sent</p>")
        (event,) = await take(sub, 1)
        assert event.html == "<p>still sent</p>"
        assert await other.get(f"{namespace}:serial:t") == b"someone-else"  # not ours to free
    finally:
        await delete_namespace(other, namespace)
        await other.aclose()
        await broker.stop()


async def test_after_a_redis_restart_each_viewer_is_ended_once(namespace: str) -> None:
    """Redis comes back without its keys. Whatever reaches it first (a page's cursor, a
    publish) finds the new epoch before the reader has subscribed again; the reader's
    confirmation ends every subscription anyway. So the first must not: a viewer ended
    then would reconnect only to be ended a second time, as CI once saw."""
    redis_server = await asyncio.to_thread(RedisServer().start)
    broker = RedisBroker(redis_server.url, namespace=namespace)
    try:
        await broker.start()
        await broker.publish("t", "note", "ann", "<p>before</p>")
        before = broker.subscribe(["t"])
        await asyncio.to_thread(redis_server.stop)
        await eventually(lambda: not broker.listening)
        broker.missed()  # a write committed meanwhile could not be published

        await asyncio.to_thread(redis_server.start)  # every key lost
        fresh = await broker.cursor(["t"])  # a page rendered before the reader is back
        assert not broker.listening, "the reader resubscribed first: nothing was tested"
        assert fresh.epoch == broker.epoch and not before.reset
        await eventually(lambda: broker.listening and before.reset, within=10)

        after = broker.subscribe(["t"])  # the browser's reconnect
        epoch = broker.epoch
        event = await broker.publish("t", "note", "ann", "<p>after</p>")
        assert await take(after, 1) == [event]
        assert broker.epoch == epoch == fresh.epoch and not after.reset
    finally:
        await broker.stop()
        await asyncio.to_thread(redis_server.cleanup)
