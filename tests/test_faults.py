"""Faults, as the people at the tablets meet them: PostgreSQL or Redis stopped for ~10 s
while alice keeps writing and others watch, and SIGTERM to a process holding thousands of
open streams.

1. PostgreSQL stopped under writes: every action answers a readable 503 (a page for a
   form, a sentence for htmx; never a 500), nothing is half-written, the viewers' streams
   stay open (heartbeats keep coming), and writes succeed again by themselves after.
2. Redis stopped under writes: pages still render, committed actions are answered as done,
   /healthz names the broker; when Redis is back every viewer gets a resync carrying what
   was written meanwhile (never a silent gap), then live delivery again.
3. SIGTERM to one of two processes holding ~5,000 open streams: it exits within uvicorn's
   grace period (`timeout_graceful_shutdown=5` in main.py; the hub ends its streams at
   once), and its viewers reconnect with Last-Event-ID to the other and miss nothing.

Everything here is private: a PostgreSQL cluster of its own (initdb, stopped and deleted
at the end) and a redis-server of its own, so stopping them disturbs nobody. Always
PostgreSQL + Redis: under FB_TEST_DB=sqlite every test here FAILS (never skips).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import random
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from tests.conftest import ENGINE, fail_instead
from tests.servers import (
    PostgresServer,
    RedisServer,
    Server,
    SSEMessage,
    SSEReader,
    post_form,
    server_env,
    signed_in_client,
)

pytestmark = pytest.mark.multiprocess

NEEDS_POSTGRES = (
    "tests/test_faults.py stops PostgreSQL and Redis under real servers: run it under "
    "FB_TEST_DB=postgres (`make test-postgres`; `make test` runs it in the postgres pass)."
)
SITE = "/s/nairobi"
RUN = uuid.uuid4().hex[:8]
NAMESPACE = f"fbft-{RUN}"
HTMX = {"HX-Request": "true", "HX-Request-Type": "partial"}
DOWN_FOR = 10.0  # seconds each service is stopped
WRITE_EVERY = 0.25  # seconds between alice's writes
AGAIN = "try again in a moment"


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def env(postgres: PostgresServer, redis_server: RedisServer) -> dict[str, str]:
    return server_env(postgres.url, redis_server.url, NAMESPACE)


@contextlib.contextmanager
def serving(server: Server) -> Iterator[Server]:
    """A started, ready server; stopped at the end, its log kept if something failed."""
    try:
        yield server.start().wait_ready()
    except BaseException:
        server.stop()
        print(f"{server.name} log kept: {server.log_path}")
        raise
    server.cleanup()


@pytest.fixture(scope="module")
def server_a(env: dict[str, str]) -> Iterator[Server]:
    with serving(Server(env, name="A")) as server:  # migrates and loads the demo data
        yield server


@pytest.fixture(scope="module")
async def users(server_a: Server) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    clients = {
        name: await signed_in_client(server_a.url, name) for name in ("alice", "bob", "charlie")
    }
    yield clients
    for client in clients.values():
        await client.aclose()


@pytest.fixture(scope="module")
async def board(postgres: PostgresServer, server_a: Server) -> int:
    """Nairobi's "Ops tickets" board (from the demo data)."""
    conn = await asyncpg.connect(postgres.url)
    try:
        return await conn.fetchval("SELECT id FROM board WHERE name = 'Ops tickets'")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def dispatch(postgres: PostgresServer, server_a: Server) -> int:
    """One of nairobi's dispatches (demo data): its page reads its details' lock holders."""
    conn = await asyncpg.connect(postgres.url)
    try:
        return await conn.fetchval(
            "SELECT d.id FROM dispatch d JOIN site s ON s.id = d.site "
            "WHERE s.slug = 'nairobi' ORDER BY d.id LIMIT 1"
        )
    finally:
        await conn.close()


# --- alice's writes -----------------------------------------------------------------------


@dataclass
class Answer:
    what: str  # "note" or "ticket"
    text: str  # the note, or the ticket's title
    htmx: bool
    started: float
    status: int | str  # an HTTP status, or the client's error
    body: str = ""
    headers: httpx.Headers = field(default_factory=httpx.Headers)

    @property
    def ok(self) -> bool:
        return isinstance(self.status, int) and 200 <= self.status < 400


@dataclass
class Writer:
    """alice posting notes (plain forms and htmx) and creating tickets on a board, one
    write every WRITE_EVERY seconds, until stopped."""

    client: httpx.AsyncClient
    base: str
    board: int
    tag: str
    answers: list[Answer] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> Writer:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> list[Answer]:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.answers

    async def _run(self) -> None:
        for n in itertools.count(1):
            if n % 3 == 0:
                answer = Answer("ticket", f"{self.tag}-t{n}", False, time.monotonic(), 0)
                url = f"{self.base}{SITE}/boards/{self.board}/tickets"
                data = {"title": answer.text}
            else:
                answer = Answer("note", f"{self.tag}-n{n}", n % 3 == 2, time.monotonic(), 0)
                url, data = f"{self.base}{SITE}/notes", {"note": answer.text}
            try:
                response = await post_form(
                    self.client, url, data, headers=HTMX if answer.htmx else {}
                )
                answer.status, answer.body = response.status_code, response.text
                answer.headers = response.headers
            except httpx.HTTPError as exc:
                answer.status = f"{type(exc).__name__}: {exc}"
            self.answers.append(answer)
            await asyncio.sleep(WRITE_EVERY)

    def ok_since(self, moment: float) -> list[Answer]:
        return [a for a in self.answers if a.started >= moment and a.ok]


async def wait_until(predicate, timeout: float, what: str) -> float:  # noqa: ASYNC109
    """Poll `predicate()` (sync) until true; returns the seconds it took."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def stored(postgres: PostgresServer, tag: str) -> tuple[set[str], set[str], list[str]]:
    """What the database holds of a writer's work: its notes, its tickets, and the
    activity lines of its tickets (by title)."""
    conn = await asyncpg.connect(postgres.url)
    try:
        notes = await conn.fetch(
            "SELECT summary FROM activity WHERE verb = 'note' AND summary LIKE $1", f"{tag}-%"
        )
        tickets = await conn.fetch("SELECT title FROM ticket WHERE title LIKE $1", f"{tag}-%")
        lines = await conn.fetch(
            "SELECT summary FROM activity WHERE verb = 'ticket.create' AND summary LIKE $1",
            f"%{tag}-t%",
        )
    finally:
        await conn.close()
    titles = [re.search(rf"{tag}-t\d+", row["summary"])[0] for row in lines]  # type: ignore[index]
    return {r["summary"] for r in notes}, {r["title"] for r in tickets}, titles


async def site_home_stream(client: httpx.AsyncClient, server: Server) -> str:
    """The stream URL the site home embeds (its cursor, its connection id)."""
    response = await client.get(f"{server.url}{SITE}/")
    assert response.status_code == 200, response.status_code
    found = re.search(r'hx-sse:connect="([^"]+)"', response.text)
    assert found, "the site home lost its live wiring"
    return html.unescape(found[1])


async def board_stream(client: httpx.AsyncClient, server: Server, board: int) -> str:
    response = await client.get(f"{server.url}{SITE}/boards/{board}")
    assert response.status_code == 200, response.status_code
    found = re.search(r'hx-sse:connect="([^"]+)"', response.text)
    assert found, "the board page lost its live wiring"
    return html.unescape(found[1])


def first_persistent(messages: list[SSEMessage]) -> SSEMessage | None:
    return next((m for m in messages if m.id is not None), None)


def has(text: str):
    """Predicate: some persistent message (event or resync) carries `text`."""
    return lambda messages: any(text in m.data for m in messages if m.id is not None)


async def health(server: Server) -> tuple[int, dict]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(server.url + "/healthz")
        return response.status_code, response.json()


# --- 1. PostgreSQL stopped under writes ---------------------------------------------------


async def test_postgres_stopped_under_writes(
    postgres: PostgresServer, server_a: Server, users, board: int, figures
):
    alice, bob = users["alice"], users["bob"]
    tag = f"pg{RUN}"
    viewer = await SSEReader(
        bob, server_a.url + await site_home_stream(bob, server_a), name="bob's site home"
    ).open()
    writer = Writer(alice, server_a.url, board, tag).start()
    try:
        await wait_until(lambda: len(writer.ok_since(0)) >= 3, 15, "writes before the stop")
        port_before = viewer.client_port
        down = time.monotonic()
        await asyncio.to_thread(postgres.stop)
        pings_at_stop = len(viewer.comments)
        await asyncio.sleep(DOWN_FOR)
        # While it is down, a page is a readable 503 too.
        page = await bob.get(f"{server_a.url}{SITE}/")
        status, body = await health(server_a)
        restarting = time.monotonic()
        await asyncio.to_thread(postgres.start)
        up = time.monotonic()
        back_in = await wait_until(lambda: writer.ok_since(up), 30, "a write after the restart")
        await asyncio.sleep(1.5)  # a few more writes, all fine
    finally:
        answers = await writer.stop()
        if not postgres.running:
            await asyncio.to_thread(postgres.start)
    try:
        # The stream stayed open through the outage, and heartbeats kept coming; every
        # write answered 2xx reached it (a ticket by its activity line).
        await wait_until(lambda: len(viewer.comments) > pings_at_stop, 20, "a heartbeat")
        assert not viewer.ended and viewer.client_port == port_before, viewer.describe()
        await viewer.wait_for(has([a for a in answers if a.ok][-1].text), timeout=10)
        unseen = [a.text for a in answers if a.ok and not has(a.text)(viewer.messages)]
        assert not unseen, unseen
    finally:
        await viewer.close()

    outage = [a for a in answers if down + 0.5 < a.started < restarting - 0.2]
    refused = [a for a in answers if not a.ok]
    statuses = sorted({str(a.status) for a in answers})
    assert outage and all(a.status == 503 for a in outage), [(a.text, a.status) for a in outage]
    assert all(a.status == 503 for a in refused), statuses  # never a 500, never a reset
    for answer in refused:
        assert answer.headers.get("retry-after"), answer.headers
        assert AGAIN in answer.body and "Traceback" not in answer.body, answer.body[:500]
        if answer.htmx:  # a sentence app.js shows as a toast (htmx swaps no 5xx)
            assert answer.headers["content-type"].startswith("text/plain"), answer.headers
        else:  # the app's error page
            assert "<html" in answer.body and "database" in answer.body, answer.body[:500]
    assert page.status_code == 503 and AGAIN in page.text, page.text[:500]
    assert status == 503 and body["database"]["state"].startswith("failing"), body
    assert all(a.ok for a in answers if a.started > up + back_in), statuses

    # Every write answered 2xx is in the database, and nothing is half-written: each
    # ticket has its activity line and each line its ticket (one transaction).
    notes, tickets, lines = await stored(postgres, tag)
    ok_notes = {a.text for a in answers if a.ok and a.what == "note"}
    ok_tickets = {a.text for a in answers if a.ok and a.what == "ticket"}
    assert ok_notes <= notes and ok_tickets <= tickets
    assert sorted(lines) == sorted(tickets), (lines, tickets)
    unknown = (notes | tickets) - {a.text for a in answers}
    assert not unknown, unknown
    # A refusal wrote nothing (unless the outage hit between commit and answer).
    written_refused = {a.text for a in refused} & (notes | tickets)
    assert len(written_refused) <= 1, written_refused

    figures(
        f"PostgreSQL stopped {DOWN_FOR:.0f} s under writes every {WRITE_EVERY} s: "
        f"{len(answers)} writes, {sum(a.ok for a in answers)} answered 2xx/3xx, "
        f"{len(refused)} answered 503 (statuses seen {statuses}), 0 x 500; "
        f"{len(written_refused)} refused but written; writes back {back_in:.1f} s after "
        f"PostgreSQL was; the viewer's stream stayed open "
        f"({len(viewer.comments) - pings_at_stop} heartbeat(s) since the stop) and got every "
        "2xx write's event"
    )


# --- 2. Redis stopped under writes --------------------------------------------------------


async def test_redis_stopped_under_writes(
    postgres: PostgresServer,
    redis_server: RedisServer,
    server_a: Server,
    users,
    board: int,
    dispatch: int,
    figures,
):
    alice, bob, charlie = users["alice"], users["bob"], users["charlie"]
    tag = f"rd{RUN}"
    # Every kind of live page bob can open at nairobi (each reads presence, cursors, locks).
    paths = [
        f"{SITE}/",
        f"{SITE}/boards/{board}",
        f"{SITE}/drafts",
        f"{SITE}/dispatches",
        f"{SITE}/dispatches/{dispatch}",
        f"{SITE}/stocktakes",
        f"{SITE}/appointments",
    ]
    home = await SSEReader(
        bob, server_a.url + await site_home_stream(bob, server_a), name="bob's site home"
    ).open()
    on_board = await SSEReader(
        charlie, server_a.url + await board_stream(charlie, server_a, board), name="charlie's board"
    ).open()
    again: list[SSEReader] = []
    try:
        writer = Writer(alice, server_a.url, board, tag).start()
        try:
            await wait_until(lambda: len(writer.ok_since(0)) >= 3, 15, "writes before the stop")
            await asyncio.to_thread(redis_server.stop)
            down = time.monotonic()
            pages: list[tuple[str, int]] = []
            healths: list[tuple[int, dict]] = []
            while time.monotonic() - down < DOWN_FOR:
                for path in paths:
                    pages.append((path, (await bob.get(server_a.url + path)).status_code))
                healths.append(await health(server_a))
                await asyncio.sleep(1.0)
        finally:
            answers = await writer.stop()
            if not redis_server.running:
                await asyncio.to_thread(redis_server.start)  # same port, every key lost
        up = time.monotonic()
        during = [a for a in answers if a.started > down]
        healthy_in = await _wait_healthy(server_a)

        # When Redis is back, both streams end (the broker may have missed messages) and
        # the browsers reconnect with the last id they saw: a resync carrying what was
        # written meanwhile.
        await asyncio.gather(home.wait_ended(timeout=15), on_board.wait_ended(timeout=15))
        ended_in = time.monotonic() - up
        for viewer, client in ((home, bob), (on_board, charlie)):
            last = {"Last-Event-ID": viewer.last_event_id}
            again.append(await SSEReader(client, viewer.url, headers=last).open())
        first = [await v.wait_for(first_persistent, timeout=10) for v in again]
        last_note = [a for a in during if a.what == "note"][-1]
        assert first[0].id and last_note.text in first[0].data, first[0].data[-2000:]
        outage_tickets = [a.text for a in during if a.what == "ticket"]
        assert first[1].id and all(t in first[1].data for t in outage_tickets), outage_tickets

        # Live again: a note and a ticket reach the right viewers.
        after = Writer(alice, server_a.url, board, f"ra{RUN}").start()
        await wait_until(lambda: len(after.ok_since(0)) >= 3, 15, "writes after the restart")
        answers_after = await after.stop()
        note = next(a.text for a in answers_after if a.what == "note" and a.ok)
        ticket = next(a.text for a in answers_after if a.what == "ticket" and a.ok)
        await again[0].wait_for(has(note), timeout=10)
        await again[1].wait_for(has(ticket), timeout=10)
    finally:
        for viewer in (home, on_board, *again):
            await viewer.close()

    statuses = sorted({str(a.status) for a in answers})
    assert during and all(a.ok for a in answers), [(a.text, a.status) for a in answers]
    assert all(code == 200 for _, code in pages), [p for p in pages if p[1] != 200]
    assert healths and all(
        code == 503
        and body["broker"]["state"].startswith("failing")
        and body["database"]["state"] == "ok"
        for code, body in healths
    ), healths
    notes, tickets, lines = await stored(postgres, tag)
    assert {a.text for a in answers if a.what == "note"} <= notes
    assert {a.text for a in answers if a.what == "ticket"} <= tickets
    assert sorted(lines) == sorted(tickets)

    figures(
        f"Redis stopped {DOWN_FOR:.0f} s under writes every {WRITE_EVERY} s: "
        f"{len(answers)} writes ({len(during)} during the outage), all answered as done "
        f"(statuses {statuses}), all in the database; {len(pages)} page loads during it, all "
        f"200; /healthz 503 naming the broker, 200 again {healthy_in:.1f} s after Redis was "
        f"back; both viewers' streams ended {ended_in:.1f} s after it and reconnected to a "
        f"resync, the outage's "
        f"{len([a for a in during if a.what == 'ticket'])} tickets on the board's resync"
    )


async def _wait_healthy(server: Server, within: float = 15.0) -> float:
    started = time.monotonic()
    while (await health(server))[0] != 200:
        assert time.monotonic() - started < within, await health(server)
        await asyncio.sleep(0.1)
    return time.monotonic() - started


# --- 3. SIGTERM with 5,000 open streams --------------------------------------------------

STREAMS = 5000
GRACE = 5.0  # uvicorn's timeout_graceful_shutdown (main.py)


class RawViewer:
    """A stream on a raw socket (cheap: thousands of them), keeping the ids it receives."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.ids: list[str] = []
        self._pending = b""
        self._writer: asyncio.StreamWriter | None = None

    async def open(self, port: int, last_event_id: str = "") -> None:
        self.close()  # a reconnect: the old connection is over
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = self.request
        if last_event_id:
            head = head.replace(b"\r\n\r\n", f"\r\nLast-Event-ID: {last_event_id}\r\n\r\n".encode())
        writer.write(head)
        self._reader, self._writer = reader, writer
        first = await asyncio.wait_for(reader.read(65536), 30)
        assert first.startswith(b"HTTP/1.1 200"), first[:300]
        self._take(first.partition(b"\r\n\r\n")[2])

    def _take(self, chunk: bytes) -> None:
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        self.ids.extend(line[4:].decode() for line in lines if line.startswith(b"id: "))

    async def read_until_closed(self) -> None:
        while chunk := await self._reader.read(65536):
            self._take(chunk)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def test_sigterm_with_five_thousand_open_streams(
    env: dict[str, str], server_a: Server, redis_server: RedisServer, users, figures
):
    alice = users["alice"]
    with serving(Server(env, name="B", args=["--no-migrate"])) as server_b:
        cookie = f"id={alice.cookies['id']}; csrftoken={alice.cookies['csrftoken']}"
        stream = await site_home_stream(alice, server_a)
        cursor = re.search(r"cursor=([^&]+)", stream)[1]  # type: ignore[index]
        path = f"{SITE}/live?cursor={cursor}"  # no conn: no presence, just streams

        def request(port: int) -> bytes:
            return (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n"
                "Accept: text/event-stream\r\n\r\n"
            ).encode()

        servers = [server_a, server_b]
        viewers = [RawViewer(request(servers[i % 2].port)) for i in range(STREAMS)]
        gate = asyncio.Semaphore(100)

        async def open_on(viewer: RawViewer, server: Server, last: str = "") -> None:
            async with gate:
                await viewer.open(server.port, last)

        started = time.monotonic()
        await asyncio.gather(*(open_on(v, servers[i % 2]) for i, v in enumerate(viewers)))
        opened_in = time.monotonic() - started
        on_b = viewers[1::2]
        readers = {v: asyncio.create_task(v.read_until_closed()) for v in viewers}
        notes: list[str] = []

        async def write_notes(count: int) -> None:
            for _ in range(count):
                note = f"st{RUN}-{len(notes)}"
                response = await post_form(alice, f"{server_a.url}{SITE}/notes", {"note": note})
                assert response.status_code == 303, response.status_code
                notes.append(note)
                await asyncio.sleep(0.25)

        try:
            await write_notes(4)
            # SIGTERM to B while notes keep coming; its viewers reconnect to A (what the
            # load balancer does) with the last id they had, as a browser does.
            notes_task = asyncio.create_task(write_notes(16))
            term = asyncio.create_task(asyncio.to_thread(server_b.stop, 30.0))
            ended = time.monotonic()
            await asyncio.wait_for(asyncio.gather(*(readers[v] for v in on_b)), GRACE + 5)
            all_ended_in = time.monotonic() - ended
            took = await term
            reconnect = time.monotonic()
            random.shuffle(on_b)
            await asyncio.gather(*(open_on(v, server_a, v.ids[-1] if v.ids else "") for v in on_b))
            reconnected_in = time.monotonic() - reconnect
            for viewer in on_b:
                readers[viewer] = asyncio.create_task(viewer.read_until_closed())
            await notes_task
            # Every viewer ends with every event of the topic since the page, once, in order.
            history = await _history(redis_server, cursor)
            assert len(history) == len(notes)
            await wait_until(
                lambda: all(len(v.ids) >= len(history) for v in viewers), 30, "every event"
            )
        finally:
            for viewer in viewers:
                viewer.close()
            for task in readers.values():
                task.cancel()
        log = server_b.log_tail(200_000)
    positions = [[i.split(".", 2)[2] for i in v.ids] for v in viewers]
    wrong = [p for p in positions if p != history]
    assert server_b.returncode in (0, -signal.SIGTERM), log[-3000:]
    assert took < GRACE, f"SIGTERM -> exit took {took:.1f} s"
    assert "timeout graceful shutdown exceeded" not in log, log[-3000:]
    assert not wrong, f"{len(wrong)} viewers lost or doubled events: {wrong[0]} != {history}"
    figures(
        f"SIGTERM to 1 of 2 processes with {STREAMS} open streams ({len(on_b)} on it): "
        f"opened in {opened_in:.1f} s; its streams all ended within {all_ended_in:.2f} s, "
        f"the process exited {server_b.returncode} in {took:.2f} s (grace period {GRACE:.0f} s); "
        f"{len(on_b)} viewers reconnected with Last-Event-ID to the other in "
        f"{reconnected_in:.1f} s; {len(history)} events, 0 lost, 0 duplicated "
        f"across {STREAMS} viewers"
    )


async def _history(redis_server: RedisServer, cursor: str) -> list[str]:
    """The positions of the site topic's events after the page's cursor, from Redis."""
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    try:
        keys = [k async for k in client.scan_iter(match=f"{NAMESPACE}:hist:site:*")]
        assert len(keys) == 1, keys
        after = html.unescape(cursor).split(".", 2)[2] if "." in cursor else ""
        entries = await client.xrange(keys[0], f"({after}" if after else "-", "+")
    finally:
        await client.aclose()
    return [position for position, _ in entries]


if ENGINE != "postgres":
    fail_instead(globals(), NEEDS_POSTGRES)
