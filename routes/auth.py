"""Signing in and out, with database-backed sessions (piccolo_api's sessions table)."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

import anyio.to_thread
from piccolo.apps.user.tables import BaseUser
from piccolo_api.session_auth.middleware import SessionsAuthBackend
from piccolo_api.session_auth.tables import SessionsBase
from piccolo_api.shared.auth import UnauthenticatedUser, User
from piccolo_api.shared.auth.excluded_paths import check_excluded_paths
from starlette.authentication import AuthCredentials, AuthenticationError
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from routes.access import user_id
from routes.common import render, services
from routes.forms import FormErrors, read_form
from routes.security import csrf_tokens, set_csrf_cookie
from tables.base import write_tx
from tables.orgs import STEP_TTL, issue_token, must_change_password

SESSION_COOKIE = "id"  # the name piccolo_api's SessionsAuthBackend and piccolo_admin read
SESSION_EXPIRY = timedelta(hours=12)  # a shift; SessionsAuthBackend slides it while in use
MAX_SESSION_EXPIRY = timedelta(days=7)
USERNAME_MAX = 100
PASSWORD_MAX = 128
# A real hash of a throwaway password, so an unknown username costs the same time as a
# known one (no user enumeration by timing).
_DUMMY_HASH = BaseUser.hash_password("not-a-real-password", salt="0" * 32)


def safe_next(target: str | None) -> str:
    """Only same-site paths: "/s/nairobi", never "//evil.example" or "https://…"."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


async def authenticate(username: str, password: str) -> int | None:
    """The user's id if the password matches an active user.

    PBKDF2 with 600,000 rounds takes ~0.15 s of CPU, so it runs in a thread: on the event
    loop it would stall every open live stream of this worker.
    """
    row = await (
        BaseUser.select(BaseUser.id, BaseUser.password, BaseUser.active)
        .where(BaseUser.username == username)
        .first()
    )
    stored = row["password"] if row else _DUMMY_HASH
    _, iterations, salt, _ = BaseUser.split_stored_password(stored)
    attempt = await anyio.to_thread.run_sync(
        BaseUser.hash_password, password, salt, int(iterations)
    )
    if row and row["active"] and hmac.compare_digest(attempt, stored):
        await BaseUser.update({BaseUser.last_login: datetime.now()}).where(BaseUser.id == row["id"])
        return row["id"]
    return None


def login_form(
    request: Request, *, username: str = "", errors: FormErrors | None = None, status: int = 200
) -> Response:
    context = {
        "username": username,
        "errors": errors or FormErrors(),
        "next": safe_next(request.query_params.get("next")),
    }
    return render(request, "auth/login.html", context, status_code=status)


async def login_page(request: Request) -> Response:
    if user_id(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return login_form(request)


async def login_submit(request: Request) -> Response:
    form = await read_form(request)
    username = form.raw("username").strip()
    password = form.raw("password")
    errors = form.errors
    if not username:
        errors.add("username", "Enter your username.")
    elif len(username) > USERNAME_MAX:
        errors.add("username", f"A username has at most {USERNAME_MAX} characters.")
    elif not username.isprintable():
        errors.add("username", "A username has only letters, digits and punctuation.")
    if not password:
        errors.add("password", "Enter your password.")
    elif len(password) > PASSWORD_MAX:
        errors.add("password", f"A password has at most {PASSWORD_MAX} characters.")
    if errors:
        return login_form(request, username=username[:USERNAME_MAX], errors=errors, status=422)

    throttle = services(request).login_throttle
    # The peer's address; a proxy's X-Forwarded-For only counts when the proxy is one of
    # TRUSTED_PROXIES (main.py), so a client cannot name itself afresh for every guess.
    address = request.client.host if request.client else "unknown"
    if await throttle.blocked(address, username):
        errors.add("username", "Too many failed attempts. Wait a few minutes and try again.")
        response = login_form(request, username=username, errors=errors, status=429)
        response.headers["Retry-After"] = str(throttle.retry_after)
        return response

    uid = await authenticate(username, password)
    if uid is None:
        await throttle.failed(address, username)
        errors.add("password", "The username or password is incorrect.")
        return login_form(request, username=username, errors=errors, status=401)

    await throttle.succeeded(address, username)
    if await must_change_password(uid):
        # A temporary password opens one step only: choosing their own (no session yet).
        async with write_tx():
            token = await issue_token(uid, STEP_TTL)
        return RedirectResponse(request.url_for("welcome", token=token).path, status_code=303)
    return await start_session(request, uid, safe_next(form.raw("next")))


async def start_session(request: Request, uid: int, target: str) -> Response:
    """A new database session for the user, its cookie, a CSRF token bound to it (the one
    from before signing in is good for no session), and a 303 to `target`."""
    now = datetime.now()  # naive local time: what piccolo_api's sessions table expects
    session = await SessionsBase.create_session(
        user_id=uid, expiry_date=now + SESSION_EXPIRY, max_expiry_date=now + MAX_SESSION_EXPIRY
    )
    settings = services(request).settings
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        str(session.token),
        httponly=True,
        samesite="lax",
        secure=settings.production,
        max_age=int(MAX_SESSION_EXPIRY.total_seconds()),
    )
    token = csrf_tokens(settings.secret_key).issue(str(session.token))
    set_csrf_cookie(response, token, secure=settings.production)
    return response


async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await SessionsBase.remove_session(token)
    settings = services(request).settings
    response = RedirectResponse(request.url_for("login").path, status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    set_csrf_cookie(  # signed out: the session's token is good for nothing now
        response, csrf_tokens(settings.secret_key).issue(None), secure=settings.production
    )
    return response


# The session and its user in one statement (piccolo_api's backend makes two queries and
# has Piccolo build each): every page, action and stream open asks this first.
_SESSION_SQL = """
SELECT s.id AS session__id, s.expiry_date AS session__expiry,
       s.max_expiry_date AS session__max_expiry, u.*
FROM sessions s JOIN piccolo_user u ON u.id = s.user_id
WHERE s.token = {}
LIMIT 1
"""


class SessionsBackend(SessionsAuthBackend):
    """piccolo_api's `SessionsAuthBackend` — its sessions table and cookie, its sliding
    expiry and hard limit, its admin/superuser/active rules, the same `User` in the scope —
    reading the session and its user in one query."""

    @check_excluded_paths
    async def authenticate(
        self, conn: HTTPConnection
    ) -> tuple[AuthCredentials, User | UnauthenticatedUser] | None:
        token = conn.cookies.get(self.cookie_name)
        rows = await self.auth_table.raw(_SESSION_SQL, token) if token else []
        row = rows[0] if rows else {}
        session_id = row.pop("session__id", None)
        expiry, max_expiry = row.pop("session__expiry", None), row.pop("session__max_expiry", None)
        now = datetime.now()  # naive local time, as piccolo_api's sessions table stores it
        if session_id is None or not (expiry > now and max_expiry > now):
            if self.allow_unauthenticated:
                return AuthCredentials(scopes=[]), UnauthenticatedUser()
            raise AuthenticationError("No matching session found.")
        if self.increase_expiry and expiry - now < self.increase_expiry:
            await SessionsBase.update(
                {SessionsBase.expiry_date: expiry + self.increase_expiry}
            ).where(SessionsBase.id == session_id)
        user = self.auth_table(**row, _exists_in_db=True)
        if self.admin_only and not user.admin:
            raise AuthenticationError("Admin users only")
        if self.superuser_only and not user.superuser:
            raise AuthenticationError("Superusers only")
        if self.active_only and not user.active:
            raise AuthenticationError("Active users only")
        return AuthCredentials(scopes=["authenticated"]), User(user=user)


routes = [
    Route("/login", login_page, methods=["GET"], name="login"),
    Route("/login", login_submit, methods=["POST"], name="login_submit"),
    Route("/logout", logout, methods=["POST"], name="logout"),
]
