"""Which backends the live layer runs on, chosen in one place.

With a Redis URL the broker, presence and locks all live in Redis, so any number of
processes share them; without one, all three are in-process (the embedded default, one
process only). The Redis client is shared by presence, locks and whatever else the app
keeps there (the sign-in throttle), and closed with `aclose()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from live.broker import Broker
from live.locks import LockStore, MemoryLocks, RedisLocks
from live.memory_broker import MemoryBroker
from live.presence import MemoryPresence, PresenceStore, RedisPresence
from live.redis_broker import RedisBroker


@dataclass(frozen=True)
class Backends:
    broker: Broker
    presence: PresenceStore
    locks: LockStore
    redis: Any = None  # redis.asyncio.Redis when configured

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def backends(redis_url: str | None, namespace: str = "fb") -> Backends:
    if not redis_url:
        return Backends(MemoryBroker(), MemoryPresence(), MemoryLocks())
    import redis.asyncio as redis

    # A blocking pool: a burst of 200 viewers' heartbeats waits for a connection instead
    # of failing with MaxConnectionsError (redis-py's default pool raises).
    pool = redis.BlockingConnectionPool.from_url(
        redis_url, max_connections=64, timeout=5, decode_responses=True
    )
    client = redis.Redis.from_pool(pool)  # owns the pool: aclose() closes it
    return Backends(
        RedisBroker(redis_url, namespace=namespace),
        RedisPresence(client, namespace),
        RedisLocks(client, namespace),
        client,
    )
