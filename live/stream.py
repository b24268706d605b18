"""One SSE stream per live page: replay what the viewer missed, then go live (SPEC §4).

The response is a small ASGI app rather than sse-starlette's EventSourceResponse: at 10,000
open streams what matters is the work per viewer, and this keeps it to one coroutine and one
pending `receive()` per stream, no timers. Heartbeats arrive as a "ping" event that the hub
offers to every subscription at once. The wire frames are sse-starlette's
`ServerSentEvent(...).encode()`, run once per event (not per viewer) and shared as bytes.
Once its response has started, a stream is served from outside the middleware stack that
let it in (`StreamsOutside`), and a process holding many streams collects its young
objects less often (`tune_gc`). A stream that is up to date parks its subscription
(`Subscription.park`): the fan-out itself then writes each next event with the server's
`send`, run as far as it goes without waiting — all the way unless the socket's buffer is
full, and the rest is left to the stream's own task — so an event wakes no task per
viewer. (The send is uvicorn's, which needs nothing of the task that runs it.)

Guarantees, in the order the generator meets them:

1. Subscribe first, then read history, so nothing published in between is lost; live events
   the replay already sent are recognised and dropped: by their topic's sequence number
   once one was sent (a topic's seq and position are assigned together, in one step),
   before that by their position.
2. The viewer's cursor (the `Last-Event-ID` header on reconnects, else the page's `cursor`
   query parameter) is resumed topic by topic. If it is missing, malformed, of another epoch,
   or older than the kept history, the viewer gets a *resync*: the page's live regions
   rendered fresh, carrying a fresh cursor as its id.
3. A jump in a topic's sequence on the live path (seq > last + 1) is filled from history, or
   answered with a resync when history cannot fill it.
4. When the subscription ends — cut off for being slow, reset by a broker reconnect, closed
   at shutdown — the response ends; the browser reconnects with `Last-Event-ID` and step 2
   replays or resyncs.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from sse_starlette import ServerSentEvent
from starlette.types import Receive, Scope, Send

from live import metrics
from live.broker import Broker, Subscription
from live.events import Cursor, Event

log = logging.getLogger("floorboard.live")

SEND_TIMEOUT = 10.0  # a write blocked this long means the viewer is not reading: cut it off
RETRY_MS = 1000  # EventSource/htmx reconnect base delay
# sse-starlette ends lines with "\r\n" by default; "\n" keeps the frames as they always were.
SEP = "\n"
RETRY = ServerSentEvent(retry=RETRY_MS, sep=SEP).encode()  # b"retry: 1000\n\n"
PING = ServerSentEvent(comment="ping", sep=SEP).encode()  # b": ping\n\n"
HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
    (b"connection", b"keep-alive"),
)

# Scope key: where a stream leaves itself for `StreamsOutside` to serve once it is open.
OUTSIDE = "floorboard.streams_outside"

PING_KIND = "ping"
ENDED_KIND = "user.ended"  # the viewer's user was signed out everywhere: end the stream

Renderer = Callable[[], Awaitable[str]]


def position_key(position: str) -> tuple[int, int]:
    """Order positions of either broker: Redis stream ids "ms-n", memory "n"; "" first."""
    if not position:
        return (-1, -1)
    major, _, minor = position.partition("-")
    return (int(major), int(minor or 0))


class _DataCache:
    """Encoded bodies (and one-topic frames) of recent events, encoded once however many
    viewers receive them.

    Keyed by object identity; the value keeps the event alive, so an id cannot be reused
    while its entry exists.
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._entries: OrderedDict[int, tuple[Event, bytes]] = OrderedDict()
        self._frames: OrderedDict[tuple[int, str], tuple[Event, bytes]] = OrderedDict()
        self._last: tuple[Event, str, bytes] | None = None  # the event being fanned out

    def frame(self, event: Event, epoch: str) -> bytes:
        """The whole frame of an event on a one-topic page: its id is the same for every
        viewer who has seen everything before it, so it is formatted once."""
        last = self._last
        if last is not None and last[0] is event and last[1] == epoch:
            return last[2]  # the common case: every viewer of the event, one after another
        key = (id(event), epoch)
        entry = self._frames.get(key)
        if entry is not None and entry[0] is event:
            self._last = (event, epoch, entry[1])
            return entry[1]
        event_id = Cursor(epoch, {event.topic: event.position}).encode([event.topic])
        framed = frame(self.body(event), event_id)
        self._frames[key] = (event, framed)
        self._last = (event, epoch, framed)
        if len(self._frames) > self.size:
            self._frames.popitem(last=False)
        return framed

    def body(self, event: Event) -> bytes:
        """The event without an id: a `data:` line per line of its HTML (sse-starlette
        splits on CRLF, CR and LF alike), then the blank line that ends the event."""
        entry = self._entries.get(id(event))
        if entry is not None and entry[0] is event:
            return entry[1]
        body = ServerSentEvent(event.html, sep=SEP).encode()
        self._entries[id(event)] = (event, body)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return body


_cache = _DataCache()


def frame(body: bytes, event_id: str | None = None) -> bytes:
    """An encoded body (`_DataCache.body`) behind its `id:` line: byte for byte what
    `ServerSentEvent(html, id=event_id, sep=SEP).encode()` gives, which writes the id first.

    The id is the one part that can differ per viewer, so it is joined on rather than the
    event encoded again for each. It is always a `Cursor.encode()`, which admits no CR or LF
    (the only thing sse-starlette would scrub from an id).
    """
    if event_id is None:
        return body
    return b"id: " + event_id.encode() + b"\n" + body


def html_frame(html: str, event_id: str | None = None) -> bytes:
    return ServerSentEvent(html, id=event_id, sep=SEP).encode()


@dataclass(eq=False, slots=True)  # identity: streams live in a set; slots: stamped per write
class LiveStream:
    """The ASGI response for one viewer of one live page."""

    broker: Broker
    topics: list[str]
    resume_from: str | None  # Last-Event-ID, else the page's cursor, else None
    render_regions: Renderer  # the page's live regions as <hx-partial>s, for a resync
    on_open: Callable[[Subscription], Awaitable[None]] | None = None
    on_close: Callable[[Subscription], Awaitable[None]] | None = None
    live_only: tuple[str, ...] = ()  # topics of ephemeral events only: not in the cursor
    send_timeout: float = SEND_TIMEOUT
    # Set while a write is under way (loop time); see cut_off_stalled().
    writing_since: float = field(default=0.0, init=False)
    _task: asyncio.Task[Any] | None = field(default=None, init=False)
    _stalled: bool = field(default=False, init=False)
    _sub: Subscription | None = field(default=None, init=False)
    _watcher: asyncio.Future[None] | None = field(default=None, init=False)
    # The live path's state, kept here for `_take_live`, which runs in the fan-out:
    _send: Send | None = field(default=None, init=False)
    _cursor: Cursor = field(default_factory=lambda: Cursor("", {}), init=False)
    _last_seq: dict[str, int] = field(default_factory=dict, init=False)  # topic -> last sent
    _single: bool = field(default=True, init=False)
    _written: int = field(default=0, init=False)  # live deliveries: one in LAG_SAMPLE timed
    _pending: Awaitable[None] | None = field(default=None, init=False)  # a write left waiting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._sub = self.broker.subscribe([*self.topics, *self.live_only])
        self._watcher = asyncio.ensure_future(_close_on_disconnect(receive, self._sub))
        self._task = asyncio.current_task()
        _open.add(self)
        try:
            await self._start(scope, send)
        except BaseException as exc:
            await self.close()
            if self._ends_quietly(exc):
                return
            raise
        outside = scope.get(OUTSIDE)
        if outside is not None:  # StreamsOutside serves the rest once the app has returned
            outside.append(self)
            return
        await self.resume(send)

    async def _start(self, scope: Scope, send: Send) -> None:
        assert self._sub is not None
        if self.on_open is not None:
            await self.on_open(self._sub)
        # A fresh list per response: middleware appends to it (piccolo_api's CSRF adds a
        # Set-Cookie), and a shared one would hand one viewer's token to the next.
        headers = list(HEADERS)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        scope[metrics.STREAM_OPENED] = time.perf_counter()  # its request latency ends here

    async def resume(self, send: Send) -> None:
        """The stream after its response start: every message, then the end of the body.

        The live loop is awaited right here, not through helpers: every delivery resumes
        the stream's coroutine through each frame between the server and `_run`, and at
        thousands of viewers per event each frame more is a measurable share of the CPU.
        """
        assert self._sub is not None
        try:
            await self._run(self._sub, send)
            # The subscription ended (shutdown, overflow, broker reset): finish the body
            # properly, so the browser sees a clean end and reconnects with Last-Event-ID.
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except BaseException as exc:
            if not self._ends_quietly(exc):
                raise
        finally:
            await self.close()

    def _ends_quietly(self, exc: BaseException) -> bool:
        """Whether `exc`, having ended this stream, is an expected end (logged here)
        rather than one to raise: a shutdown's cancellation is raised."""
        if isinstance(exc, asyncio.CancelledError):
            if not self._stalled or self._task is None:
                return False
            self._task.uncancel()  # our own cut-off, not a shutdown: end normally
            log.info("live stream cut off: its socket stopped draining")
        elif isinstance(exc, OSError):
            log.info("live stream cut off: %s", type(exc).__name__)
        elif isinstance(exc, Exception):
            # The broker failed mid-stream (Redis gone, shutdown under way): end this
            # response; the browser reconnects and is replayed or resynced.
            log.warning("live stream ended by a broker error", exc_info=exc)
        else:
            return False
        return True

    async def close(self) -> None:
        """Unsubscribe and forget the stream (once it ended, or was never served)."""
        _open.discard(self)
        if self._watcher is not None:
            self._watcher.cancel()
        if self._sub is not None:
            sub, self._sub = self._sub, None
            sub.close()
            if self.on_close is not None:
                await self.on_close(sub)

    async def _run(self, sub: Subscription, send: Send) -> None:
        loop = asyncio.get_running_loop()

        async def write(chunk: bytes, event: Event | None = None, *, count: bool = True) -> None:
            # No timer per write (thousands of viewers, every event): the write is stamped,
            # and the hub's ticker cuts off streams stuck in one (cut_off_stalled).
            self.writing_since = loop.time()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self.writing_since = 0.0
            if count:  # an event's frame (`event`: on the live path, where lag is measured)
                metrics.delivered(event)

        await write(RETRY, count=False)
        cursor = Cursor.decode(self.resume_from, self.topics)
        backlog = await self._backlog(cursor)
        if backlog is None:
            cursor = await self._resync(write, "resume")
        else:
            for old in backlog:
                cursor = cursor.advanced(old)  # type: ignore[union-attr]
                await write(frame(_cache.body(old), cursor.encode(self.topics)))  # type: ignore[union-attr]
        assert cursor is not None
        # This viewer's own positions, moved on in place on the live path: a new Cursor per
        # viewer and event would be thousands of objects per event that outlive it, and
        # the collector's older generations, swept in full now and then, stall the loop.
        self._cursor = Cursor(cursor.epoch, dict(cursor.positions))
        self._last_seq = {e.topic: e.seq for e in backlog or ()}
        self._single = len(self.topics) == 1
        self._send = send

        # Live. While nothing is queued the subscription is parked: the fan-out itself
        # writes each event that comes in order (`_take_live`), and this loop only wakes
        # for what needs it — the first event on a topic, a gap, a write the socket made
        # wait, the end.
        while True:
            if self._pending is not None:
                pending, self._pending = self._pending, None
                await pending
                self.writing_since = 0.0
            event = sub.take()
            if event is None:
                if sub.ended:
                    break
                await sub.park(self._take_live)
                continue
            if self._take_live(event):
                continue
            if event.ephemeral:  # what _take_live leaves: the user was signed out
                return  # the reconnect meets the signed-out session (401): page reloads
            topic = event.topic
            expected = self._last_seq.get(topic)
            if expected is None:  # nothing sent on this topic yet: compare with the cursor
                if position_key(event.position) > position_key(self._cursor.position(topic)):
                    self._write_in_order(event)
                continue  # else already sent by the replay
            if event.seq <= expected:
                continue  # already sent by the replay
            # A jump in the topic's sequence: fill it from history, or resync.
            missed = await self.broker.since(topic, self._cursor.position(topic))
            if missed is None or self.broker.epoch != self._cursor.epoch:
                cursor = await self._resync(write, "gap")
                self._cursor = Cursor(cursor.epoch, dict(cursor.positions))
                self._last_seq.clear()
                continue
            for gap_event in missed:
                if position_key(gap_event.position) > position_key(event.position):
                    break
                self._cursor = self._cursor.advanced(gap_event)
                self._last_seq[topic] = gap_event.seq
                await write(
                    frame(_cache.body(gap_event), self._cursor.encode(self.topics)), gap_event
                )
        # The subscription ended (slow, reset or shutdown): end the response; the browser
        # reconnects with Last-Event-ID and is replayed or resynced.

    # -- the live path, once per viewer and event: kept to a few lookups and the write --

    def _take_live(self, event: Event) -> bool:
        """Write `event` now if it is the next one in order (or a heartbeat, or an
        ephemeral event); False leaves it to the stream's loop. Runs in the fan-out while
        the stream is parked (`Subscription.park`), so it never awaits or raises."""
        if event.ephemeral:  # heartbeats, presence, "bob is moving #12": no id
            if event.kind == PING_KIND:
                self._send_now(PING, None)
                return True
            if event.kind == ENDED_KIND:
                return False
            self._send_now(frame(_cache.body(event)), event)
            return True
        expected = self._last_seq.get(event.topic)
        if expected is None or event.seq != expected + 1:
            return False  # the first on its topic, a replayed one, or a gap: the loop's
        self._write_in_order(event)
        return True

    def _write_in_order(self, event: Event) -> None:
        cursor = self._cursor
        cursor.positions[event.topic] = event.position  # what cursor.advanced(event) gives
        self._last_seq[event.topic] = event.seq
        if self._single:  # every up-to-date viewer has the same id: the frame is built once
            self._send_now(_cache.frame(event, cursor.epoch), event)
        else:
            self._send_now(frame(_cache.body(event), cursor.encode(self.topics)), event)

    def _send_now(self, chunk: bytes, event: Event | None) -> None:
        """Hand `chunk` to the server's `send` and run it as far as it goes without
        waiting — all the way, unless the socket's buffer is full. What is left then is
        `_pending`, for the stream's own task to await (stamped for cut_off_stalled)
        before it writes anything else; the subscription is woken for it."""
        assert self._send is not None and self._sub is not None
        message = {"type": "http.response.body", "body": chunk, "more_body": True}
        try:
            steps = self._send(message).__await__()
            waiting_on = steps.send(None)
        except StopIteration:  # written
            pass
        except Exception as exc:  # the stream's task raises it, as its own write would
            self._pending = _Raise(exc)
            self._sub.wake()
            return
        else:
            self._pending = _Rest(steps, waiting_on)
            self.writing_since = asyncio.get_running_loop().time()
            self._sub.wake()
        if event is not None:
            metrics.DELIVERY.delivered += 1
            self._written += 1
            if self._written % metrics.LAG_SAMPLE == 1:
                metrics.observe_lag(event)

    async def _backlog(self, cursor: Cursor | None) -> list[Event] | None:
        """What the viewer missed since `cursor`, or None when only a resync will do."""
        if cursor is None or cursor.epoch != self.broker.epoch:
            return None
        missed: list[Event] = []
        for topic in self.topics:
            events = await self.broker.since(topic, cursor.position(topic))
            if events is None:
                return None
            missed.extend(events)
        return missed

    async def _resync(self, write: Callable[[bytes], Awaitable[None]], reason: str) -> Cursor:
        """Send the page's live regions fresh, with a cursor taken before rendering them."""
        metrics.resynced(reason)
        cursor = await self.broker.cursor(self.topics)
        html = await self.render_regions()
        await write(html_frame(html, cursor.encode(self.topics)))
        return cursor


class _Rest:
    """The rest of a `send` that was run until it had to wait (`LiveStream._send_now`):
    awaiting this finishes it, as awaiting the send itself would have — what it waits on
    is passed up to the awaiting task, and what the task sends or throws (a cancellation
    included) is passed down."""

    __slots__ = ("_steps", "_waiting_on")

    def __init__(self, steps: Any, waiting_on: Any) -> None:
        self._steps = steps
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, None]:
        steps, waiting_on = self._steps, self._waiting_on
        while True:
            try:
                sent = yield waiting_on
            except BaseException as exc:  # handed down: the send decides
                try:
                    waiting_on = steps.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waiting_on = steps.send(sent)
                except StopIteration:
                    return


class _Raise:
    """A `send` that failed in `_send_now`: awaiting this raises its error in the stream's
    own task (made only then, so an unawaited one warns about nothing)."""

    __slots__ = ("_exc",)

    def __init__(self, exc: Exception) -> None:
        self._exc = exc

    def __await__(self) -> Generator[Any, Any, None]:
        raise self._exc
        yield  # a generator: nothing runs before it is awaited


_open: set[LiveStream] = set()  # this process's open streams, for cut_off_stalled()
metrics.OPEN_STREAMS.set_function(lambda: len(_open))


def cut_off_stalled(now: float | None = None) -> int:
    """End every stream whose current write has been blocked longer than its send
    timeout (a viewer that stopped reading, or a half-open socket); returns how many.

    The hub's ticker calls this; it replaces a timer around every single write.
    """
    now = asyncio.get_running_loop().time() if now is None else now
    stalled = [
        s
        for s in _open
        if s.writing_since and now - s.writing_since > s.send_timeout and not s._stalled
    ]
    for stream in stalled:
        stream._stalled = True
        if stream._task is not None:
            stream._task.cancel()
    metrics.cut_off("stalled", len(stalled))
    return len(stalled)


async def _close_on_disconnect(receive: Receive, sub: Subscription) -> None:
    """Wait for the client to go away, then end its subscription (and so its stream)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            sub.close()
            return


class StreamsOutside:
    """Serves an open live stream from outside the middleware stack that let it in.

    A mixin for the app's class (main.py: `class Floorboard(StreamsOutside, Starlette)`):
    it gives every GET a place in the scope where a `LiveStream` leaves itself once its
    response has started. Everything that decides whether and how a stream opens has run
    by then, in the one stack every request goes through: the Host check, the session, the
    CSRF token (and its cookie), site membership (401 / 404), the route and the page's own
    404, the security headers on the response start, the request's latency. What is left —
    a message per event for as long as the viewer stays — has nothing for those
    middlewares to do, yet inside them every message would resume the stream's coroutine
    through ~16 frames and pass through 4 send wrappers, and every stream would keep all
    their frames alive (bench/README.md). So the app returns, its middlewares finish, and
    the stream goes on here with the server's `send`, one frame below the server's own:
    a mixin's `__call__` rather than a wrapper around the app, whose `__call__` would be
    one more frame every delivery passes through. One way in, one authorisation path:
    nothing here decides who may see what.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = super().__call__  # type: ignore[misc]  # the ASGI app class mixed with
        if scope["type"] != "http" or scope["method"] != "GET":
            await app(scope, receive, send)
            return
        opened: list[LiveStream] = []
        scope[OUTSIDE] = opened
        try:
            await app(scope, receive, send)
        except BaseException:
            for stream in opened:
                await stream.close()
            raise
        for stream in opened:
            await stream.resume(send)


# The collector's thresholds for a process holding thousands of streams (see tune_gc).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Collect the young generation every 50,000 allocations instead of every 700.

    Every open stream waits for its next event on a fresh future that lives until that
    event: at 10,000 viewers, tens of thousands of objects per event that are alive at
    every young collection, so with the default
    thresholds they are promoted to the oldest generation, die there, and make Python
    sweep the whole heap — every stream's state — every second or two: 0.5 s pauses, a
    fifth of the CPU (bench/README.md). Collected 70 times less often, the young
    generation holds them until they die; cycles are still found, just later.
    """
    gc.set_threshold(*GC_THRESHOLDS)
