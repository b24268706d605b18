"""floorboard the way an operator runs it: deploy/nginx/floorboard.conf (Debian's nginx) in
front of three app processes on one PostgreSQL database and one Redis, everything reached
through nginx only.

1. Through the proxy: sign-in (the CSRF dance), a foreign Host refused, an action, and its
   event on a viewer's stream well under a second, not held back by the proxy.
2. `kill -9` of one process under 300 viewers while notes are posted at 10/s: every viewer
   reconnects through nginx with its Last-Event-ID and has every event of the topic exactly
   once, in order, byte for byte as the topic's history holds it; presence is right within
   15 s; every note answered 2xx is in the database.

Processes: A starts first and migrates (and loads the demo data), B and C start with
`--no-migrate`, as deploy/README.md says production processes do. Always PostgreSQL + a
private Redis: under FB_TEST_DB=sqlite, or without Debian's nginx, every test here FAILS,
saying why (never skipped: `.ci/run` installs nginx).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.routing import Mount, Route

from demo import NAMES
from tests.conftest import ENGINE, PG_ADMIN_DSN, fail_instead
from tests.servers import (
    NGINX_SITE,
    NginxServer,
    RedisServer,
    Server,
    SSEReader,
    established_to,
    nginx_binary,
    post_form,
    scratch_database,
    server_env,
    signed_in_client,
)

pytestmark = pytest.mark.multiprocess

SITE = "/s/nairobi"
RUN = uuid.uuid4().hex[:8]
NAMESPACE = f"fbdp-{RUN}"
NGINX = nginx_binary()
NEEDS_POSTGRES = (
    "tests/test_deploy_nginx.py runs nginx and real servers on PostgreSQL + Redis: run it "
    "under FB_TEST_DB=postgres (`make test-postgres`; `make test` runs it in the postgres pass)."
)
NEEDS_NGINX = (
    "tests/test_deploy_nginx.py needs Debian's nginx (apt-get install nginx; .ci/run installs "
    "it): not found on PATH nor at /usr/sbin/nginx."
)

VIEWERS = 300
WRITES_PER_SECOND = 10
WRITE_FOR = 12.0  # seconds of writes; the kill comes KILL_AFTER seconds in
KILL_AFTER = 5.0
PRESENCE_WITHIN = 15.0
# An htmx post from the page: answered 200 with the partials (a plain form gets 303).
HTMX = {"HX-Request": "true", "HX-Request-Type": "partial"}


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    async with scratch_database(PG_ADMIN_DSN, f"fbdp_{RUN}") as url:
        yield url


@pytest.fixture(scope="module")
def apps(database_url: str, redis_server: RedisServer) -> Iterator[list[Server]]:
    """Three app processes: A migrates and loads the demo data, then B and C start at once
    with --no-migrate."""
    env = server_env(
        database_url,
        redis_server.url,
        NAMESPACE,
        # As deploy/README.md says: one key everywhere, nginx on the same host.
        SECRET_KEY=f"deploy-test-{RUN}",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        TRUSTED_PROXIES="127.0.0.1",
    )
    first = Server(env, name="A")
    others = [Server(env, name=name, args=["--no-migrate"]) for name in ("B", "C")]
    started: list[Server] = []
    try:
        started.append(first.start())
        first.wait_ready()
        started.extend(server.start() for server in others)
        for server in others:
            server.wait_ready()
        yield started
    except BaseException:
        for server in started:
            server.stop()
            print(f"{server.name} log kept: {server.log_path}")
        raise
    for server in started:
        server.cleanup()


@pytest.fixture(scope="module")
def nginx(apps: list[Server]) -> Iterator[NginxServer]:
    proxy = NginxServer([server.port for server in apps]).start()
    try:
        yield proxy
    except BaseException:
        proxy.stop()
        print(f"nginx files kept: {proxy.prefix}")
        raise
    proxy.cleanup()


# --- through the proxy --------------------------------------------------------------------


def note_text(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:6]}"


async def stream_path(client: httpx.AsyncClient) -> tuple[str, str]:
    """The site home's stream URL (with its cursor and conn) and its beat URL."""
    response = await client.get(f"{SITE}/")
    assert response.status_code == 200, response.status_code
    connect = re.search(r'hx-sse:connect="([^"]+)"', response.text)
    beat = re.search(r'data-beat-url="([^"]+)"', response.text)
    assert connect and beat, "the site home lost its live wiring"
    return html.unescape(connect[1]), html.unescape(beat[1])


def presence_of(page: str) -> set[str]:
    found = re.search(r"Viewing now: ([^<]*)</span>", page)
    return {n.strip() for n in html.unescape(found[1]).split(",")} if found else set()


async def test_sign_in_act_and_receive_through_nginx(
    nginx: NginxServer, apps: list[Server], figures
):
    started = time.monotonic()
    alice = await signed_in_client(nginx.url, "alice")  # GET /login, POST with its CSRF token
    bob = await signed_in_client(nginx.url, "bob")
    signed_in = time.monotonic() - started
    try:
        home = await alice.get(f"{SITE}/")
        assert home.status_code == 200 and NAMES["alice"] in home.text

        # Only the configured names are answered: nginx closes the connection (444).
        with pytest.raises(httpx.RemoteProtocolError):
            await alice.get("/healthz", headers={"Host": "evil.example"})

        path, _ = await stream_path(bob)
        async with SSEReader(bob, nginx.url + path, name="bob via nginx") as viewer:
            # The stream's first frame (retry:) is through the proxy at once, long before
            # the response ends: nginx does not hold the stream back.
            opened = time.monotonic()
            while viewer.retry is None:
                assert time.monotonic() - opened < 1.0, f"no first frame: {viewer.describe()}"
                await asyncio.sleep(0.005)
            first_frame = time.monotonic() - opened
            assert not viewer.ended

            delays = []
            for i in range(5):
                note = note_text(f"nginx{i}")
                sent = time.monotonic()
                answer = await post_form(alice, f"{SITE}/notes", {"note": note})
                assert answer.status_code == 303, answer.status_code
                assert answer.headers["location"].startswith("/"), answer.headers["location"]
                await viewer.wait_for(lambda ms, note=note: any(note in m.data for m in ms), 1.0)
                delays.append(time.monotonic() - sent)
                assert not viewer.ended
            landed = await alice.get(answer.headers["location"])
            assert note in landed.text  # Post/Redirect/Get through the proxy
        assert max(delays) < 1.0, delays
    finally:
        await alice.aclose()
        await bob.aclose()
    log = nginx.errors()
    assert "[error]" not in log and "[crit]" not in log, log
    figures(
        f"nginx + {len(apps)} processes: 2 sign-ins in {signed_in:.2f} s; stream's first "
        f"frame in {first_frame * 1000:.0f} ms; POST -> event on the viewer: "
        f"median {sorted(delays)[2] * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
    )


async def test_a_client_cannot_name_its_own_address_through_nginx(nginx: NginxServer, figures):
    """nginx overwrites X-Forwarded-For and the app believes it from nginx only: failed
    sign-ins each claiming another address are still counted against the real one."""
    username = f"nobody-{RUN}"
    async with httpx.AsyncClient(base_url=nginx.url, timeout=15) as client:
        for attempt in range(1, 11):
            spoofed = {"X-Forwarded-For": f"203.0.113.{attempt}"}
            response = await post_form(
                client, "/login", {"username": username, "password": "wrong"}, headers=spoofed
            )
            assert response.status_code in (401, 422, 429), response.status_code
            if "Too many failed attempts" in response.text:
                break
        else:
            pytest.fail("10 failed sign-ins from ten claimed addresses were never throttled")
    figures(f"sign-in throttled after {attempt - 1} failures, each claiming a new address")


def route_paths(routes, prefix: str = "") -> Iterator[str]:
    """Every route's path in the app, with sample values for its parameters."""
    for route in routes:
        path = re.sub(r"\{[^}]+\}", "x1", prefix + route.path)
        if isinstance(route, Mount):
            yield from route_paths(route.routes, path)
        elif isinstance(route, Route):
            yield path


def test_every_stream_and_only_streams_are_unbuffered(app):
    """The site file's stream location, checked against the route table: a live page added
    later gets its stream unbuffered too, and no ordinary route is treated as a stream."""
    site = NGINX_SITE.read_text()
    found = re.search(r"^ *location ~ (\S+) \{\n(.*?)^ *\}", site, re.MULTILINE | re.DOTALL)
    assert found, "no regex location for the streams"
    pattern, body = re.compile(found[1]), found[2]
    for directive in ("proxy_buffering off;", "proxy_read_timeout 1h;", "gzip off;"):
        assert directive in body, directive
    paths = list(route_paths(app.routes))
    streams = {p for p in paths if pattern.search(p)}
    assert streams == {p for p in paths if p.startswith("/s/") and p.endswith("/live")}
    assert len(streams) >= 10, sorted(streams)


# --- kill -9 under 300 viewers --------------------------------------------------------------


class StreamEnded(Exception):
    """The response ended or the connection broke (a process died behind nginx)."""


@dataclass
class Viewer:
    """A browser's EventSource, reduced: one stream through nginx; when it ends, reconnect
    with the last id received (Last-Event-ID), as often as needed."""

    index: int
    port: int
    path: str
    cookie: str
    events: list[tuple[str, str]] = field(default_factory=list)  # (id, data) in arrival order
    last_id: str | None = None
    live: bool = False  # between the stream's first frame and its end
    reconnects: list[float] = field(default_factory=list)  # seconds from loss to reopened
    failures: list[str] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        lost_at: float | None = None
        while True:
            try:
                await self._once(lost_at)
            except (OSError, StreamEnded, asyncio.IncompleteReadError, ValueError) as exc:
                if not self.live:
                    self.failures.append(repr(exc)[:200])
            if self.live or lost_at is None:
                lost_at = time.monotonic()
            self.live = False
            await asyncio.sleep(random.uniform(0.0, 0.1))  # a browser waits `retry:` ms

    async def _once(self, lost_at: float | None) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            resume = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id else ""
            writer.write(
                f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Cookie: {self.cookie}\r\nAccept: text/event-stream\r\n{resume}\r\n".encode()
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            if not head.startswith(b"HTTP/1.1 200"):
                raise StreamEnded(head.split(b"\r\n", 1)[0].decode(errors="replace"))
            if b"transfer-encoding: chunked" not in head.lower():
                raise StreamEnded(f"not a chunked stream: {head[:300]!r}")
            pending = b""
            while True:
                size_line = await reader.readline()
                if not size_line:
                    raise StreamEnded("connection closed mid-stream")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    raise StreamEnded("the server ended the response")
                pending += (await reader.readexactly(size + 2))[:-2]
                *frames, pending = pending.split(b"\n\n")
                for frame in frames:
                    self._frame(frame, lost_at)
        finally:
            writer.close()

    def _frame(self, frame: bytes, lost_at: float | None) -> None:
        event_id, data = None, []
        for line in frame.decode().split("\n"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "retry" and not self.live:  # the stream is open
                self.live = True
                self.opened.set()
                if lost_at is not None:
                    self.reconnects.append(time.monotonic() - lost_at)
            elif name == "id":
                event_id = value
            elif name == "data":
                data.append(value)
        if event_id is not None:
            self.events.append((event_id, "\n".join(data)))
            self.last_id = event_id
            self.changed.set()


def position_of(event_id: str) -> str:
    """The topic position in a one-topic cursor `1.<epoch>.<position>`."""
    return event_id.split(".", 2)[2]


async def topic_history(redis_url: str, marker: str) -> list[tuple[str, int, str]]:
    """The whole history of the topic whose events carry `marker`: (position, seq, html)."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        found = []
        async for key in client.scan_iter(match=f"{NAMESPACE}:hist:*"):
            entries = await client.xrange(key, "-", "+")
            if any(marker in fields["html"] for _, fields in entries):
                found.append([(pos, int(f["seq"]), f["html"]) for pos, f in entries])
        assert len(found) == 1, f"{len(found)} history streams carry {marker!r}"
        return found[0]
    finally:
        await client.aclose()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


async def test_kill_9_under_300_viewers_through_nginx(
    nginx: NginxServer,
    apps: list[Server],
    redis_server: RedisServer,
    database_url: str,
    figures,
):
    users = {
        name: await signed_in_client(nginx.url, name)
        for name in ("alice", "bob", "charlie", "admin")
    }
    viewers: list[Viewer] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await _kill_9_under_viewers(
            nginx, apps, redis_server, database_url, users, viewers, tasks, figures
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in users.values():
            await client.aclose()


async def _kill_9_under_viewers(
    nginx: NginxServer,
    apps: list[Server],
    redis_server: RedisServer,
    database_url: str,
    users: dict[str, httpx.AsyncClient],
    viewers: list[Viewer],
    tasks: list[asyncio.Task[None]],
    figures,
) -> None:
    def cookie(client: httpx.AsyncClient) -> str:
        return f"id={client.cookies['id']}; csrftoken={client.cookies['csrftoken']}"

    def spawn(coro) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        tasks.append(task)
        return task

    # Three tabs with presence (alice, bob, charlie: their page's conn, heartbeats every 5 s)
    # and 297 plain streams of the same page; admin's tab leaves when the process dies.
    present = ["alice", "bob", "charlie"]
    beats: dict[str, str] = {}
    for name in present:
        path, beats[name] = await stream_path(users[name])
        viewers.append(Viewer(len(viewers), nginx.port, path, cookie(users[name])))
    plain, _ = await stream_path(users["admin"])
    plain = re.sub(r"&conn=[^&]*", "", plain)  # no conn: a stream without presence
    names = list(users)
    while len(viewers) < VIEWERS:
        who = users[names[len(viewers) % len(names)]]
        viewers.append(Viewer(len(viewers), nginx.port, plain, cookie(who)))
    admin_path, admin_beat = await stream_path(users["admin"])
    admin_tab = Viewer(-1, nginx.port, admin_path, cookie(users["admin"]))

    gate = asyncio.Semaphore(50)

    runs: dict[int, asyncio.Task[None]] = {}

    async def open_one(viewer: Viewer) -> None:
        async with gate:
            runs[id(viewer)] = spawn(viewer.run())
            await asyncio.wait_for(viewer.opened.wait(), 30)

    started = time.monotonic()
    await asyncio.gather(*(open_one(v) for v in viewers), open_one(admin_tab))
    opened_in = time.monotonic() - started
    spread = {server.name: established_to(server.port) for server in apps}

    beating = {name: True for name in [*present, "admin"]}

    async def heartbeat(name: str, url: str) -> None:
        while beating[name]:
            with contextlib.suppress(httpx.HTTPError):
                await post_form(users[name], url, {})
            await asyncio.sleep(5.0)

    for name in present:
        spawn(heartbeat(name, beats[name]))
    spawn(heartbeat("admin", admin_beat))

    everyone = {NAMES[n] for n in [*present, "admin"]}
    watcher = users["charlie"]
    deadline = time.monotonic() + 10
    while presence_of((await watcher.get(f"{SITE}/")).text) != everyone:
        assert time.monotonic() < deadline, "presence never listed the four tabs"
        await asyncio.sleep(0.2)

    # Writes at 10/s through nginx, each answer recorded.
    answers: dict[str, int | str] = {}
    writers = [users["alice"], users["bob"]]

    async def write(i: int) -> None:
        note = f"fo{RUN}-{i:04d}"
        try:
            response = await post_form(
                writers[i % 2], f"{SITE}/notes", {"note": note}, headers=HTMX, timeout=15
            )
            answers[note] = response.status_code
        except httpx.HTTPError as exc:
            answers[note] = type(exc).__name__

    async def write_all() -> None:
        posts: list[asyncio.Task[None]] = []
        begin = time.monotonic()
        for i in range(int(WRITE_FOR * WRITES_PER_SECOND)):
            await asyncio.sleep(max(0.0, begin + i / WRITES_PER_SECOND - time.monotonic()))
            posts.append(spawn(write(i)))
        await asyncio.gather(*posts)

    writing = spawn(write_all())
    # Admin's tablet goes quiet (its last heartbeat at least 2 s before the kill), then its
    # tab is gone when the process dies: a clean leave if its stream was on a survivor, the
    # 15 s heartbeat TTL if it was on the killed process (nobody can say it left).
    await asyncio.sleep(KILL_AFTER - 2.0)
    beating["admin"] = False
    await asyncio.sleep(2.0)
    victim = max(apps, key=lambda s: established_to(s.port))
    held = established_to(victim.port)
    killed_at = time.monotonic()
    await asyncio.to_thread(victim.kill)  # SIGKILL: no shutdown, no leave, nothing flushed
    runs[id(admin_tab)].cancel()  # its socket closes: a clean leave, if its process lives

    # Presence: alice, bob and charlie stay listed throughout, admin goes within 15 s.
    expected = {NAMES[n] for n in present}
    samples: list[tuple[float, set[str]]] = []
    while True:
        with contextlib.suppress(httpx.HTTPError):
            page = await watcher.get(f"{SITE}/", timeout=5)
            samples.append((time.monotonic() - killed_at, presence_of(page.text)))
            if samples[-1][1] == expected:
                break
        assert time.monotonic() - killed_at < PRESENCE_WITHIN, f"presence: {samples[-5:]}"
        await asyncio.sleep(0.25)
    presence_right = samples[-1][0]
    flaps = [(t, seen) for t, seen in samples if not expected <= seen]
    assert not flaps, f"a present user vanished after the kill: {flaps}"

    await writing
    # Every viewer gets to the topic's last event (or the deadline says who did not).
    history = await topic_history(redis_server.url, f"fo{RUN}-")
    last = history[-1][0]
    deadline = time.monotonic() + 20
    for viewer in viewers:
        while True:
            viewer.changed.clear()
            if viewer.events and position_of(viewer.events[-1][0]) == last:
                break
            left = deadline - time.monotonic()
            assert left > 0, (
                f"viewer {viewer.index} never got to {last}: {len(viewer.events)} events, "
                f"last {viewer.last_id}, live {viewer.live}, failures {viewer.failures[-3:]}"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(viewer.changed.wait(), left)

    # Each viewer's events against the history: exactly the entries after its page's
    # cursor, once each, in order, with the same bytes.
    seqs = [seq for _, seq, _ in history]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the topic's sequence has a gap"
    lost = duplicates = wrong = delivered = 0
    positions = [pos for pos, _, _ in history]
    for viewer in viewers:
        cursor = re.search(r"cursor=([^&]+)", viewer.path)
        assert cursor
        start = position_of(cursor[1])
        expected_events = [
            (pos, body.replace("\r\n", "\n").replace("\r", "\n"))
            for pos, _, body in history[positions.index(start) + 1 if start in positions else 0 :]
        ]
        got = [(position_of(i), data) for i, data in viewer.events]
        got_positions = [pos for pos, _ in got]
        lost += len({p for p, _ in expected_events} - set(got_positions))
        duplicates += len(got_positions) - len(set(got_positions))
        if got != expected_events:
            wrong += 1
        delivered += len(got)
    events = len(expected_events)  # the page's cursor is the same for every viewer
    reconnected = [v for v in viewers if v.reconnects]
    times = [t for v in viewers for t in v.reconnects]
    failed = sum(len(v.failures) for v in viewers)

    # Every note answered 2xx is in the database.
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT summary FROM activity WHERE verb = 'note' AND summary LIKE $1", f"fo{RUN}-%"
        )
    finally:
        await conn.close()
    stored = {row["summary"] for row in rows}
    ok = {note for note, status in answers.items() if isinstance(status, int) and status < 300}
    missing = ok - stored
    unpublished = {note for note in ok if not any(note in body for _, _, body in history)}
    refused = {note: status for note, status in answers.items() if note not in ok}
    refusals = sorted({str(status) for status in refused.values()})

    figures(
        f"kill -9 under {len(viewers)} viewers through nginx: streams opened in "
        f"{opened_in:.1f} s, spread {spread}; killed {victim.name} holding {held} "
        f"connections; {len(reconnected)} viewers reconnected, reconnect time "
        f"p50 {percentile(times, 50) * 1000:.0f} ms, p99 {percentile(times, 99) * 1000:.0f} ms, "
        f"max {max(times, default=0) * 1000:.0f} ms, failed attempts {failed}; "
        f"events {events} ({delivered} deliveries), "
        f"events lost {lost}, duplicates {duplicates}, viewers out of order/altered {wrong}; "
        f"writes {len(answers)}: {len(ok)} answered 2xx, all in the database "
        f"({len(missing)} missing), {len(refused)} not ({refusals}); "
        f"presence right {presence_right:.1f} s after the kill"
    )
    assert len(reconnected) >= held // 2 > 0, "the killed process held no streams"
    assert lost == 0 and duplicates == 0 and wrong == 0
    assert not missing, f"answered 2xx but not in the database: {sorted(missing)}"
    assert not unpublished, f"answered 2xx but never published: {sorted(unpublished)}"
    assert len(ok) >= len(answers) * 0.8, f"too many writes failed: {refused}"


# --- without PostgreSQL or without nginx, these tests FAIL -------------------------------------

_WHY_NOT = NEEDS_POSTGRES if ENGINE != "postgres" else NEEDS_NGINX if NGINX is None else ""
if _WHY_NOT:
    fail_instead(globals(), _WHY_NOT)
