"""A test-only live page scoped to one entity of a site, on the real app.

`/s/{site}/things/{thing}` (things 1..3 of every site; any other id is a 404) is a tiny
page with one live region, `#note-{thing}`. `POST …/{thing}/note` publishes that region
for that thing only, through the kit (`LiveArea.done`), so the page's stream, heartbeat,
poll and status endpoints are the kit's own (`THINGS.routes`), scoped by
`params=("thing",)`.

    python -m uvicorn tests.entity_app:create_app --factory --port N

The database must already be migrated and hold the demo data (`main.prepare()`). The notes
live in this process's memory: run one server process.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

import routes.convertors  # noqa: F401  (registers the `:id` convertor before routes are built)
from routes.access import SiteMembershipMiddleware
from routes.forms import read_form
from routes.fragments import partial, render_fragment
from routes.live import Change, LiveArea, Params, Render
from tables.people import SiteRef

THING_IDS = range(1, 4)
NOTE_MAX = 200


@dataclass
class Notes:
    """What has been noted on one thing, in this process."""

    count: int = 0
    last: str = ""


NOTES: dict[tuple[int, int], Notes] = {}


def notes_of(site: SiteRef, thing: int) -> Notes:
    return NOTES.setdefault((site.id, thing), Notes())


def note_region(site: SiteRef, thing: int) -> str:
    """The `#note-{thing}` element: which thing, how many notes, the latest one."""
    notes = notes_of(site, thing)
    return (
        f'<p id="note-{thing}" class="thing-note">thing {thing} of {html.escape(site.slug)}: '
        f'<span class="count">{notes.count}</span> notes; '
        f'last: <q class="last">{html.escape(notes.last)}</q></p>'
    )


async def render_thing(view: Render) -> str:
    thing = view.params["thing"]
    if not view.change.redraws("note"):
        return ""
    return partial(f"note-{thing}", note_region(view.site, thing))


async def thing_exists(site: SiteRef, params: Params) -> bool:
    return params["thing"] in THING_IDS


THINGS = LiveArea(
    "thing",
    params=("thing",),
    render=render_thing,
    regions={"note"},
    exists=thing_exists,
)


async def thing_page(request: Request) -> Response:
    """The page, wired like base.html wires a live page (stream, cursor, beat, presence)."""
    site, params = await THINGS.where(request)
    live = await THINGS.view(request)
    thing = params["thing"]
    presence = render_fragment("live/_presence.html", viewers=live.viewers)
    a = html.escape  # attribute values: the URLs carry `&`
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Thing {thing}</title></head>
<body>
<div id="presence" class="presence">{presence}</div>
<main><h1>Thing {thing}</h1>{note_region(site, thing)}</main>
<div id="live" hidden hx-sse:connect="{a(live.stream_url)}"
     data-beat-url="{a(live.beat_url)}" data-poll-url="{a(live.poll_url)}"
     data-status-url="{a(live.status_url)}"></div>
<span id="live-cursor" hidden data-cursor="{a(live.cursor)}"></span>
</body></html>"""
    return HTMLResponse(body)


async def thing_note(request: Request) -> Response:
    site, params = await THINGS.where(request)  # 404 for a thing that is not the site's
    form = await read_form(request)  # the CSRF check has read the body already
    text = form.raw("note").strip()[:NOTE_MAX]
    notes = notes_of(site, params["thing"])
    notes.count += 1
    notes.last = text
    return await THINGS.done(
        request,
        Change(whole={"note"}),
        kind="note",
        notice=f"Noted on thing {params['thing']}.",
    )


thing_routes = [
    Route("/{thing:id}", thing_page, name="thing"),
    Route("/{thing:id}/note", thing_note, methods=["POST"], name="thing_note"),
    *THINGS.routes("/{thing:id}"),
]


def create_app() -> Starlette:
    """The real app, plus `/s/{site}/things/…` under the same membership middleware."""
    import main

    app = main.create_app()
    things = Mount(
        "/s/{site}/things",
        routes=thing_routes,
        middleware=[Middleware(SiteMembershipMiddleware)],
    )
    table = app.router.routes
    (site_at,) = [i for i, r in enumerate(table) if isinstance(r, Mount) and r.path == "/s/{site}"]
    # Before the site mount, not after it: a Mount matches every path under its prefix, so
    # `/s/{site}` would take `/s/nairobi/things/1` and answer its own 404.
    table.insert(site_at, things)
    return app
