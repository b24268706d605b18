"""Dispatches benchmark (issue 11): the status board of 500 open dispatches, the API list
of them, and bulk status changes of 50 dispatches to 100 board viewers.

    .venv/bin/python bench/dispatches.py [--dispatches 500] [--small 50] [--assets 12]
        [--renders 200] [--api-requests 200] [--viewers 100] [--bulks 3]
        [--bulk-size 50] [--workers 1] [--json FILE] [--quick]

One throwaway PostgreSQL database and Redis namespace and one real `python main.py`
server (bench/common.py `Stack`), torn down afterwards whatever happens; every phase has
a timeout and `--budget` bounds the whole run; traffic goes to 127.0.0.1 only.

1. Setup, in-process against the bench database (the server loaded the demo into it): at
   nairobi, the demo's open dispatches are cancelled first with the app's
   `bulk_transition` (so the board holds exactly the bench's), and `--assets` assets are
   added with `create_asset`, round-robin over the organisation's makes/models (vans,
   trucks, the reefer truck, the forklift). Then the bench's open dispatches: 4 in 10
   Created (3 of 4 with someone assigned), 3 in 10 Assigned, 3 in 10 In Progress, spread
   over every nairobi asset, the 4 priorities, the site's people and due times (1 in 6
   none, 1 in 6 overdue). The first `--small` are made through the app's rules, each in
   its own write transaction: `create_dispatch`, `update_detail` for what a driver
   records (the truck checklist: passed, left incomplete or with a failed brake check on
   Assigned trucks — "needs a completed checklist" on their cards; passed, the reefer's
   pre-cooling and the van's start mileage before In Progress), `transition` for each
   step. The rest up to `--dispatches` are inserted in bulk (multi-row INSERTs in one
   transaction) in exactly that shape: the dispatch with its number, version and step
   stamps, the master list and one row per detail kind its asset's type and make/model
   configure (`configured_kinds`), filled as above, the status history and the
   operational events; not the site-trail lines (the board does not read them). A check
   afterwards compares every bench dispatch's master list with `configured_kinds` of its
   asset and the detail rows with the master list ("shape check").
2. Query counts and in-process times: the app (`main.create_app()`) served in this
   process through `httpx.ASGITransport`, alice (a dispatcher at nairobi) signed in, with
   Piccolo's `PostgresEngine.run_querystring` wrapped to count calls (every Piccolo query
   and piccolo_api's session and token lookups go through it; a GET opens no
   transaction). Counted: one GET of the status board `/s/nairobi/dispatches` with
   `--small` and with `--dispatches` open dispatches (the same count means no query per
   card); one API list page (below); one bulk POST of 5 and one of `--bulk-size`
   dispatches Created → Assigned, as htmx sends it (the slope is what each more ticked
   dispatch costs: its write, history, event and trail line, and the render and publish
   of its own dispatch page's topic that `dispatches_bulk` does for each one); during the
   bulk POSTs `LiveArea.publish` is also timed in-process, per area (the board's topic,
   and the dispatch pages' topics), with the statements each sends.
3. Render: GET the board `--renders` times sequentially over one keep-alive connection to
   the real server as alice, after 10 warm-up GETs, timed at the client from request out
   to body in (loopback adds ~0.1 ms): p50 / p99 / max, the page's bytes and per card
   (the app does not compress pages; see the README), the overdue cards and the cards
   saying what blocks them.
4. API: an API token made for alice in-process (`ApiToken.create_token`: the row keeps
   its SHA-256). Against the real server with `Authorization: Bearer …` over keep-alive:
   `GET /api/v1/s/nairobi/dispatches?limit=L` with L the largest `limit` the API's own
   OpenAPI document allows, `--api-requests` times (one full page), and the walk through
   every dispatch of the site, page after page by the `next` cursor, `--api-requests / 5`
   times (the site also has the demo's closed dispatches): p50 / p99 / max, bytes, items.
5. Bulks: `--viewers` SSE streams open on the board (`/s/nairobi/dispatches/live?cursor=…`,
   read off the page as alice's browser gets it: every query parameter but `conn`, so not
   in presence) from one client process of raw asyncio protocols (bench/viewers.py's
   `Viewer`). Then alice sends `--bulks` bulk changes one after the other, as htmx does
   (`POST /s/nairobi/dispatches/bulk`, HX-Request + HX-Request-Type: partial +
   X-CSRFToken; form fields csrftoken, `dispatches` = "id:version" per ticked card, `to`,
   `reason`), each of `--bulk-size` different dispatches (after an unmeasured bulk of 5,
   sent before the streams open, so the first measured one does not pay for the
   server's first render of the dispatch page's templates), cycling Created → Assigned,
   Assigned → In Progress (only cards that nothing blocks: vans, the forklift, trucks with
   a passed checklist) and In Progress → Cancelled (with a reason); each bulk waits until
   every viewer has the previous one (or 30 s). The plan is made up front from the board
   as it is after setup, and each dispatch moves once. A ticked dispatch *arrives* at a
   viewer with the first SSE message that carries its card `value="id:version+1"` (its
   `<hx-upsert>` into the new column, after the `<hx-partial … hx-swap="delete">` of the
   old card), or, once cancelled, the delete of `#dispatch-id` without a card; an event's
   cards are parsed once per event (every viewer gets the same bytes), per viewer only its
   `id:` line is read. A bulk's latency at a viewer = the arrival of the last of its
   dispatches (CLOCK_MONOTONIC in the client process) minus the moment just before the
   POST left; p50 / p99 / max over viewers and bulks. Lost: a (dispatch, viewer) pair not
   delivered within 30 s of a bulk that is in the database afterwards. Bytes per viewer:
   the SSE messages (`id:` + `data:` lines) of the events carrying a bulk's cards, as one
   viewer receives them. Server CPU: CPU time of the server's processes from just
   before a bulk's POST to the moment every viewer had it.

The load average at the start and the end is printed: other work on the machine shows
in the tails (p99, max) first.
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
import sys
import time
from array import array
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
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
)

USER = "alice"  # a dispatcher at nairobi
LOST_AFTER = 30.0  # s: a ticked dispatch not at a viewer by then is lost
WARMUP_RENDERS = 10
BOARD = f"/s/{SITE}/dispatches"
API_LIST = f"/api/v1/s/{SITE}/dispatches"
# 4 in 10 Created, 3 in 10 Assigned, 3 in 10 In Progress, interleaved
STATUS_MIX = (*("created", "assigned", "in_progress") * 3, "created")
PRIORITIES = ("normal", "high", "low", "normal", "critical", "normal", "high")
TITLES = (
    "Eldoret express",
    "Kisumu pick-up",
    "Mombasa road freight",
    "Thika spare parts",
    "Airport documents",
    "Machakos medical supplies",
    "Nyeri school books",
    "Nanyuki solar panels",
    "Kericho tea samples",
    "Returns to the Westlands shop",
)
CANCEL_REASON = "Bench: the customer postponed the delivery."
# (to, from, only cards that nothing blocks, reason)
BULK_KINDS = (
    ("assigned", "created", True, ""),
    ("in_progress", "assigned", True, ""),
    ("cancelled", "in_progress", False, CANCEL_REASON),
)
_STREAM_URL = re.compile(r'hx-sse:connect="([^"]+)"')
_TICK = re.compile(rb'value="(\d+):(\d+)" form="bulk-form"')
_DELETE = re.compile(rb'hx-target="#dispatch-(\d+)" hx-swap="delete"')
_STATEMENT = re.compile(
    r'^\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b.*?(?:FROM\s+)?"(\w+)"', re.S
)


# -- 1. setup ---------------------------------------------------------------------------------


def spec_of(k: int, assets: list[Any], people: list[dict], now: datetime) -> dict[str, Any]:
    """Bench dispatch k: its status, asset, priority, assignee, due time and details."""
    status = STATUS_MIX[k % len(STATUS_MIX)]
    asset = assets[k % len(assets)]
    person = people[(k + k // len(assets)) % len(people)]
    assignee = person if status != "created" or k % 4 else None
    due: datetime | None = None
    if k % 6 == 1:
        due = now - timedelta(hours=1 + k % 40)  # overdue
    elif k % 6:
        due = now + timedelta(hours=2 + (k * 11) % 300)
    return {
        "k": k,
        "status": status,
        "asset": asset,
        "priority": PRIORITIES[k % len(PRIORITIES)],
        "assignee": assignee,
        "due_at": due.replace(second=0, microsecond=0) if due else None,
        "title": f"Bench {k:04d}: {TITLES[k % len(TITLES)]}",
        "description": "Call the consignee an hour ahead." if k % 3 == 0 else "",
    }


def detail_values(spec: dict, kind: str) -> dict[str, Any] | None:
    """What a driver has recorded in one detail of bench dispatch `spec` (typed values,
    as update_detail reads them from JSON), or None: left as made."""
    from tables.dispatches import CHECKS

    status, k = spec["status"], spec["k"]
    if kind == "truck_checklist":
        if status == "in_progress" or (status == "assigned" and k % 4 >= 2):
            return {name: True for name, _ in CHECKS}
        if status == "assigned" and k % 4 == 1:  # a failed brake check keeps it in the yard
            return {"tires": True, "lights": True, "brakes": False}
        return None  # Assigned, k % 4 == 0: the checklist not done
    if kind == "cold_chain":
        if status == "in_progress" or (status == "assigned" and k % 4 >= 2):
            return {"setpoint_c": 3, "pre_cooled": True, "temperature_at_loading_c": 4}
        return None
    if kind == "vehicle_dispatch":
        if status != "in_progress":
            return None
        start = (spec["asset"].meter_reading or 0) + 3
        return {
            "destination_address": spec["title"].split(": ")[1] + ", town centre",
            "mileage_start": start,
            "fuel_start": 80,
            "safety_check_done": True,
        }
    return None


async def via_rules(site_id: int, spec: dict, creator: Any) -> int:
    """Bench dispatch `spec` made through the app's rules, in one write transaction."""
    from tables.base import Actor, write_tx
    from tables.dispatches import create_dispatch, details_of, transition, update_detail

    who = Actor(spec["assignee"]["id"], spec["assignee"]["name"]) if spec["assignee"] else creator
    async with write_tx():
        row = await create_dispatch(
            site_id,
            {
                "title": spec["title"],
                "description": spec["description"],
                "priority": spec["priority"],
                "asset": spec["asset"].id,
                "assignee": str(spec["assignee"]["id"]) if spec["assignee"] else "",
                "due_at": spec["due_at"],
            },
            creator,
        )
        version = row["version"]
        if spec["status"] == "created":
            return row["id"]
        for detail in await details_of(row["id"]):
            values = detail_values(spec, detail.kind)
            if values:
                await update_detail(site_id, row["id"], detail.kind, values, detail.version, who)
        steps = ["assigned"] + (["in_progress"] if spec["status"] == "in_progress" else [])
        for step in steps:
            version = (await transition(site_id, row["id"], step, who, version))["version"]
        return row["id"]


async def insert_direct(site_id: int, specs: list[dict], creator: Any, kinds: dict) -> float:
    """Bench dispatches `specs` inserted in bulk in one transaction, in the shape the rules
    give them (see the docstring). Returns the milliseconds it took."""
    from tables.base import write_tx
    from tables.dispatches import (
        CHECKS,
        DETAIL_KINDS,
        WORDS,
        Dispatch,
        DispatchDetail,
        DispatchEvent,
        DispatchStatus,
        DispatchStatusHistory,
        checklist_problem,
    )

    chunk = 400
    t = time.perf_counter()
    stamp = datetime.now(UTC)
    steps_of = {
        "created": [],
        "assigned": ["assigned"],
        "in_progress": ["assigned", "in_progress"],
    }
    async with write_tx():
        rows = []
        for spec in specs:
            steps = steps_of[spec["status"]]
            who = spec["assignee"]
            rows.append(
                Dispatch(
                    number=f"bench-{spec['k']}",
                    title=spec["title"],
                    description=spec["description"],
                    priority=spec["priority"],
                    status=spec["status"],
                    site=site_id,
                    vehicle=spec["asset"].id,
                    assigned_to=who["id"] if who else None,
                    assigned_to_name=who["name"] if who else "",
                    location=spec["asset"].location,
                    due_at=spec["due_at"],
                    created_by=creator.id,
                    created_by_name=creator.name,
                    created_at=stamp,
                    assigned_at=stamp if steps else None,
                    started_at=stamp if "in_progress" in steps else None,
                    version=1 + len(steps),
                    updated_by_name=who["name"] if steps else creator.name,
                    updated_at=stamp,
                )
            )
        ids: dict[int, int] = {}  # k -> id
        for i in range(0, len(rows), chunk):
            made = await Dispatch.insert(*rows[i : i + chunk]).returning(
                Dispatch.id, Dispatch.number
            )
            ids |= {int(r["number"].split("-")[1]): r["id"] for r in made}
        await Dispatch.raw(
            "UPDATE dispatch SET number = 'D-' || lpad(id::text, 5, '0') "
            "WHERE number LIKE 'bench-%' AND id < 100000"
        )
        # the master list, then each kind's row
        masters = [
            DispatchDetail(dispatch=ids[s["k"]], kind=key, position=p, created_at=stamp)
            for s in specs
            for p, key in enumerate(kinds[s["asset"].id])
        ]
        master_id: dict[tuple[int, str], int] = {}
        for i in range(0, len(masters), chunk):
            made = await DispatchDetail.insert(*masters[i : i + chunk]).returning(
                DispatchDetail.id, DispatchDetail.dispatch, DispatchDetail.kind
            )
            master_id |= {(r["dispatch"], r["kind"]): r["id"] for r in made}
        by_table: dict[str, list[Any]] = {}
        saved: list[tuple[dict, str, list[str]]] = []  # (spec, kind, fields) for events
        for s in specs:
            who = s["assignee"]
            for key in kinds[s["asset"].id]:
                table = DETAIL_KINDS[key].table
                values = detail_values(s, key) or {}
                row = table(dispatch=ids[s["k"]], detail=master_id[(ids[s["k"]], key)])
                for name, value in values.items():
                    setattr(row, name, value)
                if values:
                    row.version = 2
                    row.updated_by_name = who["name"]
                    row.updated_at = stamp
                    saved.append((s, key, list(values)))
                    if (
                        key == "truck_checklist"
                        and checklist_problem({n: values.get(n) for n, _ in CHECKS}) is None
                    ):
                        row.completed_by, row.completed_by_name = who["id"], who["name"]
                        row.completed_at = stamp
                    if key == "vehicle_dispatch" and values.get("safety_check_done"):
                        row.safety_check_by, row.safety_check_by_name = who["id"], who["name"]
                        row.safety_check_at = stamp
                by_table.setdefault(key, []).append(row)
        for key, table_rows in by_table.items():
            table = DETAIL_KINDS[key].table
            for i in range(0, len(table_rows), chunk):
                await table.insert(*table_rows[i : i + chunk])
        # history, then the events (one per history row, one per detail saved)
        history = []
        for s in specs:
            who = s["assignee"]
            history.append(
                DispatchStatusHistory(
                    dispatch=ids[s["k"]],
                    from_status=None,
                    to_status="created",
                    changed_by=creator.id,
                    changed_by_name=creator.name,
                    changed_at=stamp,
                )
            )
            before = "created"
            for step in steps_of[s["status"]]:
                history.append(
                    DispatchStatusHistory(
                        dispatch=ids[s["k"]],
                        from_status=before,
                        to_status=step,
                        changed_by=who["id"],
                        changed_by_name=who["name"],
                        changed_at=stamp,
                    )
                )
                before = step
        events = []
        for i in range(0, len(history), chunk):
            made = await DispatchStatusHistory.insert(*history[i : i + chunk]).returning(
                DispatchStatusHistory.id,
                DispatchStatusHistory.dispatch,
                DispatchStatusHistory.from_status,
                DispatchStatusHistory.to_status,
                DispatchStatusHistory.changed_by,
                DispatchStatusHistory.changed_by_name,
            )
            for h in made:
                if h["from_status"] is None:
                    spec = next(s for s in specs if ids[s["k"]] == h["dispatch"])
                    summary = f"created “{spec['title']}” for {spec['asset'].registration}"
                    kind = "created"
                else:
                    summary = (
                        f"{WORDS[DispatchStatus(h['from_status'])]} → "
                        f"{WORDS[DispatchStatus(h['to_status'])]}"
                    )
                    kind = "status"
                events.append(
                    DispatchEvent(
                        site=site_id,
                        dispatch=h["dispatch"],
                        history=h["id"],
                        kind=kind,
                        summary=summary[:300],
                        actor=h["changed_by"],
                        actor_name=h["changed_by_name"],
                        created_at=stamp,
                    )
                )
        for s, key, names in saved:
            spec_kind = DETAIL_KINDS[key]
            labels = [spec_kind.field_named(n).label.lower() for n in names]  # type: ignore[union-attr]
            events.append(
                DispatchEvent(
                    site=site_id,
                    dispatch=ids[s["k"]],
                    kind="detail",
                    summary=f"{spec_kind.label}: {', '.join(labels)}"[:300],
                    actor=s["assignee"]["id"],
                    actor_name=s["assignee"]["name"],
                    created_at=stamp,
                )
            )
        for i in range(0, len(events), chunk):
            await DispatchEvent.insert(*events[i : i + chunk])
    return (time.perf_counter() - t) * 1000


async def shape_check(site_id: int, kinds: dict[int, list[str]]) -> dict[str, Any]:
    """Every open dispatch's master list is what its asset configures, and every master
    row has its kind's row."""
    from tables.dispatches import DETAIL_KINDS, OPEN, Dispatch, DispatchDetail

    dispatches = await Dispatch.select(Dispatch.id, Dispatch.vehicle).where(
        (Dispatch.site == site_id) & Dispatch.status.is_in(list(OPEN))
    )
    ids = [d["id"] for d in dispatches]
    masters = await DispatchDetail.select(
        DispatchDetail.dispatch, DispatchDetail.kind, DispatchDetail.position
    ).where(DispatchDetail.dispatch.is_in(ids or [-1]))
    listed: dict[int, list[tuple[int, str]]] = {}
    for m in masters:
        listed.setdefault(m["dispatch"], []).append((m["position"], m["kind"]))
    wrong = [
        d["id"]
        for d in dispatches
        if [k for _, k in sorted(listed.get(d["id"], []))] != kinds[d["vehicle"]]
    ]
    missing = 0
    rows_by_kind = {}
    for key, kind in DETAIL_KINDS.items():
        col: Any = kind.table._meta.get_column_by_name("dispatch")
        have = await kind.table.count().where(col.is_in(ids or [-1]))
        want = sum(1 for m in masters if m["kind"] == key)
        rows_by_kind[key] = have
        missing += abs(want - have)
    return {
        "ok": not wrong and not missing,
        "dispatches": len(dispatches),
        "wrong_master_lists": wrong[:10],
        "detail_rows": rows_by_kind,
        "detail_rows_missing_or_extra": missing,
    }


def _statement_kinds(statements: list[str]) -> dict[str, int]:
    """Statements by verb and first table, most frequent first."""
    counts: dict[str, int] = {}
    for s in statements:
        m = _STATEMENT.match(s)
        key = f"{m.group(1)} {m.group(2)}" if m else s.split(None, 1)[0][:20]
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


async def seed_and_count(args: argparse.Namespace) -> dict:
    from piccolo.apps.user.tables import BaseUser
    from piccolo.engine import engine_finder

    from main import create_app
    from routes.live import LiveArea
    from tables.apitokens import ApiToken
    from tables.assets import assets_of, create_asset, make_models_of, organisation_of
    from tables.base import Actor, write_tx
    from tables.boards import assignable_people
    from tables.dispatches import OPEN, Dispatch, bulk_transition, configured_kinds, status_board
    from tables.people import Site

    app = create_app()
    db = engine_finder()
    out: dict[str, Any] = {"boards": {}}
    async with app.router.lifespan_context(app):
        site = (await Site.select(Site.id).where(Site.slug == SITE).first())["id"]
        users = {
            u["username"]: u
            for u in await BaseUser.select(
                BaseUser.id, BaseUser.username, BaseUser.first_name, BaseUser.last_name
            )
        }
        admin = Actor(users["admin"]["id"], "Admin (bench)")
        people = await assignable_people(site)

        # -- the demo's open dispatches closed, bench assets added --------------------------
        demo_open = [
            r["id"]
            for r in await Dispatch.select(Dispatch.id).where(
                (Dispatch.site == site) & Dispatch.status.is_in(list(OPEN))
            )
        ]
        if demo_open:
            await bulk_transition(
                site, demo_open, "cancelled", admin, reason="Bench: cleared.", manager=True
            )
        out["demo_open_cancelled"] = len(demo_open)
        organisation = await organisation_of(site)
        models = await make_models_of(organisation)
        async with write_tx():
            for i in range(args.assets):
                m = models[i % len(models)]
                await create_asset(
                    site,
                    {
                        "asset_type": m["asset_type"],
                        "make_model": m["id"],
                        "registration": f"KBN {100 + i:03d}Z",
                        "name": f"{m['make']} {m['model']}",
                        "location": f"Nairobi depot, bay {1 + i % 6}",
                        "meter_reading": 40_000 + 7_919 * i,
                        "capacity_kg": 1000 + 500 * (i % 5),
                    },
                )
        assets = await assets_of(site)
        kinds = {a.id: await configured_kinds(a.type_id, a.make_model_id) for a in assets}
        out["assets"] = len(assets)
        out["asset_kinds"] = {a.label: kinds[a.id] for a in assets}
        out["people"] = [p["name"] for p in people]
        now = datetime.now(UTC)
        specs = [spec_of(k, assets, people, now) for k in range(args.dispatches)]

        t = time.perf_counter()
        for spec in specs[: args.small]:
            await via_rules(site, spec, admin)
        out["via_rules_ms_each"] = (time.perf_counter() - t) * 1000 / max(1, args.small)

        # -- count queries per GET / POST -----------------------------------------------------
        counted: list[str] = []
        original = type(db).run_querystring
        original_publish = LiveArea.publish

        async def counting(self, querystring, in_pool=True):
            counted.append(str(querystring))
            return await original(self, querystring, in_pool)

        transport = httpx.ASGITransport(app=app)
        c = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=120)

        async def count_board(n: int) -> None:
            for _ in range(2):  # warm-up: templates, the layout cache
                assert (await c.get(BOARD)).status_code == 200
            per_request, times = [], []
            for _ in range(args.count_requests):
                counted.clear()
                t = time.perf_counter()
                r = await c.get(BOARD)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.status_code
                per_request.append(len(counted))
            times.sort()
            out["boards"][n] = {
                "open": n,
                "cards_on_page": r.text.count('<li id="dispatch-'),
                "queries": sorted(set(per_request)),
                "statements": [s[:200] for s in counted],
                "inprocess_p50_ms": percentile(times, 50),
                "inprocess_max_ms": times[-1],
            }

        type(db).run_querystring = counting  # type: ignore[method-assign]
        try:
            await c.get("/login")
            form = {"username": USER, "password": "demo", "csrftoken": c.cookies["csrftoken"]}
            assert (await c.post("/login", data=form)).status_code == 303
            await count_board(args.small)

            type(db).run_querystring = original  # type: ignore[method-assign]
            out["direct_insert_ms"] = await insert_direct(site, specs[args.small :], admin, kinds)
            out["shape"] = await shape_check(site, kinds)
            type(db).run_querystring = counting  # type: ignore[method-assign]
            await count_board(args.dispatches)

            # -- the API: a token, one page counted ---------------------------------------------
            token = await ApiToken.create_token(users[USER]["id"], name="bench")
            out["api_token"] = token
            try:
                from routes.api.dispatches import LIMIT_MAX
            except ImportError:  # the API's own document says it over HTTP (step 4)
                LIMIT_MAX = 100
            out["api_limit_max"] = LIMIT_MAX
            bearer = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1", timeout=60
            ) as api:
                url = f"{API_LIST}?limit={LIMIT_MAX}"
                assert (await api.get(url, headers=bearer)).status_code == 200
                counted.clear()
                t = time.perf_counter()
                r = await api.get(url, headers=bearer)
                out["api_inprocess_ms"] = (time.perf_counter() - t) * 1000
                assert r.status_code == 200, (r.status_code, r.text[:300])
                out["api_queries"] = len(counted)
                out["api_statements"] = [s[:200] for s in counted]

            # -- bulk POSTs counted: Created -> Assigned, 5 then --bulk-size ----------------
            board = await status_board(site)
            ready = [
                c_
                for c_ in board.cards
                if c_.status == "created" and c_.assignee_id is not None and not c_.needs
            ]
            token_csrf = c.cookies["csrftoken"]
            headers = {
                "HX-Request": "true",
                "HX-Request-Type": "partial",
                "X-CSRFToken": token_csrf,
            }
            out["bulk_counts"] = {}
            taken = 0
            spent: dict[str, list[float]] = {}  # area -> [publishes, ms, statements]

            async def timed_publish(self, *a, **kw):  # LiveArea.publish, timed
                q0, t0 = len(counted), time.perf_counter()
                try:
                    return await original_publish(self, *a, **kw)
                finally:
                    row = spent.setdefault(self.name, [0, 0.0, 0])
                    row[0] += 1
                    row[1] += (time.perf_counter() - t0) * 1000
                    row[2] += len(counted) - q0

            LiveArea.publish = timed_publish  # type: ignore[method-assign]
            for n in sorted({5, args.bulk_size}):
                chosen = ready[taken : taken + n]
                taken += n
                if len(chosen) < n:
                    raise RuntimeError(f"only {len(chosen)} Created dispatches for a bulk of {n}")
                data = {
                    "csrftoken": token_csrf,
                    "dispatches": [f"{x.id}:{x.version}" for x in chosen],
                    "to": "assigned",
                    "reason": "",
                }
                counted.clear()
                spent.clear()
                t = time.perf_counter()
                r = await c.post(f"{BOARD}/bulk", data=data, headers=headers)
                took = (time.perf_counter() - t) * 1000
                assert r.status_code == 200, (r.status_code, r.text[:300])
                out["bulk_counts"][n] = {
                    "queries": len(counted),
                    "inprocess_ms": took,
                    "answer_bytes": len(r.content),
                    "by_kind": _statement_kinds(counted),
                    "publishes": {k: list(v) for k, v in spent.items()},
                }
        finally:
            type(db).run_querystring = original  # type: ignore[method-assign]
            LiveArea.publish = original_publish  # type: ignore[method-assign]
            await c.aclose()

        # -- the live bulks, planned from the board as it is now ----------------------------
        board = await status_board(site)
        out["open_now"] = len(board.cards)
        out["overdue"] = board.overdue
        out["columns"] = {col.status: len(col.cards) for col in board.columns}
        out["plan"] = plan_bulks(board.cards, args.bulks, args.bulk_size)
    return out


def plan_bulks(cards: list[Any], bulks: int, size: int) -> list[dict]:
    """A warm-up bulk of 5 Created -> Assigned, then `bulks` bulk changes of `size`
    different dispatches each (see the docstring)."""
    used: set[int] = set()
    plan = []
    for b, n in [(-1, 5)] + [(b, size) for b in range(bulks)]:
        to, source, unblocked, reason = BULK_KINDS[max(0, b) % len(BULK_KINDS)]
        size_b = n
        pool = [
            c
            for c in cards
            if c.status == source
            and c.id not in used
            and (not unblocked or not c.needs)
            and (source != "created" or c.assignee_id is not None)
        ]
        if len(pool) < size_b:
            raise RuntimeError(
                f"bulk {b + 1} ({source} -> {to}) needs {size_b} dispatches, {len(pool)} are "
                "left: use more --dispatches, fewer --bulks or a smaller --bulk-size"
            )
        step = len(pool) / size_b
        chosen = [pool[int(i * step)] for i in range(size_b)]
        used |= {c.id for c in chosen}
        plan.append(
            {
                "to": to,
                "from": source,
                "reason": reason,
                "items": [(c.id, c.version) for c in chosen],
            }
        )
    return plan


# -- 3. render and 4. API over HTTP -------------------------------------------------------------


async def render_phase(url: str, requests: int) -> dict:
    client = await signed_in_client(url, USER, timeout=60.0)
    try:
        async with asyncio.timeout(60 + requests * 3):
            for _ in range(WARMUP_RENDERS):
                r = await client.get(BOARD)
                assert r.status_code == 200, r.status_code
            times = []
            for _ in range(requests):
                t = time.perf_counter()
                r = await client.get(BOARD)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.status_code
        times.sort()
        text = r.text
        cards = text.count('<li id="dispatch-')
        start = text.find('<li id="dispatch-')
        return {
            "requests": requests,
            "page_bytes": len(r.content),
            "wire_bytes": r.num_bytes_downloaded,
            "content_encoding": r.headers.get("content-encoding", ""),
            "cards_overdue": text.count("dcard--overdue"),
            "cards_with_needs": text.count('class="dcard__needs"'),
            "sample_card": text[start : text.find("\n</li>", start) + 6] if start >= 0 else "",
            "cards_on_page": cards,
            "bytes_per_card": len(r.content) / max(1, cards),
            "p50_ms": percentile(times, 50),
            "p99_ms": percentile(times, 99),
            "max_ms": times[-1],
        }
    finally:
        await client.aclose()


def _limit_max(document: dict) -> int | None:
    """The largest `limit` the list endpoint's OpenAPI parameters allow."""
    for path, item in document.get("paths", {}).items():
        if path.rstrip("/").endswith("/s/{site}/dispatches") and "get" in item:
            for p in item["get"].get("parameters", []):
                if p.get("name") == "limit":
                    schema = p.get("schema", {})
                    return schema.get("maximum")
    return None


async def api_phase(url: str, token: str, requests: int, fallback_limit: int) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        document = (await client.get("/api/v1/openapi.json")).json()
        limit = _limit_max(document) or fallback_limit
        page = f"{API_LIST}?limit={limit}"
        async with asyncio.timeout(60 + requests * 3):
            for _ in range(10):
                r = await client.get(page)
                assert r.status_code == 200, (r.status_code, r.text[:300])
            times = []
            for _ in range(requests):
                t = time.perf_counter()
                r = await client.get(page)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.status_code
            one = {"bytes": len(r.content), "items": len(r.json()["items"])}
            walks, pages, items, statuses = [], 0, 0, {}
            by_page: dict[int, list[float]] = {}
            for _ in range(max(3, requests // 5)):
                t = time.perf_counter()
                cursor, pages, items, statuses = None, 0, 0, {}
                while True:
                    t_page = time.perf_counter()
                    r = await client.get(page + (f"&cursor={cursor}" if cursor else ""))
                    by_page.setdefault(pages, []).append((time.perf_counter() - t_page) * 1000)
                    assert r.status_code == 200, r.status_code
                    body = r.json()
                    pages, items = pages + 1, items + len(body["items"])
                    for it in body["items"]:
                        statuses[it["status"]] = statuses.get(it["status"], 0) + 1
                    cursor = body["next"]
                    if cursor is None:
                        break
                walks.append((time.perf_counter() - t) * 1000)
    times.sort()
    walks.sort()
    return {
        "limit": limit,
        "requests": requests,
        "page_bytes": one["bytes"],
        "page_items": one["items"],
        "p50_ms": percentile(times, 50),
        "p99_ms": percentile(times, 99),
        "max_ms": times[-1],
        "walks": len(walks),
        "walk_pages": pages,
        "walk_items": items,
        "walk_statuses": statuses,
        "walk_p50_ms": percentile(walks, 50),
        "walk_p99_ms": percentile(walks, 99),
        "walk_max_ms": walks[-1],
        "walk_page_p50_ms": [percentile(sorted(v), 50) for _, v in sorted(by_page.items())],
    }


# -- 5. bulks to viewers ------------------------------------------------------------------------


def viewer_process(conn: Any) -> None:
    """A client process holding the viewers (spawned; talks over a Pipe):
    parent -> child: config dict, then ("stop",);
    child -> parent: ("connected", n_ok, n_failed, first_error), ("bulk", b, monotonic)
    once every open stream has all of bulk b, ("results", arrivals bytes, stats dict)."""
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

    class BulkPool(viewers.Pool):
        """Item k (a ticked dispatch) is recognised by its card at the version after the
        bulk, or — when the bulk closes it — by its delete without a card."""

        def __init__(self, cfg: dict) -> None:
            super().__init__(cfg)
            self.cards = {(i, v): k for k, (i, v, closes) in enumerate(cfg["expect"]) if not closes}
            self.closing = {i: k for k, (i, _v, closes) in enumerate(cfg["expect"]) if closes}
            self.sizes: dict[
                str, tuple[int, int, int, int]
            ] = {}  # id -> (bytes, cards, dels, mask)

        def learn_event(self, event_id: bytes, frame: bytes) -> int:
            mask = 0
            ticks = [(int(i), int(v)) for i, v in _TICK.findall(frame)]
            deleted = {int(i) for i in _DELETE.findall(frame)}
            for pair in ticks:
                k = self.cards.get(pair)
                if k is not None:
                    mask |= 1 << k
            upserted = {i for i, _ in ticks}
            for i in deleted - upserted:
                k = self.closing.get(i)
                if k is not None:
                    mask |= 1 << k
            self.event_masks[event_id] = mask
            size = 4 + len(event_id) + len(frame) + 2
            self.sizes[event_id.decode()] = (size, len(ticks), len(deleted), mask)
            return mask

    pool = BulkPool(cfg)
    masks = [int(m) for m in cfg["bulk_masks"]]
    try:
        try:
            await viewers._open_all(pool, 64, cfg["connect_timeout"])
        except TimeoutError:
            pool.first_error = pool.first_error or "connect phase timed out"
        conn.send(("connected", pool.connected, pool.n - pool.connected, pool.first_error))
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_reader(conn.fileno(), stop.set)
        pending = list(range(len(masks)))
        deadline = time.monotonic() + cfg["lifetime"]
        while not stop.is_set() and time.monotonic() < deadline:
            for b in list(pending):
                live = [v for v in pool.viewers if v.state == 2]
                if live and all(v.seen & masks[b] == masks[b] for v in live):
                    conn.send(("bulk", b, time.monotonic()))
                    pending.remove(b)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.005)
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
    """The stream URL the board embeds, with its cursor and any filters but not its `conn`
    (a bench viewer is not in presence)."""
    match = _STREAM_URL.search(page_html)
    if match is None:
        raise RuntimeError("the status board embeds no hx-sse:connect URL")
    url = httpx.URL(unescape(match.group(1)))
    params = {k: v for k, v in url.params.items() if k != "conn"}
    if "cursor" not in params:
        raise RuntimeError(f"the stream URL carries no cursor: {url}")
    return url.copy_with(params=params).raw_path.decode()


async def _versions(db_name: str, ids: list[int]) -> dict[int, tuple[str, int]]:
    import asyncpg

    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + db_name
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT id, status, version FROM dispatch WHERE id = ANY($1)", ids)
    finally:
        await conn.close()
    return {r["id"]: (r["status"], r["version"]) for r in rows}


async def _run_bulks(stack: Stack, plan: list[dict], parent: Any, client: Any) -> list[dict]:
    """alice's bulk POSTs, one after the other, each once the viewers have the last."""
    token = client.cookies["csrftoken"]
    headers = {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": token}
    done: list[dict] = []
    for b, bulk in enumerate(plan):
        data = {
            "csrftoken": token,
            "dispatches": [f"{i}:{v}" for i, v in bulk["items"]],
            "to": bulk["to"],
            "reason": bulk["reason"],
        }
        cpu0 = stack.cpu_seconds()
        sent = time.monotonic()
        try:
            r = await client.post(f"{BOARD}/bulk", data=data, headers=headers)
            status, size, error = r.status_code, len(r.content), ""
            if r.status_code != 200:
                error = f"{r.status_code}: {r.text[:200]!r}"
        except Exception as exc:  # counted and shown, the run goes on
            status, size, error = -1, 0, repr(exc)[:200]
        answered = time.monotonic()
        at = None
        if status == 200:
            deadline = sent + LOST_AFTER
            while time.monotonic() < deadline:
                if parent.poll(0.005):
                    message = parent.recv()
                    if message[0] == "bulk" and message[1] == b:
                        at = message[2]
                        break
                    if message[0] == "error":
                        raise RuntimeError(f"viewer process failed: {message[1]}")
        done.append(
            {
                "sent": sent,
                "answered": answered,
                "status": status,
                "answer_bytes": size,
                "error": error,
                "all_viewers_at": at,
                "server_cpu_s": stack.cpu_seconds() - cpu0,
            }
        )
        await asyncio.sleep(0.3)
    return done


async def _live_client(url: str, warmup: dict) -> tuple[Any, str, str]:
    """alice's client, after an unmeasured bulk (the server's first render of the dispatch
    page templates), and the stream path read off the board after it."""
    client = await signed_in_client(url, USER, timeout=LOST_AFTER + 30)
    token = client.cookies["csrftoken"]
    headers = {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": token}
    data = {
        "csrftoken": token,
        "dispatches": [f"{i}:{v}" for i, v in warmup["items"]],
        "to": warmup["to"],
        "reason": warmup["reason"],
    }
    r = await client.post(f"{BOARD}/bulk", data=data, headers=headers)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    r = await client.get(BOARD)
    assert r.status_code == 200, r.status_code
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return client, cookie, stream_path(r.text)


def live_phase(stack: Stack, plan: list[dict], args: argparse.Namespace) -> dict:
    warmup, plan = plan[0], plan[1:]
    expect: list[tuple[int, int, bool]] = []
    bulk_masks: list[int] = []
    for bulk in plan:
        first = len(expect)
        closes = bulk["to"] in ("cancelled", "completed")
        expect += [(i, v + 1, closes) for i, v in bulk["items"]]
        bulk_masks.append(((1 << len(expect)) - 1) ^ ((1 << first) - 1))
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=viewer_process, args=(child,), daemon=True)
    proc.start()
    child.close()
    connect_timeout = 30 + args.viewers / 50
    result: dict[str, Any] = {"viewers": args.viewers, "bulks": len(plan), "size": args.bulk_size}

    async def run() -> tuple[list[dict], str]:
        client, cookie, path = await _live_client(stack.url, warmup)
        try:
            parent.send(
                {
                    "host": "127.0.0.1",
                    "port": stack.port,
                    "path": path,
                    "cookie": cookie,
                    "viewers": args.viewers,
                    "posts": len(expect),
                    "expect": expect,
                    "bulk_masks": [str(m) for m in bulk_masks],
                    "connect_timeout": connect_timeout,
                    "lifetime": connect_timeout + len(plan) * (LOST_AFTER + 5) + 60,
                }
            )
            _, ok, failed, first_error = _expect(parent, "connected", connect_timeout + 30)
            result["connected"] = ok
            if failed:
                print(f"  ! {failed} streams did not open: {first_error}", file=sys.stderr)
            await asyncio.sleep(0.5)
            return await _run_bulks(stack, plan, parent, client), path
        finally:
            await client.aclose()

    try:
        bulks, result["path"] = asyncio.run(run())
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
    n = len(expect)
    ids = [i for bulk in plan for i, _ in bulk["items"]]
    now = asyncio.run(_versions(stack.db_name, ids))
    events = stats.pop("events")
    latencies: list[float] = []
    firsts: list[float] = []
    lost = 0
    per_bulk = []
    first = 0
    for b, (bulk, done) in enumerate(zip(plan, bulks, strict=True)):
        size = len(bulk["items"])
        applied = all(now.get(i, ("", 0)) == (bulk["to"], v + 1) for i, v in bulk["items"])
        lat_b: list[float] = []
        lost_b = 0
        if applied:
            for v in range(result["connected"]):
                got = [arrivals[v * n + k] for k in range(first, first + size)]
                late = [a for a in got if a == 0.0 or a - done["sent"] > LOST_AFTER]
                lost_b += len(late)
                if not late:
                    lat_b.append((max(got) - done["sent"]) * 1000)
                    firsts.append((min(got) - done["sent"]) * 1000)
        mask = bulk_masks[b]
        carrying = [e for e in events.values() if e[3] & mask]
        lat_b.sort()
        latencies += lat_b
        lost += lost_b
        per_bulk.append(
            {
                "from": bulk["from"],
                "to": bulk["to"],
                "dispatches": size,
                "applied": applied,
                "status": done["status"],
                "error": done["error"],
                "post_ms": (done["answered"] - done["sent"]) * 1000,
                "answer_bytes": done["answer_bytes"],
                "all_viewers_ms": (done["all_viewers_at"] - done["sent"]) * 1000
                if done["all_viewers_at"]
                else None,
                "p50_ms": percentile(lat_b, 50),
                "p99_ms": percentile(lat_b, 99),
                "max_ms": lat_b[-1] if lat_b else float("nan"),
                "lost": lost_b,
                "events": len(carrying),
                "bytes_per_viewer": sum(e[0] for e in carrying),
                "cards_in_events": sum(e[1] for e in carrying),
                "deletes_in_events": sum(e[2] for e in carrying),
                "server_cpu_s": done["server_cpu_s"],
            }
        )
        first += size
    latencies.sort()
    firsts.sort()
    result.update(
        {
            "per_bulk": per_bulk,
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "max_ms": latencies[-1] if latencies else float("nan"),
            "first_card_p50_ms": percentile(firsts, 50),
            "lost": lost,
            "post_errors": sum(1 for d in bulks if d["status"] != 200),
            "streams_cut_off": stats["ended_by_server"] + stats["lost_connections"],
            "client": stats,
        }
    )
    return result


# -- reporting ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dispatches", type=int, default=500, help="open dispatches on the board")
    parser.add_argument("--small", type=int, default=50, help="the smaller board (query count)")
    parser.add_argument("--assets", type=int, default=12, help="assets added at nairobi")
    parser.add_argument("--renders", type=int, default=200, help="board GETs over HTTP")
    parser.add_argument("--count-requests", type=int, default=5, help="in-process counted GETs")
    parser.add_argument("--api-requests", type=int, default=200, help="API page GETs")
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--bulks", type=int, default=3)
    parser.add_argument("--bulk-size", type=int, default=50, help="dispatches per bulk")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20 renders, 20 API GETs, 20 viewers"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--budget", type=float, default=300, help="seconds for the whole run")
    args = parser.parse_args(argv)
    if args.quick:
        args.renders, args.api_requests = min(args.renders, 20), min(args.api_requests, 20)
        args.viewers = min(args.viewers, 20)
    if not 10 <= args.small < args.dispatches or args.bulk_size < 5:
        parser.error("need 10 <= --small < --dispatches and --bulk-size >= 5")
    install_signal_handlers(args.budget)
    machine, code = machine_description(), code_version()
    load0 = os.getloadavg()
    print(f"machine: {machine}\ncode: {code}\nload: {load0[0]:.2f}", file=sys.stderr)
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
        seeded = asyncio.run(asyncio.wait_for(seed_and_count(args), 240))
        token = seeded.pop("api_token")
        plan = seeded.pop("plan")
        report["seed"] = seeded
        print(f"-- render, {args.dispatches} open", file=sys.stderr, flush=True)
        report["render"] = asyncio.run(render_phase(stack.url, args.renders))
        print("-- API list", file=sys.stderr, flush=True)
        report["api"] = asyncio.run(
            asyncio.wait_for(
                api_phase(stack.url, token, args.api_requests, seeded["api_limit_max"]), 180
            )
        )
        print(
            f"-- bulks: {args.viewers} viewers, {args.bulks} bulks of {args.bulk_size}",
            file=sys.stderr,
            flush=True,
        )
        live = live_phase(stack, plan, args)
        report["live"] = live
        report["server_errors"] = server_errors(stack)
        assert stack.server is not None
        report["render_lock_timeouts"] = stack.server.log_tail(2_000_000).count(
            "not acquired in time"
        )
        if report["server_errors"] or live["post_errors"] or live["lost"]:
            stack.keep_log = True
    report["load"] = [round(x, 2) for x in (load0[0], os.getloadavg()[0])]

    # -- the summary ----------------------------------------------------------------------------
    s, r, a = report["seed"], report["render"], report["api"]
    print()
    print("| status board | queries per GET | p50 | p99 | max | in-process p50 | page | per card |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for n, b in sorted(s["boards"].items()):
        q = "/".join(map(str, b["queries"]))
        http = ["—"] * 5
        if n == args.dispatches:  # the HTTP render is of the big board
            http = [
                ms(r["p50_ms"]),
                ms(r["p99_ms"]),
                ms(r["max_ms"]),
                kib(r["page_bytes"]),
                f"{r['bytes_per_card']:,.0f} B",
            ]
        print(
            f"| {n:,} open dispatches | {q} | {http[0]} | {http[1]} | {http[2]} | "
            f"{ms(b['inprocess_p50_ms'])} | {http[3]} | {http[4]} |"
        )
    print()
    print("| API list (bearer token) | queries | p50 | p99 | max | bytes | items |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(
        f"| one page, limit={a['limit']} | {s['api_queries']} | {ms(a['p50_ms'])} | "
        f"{ms(a['p99_ms'])} | {ms(a['max_ms'])} | {kib(a['page_bytes'])} | {a['page_items']} |"
    )
    still_open = sum(a["walk_statuses"].get(x, 0) for x in ("created", "assigned", "in_progress"))
    print(
        f"| every dispatch of the site, {a['walk_pages']} pages | — | {ms(a['walk_p50_ms'])} | "
        f"{ms(a['walk_p99_ms'])} | {ms(a['walk_max_ms'])} | — | {a['walk_items']} "
        f"({still_open} open) |"
    )
    print()
    print(
        f"| bulk of {args.bulk_size} to {live['connected']}/{args.viewers} viewers | POST | "
        "to every viewer p50 | p99 | max | bytes per viewer | events | lost | server CPU |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for b, pb in enumerate(live["per_bulk"], 1):
        word = f"{pb['from']} → {pb['to']}".replace("_", " ")
        flag = "" if pb["status"] == 200 and pb["applied"] else f" ! {pb['error'] or 'not applied'}"
        print(
            f"| {b}. {word}{flag} | {ms(pb['post_ms'])} | {ms(pb['p50_ms'])} | "
            f"{ms(pb['p99_ms'])} | {ms(pb['max_ms'])} | {kib(pb['bytes_per_viewer'])} | "
            f"{pb['events']} | {pb['lost']} | {pb['server_cpu_s'] * 1000:.0f} ms |"
        )
    print(
        f"| all bulks | — | {ms(live['p50_ms'])} | {ms(live['p99_ms'])} | {ms(live['max_ms'])} "
        f"| — | — | {live['lost']} | — |"
    )
    print()
    counts = s["bulk_counts"]
    small_n, big_n = min(counts), max(counts)
    slope = (counts[big_n]["queries"] - counts[small_n]["queries"]) / max(1, big_n - small_n)
    top = ", ".join(f"{k}: {v}" for k, v in list(counts[big_n]["by_kind"].items())[:6])
    print(
        f"bulk POST in-process (created → assigned): {small_n} dispatches "
        f"{counts[small_n]['queries']} statements in {ms(counts[small_n]['inprocess_ms'])}, "
        f"{big_n} dispatches {counts[big_n]['queries']} in {ms(counts[big_n]['inprocess_ms'])} "
        f"({slope:.1f} per more dispatch; most: {top}); answer {kib(counts[big_n]['answer_bytes'])}"
    )
    spent = counts[big_n]["publishes"]
    print(
        f"  of those {big_n}: publishes after commit "
        + "; ".join(
            f"{name} ({int(n)} topics): {ms(t)}, {int(q)} statements"
            for name, (n, t, q) in sorted(spent.items(), key=lambda kv: -kv[1][1])
        )
        + " (the board's viewers get its event after the per-dispatch topics' publishes)"
    )
    print(
        f"  API walk, p50 per page: {', '.join(ms(x) for x in a['walk_page_p50_ms'])}; "
        f"board page on the wire {kib(r['wire_bytes'])} "
        f"({r['content_encoding'] or 'not compressed'}), {r['cards_on_page']} cards, "
        f"{r['cards_overdue']} overdue, {r['cards_with_needs']} saying what blocks them"
    )
    print(
        f"  first card at a viewer p50 {ms(live['first_card_p50_ms'])} after the POST left; "
        f"streams the server cut off: {live['streams_cut_off']}; "
        f"client bytes in {live['client']['bytes_in']:,}, messages {live['client']['messages_in']}"
    )
    print(
        f"setup: {s['demo_open_cancelled']} demo dispatches cancelled, {s['assets']} assets, "
        f"{args.small} dispatches through the rules ({ms(s['via_rules_ms_each'])} each), "
        f"{args.dispatches - args.small} inserted in {ms(s['direct_insert_ms'])}; shape check "
        f"{'ok' if s['shape']['ok'] else 'FAILED'} ({s['shape']['detail_rows']}); board after "
        f"the in-process bulks: {s['columns']}, {s['overdue']} overdue"
    )
    if report["render_lock_timeouts"]:
        print(f"  ! the server logged {report['render_lock_timeouts']} render-lock timeouts")
    if report["server_errors"]:
        print(f"  ! server tracebacks: {report['server_errors'][:5]}")
    print(
        f"load average {report['load'][0]} at the start, {report['load'][1]} at the end "
        f"(2 cores shared); {time.monotonic() - started:.0f} s in all"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
