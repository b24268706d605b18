"""Soft locks: "being edited by X" (SPEC §4, "Soft locks").

Taking an entity for editing acquires a lock on a string key (e.g. ``"site:3:draft:17"``)
for a short TTL (default 30 s); the open editor renews it, and a holder who vanishes
loses it once the TTL runs out. There is never more than one holder: acquiring is a
single atomic step in both backends (a Lua script on Redis, a check-and-set without an
``await`` in between in memory). The same ``holder_id`` acquiring again gets its own lock
back, renewed, with the same token, so a double click or a second tab does not lock the
user out of their own edit. Renew and release need the token (compare-and-set), so a
late release from a holder whose lock expired and was taken by someone else is harmless.

:class:`LockHeld` carries the current holder; ``str(exc)`` reads "Being edited by Bob
Wilson until 14:05:30" and the route layer turns it into HTTP 423.

Redis keys: ``{ns}:lock:{key}`` is a HASH (holder_id, holder, token) with a PEXPIRE, and
``{ns}:locks`` is a ZSET of lock keys (all scores 0) so ``holders(prefix)`` is a lexical
range instead of a keyspace scan; index entries of expired locks stay until ``lapsed()``
reports them (once, to one process), which is how a lock that ran out clears its badge.
Expiry times are the server's own (``PEXPIRETIME``, Redis 7.0+), so every process reports
the same "until" time whatever its clock says.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import redis.asyncio as aioredis

DEFAULT_TTL = 30.0


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock and until when (``expires_at``: epoch seconds, wall clock)."""

    key: str
    holder_id: int
    holder: str
    token: str
    expires_at: float

    def frees_at(self, tz: tzinfo | None = None) -> str:
        """``HH:MM:SS`` when the lock runs out unless renewed (local time if no tz)."""
        # Round up: telling someone a lock frees a second early sends them into a 423.
        return datetime.fromtimestamp(math.ceil(self.expires_at), tz).strftime("%H:%M:%S")

    def describe(self, tz: tzinfo | None = None) -> str:
        return f"Being edited by {self.holder} until {self.frees_at(tz)}"


class LockHeld(Exception):
    """Someone else holds the lock; ``info`` says who and until when."""

    def __init__(self, info: LockInfo) -> None:
        super().__init__(info.describe())
        self.info = info


def new_token() -> str:
    return secrets.token_hex(16)


def _check_ttl(ttl: float) -> None:
    if ttl <= 0:
        raise ValueError("lock ttl must be positive")


class LockStore(ABC):
    """Soft locks; see the module docstring for the guarantees."""

    @abstractmethod
    async def acquire(
        self, key: str, holder_id: int, holder: str, ttl: float = DEFAULT_TTL
    ) -> LockInfo:
        """Take or renew (same holder_id) the lock; raise LockHeld if someone else has it."""

    @abstractmethod
    async def renew(self, key: str, token: str, ttl: float = DEFAULT_TTL) -> bool:
        """Extend the lock to ``ttl`` from now; False if the token no longer holds it."""

    @abstractmethod
    async def release(self, key: str, token: str) -> bool:
        """Free the lock; False (and nothing changes) if the token does not hold it."""

    @abstractmethod
    async def holder(self, key: str) -> LockInfo | None:
        """The current unexpired holder, if any."""

    @abstractmethod
    async def break_lock(self, key: str) -> LockInfo | None:
        """Manager override: free the lock whoever holds it; return who did."""

    @abstractmethod
    async def holders(self, prefix: str) -> dict[str, LockInfo]:
        """Every live lock whose key starts with ``prefix``."""

    @abstractmethod
    async def release_holder(self, holder_id: int) -> list[str]:
        """Free every lock ``holder_id`` holds (their account was deactivated); the keys.

        Each freed lock is then reported by ``lapsed()`` like one that ran out, so the
        watcher clears its badge on every page, on every worker.
        """

    @abstractmethod
    async def lapsed(self) -> list[str]:
        """Keys whose lock ran out (not released, not broken) since the last call.

        Each lapse is reported once, to one caller, however many processes ask: whoever
        gets it tells the lock's viewers that nobody is editing any more.
        """


class MemoryLocks(LockStore):
    """In-process locks for the single-process embedded mode.

    No method awaits between reading and writing the dict, so tasks on one event loop
    cannot interleave inside an operation.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._locks: dict[str, LockInfo] = {}
        self._lapsed: set[str] = set()

    def _live(self, key: str) -> LockInfo | None:
        info = self._locks.get(key)
        if info is not None and info.expires_at <= self._clock():
            del self._locks[key]
            self._lapsed.add(key)
            return None
        return info

    async def acquire(
        self, key: str, holder_id: int, holder: str, ttl: float = DEFAULT_TTL
    ) -> LockInfo:
        _check_ttl(ttl)
        current = self._live(key)
        if current is not None and current.holder_id != holder_id:
            raise LockHeld(current)
        expires_at = self._clock() + ttl
        if current is not None:
            info = dataclasses.replace(current, expires_at=expires_at)
        else:
            info = LockInfo(key, holder_id, holder, new_token(), expires_at)
        self._locks[key] = info
        return info

    async def renew(self, key: str, token: str, ttl: float = DEFAULT_TTL) -> bool:
        _check_ttl(ttl)
        current = self._live(key)
        if current is None or current.token != token:
            return False
        self._locks[key] = dataclasses.replace(current, expires_at=self._clock() + ttl)
        return True

    async def release(self, key: str, token: str) -> bool:
        current = self._live(key)
        if current is None or current.token != token:
            return False
        del self._locks[key]
        return True

    async def holder(self, key: str) -> LockInfo | None:
        return self._live(key)

    async def break_lock(self, key: str) -> LockInfo | None:
        current = self._live(key)
        self._locks.pop(key, None)
        return current

    async def holders(self, prefix: str) -> dict[str, LockInfo]:
        found: dict[str, LockInfo] = {}
        for key in [k for k in self._locks if k.startswith(prefix)]:
            info = self._live(key)
            if info is not None:
                found[key] = info
        return found

    async def release_holder(self, holder_id: int) -> list[str]:
        freed = sorted(
            k for k in list(self._locks) if (i := self._live(k)) and i.holder_id == holder_id
        )
        for key in freed:
            del self._locks[key]
            self._lapsed.add(key)
        return freed

    async def lapsed(self) -> list[str]:
        for key in list(self._locks):
            self._live(key)
        found, self._lapsed = sorted(self._lapsed), set()
        return found


# Replies describe a lock as {holder_id, holder, token, expires_ms}. PEXPIRETIME (Redis
# 7.0+) gives the absolute expiry, so every reply about one lock agrees to the millisecond.
_CURRENT = """
local function current(lock_key)
  local h = redis.call('HMGET', lock_key, 'holder_id', 'holder', 'token')
  if not h[1] then return nil end
  return {h[1], h[2], h[3], redis.call('PEXPIRETIME', lock_key)}
end
"""

# KEYS: lock hash, index. ARGV: key, holder_id, holder, token, ttl_ms.
# Reply: {status, holder_id, holder, token, expires_ms}; status 1 = ours, 0 = held.
_ACQUIRE = (
    _CURRENT
    + """
local ttl = tonumber(ARGV[5])
local cur = current(KEYS[1])
if cur then
  if cur[1] ~= ARGV[2] then return {0, cur[1], cur[2], cur[3], cur[4]} end
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('HSET', KEYS[1], 'holder_id', ARGV[2], 'holder', ARGV[3], 'token', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
end
cur = current(KEYS[1])
return {1, cur[1], cur[2], cur[3], cur[4]}
"""
)

# KEYS: lock hash. ARGV: token, ttl_ms.
_RENEW = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""

# KEYS: lock hash, index. ARGV: key, token.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
"""

# KEYS: lock hash.
_HOLDER = _CURRENT + "return current(KEYS[1])"

# KEYS: lock hash, index. ARGV: key.
_BREAK = (
    _CURRENT
    + """
local cur = current(KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return cur
"""
)

# KEYS: index. ARGV: lock key prefix ("{ns}:lock:"), key prefix.
# Reply: flat list of key, holder_id, holder, token, expires_ms per live lock.
# Lock keys are derived from index members, which is fine on a single Redis (not Cluster).
_HOLDERS = (
    _CURRENT
    + """
local lo, hi = '-', '+'
if ARGV[2] ~= '' then
  -- keys are UTF-8, which never contains byte 0xff, so this bounds the prefix range
  lo, hi = '[' .. ARGV[2], '(' .. ARGV[2] .. '\\255'
end
local out = {}
for _, key in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], lo, hi)) do
  local cur = current(ARGV[1] .. key)
  if cur then
    table.insert(out, key)
    for _, v in ipairs(cur) do table.insert(out, v) end
  end
end
return out
"""
)

# KEYS: index. ARGV: lock key prefix. Index entries whose lock hash has expired are the
# lapses (release and break remove their entry): removed here, so each is reported once.
_LAPSED = """
local out = {}
for _, key in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], '-', '+')) do
  if redis.call('EXISTS', ARGV[1] .. key) == 0 then
    redis.call('ZREM', KEYS[1], key)
    table.insert(out, key)
  end
end
return out
"""


# KEYS: index. ARGV: lock key prefix, holder_id. Deletes the holder's lock hashes but keeps
# their index entries, so the next ``lapsed()`` reports them (and their badges clear).
_RELEASE_HOLDER = """
local out = {}
for _, key in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], '-', '+')) do
  if redis.call('HGET', ARGV[1] .. key, 'holder_id') == ARGV[2] then
    redis.call('DEL', ARGV[1] .. key)
    table.insert(out, key)
  end
end
return out
"""


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _info(key: str, reply: Sequence[Any]) -> LockInfo:
    holder_id, holder, token, expires_ms = reply
    return LockInfo(
        key=key,
        holder_id=int(_text(holder_id)),
        holder=_text(holder),
        token=_text(token),
        expires_at=int(expires_ms) / 1000,
    )


class RedisLocks(LockStore):
    """Locks shared by every process that talks to the same Redis."""

    def __init__(self, redis_client: aioredis.Redis, namespace: str) -> None:
        self._redis = redis_client
        self._lock_prefix = f"{namespace}:lock:"
        self._index = f"{namespace}:locks"
        self._acquire = redis_client.register_script(_ACQUIRE)
        self._renew = redis_client.register_script(_RENEW)
        self._release = redis_client.register_script(_RELEASE)
        self._holder = redis_client.register_script(_HOLDER)
        self._break = redis_client.register_script(_BREAK)
        self._holders = redis_client.register_script(_HOLDERS)
        self._lapsed = redis_client.register_script(_LAPSED)
        self._release_holder = redis_client.register_script(_RELEASE_HOLDER)

    def _key(self, key: str) -> str:
        return self._lock_prefix + key

    async def acquire(
        self, key: str, holder_id: int, holder: str, ttl: float = DEFAULT_TTL
    ) -> LockInfo:
        _check_ttl(ttl)
        status, *reply = await self._acquire(
            keys=[self._key(key), self._index],
            args=[key, str(holder_id), holder, new_token(), _ms(ttl)],
        )
        info = _info(key, reply)
        if not status:
            raise LockHeld(info)
        return info

    async def renew(self, key: str, token: str, ttl: float = DEFAULT_TTL) -> bool:
        _check_ttl(ttl)
        return bool(await self._renew(keys=[self._key(key)], args=[token, _ms(ttl)]))

    async def release(self, key: str, token: str) -> bool:
        reply = await self._release(keys=[self._key(key), self._index], args=[key, token])
        return bool(reply)

    async def holder(self, key: str) -> LockInfo | None:
        reply = await self._holder(keys=[self._key(key)])
        return _info(key, reply) if reply else None

    async def break_lock(self, key: str) -> LockInfo | None:
        reply = await self._break(keys=[self._key(key), self._index], args=[key])
        return _info(key, reply) if reply else None

    async def holders(self, prefix: str) -> dict[str, LockInfo]:
        flat = await self._holders(keys=[self._index], args=[self._lock_prefix, prefix])
        found: dict[str, LockInfo] = {}
        for i in range(0, len(flat), 5):
            key = _text(flat[i])
            found[key] = _info(key, flat[i + 1 : i + 5])
        return found

    async def release_holder(self, holder_id: int) -> list[str]:
        keys = await self._release_holder(
            keys=[self._index], args=[self._lock_prefix, str(holder_id)]
        )
        return sorted(_text(key) for key in keys)

    async def lapsed(self) -> list[str]:
        keys = await self._lapsed(keys=[self._index], args=[self._lock_prefix])
        return sorted(_text(key) for key in keys)
