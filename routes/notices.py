"""The site notice: one pinned message per site, edited under a soft lock.

Opening the editor takes the lock ("being edited by Bob" for everyone else) and the open
editor renews it; saving checks the lock (423 naming the holder) and the version the
editor started from (409 with what changed); a manager may break a lock, which is
recorded in the site activity.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from live.locks import LockHeld, LockInfo
from routes.access import require_manager, site_of
from routes.activity import publish_site, record_activity, site_topic
from routes.common import FormErrors, form_of, redirect, render
from routes.live import partial, render_fragment
from tables.base import DomainError, StaleVersion, write_tx
from tables.notices import NOTICE_MAX, SiteNotice
from tables.people import SiteAccess

LOCK_TTL = 30.0  # the editor renews every 10 s; a vanished editor frees it within 30 s


def lock_key(access: SiteAccess) -> str:
    return f"site:{access.site_id}:notice"


def locks(request: Request):
    return request.app.state.locks


async def notice_region(request: Request, access: SiteAccess) -> str:
    """The #notice region, rendered once for every viewer: text, who saved it, who edits."""
    notice = await SiteNotice.for_site(access.site_id)
    holder = await locks(request).holder(lock_key(access))
    tz = ZoneInfo(access.timezone)
    return render_fragment(
        "notices/_notice.html",
        site=access,
        notice=notice,
        saved_at=notice["updated_at"].astimezone(tz).strftime("%H:%M"),
        editor=holder.holder if holder else None,
    )


async def announce(request: Request, kind: str) -> None:
    """Tell the site home viewers who is editing now. A snapshot of #notice, published in
    order with the saves, so a late "being edited" badge can never overtake a save."""
    access = site_of(request)

    async def notice() -> str:
        return partial("notice", await notice_region(request, access))

    await request.app.state.hub.publish(site_topic(access), kind, access.username, notice)


def editor(
    request: Request,
    *,
    text: str,
    version: int,
    token: str = "",
    errors: FormErrors | None = None,
    held: LockInfo | None = None,
    stale: StaleVersion | None = None,
    status: int = 200,
) -> Response:
    access = site_of(request)
    context = {
        "text": text,
        "version": version,
        "token": token,
        "errors": errors or FormErrors(),
        "held": held,
        "held_message": held.describe(ZoneInfo(access.timezone)) if held else "",
        "stale": stale,
        "max_length": NOTICE_MAX,
    }
    return render(
        request, "notices/edit.html", context, fragment="notices/_form.html", status_code=status
    )


async def notice_edit(request: Request) -> Response:
    access = site_of(request)
    notice = await SiteNotice.for_site(access.site_id)
    try:
        lock = await locks(request).acquire(
            lock_key(access), access.user_id, access.display_name, LOCK_TTL
        )
    except LockHeld as held:
        return editor(request, text=notice["text"], version=notice["version"], held=held.info)
    await announce(request, "lock")
    return editor(request, text=notice["text"], version=notice["version"], token=lock.token)


async def notice_save(request: Request) -> Response:
    access = site_of(request)
    form = await form_of(request)
    text = str(form.get("text") or "")
    token = str(form.get("token") or "")
    try:
        version = int(str(form.get("version")))
    except ValueError:
        version = 0
    holder = await locks(request).holder(lock_key(access))
    if holder is not None and holder.holder_id != access.user_id:
        return editor(request, text=text, version=version, held=holder, status=423)
    try:
        async with write_tx(SiteNotice._meta.db):
            await SiteNotice.save_text(
                access.site_id, text, version, access.user_id, access.display_name
            )
            await record_activity(request, "notice.update", "updated the site notice")
    except StaleVersion as stale:
        return editor(
            request,
            text=text,
            version=stale.current["version"],
            token=token,
            stale=stale,
            status=409,
        )
    except DomainError as problem:
        errors = FormErrors({problem.field or "text": str(problem)})
        return editor(request, text=text, version=version, token=token, errors=errors, status=422)
    if token:
        await locks(request).release(lock_key(access), token)

    async def notice() -> str:
        return partial("notice", await notice_region(request, access))

    await publish_site(request, "notice.update", also=notice)
    return redirect(request, str(request.app.url_path_for("site_home", site=access.slug)))


async def notice_renew(request: Request) -> Response:
    """The open editor keeps its lock (every 10 s); 409 once it was lost or broken."""
    access = site_of(request)
    token = str((await form_of(request)).get("token") or "")
    if await locks(request).renew(lock_key(access), token, LOCK_TTL):
        return Response(status_code=204)
    return Response("Your editing lock was taken over.", status_code=409)


async def notice_cancel(request: Request) -> Response:
    access = site_of(request)
    token = str((await form_of(request)).get("token") or "")
    if token and await locks(request).release(lock_key(access), token):
        await announce(request, "unlock")
    return redirect(request, str(request.app.url_path_for("site_home", site=access.slug)))


async def notice_break(request: Request) -> Response:
    """A manager takes over a notice someone left open; the holder is told on their next
    save (423) and everyone sees the line in the site activity."""
    access = require_manager(request)
    broken = await locks(request).break_lock(lock_key(access))
    if broken is not None:
        async with write_tx(SiteNotice._meta.db):
            await record_activity(
                request, "notice.break_lock", f"took over editing the notice from {broken.holder}"
            )
        await publish_site(request, "notice.break_lock")
    return redirect(request, str(request.app.url_path_for("notice_edit", site=access.slug)))


routes = [
    Route("/notice/edit", notice_edit, name="notice_edit"),
    Route("/notice", notice_save, methods=["POST"], name="notice_save"),
    Route("/notice/lock", notice_renew, methods=["POST"], name="notice_renew"),
    Route("/notice/cancel", notice_cancel, methods=["POST"], name="notice_cancel"),
    Route("/notice/break", notice_break, methods=["POST"], name="notice_break"),
]
