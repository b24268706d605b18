"""The live layer across real server processes: two uvicorn servers (A and B) on one
PostgreSQL database and one private Redis, driven over HTTP like browsers would.

Always PostgreSQL + Redis: a throwaway database `fbmp_<id>` and a private `redis-server`
(so it can be restarted under the servers), with their own REDIS_NAMESPACE. Under
FB_TEST_DB=sqlite every test here FAILS (never skips) and says how to run them.

Every persistent message of the site home's stream is the whole activity list (newest
first), so a message is named by its newest note; ids are `1.<epoch>.<ms>-<n>` cursors.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis.asyncio as aioredis

from tests import servers
from tests.conftest import ENGINE, PG_ADMIN_DSN, fail_instead
from tests.servers import (
    RedisServer,
    Server,
    SSEMessage,
    SSEReader,
    post_form,
    scratch_database,
    server_env,
    signed_in_client,
)

pytestmark = pytest.mark.multiprocess

NEEDS_POSTGRES = (
    "tests/test_live_multiprocess.py runs real servers on PostgreSQL + Redis: run it under "
    "FB_TEST_DB=postgres (`make test-postgres`; `make test` runs it in the postgres pass)."
)
SITE = "/s/nairobi"
RUN = uuid.uuid4().hex[:8]
NAMESPACE = f"fbmp-{RUN}"
ACTIVITY = 'hx-target="#activity"'
PRESENCE = 'hx-target="#presence"'

ALICE, BOB = "Alice Wanjiru", "Bob Wilson"


# --- what a page and its stream say ---------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """What the site home embeds for its live layer."""

    stream_path: str  # /s/nairobi/live?cursor=…&conn=…
    cursor: str
    beat_path: str


async def load_page(client: httpx.AsyncClient, server: Server) -> Page:
    response = await client.get(f"{server.url}{SITE}/")
    assert response.status_code == 200, f"GET {SITE}/ on {server.name}: {response.status_code}"
    connect = re.search(r'hx-sse:connect="([^"]+)"', response.text)
    cursor = re.search(r'id="live-cursor" hidden data-cursor="([^"]*)"', response.text)
    beat = re.search(r'data-beat-url="([^"]+)"', response.text)
    assert connect and cursor and beat, "the site home lost its live wiring"
    page = Page(html.unescape(connect[1]), html.unescape(cursor[1]), html.unescape(beat[1]))
    assert f"cursor={page.cursor}&" in page.stream_path
    return page


def newest_note(data: str) -> str | None:
    """The newest activity line of a message (the list is newest first)."""
    found = re.search(r'class="activity__what">wrote: “([^”]*)”', data)
    return found[1] if found else None


def notes_of(data: str) -> list[str]:
    return re.findall(r'class="activity__what">wrote: “([^”]*)”', data)


def newest_notes(messages: list[SSEMessage]) -> list[str | None]:
    return [newest_note(m.data) for m in messages if m.id is not None]


def epoch_of(event_id: str) -> str:
    version, epoch, _ = event_id.split(".", 2)
    assert version == "1", event_id
    return epoch


def position(event_id: str) -> tuple[int, int]:
    """A single-topic cursor's stream position, comparable."""
    ms, _, n = event_id.split(".", 2)[2].partition("-")
    return (int(ms), int(n or 0))


def strictly_increasing(ids: list[str]) -> bool:
    keys = [position(i) for i in ids]
    return all(a < b for a, b in itertools.pairwise(keys))


def at_least(count: int):
    """Predicate: `count` persistent messages (events or resyncs) have arrived."""
    return lambda messages: len([m for m in messages if m.id is not None]) >= count


def presence_names(data: str) -> set[str] | None:
    """Who a #presence update lists (None if the message is not one)."""
    if PRESENCE not in data:
        return None
    found = re.search(r"Viewing now: ([^<]*)</span>", data)
    return {n.strip() for n in found[1].split(",")} if found else set()


def note_text(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:6]}"


async def post_note(client: httpx.AsyncClient, server: Server, text: str) -> None:
    response = await post_form(client, f"{server.url}{SITE}/notes", {"note": text})
    assert response.status_code == 303, f"note via {server.name}: {response.status_code}"


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    async with scratch_database(PG_ADMIN_DSN, f"fbmp_{RUN}") as url:
        yield url


@pytest.fixture(scope="module")
def env(database_url: str, redis_server: RedisServer) -> dict[str, str]:
    return server_env(database_url, redis_server.url, NAMESPACE)


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    """A started, ready server; stopped at the end, its log deleted unless something failed."""
    server.start().wait_ready()
    try:
        yield server
    except BaseException:
        server.stop()
        print(f"{server.name} log kept: {server.log_path}")
        raise
    server.cleanup()


@pytest.fixture(scope="module")
def server_a(env: dict[str, str]) -> Iterator[Server]:
    # First alone: it migrates and loads the demo data; B then finds them in place.
    with running(Server(env, name="A")) as server:
        yield server


@pytest.fixture(scope="module")
def server_b(env: dict[str, str], server_a: Server) -> Iterator[Server]:
    with running(Server(env, name="B")) as server:
        yield server


@pytest.fixture(scope="module")
async def users(server_a: Server) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """alice, bob and charlie signed in (cookies hold for every server: same host)."""
    clients = {
        name: await signed_in_client(server_a.url, name) for name in ("alice", "bob", "charlie")
    }
    yield clients
    for client in clients.values():
        await client.aclose()


class Tabs(servers.Tabs):
    async def open(
        self,
        client: httpx.AsyncClient,
        server: Server,
        path: str | None = None,
        *,
        last_event_id: str | None = None,
        name: str = "",
    ) -> SSEReader:
        """A viewer: by default the site home's own stream URL (its page cursor, its conn)."""
        if path is None:
            path = (await load_page(client, server)).stream_path
        name = name or f"viewer on {server.name}"
        return await self.open_path(client, server, path, last_event_id=last_event_id, name=name)


@pytest.fixture
async def tabs() -> AsyncIterator[Tabs]:
    opened = Tabs()
    yield opened
    await opened.close_all()


async def quiet(reader: SSEReader, seconds: float = 0.5) -> None:
    """Give the stream time to show anything it should not send."""
    await asyncio.sleep(seconds)


# --- delivery across processes ------------------------------------------------------------


async def test_viewer_on_a_receives_an_event_published_through_b(
    server_a: Server, server_b: Server, users, tabs: Tabs
):
    viewer = await tabs.open(users["alice"], server_a)
    note = note_text("cross")
    await post_note(users["bob"], server_b, note)
    message = await viewer.wait_for(
        lambda ms: next((m for m in ms if m.id and note in m.data), None), timeout=5
    )
    assert newest_note(message.data) == note
    assert newest_notes(viewer.messages) == [note]
    assert epoch_of(message.id) == epoch_of(viewer.url.split("cursor=")[1].split("&")[0])


async def test_reconnect_with_last_event_id_replays_exactly_what_was_missed(
    server_a: Server, server_b: Server, users, tabs: Tabs
):
    alice, bob = users["alice"], users["bob"]
    first = await tabs.open(alice, server_a)
    page_path = first.url.removeprefix(server_a.url)
    seen = note_text("seen")
    await post_note(bob, server_b, seen)
    await first.wait_for(at_least(1))
    last_id = first.last_event_id
    await first.close()

    missed = [note_text(f"missed{i}") for i in range(3)]
    for note, via in zip(missed, (server_a, server_b, server_a), strict=True):
        await post_note(bob, via, note)

    # Back on the other server, with the page's (older) cursor still in the URL: the
    # Last-Event-ID header wins, so `seen` must not come again.
    again = await tabs.open(alice, server_b, page_path, last_event_id=last_id)
    await again.wait_for(at_least(3))
    await quiet(again)
    assert newest_notes(again.messages) == missed, again.describe()
    assert strictly_increasing([last_id, *again.ids])

    live = note_text("live")
    await post_note(alice, server_a, live)
    await again.wait_for(at_least(4))
    assert newest_notes(again.messages) == [*missed, live]
    assert strictly_increasing([last_id, *again.ids])


@pytest.mark.parametrize(
    "bad_id",
    ["1.deadbeef.1-0", "1.{epoch}.1-0", "%%%", "9" * 600],
    ids=["unknown-epoch", "unknown-position", "garbage", "600-chars"],
)
async def test_an_untrustworthy_id_gets_a_resync_first(
    server_a: Server, server_b: Server, users, tabs: Tabs, bad_id: str
):
    alice = users["alice"]
    page = await load_page(alice, server_b)
    bad_id = bad_id.format(epoch=epoch_of(page.cursor))
    viewer = await tabs.open(alice, server_b, f"{SITE}/live", last_event_id=bad_id)
    first = await viewer.wait_for(lambda ms: ms[0] if ms else None, timeout=5)
    assert ACTIVITY in first.data and first.id is not None, viewer.describe()
    assert first.id == page.cursor  # a fresh cursor: nothing was published meanwhile
    assert viewer.retry is not None

    # It goes on live from there.
    note = note_text("after-resync")
    await post_note(alice, server_a, note)
    await viewer.wait_for(at_least(2))
    assert newest_notes(viewer.messages)[1:] == [note]


async def test_an_id_older_than_the_kept_history_gets_a_resync(
    server_a: Server, server_b: Server, redis_server: RedisServer, users, tabs: Tabs
):
    """History is trimmed by length (10,000) or age (15 min); rather than publish that much,
    the test trims the topic's Redis stream itself, which is what trimming leaves behind."""
    alice = users["alice"]
    viewer = await tabs.open(alice, server_a)
    old = note_text("old")
    await post_note(alice, server_a, old)
    await viewer.wait_for(at_least(1))
    old_id = viewer.last_event_id
    await viewer.close()
    newer = [note_text("newer1"), note_text("newer2")]
    for note in newer:
        await post_note(alice, server_b, note)

    client = aioredis.from_url(redis_server.url, decode_responses=True)
    try:
        trimmed = 0
        async for key in client.scan_iter(match=f"{NAMESPACE}:hist:*"):
            (last,) = await client.xrevrange(key, count=1)
            if newer[-1] in last[1]["html"]:
                await client.xtrim(key, maxlen=1, approximate=False)
                trimmed += 1
        assert trimmed == 1, "the site topic's history stream was not found"
    finally:
        await client.aclose()

    again = await tabs.open(alice, server_b, f"{SITE}/live", last_event_id=old_id)
    first = await again.wait_for(lambda ms: ms[0] if ms else None, timeout=5)
    assert ACTIVITY in first.data and first.id is not None
    assert first.id == (await load_page(alice, server_a)).cursor
    await quiet(again)
    assert newest_notes(again.messages) == [newer[-1]]  # one resync, no partial replay


async def test_events_between_page_render_and_stream_open_are_delivered(
    server_a: Server, server_b: Server, users, tabs: Tabs
):
    charlie = users["charlie"]
    page = await load_page(charlie, server_a)
    notes = [note_text("early1"), note_text("early2")]
    await post_note(users["alice"], server_b, notes[0])
    await post_note(users["bob"], server_a, notes[1])
    viewer = await tabs.open(charlie, server_b, page.stream_path)
    await viewer.wait_for(at_least(2))
    await quiet(viewer)
    assert newest_notes(viewer.messages) == notes, viewer.describe()  # no resync
    assert epoch_of(viewer.ids[0]) == epoch_of(page.cursor)
    assert strictly_increasing(viewer.ids)


async def test_twenty_concurrent_writers_one_order_for_every_viewer(
    server_a: Server, server_b: Server, users, tabs: Tabs
):
    viewers = [
        await tabs.open(users["alice"], server_a, name="alice on A"),
        await tabs.open(users["bob"], server_a, name="bob on A"),
        await tabs.open(users["charlie"], server_b, name="charlie on B"),
    ]
    writers = [users[name] for name in ("alice", "bob", "charlie")]
    notes = [note_text(f"w{i:02d}") for i in range(20)]
    await asyncio.gather(
        *(
            post_note(writers[i % 3], (server_a, server_b)[i % 2], note)
            for i, note in enumerate(notes)
        )
    )
    for viewer in viewers:
        await viewer.wait_for(at_least(20), timeout=10)
    await quiet(viewers[-1])

    orders = [viewer.ids for viewer in viewers]
    assert len(orders[0]) == 20, viewers[0].describe()
    assert orders[1] == orders[0] and orders[2] == orders[0]
    assert strictly_increasing(orders[0])
    assert len({epoch_of(i) for i in orders[0]}) == 1
    # What the database says: the latest 20 lines are exactly these notes.
    page = await users["alice"].get(f"{server_b.url}{SITE}/")
    assert sorted(notes_of(page.text)) == sorted(notes)

    # What each viewer's screen shows: every note. Each event carries its own new line
    # (upserted into the list by id), so every screen ends with all twenty, once each.
    for viewer in viewers:
        shown = [note for m in viewer.persistent for note in notes_of(m.data)]
        assert sorted(shown) == sorted(notes), viewer.name


async def test_presence_across_processes(server_a: Server, server_b: Server, users, tabs: Tabs):
    alice, bob = users["alice"], users["bob"]
    # Viewers of earlier tests are gone once their grace period is over.
    for _ in range(50):
        if "Viewing now" not in (await alice.get(f"{server_a.url}{SITE}/")).text:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("earlier viewers are still listed as present")

    page_a, page_b = await load_page(alice, server_a), await load_page(bob, server_b)
    alice_view = await tabs.open(alice, server_a, page_a.stream_path, name="alice on A")
    bob_view = await tabs.open(bob, server_b, page_b.stream_path, name="bob on B")
    beats = await asyncio.gather(
        post_form(alice, server_a.url + page_a.beat_path, {}),
        post_form(bob, server_b.url + page_b.beat_path, {}),
    )
    assert [r.status_code for r in beats] == [204, 204]

    def lists(names: set[str]):
        return lambda ms: any(presence_names(m.data) == names for m in ms if m.id is None)

    both = {ALICE, BOB}
    await asyncio.gather(
        alice_view.wait_for(lists(both), timeout=2), bob_view.wait_for(lists(both), timeout=2)
    )

    seen = len(alice_view.messages)
    left_at = time.monotonic()
    await bob_view.close()

    def bob_left(ms: list[SSEMessage]) -> bool:
        later = ms[seen:]
        return any(presence_names(m.data) == {ALICE} for m in later) and any(
            re.search(r'toast--leave" data-user="bob">Bob Wilson left<', m.data) for m in later
        )

    await alice_view.wait_for(bob_left, timeout=3)
    assert time.monotonic() - left_at < 3
    assert all(m.id is None for m in alice_view.messages if PRESENCE in m.data)


# --- Redis restart, several workers, shutdown ------------------------------------------------


async def wait_health(server: Server, status: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=3.0) as client:
        while True:
            try:
                got = (await client.get(server.url + "/healthz")).status_code
            except httpx.HTTPError as exc:
                got = repr(exc)
            if got == status:
                return
            assert time.monotonic() < deadline, f"/healthz on {server.name}: {got}, not {status}"
            await asyncio.sleep(0.1)


async def test_redis_restart_under_connected_viewers(
    server_a: Server, server_b: Server, redis_server: RedisServer, users, tabs: Tabs
):
    alice, bob = users["alice"], users["bob"]
    on_a = await tabs.open(alice, server_a, name="alice on A")
    on_b = await tabs.open(bob, server_b, name="bob on B")
    before = note_text("before-restart")
    await post_note(alice, server_a, before)
    for viewer in (on_a, on_b):
        await viewer.wait_for(at_least(1))
    old_epoch = epoch_of(on_a.last_event_id)

    await asyncio.to_thread(redis_server.stop)
    await asyncio.gather(wait_health(server_a, 503), wait_health(server_b, 503))
    await asyncio.to_thread(redis_server.start)  # same port, every key lost
    await asyncio.gather(wait_health(server_a, 200), wait_health(server_b, 200))

    # Their streams end (the broker may have missed messages); the browsers reconnect
    # with the last id they saw, which belongs to the lost history: a resync.
    await asyncio.gather(on_a.wait_ended(timeout=15), on_b.wait_ended(timeout=15))
    again = [
        await tabs.open(
            alice, server_a, on_a.url.removeprefix(server_a.url), last_event_id=on_a.last_event_id
        ),
        await tabs.open(
            bob, server_b, on_b.url.removeprefix(server_b.url), last_event_id=on_b.last_event_id
        ),
    ]
    resyncs = [await v.wait_for(lambda ms: ms[0] if ms else None, timeout=5) for v in again]
    for resync in resyncs:
        assert ACTIVITY in resync.data and resync.id is not None
        assert epoch_of(resync.id) != old_epoch
        assert newest_note(resync.data) == before

    after = note_text("after-restart")
    await post_note(bob, server_b, after)
    for viewer in again:
        await viewer.wait_for(at_least(2), timeout=5)
        assert newest_notes(viewer.messages) == [before, after], viewer.describe()
        assert epoch_of(viewer.ids[1]) == epoch_of(viewer.ids[0])


async def test_two_workers_on_one_port_deliver_every_event_to_every_viewer(
    env: dict[str, str], server_a: Server, users, tabs: Tabs
):
    with running(Server(env, name="W", args=["--workers", "2"])) as server:
        deadline = time.monotonic() + 30
        while len(server.worker_pids()) < 2:
            assert time.monotonic() < deadline, "uvicorn did not start 2 workers"
            await asyncio.sleep(0.1)
        cookies = users["alice"].cookies
        clients: list[httpx.AsyncClient] = []
        try:
            viewers: list[SSEReader] = []
            workers: set[int | None] = set()
            # Separate clients, so separate connections; more than 4 only if the kernel
            # put the first ones all on the same worker.
            while len(viewers) < 4 or (len(workers) < 2 and len(viewers) < 16):
                client = httpx.AsyncClient(base_url=server.url, cookies=cookies, timeout=15)
                clients.append(client)
                viewer = await tabs.open(client, server, name=f"viewer {len(viewers)}")
                viewers.append(viewer)
                assert viewer.client_port is not None
                workers.add(server.pid_serving(viewer.client_port))
            assert len(workers - {None}) == 2, f"connections not spread over workers: {workers}"

            notes = [note_text(f"workers{i}") for i in range(5)]
            for note in notes:  # each on a fresh connection, so on either worker
                response = await post_form(
                    users["alice"],
                    f"{server.url}{SITE}/notes",
                    {"note": note},
                    headers={"Connection": "close"},
                )
                assert response.status_code == 303
            for viewer in viewers:
                await viewer.wait_for(at_least(5), timeout=5)
            await quiet(viewers[-1])
            for viewer in viewers:
                assert newest_notes(viewer.messages) == notes, viewer.describe()
                assert viewer.ids == viewers[0].ids
        finally:
            await tabs.close_all()
            for client in clients:
                await client.aclose()


async def test_stream_responses_do_not_share_set_cookie_headers(server_b: Server, users):
    """A stream opened without a CSRF cookie gets one fresh token; nobody else gets it."""
    session = {"id": users["bob"].cookies["id"]}
    browser = {**session, "csrftoken": users["bob"].cookies["csrftoken"]}
    tokens: list[list[str]] = []
    for cookies in (session, session, browser):
        async with (
            httpx.AsyncClient(base_url=server_b.url, cookies=cookies, timeout=10) as client,
            client.stream("GET", f"{SITE}/live") as response,
        ):
            assert response.status_code == 200
            tokens.append(
                [c for c in response.headers.get_list("set-cookie") if c.startswith("csrftoken=")]
            )
    assert [len(t) for t in tokens] == [1, 1, 0], tokens
    assert tokens[0] != tokens[1]


async def test_a_stream_goes_in_through_the_one_stack_every_request_does(server_b: Server, users):
    """Served outside the middleware once open (live.stream.StreamsOutside), a stream is
    still let in and answered as any request: the security headers on a member's stream,
    401 without a session, the same 404 for another site's stream as for an unknown one."""
    bob = {"id": users["bob"].cookies["id"], "csrftoken": users["bob"].cookies["csrftoken"]}
    sse = {"Accept": "text/event-stream"}
    async with (
        httpx.AsyncClient(base_url=server_b.url, cookies=bob, headers=sse, timeout=10) as client,
        httpx.AsyncClient(base_url=server_b.url, headers=sse, timeout=10) as nobody,
    ):
        async with client.stream("GET", f"{SITE}/live") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            assert (await anext(response.aiter_lines())).startswith("retry:")
        signed_out = await nobody.get(f"{SITE}/live")
        outsider = await client.get("/s/killarney/live")
        unknown = await client.get("/s/no-such-site/live")
    assert signed_out.status_code == 401
    assert signed_out.headers["x-frame-options"] == "DENY"
    assert (outsider.status_code, outsider.text) == (unknown.status_code, unknown.text)
    assert outsider.status_code == 404


STREAMS = 1000


async def test_shutdown_with_a_thousand_open_streams(
    env: dict[str, str], server_a: Server, users, figures
):
    server = Server(env, name="C")
    with running(server):
        client = await signed_in_client(server.url, "charlie")
        try:
            cursor = (await load_page(client, server)).cursor
            # A browser's cookies: the session and the CSRF token (see the test above).
            cookie = f"id={client.cookies['id']}; csrftoken={client.cookies['csrftoken']}"
        finally:
            await client.aclose()
        path = f"{SITE}/live?cursor={cursor}"  # no conn: no presence, just streams
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nCookie: {cookie}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
        gate = asyncio.Semaphore(100)

        async def open_one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            async with gate:
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(request)
                head = b""
                while b"retry:" not in head:
                    chunk = await asyncio.wait_for(reader.read(65536), 30)
                    assert chunk and len(head) < 65536, head[:300]
                    head += chunk
                assert head.startswith(b"HTTP/1.1 200"), head[:300]
                return reader, writer

        async def until_closed(reader: asyncio.StreamReader) -> None:
            while await reader.read(65536):
                pass

        started = time.monotonic()
        results = await asyncio.gather(
            *(open_one() for _ in range(STREAMS)), return_exceptions=True
        )
        streams = [r for r in results if isinstance(r, tuple)]
        try:
            problems = [r for r in results if not isinstance(r, tuple)]
            assert not problems, f"{len(problems)} streams did not open: {problems[:3]!r}"
            open_took = time.monotonic() - started
            readers = [asyncio.create_task(until_closed(reader)) for reader, _ in streams]

            took = await asyncio.to_thread(server.stop)
            assert took < 10, f"shutdown took {took:.1f} s with {STREAMS} open streams"
            assert server.returncode in (0, -signal.SIGTERM), server.log_tail()
            # Every stream was ended by the server (EOF), none left hanging.
            await asyncio.wait_for(asyncio.gather(*readers), 5)
        finally:
            for _, writer in streams:
                writer.close()
        figures(
            f"{STREAMS} streams opened in {open_took:.1f} s; "
            f"SIGTERM -> exit {server.returncode} in {took:.2f} s"
        )


async def test_shutdown_ends_open_streams_without_waiting_out_the_grace_period(
    env: dict[str, str], server_a: Server, users
):
    server = Server(env, name="D")
    with running(server):
        viewers = [
            await SSEReader(users["alice"], f"{server.url}{SITE}/live").open() for _ in range(5)
        ]
        try:
            took = await asyncio.to_thread(server.stop)
            for viewer in viewers:
                await viewer.wait_ended(timeout=5)
        finally:
            for viewer in viewers:
                await viewer.close()
        log = server.log_tail(100_000)
    assert "timeout graceful shutdown exceeded" not in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert took < 3, f"shutdown with 5 open streams took {took:.1f} s"


# --- a SQLite run fails these tests instead of skipping them ----------------------------------

if ENGINE != "postgres":
    fail_instead(globals(), NEEDS_POSTGRES)
