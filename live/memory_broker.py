"""In-process broker: the live layer for a single process (development, SQLite, tests).

Same semantics as the Redis broker: per-topic seq from 1, a history capped by length and
age, `since` that refuses to resume across trimmed history, and an epoch that is new for
every process, so cursors issued before a restart are recognised as unknown.
A position is the event's seq as a string.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from itertools import islice

from live import metrics
from live.broker import Broker
from live.events import Cursor, Event

_POSITION = re.compile(r"[0-9]{1,19}")


class _Topic:
    __slots__ = ("entries", "last_seq")

    def __init__(self, max_len: int) -> None:
        self.last_seq = 0
        # (published at, event); the deque's maxlen enforces the length cap by itself.
        self.entries: deque[tuple[float, Event]] = deque(maxlen=max_len)


class MemoryBroker(Broker):
    """Keeps history in per-topic deques and delivers synchronously inside `publish`."""

    def __init__(
        self,
        *,
        max_len: int = 10_000,
        retention_seconds: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.epoch = secrets.token_hex(8)
        self._max_len = max_len
        self._retention = retention_seconds
        self._clock = clock
        self._topics: dict[str, _Topic] = {}
        self._serial: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        """Nothing to connect to; present for the shared interface."""

    def serialised(self, topic: str) -> AbstractAsyncContextManager[None]:
        lock = self._serial.get(topic)
        if lock is None:
            lock = self._serial[topic] = asyncio.Lock()
        return lock

    async def stop(self) -> None:
        self._fanout.close_all()

    async def publish(self, topic: str, kind: str, actor: str, html: str) -> Event:
        state = self._topics.get(topic)
        if state is None:
            state = self._topics[topic] = _Topic(self._max_len)
        state.last_seq += 1
        event = Event(topic, state.last_seq, str(state.last_seq), kind, actor, html)
        now = self._clock()
        state.entries.append((now, event))
        self._trim_by_age(state, now)
        metrics.published(topic, kind)
        self._fanout.deliver(event)
        # Let readers run, as a round trip to Redis would: a loop publishing a burst must
        # not cut off every viewer just because nobody else got the event loop meanwhile.
        await asyncio.sleep(0)
        return event

    async def publish_ephemeral(self, topic: str, kind: str, actor: str, html: str) -> None:
        metrics.published(topic, kind)
        self._fanout.deliver(Event(topic, 0, "", kind, actor, html, ephemeral=True))

    async def cursor(self, topics: list[str]) -> Cursor:
        positions = {}
        for topic in topics:
            state = self._topics.get(topic)
            if state is not None and state.entries:
                positions[topic] = state.entries[-1][1].position
        return Cursor(self.epoch, positions)

    async def since(self, topic: str, position: str) -> list[Event] | None:
        """Events after `position`, or None when that cannot be resumed from.

        "" means the start of the topic: allowed only while seq 1 is still kept (or the
        topic never had an event). Any other position must be a seq whose event is still
        kept: if it was trimmed, what followed it may be gone too.
        """
        state = self._topics.get(topic)
        if position == "":
            if state is None:
                return []
            if not state.entries or state.entries[0][1].seq != 1:
                return None
            return [event for _, event in state.entries]
        if not isinstance(position, str) or not _POSITION.fullmatch(position):
            return None
        if state is None or not state.entries:
            return None
        seq, first = int(position), state.entries[0][1].seq
        if not first <= seq <= state.last_seq:
            return None
        return [event for _, event in islice(state.entries, seq - first + 1, None)]

    async def healthy(self) -> bool:
        return True

    def missed(self) -> None:
        pass  # publishing in-process cannot fail

    def _trim_by_age(self, state: _Topic, now: float) -> None:
        # Trimming on publish is enough: history only has to cover *at least* the
        # retention window, and an idle topic holds no more than it did.
        cutoff = now - self._retention
        entries = state.entries
        while entries and entries[0][0] < cutoff:
            entries.popleft()
