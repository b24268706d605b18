"""Cheap SSE viewers for the fan-out bench: one client process holding thousands of streams.

Each viewer is a bare `asyncio.Protocol` (no task, no StreamReader, no httpx): it writes a
hand-made HTTP/1.1 GET with the session cookie, checks the status line, then only reads the
`id:` line of each message: the bench's note markers (`fbm00012`) in an event's activity list
are parsed once per event and client process (see `Viewer._scan`). A post arrives at a viewer
with the first complete message that carries its note; the time is `time.monotonic()` when
the bytes were handed to the protocol (CLOCK_MONOTONIC is system-wide on Linux, so the
parent's POST timestamps compare directly).

Protocol with the parent (a multiprocessing Pipe), all tuples:
  parent -> child: the config dict (first message), then ("stop",)
  child -> parent: ("connected", ok, failed, first_error), ("done", monotonic, cpu_s),
                   ("results", n_viewers, posts, arrivals: bytes of array('d'), stats dict)
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import time
from array import array
from typing import Any

MARKER_DIGITS = 5
_MARKERS = re.compile(rb"fbm(\d{5})")
_ID_LINE = b"\nid: "
_MAX_PENDING = 1 << 20


def marker(k: int) -> str:
    return f"fbm{k:0{MARKER_DIGITS}d}"


class Pool:
    """The viewers of one client process and what they have seen."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.host: str = cfg["host"]
        self.port: int = cfg["port"]
        self.posts: int = cfg["posts"]
        self.n: int = cfg["viewers"]
        # Several pages (--pages): viewer i of this process watches page (first + i) % pages,
        # and expects the posts made on that page only.
        paths: list[str] = cfg.get("paths") or [cfg["path"]]
        self.first: int = cfg.get("first", 0)
        self.requests = [
            (
                f"GET {path} HTTP/1.1\r\n"
                f"Host: {self.host}:{self.port}\r\n"
                f"Cookie: {cfg['cookie']}\r\n"
                "Accept: text/event-stream\r\n"
                "Cache-Control: no-store\r\n"
                "\r\n"
            ).encode()
            for path in paths
        ]
        post_pages: list[int] = cfg.get("post_pages") or [0] * self.posts
        self.page_masks = [0] * len(paths)
        for k, page in enumerate(post_pages):
            self.page_masks[page] |= 1 << k
        self.arrivals = array("d", bytes(8 * self.n * self.posts))  # 0.0 = not (yet) seen
        self.connected = 0
        self.failed = 0
        self.first_error = ""
        self.lost_connections = 0
        self.ended_by_server = 0  # responses that ended (final chunk) with the socket open
        self.complete = 0
        self.bytes_in = 0
        self.messages_in = 0
        self.all_connected = asyncio.Event()
        self.all_done = asyncio.Event()
        self.viewers: list[Viewer] = []
        self.stopping = False
        self.event_bytes: list[int] = []  # the size of each distinct event's frame
        # (page, id line) -> bit mask of the posts the event carries
        self.event_masks: dict[tuple[int, bytes], int] = {}
        # --trace-ids: every id each viewer received, to find viewers that missed an event
        self.trace: list[list[bytes]] | None = (
            [[] for _ in range(self.n)] if cfg.get("trace") else None
        )

    def page_of(self, index: int) -> int:
        return (self.first + index) % len(self.requests)

    def learn_event(self, key: tuple[int, bytes], frame: bytes) -> int:
        self.event_bytes.append(len(key[1]) + len(frame) + 6)  # "id: " ... "\n\n"
        mask = 0
        for digits in _MARKERS.findall(frame):
            k = int(digits)
            if k < self.posts:
                mask |= 1 << k
        self.event_masks[key] = mask
        return mask

    def _settled(self) -> None:
        if self.connected + self.failed >= self.n:
            self.all_connected.set()


class Viewer(asyncio.Protocol):
    __slots__ = (
        "base",
        "buf",
        "index",
        "opened",
        "page",
        "pending",
        "pool",
        "seen",
        "state",
        "transport",
        "want",
    )

    def __init__(self, pool: Pool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.base = index * pool.posts  # this viewer's slice of pool.arrivals
        self.state = 0  # 0 headers, 1 waiting for "retry:", 2 live, 3 failed/closed
        self.buf = b""
        self.pending = b""
        self.seen = 0  # bit k set: post k has arrived
        self.page = pool.page_of(index)
        self.want = pool.page_masks[self.page]  # the posts made on its page
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        request = self.pool.requests[self.pool.page_of(self.index)]
        transport.write(request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        pool = self.pool
        if self.state == 2 and not pool.stopping:
            pool.lost_connections += 1
        elif self.state < 2:
            self._fail(f"connection closed before the stream opened ({exc!r})")
        self.state = 3

    def _fail(self, why: str) -> None:
        if self.state >= 2:
            return
        self.state = 3
        pool = self.pool
        pool.failed += 1
        pool.first_error = pool.first_error or why
        pool._settled()
        if not self.opened.done():
            self.opened.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        pool = self.pool
        pool.bytes_in += len(data)
        state = self.state
        if state < 2:
            buf = self.buf + data
            if state == 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    self.buf = buf
                    return
                status = buf[: buf.find(b"\r\n")]
                if not status.startswith(b"HTTP/1.1 200"):
                    self._fail(status.decode(errors="replace"))
                    return
                buf = buf[end + 4 :]
                self.state = state = 1
            at = buf.find(b"retry:")
            if at < 0:
                self.buf = buf
                return
            self.buf = b""
            self.state = 2
            self.opened.set_result(None)
            pool.connected += 1
            pool._settled()
            if not self.want:  # a page nobody posts on: nothing to wait for
                pool.complete += 1
                if pool.complete == pool.n:
                    pool.all_done.set()
            data = buf[at:]
        elif state == 3:
            return
        buf = self.pending + data if self.pending else data
        self._scan(buf, now)
        if buf.endswith(b"\r\n0\r\n\r\n"):  # the final chunk: the server ended the stream
            pool.ended_by_server += 1
            self.state = 3
            if self.transport is not None:
                self.transport.close()

    def _scan(self, buf: bytes, now: float) -> None:
        """Record the first arrival of every post marker in the complete messages in `buf`.

        Every viewer receives the same bytes for an event (formatted once by the server), so
        the markers an event carries are parsed once per client process, keyed by its `id:`
        line; per viewer and message the work is three `find`s, a dict lookup and a bit mask.
        (Which notes a message carries cannot be told from its first marker alone: the list
        is ordered by row id, and posts sent close together may commit out of order.)
        """
        pool = self.pool
        i = 0
        while True:
            j = buf.find(_ID_LINE, i)
            if j < 0:
                self.pending = buf[max(i, len(buf) - len(_ID_LINE)) :]
                return
            e = buf.find(b"\n", j + 5)
            t = buf.find(b"\n\n", e) if e >= 0 else -1
            if t < 0:  # the message is not complete yet: keep it from its id line on
                pending = buf[j:]
                if len(pending) > _MAX_PENDING:
                    pending = pending[-_MAX_PENDING // 2 :]
                self.pending = pending
                return
            pool.messages_in += 1
            if pool.trace is not None:
                pool.trace[self.index].append(buf[j + 5 : e])
            # By page and id: pages have topics of their own, whose ids can be the same
            # (two Redis streams given an entry in the same millisecond).
            key = (self.page, buf[j + 5 : e])
            mask = pool.event_masks.get(key)
            if mask is None:
                mask = pool.learn_event(key, buf[e:t])
            new = mask & ~self.seen & self.want
            if new:
                self.seen |= new
                arrivals, base = pool.arrivals, self.base
                while new:
                    low = new & -new
                    arrivals[base + low.bit_length() - 1] = now
                    new ^= low
                if self.seen == self.want:
                    pool.complete += 1
                    if pool.complete == pool.n:
                        pool.all_done.set()
            i = t + 2


def _trace_summary(pool: Pool) -> dict[str, Any]:
    """With tracing: how many viewers missed which events of their page (ids in first-seen
    order)."""
    if pool.trace is None:
        return {}
    order: dict[int, list[bytes]] = {}
    for page, eid in pool.event_masks:
        order.setdefault(page, []).append(eid)
    short = []
    missing: dict[str, int] = {}
    for index, ids in enumerate(pool.trace):
        page = pool.page_of(index)
        got = set(ids)
        lacking = [pos for pos, eid in enumerate(order.get(page, [])) if eid not in got]
        if lacking:
            short.append(ids)
        for pos in lacking:
            key = f"page {page} #{pos}"
            missing[key] = missing.get(key, 0) + 1
    dup = sum(1 for ids in pool.trace if len(set(ids)) != len(ids))
    example = [x.decode() for x in short[0]] if short else []
    return {
        "trace_short_viewers": len(short),
        "trace_missing_by_event": missing,
        "trace_viewers_with_duplicates": dup,
        "trace_example": example[:25],
        "trace_order": [x.decode() for x in order.get(0, [])],
    }


async def _open_all(pool: Pool, concurrency: int, deadline_s: float) -> None:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)

    async def open_one(index: int) -> None:
        viewer = Viewer(pool, index)
        pool.viewers.append(viewer)
        async with gate:
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda: viewer, pool.host, pool.port), 30
                )
            except (OSError, TimeoutError) as exc:
                viewer._fail(f"connect: {exc!r}")
                return
            # Hold the gate until the stream is open, so handshakes do not pile up
            # in the server's accept queue (SYN drops would add 1 s retransmits).
            try:
                await asyncio.wait_for(asyncio.shield(viewer.opened), 30)
            except TimeoutError:
                viewer._fail("stream did not open within 30 s")

    async with asyncio.timeout(deadline_s):
        await asyncio.gather(*(open_one(i) for i in range(pool.n)))


async def _run(conn: Any, cfg: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    pool = Pool(cfg)
    inbox: asyncio.Queue[tuple] = asyncio.Queue()

    def readable() -> None:
        try:
            inbox.put_nowait(conn.recv())
        except (EOFError, OSError):  # the parent is gone
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(("stop",))

    loop.add_reader(conn.fileno(), readable)
    try:
        try:
            await _open_all(pool, cfg["concurrency"], cfg["connect_timeout"])
        except TimeoutError:
            pool.first_error = pool.first_error or "connect phase timed out"
        conn.send(("connected", pool.connected, pool.n - pool.connected, pool.first_error))
        cpu0 = _cpu()
        done_sent = False
        while True:
            getter = asyncio.ensure_future(inbox.get())
            waits = {getter}
            if not done_sent:
                waits.add(asyncio.ensure_future(pool.all_done.wait()))
            finished, _ = await asyncio.wait(
                waits, timeout=cfg["lifetime"], return_when=asyncio.FIRST_COMPLETED
            )
            if not finished:  # the parent vanished: end by ourselves
                for w in waits:
                    w.cancel()
                return
            if getter in finished:
                for w in waits:
                    w.cancel()
                message = getter.result()
                if message[0] == "stop":
                    break
                continue
            getter.cancel()
            done_sent = True
            conn.send(("done", time.monotonic(), _cpu() - cpu0))
        stats = {
            "connected": pool.connected,
            "lost_connections": pool.lost_connections,
            "ended_by_server": pool.ended_by_server,
            "complete": pool.complete,
            "bytes_in": pool.bytes_in,
            "messages_in": pool.messages_in,
            "viewers_with_nothing": sum(1 for v in pool.viewers if v.state == 2 and not v.seen),
            "viewers_incomplete": sum(1 for v in pool.viewers if v.seen != v.want),
            "event_bytes_mean": (
                sum(pool.event_bytes) / len(pool.event_bytes) if pool.event_bytes else 0
            ),
            "distinct_events": len(pool.event_masks),
            **_trace_summary(pool),
            "cpu_s_since_connected": _cpu() - cpu0,
        }
        conn.send(("results", pool.n, pool.posts, pool.arrivals.tobytes(), stats))
    finally:
        loop.remove_reader(conn.fileno())
        pool.stopping = True
        for viewer in pool.viewers:
            if viewer.transport is not None:
                viewer.transport.abort()
        await asyncio.sleep(0)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def client_main(conn: Any) -> None:
    """Entry point of a client process: read the config, run, exit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if not conn.poll(60):
        return
    cfg = conn.recv()
    loop_factory = None
    if cfg.get("uvloop"):
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(_run(conn, cfg))
    except Exception as exc:  # tell the parent rather than leave it waiting
        try:
            conn.send(("error", repr(exc)))
        except OSError:
            pass
    finally:
        conn.close()
