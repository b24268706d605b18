"""Drafts benchmark (issue 4): the page at realistic size, and add-parcel posts to viewers.

    python bench/drafts.py [--parcels 500] [--drafts 20] [--viewers 100] [--posts 60]

1. Render: the drafts page of a branch with `--parcels` parcels and `--drafts` drafts,
   served in-process on PostgreSQL (server time per request, the number of SQL queries).
2. Live: a real server on PostgreSQL + Redis with `--viewers` open drafts-page streams;
   one dispatcher adds parcels one POST at a time (session, CSRF, transaction, render
   once, publish). Reports posts per second and the latency from each POST leaving the
   client to its event reaching each viewer (p50 / p99 / max), and lost events.

It makes its own database and Redis namespace and removes them afterwards; every phase
has a timeout, and it talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN = uuid.uuid4().hex[:8]
DB = f"fbbench_drafts_{RUN}"
DATABASE_URL = ADMIN_DSN.rsplit("/", 1)[0] + "/" + DB
NAMESPACE = f"fbbench-{RUN}"
# Before anything imports piccolo_conf: the in-process part uses the bench database.
os.environ.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, REDIS_NAMESPACE=NAMESPACE)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


async def seed(parcels: int, drafts: int) -> None:
    """`parcels` more parcels at nairobi, spread over `drafts` destinations, each with a
    draft holding 5 of its parcels."""
    from datetime import timedelta

    from tables.base import Actor, write_tx
    from tables.drafts import Parcel, add_parcels
    from tables.people import Site

    site = (await Site.select(Site.id).where(Site.slug == "nairobi").first())["id"]
    actor = Actor(1, "Bench")
    towns = [f"Benchtown{i:02d}" for i in range(drafts)]
    async with write_tx(Parcel._meta.db):
        await Parcel.insert(
            *(
                Parcel(
                    site=site,
                    code=f"B-{i:05d}",
                    destination=towns[i % drafts],
                    description="Benchmark box",
                    weight_g=1000 + i,
                )
                for i in range(parcels)
            )
        )
    rows = await Parcel.select(Parcel.id, Parcel.destination).where(Parcel.code.like("B-%"))
    for town in towns:
        ids = [r["id"] for r in rows if r["destination"] == town][:5]
        async with write_tx(Parcel._meta.db):
            await add_parcels(site, ids, actor, timedelta(hours=24))


async def render_phase(requests: int) -> dict[str, float]:
    """Server time and query count of GET /s/nairobi/drafts, in-process."""
    import httpx
    from piccolo.engine import engine_finder

    from main import create_app

    app = create_app()
    db = engine_finder()
    queries: list[int] = [0]
    original = type(db).run_querystring

    async def counting(self, querystring, in_pool=True):
        queries[0] += 1
        return await original(self, querystring, in_pool)

    type(db).run_querystring = counting  # type: ignore[method-assign]
    timings: list[float] = []
    per_request: list[int] = []
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                await c.get("/login")
                token = c.cookies["csrftoken"]
                form = {"username": "alice", "password": "demo", "csrftoken": token}
                assert (await c.post("/login", data=form)).status_code == 303
                for _ in range(requests):
                    queries[0] = 0
                    started = time.perf_counter()
                    response = await c.get("/s/nairobi/drafts")
                    timings.append((time.perf_counter() - started) * 1000)
                    per_request.append(queries[0])
                    assert response.status_code == 200
                size = len(response.content)
    finally:
        type(db).run_querystring = original  # type: ignore[method-assign]
    return {
        "p50_ms": statistics.median(timings),
        "p99_ms": pct(timings, 99),
        "queries": statistics.median(per_request),
        "page_kb": size / 1024,
    }


async def live_phase(base_url: str, viewers: int, posts: int) -> dict[str, float]:
    """Open `viewers` streams; add parcels one by one; time each event to each viewer."""
    import httpx

    from tests.servers import post_form, signed_in_client

    poster = await signed_in_client(base_url, "bob")
    watcher = await signed_in_client(
        base_url,
        "alice",
        limits=httpx.Limits(max_connections=viewers + 10),
        timeout=httpx.Timeout(30.0, read=120.0),
    )
    page = await watcher.get("/s/nairobi/drafts")
    cursor = page.text.split("/s/nairobi/drafts/live?cursor=", 1)[1].split("&", 1)[0]
    codes = [f"B-{i:05d}" for i in range(100, 100 + posts * 4) if i % 20 >= 5][:posts]
    arrivals: dict[str, list[float]] = {code: [] for code in codes}
    ready = 0

    async def viewer() -> None:
        nonlocal ready
        seen: set[str] = set()
        async with watcher.stream("GET", f"/s/nairobi/drafts/live?cursor={cursor}") as stream:
            ready += 1
            buffer = ""
            async for chunk in stream.aiter_text():
                now = time.perf_counter()
                buffer += chunk
                blocks = buffer.split("\n\n")
                buffer = blocks.pop()
                for block in blocks:
                    for code in codes:
                        # In a draft's parcel list, a code is a <span class="code">.
                        if code not in seen and f'class="code">{code}</span>' in block:
                            seen.add(code)
                            arrivals[code].append(now)
                if len(seen) == len(codes):
                    return

    tasks = [asyncio.create_task(viewer()) for _ in range(viewers)]
    async with asyncio.timeout(60):
        while ready < viewers:  # noqa: ASYNC110 - counting streams as they open
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    sent: dict[str, float] = {}
    started = time.perf_counter()
    for code in codes:
        sent[code] = time.perf_counter()
        response = await post_form(poster, "/s/nairobi/drafts/scan", {"code": code})
        assert response.status_code == 303, (code, response.status_code, response.text[:300])
    elapsed = time.perf_counter() - started
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*tasks)
    except TimeoutError:
        for task in tasks:
            task.cancel()
    latencies = [(t - sent[c]) * 1000 for c, ts in arrivals.items() for t in ts]
    lost = viewers * len(codes) - len(latencies)
    await poster.aclose()
    await watcher.aclose()
    return {
        "posts_per_s": len(codes) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": pct(latencies, 99),
        "max_ms": max(latencies),
        "lost": lost,
        "deliveries": len(latencies),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parcels", type=int, default=500)
    parser.add_argument("--drafts", type=int, default=20)
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--posts", type=int, default=60)
    parser.add_argument("--renders", type=int, default=50)
    args = parser.parse_args()

    import asyncpg
    import redis.asyncio as aioredis

    from tests.servers import Server, server_env

    conn = await asyncpg.connect(ADMIN_DSN)
    await conn.execute(f'CREATE DATABASE "{DB}"')
    await conn.close()
    server = Server(server_env(DATABASE_URL, REDIS_URL, NAMESPACE), name="bench-drafts")
    try:
        server.start()
        await asyncio.to_thread(server.wait_ready, 120)  # migrates, loads the demo data
        await seed(args.parcels, args.drafts)
        render = await render_phase(args.renders)
        print(
            f"render  {args.parcels + 40} parcels, {args.drafts + 1} drafts: "
            f"p50 {render['p50_ms']:.1f} ms, p99 {render['p99_ms']:.1f} ms, "
            f"{render['queries']:.0f} queries, {render['page_kb']:.0f} KiB",
            flush=True,
        )
        live = await live_phase(server.url, args.viewers, args.posts)
        print(
            f"live    {args.viewers} viewers, {args.posts} add-parcel posts: "
            f"{live['posts_per_s']:.1f} posts/s, latency p50 {live['p50_ms']:.0f} ms, "
            f"p99 {live['p99_ms']:.0f} ms, max {live['max_ms']:.0f} ms, lost {live['lost']}",
            flush=True,
        )
    finally:
        server.stop()
        conn = await asyncpg.connect(ADMIN_DSN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        await conn.close()
        client = aioredis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=f"{NAMESPACE}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
