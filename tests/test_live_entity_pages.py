"""Pages scoped to one entity of a site, over HTTP against a real server.

`tests/entity_app.py` adds `/s/{site}/things/{thing}` (things 1..3) to the real app: one
live area declared with `params=("thing",)`, so each thing has its own topic, presence list
and streams. A real uvicorn process serves it and the tests read its streams like browsers:

* on PostgreSQL + Redis (FB_TEST_DB=postgres): a throwaway database `fbent_<id>` and the
  shared Redis under its own REDIS_NAMESPACE;
* on SQLite + the in-process broker (FB_TEST_DB=sqlite): a fresh SQLite file.

No `multiprocess` marker: the SQLite pass deselects that one, and these run on both engines
(one server process each time).

Every persistent message of a thing's stream is its `#note-{thing}` region: "thing N of
<site>: C notes; last: <q>text</q>", so a message is named by (thing, text).
"""

from __future__ import annotations

import asyncio
import html
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from tests import servers
from tests.conftest import ENGINE, PG_ADMIN_DSN, TEST_REDIS_URL
from tests.servers import (
    ROOT,
    Server,
    SSEMessage,
    SSEReader,
    post_form,
    server_env,
    signed_in_client,
)

RUN = uuid.uuid4().hex[:8]
NAMESPACE = f"fbent-{RUN}"
SITE = "/s/nairobi"
THINGS = f"{SITE}/things"
PRESENCE = 'hx-target="#presence"'
ALICE, BOB, CHARLIE = "Alice Wanjiru", "Bob Wilson", "Charlie Smith"
PREPARE_TIMEOUT = 240.0
WAIT = 10.0  # seconds for anything to arrive (2 cores, a server and the test process)
PRESENCE_WAIT = 20.0  # includes earlier tests' viewers leaving (grace + sweep)


# --- the server -------------------------------------------------------------------------------


class EntityServer(Server):
    """`python -m uvicorn tests.entity_app:create_app --factory` on the database of `env`."""

    def start(self) -> EntityServer:
        self._spawn(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.entity_app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--timeout-graceful-shutdown",
                "5",
            ],
            env=self.env,
        )
        return self


def prepare_database(env: dict[str, str]) -> None:
    """Migrate and load the demo data, as `python main.py` does before it serves."""
    done = subprocess.run(
        [sys.executable, "-c", "import asyncio, main; asyncio.run(main.prepare())"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=PREPARE_TIMEOUT,
    )
    assert done.returncode == 0, f"preparing the database failed:\n{done.stderr[-4000:]}"


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[dict[str, str]]:
    """A fresh, migrated database with the demo data, and the server environment for it."""
    if ENGINE == "postgres":
        import asyncpg

        name = f"fbent_{RUN}"
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        environ = server_env(PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name, TEST_REDIS_URL, NAMESPACE)
    else:
        path = Path(tempfile.mkdtemp(prefix="fbent-")) / "entity.sqlite"
        environ = server_env("", "", NAMESPACE, SQLITE_PATH=str(path))
    try:
        await asyncio.to_thread(prepare_database, environ)
        yield environ
    finally:
        if ENGINE == "postgres":
            conn = await asyncpg.connect(PG_ADMIN_DSN)
            await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await conn.close()
            client = aioredis.from_url(TEST_REDIS_URL)
            keys = [key async for key in client.scan_iter(match=f"{NAMESPACE}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
        else:
            shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def server(env: dict[str, str]) -> Iterator[Server]:
    """The server; stopped at the end, its log deleted unless something failed."""
    started = EntityServer(env, name="entity").start().wait_ready()
    try:
        yield started
    except BaseException:
        started.stop()
        print(f"entity server log kept: {started.log_path}")
        raise
    started.cleanup()


@pytest.fixture(scope="module")
async def users(server: Server) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    names = ("alice", "bob", "charlie", "dana", "oscar")
    clients = {name: await signed_in_client(server.url, name) for name in names}
    yield clients
    for client in clients.values():
        await client.aclose()


# --- what a thing's page and its stream say ---------------------------------------------------


@dataclass(frozen=True)
class Page:
    """What a thing's page embeds for its live layer, and its text."""

    stream_path: str  # /s/nairobi/things/1/live?cursor=…&conn=…
    cursor: str
    beat_path: str
    poll_path: str
    status_path: str
    text: str


def attribute(text: str, pattern: str) -> str:
    found = re.search(pattern + r'="([^"]*)"', text)
    assert found, f"the page lost its {pattern!r}"
    return html.unescape(found[1])


async def load_page(
    client: httpx.AsyncClient, server: Server, thing: int, site: str = SITE
) -> Page:
    response = await client.get(f"{server.url}{site}/things/{thing}")
    assert response.status_code == 200, f"GET {site}/things/{thing}: {response.status_code}"
    text = response.text
    page = Page(
        stream_path=attribute(text, "hx-sse:connect"),
        cursor=attribute(text, "data-cursor"),
        beat_path=attribute(text, "data-beat-url"),
        poll_path=attribute(text, "data-poll-url"),
        status_path=attribute(text, "data-status-url"),
        text=text,
    )
    assert page.stream_path.startswith(f"{site}/things/{thing}/live?cursor={page.cursor}&conn=")
    assert page.beat_path.startswith(f"{site}/things/{thing}/live/beat?conn=")
    return page


NOTE = re.compile(
    r'<p id="note-(\d+)" class="thing-note">thing \1 of [a-z]+: '
    r'<span class="count">(\d+)</span> notes; last: <q class="last">([^<]*)</q></p>'
)


def notes_in(data: str) -> list[tuple[int, str]]:
    """(thing, latest note) of every #note region in a message."""
    return [(int(m[1]), html.unescape(m[3])) for m in NOTE.finditer(data)]


def targets(data: str) -> list[str]:
    return re.findall(r'<hx-partial hx-target="#([^"]+)"', data)


def received(reader: SSEReader) -> list[tuple[int, str]]:
    """What a viewer's persistent messages carried, in order."""
    return [note for m in reader.persistent for note in notes_in(m.data)]


def has_note(text: str):
    return lambda messages: any(text in m.data for m in messages if m.id is not None)


def at_least(count: int):
    return lambda messages: len([m for m in messages if m.id is not None]) >= count


def presence_of(data: str) -> tuple[int, set[str]] | None:
    """(count, names) of a #presence update; None if the message is not one."""
    return listing(data) if PRESENCE in data else None


def page_presence(text: str) -> tuple[int, set[str]]:
    """(count, names) in a page's #presence element."""
    found = re.search(r'<div id="presence" class="presence">(.*?)</div>', text, re.S)
    assert found, "the page lost its #presence"
    return listing(found[1])


def listing(data: str) -> tuple[int, set[str]]:
    """(count, names) of a rendered live/_presence.html."""
    count = re.search(r'class="presence__count">(\d+) here<', data)
    names = re.search(r"Viewing now: ([^<]*)</span>", data)
    return (
        int(count[1]) if count else 0,
        {n.strip() for n in names[1].split(",")} if names else set(),
    )


def lists(names: set[str]):
    """Predicate: the latest presence update lists exactly `names`."""

    def check(messages: list[SSEMessage]) -> bool:
        updates = [p for m in messages if m.id is None and (p := presence_of(m.data))]
        return bool(updates) and updates[-1] == (len(names), names)

    return check


def note_text(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:6]}"


async def post_note(
    client: httpx.AsyncClient, server: Server, thing: int, text: str, site: str = SITE
) -> None:
    url = f"{server.url}{site}/things/{thing}/note"
    response = await post_form(client, url, {"note": text})
    assert response.status_code == 303, f"note on {site} thing {thing}: {response.status_code}"
    assert response.headers["location"] == f"{site}/things/{thing}"


def position(event_id: str) -> tuple[int, int]:
    """A one-topic cursor's position (Redis "ms-n" or memory "n"), comparable."""
    version, _epoch, pos = event_id.split(".", 2)
    assert version == "1", event_id
    major, _, minor = pos.partition("-")
    return (int(major), int(minor or 0))


def epoch_of(event_id: str) -> str:
    return event_id.split(".", 2)[1]


class Tabs(servers.Tabs):
    async def open(
        self,
        client: httpx.AsyncClient,
        server: Server,
        path: str,
        *,
        last_event_id: str | None = None,
        name: str = "",
    ) -> SSEReader:
        return await self.open_path(
            client, server, path, last_event_id=last_event_id, name=name, timeout=WAIT
        )


@pytest.fixture
async def tabs() -> AsyncIterator[Tabs]:
    opened = Tabs()
    yield opened
    await opened.close_all()


async def status_of(client: httpx.AsyncClient, method: str, url: str) -> int:
    """The status of a request whose body is not read (a stream may never end)."""
    data = {"csrftoken": client.cookies.get("csrftoken", ""), "note": "x"}
    kwargs = {"data": data} if method == "POST" else {}
    async with client.stream(method, url, **kwargs) as response:  # type: ignore[arg-type]
        return response.status_code


# --- delivery ---------------------------------------------------------------------------------


async def test_a_note_reaches_only_the_viewers_of_its_thing(server: Server, users, tabs: Tabs):
    alice, bob, charlie, dana = (users[n] for n in ("alice", "bob", "charlie", "dana"))
    pages = [
        (alice, await load_page(alice, server, 1), "alice on 1"),
        (bob, await load_page(bob, server, 1), "bob on 1"),
        (charlie, await load_page(charlie, server, 2), "charlie on 2"),
        # The same thing id at another site: another entity altogether.
        (dana, await load_page(dana, server, 1, site="/s/nakuru"), "dana on nakuru 1"),
    ]
    on_1a, on_1b, on_2, elsewhere = [
        await tabs.open(client, server, page.stream_path, name=name) for client, page, name in pages
    ]

    first, second, third = note_text("one"), note_text("two"), note_text("three")
    await post_note(bob, server, 1, first)
    for viewer in (on_1a, on_1b):
        await viewer.wait_for(has_note(first), timeout=WAIT)
    await post_note(alice, server, 2, second)
    await on_2.wait_for(has_note(second), timeout=WAIT)
    await post_note(charlie, server, 1, third)
    for viewer in (on_1a, on_1b):
        await viewer.wait_for(has_note(third), timeout=WAIT)
    outside = note_text("nakuru")
    await post_note(dana, server, 1, outside, site="/s/nakuru")
    await elsewhere.wait_for(has_note(outside), timeout=WAIT)

    # Each stream delivers in publish order, so anything published earlier for another
    # thing would have arrived before the note each viewer just waited for.
    assert received(on_1a) == [(1, first), (1, third)], on_1a.describe()
    assert received(on_1b) == [(1, first), (1, third)], on_1b.describe()
    assert received(on_2) == [(2, second)], on_2.describe()
    assert received(elsewhere) == [(1, outside)], elsewhere.describe()
    for viewer, thing in ((on_1a, 1), (on_1b, 1), (on_2, 2), (elsewhere, 1)):
        assert {t for m in viewer.persistent for t in targets(m.data)} == {f"note-{thing}"}
    # The nakuru thing 1 and the nairobi thing 1 keep their own counts.
    assert "thing 1 of nakuru: <span" in elsewhere.persistent[-1].data
    assert '<span class="count">2</span>' in on_1a.persistent[-1].data


async def test_presence_lists_each_things_own_viewers(server: Server, users, tabs: Tabs):
    alice, bob, charlie = users["alice"], users["bob"], users["charlie"]
    pages = {
        "alice": (alice, await load_page(alice, server, 1)),
        "bob": (bob, await load_page(bob, server, 1)),
        "charlie": (charlie, await load_page(charlie, server, 2)),
    }
    viewers = {
        name: await tabs.open(client, server, page.stream_path, name=f"{name}'s stream")
        for name, (client, page) in pages.items()
    }
    beats = await asyncio.gather(
        *(post_form(client, server.url + page.beat_path, {}) for client, page in pages.values())
    )
    assert [r.status_code for r in beats] == [204, 204, 204]

    await asyncio.gather(
        viewers["alice"].wait_for(lists({ALICE, BOB}), timeout=PRESENCE_WAIT),
        viewers["bob"].wait_for(lists({ALICE, BOB}), timeout=PRESENCE_WAIT),
        viewers["charlie"].wait_for(lists({CHARLIE}), timeout=PRESENCE_WAIT),
    )
    # Presence is live only: it carries no id, so it is never replayed.
    for viewer in viewers.values():
        assert all(m.id is None for m in viewer.messages if PRESENCE in m.data)

    # A fresh page (a client that is not on it) lists who is on that thing.
    expected = {1: "2 here", 2: "1 here"}
    names = {1: [ALICE, BOB], 2: [CHARLIE]}
    for thing, reader in ((1, charlie), (2, alice)):
        deadline = time.monotonic() + PRESENCE_WAIT
        while True:
            page = await load_page(reader, server, thing)
            shown = page_presence(page.text)
            if shown == (len(names[thing]), set(names[thing])):
                break
            assert time.monotonic() < deadline, f"thing {thing}'s page lists {shown}"
            await asyncio.sleep(0.2)
        assert expected[thing] in page.text
        assert f"Viewing now: {', '.join(names[thing])}</span>" in page.text


# --- who may see a thing ----------------------------------------------------------------------


async def test_outsiders_and_unknown_things_get_404(server: Server, users):
    alice = users["alice"]
    before = await load_page(alice, server, 1)
    endpoints = [
        ("GET", ""),
        ("GET", "/live"),
        ("GET", "/live/poll"),
        ("GET", "/live/status"),
        ("POST", "/live/beat?conn=abcdefgh12345"),
        ("POST", "/note"),
    ]
    refused = {}
    for user, things in (("dana", (1, 2)), ("oscar", (1, 2)), ("alice", (99, 4))):
        for thing in things:
            for method, tail in endpoints:
                url = f"{server.url}{THINGS}/{thing}{tail}"
                refused[(user, method, url)] = await status_of(users[user], method, url)
    assert set(refused.values()) == {404}, {k: v for k, v in refused.items() if v != 404}

    # Signed out: a page or stream sends to the sign-in page, it does not stream.
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as anonymous:
        for tail in ("", "/live"):
            response = await anonymous.get(f"{THINGS}/1{tail}")
            assert response.status_code == 303, tail
            assert response.headers["location"].startswith("/login?next=")

    # None of the refused notes was published: thing 1 is as alice loaded it.
    response = await alice.get(f"{server.url}{before.poll_path}", params={"cursor": before.cursor})
    assert response.status_code == 204, response.text


# --- resume and resync, per thing -------------------------------------------------------------


async def test_last_event_id_replays_exactly_the_things_own_missed_notes(
    server: Server, users, tabs: Tabs
):
    alice, bob = users["alice"], users["bob"]
    page = await load_page(alice, server, 1)
    first = await tabs.open(alice, server, page.stream_path, name="alice on 1")
    seen = note_text("seen")
    await post_note(bob, server, 1, seen)
    await first.wait_for(has_note(seen), timeout=WAIT)
    last_id = first.last_event_id
    await first.close()

    missed = [note_text("missed1"), note_text("missed2")]
    other = note_text("other")
    await post_note(bob, server, 1, missed[0])
    await post_note(bob, server, 2, other)
    await post_note(bob, server, 1, missed[1])

    # Back with the page's (older) cursor still in the URL: Last-Event-ID wins.
    again = await tabs.open(
        alice, server, page.stream_path, last_event_id=last_id, name="alice back on 1"
    )
    await again.wait_for(at_least(2), timeout=WAIT)
    live = note_text("live")
    await post_note(bob, server, 1, live)
    await again.wait_for(has_note(live), timeout=WAIT)

    assert received(again) == [(1, missed[0]), (1, missed[1]), (1, live)], again.describe()
    ids = [last_id, *again.ids]
    assert len({epoch_of(i) for i in ids}) == 1
    assert [position(i) for i in ids] == sorted({position(i) for i in ids})  # increasing


@pytest.mark.parametrize(
    ("bad_id", "thing"),
    [
        ("%%%", 1),
        ("1.deadbeef.1", 1),  # an epoch this broker never had
        ("1.{epoch}.1.1", 1),  # a cursor for two topics
        ("1.deadbeef.1", 2),
    ],
    ids=["garbage", "unknown-epoch", "two-topics", "unknown-epoch-thing-2"],
)
async def test_an_untrustworthy_id_resyncs_only_that_things_regions(
    server: Server, users, tabs: Tabs, bad_id: str, thing: int
):
    alice, bob = users["alice"], users["bob"]
    other = 3 - thing
    # Something to see on both things, so a resync of the wrong one would show.
    here, there = note_text(f"on{thing}"), note_text(f"on{other}")
    await post_note(bob, server, thing, here)
    await post_note(bob, server, other, there)
    page = await load_page(alice, server, thing)
    bad_id = bad_id.format(epoch=epoch_of(page.cursor))

    viewer = await tabs.open(
        alice, server, f"{THINGS}/{thing}/live", last_event_id=bad_id, name=f"resync {thing}"
    )
    resync = await viewer.wait_for(lambda ms: ms[0] if ms else None, timeout=WAIT)
    assert resync.id == page.cursor, viewer.describe()  # a fresh cursor: nothing new since
    assert targets(resync.data) == [f"note-{thing}"]
    assert notes_in(resync.data) == [(thing, here)]
    assert NOTE.search(resync.data)[0] in page.text  # the region as the page shows it
    assert viewer.retry is not None

    # It goes on live from there, with that thing's notes only.
    later_there, later_here = note_text(f"later{other}"), note_text(f"later{thing}")
    await post_note(bob, server, other, later_there)
    await post_note(bob, server, thing, later_here)
    await viewer.wait_for(has_note(later_here), timeout=WAIT)
    assert received(viewer) == [(thing, here), (thing, later_here)], viewer.describe()
    assert position(viewer.ids[1]) > position(viewer.ids[0])


async def test_poll_and_status_follow_only_their_thing(server: Server, users):
    alice, bob = users["alice"], users["bob"]
    page = await load_page(alice, server, 1)

    async def poll() -> httpx.Response:
        return await alice.get(server.url + page.poll_path, params={"cursor": page.cursor})

    async def status() -> str:
        response = await alice.get(server.url + page.status_path)
        assert response.status_code == 200
        return " ".join(re.sub(r"<[^>]+>", " ", response.text).split())

    assert (await poll()).status_code == 204
    assert "Up to date" in await status()

    await post_note(bob, server, 2, note_text("elsewhere"))
    assert (await poll()).status_code == 204  # thing 2 changed, thing 1 did not
    assert "Up to date" in await status()

    here = note_text("here")
    await post_note(bob, server, 1, here)
    response = await poll()
    assert response.status_code == 200
    assert targets(response.text) == ["note-1", "live-cursor"]
    assert notes_in(response.text) == [(1, here)]
    assert "1 change since you loaded this page." in await status()
