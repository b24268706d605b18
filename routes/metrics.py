"""GET /metrics: this process's figures in Prometheus' format, for platform operators only;
and the middleware that times every request by its route's name.

Who may read it: the same rule as /admin (routes/access.py `OperatorOnlyMiddleware`): a
signed-in, active superuser. Anyone else — a tenant's user, a manager, nobody signed in —
gets the same 404 as a path that does not exist. A scraper has no session: when the environment sets
`METRICS_TOKEN`, a request carrying `Authorization: Bearer <METRICS_TOKEN>` is let in too
(unset or empty: no token is accepted). Every process serves its own registry
(live/metrics.py): scrape each process at its own address.
"""

from __future__ import annotations

import hmac
import os
import time

from prometheus_client.exposition import choose_encoder
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from live import metrics
from routes.common import services

TOKEN_ENV = "METRICS_TOKEN"


def is_operator(request: Request) -> bool:
    user = request.scope.get("user")
    return bool(
        user is not None and user.is_authenticated and user.user.superuser and user.user.active
    )


def is_scraper(request: Request) -> bool:
    token = os.environ.get(TOKEN_ENV, "")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given, token)


async def metrics_page(request: Request) -> Response:
    if not (is_operator(request) or is_scraper(request)):
        raise HTTPException(404)  # byte for byte the answer for a path that does not exist
    await metrics.read_locks(services(request).locks)
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(
        encode(metrics.REGISTRY),
        headers={"Content-Type": content_type, "Cache-Control": "no-store"},
    )


routes = [Route("/metrics", metrics_page, name="metrics")]


# -- request latency by route name ------------------------------------------------------

ROUTED = "floorboard.routed"  # scope key: a one-item list, the scope a router matched in


def route_name(scope: Scope) -> str:
    """The matched route's name (a Mount without one: its path template); "unmatched"."""
    route = scope.get("route")
    if route is None:
        return "unmatched"
    return getattr(route, "name", None) or getattr(route, "path", None) or "unnamed"


class RequestLatencyMiddleware:
    """Times each HTTP request and files it under the name of the route the router matched
    (read from the scope once the app returns), so the labels are the route table's names
    however many paths are asked for. A live stream is timed to its opening.

    An app reached ahead of the router with a copy of the scope (the API, by `ApiFirst`)
    gets an inner instance of this middleware: it hands its own scope back to the outer
    one through `ROUTED`, and times nothing itself.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        routed = scope.get(ROUTED)
        if routed is not None:  # an outer instance is timing this request
            routed[0] = scope
            await self.app(scope, receive, send)
            return
        scope[ROUTED] = [scope]
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            inner = scope[ROUTED][0]
            ended = inner.get(metrics.STREAM_OPENED) or time.perf_counter()
            metrics.REQUEST_LATENCY.labels(route_name(inner)).observe(ended - started)
