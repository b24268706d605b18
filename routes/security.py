"""HTTP hardening: security headers, readable CSRF refusals, and sign-in throttling."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import Protocol

from piccolo_api.csrf.middleware import SAFE_HTTP_METHODS, CSRFMiddleware
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# htmx 4 needs no eval as long as pages use no hx-on / js: expressions, and its indicator
# stylesheet is switched off in the htmx-config meta, so scripts and styles come from 'self'.
APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "object-src 'none'"
)
# Piccolo's admin is a prebuilt Vue app that sets inline styles; its scripts stay 'self'.
ADMIN_CSP = APP_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


class SecurityHeadersMiddleware:
    """Pure ASGI, so it adds no buffering in front of SSE streams."""

    def __init__(self, app: ASGIApp, *, production: bool = False) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = ADMIN_CSP if scope["path"].startswith("/admin") else APP_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", csp)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                if self.production:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ReadableCSRFMiddleware(CSRFMiddleware):
    """piccolo_api's double-submit-cookie CSRF check, with its refusals shown as a page.

    The library answers a refused request with a plain-text 403 of its own; we recognise
    those (the request never reached the app) and hand them to `on_refused`, which renders
    the error page in the app's frame.
    """

    def __init__(self, app: ASGIApp, *, on_refused, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Safe methods (every page and every SSE stream) skip BaseHTTPMiddleware: they are
        never refused, they only get the token in the scope and a cookie when it is new."""
        if scope["type"] != "http" or scope["method"] not in SAFE_HTTP_METHODS:
            await super().__call__(scope, receive, send)
            return
        token = HTTPConnection(scope).cookies.get(self.cookie_name)
        cookie_header = None
        if token is None:
            token = self.get_new_token()
            carrier = Response()
            carrier.set_cookie(self.cookie_name, token, max_age=self.max_age)
            cookie_header = carrier.raw_headers[-1]
        scope.update({"csrftoken": token, "csrf_cookie_name": self.cookie_name})
        if cookie_header is None:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), cookie_header]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def dispatch(self, request: Request, call_next):
        reached_app = False

        async def call_app(req: Request) -> Response:
            nonlocal reached_app
            reached_app = True
            return await call_next(req)

        response = await super().dispatch(request, call_app)
        if not reached_app and response.status_code == 403:
            return self.on_refused(request, bytes(response.body).decode())
        return response


class ThrottleStore(Protocol):
    async def hits(self, key: str, window: float) -> int: ...
    async def add(self, key: str, window: float) -> None: ...
    async def clear(self, key: str) -> None: ...
    async def clear_all(self) -> None: ...


class MemoryThrottleStore:
    """Failure timestamps per key, in this process (the embedded single-process default)."""

    def __init__(self) -> None:
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)

    def _fresh(self, key: str, window: float) -> deque[float]:
        hits, cutoff = self._hits[key], time.monotonic() - window
        while hits and hits[0] < cutoff:
            hits.popleft()
        return hits

    async def hits(self, key: str, window: float) -> int:
        return len(self._fresh(key, window))

    async def add(self, key: str, window: float) -> None:
        self._fresh(key, window).append(time.monotonic())

    async def clear(self, key: str) -> None:
        self._hits.pop(key, None)

    async def clear_all(self) -> None:
        self._hits.clear()


class RedisThrottleStore:
    """A fixed window counter shared by every worker (INCR + EXPIRE)."""

    def __init__(self, redis, namespace: str = "fb") -> None:
        self.redis = redis
        self.prefix = f"{namespace}:throttle:"

    async def hits(self, key: str, window: float) -> int:
        return int(await self.redis.get(self.prefix + key) or 0)

    async def add(self, key: str, window: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(self.prefix + key)
            pipe.expire(self.prefix + key, int(window), nx=True)
            await pipe.execute()

    async def clear(self, key: str) -> None:
        await self.redis.delete(self.prefix + key)

    async def clear_all(self) -> None:
        keys = [key async for key in self.redis.scan_iter(match=self.prefix + "*")]
        if keys:
            await self.redis.delete(*keys)


class LoginThrottle:
    """Counts failed sign-ins per address and per (address, username).

    Only failures count, so reloading the sign-in page never locks anyone out (piccolo_api's
    RateLimitingMiddleware counts every request, GETs included, and only per process).
    """

    def __init__(
        self,
        store: ThrottleStore,
        *,
        per_name: int = 5,
        per_address: int = 20,
        window: float = 300,
    ) -> None:
        self.store, self.per_name, self.per_address, self.window = (
            store,
            per_name,
            per_address,
            window,
        )

    @staticmethod
    def _keys(address: str, username: str) -> tuple[str, str]:
        return f"ip:{address}", f"ipuser:{address}:{username.lower()[:150]}"

    async def blocked(self, address: str, username: str) -> bool:
        by_address, by_name = self._keys(address, username)
        return (
            await self.store.hits(by_address, self.window) >= self.per_address
            or await self.store.hits(by_name, self.window) >= self.per_name
        )

    async def failed(self, address: str, username: str) -> None:
        for key in self._keys(address, username):
            await self.store.add(key, self.window)

    async def succeeded(self, address: str, username: str) -> None:
        await self.store.clear(self._keys(address, username)[1])

    @property
    def retry_after(self) -> int:
        return int(self.window)
