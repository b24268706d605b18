"""The SSE stream of a live page, driven as an ASGI app on both brokers.

What a viewer's browser would see: replay after a cursor without gaps or duplicates, a
resync when the cursor cannot be trusted, gaps on the live path filled, slow viewers cut
off, heartbeats, and every stream ending at shutdown.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from unittest.mock import patch

import httpx
import pytest
import uvicorn

from live.broker import Broker, Fanout
from live.events import Cursor
from live.stream import LiveStream, StreamsOutside, cut_off_stalled
from tests.servers import free_port

TOPIC = "site:1"
REGIONS = '<hx-partial hx-target="#activity" hx-swap="outerMorph">fresh</hx-partial>'


async def regions() -> str:
    return REGIONS


@dataclass
class Frame:
    id: str | None
    data: str
    comment: bool = False


@dataclass
class Viewer:
    """One open stream: the frames it received, and a switch to hang up."""

    task: asyncio.Task[None]
    chunks: list[bytes] = field(default_factory=list)
    hang_up: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def frames(self) -> list[Frame]:
        text = b"".join(self.chunks).decode()
        frames = []
        for block in text.split("\n\n"):
            if not block or block.startswith("retry:"):
                continue
            if block.startswith(":"):
                frames.append(Frame(None, "", comment=True))
                continue
            ids = re.findall(r"^id: (.*)$", block, re.M)
            data = "\n".join(re.findall(r"^data: (.*)$", block, re.M))
            frames.append(Frame(ids[0] if ids else None, data))
        return frames

    @property
    def datas(self) -> list[str]:
        return [f.data for f in self.frames if not f.comment]

    async def wait_for(self, count: int, within: float = 5.0) -> list[Frame]:
        async with asyncio.timeout(within):
            while len([f for f in self.frames if not f.comment]) < count:  # noqa: ASYNC110 - polls what arrived
                await asyncio.sleep(0.01)
        return self.frames

    async def close(self) -> None:
        self.hang_up.set()
        async with asyncio.timeout(5):
            await self.task


def open_stream(
    stream: LiveStream,
    *,
    blocked: asyncio.Event | None = None,
    before_write: Callable[[int], Awaitable[None]] | None = None,
) -> Viewer:
    """Run the stream's ASGI app; `blocked` makes every write hang (a viewer that stopped
    reading, or a half-open socket); `before_write(n)` is awaited before the n-th body write, as
    a server's send waits for a full socket buffer to drain (or fails)."""
    viewer: Viewer
    writes = 0

    async def receive() -> dict:
        await viewer.hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal writes
        if message["type"] == "http.response.body":
            if blocked is not None:
                await blocked.wait()
            writes += 1
            if before_write is not None:
                await before_write(writes)
            viewer.chunks.append(message["body"])

    scope = {"type": "http", "method": "GET", "path": "/s/x/live", "headers": []}
    task = asyncio.ensure_future(stream(scope, receive, send))
    viewer = Viewer(task)
    return viewer


def make_stream(broker: Broker, resume_from: str | None, **options) -> LiveStream:
    return LiveStream(broker, [TOPIC], resume_from, regions, **options)


async def publish_notes(broker: Broker, *notes: str) -> None:
    for note in notes:
        await broker.publish(TOPIC, "note", "alice", f"<p>{note}</p>")


async def page_cursor(broker: Broker) -> str:
    return (await broker.cursor([TOPIC])).encode([TOPIC])


async def test_events_published_after_render_arrive_with_the_page_cursor(make) -> None:
    broker = await make()
    await publish_notes(broker, "before")
    cursor = await page_cursor(broker)
    await publish_notes(broker, "one", "two")  # between render and connect
    viewer = open_stream(make_stream(broker, cursor))
    await viewer.wait_for(2)
    await publish_notes(broker, "three")  # and then live
    frames = await viewer.wait_for(3)
    assert [f.data for f in frames] == ["<p>one</p>", "<p>two</p>", "<p>three</p>"]
    await viewer.close()


async def test_reconnect_with_last_event_id_replays_exactly_what_was_missed(make) -> None:
    broker = await make()
    first = open_stream(make_stream(broker, await page_cursor(broker)))
    await publish_notes(broker, "seen")
    seen = await first.wait_for(1)
    await first.close()
    await publish_notes(broker, "a", "b", "c")  # while the tablet was away
    again = open_stream(make_stream(broker, seen[-1].id))
    await again.wait_for(3)
    await publish_notes(broker, "d")
    frames = await again.wait_for(4)
    assert [f.data for f in frames] == ["<p>a</p>", "<p>b</p>", "<p>c</p>", "<p>d</p>"]
    ids = [f.id for f in frames]
    assert len(set(ids)) == 4 and all(ids)
    await again.close()


async def test_ids_decode_to_cursors_that_only_move_forward(make) -> None:
    broker = await make()
    viewer = open_stream(make_stream(broker, await page_cursor(broker)))
    await publish_notes(broker, "1", "2", "3")
    frames = await viewer.wait_for(3)
    cursors = [Cursor.decode(f.id, [TOPIC]) for f in frames]
    assert all(c is not None and c.epoch == broker.epoch for c in cursors)
    positions = [c.position(TOPIC) for c in cursors if c]
    assert positions == sorted(positions, key=lambda p: tuple(map(int, p.split("-"))))
    await viewer.close()


@pytest.mark.parametrize(
    "resume_from",
    [None, "", "%%%", "1.deadbeef.1-0", "x" * 600, "1.e.1.2.3", "2.abc."],
)
async def test_an_untrustworthy_cursor_gets_a_resync_first(make, resume_from) -> None:
    broker = await make()
    await publish_notes(broker, "old")
    viewer = open_stream(make_stream(broker, resume_from))
    frames = await viewer.wait_for(1)
    assert frames[0].data == REGIONS
    fresh = Cursor.decode(frames[0].id, [TOPIC])
    assert fresh is not None and fresh.epoch == broker.epoch
    await publish_notes(broker, "new")  # then it is live, without repeating "old"
    frames = await viewer.wait_for(2)
    assert [f.data for f in frames] == [REGIONS, "<p>new</p>"]
    await viewer.close()


async def test_a_cursor_older_than_the_history_gets_a_resync(make) -> None:
    broker = await make(max_len=3)
    cursor = await page_cursor(broker)
    # Redis trims whole stream nodes (~100 entries), so publish enough to drop the first.
    await publish_notes(broker, *[f"n{i}" for i in range(250)])
    viewer = open_stream(make_stream(broker, cursor))
    frames = await viewer.wait_for(1)
    assert frames[0].data == REGIONS
    await viewer.close()


async def test_a_jump_in_the_sequence_is_filled_from_history(make) -> None:
    broker = await make()
    viewer = open_stream(make_stream(broker, await page_cursor(broker)))
    await publish_notes(broker, "a")
    await viewer.wait_for(1)
    # The broker's live delivery loses "b" (as a pub/sub drop would), then delivers "c".
    with patch.object(Fanout, "deliver", lambda self, event: None):
        await publish_notes(broker, "b")
        await asyncio.sleep(0.1)  # the Redis reader has dropped it by now
    await publish_notes(broker, "c")
    frames = await viewer.wait_for(3)
    assert [f.data for f in frames] == ["<p>a</p>", "<p>b</p>", "<p>c</p>"]
    await viewer.close()


async def test_ephemeral_events_carry_no_id_and_are_never_replayed(make) -> None:
    broker = await make()
    viewer = open_stream(make_stream(broker, await page_cursor(broker)))
    await asyncio.sleep(0.05)  # subscribed: ephemeral events reach only current viewers
    await broker.publish_ephemeral(TOPIC, "indicator", "bob", "<p>bob is moving #12</p>")
    await publish_notes(broker, "moved")
    frames = await viewer.wait_for(2)
    assert [(f.id is None, f.data) for f in frames] == [
        (True, "<p>bob is moving #12</p>"),
        (False, "<p>moved</p>"),
    ]
    await viewer.close()
    later = open_stream(make_stream(broker, await page_cursor(broker)))
    await asyncio.sleep(0.2)
    assert later.datas == []  # the indicator is not shown as if current
    await later.close()


async def test_multiline_html_arrives_intact(make) -> None:
    broker = await make()
    viewer = open_stream(make_stream(broker, await page_cursor(broker)))
    await broker.publish(TOPIC, "note", "alice", "<ul>\n<li>a</li>\r\n<li>b</li>\n</ul>")
    frames = await viewer.wait_for(1)
    assert frames[0].data == "<ul>\n<li>a</li>\n<li>b</li>\n</ul>"
    await viewer.close()


async def test_heartbeat_reaches_every_open_stream(make) -> None:
    from live.hub import PING_EVENT

    broker = await make()
    viewers = [open_stream(make_stream(broker, await page_cursor(broker))) for _ in range(3)]
    await asyncio.sleep(0.05)
    broker.tick(PING_EVENT)
    await asyncio.sleep(0.05)
    assert all(any(f.comment for f in v.frames) for v in viewers)
    for v in viewers:
        await v.close()


async def test_a_viewer_that_stops_reading_is_cut_off_and_its_memory_freed(make) -> None:
    broker = await make()
    stuck = asyncio.Event()  # never set: this viewer's socket accepts nothing
    stalled = make_stream(broker, await page_cursor(broker), send_timeout=0.3)
    slow = open_stream(stalled, blocked=stuck)
    fast = open_stream(make_stream(broker, await page_cursor(broker)))
    await asyncio.sleep(0.05)
    await publish_notes(broker, *[f"n{i}" for i in range(300)])
    await fast.wait_for(300, within=10)
    await asyncio.sleep(0.4)
    # What the hub's ticker does every few seconds; a running app's ticker may have just
    # done it for us (the check is process-wide), so the stuck viewer is cut off once.
    assert cut_off_stalled() == 1 or stalled._stalled
    async with asyncio.timeout(5):
        await slow.task  # ended by the cut-off, not by hanging up
    assert broker.subscriptions == 1  # only the fast viewer is still subscribed
    await fast.close()
    assert broker.subscriptions == 0


async def test_a_viewer_whose_socket_makes_writes_wait_gets_every_event_once_in_order(
    make,
) -> None:
    """Live events are written from the fan-out while the stream waits with nothing
    queued; a write the socket makes wait is finished by the stream's own task, and what
    comes meanwhile is queued behind it."""
    broker = await make()

    async def congested(n: int) -> None:
        if n % 3 == 0:  # every third write finds the buffer full, drained a moment later
            await asyncio.sleep(0.002)

    slow = open_stream(make_stream(broker, await page_cursor(broker)), before_write=congested)
    fast = open_stream(make_stream(broker, await page_cursor(broker)))
    await asyncio.sleep(0.05)
    notes = [f"n{i}" for i in range(120)]
    for i in range(0, 120, 10):  # bursts: some arrive while a write is still waiting
        await publish_notes(broker, *notes[i : i + 10])
        await asyncio.sleep(0.005)
    expected = [f"<p>{n}</p>" for n in notes]
    for viewer in (slow, fast):
        frames = await viewer.wait_for(120)
        assert viewer.datas == expected
        ids = [Cursor.decode(f.id, [TOPIC]) for f in frames if not f.comment]
        positions = [c.position(TOPIC) for c in ids if c is not None]
        assert len(positions) == 120 and len(set(positions)) == 120
    await slow.close()
    await fast.close()


async def test_a_viewer_whose_socket_stops_draining_while_live_is_cut_off(make) -> None:
    broker = await make()
    stuck = asyncio.Event()  # never set
    live_writes = 0

    async def stops_after_two(n: int) -> None:
        nonlocal live_writes
        if n > 1:  # the first body write is the retry line
            live_writes += 1
            if live_writes > 2:
                await stuck.wait()

    stalled = make_stream(broker, await page_cursor(broker), send_timeout=0.3)
    slow = open_stream(stalled, before_write=stops_after_two)
    fast = open_stream(make_stream(broker, await page_cursor(broker)))
    await asyncio.sleep(0.05)
    await publish_notes(broker, *[f"n{i}" for i in range(5)])
    await fast.wait_for(5)
    assert slow.datas == ["<p>n0</p>", "<p>n1</p>"]
    await asyncio.sleep(0.4)
    assert cut_off_stalled() == 1 or stalled._stalled
    async with asyncio.timeout(5):
        await slow.task  # ended by the cut-off, not by hanging up
    assert broker.subscriptions == 1
    await publish_notes(broker, "after")
    await fast.wait_for(6)
    await fast.close()


async def test_a_socket_that_fails_mid_stream_ends_that_stream_only(make) -> None:
    broker = await make()
    failing = False

    async def resets(n: int) -> None:
        if failing:
            raise ConnectionResetError("the tablet's Wi-Fi went")

    broken = open_stream(make_stream(broker, await page_cursor(broker)), before_write=resets)
    fine = open_stream(make_stream(broker, await page_cursor(broker)))
    await asyncio.sleep(0.05)
    await publish_notes(broker, "one", "two")
    await broken.wait_for(2)
    failing = True
    await publish_notes(broker, "three", "four")
    async with asyncio.timeout(5):
        await broken.task  # ended quietly (logged), not raised
    assert broken.datas == ["<p>one</p>", "<p>two</p>"]
    assert (await fine.wait_for(4))[-1].data == "<p>four</p>"
    assert broker.subscriptions == 1
    await fine.close()


async def test_hanging_up_ends_the_stream_and_unsubscribes(make) -> None:
    broker = await make()
    viewer = open_stream(make_stream(broker, await page_cursor(broker)))
    await asyncio.sleep(0.05)
    assert broker.subscriptions == 1
    await viewer.close()
    assert viewer.task.done() and broker.subscriptions == 0


async def test_shutdown_ends_a_thousand_open_streams_promptly(make) -> None:
    broker = await make()
    cursor = await page_cursor(broker)
    viewers = [open_stream(make_stream(broker, cursor)) for _ in range(1000)]
    await asyncio.sleep(0.2)
    assert broker.subscriptions == 1000
    started = asyncio.get_running_loop().time()
    await broker.stop()
    async with asyncio.timeout(5):
        await asyncio.gather(*(v.task for v in viewers))
    assert asyncio.get_running_loop().time() - started < 2.0


async def test_callbacks_run_on_open_and_on_close(make) -> None:
    broker = await make()
    calls: list[str] = []

    async def opened(sub) -> None:
        calls.append("open")

    async def closed(sub) -> None:
        calls.append("close")

    viewer = open_stream(make_stream(broker, None, on_open=opened, on_close=closed))
    await viewer.wait_for(1)
    await viewer.close()
    assert calls == ["open", "close"]


async def test_an_open_stream_is_served_outside_the_middleware_that_let_it_in(make) -> None:
    """Mixed with StreamsOutside (as main.py's app is), a stream's response start goes
    out through the app's middleware (its headers added), then the middleware returns and
    every message after that is written by the server's own `send`."""
    broker = await make()
    cursor = await page_cursor(broker)
    through_middleware: list[str] = []
    returned = asyncio.Event()

    async def app_with_middleware(scope, receive, send) -> None:
        async def send_with_header(message: dict) -> None:
            through_middleware.append(message["type"])
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-frame-options", b"DENY")]
            await send(message)

        await make_stream(broker, cursor)(scope, receive, send_with_header)
        returned.set()

    class App:
        async def __call__(self, scope, receive, send) -> None:
            await app_with_middleware(scope, receive, send)

    class Served(StreamsOutside, App):
        pass

    viewer = open_stream(Served())  # type: ignore[arg-type]
    async with asyncio.timeout(5):
        await returned.wait()
    await publish_notes(broker, "one", "two")
    assert [f.data for f in await viewer.wait_for(2)] == ["<p>one</p>", "<p>two</p>"]
    assert through_middleware == ["http.response.start"]
    assert broker.subscriptions == 1
    await viewer.close()
    assert broker.subscriptions == 0


Make = Callable[..., Awaitable[Broker]]


async def test_a_stream_ended_by_the_server_finishes_its_response(make) -> None:
    """A browser must see a clean end of body (then it reconnects), not a torn one."""
    broker = await make()
    bodies: list[dict] = []

    async def receive() -> dict:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        bodies.append(message)

    stream = make_stream(broker, await page_cursor(broker))
    task = asyncio.ensure_future(stream({"type": "http", "headers": []}, receive, send))
    await asyncio.sleep(0.05)
    broker.close_subscriptions()  # what happens at shutdown
    async with asyncio.timeout(5):
        await task
    assert bodies[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


def test_frames_are_sse_starlette_encodings_built_once_per_event() -> None:
    """The shared bytes are exactly what sse-starlette encodes for the event, CR and CRLF
    in the HTML included, and a one-topic frame is built once and then reused."""
    from sse_starlette import ServerSentEvent

    from live.events import Event
    from live.stream import PING, RETRY, _DataCache, frame, html_frame

    html = "<ul>\r\n<li>a</li>\r<li>b</li>\n</ul>"
    event = Event(topic=TOPIC, seq=1, position="7-0", kind="note", actor="a", html=html)
    cache = _DataCache()
    event_id = Cursor("ep", {TOPIC: "7-0"}).encode([TOPIC])
    expected = ServerSentEvent(html, id=event_id, sep="\n").encode()
    data = b"data: <ul>\ndata: <li>a</li>\ndata: <li>b</li>\ndata: </ul>\n"
    assert expected == b"id: " + event_id.encode() + b"\n" + data + b"\n"
    assert frame(cache.body(event), event_id) == expected
    assert html_frame(html, event_id) == expected
    assert frame(cache.body(event)) == ServerSentEvent(html, sep="\n").encode()
    assert cache.frame(event, "ep") == expected
    assert cache.frame(event, "ep") is cache.frame(event, "ep")
    assert cache.body(event) is cache.body(event)
    assert (PING, RETRY) == (b": ping\n\n", b"retry: 1000\n\n")


async def test_on_a_real_socket_a_viewer_that_stops_reading_is_cut_off_and_others_get_all(
    make,
) -> None:
    """Through uvicorn's own `send` (its flow control, a real TCP socket): one viewer's
    tablet stops reading — its socket fills, and the write the fan-out started has to
    wait — while another keeps reading. The reader gets every event once and in order;
    the stuck one is cut off and unsubscribed; the server goes on answering."""
    broker = await make()
    cursor = await page_cursor(broker)
    opened: list[LiveStream] = []

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        stream = make_stream(broker, cursor, send_timeout=0.5)
        opened.append(stream)
        await stream(scope, receive, send)

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", http="httptools", log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    loop = asyncio.get_running_loop()
    stuck = socket.socket()
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
                await asyncio.sleep(0.01)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tablet, not a server
        stuck.setblocking(False)
        await loop.sock_connect(stuck, ("127.0.0.1", port))
        await loop.sock_sendall(stuck, b"GET /live HTTP/1.1\r\nHost: floorboard\r\n\r\n")
        received: list[str] = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async with http.stream("GET", "/live") as reader:
                async with asyncio.timeout(5):
                    while broker.subscriptions < 2:  # noqa: ASYNC110 - both streams open
                        await asyncio.sleep(0.01)
                big = "x" * 50_000
                lines = reader.aiter_lines()
                for i in range(120):  # 6 MB: far more than the stuck socket's buffers hold
                    await publish_notes(broker, f"{i} {big}")
                    while len(received) <= i:
                        line = await anext(lines)
                        if line.startswith("data: "):
                            received.append(line.removeprefix("data: <p>").split(" ", 1)[0])
        assert received == [str(i) for i in range(120)]
        stuck_stream = opened[0]
        assert stuck_stream.writing_since  # its write is waiting for the socket to drain
        await asyncio.sleep(0.6)
        assert cut_off_stalled() == 1 or stuck_stream._stalled  # as the hub's ticker does
        async with asyncio.timeout(5):
            while stuck_stream._sub is not None or broker.subscriptions:  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # the stuck one cut off, the reader hung up
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async with http.stream("GET", "/live") as again:
                assert again.status_code == 200
    finally:
        stuck.close()
        server.should_exit = True
        async with asyncio.timeout(10):
            await serving
