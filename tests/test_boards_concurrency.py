"""Concurrent moves on one board, over HTTP, on both engines (the boards issue's acceptance
item): 20 moves in one column by 4 users at once, each from the board as that user read it
before the burst. Every viewer's stream ends with the column as the database has it; no
card is lost or doubled; each refused move is a 409 carrying the column as it is now.

The viewers' streams are the real `{board}/live` responses of the in-process app (the one
the other tests post to), read through a small streaming ASGI transport: httpx's own
ASGITransport collects a whole body before answering, and a stream never ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import random
import re
import time
from collections import Counter
from typing import Any

import httpx
from bs4 import BeautifulSoup

from routes.boards import BOARD
from tables.activity import Activity
from tables.boards import Ticket
from tables.people import SiteRef
from tests.servers import SSEMessage, SSEReader
from tests.test_boards import htmx, new_board, new_ticket, order_of

CARDS = 10
MOVES = 20
MOVERS = ("alice", "bob", "charlie", "admin")  # the nairobi demo users
VIEWERS = ("alice", "bob", "charlie", "admin")  # every mover also watches the board
DRAIN = 15.0  # seconds for the last event to reach every viewer
TICKET_ID = re.compile(r"ticket-(\d+)")


# -- a stream of the in-process app ------------------------------------------------------------


class _Body(httpx.AsyncByteStream):
    """The body of a response still being written by the app; closing it hangs up."""

    def __init__(self, chunks: asyncio.Queue, hang_up: asyncio.Event, task: asyncio.Task) -> None:
        self.chunks, self.hang_up, self.task = chunks, hang_up, task

    async def __aiter__(self):
        while (chunk := await self.chunks.get()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self.hang_up.set()
        _, pending = await asyncio.wait({self.task}, timeout=5)
        for task in pending:  # a stream that did not notice the disconnect
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class StreamingASGI(httpx.AsyncBaseTransport):
    """Like httpx.ASGITransport, but the response is returned as soon as its headers are
    sent and its body is read while the app writes it (for event streams)."""

    def __init__(self, app) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port or 80),
            "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        hang_up, started = asyncio.Event(), asyncio.Event()
        head: dict[str, Any] = {}
        sent_request = False

        async def receive() -> dict:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": body, "more_body": False}
            await hang_up.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if hang_up.is_set():
                raise OSError("the client hung up")
            if message["type"] == "http.response.start":
                head.update(status=message["status"], headers=message.get("headers", []))
                started.set()
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    chunks.put_nowait(message["body"])
                if not message.get("more_body", False):
                    chunks.put_nowait(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            finally:
                started.set()
                chunks.put_nowait(None)

        task = asyncio.create_task(run(), name=f"asgi {request.url.path}")
        await started.wait()
        if "status" not in head:  # the app failed before answering
            await task  # raises what it raised
        return httpx.Response(
            head["status"], headers=head["headers"], stream=_Body(chunks, hang_up, task)
        )


async def watch(app, user, board: dict) -> tuple[SSEReader, httpx.AsyncClient]:
    """What a browser does: load the board, then open the stream its page names (with the
    page's cursor, so nothing published in between is missed)."""
    page = await user.get(board["url"])
    assert page.status_code == 200
    found = re.search(r'hx-sse:connect="([^"]+)"', page.text)
    assert found, "the board page lost its stream"
    stream = httpx.AsyncClient(
        transport=StreamingASGI(app), base_url="http://127.0.0.1", cookies=user.http.cookies
    )
    reader = SSEReader(stream, html.unescape(found[1]), lifetime=60.0)
    return await reader.open(timeout=10.0), stream


# -- what a page or an answer says about the column -------------------------------------------


def column_in(fragment: str | BeautifulSoup, column_id: int) -> list[int] | None:
    """The card ids of a column, top to bottom, in a page, an answer or an event (its order
    `#order-<id>`, sent with a move, or its cards); None if it is not there."""
    if isinstance(fragment, str):
        fragment = BeautifulSoup(fragment, "html.parser")
    order = fragment.find(id=f"order-{column_id}")  # a move sends the order, not the cards
    if order is not None:
        return [int(i) for i in order["data-order"].split(",") if i]
    column = fragment.find(id=f"column-{column_id}")
    if column is None:
        return None
    return [
        int(m[1]) for li in column.find_all("li") if (m := TICKET_ID.fullmatch(li.get("id", "")))
    ]


def read_board(text: str, column_id: int) -> tuple[list[int], dict[int, int]]:
    """What a user sees before moving: the column's order and each card's version."""
    page = BeautifulSoup(text, "html.parser")
    order = column_in(page, column_id)
    assert order is not None, "the board page lost its column"
    versions = {
        int(m[1]): int(li["data-version"])
        for li in page.find(id=f"column-{column_id}").find_all("li")
        if (m := TICKET_ID.fullmatch(li.get("id", "")))
    }
    return order, versions


def last_id(messages: list[SSEMessage]) -> str | None:
    ids = [m.id for m in messages if m.id is not None]
    return ids[-1] if ids else None


Order = tuple[int, ...]


def replays(start: list[int], moves: list[tuple[int, str]]) -> list[list[Order]]:
    """The column's successive orders when `moves` (card, position) are done one after the
    other from `start`: one list per way it can go. "bottom" is read by the server just
    before its transaction, so it means after the card that was last (but for the moved
    one) at some point since the start."""
    runs: list[list[Order]] = []

    def walk(states: list[Order], rest: list[tuple[int, str]]) -> None:
        if not rest:
            runs.append(states)
            return
        (card, position), *later = rest
        others = [i for i in states[-1] if i != card]
        if position == "top":
            afters: set[int | None] = {None}
        elif position == "bottom":
            afters = {[i for i in state if i != card][-1] for state in states}
        else:
            afters = {int(position.removeprefix("after:"))}
        for after in afters:
            at = 0 if after is None else others.index(after) + 1
            walk([*states, (*others[:at], card, *others[at:])], later)

    walk([tuple(start)], list(moves))
    return runs


def follows(shown: list[Order], run: list[Order]) -> bool:
    """Whether the orders a screen showed, event after event, are states of `run` taken in
    its order (some skipped, some shown twice; never one older than the one before)."""
    at = 0
    for order in shown:
        while at < len(run) and run[at] != order:
            at += 1
        if at == len(run):
            return False
    return True


def pick_move(rng: random.Random, order: list[int], versions: dict[int, int]) -> dict:
    """A random card and a place for it that changes something, as this user saw the column."""
    card = rng.choice(order)
    at = order.index(card)
    places = [f"after:{other}" for other in order if other != card and order.index(other) != at - 1]
    if at != 0:
        places.append("top")
    if at != len(order) - 1:
        places.append("bottom")
    return {"card": card, "version": versions[card], "position": rng.choice(places)}


# -- the acceptance item -----------------------------------------------------------------------


async def test_twenty_concurrent_moves_in_one_column_end_the_same_everywhere(as_user, app, figures):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    why = f"(seed {seed})"
    users = {name: await as_user(name) for name in dict.fromkeys((*MOVERS, *VIEWERS))}
    board = await new_board(users["alice"])
    todo = board["columns"]["todo"]
    made = [await new_ticket(users["alice"], board, f"Card {i}") for i in range(CARDS)]
    cards, numbers = [t["id"] for t in made], {t["number"]: t["id"] for t in made}
    assert await order_of(todo) == cards
    site = await SiteRef.load(board["site"])
    topic = BOARD.topic(site, {"board": board["id"]})
    broker = app.state.services.broker

    viewers: list[tuple[str, SSEReader]] = []
    streams: list[httpx.AsyncClient] = []
    try:
        for name in VIEWERS:
            reader, stream = await watch(app, users[name], board)
            viewers.append((name, reader))
            streams.append(stream)

        # Every mover reads the board before the burst; their moves are planned from that.
        plans: list[tuple[str, dict]] = []
        versions_before: dict[int, int] = {}
        for name in MOVERS:
            order, versions = read_board((await users[name].get(board["url"])).text, todo)
            assert order == cards and versions == (versions_before or versions)
            versions_before = versions
            plans += [(name, pick_move(rng, order, versions)) for _ in range(MOVES // len(MOVERS))]
        rng.shuffle(plans)

        async def send(name: str, plan: dict) -> httpx.Response:
            user = users[name]
            form = {"column": todo, "position": plan["position"], "version": plan["version"]}
            url = f"{board['url']}/tickets/{plan['card']}/move"
            return await user.http.post(url, data=form, headers=htmx(user))

        started = time.monotonic()
        answers = await asyncio.gather(*(send(name, plan) for name, plan in plans))
        burst = time.monotonic() - started

        # Every answer is a move done (200) or refused as stale (409): never a 500 or 422.
        statuses = Counter(a.status_code for a in answers)
        assert set(statuses) <= {200, 409}, (statuses, why, [a.text[:300] for a in answers])
        moved = Counter()  # card -> moves of it that changed the board
        done: dict[int, str] = {}  # card -> the position of its move that changed the board
        already = 0  # moves that found the card where they would have put it
        for (name, plan), answer in zip(plans, answers, strict=True):
            said = BeautifulSoup(answer.text, "html.parser")
            card, shown, toast = plan["card"], column_in(said, todo), said.select(".toast")
            assert len(toast) == 1, (name, plan, answer.text, why)
            words = toast[0].get_text(" ", strip=True)
            if "is already there" not in words:  # a move done or refused: the column now
                assert shown is not None and sorted(shown) == sorted(cards), (answer.text, why)
            if answer.status_code == 409:
                # The column as it is now, with the refused card in it, and why.
                assert f'id="order-{todo}"' in answer.text and card in shown, why
                assert "toast--error" in toast[0]["class"], why
                assert "just before you did" in words, (words, why)
            elif "is already there" in words:  # dropped where it now was: nothing changed
                assert "toast--error" not in toast[0]["class"] and shown is None, why
                already += 1
            else:
                assert words.startswith("Moved #"), (words, why)
                moved[card] += 1
                done[card] = plan["position"]

        # The database: every card exactly once, positions 0..n-1, none elsewhere.
        final = await order_of(todo)
        rows = await Ticket.select(Ticket.id, Ticket.column, Ticket.position, Ticket.version).where(
            Ticket.board == board["id"]
        )
        assert sorted(final) == sorted(cards) and len(final) == CARDS, (final, why)
        assert {r["column"] for r in rows} == {todo}, (rows, why)
        assert sorted(r["position"] for r in rows) == list(range(CARDS)), (rows, why)

        # One move per card at most succeeded (all were planned from the same version), and
        # it is exactly the one that bumped the card's version; a refused move's card moved.
        versions_after = {r["id"]: r["version"] for r in rows}
        for card in cards:
            bumped = versions_after[card] - versions_before[card]
            assert moved[card] == bumped <= 1, (card, moved[card], bumped, why)
        for (_, plan), answer in zip(plans, answers, strict=True):
            if answer.status_code == 409:
                assert moved[plan["card"]] == 1, (plan, why)
        changed = sum(moved.values())

        # Each card went where its mover asked: the moves done, in the order they committed
        # (their activity lines, written in their transactions), replayed from the start.
        lines = await (
            Activity.select(Activity.summary)
            .where((Activity.entity_type == "board") & (Activity.entity_id == board["id"]))
            .where(Activity.verb == "ticket.move")
            .order_by(Activity.id)
        )
        committed = [numbers[int(re.search(r"#(\d+)", r["summary"])[1])] for r in lines]
        assert sorted(committed) == sorted(done), (committed, done, why)
        runs = [
            run
            for run in replays(cards, [(card, done[card]) for card in committed])
            if run[-1] == tuple(final)
        ]
        assert runs, (final, committed, done, why)
        assert statuses[200] == changed + already, (statuses, changed, already, why)
        assert changed >= 1 and statuses[409] >= 1, (statuses, why)  # both paths exercised

        # Every viewer: the stream runs to the topic's last event, in one order for all,
        # one event per move that changed something, and ends with the database's column.
        last = (await broker.cursor([topic])).encode([topic])
        for _, reader in viewers:  # poll until the last event is in, within a deadline
            await reader.wait_for(lambda ms: last_id(ms) == last, DRAIN)
        # The same events, in the same order, for every viewer: one per move done.
        events = [m.data for m in viewers[0][1].persistent]
        for name, reader in viewers:
            assert len(reader.ids) == len(set(reader.ids)) == changed, (name, reader.ids, why)
            assert [m.data for m in reader.persistent] == events, (name, why)
        # What those screens showed, event after event: states of the column in the order
        # the moves committed (a redraw rendered before a later move never arrives after
        # it), the last one the database's.
        shown = [order for data in events if (order := column_in(data, todo)) is not None]
        assert shown and shown[-1] == final, (shown, final, why)
        assert any(follows([tuple(o) for o in shown], run) for run in runs), (shown, runs, why)
        figures(
            f"{len(plans)} moves by {len(MOVERS)} users in {burst:.2f} s: "
            f"{statuses[200]} x 200 ({changed} changed, {already} already there), "
            f"{statuses[409]} x 409; "
            f"{len(viewers)} viewers each got {changed} events {why}"
        )
    finally:
        for _, reader in viewers:
            await reader.close()
        for stream in streams:
            await stream.aclose()
