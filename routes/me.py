"""One's own account: /me (name, password, other sessions, API tokens) and
/welcome/{token}, where a new person — from a sign-in link, or right after signing in with a
temporary password — chooses their own password and is signed in.

An API token (for /api/v1, routes/api) is shown once, on the page that answers the form
that made it (201, not a redirect: the secret must not travel in a cookie or a URL); after
that only its name and first characters. Revoking deletes it: the next request with it is a
401.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from routes.access import login_url, user_id
from routes.auth import SESSION_COOKIE, start_session
from routes.common import flash, path_for, redirect, render, services
from routes.forms import FormErrors, read_form
from tables.apitokens import NAME_MAX as TOKEN_NAME_MAX
from tables.apitokens import make_token, revoke_token, tokens_of
from tables.base import Actor, DomainError, write_tx
from tables.orgs import (
    NAME_MAX,
    PASSWORD_MAX,
    check_new_password,
    end_other_sessions,
    hash_password,
    managed_by,
    password_matches,
    record_for_me,
    redeem_token,
    rename_me,
    set_my_password,
    token_owner,
)
from tables.people import SiteKind, display_name, sites_of

# Where a person lands once set up, by the kind of their one site: a dispatcher at a branch
# starts on its drafts; anyone else on the site home (or the picker, with several sites).
START_PAGES = {SiteKind.branch.value: "drafts"}


async def start_page(uid: int) -> str:
    sites = await sites_of(uid)
    if len(sites) != 1:
        return path_for("home")
    route = START_PAGES.get(sites[0]["kind"], "site_home")
    return path_for(route, site=sites[0]["slug"])


def me_actor(request: Request) -> Actor:
    user = request.scope["user"].user
    return Actor(user.id, display_name(user.first_name, user.last_name, user.username))


def signed_in(request: Request) -> int:
    uid = user_id(request)
    if uid is None:
        raise HTTPException(401, "Your session has ended. Sign in again.")
    return uid


async def me_page(
    request: Request,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
    new_token: str = "",
) -> Response:
    uid = user_id(request)
    if uid is None:
        return RedirectResponse(login_url(request.url.path), status_code=303)
    user = request.scope["user"].user
    full_name = " ".join(p for p in (user.first_name, user.last_name) if p)
    context = {
        "values": {"full_name": full_name, **(values or {})},
        "errors": errors or FormErrors(),
        "managed": await managed_by(uid),
        "sites": await sites_of(uid),
        "tokens": await tokens_of(uid),
        "new_token": new_token,
        "token_name_max": TOKEN_NAME_MAX,
    }
    # A page showing a new token's secret is kept out of every cache (history included).
    headers = {"Cache-Control": "no-store"} if new_token else None
    return render(request, "me/page.html", context, status_code=status, headers=headers)


async def me_name(request: Request) -> Response:
    signed_in(request)
    form = await read_form(request)
    full_name = " ".join(form.text("full_name", label="your name", max_length=NAME_MAX).split())
    if form.errors:
        return await me_page(request, form.as_typed(), form.errors, 422)
    async with write_tx():
        await rename_me(me_actor(request), full_name)
    return redirect(request, path_for("me"), f"Your name is now {full_name}.")


async def me_password(request: Request) -> Response:
    uid = signed_in(request)
    form = await read_form(request)
    current, new, repeat = form.raw("current"), form.raw("password"), form.raw("repeat")
    errors = FormErrors(check_new_password(new, repeat, request.scope["user"].user.username))
    if not current:
        errors.add("current", "Enter your current password.")
    elif not await password_matches(uid, current):
        errors.add("current", "That is not your current password.")
    elif new and new == current:
        errors.add("password", "Choose a password other than your current one.")
    if form.errors or errors:
        return await me_page(request, None, FormErrors({**form.errors, **errors}), 422)
    hashed = await hash_password(new)
    async with write_tx():
        ended = await set_my_password(me_actor(request), hashed, _session(request))
    if ended:
        await services(request).hub.end_user(uid)  # the other sessions' open pages
    note = f" Signed out {ended} other session{'s' if ended != 1 else ''}." if ended else ""
    return redirect(request, path_for("me"), "Your password is changed." + note)


async def me_sessions_end(request: Request) -> Response:
    uid = signed_in(request)
    await read_form(request)
    async with write_tx():
        ended = await end_other_sessions(uid, _session(request))
        await record_for_me(me_actor(request), "me.sessions", "signed out of every other session")
    # Every stream of theirs ends; this browser's reconnect, still signed in, just resumes.
    await services(request).hub.end_user(uid)
    noun = "session" if ended == 1 else "sessions"
    return redirect(request, path_for("me"), f"Signed out of {ended} other {noun}.")


async def me_token_create(request: Request) -> Response:
    signed_in(request)
    form = await read_form(request)
    name = form.text("name", label="a name for the token", max_length=TOKEN_NAME_MAX)
    if form.errors:
        return await me_page(request, form.as_typed(), form.errors, 422)
    try:
        async with write_tx():
            secret = await make_token(me_actor(request), name)
    except DomainError as problem:
        errors = FormErrors({problem.field or "name": str(problem)})
        return await me_page(request, form.as_typed(), errors, 422)
    return await me_page(request, None, None, 201, new_token=secret)


async def me_token_revoke(request: Request) -> Response:
    signed_in(request)
    await read_form(request)
    try:
        async with write_tx():
            name = await revoke_token(me_actor(request), request.path_params["token"])
    except DomainError as problem:
        return redirect(request, path_for("me"), str(problem))
    return redirect(request, path_for("me"), f"Revoked the API token “{name}”. It no longer works.")


def _session(request: Request) -> str:
    return request.cookies.get(SESSION_COOKIE, "")


# -- a new person's first password ------------------------------------------------------------


async def welcome(
    request: Request, errors: FormErrors | None = None, status: int = 200
) -> Response:
    owner = await token_owner(request.path_params["token"])
    context = {"owner": owner, "errors": errors or FormErrors()}
    return render(request, "me/welcome.html", context, status_code=status if owner else 404)


async def welcome_submit(request: Request) -> Response:
    token = request.path_params["token"]
    owner = await token_owner(token)
    if owner is None:
        return await welcome(request)
    form = await read_form(request)
    password, repeat = form.raw("password"), form.raw("repeat")
    errors = FormErrors(check_new_password(password, repeat, owner.username))
    if len(password) > PASSWORD_MAX or form.errors or errors:
        return await welcome(request, FormErrors({**form.errors, **errors}), 422)
    hashed = await hash_password(password)
    try:
        async with write_tx():
            await redeem_token(token, hashed)
    except DomainError:
        return await welcome(request)  # spent meanwhile (a double submit): 404 page
    response = await start_session(request, owner.user_id, await start_page(owner.user_id))
    return flash(response, f"Welcome, {owner.name}. Your password is set.")


routes = [
    Route("/me", me_page, methods=["GET"], name="me"),
    Route("/me/name", me_name, methods=["POST"], name="me_name"),
    Route("/me/password", me_password, methods=["POST"], name="me_password"),
    Route("/me/sessions/end", me_sessions_end, methods=["POST"], name="me_sessions_end"),
    Route("/me/tokens", me_token_create, methods=["POST"], name="me_token_create"),
    Route(
        "/me/tokens/{token:id}/revoke", me_token_revoke, methods=["POST"], name="me_token_revoke"
    ),
    Route("/welcome/{token}", welcome, methods=["GET"], name="welcome"),
    Route("/welcome/{token}", welcome_submit, methods=["POST"], name="welcome_submit"),
]
