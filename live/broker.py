"""The broker interface shared by the in-process and Redis backends (SPEC §4).

A broker stores each published event in a capped per-topic history and hands it to every
local `Subscription` of its topic. Subscriptions are per viewer and cheap: a deque and at
most one pending future, no task or timer. A stream with nothing queued can *park* its
subscription with a taker that writes an event there and then, so the steady live path
wakes no task per viewer (live/stream.py). The broker feeds them without ever awaiting, so
one slow viewer cannot hold up the others: a subscription that falls too far behind is cut
off (`overflowed`) and its viewer resyncs on return. When the broker may have missed
messages (a Redis reconnect or a lost epoch), every subscription ends with `reset`.
"""

from __future__ import annotations

import asyncio
import itertools
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Literal

from live import metrics
from live.events import Cursor, Event

DEFAULT_MAX_EVENTS = 256
DEFAULT_MAX_BYTES = 1_000_000


class Subscription:
    """A bounded live feed of events for some topics; an async iterator of `Event`.

    Iteration ends when the subscription is cut off (`overflowed`), invalidated by a
    possible gap (`reset`) or closed (`closed`, by `close()` or `broker.stop()`). Whatever
    was still queued is dropped then: after a gap or an overflow the viewer needs a resync,
    not a few more stale events.
    """

    __slots__ = (
        "_bytes",
        "_direct",
        "_fanout",
        "_max_bytes",
        "_max_events",
        "_queue",
        "_waiter",
        "closed",
        "overflowed",
        "reset",
        "serial",
        "topics",
    )

    def __init__(
        self, fanout: Fanout, topics: list[str], max_events: int, max_bytes: int, serial: int
    ) -> None:
        self.topics = tuple(dict.fromkeys(topics))
        self.serial = serial  # its place among its broker's subscriptions: its heartbeat slice
        self.overflowed = False
        self.reset = False
        self.closed = False
        self._fanout = fanout
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._queue: deque[Event] = deque()
        self._bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._direct: Callable[[Event], bool] | None = None

    @property
    def ended(self) -> bool:
        return self.overflowed or self.reset or self.closed

    @property
    def queued(self) -> int:
        """Events waiting to be read."""
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        """Size of the waiting events' HTML, in characters (the cap's unit)."""
        return self._bytes

    def close(self) -> None:
        """Stop receiving and unregister; safe to call more than once (e.g. in `finally:`)."""
        self._end("closed")

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        # Cancelling this await (a heartbeat timeout around it) loses nothing: events are
        # only taken off the queue once the wait is over.
        while (event := self.take()) is None:
            if self.ended:
                raise StopAsyncIteration
            await self.arrival()
        return event

    def take(self) -> Event | None:
        """The next queued event, or None when there is none (yet)."""
        if not self._queue:
            return None
        event = self._queue.popleft()
        self._bytes -= len(event.html)
        return event

    def arrival(self) -> asyncio.Future[None]:
        """A future done when an event arrives or the subscription ends.

        The stream's loop (live/stream.py) awaits it directly: at thousands of viewers per
        event, an `__anext__` coroutine per viewer and event, and the frame it adds to
        every resumption, is a measurable share of a delivery. Cancelling the await loses
        nothing; the next call makes a new one.
        """
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter

    def park(self, taker: Callable[[Event], bool]) -> asyncio.Future[None]:
        """While nothing is queued, hand each event to `taker` as it comes instead of
        queueing it; `arrival()` is done once the reader is needed again.

        The taker runs inside the fan-out, so it must not await, raise or end any
        subscription: it returns True when it took the event (the reader stays parked
        unless the taker calls `wake()`), False to have it queued, which unparks. Parking
        is what keeps the steady live path to one function call per viewer and event: a
        queued event costs a future resolved, a task woken and a coroutine resumed.
        """
        self._direct = taker
        return self.arrival()

    def wake(self) -> None:
        """Unpark and finish `arrival()`: the reader has to look (see `park`)."""
        self._direct = None
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _offer(self, event: Event) -> bool:
        """Hand `event` to a parked reader, or queue it without waiting; False when
        queueing would exceed a cap.

        The byte cap counts characters of HTML (len() is O(1); encoding per viewer is what
        the fan-out must avoid). An event larger than the cap is still accepted into an
        empty queue, or a big enough change could never reach anybody.
        """
        direct = self._direct
        if direct is not None:
            if direct(event):
                return True
            self._direct = None  # queued below, for the reader's own loop
        queue = self._queue
        size = len(event.html)
        if queue and (len(queue) >= self._max_events or self._bytes + size > self._max_bytes):
            return False
        queue.append(event)
        self._bytes += size
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def _end(self, reason: Literal["overflowed", "reset", "closed"]) -> None:
        if self.ended:
            return
        if reason == "overflowed":
            self.overflowed = True
        elif reason == "reset":
            self.reset = True
        else:
            self.closed = True
        self._fanout.remove(self)
        self._queue.clear()
        self._bytes = 0
        self.wake()


class Fanout:
    """The local subscriptions of one broker, by topic; delivery never awaits."""

    __slots__ = ("_all_subs", "_by_topic", "_closed", "_serials")

    def __init__(self) -> None:
        self._by_topic: dict[str, set[Subscription]] = {}
        self._all_subs: set[Subscription] = set()
        self._closed = False
        self._serials = itertools.count()

    def __len__(self) -> int:
        return len(self._all_subs)

    def subscribe(self, topics: list[str], max_events: int, max_bytes: int) -> Subscription:
        sub = Subscription(self, topics, max_events, max_bytes, next(self._serials))
        if self._closed:
            # A stream opened during shutdown ends at once instead of waiting forever.
            sub.closed = True
            return sub
        for topic in sub.topics:
            self._by_topic.setdefault(topic, set()).add(sub)
        self._all_subs.add(sub)
        return sub

    def remove(self, sub: Subscription) -> None:
        self._all_subs.discard(sub)
        for topic in sub.topics:
            subs = self._by_topic.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_topic[topic]

    def deliver(self, event: Event) -> None:
        """Hand one decoded event to every subscriber of its topic (the shared object)."""
        subs = self._by_topic.get(event.topic)
        if not subs:
            return
        metrics.fanned_out(event)  # the delivery lag counts from here
        # Cut-offs are collected first because ending a subscription edits `subs`.
        full = [sub for sub in subs if not sub._offer(event)]
        for sub in full:
            sub._end("overflowed")
        metrics.cut_off("overflow", len(full))

    def offer_all(self, event: Event, part: int = 0, parts: int = 1) -> None:
        """Offer an event to every local subscription whatever its topics (heartbeats) —
        or to one of `parts` fixed slices of them (`part`), so that a round of heartbeats
        can be spread over its interval: every subscription is in exactly one slice for
        as long as it lives (by its serial number, so the slices are even).

        A subscription too full to take it is left alone: it is about to be cut off anyway.
        """
        for sub in self._all():
            if parts == 1 or sub.serial % parts == part:
                sub._offer(event)

    def reset_all(self) -> None:
        """End every subscription because events may have been missed."""
        for sub in self._all():
            sub._end("reset")

    def close_all(self) -> None:
        """End every subscription and refuse new ones (broker shutdown)."""
        self._closed = True
        for sub in self._all():
            sub._end("closed")

    def _all(self) -> list[Subscription]:
        return list(self._all_subs)


class Broker(ABC):
    """Publish events to topics, keep their recent history, feed local subscriptions."""

    epoch: str

    def __init__(self) -> None:
        self.epoch = ""
        self._fanout = Fanout()

    @abstractmethod
    async def start(self) -> None:
        """Get ready to publish and deliver (call once, from the app's lifespan)."""

    @abstractmethod
    async def stop(self) -> None:
        """End all subscriptions and release connections; returns promptly."""

    @abstractmethod
    async def publish(self, topic: str, kind: str, actor: str, html: str) -> Event:
        """Store the event in the topic's history and deliver it live, in the topic's order."""

    @abstractmethod
    async def publish_ephemeral(self, topic: str, kind: str, actor: str, html: str) -> None:
        """Deliver to current subscribers only; never stored, never replayed."""

    @abstractmethod
    async def cursor(self, topics: list[str]) -> Cursor:
        """The current epoch and each topic's latest position (embedded in a rendered page)."""

    @abstractmethod
    async def since(self, topic: str, position: str) -> list[Event] | None:
        """Events after `position` ("" = from the start), or None if it cannot be resumed."""

    @abstractmethod
    async def healthy(self) -> bool:
        """Whether the broker can publish right now."""

    @property
    def listening(self) -> bool:
        """Whether events published now reach this process's subscribers live."""
        return True

    @abstractmethod
    def missed(self) -> None:
        """A publish failed after its change was committed (the broker was not answering):
        see to it that every viewer resyncs once the broker is back."""

    def subscribe(
        self,
        topics: list[str],
        max_events: int = DEFAULT_MAX_EVENTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> Subscription:
        """A new live feed for `topics`; subscribe before replaying `since` to leave no gap."""
        return self._fanout.subscribe(topics, max_events, max_bytes)

    def close_subscriptions(self) -> None:
        """End every local stream now and refuse new ones (the server is shutting down)."""
        self._fanout.close_all()

    @abstractmethod
    def serialised(self, topic: str) -> AbstractAsyncContextManager[None]:
        """Hold while rendering and publishing a snapshot of a topic's regions, so that
        snapshots are published in the order they were rendered, across processes: the
        last event of a topic is always the freshest."""

    def tick(self, event: Event, part: int = 0, parts: int = 1) -> None:
        """Offer `event` to every local subscription (or to slice `part` of `parts`): one
        loop per heartbeat, no timers."""
        self._fanout.offer_all(event, part, parts)

    @property
    def subscriptions(self) -> int:
        """Number of open subscriptions (for metrics and tests)."""
        return len(self._fanout)
