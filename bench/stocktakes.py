"""Stocktakes benchmark: a 1,000-line stocktake's populate, its counting page, and line saves
to many counters.

    .venv/bin/python bench/stocktakes.py [--lines 1000] [--small 100] [--renders 100]
        [--viewers 50] [--saves 50] [--rate 5] [--workers 1] [--json FILE] [--quick]

One throwaway PostgreSQL database and Redis namespace and one real `python main.py`
server (bench/common.py `Stack`), torn down afterwards whatever happens; every phase has
a timeout and `--budget` bounds the whole run; traffic goes to 127.0.0.1 only.

1. Setup, in-process against the bench database (as bench/boards.py seeds): at killarney
   (erin is its staff), the demo's ~260 items are made inactive, so a stocktake's lines
   are exactly the bench's items; then `--small` items are inserted in bulk (`Item.insert`,
   500 rows per INSERT; unique SKUs `BEN0000`…, 8 categories round-robin, 4 of them with
   sub-units: bottle of 10 tenths, keg of 88 pints, wine bottle of 5 glasses, box of 12
   packets), a stocktake made with `create_stocktake` and populated with `populate` (the
   `--small` one); then the rest up to `--lines` items, and two more stocktakes: one
   populated in-process, one left for the POST (step 4). Populate in-process is timed
   from the start of its write transaction to its commit (`populate()` itself: the lock,
   the read of the items, INSERTs of 500 lines, the activity line; no progress callback).
2. Query count and in-process time: the app (`main.create_app()`) served in this process
   through `httpx.ASGITransport`, erin signed in, with Piccolo's
   `PostgresEngine.run_querystring` wrapped to count calls (every Piccolo query and
   piccolo_api's session lookup go through it; a page GET opens no transaction), so the
   count is the SQL statements one GET of the counting page
   (`/s/killarney/stocktakes/{id}`) sends. The same count for `--small` and `--lines`
   lines means no query per line. Also counted and timed: one line save (`POST
   …/lines/{line}/count`, as htmx sends it) on each stocktake — the write, the activity
   line, and the render of the line + progress for the broadcast.
3. Render: GET the counting page of each stocktake `--renders` times (at most 30 for the
   small one) sequentially over one keep-alive connection to the real server as erin,
   after 10 warm-up GETs, timed at the client from request out to body in (loopback adds
   ~0.1 ms): p50 / p99 / max, the page's bytes and bytes per line.
4. Populate through the app: erin POSTs `…/stocktakes/{id}/populate` (htmx headers) on
   the third stocktake against the real server: the answer time at the client (the
   transaction with its progress indicators, then the broadcast of the head and the word
   to refetch the lines, which the answer carries too) and the answer's bytes.
5. Saves: `--viewers` SSE streams open on the big stocktake
   (`/s/killarney/stocktakes/{id}/live?cursor=…`, read off the page as erin's browser
   gets it: every query parameter but `conn`, so filters would be kept — the page has
   none here; not in presence) from one client process of raw asyncio protocols
   (bench/viewers.py's `Viewer`). Then erin sends `--saves` real htmx line counts (`POST
   …/lines/{line}/count`, HX-Request + HX-Request-Type: partial + X-CSRFToken, form
   fields csrftoken, full, partial (for items with sub-units), version, client_id)
   open-loop at `--rate` per second (save k leaves at start + k/rate), each on a
   different uncounted line spread over the categories, from the version read after
   setup. A save *arrives* at a viewer with the first SSE message whose line
   `line-<id>` carries `data-version="<version + 1>"`; an event's lines are parsed once
   per event (every viewer gets the same bytes), per viewer only its `id:` line is read.
   Latency = arrival (CLOCK_MONOTONIC in the client process) minus the moment just
   before the POST left. Lost: a (save, viewer) pair not delivered within 30 s, of a save
   that is in the database afterwards. Bytes per save: the SSE message (`id:` + `data:`
   lines) of each save's event as one viewer receives it — the line's partial, then the
   progress figures (overall and the line's category) — against the whole page.
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
from html import unescape
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from common import (
    PG_ADMIN_DSN,
    REDIS_URL,
    Stack,
    code_version,
    install_signal_handlers,
    kib,
    machine_description,
    ms,
    percentile,
    server_errors,
    signed_in_client,
)

SITE = "killarney"
USER = "erin"  # staff at killarney
LOST_AFTER = 30.0  # s: a save not at a viewer by then is lost
WARMUP_RENDERS = 10
PERIODS = {"small": ("2031-01-01", "2031-01-31"), "big": ("2031-02-01", "2031-02-28")}
PERIODS["posted"] = ("2031-03-01", "2031-03-31")
# (category, unit, sub-units, sub-unit, unit cost in ten-thousandths)
CATEGORIES = [
    ("Spirits", "bottle", 10, "tenth", 320_000),
    ("Beer kegs", "keg", 88, "pint", 1_850_000),
    ("Bottled beer", "bottle", 1, "", 18_500),
    ("Wine", "bottle", 5, "glass", 145_000),
    ("Minerals", "bottle", 1, "", 9_000),
    ("Food", "kg", 1, "", 112_500),
    ("Cleaning", "each", 1, "", 64_000),
    ("Snacks", "box", 12, "packet", 150_000),
]
_LINE = re.compile(rb'id="line-(\d+)"[^>]*?data-version="(\d+)"')
_STREAM_URL = re.compile(r'hx-sse:connect="([^"]+)"')
_PROGRESS = b'hx-target="#progress"'


def page(stocktake_id: int) -> str:
    return f"/s/{SITE}/stocktakes/{stocktake_id}"


def items_of(start: int, stop: int, site: int) -> list[Any]:
    from tables.stocktakes import Item

    rows = []
    for i in range(start, stop):
        category, unit, sub_units, sub_unit, cost = CATEGORIES[i % len(CATEGORIES)]
        rows.append(
            Item(
                site=site,
                sku=f"BEN{i:04d}",
                name=f"{category} bench item {i:04d}",
                category=category,
                unit=unit,
                sub_units=sub_units,
                sub_unit=sub_unit,
                unit_cost=cost + (i * 737) % 50_000,
                active=True,
            )
        )
    return rows


def count_fields(k: int, line: dict) -> dict[str, str]:
    """A plausible count: whole units, plus a partial for items with sub-units."""
    fields = {"full": str(1 + k % 9)}
    if line["sub_units"] > 1:
        fields["partial"] = str(k % line["sub_units"])
    return fields


# -- 1. setup and 2. query count, in-process ---------------------------------------------------


async def seed_and_count(small: int, big: int, requests: int) -> dict:
    from piccolo.apps.user.tables import BaseUser
    from piccolo.engine import engine_finder

    from main import create_app
    from tables.base import Actor, write_tx
    from tables.people import Site
    from tables.stocktakes import CHUNK, Item, create_stocktake, populate, stocktake_view

    app = create_app()
    db = engine_finder()
    out: dict[str, Any] = {"stocktakes": {}}
    async with app.router.lifespan_context(app):
        site = (await Site.select(Site.id).where(Site.slug == SITE).first())["id"]
        erin = await BaseUser.select(BaseUser.id).where(BaseUser.username == USER).first()
        actor = Actor(erin["id"], "Erin O'Sullivan")
        out["demo_items_deactivated"] = await Item.count().where(
            (Item.site == site) & Item.active.eq(True)
        )
        await Item.update({Item.active: False}).where(Item.site == site)

        async def add_items(start: int, stop: int) -> float:
            t = time.perf_counter()
            rows = items_of(start, stop, site)
            for i in range(0, len(rows), CHUNK):
                await Item.insert(*rows[i : i + CHUNK])
            return (time.perf_counter() - t) * 1000

        async def make(kind: str, fill: bool) -> dict:
            start, end = PERIODS[kind]
            async with write_tx():
                made = await create_stocktake(
                    site, {"period_start": start, "period_end": end, "blind": ""}, actor
                )
            info: dict[str, Any] = {"id": made["id"]}
            if fill:
                t = time.perf_counter()
                async with write_tx():
                    info["added"] = await populate(site, made["id"], actor)
                info["populate_ms"] = (time.perf_counter() - t) * 1000
            return info

        out["items_insert_ms"] = await add_items(0, small)
        out["stocktakes"][small] = await make("small", True)
        out["items_insert_ms"] += await add_items(small, big)
        out["stocktakes"][big] = await make("big", True)
        out["posted"] = await make("posted", False)
        for n, info in out["stocktakes"].items():
            view = await stocktake_view(site, info["id"])
            if view.total != n:
                raise RuntimeError(f"the stocktake of {n} lines has {view.total}")
            info["categories"] = len(view.categories)
            info["lines"] = [
                {"id": line.id, "version": line.version, "sub_units": line.sub_units}
                for line in view.lines
            ]

        # -- count queries per page GET and per save -----------------------------------------
        counted: list[str] = []
        original = type(db).run_querystring

        async def counting(self, querystring, in_pool=True):
            counted.append(str(querystring))
            return await original(self, querystring, in_pool)

        type(db).run_querystring = counting  # type: ignore[method-assign]
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1", timeout=60
            ) as c:
                await c.get("/login")
                form = {"username": USER, "password": "demo", "csrftoken": c.cookies["csrftoken"]}
                assert (await c.post("/login", data=form)).status_code == 303
                token = c.cookies["csrftoken"]
                headers = {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": token}
                for n, info in out["stocktakes"].items():
                    url = page(info["id"])
                    for _ in range(2):  # warm-up: templates, the layout cache
                        assert (await c.get(url)).status_code == 200
                    per_request, times = [], []
                    for _ in range(requests if n == small else max(3, requests // 3)):
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
                    info["inprocess_max_ms"] = times[-1]
                    # One save, as htmx posts it (the last line: step 5 leaves it alone).
                    line = info["lines"][-1]
                    data = {
                        "csrftoken": token,
                        "version": str(line["version"]),
                        "client_id": f"bench-inprocess-{n}",
                        **count_fields(0, line),
                    }
                    counted.clear()
                    t = time.perf_counter()
                    r = await c.post(f"{url}/lines/{line['id']}/count", data=data, headers=headers)
                    info["save_inprocess_ms"] = (time.perf_counter() - t) * 1000
                    assert r.status_code == 200, (r.status_code, r.text[:300])
                    info["save_queries"] = len(counted)
                    info["save_statements"] = [s[:160] for s in counted]
                    info["save_answer_bytes"] = len(r.content)
        finally:
            type(db).run_querystring = original  # type: ignore[method-assign]
    return out


# -- 3. render over HTTP ------------------------------------------------------------------------


async def render_phase(url: str, stocktake_id: int, requests: int) -> dict:
    client = await signed_in_client(url, USER, timeout=60.0)
    try:
        path = page(stocktake_id)
        async with asyncio.timeout(60 + requests * 3):
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
        text = r.text
        lines = text.count('<li id="line-')
        return {
            "requests": requests,
            "page_bytes": len(r.content),
            "lines_on_page": lines,
            "bytes_per_line": len(r.content) / max(1, lines),
            "forms_on_page": text.count("<form"),
            "p50_ms": percentile(times, 50),
            "p99_ms": percentile(times, 99),
            "max_ms": times[-1],
        }
    finally:
        await client.aclose()


# -- 4. populate through the app ----------------------------------------------------------------


async def populate_phase(url: str, stocktake_id: int) -> dict:
    client = await signed_in_client(url, USER, timeout=120.0)
    try:
        token = client.cookies["csrftoken"]
        headers = {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": token}
        t = time.perf_counter()
        r = await client.post(
            f"{page(stocktake_id)}/populate", data={"csrftoken": token}, headers=headers
        )
        took = (time.perf_counter() - t) * 1000
        return {
            "status": r.status_code,
            "ms": took,
            "answer_bytes": len(r.content),
            "lines_in_answer": r.text.count('<li id="line-'),
            "notice": re.findall(r"Added [\d,]+ lines", r.text)[:1],
        }
    finally:
        await client.aclose()


# -- 5. saves to viewers ------------------------------------------------------------------------


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

    class LinePool(viewers.Pool):
        """Saves are recognised by (line, version after the save) in an event's lines."""

        def __init__(self, cfg: dict) -> None:
            super().__init__(cfg)
            self.expect = {(t, v): k for k, (t, v) in enumerate(cfg["expect"])}
            # id -> (message bytes, bytes up to the progress partials, lines, mask)
            self.sizes: dict[str, tuple[int, int, int, int]] = {}

        def learn_event(self, event_id: bytes, frame: bytes) -> int:
            mask = 0
            pairs = _LINE.findall(frame)
            for lid, ver in pairs:
                k = self.expect.get((int(lid), int(ver)))
                if k is not None:
                    mask |= 1 << k
            self.event_masks[event_id] = mask
            split = frame.find(_PROGRESS)
            split = len(frame) if split < 0 else frame.rfind(b"<hx-partial", 0, split)
            # the whole message: "id: <id>" + frame (from the id line's "\n") + "\n\n"
            size = 4 + len(event_id) + len(frame) + 2
            self.sizes[event_id.decode()] = (size, 4 + len(event_id) + split, len(pairs), mask)
            return mask

    pool = LinePool(cfg)
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
        stop_task.cancel()
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


def stream_path(page_html: str) -> str:
    """The stream URL the page embeds, with its cursor and any filters but not its `conn`
    (a bench viewer is not in presence)."""
    match = _STREAM_URL.search(page_html)
    if match is None:
        raise RuntimeError("the counting page embeds no hx-sse:connect URL")
    url = httpx.URL(unescape(match.group(1)))
    params = {k: v for k, v in url.params.items() if k != "conn"}
    if "cursor" not in params:
        raise RuntimeError(f"the stream URL carries no cursor: {url}")
    return url.copy_with(params=params).raw_path.decode()


async def _page_of(url: str, stocktake_id: int) -> tuple[str, str]:
    """erin's cookies and the stream path, read off the counting page."""
    client = await signed_in_client(url, USER, timeout=60.0)
    try:
        r = await client.get(page(stocktake_id))
        assert r.status_code == 200, r.status_code
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        return cookie, stream_path(r.text)
    finally:
        await client.aclose()


async def _post_saves(url: str, stocktake_id: int, plan: list[dict], rate: float) -> dict:
    """erin sends the planned counts open-loop at `rate`, as htmx does."""
    client = await signed_in_client(url, USER, timeout=LOST_AFTER)
    n = len(plan)
    sent, answered, status, size = [0.0] * n, [0.0] * n, [0] * n, [0] * n
    errors: dict[str, int] = {}
    try:
        token = client.cookies["csrftoken"]
        headers = {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": token}
        base = f"{page(stocktake_id)}/lines"

        async def one(k: int, save: dict) -> None:
            form = {
                "csrftoken": token,
                "version": str(save["version"]),
                "client_id": f"bench-{k:04d}",
                **save["fields"],
            }
            sent[k] = time.monotonic()
            try:
                r = await client.post(f"{base}/{save['line']}/count", data=form, headers=headers)
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
        for k, save in enumerate(plan):
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(k, save)))
        await asyncio.wait(tasks, timeout=LOST_AFTER + 5)
    finally:
        await client.aclose()
    return {"sent": sent, "answered": answered, "status": status, "size": size, "errors": errors}


async def _versions(db_name: str, ids: list[int]) -> dict[int, int]:
    import asyncpg

    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + db_name
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT id, version FROM stocktake_line WHERE id = ANY($1)", ids)
    finally:
        await conn.close()
    return {r["id"]: r["version"] for r in rows}


def plan_saves(lines: list[dict], saves: int) -> list[dict]:
    """`saves` different uncounted lines spread over the stocktake (and its categories)."""
    todo = [line for line in lines[:-1] if line["version"] == 1]  # the last was counted
    if saves > len(todo):
        raise RuntimeError(f"only {len(todo)} uncounted lines for {saves} saves")
    step = len(todo) / saves
    chosen = [todo[int(k * step + step / 3)] for k in range(saves)]
    return [
        {"line": line["id"], "version": line["version"], "fields": count_fields(k, line)}
        for k, line in enumerate(chosen)
    ]


def live_phase(stack: Stack, stocktake: dict, args: argparse.Namespace) -> dict:
    plan = plan_saves(stocktake["lines"], args.saves)
    cookie, path = asyncio.run(_page_of(stack.url, stocktake["id"]))
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=viewer_process, args=(child,), daemon=True)
    proc.start()
    child.close()
    connect_timeout = 30 + args.viewers / 50
    result: dict[str, Any] = {
        "viewers": args.viewers,
        "saves": args.saves,
        "rate": args.rate,
        "path": path,
    }
    try:
        parent.send(
            {
                "host": "127.0.0.1",
                "port": stack.port,
                "path": path,
                "cookie": cookie,
                "viewers": args.viewers,
                "posts": len(plan),
                "expect": [(s["line"], s["version"] + 1) for s in plan],
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
        saves = asyncio.run(_post_saves(stack.url, stocktake["id"], plan, args.rate))
        deadline = max(saves["sent"]) + LOST_AFTER
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
    # A save counts once it is in the database, answered or not.
    versions = asyncio.run(_versions(stack.db_name, [s["line"] for s in plan]))
    ok_saves = [k for k, s in enumerate(plan) if versions.get(s["line"], 0) > s["version"]]
    latencies, lost = [], 0
    n = len(plan)
    for v in range(result["connected"]):
        for k in ok_saves:
            at = arrivals[v * n + k]
            if at == 0.0 or at - saves["sent"][k] > LOST_AFTER:
                lost += 1
            else:
                latencies.append((at - saves["sent"][k]) * 1000)
    latencies.sort()
    posts = sorted((a - s) * 1000 for s, a in zip(saves["sent"], saves["answered"], strict=True))
    answers = sorted(a for a in saves["answered"] if a)
    events = stats.pop("events")
    save_events = [e for e in events.values() if e[3]]
    sizes = [e[0] for e in save_events]
    line_parts = [e[1] for e in save_events]
    result.update(
        {
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "max_ms": latencies[-1] if latencies else float("nan"),
            "deliveries": len(latencies),
            "lost": lost,
            "applied": len(ok_saves),
            "post_errors": sum(1 for s in saves["status"] if s != 200),
            "post_error_kinds": saves["errors"],
            "post_p50_ms": percentile(posts, 50),
            "post_p99_ms": percentile(posts, 99),
            "saves_per_s": (len(answers) - 1) / (answers[-1] - answers[0])
            if len(answers) > 1
            else 0.0,
            "all_delivered_after_s": done_at - min(saves["sent"]) if done_at else None,
            "events": len(events),
            "save_events": len(save_events),
            "event_bytes_p50": statistics.median(sizes) if sizes else 0,
            "event_bytes_min": min(sizes, default=0),
            "event_bytes_max": max(sizes, default=0),
            "event_line_bytes_p50": statistics.median(line_parts) if line_parts else 0,
            "event_lines_max": max((e[2] for e in save_events), default=0),
            "post_answer_bytes_p50": statistics.median(s for s in saves["size"] if s)
            if any(saves["size"])
            else 0,
            "server_cpu_ms_per_save": result["server_cpu_s"] / max(1, len(ok_saves)) * 1000,
            "streams_cut_off": stats["ended_by_server"] + stats["lost_connections"],
            "client": stats,
        }
    )
    return result


# -- reporting ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1000, help="lines of the big stocktake")
    parser.add_argument("--small", type=int, default=100, help="lines of the small one")
    parser.add_argument("--renders", type=int, default=100, help="page GETs of the big one")
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--saves", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5.0, help="saves per second")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 renders, 10 saves")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--budget", type=float, default=300, help="seconds for the whole run")
    args = parser.parse_args(argv)
    if args.quick:
        args.renders, args.saves = min(args.renders, 20), min(args.saves, 10)
    if not 8 <= args.small < args.lines or args.saves > args.lines // 2:
        parser.error("need 8 <= --small < --lines and --saves <= --lines / 2")
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
        print("-- seeding, populating, counting queries in-process", file=sys.stderr, flush=True)
        seeded = asyncio.run(
            asyncio.wait_for(seed_and_count(args.small, args.lines, min(args.renders, 15)), 240)
        )
        takes = seeded["stocktakes"]
        report["seed"] = {k: v for k, v in seeded.items() if k != "stocktakes"}
        report["stocktakes"] = {}
        for n, info in sorted(takes.items()):
            print(f"-- render, {n} lines", file=sys.stderr, flush=True)
            requests = args.renders if n == args.lines else min(args.renders, 30)
            render = asyncio.run(render_phase(stack.url, info["id"], requests))
            report["stocktakes"][n] = {
                "lines": n,
                **{k: v for k, v in info.items() if k != "lines"},
                **render,
            }
        print("-- populate through the app", file=sys.stderr, flush=True)
        report["populate_post"] = asyncio.run(
            asyncio.wait_for(populate_phase(stack.url, seeded["posted"]["id"]), 150)
        )
        print(
            f"-- saves: {args.viewers} viewers, {args.saves} saves at {args.rate}/s",
            file=sys.stderr,
            flush=True,
        )
        live = live_phase(stack, takes[args.lines], args)
        report["live"] = live
        report["server_errors"] = server_errors(stack)
        if report["server_errors"] or live["post_errors"] or live["lost"]:
            stack.keep_log = True

    # -- the summary ----------------------------------------------------------------------------
    print()
    print(
        "| stocktake | populate (in-process) | queries per GET | p50 | p99 | max "
        "| in-process p50 | page | per line | queries per save | save in-process |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in report["stocktakes"].values():
        q = "/".join(map(str, r["queries"]))
        print(
            f"| {r['lines']:,} lines, {r['categories']} categories | {ms(r['populate_ms'])} | "
            f"{q} | {ms(r['p50_ms'])} | {ms(r['p99_ms'])} | {ms(r['max_ms'])} | "
            f"{ms(r['inprocess_p50_ms'])} | {kib(r['page_bytes'])} | "
            f"{r['bytes_per_line']:,.0f} B | {r['save_queries']} | "
            f"{ms(r['save_inprocess_ms'])} |"
        )
    big = report["stocktakes"][args.lines]
    p = report["populate_post"]
    print()
    print(
        f"populate POST ({args.lines:,} lines, real server): HTTP {p['status']} in "
        f"{ms(p['ms'])}, answer {kib(p['answer_bytes'])} ({p['lines_in_answer']} lines); "
        f"{report['seed']['demo_items_deactivated']} demo items made inactive first"
    )
    print(
        f"saves: {live['connected']}/{args.viewers} viewers, {args.saves} saves at "
        f"{args.rate:g}/s ({live['saves_per_s']:.1f}/s answered): latency to every viewer "
        f"p50 {ms(live['p50_ms'])}, p99 {ms(live['p99_ms'])}, max {ms(live['max_ms'])}; "
        f"lost {live['lost']} of {live['deliveries'] + live['lost']}; "
        f"{live['applied']} saves applied; POST errors {live['post_errors']} "
        f"{live['post_error_kinds'] or ''}"
    )
    print(
        f"  POST answer p50 {ms(live['post_p50_ms'])}, p99 {ms(live['post_p99_ms'])}; "
        f"server CPU {live['server_cpu_ms_per_save']:.0f} ms per save"
    )
    print(
        f"  per save, to each viewer: {live['event_bytes_p50']:,.0f} B (p50; "
        f"{live['event_bytes_min']:,} to {live['event_bytes_max']:,}; the line "
        f"{live['event_line_bytes_p50']:,.0f} B, the rest progress), at most "
        f"{live['event_lines_max']} line(s) per event; the whole page is "
        f"{kib(big['page_bytes'])} ({live['event_bytes_p50'] / big['page_bytes']:.2%}); "
        f"the counter's answer {live['post_answer_bytes_p50']:,.0f} B"
    )
    print(
        f"  events {live['events']} ({live['save_events']} with a save); streams the server "
        f"cut off: {live['streams_cut_off']}; client {live['client']}"
    )
    if report["server_errors"]:
        print(f"  ! server tracebacks: {report['server_errors'][:5]}")
    print(f"({time.monotonic() - started:.0f} s in all)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
