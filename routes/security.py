"""HTTP hardening: security headers, readable CSRF refusals, and sign-in throttling."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any, Protocol

from piccolo_api.csrf.middleware import SAFE_HTTP_METHODS, CSRFMiddleware
from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routes.forms import parse_form

# htmx 4 needs no eval as long as pages use no hx-on / js: expressions, and its indicator
# stylesheet is switched off in the htmx-config meta, so scripts and styles come from 'self'.
APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "object-src 'none'"
)
# Piccolo's admin is a prebuilt Vue app that sets inline styles; its scripts stay 'self'.
ADMIN_CSP = APP_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def security_headers(path: str, *, production: bool = False) -> dict[str, str]:
    """The headers every response carries, error pages included (the 500 page is sent from
    outside every middleware, so the error handler adds these itself)."""
    headers = {
        "Content-Security-Policy": ADMIN_CSP if path.startswith("/admin") else APP_CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }
    if production:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


class SecurityHeadersMiddleware:
    """Pure ASGI, so it adds no buffering in front of SSE streams."""

    def __init__(self, app: ASGIApp, *, production: bool = False) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = security_headers(scope["path"], production=self.production)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in wanted.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _unreadable_page(request: Request, status_code: int, message: str) -> Response:
    from routes.errors import form_unreadable  # errors imports this module

    return form_unreadable(request, status_code, message)


class ReadableCSRFMiddleware(CSRFMiddleware):
    """piccolo_api's double-submit-cookie CSRF check, as pure ASGI, with readable refusals.

    The checks are piccolo_api 1.11's `CSRFMiddleware.dispatch`, in its order: a CSRF cookie,
    then the token from the header (htmx) or, failing that, the form field; either must
    match the cookie; on HTTPS the Origin/Referer must name an allowed host. Its
    BaseHTTPMiddleware is never used: a refusal is handed to `on_refused` (a 403 page in
    the app's frame), and the form is read with `parse_form`'s limits, so a body that
    cannot be read is a 400 or 413 page from `on_unreadable`, not an exception raised
    outside the app's error handling (a 500). The parsed form stays in `scope["form"]`;
    the app is handed an empty, finished body instead of the one already consumed.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        on_refused: Callable[[Request, str], Response],
        on_unreadable: Callable[[Request, int, str], Response] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.on_refused = on_refused
        self.on_unreadable = on_unreadable or _unreadable_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["method"] in SAFE_HTTP_METHODS:
            await self._safe(scope, receive, send)
        else:
            await self._unsafe(scope, receive, send)

    async def _safe(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Safe methods (every page and every SSE stream) are never refused: they only get
        the token in the scope, and a cookie when it is new."""
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

    async def _unsafe(self, scope: Scope, receive: Receive, send: Send) -> None:
        body_done = False

        async def tracking_receive() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        request = Request(scope, tracking_receive)
        cookie_token = request.cookies.get(self.cookie_name)
        if not cookie_token:
            await self.on_refused(request, "No CSRF cookie found")(scope, receive, send)
            return
        header_token = request.headers.get(self.header_name) if self.allow_header_param else None
        form_token: str | None = None
        form: FormData | None = None
        if self.allow_form_param and not header_token:
            try:
                form = await parse_form(request)  # leaves it in scope["form"]
            except HTTPException as exc:
                response = self.on_unreadable(request, exc.status_code, str(exc.detail))
                await response(scope, receive, send)
                return
            value = form.get(self.cookie_name)
            form_token = value if isinstance(value, str) else None  # a file is no token
        reason = None
        if not header_token and not form_token:
            reason = "The CSRF token wasn't found in the form data or header."
        elif header_token and cookie_token != header_token:
            reason = "The CSRF token in the header doesn't match the cookie."
        elif form_token and cookie_token != form_token:
            reason = "The CSRF token in the form doesn't match the cookie."
        elif request.base_url.is_secure and not self.is_valid_referer(request):
            reason = "Referer or origin is incorrect"
        if reason is not None:
            await self.on_refused(request, reason)(scope, receive, send)
            if form is not None:
                await form.close()
            return
        scope.update({"csrftoken": cookie_token, "csrf_cookie_name": self.cookie_name})
        replayed = False

        async def drained_receive() -> Message:
            """The body is read: an empty one, then whatever the server says next."""
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"", "more_body": False}

        try:
            await self.app(scope, drained_receive if body_done else receive, send)
        finally:
            if form is not None:
                await form.close()


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
