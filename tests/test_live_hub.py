"""The hub: presence turned into one rendered update per change, and silent viewers evicted."""

from __future__ import annotations

import asyncio

from live.hub import PING_EVENT, LiveHub, presence_topic
from live.memory_broker import MemoryBroker
from live.presence import MemoryPresence, Viewer
from routes.live import render_presence
from tests.test_live_stream import open_stream

PAGE = "site_home:1"
ALICE = Viewer.for_user(1, "alice", "Alice Wanjiru")
BOB = Viewer.for_user(2, "bob", "Bob Wilson")


async def no_regions() -> str:
    return ""


async def started_hub(**options) -> LiveHub:
    presence = MemoryPresence(ttl=options.pop("ttl", 15.0), grace=options.pop("grace", 0.2))
    hub = LiveHub(MemoryBroker(), presence, render_presence, sweep_every=0.05, **options)
    await hub.start()
    return hub


def viewer_stream(hub: LiveHub, who: Viewer, conn: str):
    stream = hub.stream(["site:1"], None, no_regions, page=PAGE, conn_id=conn, viewer=who)
    return open_stream(stream)


def presence_updates(viewer) -> list[str]:
    return [d for d in viewer.datas if 'hx-target="#presence"' in d]


def viewing_now(update: str) -> str:
    """The names a screen reader hears in the #presence update."""
    return update.split("Viewing now: ", 1)[1].split("</span>", 1)[0]


async def eventually(check, within: float = 3.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polls what the streams received
            await asyncio.sleep(0.02)


async def test_viewers_see_each_other_join_and_leave() -> None:
    hub = await started_hub()
    alice = viewer_stream(hub, ALICE, "conn-alice-1")
    await eventually(lambda: any("1 here" in d for d in presence_updates(alice)))
    bob = viewer_stream(hub, BOB, "conn-bob-0001")
    await eventually(lambda: any("2 here" in d for d in presence_updates(alice)))
    assert any("Bob Wilson joined" in d for d in alice.datas)
    await bob.close()
    await eventually(lambda: any("Bob Wilson left" in d for d in alice.datas))
    assert viewing_now(presence_updates(alice)[-1]) == "Alice Wanjiru"
    await alice.close()
    await hub.stop()


async def test_a_quick_reconnect_shows_no_leave_or_join() -> None:
    hub = await started_hub(grace=0.5)
    alice = viewer_stream(hub, ALICE, "conn-alice-1")
    bob = viewer_stream(hub, BOB, "conn-bob-0001")
    await eventually(lambda: any("2 here" in d for d in presence_updates(alice)))
    seen = len(alice.datas)
    await bob.close()
    bob_again = viewer_stream(hub, BOB, "conn-bob-0001")  # same tab, Wi-Fi blip
    await asyncio.sleep(1.0)
    news = alice.datas[seen:]
    assert not any("left" in d or "joined" in d for d in news)
    await bob_again.close()
    await alice.close()
    await hub.stop()


async def test_a_vanished_tablet_is_evicted_and_leaves() -> None:
    hub = await started_hub(ttl=0.3, ping_every=0.1, evict_after=0.4)
    alice = viewer_stream(hub, ALICE, "conn-alice-1")
    bob = viewer_stream(hub, BOB, "conn-bob-0001")  # bob's tablet never heartbeats again
    await eventually(lambda: any("2 here" in d for d in presence_updates(alice)))

    async def alice_beats() -> None:
        while True:
            await hub.beat(PAGE, "conn-alice-1", ALICE)
            await asyncio.sleep(0.1)

    beating = asyncio.create_task(alice_beats())
    async with asyncio.timeout(3):
        await bob.task  # the hub closed bob's half-open stream
    await eventually(lambda: any("Bob Wilson left" in d for d in alice.datas))
    assert not alice.task.done()  # alice, who kept beating, is still connected
    beating.cancel()
    await alice.close()
    await hub.stop()


async def test_two_hundred_viewers_are_listed_with_coalesced_updates() -> None:
    hub = await started_hub()
    watcher = hub.broker.subscribe([presence_topic(PAGE)], max_events=10_000)
    viewers = [
        viewer_stream(hub, Viewer.for_user(100 + i, f"user{i}", f"User {i:03d}"), f"conn-{i:08d}")
        for i in range(200)
    ]
    await eventually(lambda: any("200 here" in d for d in presence_updates(viewers[0])), 5)
    updates = watcher.queued
    assert updates < 20, f"{updates} presence updates for 200 joins"
    assert hub.viewers_here(PAGE) == 200
    for v in viewers:
        await v.close()
    watcher.close()
    await hub.stop()


async def test_a_heartbeat_round_reaches_every_stream_once_a_slice_at_a_time() -> None:
    """10,000 heartbeats at once held a process's loop for ~100 ms (every event due then
    waited): a round is sent in slices, each stream in one of them."""
    hub = LiveHub(MemoryBroker(), MemoryPresence(), render_presence, ping_slices=10)
    await hub.broker.start()
    subs = [hub.broker.subscribe([f"site:{i % 3}"]) for i in range(2000)]
    per_tick = []
    for _ in range(10):
        before = sum(s.queued for s in subs)
        await hub._tick()
        per_tick.append(sum(s.queued for s in subs) - before)
    assert all(s.queued == 1 and s.take() is PING_EVENT for s in subs)  # each exactly once
    assert max(per_tick) < 400, per_tick  # ~200 a tick, never the whole round at once
    await hub._tick()  # the next round begins with the first slice again
    assert 0 < sum(s.queued for s in subs) == per_tick[0]
    await hub.broker.stop()


async def test_a_heartbeat_arriving_at_another_worker_keeps_the_stream_open() -> None:
    hub = await started_hub(ttl=5.0, ping_every=0.1, evict_after=0.3)
    alice = viewer_stream(hub, ALICE, "conn-alice-1")
    await eventually(lambda: bool(presence_updates(alice)))

    async def beats_elsewhere() -> None:  # straight to the shared store, not via this hub
        while True:
            await hub.presence.heartbeat(PAGE, "conn-alice-1", ALICE)
            await asyncio.sleep(0.1)

    beating = asyncio.create_task(beats_elsewhere())
    await asyncio.sleep(1.0)
    assert not alice.task.done()
    beating.cancel()
    await alice.close()
    await hub.stop()


async def test_end_user_ends_that_users_streams_on_every_worker(make, backend) -> None:
    """Deactivation (or "sign out everywhere") ends a user's open streams at once, on
    every process; other users' streams carry on."""
    here = await make()
    there = await make() if backend == "redis" else here  # another worker, same Redis
    hub_here = LiveHub(here, MemoryPresence(), render_presence)
    hub_there = LiveHub(there, MemoryPresence(), render_presence)
    alice = viewer_stream(hub_here, ALICE, "conn-alice-1")
    alice_tab2 = open_stream(
        hub_here.stream(
            ["site:2"], None, no_regions, page="p2", conn_id="conn-alice-2", viewer=ALICE
        )
    )
    bob = viewer_stream(hub_here, BOB, "conn-bob-0001")
    await asyncio.sleep(0.3)  # subscribed (Redis: the process's pattern subscription)

    await hub_there.end_user(ALICE.user_id)

    async with asyncio.timeout(3):
        await alice.task
        await alice_tab2.task
    assert not bob.task.done()
    await bob.close()


class UnreachableBroker(MemoryBroker):
    """A broker whose Redis stopped answering: every publish fails."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 0

    async def publish(self, topic: str, kind: str, actor: str, html: str):
        raise ConnectionError("Redis is not answering")

    async def publish_ephemeral(self, topic: str, kind: str, actor: str, html: str) -> None:
        raise ConnectionError("Redis is not answering")

    def missed(self) -> None:
        self.lost += 1


async def test_a_publish_failing_after_commit_answers_the_action_and_asks_for_a_resync() -> None:
    broker = UnreachableBroker()
    hub = LiveHub(broker, MemoryPresence(), render_presence)

    async def rendered() -> str:
        return "<p>the committed change</p>"

    assert await hub.publish("t", "note", "alice", rendered) == "<p>the committed change</p>"
    await hub.end_user(7)  # signing someone out everywhere is not undone either
    assert broker.lost == 2
