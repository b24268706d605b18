"""Redis broker: live events between processes over pub/sub, history in Redis Streams.

Keys (all under the namespace `ns`):
- `{ns}:epoch`        random token; gone after a flush or a restart without persistence,
                      so a new one is made and every older cursor becomes unknown;
- `{ns}:seq:{topic}`  the topic's sequence counter (INCR);
- `{ns}:hist:{topic}` the topic's history stream, trimmed by length and by age;
- `{ns}:ev:{topic}`   the pub/sub channel carrying each event as JSON.

One Lua script publishes (epoch, seq, XADD, trims, PUBLISH), so a topic's stream order,
seq order and delivery order are one and the same, whatever the number of publishing
processes. Each process holds ONE pattern subscription; its reader task decodes each
message once and hands the same `Event` to every local subscription without awaiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from live import metrics
from live.broker import Broker
from live.events import Cursor, Event

logger = logging.getLogger(__name__)

_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]+")
_POSITION = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_MAX_ID_PART = 2**64 - 1

_POLL_SECONDS = 5.0  # idle, the reader wakes its process this often (each wake ~0.1 ms of CPU)
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 5.0
_START_TIMEOUT = 5.0
_STOP_TIMEOUT = 1.5
_PING_TIMEOUT = 2.0

# Gets the epoch, creating it when missing; used by both scripts below.
_EPOCH_LUA = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
"""

# KEYS: epoch, seq, hist. ARGV: new epoch token, kind, actor, html, max_len,
# retention_ms, channel, topic. Returns {epoch, seq, position}.
_PUBLISH_LUA = (
    _EPOCH_LUA
    + """
local seq = redis.call('INCR', KEYS[2])
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
  'seq', seq, 'kind', ARGV[2], 'actor', ARGV[3], 'html', ARGV[4])
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('XTRIM', KEYS[3], 'MINID', '~', string.format('%d', now_ms - tonumber(ARGV[6])))
redis.call('PUBLISH', ARGV[7], cjson.encode({
  topic = ARGV[8], seq = seq, position = id, kind = ARGV[2], actor = ARGV[3],
  html = ARGV[4], ephemeral = false, epoch = epoch}))
return {epoch, seq, id}
"""
)

# KEYS: epoch, then one history stream per topic. ARGV: new epoch token.
# Returns {epoch, last id or "" per stream}; atomic, so no event slips between them.
_CURSOR_LUA = (
    _EPOCH_LUA
    + """
local out = {epoch}
for i = 2, #KEYS do
  local last = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
  if last[1] then out[i] = last[1][1] else out[i] = '' end
end
return out
"""
)


def _valid_position(position: str) -> bool:
    """A stream id Redis will accept (`ms-seq`, each within 64 bits)."""
    match = _POSITION.fullmatch(position)
    return match is not None and all(int(part) <= _MAX_ID_PART for part in match.groups())


class RedisBroker(Broker):
    """The broker for several processes sharing one Redis (≥ 6.2)."""

    def __init__(
        self,
        url: str,
        namespace: str = "fb",
        *,
        max_len: int = 10_000,
        retention_seconds: float = 900.0,
        serial_wait: float = 15.0,
    ) -> None:
        super().__init__()
        if not _NAMESPACE.fullmatch(namespace):
            # The namespace ends up in a PSUBSCRIBE glob; keep glob characters out of it.
            raise ValueError(f"namespace must match {_NAMESPACE.pattern}: {namespace!r}")
        self._ns = namespace
        self._max_len = max_len
        self._retention_ms = int(retention_seconds * 1000)
        self._serial_wait = serial_wait
        # Unique per broker instance so an operator (or a test) can find its connections.
        self.client_name = f"floorboard-{namespace}-{secrets.token_hex(4)}"
        # A blocking pool: when a thousand viewers reconnect at once (say after a Redis
        # restart) their replays queue for a connection instead of failing with
        # MaxConnectionsError, which is what redis-py's default pool does at 100.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=50,
            timeout=10,
            decode_responses=True,
            health_check_interval=30,
            client_name=self.client_name,
        )
        self._client = aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it
        self._publish_script = self._client.register_script(_PUBLISH_LUA)
        self._cursor_script = self._client.register_script(_CURSOR_LUA)
        self._reader: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        # False from a failure of the reader's subscription until Redis confirms it again:
        # meanwhile nothing is delivered live, and the confirmation resets every stream.
        self._listening = False
        self._missed = False  # a publish failed: the history has a hole (see missed())

    # -- keys -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def serialised(self, topic: str) -> AsyncIterator[None]:
        """A Redis lock around render + publish (redis-py's Lock: a token and a Lua
        compare-and-delete; its timeout frees it if this process dies mid-render).

        Ordering is worth waiting for, but never worth losing an event: if the lock
        cannot be had in time (a saturated server) the snapshot is published anyway.
        """
        lock = self._client.lock(
            self._key("serial", topic), timeout=30, blocking_timeout=self._serial_wait
        )
        acquired = False
        try:
            acquired = bool(await lock.acquire())
        except RedisError:
            logger.warning("no render lock for %s; publishing unserialised", topic, exc_info=True)
        if not acquired:
            logger.warning("render lock for %s not acquired in time; publishing anyway", topic)
        try:
            yield
        finally:
            if acquired:
                with contextlib.suppress(RedisError):  # lapsed meanwhile: nothing to undo
                    await lock.release()

    def _key(self, kind: str, topic: str = "") -> str:
        return f"{self._ns}:{kind}:{topic}" if topic else f"{self._ns}:{kind}"

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Read (or create) the epoch, then wait until the reader's subscription is live."""
        self.epoch = await self._load_epoch()
        self._reader = asyncio.create_task(self._read_forever(), name=f"{self.client_name}-reader")
        try:
            await asyncio.wait_for(self._subscribed.wait(), _START_TIMEOUT)
        except TimeoutError:
            await self.stop()
            raise ConnectionError("live broker: could not subscribe to Redis pub/sub") from None

    async def stop(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            # Bounded: shutdown must finish even if closing the socket misbehaves.
            await asyncio.wait({reader}, timeout=_STOP_TIMEOUT)
        self._fanout.close_all()
        await self._client.aclose()

    async def healthy(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._client.ping(), _PING_TIMEOUT))
        except (RedisError, OSError, TimeoutError):
            return False

    @property
    def listening(self) -> bool:
        return self._listening

    # -- publishing -------------------------------------------------------------------------

    async def publish(self, topic: str, kind: str, actor: str, html: str) -> Event:
        if self._missed:
            self._observe_epoch(await self._new_epoch())
        epoch, seq, position = await self._publish_script(
            keys=[self._key("epoch"), self._key("seq", topic), self._key("hist", topic)],
            args=[
                secrets.token_hex(8),
                kind,
                actor,
                html,
                self._max_len,
                self._retention_ms,
                self._key("ev", topic),
                topic,
            ],
        )
        self._observe_epoch(epoch)
        metrics.published(topic, kind)
        return Event(topic, int(seq), position, kind, actor, html)

    async def publish_ephemeral(self, topic: str, kind: str, actor: str, html: str) -> None:
        event = Event(topic, 0, "", kind, actor, html, ephemeral=True)
        await self._client.publish(self._key("ev", topic), event.to_json())
        metrics.published(topic, kind)

    # -- history ----------------------------------------------------------------------------

    async def cursor(self, topics: list[str]) -> Cursor:
        epoch, *positions = await self._cursor_script(
            keys=[self._key("epoch"), *(self._key("hist", topic) for topic in topics)],
            args=[secrets.token_hex(8)],
        )
        self._observe_epoch(epoch)
        return Cursor(epoch, {t: p for t, p in zip(topics, positions, strict=True) if p})

    async def since(self, topic: str, position: str) -> list[Event] | None:
        """Events of `topic` strictly after `position`, or None if it cannot be resumed.

        The rule: a stream id can be resumed from only while the entry AT that id is still
        in the stream. Trimming removes the oldest entries first, so if it is kept nothing
        after it is missing; if it is gone it was trimmed (or never existed) and the
        viewer needs a resync. Both reads run in one MULTI so a concurrent trim cannot
        slip between them. The lookup is a direct seek (`XRANGE key (pos +`).

        "" means from the start of the topic: everything kept is returned only if nothing
        was trimmed yet (the first kept entry has seq 1, or the topic never had an event).
        """
        hist = self._key("hist", topic)
        async with self._client.pipeline(transaction=True) as pipe:
            if position == "":
                pipe.xrange(hist, "-", "+")
                pipe.get(self._key("seq", topic))
                entries, last_seq = await pipe.execute()
                if not entries:
                    return [] if last_seq is None else None
                if int(entries[0][1]["seq"]) != 1:
                    return None
                return [self._stream_event(topic, entry) for entry in entries]
            if not isinstance(position, str) or not _valid_position(position):
                return None
            pipe.xrange(hist, position, position, count=1)
            pipe.xrange(hist, f"({position}", "+")
            at, after = await pipe.execute()
        if not at:
            return None
        return [self._stream_event(topic, entry) for entry in after]

    @staticmethod
    def _stream_event(topic: str, entry: tuple[str, dict[str, str]]) -> Event:
        position, fields = entry
        return Event(
            topic, int(fields["seq"]), position, fields["kind"], fields["actor"], fields["html"]
        )

    # -- epoch ------------------------------------------------------------------------------

    async def _load_epoch(self) -> str:
        # The cursor script with no topics is exactly "get or create the epoch".
        epoch, *_ = await self._cursor_script(
            keys=[self._key("epoch")], args=[secrets.token_hex(8)]
        )
        return str(epoch)

    def missed(self) -> None:
        """A committed change could not be published: its event is in no history, so a
        viewer resuming after it would silently lack it. Once Redis answers again (the
        reader resubscribes, or the next publish), a new epoch makes every viewer of every
        process resync (a Redis that lost its keys has made a new epoch already)."""
        self._missed = True

    async def _new_epoch(self) -> str:
        """Start a new epoch and announce it on the pub/sub pattern, so that every
        process adopts it (`_dispatch` observes the epoch of every message)."""
        epoch = secrets.token_hex(8)
        await self._client.set(self._key("epoch"), epoch)
        announce = Event("epoch", 0, "", "epoch", "", "", ephemeral=True).to_dict()
        await self._client.publish(
            self._key("ev", "epoch"), json.dumps({**announce, "epoch": epoch})
        )
        self._missed = False
        logger.warning("live broker: new epoch after a lost publish; every viewer resyncs")
        return epoch

    def _observe_epoch(self, epoch: str) -> None:
        """Adopt a new epoch. Live subscriptions carry positions of the lost history, so
        they end with `reset` and their viewers resync against the new one.

        A publish lost before the change needs no epoch of its own any more: every viewer
        resyncs from the database, which holds its commit. And while the reader is not
        subscribed the reset waits for it: its confirmation resets every subscription
        anyway, and a viewer ended now would reconnect only to be ended again then.
        """
        if epoch != self.epoch:
            if self.epoch:
                logger.warning("live broker: epoch changed (Redis flushed or restarted)")
                self._missed = False
                if self._listening:
                    self._fanout.reset_all()
            self.epoch = epoch

    # -- the reader -------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        """Hold the process's one pattern subscription, reconnecting after any failure.

        redis-py reconnects and re-subscribes a pub/sub connection by itself when a read
        fails; the server then confirms the PSUBSCRIBE again. So any confirmation after the
        first one means the connection was lost and messages may be gone, whether redis-py
        or this loop did the reconnecting.
        """
        delay = _BACKOFF_FIRST
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.psubscribe(self._key("ev", "*"))
                while True:
                    # A timed poll (not listen()) lets health checks and cancellation run.
                    message = await pubsub.get_message(timeout=_POLL_SECONDS)
                    if message is None:
                        continue
                    if message["type"] == "pmessage":
                        self._dispatch(message["data"])
                    elif message["type"] == "psubscribe":
                        delay = _BACKOFF_FIRST  # back: if the next step fails, retry soon
                        await self._on_subscribed()
            except (RedisError, OSError) as exc:
                logger.warning("live broker: pub/sub failed (%s); retry in %.1fs", exc, delay)
            except Exception:
                # A bug must not silently end live delivery for the whole process.
                logger.exception("live broker: reader crashed; retry in %.1fs", delay)
            finally:
                self._listening = False
                await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX)

    async def _on_subscribed(self) -> None:
        if not self._subscribed.is_set():
            self._listening = True
            self._subscribed.set()
            return
        logger.warning("live broker: pub/sub reconnected; resetting live subscriptions")
        epoch = await self._load_epoch()
        if self._missed:  # unless the history is gone anyway (a new epoch already)
            epoch = await self._new_epoch() if epoch == self.epoch else epoch
            self._missed = False
        self._observe_epoch(epoch)
        self._listening = True
        self._fanout.reset_all()

    def _dispatch(self, data: str) -> None:
        try:
            payload: Any = json.loads(data)
            event = Event.from_dict(payload)
        except ValueError:
            logger.warning("live broker: dropped malformed message %.200r", data)
            return
        epoch = payload.get("epoch")
        if isinstance(epoch, str):
            self._observe_epoch(epoch)
        self._fanout.deliver(event)
