"""Error pages in the app's frame, for browsers and htmx alike."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routes.common import BROKER_DOWN, is_htmx, templates
from routes.security import security_headers

log = logging.getLogger("floorboard")

TITLES = {
    400: "That request could not be read",
    401: "Please sign in",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    409: "Someone changed this first",
    413: "That was too much to send",
    422: "Please check what you entered",
    423: "Someone else is editing this",
    429: "Too many attempts",
    500: "Something went wrong on our side",
    503: "Temporarily unavailable",
}


# A service that is not answering, by what its client raises. Its request wrote nothing
# (what was committed before a publish failed is answered as done: see LiveHub.publish).
DATABASE_DOWN = (
    asyncpg.PostgresConnectionError,  # the connection was lost mid-query, or refused
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.AdminShutdownError,  # stopped under us
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,  # "connection is closed"
    OSError,  # refused, reset, unreachable, timed out (TimeoutError is an OSError)
)
UNAVAILABLE = {
    "database": (DATABASE_DOWN, "The database is not answering"),
    "broker": (BROKER_DOWN, "The live service is not answering"),
}
RETRY_AFTER = "5"  # seconds: a restarting PostgreSQL or Redis is usually back by then


def page_headers(request: Request, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The security headers of every page, plus the handler's own (which win)."""
    state = getattr(request.scope.get("app"), "state", None)  # no app yet: not production
    settings = getattr(getattr(state, "services", None), "settings", None)
    production = bool(getattr(settings, "production", False))
    return {**security_headers(request.scope["path"], production=production), **(extra or {})}


def error_page(
    request: Request, status_code: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An error page with the same security headers as any other, even when it is sent from
    outside SecurityHeadersMiddleware (the 500 page, from Starlette's ServerErrorMiddleware)."""
    all_headers = page_headers(request, headers)
    if request.url.path.endswith("/live"):
        # An EventSource gets a short answer; htmx shows the connection as lost.
        return PlainTextResponse(message, status_code=status_code, headers=all_headers)
    return templates.TemplateResponse(
        request,
        "errors/error.html",
        {
            "status_code": status_code,
            "title": TITLES.get(status_code, "Error"),
            "message": message,
        },
        status_code=status_code,
        headers=all_headers,
    )


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    message = exc.detail if exc.detail and exc.detail != TITLES.get(exc.status_code) else ""
    return error_page(request, exc.status_code, message, headers=exc.headers)


async def service_unavailable(request: Request, exc: Exception) -> Response:
    """503 with Retry-After: the error page for a browser, the sentence alone for htmx
    (app.js shows it as a toast; htmx swaps no 5xx answer into the page)."""
    service, what = next(
        ((name, what) for name, (kinds, what) in UNAVAILABLE.items() if isinstance(exc, kinds)),
        ("database", UNAVAILABLE["database"][1]),
    )
    log.warning(
        "%s not answering on %s %s: %s: %s",
        service,
        request.method,
        request.url.path,
        type(exc).__name__,
        exc,
    )
    message = f"{what} — please try again in a moment."
    headers = {"Retry-After": RETRY_AFTER}
    if is_htmx(request):
        return PlainTextResponse(message, status_code=503, headers=page_headers(request, headers))
    return error_page(request, 503, message, headers=headers)


def unavailable(exc: BaseException) -> bool:
    return any(isinstance(exc, kinds) for kinds, _ in UNAVAILABLE.values())


class UnavailableAnswered:
    """The readable 503 for a database or Redis that stops answering outside the routes
    (the session lookup of the authentication middleware), answered here rather than by
    Starlette's server-error middleware: that one answers with our handler too, but then
    re-raises, so the server logged a traceback for every request of an outage."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started or not unavailable(exc):
                raise
            response = await service_unavailable(Request(scope), exc)
            await response(scope, receive, send)


async def server_error(request: Request, exc: Exception) -> Response:
    # A bug anywhere: a service that is not answering never gets here (the handlers by
    # class below inside the routes, UnavailableAnswered outside them).
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    try:
        return error_page(request, 500, "It has been logged. Please try again in a moment.")
    except Exception:  # the frame itself failed: fall back to bare HTML
        log.exception("the error page itself failed on %s", request.url.path)
        return HTMLResponse(
            "<h1>Something went wrong on our side</h1>",
            status_code=500,
            headers=security_headers(request.scope.get("path", "")),
        )


def csrf_refused(request: Request, reason: str) -> Response:
    log.info("CSRF refusal on %s: %s", request.url.path, reason)
    return error_page(
        request,
        403,
        "This form has expired or did not come from floorboard. Reload the page and try again.",
    )


def form_unreadable(request: Request, status_code: int, message: str) -> Response:
    """A body the CSRF check could not read as a form (400) or would not (413)."""
    log.info("unreadable form on %s %s: %d", request.method, request.url.path, status_code)
    return error_page(request, status_code, message)


exception_handlers: dict = {
    HTTPException: http_exception,
    **{kind: service_unavailable for kinds, _ in UNAVAILABLE.values() for kind in kinds},
    500: server_error,
}
