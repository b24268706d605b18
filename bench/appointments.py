"""Appointments benchmark: the workshop dashboard of a full day, and what a status change sends.

    .venv/bin/python bench/appointments.py [--renders 200] [--starts 20] [--check-ins 10]
        [--workers 1] [--json FILE] [--quick]

One throwaway PostgreSQL database and Redis namespace and one real `python main.py`
server (bench/common.py `Stack`), torn down afterwards whatever happens; every phase has
a timeout and `--budget` bounds the whole run; traffic goes to 127.0.0.1 only.

1. Setup, in-process against the bench database (as bench/boards.py seeds): at the
   workshop site (3 demo bays, Bay 1-3, Africa/Nairobi), two days of their own far from
   the demo's bookings, made with the app's own `tables.appointments` functions
   (`create_appointment`, then `check_in` / `change_status` to the booking's status, each
   booking in its own write transaction), booked by admin and moved along by frank:
   * `BIG_DAY` (2031-03-04): 60 bookings, 20 per bay back to back in 36-minute slots
     from 07:00 to 19:00 (each 20-36 minutes long, so the schedule keeps its usual
     hours), in mixed statuses: 16 scheduled, 24 checked in, 6 in progress, 8 done,
     3 cancelled, 3 no-show (shuffled with a fixed seed); every checked-in one has its
     card on the workflow board;
   * `SMALL_DAY` (2031-03-05): 6 bookings, 2 per bay, one in each status.
2. Query count and in-process time: the app (`main.create_app()`) served in this process
   through `httpx.ASGITransport`, frank signed in, with Piccolo's
   `PostgresEngine.run_querystring` wrapped to count calls (every Piccolo query and
   piccolo_api's session lookup go through it; a page GET opens no transaction), so the
   count is the SQL statements one GET of `/s/workshop/appointments?day=<day>` sends. The
   same count for 6 and 60 bookings means no query per booking. Also counted: the
   statements of one status change's POST (start: checked in -> in progress) and one
   check-in, as htmx sends them, on each day — the write, the activity line, and the
   render of the day for the broadcast (2 of each on the big day, left out of step 4; 1
   on the small day, whose check-in step 4 then starts).
3. Render: GET the dashboard of each day `--renders` times (50 for the small day)
   sequentially over one keep-alive connection to the real server, after 20 warm-up GETs,
   timed at the client from request out to body in (loopback adds ~0.1 ms): p50 / p99 /
   max, and the page's bytes.
4. A status change's broadcast: one viewer (frank) holds the big day's stream
   (`/s/workshop/appointments/live?cursor=…&day=2031-03-04`, the cursor read off the page,
   no `conn` so not in presence), read with httpx; connected once `retry:` has arrived.
   Then frank sends, one at a time, `--starts` starts (`POST …/appointments/{id}/status`,
   to=in_progress, the version from the seeding, HX-Request + X-CSRFToken as htmx does)
   of checked-in bookings, then `--check-ins` check-ins (`POST …/{id}/check-in`) of
   scheduled ones, each waiting for its event before the next; then one change on the
   small day (which the same stream gets too: the topic is the site's, the page ignores
   other days' regions). Per change: the POST's answer time at the client (request out
   to body in: server time + loopback), the time until the viewer has the event, and the
   event's size — the SSE message (`id:` + `data:` lines + blank line) that carries
   `id="appointment-<id>" class="booking booking--<new status>"`, as the viewer receives
   it; and the server's CPU (`common.cpu_seconds`) over all of them, per change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import sys
import time
from datetime import date, datetime, timedelta
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

WORKSHOP = "workshop"
USER = "frank"  # staff at the workshop
BIG_DAY, SMALL_DAY = date(2031, 3, 4), date(2031, 3, 5)
BIG, SMALL = 60, 6
WARMUP_RENDERS = 20
EVENT_TIMEOUT = 15.0  # s: a change's event not at the viewer by then is reported missing
# Statuses of the big day's 60 bookings (shuffled with a fixed seed) and the small day's 6.
BIG_STATUSES = (
    ["scheduled"] * 16
    + ["checked_in"] * 24
    + ["in_progress"] * 6
    + ["done"] * 8
    + ["cancelled"] * 3
    + ["no_show"] * 3
)
SMALL_STATUSES = ["checked_in", "scheduled", "in_progress", "done", "cancelled", "no_show"]
SLOT = 36  # minutes: 20 bookings per bay from 07:00 to 19:00
LENGTHS = (30, 36, 20, 25)
NAMES = [
    "Jane Muthoni",
    "Otieno Motors",
    "Grace Achieng",
    "Kamau & Sons",
    "Fatuma Ali",
    "Sunrise Tours",
    "David Kiptoo",
    "Mary Wambui",
    "Peter Njoroge",
    "Ahmed Hassan",
    "Lucy Chebet",
    "Samuel Mwangi",
]
CARS = ["Toyota Fielder", "Isuzu D-Max", "Mazda Demio", "Toyota Probox", "Nissan Note", ""]
SERVICES = [
    "Full service",
    "Brake pads and discs",
    "Wheel alignment",
    "Clutch replacement",
    "Timing belt",
    "Air-con regas",
    "Diagnostics: engine light",
    "Suspension bushes",
]
PHONES = ["+254 712 345 678", "0722 100 200", "+254 733 555 010", ""]
_STREAM_URL = re.compile(r'hx-sse:connect="([^"]+)"')


def dashboard(day: date) -> str:
    return f"/s/{WORKSHOP}/appointments?day={day.isoformat()}"


# -- 1. setup and 2. query count, in-process ---------------------------------------------------


def bookings_of(day: date, statuses: list[str], per_bay: int) -> list[dict]:
    """The day's bookings as (bay index, form values, final status), bay by bay in time."""
    out = []
    for b in range(3):
        for k in range(per_bay):
            i = b * per_bay + k
            starts = datetime(day.year, day.month, day.day, 7) + timedelta(minutes=SLOT * k)
            ends = starts + timedelta(minutes=LENGTHS[i % len(LENGTHS)])
            values = {
                "customer": NAMES[i % len(NAMES)],
                "phone": PHONES[i % len(PHONES)],
                "vehicle_registration": f"K{'CDB'[i % 3]}{chr(65 + i % 26)} {100 + i}{'ABC'[b]}",
                "make_model": CARS[i % len(CARS)],
                "service": SERVICES[i % len(SERVICES)],
                "bay": b,
                "starts_at": f"{starts:%Y-%m-%dT%H:%M}",
                "ends_at": f"{ends:%Y-%m-%dT%H:%M}",
                "notes": "Customer waits on site." if i % 5 == 1 else "",
            }
            out.append({"values": values, "status": statuses[i]})
    return out


async def seed_and_count(requests: int) -> dict:
    """Make the two days, then GET each day's dashboard in-process counting SQL statements,
    and count one start's and one check-in's statements on each day."""
    from piccolo.engine import engine_finder

    from main import create_app
    from tables.appointments import (
        Status,
        bays_of,
        change_status,
        check_in,
        create_appointment,
    )
    from tables.appointments import day_view as the_day
    from tables.base import Actor, write_tx
    from tables.boards import assignable_people
    from tables.people import Site

    app = create_app()
    db = engine_finder()
    out: dict[str, Any] = {"days": {}}
    async with app.router.lifespan_context(app):
        site = (await Site.select(Site.id).where(Site.slug == WORKSHOP).first())["id"]
        people = await assignable_people(site)
        frank = next(p for p in people if p["name"].startswith("Frank"))
        admin = next((p for p in people if p["name"] != frank["name"]), frank)
        booker, mechanic = Actor(admin["id"], admin["name"]), Actor(frank["id"], frank["name"])
        bays = [b.id for b in await bays_of(site)]
        if len(bays) != 3:
            raise RuntimeError(f"the workshop has {len(bays)} active bays, not the demo's 3")
        shuffled = list(BIG_STATUSES)
        random.Random(4).shuffle(shuffled)
        plans = {BIG_DAY: bookings_of(BIG_DAY, shuffled, BIG // 3)}
        plans[SMALL_DAY] = bookings_of(SMALL_DAY, SMALL_STATUSES, SMALL // 3)
        for day, plan in plans.items():
            for booking in plan:
                values = {**booking["values"], "bay": str(bays[booking["values"]["bay"]])}
                status = booking["status"]
                async with write_tx():
                    row = await create_appointment(site, values, booker)
                    version = row["version"]
                    if status in (Status.cancelled, Status.no_show):
                        await change_status(site, row["id"], version, status, booker)
                    elif status != Status.scheduled:
                        checked = await check_in(site, row["id"], version, mechanic)
                        version = checked.appointment["version"]
                        steps = {"in_progress": ["in_progress"], "done": ["in_progress", "done"]}
                        for step in steps.get(status, []):
                            saved = await change_status(site, row["id"], version, step, mechanic)
                            version = saved["version"]
            view = await the_day(site, day)
            if len(view.appointments) != len(plan):
                raise RuntimeError(f"{day}: {len(view.appointments)} bookings, not {len(plan)}")
            out["days"][day] = {"bookings": len(plan), "counts": view.counts}

        # -- count queries per page GET and per change ---------------------------------------
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
                form = {"username": USER, "password": "demo", "csrftoken": c.cookies["csrftoken"]}
                assert (await c.post("/login", data=form)).status_code == 303
                token = c.cookies["csrftoken"]
                headers = {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": token}
                for day, info in out["days"].items():
                    url = dashboard(day)
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
                    # One start and one check-in per day (two on the big one), as htmx posts.
                    view = await the_day(site, day)
                    n = 2 if day == BIG_DAY else 1
                    starts = [a for a in view.appointments if a.status == "checked_in"][-n:]
                    arrivals = [a for a in view.appointments if a.status == "scheduled"][-n:]
                    base = f"/s/{WORKSHOP}/appointments"
                    for kind, chosen, action, to in (
                        ("start", starts, "status", "in_progress"),
                        ("check_in", arrivals, "check-in", None),
                    ):
                        found = []
                        for a in chosen:
                            data = {"csrftoken": token, "version": str(a.version)}
                            if to:
                                data["to"] = to
                            counted.clear()
                            r = await c.post(f"{base}/{a.id}/{action}", data=data, headers=headers)
                            assert r.status_code == 200, (r.status_code, r.text[:300])
                            found.append(len(counted))
                        info[f"{kind}_queries"] = found
                        info[f"{kind}_statements"] = [s[:160] for s in counted]
        finally:
            type(db).run_querystring = original  # type: ignore[method-assign]

        # What is left for the live phase, with today's versions.
        for day, info in out["days"].items():
            view = await the_day(site, day)
            info["appointments"] = [
                {"id": a.id, "status": a.status, "version": a.version, "label": a.label}
                for a in view.appointments
            ]
            info["counts_after_count"] = view.counts
    return out


# -- 3. render over HTTP ------------------------------------------------------------------------


async def render_phase(url: str, day: date, requests: int) -> dict:
    client = await signed_in_client(url, USER, timeout=30.0)
    try:
        path = dashboard(day)
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
        return {
            "requests": requests,
            "page_bytes": len(r.content),
            "bookings_on_page": page.count('class="booking booking--'),
            "p50_ms": percentile(times, 50),
            "p99_ms": percentile(times, 99),
            "max_ms": times[-1],
        }
    finally:
        await client.aclose()


# -- 4. a status change's broadcast -----------------------------------------------------------


def stream_path(page_html: str) -> str:
    """The stream URL the page embeds, with its cursor and day but not its `conn` (a bench
    viewer is not in presence)."""
    match = _STREAM_URL.search(page_html)
    if match is None:
        raise RuntimeError("the dashboard embeds no hx-sse:connect URL")
    url = httpx.URL(unescape(match.group(1)))
    params = {k: v for k, v in url.params.items() if k != "conn"}
    if "day" not in params:
        raise RuntimeError(f"the stream URL carries no day: {url}")
    return url.copy_with(params=params).raw_path.decode()


class Viewer:
    """One SSE stream, read in a background task: every message (bytes, arrival time)."""

    def __init__(self, client: httpx.AsyncClient, path: str) -> None:
        self.client, self.path = client, path
        self.messages: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.connected = asyncio.Event()
        self.ended: str | None = None
        self.task: asyncio.Task | None = None

    async def _read(self) -> None:
        try:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
            async with self.client.stream("GET", self.path, headers=headers) as r:
                if r.status_code != 200:
                    self.ended = f"HTTP {r.status_code}"
                    return
                buffer = b""
                async for chunk in r.aiter_raw():
                    at = time.monotonic()
                    buffer += chunk
                    while (end := buffer.find(b"\n\n")) >= 0:
                        message, buffer = buffer[: end + 2], buffer[end + 2 :]
                        if message.startswith(b"retry:"):
                            self.connected.set()
                        else:
                            self.messages.put_nowait((at, message))
            self.ended = "the server ended the stream"
        except Exception as exc:  # reported, the run goes on
            self.ended = repr(exc)[:200]
        finally:
            self.connected.set()

    async def __aenter__(self) -> Viewer:
        self.task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.connected.wait(), 30)
        if self.ended:
            raise RuntimeError(f"the stream did not open: {self.ended}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task

    async def event_with(self, marker: bytes, within: float) -> tuple[float, bytes, int]:
        """The first message carrying `marker` (and how many other events came before it)."""
        others = 0
        async with asyncio.timeout(within):
            while True:
                at, message = await self.messages.get()
                if marker in message:
                    return at, message, others
                if message.startswith(b"id:"):
                    others += 1


async def live_phase(stack: Stack, days: dict, starts: int, check_ins: int) -> dict:
    big, small = days[BIG_DAY]["appointments"], days[SMALL_DAY]["appointments"]
    todo = [(a, "in_progress") for a in big if a["status"] == "checked_in"][:starts]
    todo += [(a, "checked_in") for a in big if a["status"] == "scheduled"][:check_ins]
    if (
        len([1 for _a, to in todo if to == "in_progress"]) < starts
        or len(todo) < starts + check_ins
    ):
        raise RuntimeError(f"not enough checked-in / scheduled bookings for {starts} + {check_ins}")
    # One change on the small day, which the big day's viewer gets too (the site's topic).
    extra = next(((a, "in_progress") for a in small if a["status"] == "checked_in"), None)
    extra = extra or next(((a, "done") for a in small if a["status"] == "in_progress"), None)
    if extra is not None:
        todo.append(extra)

    poster = await signed_in_client(stack.url, USER, timeout=EVENT_TIMEOUT)
    watcher = await signed_in_client(stack.url, USER, timeout=httpx.Timeout(30.0, read=None))
    changes: list[dict] = []
    try:
        page = await watcher.get(dashboard(BIG_DAY))
        assert page.status_code == 200, page.status_code
        path = stream_path(page.text)
        token = poster.cookies["csrftoken"]
        headers = {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": token}
        base = f"/s/{WORKSHOP}/appointments"
        async with Viewer(watcher, path) as viewer:
            await asyncio.sleep(0.2)
            cpu0 = stack.cpu_seconds()
            async with asyncio.timeout(60 + len(todo) * (EVENT_TIMEOUT + 5)):
                for a, to in todo:
                    data = {"csrftoken": token, "version": str(a["version"])}
                    if to == "checked_in":
                        url = f"{base}/{a['id']}/check-in"
                    else:
                        url, data["to"] = f"{base}/{a['id']}/status", to
                    marker = f'id="appointment-{a["id"]}" class="booking booking--{to}"'.encode()
                    sent = time.monotonic()
                    r = await poster.post(url, data=data, headers=headers)
                    answered = time.monotonic()
                    change = {
                        "id": a["id"],
                        "day": "small" if a in small else "big",
                        "to": to,
                        "status": r.status_code,
                        "answer_bytes": len(r.content),
                        "post_ms": (answered - sent) * 1000,
                    }
                    if r.status_code != 200:
                        change["error"] = r.text[:200]
                    else:
                        try:
                            at, message, others = await viewer.event_with(marker, EVENT_TIMEOUT)
                            html = sum(
                                len(line) - 5
                                for line in message.split(b"\n")
                                if line.startswith(b"data: ")
                            )
                            change.update(
                                event_bytes=len(message),
                                event_html_bytes=html,
                                event_ms=(at - sent) * 1000,
                                other_events=others,
                            )
                        except TimeoutError:
                            change["error"] = f"no event within {EVENT_TIMEOUT:.0f} s"
                    changes.append(change)
            cpu = stack.cpu_seconds() - cpu0
            ended = viewer.ended
    finally:
        await poster.aclose()
        await watcher.aclose()

    def summary(items: list[dict]) -> dict:
        ok = [c for c in items if "event_bytes" in c]
        posts = sorted(c["post_ms"] for c in items)
        events = sorted(c["event_ms"] for c in ok)
        sizes = sorted(c["event_bytes"] for c in ok)
        return {
            "changes": len(items),
            "delivered": len(ok),
            "post_p50_ms": percentile(posts, 50),
            "post_p99_ms": percentile(posts, 99),
            "post_max_ms": posts[-1] if posts else float("nan"),
            "event_p50_ms": percentile(events, 50),
            "event_max_ms": events[-1] if events else float("nan"),
            "event_bytes_p50": statistics.median(sizes) if sizes else 0,
            "event_bytes_min": sizes[0] if sizes else 0,
            "event_bytes_max": sizes[-1] if sizes else 0,
            "event_html_bytes_p50": statistics.median(c["event_html_bytes"] for c in ok)
            if ok
            else 0,
            "answer_bytes_p50": statistics.median(c["answer_bytes"] for c in items) if items else 0,
        }

    big_changes = [c for c in changes if c["day"] == "big"]
    return {
        "path": path,
        "starts": summary([c for c in big_changes if c["to"] == "in_progress"]),
        "check_ins": summary([c for c in big_changes if c["to"] == "checked_in"]),
        "small_day": summary([c for c in changes if c["day"] == "small"]),
        "errors": [c for c in changes if "error" in c],
        "other_events": sum(c.get("other_events", 0) for c in changes),
        "server_cpu_ms_per_change": cpu / max(1, len(changes)) * 1000,
        "stream_ended": ended,
        "changes": changes,
    }


# -- reporting ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=200, help="GETs of the 60-booking day")
    parser.add_argument("--starts", type=int, default=20, help="checked in -> in progress")
    parser.add_argument("--check-ins", type=int, default=10, help="scheduled -> checked in")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 renders, 5 + 3 changes")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--budget", type=float, default=300, help="seconds for the whole run")
    args = parser.parse_args(argv)
    if args.quick:
        args.renders = min(args.renders, 20)
        args.starts, args.check_ins = min(args.starts, 5), min(args.check_ins, 3)
    if not 0 <= args.starts <= 22 or not 0 <= args.check_ins <= 14:
        parser.error("the big day has 22 checked-in and 14 scheduled bookings to change")
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
        seeded = asyncio.run(asyncio.wait_for(seed_and_count(min(args.renders, 50)), 240))
        days = seeded["days"]
        report["days"] = {}
        for day, info in days.items():
            print(f"-- render, {info['bookings']} bookings", file=sys.stderr, flush=True)
            requests = args.renders if day == BIG_DAY else min(args.renders, 50)
            render = asyncio.run(render_phase(stack.url, day, requests))
            report["days"][day.isoformat()] = {
                **{k: v for k, v in info.items() if k != "appointments"},
                **render,
            }
        print(
            f"-- changes: {args.starts} starts, {args.check_ins} check-ins, one viewer",
            file=sys.stderr,
            flush=True,
        )
        live = asyncio.run(live_phase(stack, days, args.starts, args.check_ins))
        report["live"] = live
        report["server_errors"] = server_errors(stack)
        if report["server_errors"] or live["errors"]:
            stack.keep_log = True

    # -- the summary ----------------------------------------------------------------------------
    print()
    print(
        "| day | queries per GET | p50 | p99 | max | in-process p50 | page "
        "| queries per start / check-in POST |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in report["days"].values():
        q = "/".join(map(str, r["queries"]))
        s = "/".join(map(str, sorted(set(r["start_queries"]))))
        c = "/".join(map(str, sorted(set(r["check_in_queries"]))))
        print(
            f"| {r['bookings']} bookings ({r['bookings_on_page']} on the page) | {q} | "
            f"{ms(r['p50_ms'])} | {ms(r['p99_ms'])} | {ms(r['max_ms'])} | "
            f"{ms(r['inprocess_p50_ms'])} | {kib(r['page_bytes'])} | {s} / {c} |"
        )
    big = report["days"][BIG_DAY.isoformat()]
    print()
    for name, what in (("starts", "starts"), ("check_ins", "check-ins"), ("small_day", "")):
        s = live[name]
        if not s["changes"]:
            continue
        label = what or "change on the 6-booking day"
        print(
            f"{s['changes']} {label}: POST answer p50 {ms(s['post_p50_ms'])}, p99 "
            f"{ms(s['post_p99_ms'])}, max {ms(s['post_max_ms'])}; at the viewer p50 "
            f"{ms(s['event_p50_ms'])}, max {ms(s['event_max_ms'])}; event "
            f"{kib(s['event_bytes_p50'])} (p50; {kib(s['event_bytes_min'])} to "
            f"{kib(s['event_bytes_max'])}; {kib(s['event_html_bytes_p50'])} of it HTML; "
            f"page {kib(big['page_bytes'])}); answer "
            f"{kib(s['answer_bytes_p50'])}; {s['delivered']}/{s['changes']} delivered"
        )
    print(
        f"  server CPU {live['server_cpu_ms_per_change']:.0f} ms per change; "
        f"other events on the stream: {live['other_events']}; stream: "
        f"{live['stream_ended'] or 'open to the end'}"
    )
    for error in live["errors"]:
        print(f"  ! {error}")
    if report["server_errors"]:
        print(f"  ! server tracebacks: {report['server_errors'][:5]}")
    print(f"({time.monotonic() - started:.0f} s in all)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
