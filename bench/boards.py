"""Boards benchmark: a big board's page, and card moves to many viewers.

    .venv/bin/python bench/boards.py [--cards 200] [--comments 40] [--sizes 20 200]
        [--renders 200] [--viewers 100] [--moves 100] [--rate 10] [--workers 1]
        [--json FILE] [--quick]

One throwaway PostgreSQL database and Redis namespace and one real `python main.py`
server (bench/common.py `Stack`), torn down afterwards whatever happens; every phase has
a timeout and `--budget` bounds the whole run; traffic goes to 127.0.0.1 only.

1. Setup, in-process against the bench database (as bench/drafts.py seeds): one ticket
   board per size in `--sizes` (and `--cards`) at nairobi, made with the app's own
   `tables.boards` functions (`create_board`, `create_ticket`, `add_comment`, each in
   its own write transaction): cards spread round-robin over the 4 columns, 2/3 of them
   assigned, some with a due date, and `--comments` comments on the `--cards` board
   (proportionally fewer on the smaller ones).
2. Query count and in-process time: the app (`main.create_app()`) served in this process
   through `httpx.ASGITransport`, alice signed in, with Piccolo's
   `PostgresEngine.run_querystring` wrapped to count calls. Every Piccolo query — select,
   update, raw, count, and piccolo_api's session lookup — goes through that one method
   (transactions are asyncpg's own BEGIN/COMMIT, and a page GET opens none), so the count
   is the number of SQL statements one board-page GET sends. The same count for every
   size means no query per card or per comment.
3. Render: GET the board page `--renders` times, sequentially over one keep-alive
   connection to the real server (after 20 warm-up GETs), timed at the client from
   request out to body in (loopback adds ~0.1 ms): p50 / p99 / max, and the page's bytes.
4. Moves: `--viewers` SSE streams open on the `--cards` board
   (`/s/nairobi/boards/{id}/live?cursor=…`, the cursor read off the page, no `conn` so not
   in presence) from one client process of raw asyncio protocols (bench/viewers.py's
   `Viewer`). Then bob sends `--moves` real htmx moves (`POST …/tickets/{tid}/move`,
   HX-Request + HX-Request-Type: partial + X-CSRFToken, form fields csrftoken, version,
   column, position) open-loop at `--rate` per second (move k leaves at start + k/rate),
   alternating To do -> In progress and back, positions cycling top / after:<card> /
   bottom. The plan is made up front from the board as seeded: each move takes the
   lowest card of its source column that has not moved yet, with its version (each card
   moves at most once, a move bumps only the moved card's version, and nothing else
   changes these cards; the versions in the database are checked against the plan
   afterwards), so `--moves` is at most the cards of the first two columns. A move
   *arrives* at a viewer with the first SSE message whose card `ticket-<tid>` carries
   `data-version="<version + 1>"` (its own event, or an earlier one rendered after it
   committed: events are rendered from the database under the topic's lock); an event's
   cards are parsed once per event
   (every viewer gets the same bytes), per viewer only its `id:` line is read. Latency =
   arrival (CLOCK_MONOTONIC in the client process) minus the moment just before the POST
   left. Lost: a (move, viewer) pair not delivered within 30 s, of a move that is in the
   database afterwards (answered or not); a refused or unanswered POST is counted apart.
   Bytes per move: the size of the SSE message (`id:` + `data:` lines) of each move's
   event, as one viewer receives it, and the cards it carries, compared with the whole
   board page and its `#columns` region (what a resync sends).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import re
import resource
import statistics
import sys
import time
from array import array
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    PG_ADMIN_DSN,
    REDIS_URL,
    SITE,
    Stack,
    code_version,
    install_signal_handlers,
    kib,
    machine_description,
    ms,
    percentile,
    server_errors,
    signed_in_client,
    stream_path_of,
)

LOST_AFTER = 30.0  # s: a move not at a viewer by then is lost
WARMUP_RENDERS = 20
_CARD = re.compile(rb'id="ticket-(\d+)"[^>]*?data-version="(\d+)"')
_AFTER = re.compile(r'\s*<option value="after:[^>]*>[^<]*</option>')  # "Move to…" places
_COLUMNS = re.compile(r'<div id="columns".*?(?=</main>)', re.S)


# -- 1. setup and 2. query count, in-process ---------------------------------------------------


async def seed_and_count(sizes: list[int], cards: int, comments: int, requests: int) -> dict:
    """Make the boards, then GET each board's page in-process counting SQL statements."""
    import httpx
    from piccolo.engine import engine_finder

    from main import create_app
    from tables.base import Actor, write_tx
    from tables.boards import (
        add_comment,
        assignable_people,
        board_view,
        create_board,
        create_ticket,
    )
    from tables.people import Site

    app = create_app()
    db = engine_finder()
    out: dict[str, Any] = {"boards": {}}
    async with app.router.lifespan_context(app):
        site = (await Site.select(Site.id).where(Site.slug == SITE).first())["id"]
        people = await assignable_people(site)
        bob = next((p for p in people if p["name"].startswith("Bob")), people[0])
        actor = Actor(bob["id"], bob["name"])
        priorities = ("low", "normal", "normal", "high", "urgent")
        for n in sorted(set(sizes) | {cards}):
            async with write_tx():
                board = await create_board(site, f"Bench board, {n} cards", "tickets", actor)
            view = await board_view(site, board["id"])
            columns = [c.id for c in view.columns]
            made = []
            for i in range(n):
                values = {
                    "title": f"Bench card {i:03d}: check the bay {i % 17} door sensor",
                    "description": "Seen on the night shift; the log has the details.",
                    "priority": priorities[i % len(priorities)],
                    "assignee": str(people[i % len(people)]["id"]) if i % 3 else "",
                    "due_date": f"2031-{1 + i % 12:02d}-{1 + i % 28:02d}" if i % 4 == 0 else "",
                }
                async with write_tx():
                    row = await create_ticket(site, board["id"], columns[i % 4], values, actor)
                made.append(row["id"])
            n_comments = round(comments * n / cards) if cards else 0
            for j in range(n_comments):
                async with write_tx():
                    await add_comment(site, made[(j * 5) % n], f"Bench comment {j}.", actor)
            view = await board_view(site, board["id"])
            out["boards"][n] = {
                "id": board["id"],
                "comments": n_comments,
                "columns": [
                    {"id": c.id, "key": c.key, "tickets": [(t.id, t.version) for t in c.tickets]}
                    for c in view.columns
                ],
            }

        # -- count queries per page GET ------------------------------------------------------
        counted: list[str] = []
        original = type(db).run_querystring

        async def counting(self, querystring, in_pool=True):
            counted.append(str(querystring))
            return await original(self, querystring, in_pool)

        type(db).run_querystring = counting  # type: ignore[method-assign]
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                await c.get("/login")
                form = {
                    "username": "alice",
                    "password": "demo",
                    "csrftoken": c.cookies["csrftoken"],
                }
                assert (await c.post("/login", data=form)).status_code == 303
                for info in out["boards"].values():
                    url = f"/s/{SITE}/boards/{info['id']}"
                    for _ in range(3):  # warm-up: templates, the layout cache
                        assert (await c.get(url)).status_code == 200
                    per_request, times = [], []
                    for _ in range(requests):
                        counted.clear()
                        t = time.perf_counter()
                        r = await c.get(url)
                        times.append((time.perf_counter() - t) * 1000)
                        assert r.status_code == 200, r.status_code
                        per_request.append(len(counted))
                    times.sort()
                    info["queries"] = sorted(set(per_request))
                    info["statements"] = [s[:160] for s in counted]
                    info["inprocess_p50_ms"] = percentile(times, 50)
                    info["inprocess_p99_ms"] = percentile(times, 99)
        finally:
            type(db).run_querystring = original  # type: ignore[method-assign]
    return out


# -- 3. render over HTTP ------------------------------------------------------------------------


async def render_phase(url: str, board_id: int, requests: int) -> dict:
    client = await signed_in_client(url, "alice", timeout=30.0)
    try:
        path = f"/s/{SITE}/boards/{board_id}"
        async with asyncio.timeout(60 + requests * 2):
            for _ in range(WARMUP_RENDERS):
                r = await client.get(path)
                assert r.status_code == 200, r.status_code
            times = []
            for _ in range(requests):
                t = time.perf_counter()
                r = await client.get(path)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.status_code
        times.sort()
        page = r.text
        region = _COLUMNS.search(page)
        return {
            "requests": requests,
            "page_bytes": len(r.content),
            "columns_bytes": len(region.group(0).encode()) if region else 0,
            "cards_on_page": page.count('id="ticket-'),
            "after_options": page.count('value="after:'),
            "after_options_bytes": sum(len(m.encode()) for m in _AFTER.findall(page)),
            "p50_ms": percentile(times, 50),
            "p99_ms": percentile(times, 99),
            "max_ms": times[-1],
        }
    finally:
        await client.aclose()


# -- 4. moves to viewers ------------------------------------------------------------------------


def plan_moves(board: dict, moves: int) -> list[dict]:
    """The moves, decided up front (see the module's docstring): each card moves at most
    once, so its version after the move (2) appears only once its move has committed, and
    no move can be refused as stale for an earlier one still in flight."""
    from tables.boards import place

    cols = board["columns"]
    a, b = cols[0]["id"], cols[1]["id"]
    order = {c["id"]: [t for t, _ in c["tickets"]] for c in (cols[0], cols[1])}
    version = {t: v for c in (cols[0], cols[1]) for t, v in c["tickets"]}
    moved: set[int] = set()
    plan = []
    for k in range(moves):
        src, dst = (a, b) if k % 2 == 0 else (b, a)
        card = next((t for t in reversed(order[src]) if t not in moved), None)
        if card is None:
            raise RuntimeError(
                f"only {k} moves fit: a card moves once, and the first two columns "
                f"hold {len(version)} cards (use more --cards or fewer --moves)"
            )
        rest = order[dst]
        if k % 3 == 0 or not rest:
            position, after = "top", None
        elif k % 3 == 1:
            after = rest[len(rest) // 2]
            position = f"after:{after}"
        else:
            position, after = "bottom", rest[-1]
        order[src] = [t for t in order[src] if t != card]
        order[dst], _ = place(order[dst], card, after)
        plan.append({"ticket": card, "version": version[card], "column": dst, "position": position})
        moved.add(card)
    return plan


def viewer_process(conn: Any) -> None:
    """A client process holding the viewers (spawned; talks over a Pipe):
    parent -> child: config dict, then ("stop",);
    child -> parent: ("connected", n_ok, n_failed, first_error), ("done", monotonic),
    ("results", arrivals bytes, stats dict)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if not conn.poll(60):
        return
    cfg = conn.recv()
    try:
        asyncio.run(_viewers(conn, cfg))
    except Exception as exc:  # tell the parent rather than leave it waiting
        with contextlib.suppress(OSError):
            conn.send(("error", repr(exc)))
    finally:
        conn.close()


async def _viewers(conn: Any, cfg: dict) -> None:
    import viewers

    class BoardPool(viewers.Pool):
        """Moves are recognised by (card, version after the move) in an event's cards."""

        def __init__(self, cfg: dict) -> None:
            super().__init__(cfg)
            self.expect = {(t, v): k for k, (t, v) in enumerate(cfg["expect"])}
            self.sizes: dict[str, tuple[int, int, int]] = {}  # id -> (bytes, cards, mask)

        def learn_event(self, event_id: bytes, frame: bytes) -> int:
            mask = 0
            pairs = _CARD.findall(frame)
            for tid, ver in pairs:
                k = self.expect.get((int(tid), int(ver)))
                if k is not None:
                    mask |= 1 << k
            self.event_masks[event_id] = mask
            # the whole message: "id: <id>" + frame (from the id line's "\n") + "\n\n"
            self.sizes[event_id.decode()] = (4 + len(event_id) + len(frame) + 2, len(pairs), mask)
            return mask

    pool = BoardPool(cfg)
    try:
        try:
            await viewers._open_all(pool, 64, cfg["connect_timeout"])
        except TimeoutError:
            pool.first_error = pool.first_error or "connect phase timed out"
        conn.send(("connected", pool.connected, pool.n - pool.connected, pool.first_error))
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_reader(conn.fileno(), stop.set)
        done_task = asyncio.ensure_future(pool.all_done.wait())
        stop_task = asyncio.ensure_future(stop.wait())
        await asyncio.wait(
            {done_task, stop_task}, timeout=cfg["lifetime"], return_when=asyncio.FIRST_COMPLETED
        )
        if done_task.done():
            conn.send(("done", time.monotonic()))
            await asyncio.wait_for(stop.wait(), cfg["lifetime"])
        done_task.cancel()
        loop.remove_reader(conn.fileno())
        with contextlib.suppress(EOFError, OSError):
            conn.recv()  # the ("stop",)
        stats = {
            "connected": pool.connected,
            "lost_connections": pool.lost_connections,
            "ended_by_server": pool.ended_by_server,
            "bytes_in": pool.bytes_in,
            "messages_in": pool.messages_in,
            "viewers_incomplete": sum(1 for v in pool.viewers if v.seen != pool.full_mask),
            "messages_per_viewer": sorted(len(ids) for ids in pool.trace or []),
            "events": pool.sizes,
        }
        conn.send(("results", pool.arrivals.tobytes(), stats))
    finally:
        pool.stopping = True
        for viewer in pool.viewers:
            if viewer.transport is not None:
                viewer.transport.abort()
        await asyncio.sleep(0)


def _expect(pipe: Any, kind: str, timeout: float) -> tuple:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pipe.poll(min(1.0, max(0.0, deadline - time.monotonic()))):
            message = pipe.recv()
            if message[0] == kind:
                return message
            if message[0] == "error":
                raise RuntimeError(f"viewer process failed: {message[1]}")
    raise TimeoutError(f"no {kind!r} from the viewer process within {timeout:.0f} s")


async def _page_of(url: str, board_id: int) -> tuple[str, str]:
    """alice's cookies and the stream path, read off the board page."""
    client = await signed_in_client(url, "alice")
    try:
        page = await client.get(f"/s/{SITE}/boards/{board_id}")
        assert page.status_code == 200, page.status_code
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        return cookie, stream_path_of(page.text)
    finally:
        await client.aclose()


async def _post_moves(url: str, board_id: int, plan: list[dict], rate: float) -> dict:
    """bob sends the planned moves open-loop at `rate`, as htmx does."""
    client = await signed_in_client(url, "bob", timeout=LOST_AFTER)
    n = len(plan)
    sent, answered, status, size = [0.0] * n, [0.0] * n, [0] * n, [0] * n
    errors: dict[str, int] = {}
    try:
        token = client.cookies["csrftoken"]
        headers = {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": token}
        base = f"/s/{SITE}/boards/{board_id}/tickets"

        async def one(k: int, move: dict) -> None:
            form = {
                "csrftoken": token,
                "version": str(move["version"]),
                "column": str(move["column"]),
                "position": move["position"],
            }
            sent[k] = time.monotonic()
            try:
                r = await client.post(f"{base}/{move['ticket']}/move", data=form, headers=headers)
                status[k], size[k] = r.status_code, len(r.content)
                if r.status_code != 200:
                    key = f"{r.status_code}: {r.text[:120]!r}"
                    errors[key] = errors.get(key, 0) + 1
            except Exception as exc:  # counted and shown, the run goes on
                status[k] = -1
                errors[repr(exc)[:120]] = errors.get(repr(exc)[:120], 0) + 1
            answered[k] = time.monotonic()

        start = time.monotonic() + 0.05
        tasks = []
        for k, move in enumerate(plan):
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(k, move)))
        await asyncio.wait(tasks, timeout=LOST_AFTER + 5)
    finally:
        await client.aclose()
    return {"sent": sent, "answered": answered, "status": status, "size": size, "errors": errors}


async def _versions(db_name: str, board_id: int) -> dict[int, int]:
    import asyncpg

    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + db_name
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT id, version FROM ticket WHERE board = $1", board_id)
    finally:
        await conn.close()
    return {r["id"]: r["version"] for r in rows}


def live_phase(stack: Stack, board: dict, args: argparse.Namespace) -> dict:
    plan = plan_moves(board, args.moves)
    cookie, path = asyncio.run(_page_of(stack.url, board["id"]))
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=viewer_process, args=(child,), daemon=True)
    proc.start()
    child.close()
    connect_timeout = 30 + args.viewers / 50
    result: dict[str, Any] = {"viewers": args.viewers, "moves": args.moves, "rate": args.rate}
    try:
        parent.send(
            {
                "host": "127.0.0.1",
                "port": stack.port,
                "path": path,
                "cookie": cookie,
                "viewers": args.viewers,
                "posts": len(plan),
                "expect": [(m["ticket"], m["version"] + 1) for m in plan],
                "trace": True,  # every event id each viewer got: messages per viewer
                "connect_timeout": connect_timeout,
                "lifetime": connect_timeout + len(plan) / args.rate + LOST_AFTER + 60,
            }
        )
        _, ok, failed, first_error = _expect(parent, "connected", connect_timeout + 30)
        result["connected"] = ok
        if failed:
            print(f"  ! {failed} streams did not open: {first_error}", file=sys.stderr)
        time.sleep(0.5)
        cpu0 = stack.cpu_seconds()
        moves = asyncio.run(_post_moves(stack.url, board["id"], plan, args.rate))
        deadline = max(moves["sent"]) + LOST_AFTER
        done_at = None
        while time.monotonic() < deadline:
            if parent.poll(0.01):
                message = parent.recv()
                if message[0] == "done":
                    done_at = message[1]
                    break
                if message[0] == "error":
                    raise RuntimeError(f"viewer process failed: {message[1]}")
        result["server_cpu_s"] = stack.cpu_seconds() - cpu0
        parent.send(("stop",))
        _, raw, stats = _expect(parent, "results", 60)
    finally:
        parent.close()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)

    arrivals = array("d")
    arrivals.frombytes(raw)
    # A move counts once its change is in the database, answered or not (a POST that
    # timed out may still have committed); a refused one (409, 422) is a POST error only.
    versions = asyncio.run(_versions(stack.db_name, board["id"]))
    ok_moves = [k for k, m in enumerate(plan) if versions.get(m["ticket"], 0) > m["version"]]
    latencies, lost = [], 0
    n = len(plan)
    for v in range(result["connected"]):
        for k in ok_moves:
            at = arrivals[v * n + k]
            if at == 0.0 or at - moves["sent"][k] > LOST_AFTER:
                lost += 1
            else:
                latencies.append((at - moves["sent"][k]) * 1000)
    latencies.sort()
    posts = sorted((a - s) * 1000 for s, a in zip(moves["sent"], moves["answered"], strict=True))
    answers = sorted(a for a in moves["answered"] if a)
    events = stats.pop("events")
    per_viewer = stats.pop("messages_per_viewer") or [0]
    move_events = [size for size, _cards, mask in events.values() if mask]
    move_cards = [cards for _size, cards, mask in events.values() if mask]
    planned: dict[int, int] = {}
    for m in plan:
        planned[m["ticket"]] = m["version"] + 1
    result.update(
        {
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "max_ms": latencies[-1] if latencies else float("nan"),
            "deliveries": len(latencies),
            "lost": lost,
            "applied": len(ok_moves),
            "post_errors": sum(1 for s in moves["status"] if s != 200),
            "post_error_kinds": moves["errors"],
            "post_p50_ms": percentile(posts, 50),
            "post_p99_ms": percentile(posts, 99),
            "moves_per_s": (len(answers) - 1) / (answers[-1] - answers[0])
            if len(answers) > 1
            else 0.0,
            "all_delivered_after_s": done_at - min(moves["sent"]) if done_at else None,
            "events": len(events),
            "messages_per_viewer_min": per_viewer[0],
            "messages_per_viewer_p50": percentile(per_viewer, 50),
            "streams_cut_off": stats["ended_by_server"] + stats["lost_connections"],
            "move_events": len(move_events),
            "event_bytes_p50": statistics.median(move_events) if move_events else 0,
            "event_bytes_min": min(move_events, default=0),
            "event_bytes_max": max(move_events, default=0),
            "event_cards_p50": statistics.median(move_cards) if move_cards else 0,
            "post_answer_bytes_p50": statistics.median(s for s in moves["size"] if s)
            if any(moves["size"])
            else 0,
            "server_cpu_ms_per_move": result["server_cpu_s"] / max(1, len(ok_moves)) * 1000,
            "versions_as_planned": all(versions.get(t) == v for t, v in planned.items()),
            "client": stats,
        }
    )
    return result


# -- reporting ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=200, help="cards on the measured board")
    parser.add_argument("--comments", type=int, default=40, help="comments on that board")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[20, 200],
        help="boards of these many cards for the query count and render (--cards is added)",
    )
    parser.add_argument("--renders", type=int, default=200, help="page GETs per board")
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--moves", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="moves per second")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 renders, 20 moves")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--budget", type=float, default=600, help="seconds for the whole run")
    args = parser.parse_args(argv)
    if args.quick:
        args.renders, args.moves = min(args.renders, 20), min(args.moves, 20)
    if args.cards < 8:
        parser.error("--cards must be at least 8")
    install_signal_handlers(args.budget)
    machine, code = machine_description(), code_version()
    print(f"machine: {machine}\ncode: {code}\nload: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    started = time.monotonic()

    stack = Stack(workers=args.workers)
    # The in-process app and the seeding use the bench database and namespace.
    database_url = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + stack.db_name
    os.environ.update(
        DATABASE_URL=database_url, REDIS_URL=REDIS_URL, REDIS_NAMESPACE=stack.namespace
    )
    report: dict[str, Any] = {"machine": machine, "code": code, "args": vars(args)}
    with stack:
        print("-- seeding, counting queries in-process", file=sys.stderr, flush=True)
        seeded = asyncio.run(
            asyncio.wait_for(
                seed_and_count(args.sizes, args.cards, args.comments, min(args.renders, 50)),
                300,
            )
        )
        boards = seeded["boards"]
        report["boards"] = {}
        for n, info in sorted(boards.items()):
            print(f"-- render, {n} cards", file=sys.stderr, flush=True)
            requests = args.renders if n == args.cards else min(args.renders, 50)
            render = asyncio.run(render_phase(stack.url, info["id"], requests))
            report["boards"][n] = {
                "cards": n,
                "comments": info["comments"],
                "queries": info["queries"],
                "statements": info["statements"],
                "inprocess_p50_ms": info["inprocess_p50_ms"],
                "inprocess_p99_ms": info["inprocess_p99_ms"],
                **render,
            }
        print(
            f"-- moves: {args.viewers} viewers, {args.moves} moves at {args.rate}/s",
            file=sys.stderr,
            flush=True,
        )
        live = live_phase(stack, boards[args.cards], args)
        report["live"] = live
        report["server_errors"] = server_errors(stack)
        assert stack.server is not None
        log = stack.server.log_tail(2_000_000)
        report["render_lock_timeouts"] = log.count("not acquired in time")
        if report["server_errors"] or live["post_errors"] or live["lost"]:
            stack.keep_log = True

    # -- the summary ----------------------------------------------------------------------------
    print()
    print(
        "| board | queries per GET | p50 | p99 | max | in-process p50 | page | #columns "
        "| after: options |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in report["boards"].values():
        q = "/".join(map(str, r["queries"]))
        print(
            f"| {r['cards']} cards, {r['comments']} comments | {q} | {ms(r['p50_ms'])} | "
            f"{ms(r['p99_ms'])} | {ms(r['max_ms'])} | {ms(r['inprocess_p50_ms'])} | "
            f"{kib(r['page_bytes'])} | {kib(r['columns_bytes'])} | {r['after_options']:,} "
            f"({kib(r['after_options_bytes'])}) |"
        )
    big = report["boards"][args.cards]
    print()
    print(
        f"moves: {live['connected']}/{args.viewers} viewers, {args.moves} moves at "
        f"{args.rate:g}/s ({live['moves_per_s']:.1f}/s answered): latency to every viewer "
        f"p50 {ms(live['p50_ms'])}, p99 {ms(live['p99_ms'])}, max {ms(live['max_ms'])}; "
        f"lost {live['lost']} of {live['deliveries'] + live['lost']}; "
        f"{live['applied']} moves applied; POST errors {live['post_errors']} "
        f"{live['post_error_kinds'] or ''}"
    )
    print(
        f"  POST answer p50 {ms(live['post_p50_ms'])}, p99 {ms(live['post_p99_ms'])}; "
        f"server CPU {live['server_cpu_ms_per_move']:.0f} ms per move"
    )
    print(
        f"  per move, to each viewer: {kib(live['event_bytes_p50'])} (p50; "
        f"{kib(live['event_bytes_min'])} to {kib(live['event_bytes_max'])}), "
        f"{live['event_cards_p50']:.0f} cards of {args.cards}; the whole page is "
        f"{kib(big['page_bytes'])} ({live['event_bytes_p50'] / big['page_bytes']:.0%}), "
        f"its #columns {kib(big['columns_bytes'])}; the mover's answer "
        f"{kib(live['post_answer_bytes_p50'])}"
    )
    print(
        f"  messages per viewer: p50 {live['messages_per_viewer_p50']}, min "
        f"{live['messages_per_viewer_min']} of {live['events']} events; streams the server "
        f"cut off: {live['streams_cut_off']} (not reconnected here)"
    )
    print(
        f"  events {live['events']} ({live['move_events']} with a move), versions as planned: "
        f"{live['versions_as_planned']}, client {live['client']}"
    )
    if report["render_lock_timeouts"]:
        print(
            f"  ! the server logged {report['render_lock_timeouts']} render-lock timeouts "
            "(waited 10 s for a topic's lock, published anyway)"
        )
    if report["server_errors"]:
        print(f"  ! server tracebacks: {report['server_errors'][:5]}")
    print(f"({time.monotonic() - started:.0f} s in all)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
