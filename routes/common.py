"""What every area's routes share: the app's services, templates, the page-or-fragment
helper, and messages that survive a redirect."""

from __future__ import annotations

import base64
import functools
import json
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.datastructures import URL
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from tables.base import kg

if TYPE_CHECKING:
    from live.hub import LiveHub
    from live.locks import LockStore
    from routes.security import LoginThrottle
    from settings import Settings

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
# Redis not answering: what presence, locks, cursors and publishing raise meanwhile.
BROKER_DOWN = (RedisConnectionError, RedisTimeoutError)

T = TypeVar("T")
log = logging.getLogger("floorboard")


@dataclass(frozen=True)
class Services:
    """What the app runs on, made once by `create_app` and reached by `services(request)`."""

    settings: Settings
    hub: LiveHub
    locks: LockStore
    login_throttle: LoginThrottle

    @property
    def broker(self):
        return self.hub.broker


def services(conn: HTTPConnection) -> Services:
    return conn.app.state.services


async def best_effort(read: Awaitable[T], fallback: T) -> T:
    """A read for display only (who is here, who is editing what, the page's stream
    cursor): while Redis is not answering, the page is drawn without it instead of not
    at all. An empty cursor makes the page's stream start with a resync."""
    try:
        return await read
    except BROKER_DOWN as exc:
        log.warning("drawn without the live service (%s: %s)", type(exc).__name__, exc)
        return fallback


def path_builder(app: Any) -> Any:
    """`app.url_path_for`, remembered: Starlette finds a route by trying every route in
    turn (exceptions included), and a drafts page with 500 parcels asks for hundreds of
    paths — that search was most of its render time."""

    @functools.lru_cache(maxsize=16384)
    def cached(name: str, params: tuple[tuple[str, Any], ...]) -> str:
        return str(app.url_path_for(name, **dict(params)))

    def path_for(name: str, /, **params: Any) -> str:
        return cached(name, tuple(sorted(params.items())))

    return path_for


def path_for(name: str, **params: Any) -> str:
    """A path from the route table (set at start-up), for links in broadcast fragments."""
    url_path_for: Any = templates.env.globals["path_for"]
    return str(url_path_for(name, **params))


@dataclass(frozen=True, slots=True)
class Area:
    """One area of a site, as listed on its home page and in the navigation."""

    title: str
    route: str  # the route name of the area's page; it takes `site`
    blurb: str


# Areas register themselves here as they are built (routes/<area>.py appends).
AREAS: list[Area] = []


def frame(request: Request) -> dict[str, Any]:
    """What base.html needs on every page: who is signed in, the site, the CSRF token, and
    the messages a redirect brought along."""
    user = request.scope.get("user")
    me = user.user if user is not None and user.is_authenticated else None
    return {
        "me": me,
        "site": getattr(request.state, "site", None),
        # The viewer's standing at the site, whatever `site` a page puts in its context.
        "access": getattr(request.state, "site", None),
        "csrftoken": request.scope.get("csrftoken", ""),
        "site_areas": AREAS,
        "messages": messages_of(request),
    }


# -- messages that survive Post/Redirect/Get (what htmx users see as toasts) --------------

FLASH_COOKIE = "fb_messages"


def flash(response: Response, text: str, kind: str = "info") -> Response:
    """Carry a message to the page the redirect lands on ("Added 3 parcels")."""
    payload = base64.urlsafe_b64encode(json.dumps([[kind, str(text)[:500]]]).encode())
    response.set_cookie(
        FLASH_COOKIE, payload.decode(), max_age=60, httponly=True, samesite="lax", path="/"
    )
    return response


def messages_of(conn: HTTPConnection) -> list[dict[str, str]]:
    raw = conn.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    try:
        items = json.loads(base64.urlsafe_b64decode(raw.encode()))
        return [{"kind": str(k), "text": str(t)} for k, t in items if k in ("info", "error")]
    except (ValueError, TypeError):
        return []  # a mangled cookie is dropped, never an error


templates = Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[frame])
# Templates are read once per process: checking every included file's mtime cost a stat
# per include (600 per drafts page); the server is restarted to pick up template edits.
templates.env.auto_reload = False


def ago(moment: datetime) -> str:
    """ "2 min ago" / "in 23 h", as rendered; app.js keeps `time[data-ago]` fresh."""
    seconds = (moment - datetime.now(UTC)).total_seconds()
    past, span = seconds < 0, abs(seconds)
    if span < 45:
        return "just now" if past else "in under a minute"
    if span < 3600:
        amount = f"{round(span / 60)} min"
    elif span < 86400 * 2:
        amount = f"{round(span / 3600)} h"
    else:
        amount = f"{round(span / 86400)} days"
    return f"{amount} ago" if past else f"in {amount}"


def now_local(timezone: str) -> str:
    return datetime.now(ZoneInfo(timezone)).strftime("%d %b %Y %H:%M")


templates.env.filters.update(kg=kg, ago=ago)
templates.env.globals["now_local"] = now_local


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def wants_fragment(request: Request) -> bool:
    """True when htmx asked for part of a page rather than a whole one.

    htmx 4 says "full" when it targets <body> (boosted links, hx-select) and for history
    restores, which need the whole page; everything else is a partial swap.
    """
    return (
        is_htmx(request)
        and request.headers.get("hx-request-type") == "partial"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def render(
    request: Request,
    page: str,
    context: Mapping[str, Any] | None = None,
    *,
    fragment: str | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The one place that decides between a full page and a fragment of it.

    `fragment` is the `_`-prefixed template that owns the region htmx targets; it gets the
    same context, so a handler builds its context once for both.
    """
    name = fragment if fragment and wants_fragment(request) else page
    response = templates.TemplateResponse(
        request, name, dict(context or {}), status_code=status_code, headers=headers
    )
    if name == page and FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path="/")  # shown on this page: done
    return response


def redirect(request: Request, url: str, message: str = "") -> Response:
    """After a successful POST: 303 for plain forms, HX-Location for htmx (no page swap);
    `message` goes along to the page it lands on either way.

    An absolute URL of this site (`request.url_for(...)`) goes out as its path: a Location
    never carries a host name, not even an allowed one."""
    target = URL(url)
    if target.netloc and target.netloc == request.url.netloc:
        url = target.path or "/"
        url += f"?{target.query}" if target.query else ""
        url += f"#{target.fragment}" if target.fragment else ""
    if is_htmx(request):
        response: Response = Response(status_code=204, headers={"HX-Location": url})
    else:
        response = RedirectResponse(url, status_code=303)
    return flash(response, message) if message else response
