"""HTTP hardening: security headers, CSRF tokens bound to the session (readable refusals),
CSP violation reports, and sign-in throttling.

Seen from outside, the app's middleware runs in this order (main.py): forwarded headers
from TRUSTED_PROXIES only (uvicorn's ProxyHeadersMiddleware), the security headers, the
Host check (ALLOWED_HOSTS, Starlette's TrustedHostMiddleware), the API (bearer tokens: no
CSRF), the CSRF check, the session.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable, Collection
from typing import Any, Protocol

from piccolo_api.csrf.middleware import SAFE_HTTP_METHODS, CSRFMiddleware
from starlette.datastructures import URL, FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routes.forms import parse_form

log = logging.getLogger("floorboard.security")

# htmx 4 needs no eval as long as pages use no hx-on / js: expressions, and its indicator
# stylesheet is switched off in the htmx-config meta, so scripts and styles come from 'self'.
# Violations are reported to CSP_REPORT_PATH with `report-uri` only: every browser sends
# those at once. Given `report-to` as well, Chromium ignores report-uri and batches its
# Reporting API reports for a minute or so (seen with Debian's Chromium): too late for a
# browser test to blame the page that broke the policy. The endpoint takes both formats.
CSP_REPORT_PATH = "/csp-report"
APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; "
    f"object-src 'none'; report-uri {CSP_REPORT_PATH}"
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


def host_allowed(host: str, patterns: Collection[str]) -> bool:
    """Whether `host` is one of ALLOWED_HOSTS ("*" = any, "*.example.com" = its subdomains),
    compared the way Starlette's TrustedHostMiddleware does."""
    host = host.lower()
    return any(
        pattern == "*"
        or host == pattern.lower()
        or (pattern.startswith("*.") and host.endswith(pattern[1:].lower()))
        for pattern in patterns
    )


class HostCheckMiddleware(TrustedHostMiddleware):
    """Starlette's Host check: a Host that is not in ALLOWED_HOSTS is a plain-text 400
    before anything else reads the request, so no redirect or link is ever built from a
    host name someone made up. No www. redirect. `exempt_paths` (/healthz, which load
    balancers probe by address) are answered whatever the Host; they build no URL."""

    def __init__(
        self, app: ASGIApp, *, allowed_hosts: Collection[str], exempt_paths: Collection[str] = ()
    ) -> None:
        super().__init__(app, allowed_hosts=list(allowed_hosts), www_redirect=False)
        self.inner = app
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.exempt_paths:
            await self.inner(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def _unreadable_page(request: Request, status_code: int, message: str) -> Response:
    from routes.errors import form_unreadable  # errors imports this module

    return form_unreadable(request, status_code, message)


SESSION_COOKIE = "id"  # piccolo_api's session cookie (routes.auth.SESSION_COOKIE)
CSRF_COOKIE = "csrftoken"
CSRF_COOKIE_MAX_AGE = 365 * 24 * 3600
_TOKEN_MAX = 200  # longer than any token made here: not worth a MAC


class CsrfTokens:
    """CSRF tokens bound to the session they were made for, signed with SECRET_KEY.

    A token is `nonce.mac`, mac = HMAC-SHA256(key, nonce + the binding), the binding being
    the session cookie's value (`id`) when there is one, else "signed out". So a token is
    only good with the session it was made for: one planted in a browser's cookie, or a
    signed-in attacker's own, is refused, and a made-up one is refused for want of the key.
    A fresh nonce per token means any number of tokens (pages rendered at once, a rotation
    racing a form) are all good for the one session. Tokens are URL- and cookie-safe.
    """

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("CSRF tokens need a SECRET_KEY")
        # A key of its own, so nothing else ever signed with SECRET_KEY can pass as a token.
        self._key = hashlib.sha256(b"floorboard csrf\0" + secret_key.encode()).digest()

    def _mac(self, nonce: str, session: str | None) -> str:
        binding = "session:" + session if session else "signed-out"
        message = f"{nonce}\0{binding}".encode("utf-8", "surrogatepass")
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, session: str | None) -> str:
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{self._mac(nonce, session)}"

    def valid(self, token: str, session: str | None) -> bool:
        nonce, dot, mac = token.partition(".")
        if not (dot and nonce and mac) or len(token) > _TOKEN_MAX or not token.isascii():
            return False
        return hmac.compare_digest(mac.encode(), self._mac(nonce, session).encode())


@functools.lru_cache(maxsize=8)
def csrf_tokens(secret_key: str) -> CsrfTokens:
    return CsrfTokens(secret_key)


def csrf_cookie(token: str, *, secure: bool = False) -> tuple[bytes, bytes]:
    """The Set-Cookie header for a token: readable by app.js (not HttpOnly), SameSite=Lax."""
    carrier = Response()
    carrier.set_cookie(
        CSRF_COOKIE, token, max_age=CSRF_COOKIE_MAX_AGE, samesite="lax", secure=secure
    )
    return carrier.raw_headers[-1]


def set_csrf_cookie(response: Response, token: str, *, secure: bool = False) -> None:
    response.raw_headers.append(csrf_cookie(token, secure=secure))


def _with_cookie(scope: Scope, name: str, value: str) -> None:
    """Let the app behind see `name=value` among the request's cookies (a fresh token, so
    that piccolo_admin's own CSRF middleware does not make one of its own)."""
    pair = f"{name}={value}".encode("latin-1")
    headers = [(k, v) for k, v in scope["headers"] if k != b"cookie"]
    cookies = [v for k, v in scope["headers"] if k == b"cookie"]
    headers.append((b"cookie", b"; ".join([*cookies, pair])))  # the last one of a name wins
    scope["headers"] = headers


class ReadableCSRFMiddleware(CSRFMiddleware):
    """piccolo_api's CSRF check, as pure ASGI, with tokens bound to the session and readable
    refusals.

    Safe methods get a token in `scope["csrftoken"]` (forms render it) and in the
    `csrftoken` cookie (app.js copies it into htmx's `X-CSRFToken` header) — a new one
    whenever the cookie holds none that is good for this request's session: a first visit,
    after signing in or out (sign-in sets the new session's token itself).

    Unsafe methods need the token in the header (htmx) or, failing that, the form field,
    and it must be good for the request's session (`CsrfTokens`). Signed out, it must also
    equal the cookie (piccolo_api's double submit), so another site cannot post the sign-in
    form with a token it fetched itself. On HTTPS the Origin/Referer must name an allowed
    host, as in piccolo_api 1.11. `exempt_paths` (the CSP report endpoint) are not checked.

    Its BaseHTTPMiddleware is never used: a refusal is handed to `on_refused` (a 403 page in
    the app's frame), and the form is read with `parse_form`'s limits, so a body that
    cannot be read is a 400 or 413 page from `on_unreadable`, not an exception raised
    outside the app's error handling (a 500). The parsed form stays in `scope["form"]`;
    the app is handed an empty, finished body instead of the one already consumed.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_key: str,
        on_refused: Callable[[Request, str], Response],
        on_unreadable: Callable[[Request, int, str], Response] | None = None,
        exempt_paths: Collection[str] = (),
        secure_cookie: bool = False,
        session_cookie: str = SESSION_COOKIE,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.tokens = csrf_tokens(secret_key)
        self.on_refused = on_refused
        self.on_unreadable = on_unreadable or _unreadable_page
        self.exempt_paths = frozenset(exempt_paths)
        self.secure_cookie = secure_cookie
        self.session_cookie = session_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["method"] in SAFE_HTTP_METHODS:
            await self._safe(scope, receive, send)
        elif scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
        else:
            await self._unsafe(scope, receive, send)

    async def _safe(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Safe methods (every page and every SSE stream) are never refused: they only get
        the token in the scope, and a cookie when it is new."""
        cookies = HTTPConnection(scope).cookies
        session = cookies.get(self.session_cookie) or None
        token = cookies.get(self.cookie_name)
        cookie_header = None
        if token is None or not self.tokens.valid(token, session):
            token = self.tokens.issue(session)
            cookie_header = csrf_cookie(token, secure=self.secure_cookie)
            _with_cookie(scope, self.cookie_name, token)
        scope.update({"csrftoken": token, "csrf_cookie_name": self.cookie_name})
        if cookie_header is None:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), cookie_header]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def is_valid_referer(self, request: Request) -> bool:
        """piccolo_api's check (the Origin, else the Referer, names an allowed host), with
        ALLOWED_HOSTS' wildcards understood."""
        header = request.headers.get("origin") or request.headers.get("referer") or ""
        hostname = URL(header).hostname
        return bool(hostname and host_allowed(hostname, self.allowed_hosts))

    def _refusal(self, request: Request, token: str, cookie_token: str | None) -> str | None:
        """Why a present token is not good for this request, or None."""
        session = request.cookies.get(self.session_cookie) or None
        if not self.tokens.valid(token, session):
            if session is None:
                return "The CSRF token is not a signed-out token of this site."
            return "The CSRF token does not belong to this session."
        if session is None and not (
            cookie_token and hmac.compare_digest(token.encode(), cookie_token.encode())
        ):
            return "The CSRF token doesn't match the cookie."
        if request.base_url.is_secure and not self.is_valid_referer(request):
            return "Referer or origin is incorrect"
        return None

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
        signed_out = not request.cookies.get(self.session_cookie)
        if signed_out and not cookie_token:
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
        token = header_token or form_token
        if not token:
            reason: str | None = "The CSRF token wasn't found in the form data or header."
        else:
            reason = self._refusal(request, token, cookie_token)
        if reason is not None or token is None:
            await self.on_refused(request, reason or "")(scope, receive, send)
            if form is not None:
                await form.close()
            return
        scope.update({"csrftoken": token, "csrf_cookie_name": self.cookie_name})
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


# -- CSP violation reports ------------------------------------------------------------------

CSP_REPORT_MAX_BODY = 64 * 1024
CSP_REPORTS_KEPT = 200
CSP_LOG_PER_MINUTE = 60  # an unauthenticated endpoint must not be able to flood the log
CSP_REPORT_TYPES = ("application/csp-report", "application/reports+json", "application/json")
_FIELDS = {  # what we keep of a report: (report-uri's name, the Reporting API's name)
    "document": ("document-uri", "documentURL"),
    "directive": ("effective-directive", "effectiveDirective"),
    "violated": ("violated-directive", ""),
    "blocked": ("blocked-uri", "blockedURL"),
    "source": ("source-file", "sourceFile"),
    "line": ("line-number", "lineNumber"),
    "column": ("column-number", "columnNumber"),
    "sample": ("script-sample", "sample"),
    "disposition": ("disposition", "disposition"),
}


def csp_reports_in(content_type: str, data: Any) -> list[dict[str, Any]]:
    """The violations in a report body, each flattened to `_FIELDS` (None where absent).

    `application/csp-report` (report-uri) is one {"csp-report": {...}}; the Reporting API
    (`application/reports+json`) sends a list of {"type": "csp-violation", "body": {...}}.
    """
    if content_type == "application/reports+json" or isinstance(data, list):
        items = data if isinstance(data, list) else [data]
        bodies = [
            (item.get("body"), 1)
            for item in items
            if isinstance(item, dict) and item.get("type") == "csp-violation"
        ]
    elif isinstance(data, dict):
        bodies = [(data.get("csp-report"), 0)]
    else:
        bodies = []
    found = []
    for body, which in bodies:
        if isinstance(body, dict):
            found.append(
                {
                    key: body.get(names[which]) if names[which] else None
                    for key, names in _FIELDS.items()
                }
            )
    return found


class CspReportStore(Protocol):
    async def add(self, reports: list[dict[str, Any]]) -> None: ...
    async def recent(self) -> list[dict[str, Any]]: ...
    async def clear(self) -> None: ...


class MemoryCspReports:
    """The last reports this process received (the embedded single-process default)."""

    def __init__(self, keep: int = CSP_REPORTS_KEPT) -> None:
        self._reports: deque[dict[str, Any]] = deque(maxlen=keep)

    async def add(self, reports: list[dict[str, Any]]) -> None:
        self._reports.extend(reports)

    async def recent(self) -> list[dict[str, Any]]:
        return list(self._reports)

    async def clear(self) -> None:
        self._reports.clear()


class RedisCspReports:
    """The last reports any worker received: a capped Redis list."""

    def __init__(self, redis, namespace: str = "fb", keep: int = CSP_REPORTS_KEPT) -> None:
        self.redis, self.key, self.keep = redis, f"{namespace}:csp-reports", keep

    async def add(self, reports: list[dict[str, Any]]) -> None:
        if not reports:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self.key, *[json.dumps(r) for r in reports])
            pipe.ltrim(self.key, -self.keep, -1)
            await pipe.execute()

    async def recent(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in await self.redis.lrange(self.key, 0, -1)]

    async def clear(self) -> None:
        await self.redis.delete(self.key)


class _LogBudget:
    """At most `per_minute` log lines a minute; the rest are counted, then summed up."""

    def __init__(self, per_minute: int = CSP_LOG_PER_MINUTE) -> None:
        self.per_minute, self.minute, self.used, self.dropped = per_minute, 0, 0, 0

    def take(self) -> bool:
        minute = int(time.monotonic() // 60)
        if minute != self.minute:
            if self.dropped:
                log.warning("CSP violation: %d more reports not logged", self.dropped)
            self.minute, self.used, self.dropped = minute, 0, 0
        self.used += 1
        if self.used > self.per_minute:
            self.dropped += 1
            return False
        return True


_log_budget = _LogBudget()


def csp_report_store(request: Request) -> CspReportStore:
    return request.app.state.csp_reports


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def csp_report(request: Request) -> Response:
    """POST /csp-report: a browser reporting a Content-Security-Policy violation.

    Open to anyone (browsers send no token; the CSRF check leaves this path alone), small
    bodies only. Each violation is logged ("CSP violation: …", at most CSP_LOG_PER_MINUTE
    lines a minute) and kept, the last CSP_REPORTS_KEPT, for GET /csp-report.
    """
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type not in CSP_REPORT_TYPES:
        return Response("Send a CSP report (application/csp-report).", 415)
    body = await _read_limited(request, CSP_REPORT_MAX_BODY)
    if body is None:
        return Response("A CSP report is at most 64 KiB.", 413)
    try:
        reports = csp_reports_in(content_type, json.loads(body))
    except (ValueError, RecursionError):
        return Response("A CSP report is JSON.", 400)
    if not reports:
        return Response("No CSP violation in that report.", 400)
    await csp_report_store(request).add(reports)
    for report in reports:
        if _log_budget.take():
            log.warning("CSP violation: %s", json.dumps(report)[:2000])
    return Response(status_code=204)


async def csp_reports(request: Request) -> Response:
    """GET /csp-report: the reports kept, for platform operators only (everyone else: 404);
    `?clear=1` empties the list after reading it."""
    user = request.scope.get("user")
    if not (user is not None and user.is_authenticated and user.user.superuser):
        raise HTTPException(404, "There is no such page.")
    store = csp_report_store(request)
    reports = await store.recent()
    if request.query_params.get("clear"):
        await store.clear()
    return JSONResponse({"reports": reports}, headers={"Cache-Control": "no-store"})


routes = [
    Route(CSP_REPORT_PATH, csp_report, methods=["POST"], name="csp_report"),
    Route(CSP_REPORT_PATH, csp_reports, methods=["GET"], name="csp_reports"),
]


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
