"""Who may see what: site membership for everything under /s/{site}, an organisation's
managers for everything under /o/{org}, operators for /admin.

Membership is checked once, by a middleware on the `/s/{site}` mount, so no area can forget
it; management likewise on the `/o/{org}` mount. Unknown sites (organisations) and those the
user does not belong to (manage) all answer 404 (SPEC §3: no existence leaks), for pages,
actions and live streams alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tables.activity import Activity
from tables.orgs import OrgAccess, org_access
from tables.people import SiteAccess, site_access


def login_url(path: str) -> str:
    return "/login?next=" + quote(path, safe="/")


def user_id(conn: HTTPConnection) -> int | None:
    user = conn.scope.get("user")
    if user is None or not user.is_authenticated:
        return None
    return user.user.id


def signed_out(conn: HTTPConnection) -> RedirectResponse:
    """A page asked for without a session goes to sign in; anything else is 401 — a live
    stream too, whose reconnect after its user was signed out elsewhere (or deactivated)
    must fail for app.js to reload the page (a redirect would be followed to a 200)."""
    is_stream = "text/event-stream" in conn.headers.get("accept", "")
    if conn.scope["method"] in ("GET", "HEAD") and not is_stream:
        return RedirectResponse(login_url(conn.url.path), status_code=303)
    raise HTTPException(401, "Your session has ended. Sign in again.")


class ScopedAccessMiddleware(ABC):
    """The shape of every scoped mount: signed in, then allowed in this scope (a site, an
    organisation) — else the same 404 as for one that does not exist; what was found goes
    on `request.state.<state_key>`."""

    state_key = ""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @abstractmethod
    async def lookup(self, scope: Scope, uid: int) -> object | None:
        """What the user may see of this scope, or None (then 404)."""

    def entered(self) -> None:  # noqa: B027 - a hook: most scopes need nothing here
        """Called once the request is let in."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        uid = user_id(conn)
        if uid is None:
            await signed_out(conn)(scope, receive, send)
            return
        access = await self.lookup(scope, uid)
        if access is None:
            raise HTTPException(404, "There is no such page.")
        scope.setdefault("state", {})[self.state_key] = access
        self.entered()
        await self.app(scope, receive, send)


class SiteMembershipMiddleware(ScopedAccessMiddleware):
    """Puts the user's `SiteAccess` on `request.state.site`, or answers 404 / sends to login."""

    state_key = "site"

    async def lookup(self, scope: Scope, uid: int) -> SiteAccess | None:
        return await site_access(scope["path_params"].get("site", ""), uid)

    def entered(self) -> None:
        Activity.start_recording()  # what this request records, it publishes


def site_of(request: Request) -> SiteAccess:
    """The site the request is under; set by SiteMembershipMiddleware."""
    return request.state.site


def require_manager(request: Request) -> SiteAccess:
    """The site, if the user manages it; 403 otherwise (they are a member, so nothing leaks)."""
    access = site_of(request)
    if not access.is_manager:
        raise HTTPException(403, f"Only a manager of {access.name} may do that.")
    return access


class OrgManagerMiddleware(ScopedAccessMiddleware):
    """Puts the manager's `OrgAccess` on `request.state.org`; everyone who does not manage
    the organisation (members of it included) gets the same 404 as an unknown one."""

    state_key = "org"

    async def lookup(self, scope: Scope, uid: int) -> OrgAccess | None:
        return await org_access(scope["path_params"].get("org", ""), uid)


def org_of(request: Request) -> OrgAccess:
    """The organisation the request is under; set by OrgManagerMiddleware."""
    return request.state.org


class OperatorOnlyMiddleware:
    """Guards /admin: Piccolo's admin is not tenant-scoped, so only platform operators
    (superusers) get in. Anyone else signed in gets the same 404 as any unknown page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            response = RedirectResponse(login_url("/admin/"), status_code=303)
            await response(scope, receive, send)
            return
        if not (user.user.superuser and user.user.active):
            raise HTTPException(404, "There is no such page.")
        await self.app(scope, receive, send)
