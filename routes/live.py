"""How a route makes its page live (SPEC §4), so that each area only declares:

    HOME = LivePage("site_home", topics=..., regions=...)
    routes = [..., *HOME.routes(site_home_stream)]

and in its page handler passes `live=await HOME.view(request)` to the template. The page
then holds one SSE stream at `P/live` (resumed from the cursor embedded at render time),
heartbeats at `P/live/beat` while open (presence), and falls back to `P/live/poll`.

Broadcast fragments are rendered once per change by `render_fragment`, without a request:
nothing per viewer can get into them (no CSRF token, no user name of the viewer), and the
links in them are paths (`path_for`), right for every viewer whatever host they used.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from live.events import Cursor
from live.hub import LiveHub
from live.presence import Viewer
from routes.access import site_of
from routes.common import templates
from tables.people import SiteAccess

CONN_ID = re.compile(r"[A-Za-z0-9_-]{8,40}")

Regions = Callable[[Request, SiteAccess], Awaitable[str]]
Topics = Callable[[SiteAccess], list[str]]


def hub_of(request: Request) -> LiveHub:
    return request.app.state.hub


def render_fragment(name: str, **context: object) -> str:
    """Render a `_fragment.html` for broadcast: once per change, the same for every viewer."""
    return templates.get_template(name).render(context)


def partial(target_id: str, html: str, swap: str = "outerMorph") -> str:
    """Wrap a fragment for htmx 4. Morphing keeps what a viewer is typing in a field."""
    return f'<hx-partial hx-target="#{target_id}" hx-swap="{swap}">{html}</hx-partial>'


def toast(message: str, kind: str = "info") -> str:
    """A notice for #toasts. `message` is escaped unless it is Markup: it often carries
    what people typed (a destination, a note)."""
    role = "alert" if kind == "error" else "status"
    html = Markup('<div class="toast toast--{}" role="{}">{}</div>').format(kind, role, message)
    return partial("toasts", str(html), swap="beforeend")


def viewer_of(access: SiteAccess) -> Viewer:
    return Viewer.for_user(access.user_id, access.username, access.display_name)


def render_presence(
    page: str, viewers: list[Viewer], joined: list[Viewer], left: list[Viewer]
) -> str:
    """The hub's presence renderer: avatars for #presence, notices for #toasts."""
    html = partial(
        "presence", render_fragment("live/_presence.html", viewers=viewers), swap="innerHTML"
    )
    notices = render_fragment("live/_toasts.html", joined=joined, left=left)
    if notices.strip():
        html += partial("toasts", notices, swap="beforeend")
    return html


@dataclass(frozen=True)
class LiveView:
    """What base.html needs to wire a live page: stream, heartbeat and poll URLs."""

    stream_url: str
    beat_url: str
    poll_url: str
    cursor: str
    viewers: list[Viewer]


@dataclass(frozen=True)
class LivePage:
    """A live page: its route name, its topics and how to render its live regions fresh."""

    name: str  # the page's route name; its stream is "<name>_live"
    topics: Topics
    regions: Regions  # all live regions as <hx-partial>s, for a resync or a poll

    def page_key(self, access: SiteAccess) -> str:
        return f"{self.name}:{access.site_id}"

    async def view(self, request: Request, **path_params: str) -> LiveView:
        access = site_of(request)
        hub = hub_of(request)
        cursor = await hub.cursor(self.topics(access))
        conn = secrets.token_urlsafe(12)
        params = {"site": access.slug, **path_params}
        base = request.app.url_path_for(f"{self.name}_live", **params)
        return LiveView(
            stream_url=f"{base}?{urlencode({'cursor': cursor, 'conn': conn})}",
            beat_url=f"{request.app.url_path_for(f'{self.name}_beat', **params)}?conn={conn}",
            poll_url=str(request.app.url_path_for(f"{self.name}_poll", **params)),
            cursor=cursor,
            viewers=await hub.presence.viewers(self.page_key(access)),
        )

    async def stream(self, request: Request) -> Response:
        access = site_of(request)
        conn = request.query_params.get("conn", "")
        resume = request.headers.get("last-event-id") or request.query_params.get("cursor")
        return hub_of(request).stream(  # type: ignore[return-value]
            self.topics(access),
            resume,
            lambda: self.regions(request, access),
            page=self.page_key(access),
            conn_id=conn if CONN_ID.fullmatch(conn) else None,
            viewer=viewer_of(access),
        )

    async def beat(self, request: Request) -> Response:
        access = site_of(request)
        conn = request.query_params.get("conn", "")
        if not CONN_ID.fullmatch(conn):
            return Response("Missing or malformed conn.", status_code=400)
        await hub_of(request).beat(self.page_key(access), conn, viewer_of(access))
        return Response(status_code=204)

    async def poll(self, request: Request) -> Response:
        """The fallback when the stream cannot be held: 204 if nothing changed since
        `cursor`, else the live regions fresh plus the new cursor."""
        access = site_of(request)
        topics = self.topics(access)
        hub = hub_of(request)
        now = await hub.broker.cursor(topics)
        seen = Cursor.decode(request.query_params.get("cursor"), topics)
        if seen is not None and seen == now:
            return Response(status_code=204)
        html = await self.regions(request, access)
        html += partial(
            "live-cursor",
            f'<span id="live-cursor" hidden data-cursor="{now.encode(topics)}"></span>',
            swap="outerHTML",
        )
        return HTMLResponse(html)

    def routes(self, path: str = "") -> list[Route]:
        return [
            Route(f"{path}/live", self.stream, name=f"{self.name}_live"),
            Route(f"{path}/live/beat", self.beat, methods=["POST"], name=f"{self.name}_beat"),
            Route(f"{path}/live/poll", self.poll, name=f"{self.name}_poll"),
        ]
