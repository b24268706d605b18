"""Outsiders, swept from the route table (issue 12, item 4): every route under `/s/{site}`
(pages, actions, streams, beats, polls, status frames, exports, editors, and the API's under
`/api/v1/s/{site}`) and under `/o/{org}`, for every method it takes, asked by signed-in
people who are not members (managers) with the ids of real entities of that site → the same
404, byte for byte, as for a site that does not exist, and nothing of the site in it.

The routes are read from the real app, so a route added later is swept without anyone
listing it; one the sweep cannot fill in (a path parameter it has no id for) fails the run,
and so does a route that lives outside the guarded mounts without being listed below as
deliberately outside them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route

from tests.conftest import Client
from tests.factories import api_token, real_ids, real_org_ids

SITE_PREFIXES = ("/s/{site}", "/api/v1/s/{site}")
ORG_PREFIX = "/o/{org}"

# Routes outside /s/{site} and /o/{org}, each deliberately so. A new route out there fails
# test_every_route_is_swept_or_deliberately_outside_the_tenants until it is listed here
# with why it needs no membership (or is moved under the site or organisation mount).
OUTSIDE_TENANTS = {
    "/healthz": "load balancers' probe: says up or down, nothing of a tenant",
    "/metrics": "platform operators' figures (superusers, METRICS_TOKEN); 404 for others",
    "/csp-report": "browsers' CSP reports (POST); operators read them (GET)",
    "/login": "signing in",
    "/logout": "signing out",
    "/": "home: lists the user's own sites only",
    "/me": "one's own account",
    "/me/name": "one's own account",
    "/me/password": "one's own account",
    "/me/sessions/end": "one's own account",
    "/me/tokens": "one's own API tokens",
    "/me/tokens/{token:id}/revoke": "one's own API tokens (someone else's: refused)",
    "/welcome/{token}": "a sign-in link's page, by its secret",
    "/api/v1/openapi.json": "the API's description: no data",
}
OUTSIDE_MOUNTS = {
    "/static": "files",
    "/admin": "platform operators only (OperatorOnlyMiddleware; tests/test_admin.py)",
}

# Who asks: signed in, not a member of the site (not a manager of the organisation).
OUTSIDERS = {
    "nairobi": ("oscar", "dana"),  # another organisation's manager; the same one's member
    "nakuru": ("oscar", "alice"),
    "killarney": ("oscar", "dana"),
    "workshop": ("oscar", "erin"),
    "other": ("admin", "alice"),  # Demo Logistics' manager is nobody at Other Co
}
ORG_OUTSIDERS = {
    "demo-logistics": ("oscar", "alice"),  # another organisation's manager; a dispatcher
    "other-co": ("admin", "dana"),
}
UNKNOWN_SITE = "no-such-site"
UNKNOWN_ORG = "no-such-org"
TIMEOUT = 10.0  # a stream that opened for an outsider would never end: that is a leak too

PARAM = re.compile(r"{(\w+)(?::\w+)?}")


@dataclass(frozen=True)
class Endpoint:
    path: str  # the full template, "/s/{site}/boards/{board:id}"
    methods: tuple[str, ...]
    name: str

    @property
    def key(self) -> str:
        return f"{'|'.join(self.methods)} {self.path}"

    @property
    def params(self) -> list[str]:
        return PARAM.findall(self.path)

    @property
    def scope(self) -> str:
        """ "site" or "org": the mount that guards it; "" for routes outside both."""
        if self.path.startswith(SITE_PREFIXES):
            return "site"
        if self.path.startswith(ORG_PREFIX):
            return "org"
        return ""

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")

    def fill(self, values: dict[str, str]) -> str:
        return PARAM.sub(lambda m: values[m.group(1)], self.path)


def walk(routes: list[BaseRoute], prefix: str = "") -> Iterator[Endpoint | tuple[str, Mount]]:
    """Every route of the table, through every Mount (the API app's too); a Mount without
    routes of its own (static files, another framework's app) comes out as (path, mount)."""
    for route in routes:
        if isinstance(route, Mount):
            inner = route.routes
            if inner:
                yield from walk(list(inner), prefix + route.path)
            else:
                yield prefix + route.path, route
        elif isinstance(route, Route):
            methods = route.methods or {"GET", "HEAD", "POST"}
            yield Endpoint(prefix + route.path, tuple(sorted(methods)), route.name)
        else:
            raise AssertionError(f"a route the sweep does not know how to read: {route!r}")


def route_table(app) -> tuple[list[Endpoint], list[Endpoint], list[str]]:
    """(the swept endpoints, those outside the tenants' mounts, opaque mounts' paths)."""
    swept: list[Endpoint] = []
    outside: list[Endpoint] = []
    opaque: list[str] = []
    for item in walk(app.routes):
        if isinstance(item, Endpoint):
            (swept if item.scope else outside).append(item)
        else:
            opaque.append(item[0])
    return swept, outside, opaque


def id_for(param: str, path: str, ids: dict[str, int]) -> int | None:
    """The real id for a path parameter: by its name, or for the API's bare `{id}` by the
    collection it follows (`/dispatches/{id}` → a dispatch)."""
    if param in ids:
        return ids[param]
    if param == "id":
        before = path.split("{id}", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        for singular in (before[:-3] + "y", before[:-2], before[:-1]):  # -ies, -es, -s
            if singular in ids:
                return ids[singular]
    return None


def fill_in(endpoint: Endpoint, scope_value: str, ids: dict[str, int]) -> dict[str, str] | None:
    """The endpoint's path parameters with real ids of the site (organisation), or None if
    the sweep has no id for one of them."""
    values = {"site": scope_value, "org": scope_value}
    for param in endpoint.params:
        if param in ("site", "org"):
            continue
        found = id_for(param, endpoint.path, ids)
        if found is None:
            return None
        values[param] = str(found)
    return values


async def secrets_of_site(slug: str) -> list[str]:
    """What must never reach an outsider: the site's name and address, and the names and
    numbers of what is in it."""
    from tables.appointments import Appointment
    from tables.boards import Board, Ticket
    from tables.dispatches import Asset, Dispatch
    from tables.people import Site
    from tables.stocktakes import Item

    site = await Site.select(Site.id, Site.name).where(Site.slug == slug).first()
    sid = site["id"]
    found = [site["name"], f"/s/{slug}/", f'/s/{slug}"', f"api/v1/s/{slug}/"]
    for column, where in (
        (Dispatch.number, Dispatch.site == sid),
        (Dispatch.title, Dispatch.site == sid),
        (Board.name, Board.site == sid),
        (Ticket.title, Ticket.board._.site == sid),
        (Asset.registration, Asset.site == sid),
        (Appointment.customer, Appointment.site == sid),
        (Item.name, Item.site == sid),
    ):
        rows = await column._meta.table.select(column.as_alias("v")).where(where).limit(200)
        found += [row["v"] for row in rows]
    return sorted({text for text in found if text and len(text) >= 5})


async def secrets_of_org(slug: str) -> list[str]:
    from tables.people import Organisation, Site

    org = await Organisation.select().where(Organisation.slug == slug).first()
    sites = await Site.select(Site.name).where(Site.organisation == org["id"])
    return sorted({org["name"], f"/o/{slug}/", *(s["name"] for s in sites)})


@dataclass
class Tally:
    requests: int = 0  # to the real site (organisation); as many again to the unknown one
    leaks: list[str] = field(default_factory=list)


async def ask(
    client: httpx.AsyncClient, method: str, url: str, *, api: bool, csrf: str, token: str
) -> httpx.Response:
    """One request as a browser tab (CSRF field and header, so the CSRF check lets it
    through to the membership check) or as an API client (its bearer token, no cookies)."""
    headers: dict[str, str] = {}
    kwargs: dict = {}
    if api:
        headers["Authorization"] = f"Bearer {token}"
        if method in ("POST", "PUT", "PATCH"):
            kwargs["json"] = {}
    elif method not in ("GET", "HEAD", "OPTIONS"):
        headers["X-CSRFToken"] = csrf
        kwargs["data"] = {"csrftoken": csrf}
    return await asyncio.wait_for(
        client.request(method, url, headers=headers, **kwargs), timeout=TIMEOUT
    )


def compare(
    tally: Tally, who: str, method: str, url: str, got: httpx.Response, unknown: httpx.Response,
    secrets: list[str],
) -> None:  # fmt: skip
    where = f"{method} {url} as {who}"
    if got.status_code != 404:
        tally.leaks.append(f"{where}: {got.status_code} (expected 404) {got.text[:200]!r}")
        return
    if (got.status_code, got.headers.get("content-type"), got.content) != (
        unknown.status_code,
        unknown.headers.get("content-type"),
        unknown.content,
    ):
        tally.leaks.append(f"{where}: answer differs from an unknown one's {got.text[:300]!r}")
        return
    text = got.text
    if shown := [s for s in secrets if s in text]:
        tally.leaks.append(f"{where}: shows {shown[:5]}")


async def sweep_scope(
    app,
    as_user,
    tally: Tally,
    endpoints: list[Endpoint],
    scope_value: str,
    unknown: str,
    users: tuple[str, ...],
    ids: dict[str, int],
    secrets: list[str],
) -> set[str]:
    """Every endpoint that can be filled in for this site (organisation), for every
    outsider and every method; returns the endpoints (templates) it swept."""
    swept: set[str] = set()
    plan = [(e, values) for e in endpoints if (values := fill_in(e, scope_value, ids))]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as api_client:
        for username in users:
            browser: Client = await as_user(username)
            token = await api_token(username, name="route sweep")
            try:
                for endpoint, values in plan:
                    url = endpoint.fill(values)
                    unknown_url = endpoint.fill({**values, "site": unknown, "org": unknown})
                    client = api_client if endpoint.is_api else browser.http
                    for method in endpoint.methods:
                        kwargs = {"api": endpoint.is_api, "csrf": browser.csrftoken,
                                  "token": token}  # fmt: skip
                        got = await ask(client, method, url, **kwargs)
                        other = await ask(client, method, unknown_url, **kwargs)
                        tally.requests += 1
                        compare(tally, username, method, url, got, other, secrets)
                    swept.add(endpoint.key)
            finally:
                from tables.apitokens import ApiToken, digest

                await ApiToken.delete().where(ApiToken.token == digest(token))
    return swept


async def test_every_route_is_swept_or_deliberately_outside_the_tenants(app):
    swept, outside, opaque = route_table(app)
    assert len([e for e in swept if e.scope == "site"]) >= 150  # the walk reached them
    assert any(e.is_api for e in swept) and any(e.scope == "org" for e in swept)
    under_mounts = tuple(m + "/" for m in OUTSIDE_MOUNTS)
    unlisted = sorted(
        {e.path for e in outside if not e.path.startswith(under_mounts)} - set(OUTSIDE_TENANTS)
    )
    stray_mounts = [p for p in opaque if p not in OUTSIDE_MOUNTS and not p.startswith(under_mounts)]
    assert not unlisted, f"routes outside /s/{{site}} and /o/{{org}}, unlisted: {unlisted}"
    assert not stray_mounts, f"mounts the sweep cannot read: {stray_mounts}"


async def test_outsiders_get_the_unknown_sites_404_on_every_route(app, as_user, figures):
    started = time.perf_counter()
    endpoints, _, _ = route_table(app)
    site_endpoints = [e for e in endpoints if e.scope == "site"]
    org_endpoints = [e for e in endpoints if e.scope == "org"]
    tally = Tally()
    covered: set[str] = set()
    for slug, users in OUTSIDERS.items():
        ids = await real_ids(slug)
        done = await sweep_scope(
            app, as_user, tally, site_endpoints, slug, UNKNOWN_SITE, users, ids,
            await secrets_of_site(slug),
        )  # fmt: skip
        covered |= done
    for org, users in ORG_OUTSIDERS.items():
        ids = await real_org_ids(org)
        covered |= await sweep_scope(
            app, as_user, tally, org_endpoints, org, UNKNOWN_ORG, users, ids,
            await secrets_of_org(org),
        )  # fmt: skip

    found = {e.key for e in endpoints}
    missing = sorted(found - covered)
    elapsed = time.perf_counter() - started
    figures(
        f"route sweep: {len(found)} routes found "
        f"({sum(not e.is_api for e in site_endpoints)} under /s/{{site}}, "
        f"{sum(e.is_api for e in site_endpoints)} under /api/v1/s/{{site}}, "
        f"{len(org_endpoints)} under /o/{{org}}), "
        f"{len(covered & found)} covered; {tally.requests} requests "
        f"(route x site x outsider x method, each also against an unknown one), "
        f"{len(tally.leaks)} leaks, {elapsed:.1f}s"
    )
    assert not missing, f"routes the sweep has no ids for: {missing}"
    assert len(covered & found) == len(found)
    assert not tally.leaks, "\n".join(tally.leaks[:30])


async def test_the_sweep_sees_a_members_answer_as_a_leak(app, as_user):
    """The control: the same comparison, asked by a member, reports every route."""
    endpoints, _, _ = route_table(app)
    sample = [e for e in endpoints if e.scope == "site" and not e.is_api][:8]
    sample = [e for e in sample if "GET" in e.methods and not e.path.endswith("/live")]
    tally = Tally()
    await sweep_scope(
        app, as_user, tally, sample, "nairobi", UNKNOWN_SITE, ("alice",),
        await real_ids("nairobi"), await secrets_of_site("nairobi"),
    )  # fmt: skip
    assert sample
    assert len(tally.leaks) == tally.requests == len(sample) * 2  # GET and HEAD


@pytest.mark.parametrize("param", ["draft", "board", "ticket", "appointment", "stocktake",
                                   "line", "movement", "dispatch", "asset"])  # fmt: skip
async def test_the_sweep_has_a_real_id_of_every_kind(param):
    """Each entity kind the routes take exists at some demo site, so the sweep puts a real
    id in its paths (not one that would 404 for members too)."""
    everywhere = [await real_ids(slug) for slug in OUTSIDERS]
    assert any(param in ids for ids in everywhere)
