"""The floor: the least any Python ASGI server can do to fan a message out over SSE here.

    uvicorn bench.floor:app --workers N --loop uvloop --http httptools   (fanout.py --floor)

A bare ASGI app (no Starlette, no middleware, no framework) for the fan-out bench to run
beside the app, with the same client, on the same uvicorn:

* `GET /live?topic=T` answers 200 with the app's stream headers and `retry: 1000`, then
  writes every message published on T's channel to the socket as it comes, unchanged;
* `POST /publish?topic=T&marker=M&bytes=B` publishes one pre-formatted SSE frame of B bytes
  carrying M to T's Redis channel and answers 303, as the app's actions do.

Each worker holds one Redis pub/sub connection (a pattern subscription to the namespace)
and one reader task; a frame is handed to each open stream of its topic through that
stream's queue, and each stream's own coroutine awaits `send` (so a slow socket only holds
up its own stream, as in the app). No cursor, replay, presence, heartbeat, session or
database: whatever the app spends beyond this is the cost of what it does on top.

The collector is tuned as the app tunes it (`live.stream.tune_gc`): the same interpreter
settings, so that the ratio compares the code. `FLOOR_GC=default` leaves Python's defaults.

Environment: FLOOR_REDIS_URL (default redis://127.0.0.1:6379/0), FLOOR_NAMESPACE (channel
prefix; the bench gives each run its own), FLOOR_GC.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections import defaultdict
from itertools import count
from urllib.parse import parse_qs

import redis.asyncio as aioredis

REDIS_URL = os.environ.get("FLOOR_REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("FLOOR_NAMESPACE", "floor") + ":"
HEADERS = [  # the app's (live/stream.py)
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
    (b"connection", b"keep-alive"),
]
RETRY = b"retry: 1000\n\n"

streams: defaultdict[str, set[asyncio.Queue[bytes | None]]] = defaultdict(set)  # topic -> queues
redis: aioredis.Redis | None = None
reader: asyncio.Task[None] | None = None
ids = count()


def frame(marker: str, size: int) -> bytes:
    """An SSE frame of `size` bytes (at least the id and marker) carrying `marker`."""
    head = f"id: f{os.getpid()}.{next(ids)}\ndata: {marker} ".encode()
    return head + b"x" * max(0, size - len(head) - 2) + b"\n\n"


async def read_forever(pubsub: aioredis.client.PubSub) -> None:
    async for message in pubsub.listen():
        if message["type"] == "pmessage":
            data = message["data"]
            for queue in streams.get(message["channel"][len(PREFIX) :].decode(), ()):
                queue.put_nowait(data)


async def live(scope, receive, send, topic: str) -> None:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    streams[topic].add(queue)

    async def until_gone() -> None:  # http.disconnect ends the stream
        while (await receive())["type"] != "http.disconnect":
            pass
        queue.put_nowait(None)

    watcher = asyncio.ensure_future(until_gone())
    try:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": RETRY, "more_body": True})
        while (body := await queue.get()) is not None:
            await send({"type": "http.response.body", "body": body, "more_body": True})
    except OSError:
        return
    finally:
        streams[topic].discard(queue)
        watcher.cancel()


async def publish(scope, receive, send, query: dict[str, str]) -> None:
    while (await receive()).get("more_body"):
        pass
    assert redis is not None
    topic = query.get("topic", "home")
    await redis.publish(PREFIX + topic, frame(query.get("marker", ""), int(query["bytes"])))
    headers = [(b"location", b"/live"), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def lifespan(receive, send) -> None:
    global redis, reader
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if os.environ.get("FLOOR_GC") != "default":
                gc.set_threshold(50_000, 20, 100)  # as the app does (live/stream.py tune_gc)
            redis = aioredis.Redis.from_url(REDIS_URL)
            pubsub = redis.pubsub()
            await pubsub.psubscribe(PREFIX + "*")
            reader = asyncio.create_task(read_forever(pubsub))
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if reader is not None:
                reader.cancel()
            if redis is not None:
                await redis.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if scope["method"] == "GET" and scope["path"] == "/live":
        await live(scope, receive, send, query.get("topic", "home"))
    elif scope["method"] == "POST" and scope["path"] == "/publish":
        await publish(scope, receive, send, query)
    elif scope["path"] == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
