"""Presence: who is viewing each live page (SPEC §4, "Presence").

Model
-----
A *page* (any string key, e.g. ``"site:3:home"``) has *connections*: one per open tab or
stream, named by a random ``conn_id`` chosen by the stream layer and tied to one
:class:`Viewer`. Every connection heartbeats; a connection that has not heartbeated for
``ttl`` seconds (default 15) is expired. A user is *present* while at least one of their
connections is unexpired, so two tabs of alice are one alice.

Join and leave are reported exactly once per stay, and they always pair up:

* ``heartbeat()`` returns True when it creates the user's first connection record on the
  page (a join). A refresh of an existing connection never reports a join.
* ``sweep()`` removes expired connection records and returns the users whose last record
  it removed (the leaves). A connection that has expired but has not been swept yet still
  counts as a record for this bookkeeping (though ``viewers()`` no longer lists it), so a
  tablet that wakes up and heartbeats before the next sweep neither leaves nor re-joins.
* Both are atomic (one Lua script on Redis), so with many processes heartbeating and
  sweeping the same page each join and each leave is reported by exactly one caller.

Leaving with a grace period
---------------------------
``leave(page, conn_id)`` (a stream closed cleanly) does not remove the connection: it
shortens its expiry to ``now + grace`` (default 1.5 s) and marks it as leaving. A
heartbeat from any connection of the same user within the grace (a page reload, an SSE
reconnect with a fresh ``conn_id``) keeps the user present, so others see no leave/join
flap; once the grace is over, ``sweep()`` drops the old record silently because the user
still has a live connection. Without a reconnect, ``sweep()`` reports the leave after the
grace. ``leave()`` returns True when a departure is now pending, i.e. the user has no other
unexpired, non-leaving connection on the page: the stream layer should then run
``sweep()`` once the grace is over. It returns False for an unknown connection or when
another tab of the user is still open.

Timing against the SPEC: with the 1.5 s grace and a sweep shortly after it, a clean leave
is visible to others within 2 s; a join is visible as soon as the first heartbeat returns.
A vanished tablet (no ``leave()``) is dropped by the first sweep after its TTL: heartbeat
every ≤ 5 s and sweep every second or so, and it is gone about 15 s after it vanished.

Backends
--------
:class:`MemoryPresence` serves the embedded single-process mode; :class:`RedisPresence`
shares state between processes. Redis keys, per page (all expire together some time after
the last write, so abandoned pages clean themselves up):

* ``{ns}:presence:{page}`` — ZSET, member ``conn_id``, score = expiry in server ms;
* ``{ns}:presence-conns:{page}`` — HASH ``conn_id`` → viewer JSON;
* ``{ns}:presence-users:{page}`` — HASH ``user_id`` → number of connection records, which
  makes join/leave detection O(1);
* ``{ns}:presence-leaving:{page}`` — SET of ``conn_id`` marked leaving.

Time comes from Redis ``TIME`` inside the scripts, so processes with skewed clocks agree.
Every operation is one round trip; ``viewers()`` is O(n) in the page's connections.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

DEFAULT_TTL = 15.0
DEFAULT_GRACE = 1.5
# Abandoned page keys outlive their last connection by this much, long enough for a
# periodic sweep to still report the departures.
KEY_SLACK = 60.0


def initials_of(display: str) -> str:
    """One or two uppercase letters for an avatar: first and last word of the name."""
    letters = [ch for word in display.split() if (ch := _first_alnum(word))]
    if not letters:
        return "?"
    picked = letters[0] + letters[-1] if len(letters) > 1 else letters[0]
    return picked.upper()


def _first_alnum(word: str) -> str:
    return next((ch for ch in word if ch.isalnum()), "")


@dataclass(frozen=True)
class Viewer:
    """A user as shown in a page's presence list."""

    user_id: int
    username: str
    display: str = ""
    initials: str = field(init=False)

    def __post_init__(self) -> None:
        # Frozen dataclass: derived fields must be set through object.__setattr__.
        display = self.display.strip() or self.username
        object.__setattr__(self, "display", display)
        object.__setattr__(self, "initials", initials_of(display))

    @classmethod
    def for_user(cls, user_id: int, username: str, full_name: str = "") -> Viewer:
        """Display the full name when the user has one, else the username."""
        return cls(user_id=user_id, username=username, display=full_name)

    def to_json(self) -> str:
        return json.dumps(
            {"user_id": self.user_id, "username": self.username, "display": self.display},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Viewer:
        data = json.loads(raw)
        return cls(user_id=int(data["user_id"]), username=data["username"], display=data["display"])


def _sort_key(viewer: Viewer) -> tuple[str, str, int]:
    return (viewer.display.casefold(), viewer.username.casefold(), viewer.user_id)


def _dedupe_sorted(viewers: Iterable[Viewer]) -> list[Viewer]:
    """One entry per user (the last one given wins), sorted by display name."""
    by_user = {viewer.user_id: viewer for viewer in viewers}
    return sorted(by_user.values(), key=_sort_key)


class ConnectionOwnerMismatch(ValueError):
    """A ``conn_id`` already on the page heartbeated as a different user."""


class PresenceStore(ABC):
    """Who is on which page; see the module docstring for the exact semantics."""

    def __init__(self, ttl: float = DEFAULT_TTL, grace: float = DEFAULT_GRACE) -> None:
        if ttl <= 0 or grace < 0:
            raise ValueError("ttl must be positive and grace non-negative")
        self.ttl = ttl
        self.grace = grace

    @abstractmethod
    async def heartbeat(self, page: str, conn_id: str, viewer: Viewer) -> bool:
        """Keep a connection alive; True if this made the user newly present (a join)."""

    @abstractmethod
    async def leave(self, page: str, conn_id: str) -> bool:
        """Start the grace period; True if the user's departure is now pending."""

    @abstractmethod
    async def viewers(self, page: str) -> list[Viewer]:
        """Users with an unexpired connection, one entry each, sorted by display name."""

    @abstractmethod
    async def sweep(self, page: str) -> list[Viewer]:
        """Drop expired connections; return the users who thereby left, sorted."""

    async def sweep_all(self, pages: list[str]) -> dict[str, list[Viewer]]:
        """`sweep` for each of `pages` (the hub sweeps every page it holds streams of,
        twice a second); a store that can does them in one round trip."""
        return {page: await self.sweep(page) for page in pages}

    @abstractmethod
    async def connections(self, page: str) -> set[str]:
        """The page's unexpired connection ids, wherever they heartbeat (half-open checks)."""


@dataclass
class _Conn:
    viewer: Viewer
    expires: float
    leaving: bool = False


class MemoryPresence(PresenceStore):
    """In-process presence for the single-process embedded mode.

    Methods never await between reading and writing, so concurrent tasks on one event
    loop see each operation as atomic.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        ttl: float = DEFAULT_TTL,
        grace: float = DEFAULT_GRACE,
    ) -> None:
        super().__init__(ttl, grace)
        self._clock = clock
        self._pages: dict[str, dict[str, _Conn]] = {}

    async def heartbeat(self, page: str, conn_id: str, viewer: Viewer) -> bool:
        conns = self._pages.setdefault(page, {})
        expires = self._clock() + self.ttl
        current = conns.get(conn_id)
        if current is not None:
            if current.viewer.user_id != viewer.user_id:
                raise ConnectionOwnerMismatch(conn_id)
            current.viewer, current.expires, current.leaving = viewer, expires, False
            return False
        joined = not any(c.viewer.user_id == viewer.user_id for c in conns.values())
        conns[conn_id] = _Conn(viewer, expires)
        return joined

    async def leave(self, page: str, conn_id: str) -> bool:
        conns = self._pages.get(page, {})
        current = conns.get(conn_id)
        if current is None:
            return False
        now = self._clock()
        current.expires = min(current.expires, now + self.grace)
        current.leaving = True
        return not any(
            c.viewer.user_id == current.viewer.user_id and not c.leaving and c.expires > now
            for c in conns.values()
        )

    async def viewers(self, page: str) -> list[Viewer]:
        now = self._clock()
        live = sorted(
            (c for c in self._pages.get(page, {}).values() if c.expires > now),
            key=lambda c: c.expires,
        )
        return _dedupe_sorted(c.viewer for c in live)

    async def connections(self, page: str) -> set[str]:
        now = self._clock()
        return {cid for cid, c in self._pages.get(page, {}).items() if c.expires > now}

    async def sweep(self, page: str) -> list[Viewer]:
        conns = self._pages.get(page)
        if not conns:
            return []
        now = self._clock()
        expired = {cid: c for cid, c in conns.items() if c.expires <= now}
        for cid in expired:
            del conns[cid]
        remaining = {c.viewer.user_id for c in conns.values()}
        if not conns:
            del self._pages[page]
        return _dedupe_sorted(
            c.viewer for c in expired.values() if c.viewer.user_id not in remaining
        )


# Server time in milliseconds; Redis 7 replicates script effects, so TIME is allowed
# before writes.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
"""

_REFRESH_KEYS = """
for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, keep_ms) end
"""

# KEYS: zset, conns, users, leaving. ARGV: conn_id, user_id, viewer_json, ttl_ms, keep_ms.
_HEARTBEAT = (
    _NOW
    + """
local conn, uid, vjson = ARGV[1], ARGV[2], ARGV[3]
local keep_ms = ARGV[5]
local old = redis.call('HGET', KEYS[2], conn)
if old and old ~= vjson and string.format('%d', cjson.decode(old).user_id) ~= uid then
  return redis.error_reply('connection belongs to another user')
end
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), conn)
redis.call('HSET', KEYS[2], conn, vjson)
redis.call('SREM', KEYS[4], conn)
local joined = 0
if added == 1 and redis.call('HINCRBY', KEYS[3], uid, 1) == 1 then joined = 1 end
"""
    + _REFRESH_KEYS
    + "return joined"
)

# KEYS: zset, conns, users, leaving. ARGV: conn_id, grace_ms, keep_ms.
_LEAVE = (
    _NOW
    + """
local conn = ARGV[1]
local keep_ms = ARGV[3]
local expires = redis.call('ZSCORE', KEYS[1], conn)
local vjson = redis.call('HGET', KEYS[2], conn)
if not expires or not vjson then return 0 end
local uid = cjson.decode(vjson).user_id
redis.call('ZADD', KEYS[1], math.min(tonumber(expires), now + tonumber(ARGV[2])), conn)
redis.call('SADD', KEYS[4], conn)
"""
    + _REFRESH_KEYS
    + """
for _, other in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  if other ~= conn and redis.call('SISMEMBER', KEYS[4], other) == 0 then
    local ojson = redis.call('HGET', KEYS[2], other)
    if ojson and cjson.decode(ojson).user_id == uid then return 0 end
  end
end
return 1
"""
)

# KEYS: zset, conns, users, leaving. Returns the viewer JSON of each user who left.
_SWEEP = (
    _NOW
    + """
local left = {}
for _, conn in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  local vjson = redis.call('HGET', KEYS[2], conn)
  redis.call('ZREM', KEYS[1], conn)
  redis.call('HDEL', KEYS[2], conn)
  redis.call('SREM', KEYS[4], conn)
  if vjson then
    local uid = string.format('%d', cjson.decode(vjson).user_id)
    if redis.call('HINCRBY', KEYS[3], uid, -1) <= 0 then
      redis.call('HDEL', KEYS[3], uid)
      table.insert(left, vjson)
    end
  end
end
return left
"""
)

# KEYS: zset, conns. Returns viewer JSON of unexpired connections, oldest expiry first.
_VIEWERS = (
    _NOW
    + """
local conns = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local out = {}
-- unpack() is limited by the Lua C stack, so fetch in slices
for i = 1, #conns, 500 do
  local slice = {}
  for j = i, math.min(i + 499, #conns) do table.insert(slice, conns[j]) end
  for _, vjson in ipairs(redis.call('HMGET', KEYS[2], unpack(slice))) do
    if vjson then table.insert(out, vjson) end
  end
end
return out
"""
)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


_CONNECTIONS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
"""


class RedisPresence(PresenceStore):
    """Presence shared by every process that talks to the same Redis."""

    def __init__(
        self,
        redis_client: aioredis.Redis,
        namespace: str,
        *,
        ttl: float = DEFAULT_TTL,
        grace: float = DEFAULT_GRACE,
    ) -> None:
        super().__init__(ttl, grace)
        self._redis = redis_client
        self._ns = namespace
        self._keep_ms = _ms(ttl + grace + KEY_SLACK)
        self._heartbeat = redis_client.register_script(_HEARTBEAT)
        self._leave = redis_client.register_script(_LEAVE)
        self._sweep = redis_client.register_script(_SWEEP)
        self._viewers = redis_client.register_script(_VIEWERS)
        self._connections = redis_client.register_script(_CONNECTIONS)

    def keys(self, page: str) -> list[str]:
        """The page's keys, in the order the scripts expect them."""
        ns = self._ns
        return [
            f"{ns}:presence:{page}",
            f"{ns}:presence-conns:{page}",
            f"{ns}:presence-users:{page}",
            f"{ns}:presence-leaving:{page}",
        ]

    async def heartbeat(self, page: str, conn_id: str, viewer: Viewer) -> bool:
        args: list[str | int] = [
            conn_id,
            str(viewer.user_id),
            viewer.to_json(),
            _ms(self.ttl),
            self._keep_ms,
        ]
        try:
            joined = await self._heartbeat(keys=self.keys(page), args=args)
        except ResponseError as exc:
            if "another user" in str(exc):
                raise ConnectionOwnerMismatch(conn_id) from exc
            raise
        return bool(joined)

    async def leave(self, page: str, conn_id: str) -> bool:
        args: list[str | int] = [conn_id, _ms(self.grace), self._keep_ms]
        return bool(await self._leave(keys=self.keys(page), args=args))

    async def viewers(self, page: str) -> list[Viewer]:
        raw: list[Any] = await self._viewers(keys=self.keys(page)[:2])
        return _dedupe_sorted(Viewer.from_json(item) for item in raw)

    async def connections(self, page: str) -> set[str]:
        raw: list[Any] = await self._connections(keys=self.keys(page)[:1])
        return {item.decode() if isinstance(item, bytes) else str(item) for item in raw}

    async def sweep(self, page: str) -> list[Viewer]:
        raw: list[Any] = await self._sweep(keys=self.keys(page))
        return _dedupe_sorted(Viewer.from_json(item) for item in raw)

    async def sweep_all(self, pages: list[str]) -> dict[str, list[Viewer]]:
        """Every page's sweep script in one pipeline: a worker with viewers on 500 pages
        made 500 round trips every half second (each a wake-up and a parse), now one."""
        if not pages:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for page in pages:
                await self._sweep(keys=self.keys(page), client=pipe)
            raws: list[Any] = await pipe.execute()
        return {
            page: _dedupe_sorted(Viewer.from_json(item) for item in raw)
            for page, raw in zip(pages, raws, strict=True)
        }
