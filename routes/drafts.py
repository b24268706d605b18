"""Shared dispatch drafts (SPEC §5.1): /s/{site}/drafts.

Every action is a plain form post first (303 back to the page), and with htmx the same
action answers with the page's changed regions as <hx-partial>s — the very HTML it
publishes to every other viewer, rendered once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from live.locks import LockHeld, LockInfo
from routes.access import site_of
from routes.activity import publish_site
from routes.common import AREAS, Area, FormErrors, form_of, is_htmx, redirect, render
from routes.live import LivePage, partial, render_fragment, toast
from tables.base import Actor, DomainError, InvalidInput, StaleVersion, write_tx
from tables.drafts import (
    AddResult,
    AlreadyFinalised,
    Parcel,
    add_parcels,
    board,
    clear,
    expire_due,
    finalise,
    parcel_id_for_code,
    remove_parcel,
    set_transport,
)
from tables.people import Site, SiteAccess

LOCK_TTL = 30.0
# Suggestions for the driver field (a name is free text); the drafts' own drivers join them.
DRIVERS = {"Bob Wilson", "Charlie Smith", "Peter Otieno", "Grace Njeri"}

AREAS.append(Area("Dispatch drafts", "drafts", "Build tomorrow's runs together, parcel by parcel"))


def actor_of(access: SiteAccess) -> Actor:
    return Actor(access.user_id, access.display_name)


def ttl(request: Request) -> timedelta:
    return timedelta(hours=request.app.state.settings.draft_ttl_hours)


def lock_key(access: SiteAccess, draft_id: int) -> str:
    return f"site:{access.site_id}:draft:{draft_id}"


def drafts_topic(access: SiteAccess) -> str:
    return f"drafts:{access.site_id}"


async def editors(app: Starlette, site_id: int) -> dict[int, str]:
    """Who holds the transport lock of each draft: draft id -> name (one lookup)."""
    held = await app.state.locks.holders(f"site:{site_id}:draft:")
    return {int(key.rsplit(":", 1)[1]): info.holder for key, info in held.items()}


async def drafts_regions(app: Starlette, site: Any) -> str:
    """The page's live regions (#drafts, #parcels) fresh, as partials for everyone.

    `site` needs `site_id`, `slug` and `name` (a SiteAccess, or a Site row's view).
    """
    return await changed_regions(app, site, Change(layout=True, table=True))


async def page_regions(request: Request, access: SiteAccess) -> str:
    return await drafts_regions(request.app, access)


PAGE = LivePage("drafts", topics=lambda access: [drafts_topic(access)], regions=page_regions)


@dataclass
class Change:
    """What an action changed, so that only that is rendered and sent to every viewer.

    A parcel added to an existing draft is that draft's item and one table row (a few KB),
    not the whole page (hundreds of KB with 500 parcels, times every viewer).
    """

    drafts: set[int] = field(default_factory=set)  # draft items changed in place
    parcels: set[int] = field(default_factory=set)  # table rows changed in place
    gone: set[int] = field(default_factory=set)  # table rows to remove (dispatched)
    layout: bool = False  # a draft opened or closed: the whole #drafts list
    table: bool = False  # rows were added: the whole #parcels table


async def changed_regions(app: Starlette, site: Any, change: Change) -> str:
    data = await board(site.site_id)
    context = {"site": site, "board": data, "editors": await editors(app, site.site_id)}
    html: list[str] = []
    if change.layout:
        html.append(partial("drafts", render_fragment("drafts/_drafts.html", **context)))
    else:
        for draft_id in sorted(change.drafts):
            view = data.draft(draft_id)
            if view is not None:
                item = render_fragment("drafts/_draft.html", draft=view, **context)
                html.append(partial(f"draft-{draft_id}", item))
    if change.table:
        html.append(partial("parcels", render_fragment("drafts/_parcels.html", **context)))
        return "".join(html)
    rows = {p.id: p for p in data.parcels}
    for parcel_id in sorted(change.parcels - change.gone):
        if parcel_id in rows:
            row = render_fragment("drafts/_parcel_row.html", p=rows[parcel_id], site=site)
            html.append(partial(f"parcel-{parcel_id}", row))
    for parcel_id in sorted(change.gone):
        html.append(partial(f"parcel-{parcel_id}", "", swap="delete"))
    return "".join(html)


async def publish(request: Request, kind: str, change: Change, notice: str = "") -> str:
    """After commit: what changed to every viewer of the drafts page (rendered once, in
    order), and the new activity line to the site home. Returns the partials for the
    htmx caller, plus its notice."""
    access = site_of(request)
    html = await request.app.state.hub.publish(
        drafts_topic(access),
        kind,
        access.username,
        lambda: changed_regions(request.app, access, change),
    )
    await publish_site(request, kind)
    if notice:
        html += toast(notice)
    return html


def done(request: Request, html: str) -> Response:
    """Success: htmx gets the partials, a plain form goes back to the page (PRG)."""
    if is_htmx(request):
        return HTMLResponse(html)
    url = str(request.app.url_path_for("drafts", site=site_of(request).slug))
    return redirect(request, url)


async def drafts_page(
    request: Request, errors: FormErrors | None = None, values: dict | None = None
) -> Response:
    access = site_of(request)
    data = await board(access.site_id)
    context = {
        "board": data,
        "editors": await editors(request.app, access.site_id),
        "only_available": request.query_params.get("only") == "available",
        "errors": errors or FormErrors(),
        "values": values or {},
        "live": await PAGE.view(request),
    }
    return render(request, "drafts/page.html", context, status_code=422 if errors else 200)



def form_error(request: Request, target: str, template: str, context: dict[str, Any]) -> Response:
    """Bad input under htmx: just that form again, with its messages and values (422)."""
    html = render_fragment(template, site=site_of(request), **context)
    return HTMLResponse(partial(target, html, swap="outerHTML"), status_code=422)


async def parcel_receive(request: Request) -> Response:
    access = site_of(request)
    form = await form_of(request)
    values = {k: str(form.get(k) or "") for k in ("code", "destination", "description", "weight")}
    try:
        async with write_tx(Parcel._meta.db):
            parcel = await Parcel.receive(access.site_id, actor_of(access), **values)
    except InvalidInput as bad:
        return await _receive_again(request, FormErrors(bad.errors), values)
    html = await publish(request, "parcel.receive", Change(table=True), f"Received {parcel.code}")
    html += partial(
        "receive-form",
        render_fragment("drafts/_receive.html", site=access, values={}, errors={}),
        swap="outerHTML",
    )
    return done(request, html)


async def _receive_again(request: Request, errors: FormErrors, values: dict) -> Response:
    if is_htmx(request):
        return form_error(
            request, "receive-form", "drafts/_receive.html", {"errors": errors, "values": values}
        )
    return await drafts_page(request, errors, values)


async def draft_add_parcels(request: Request) -> Response:
    """Add the ticked parcels, each to the draft of its destination (created if needed)."""
    access = site_of(request)
    form = await form_of(request)
    try:
        ids = [int(v) for v in form.getlist("parcel")]  # type: ignore[attr-defined]
    except ValueError:
        raise HTTPException(400, "Those parcels could not be read.") from None
    if not ids:
        return await _refuse(request, "parcels", "Tick the parcels to add first.")
    async with write_tx(Parcel._meta.db):
        result = await add_parcels(access.site_id, ids, actor_of(access), ttl(request))
    refused = "; ".join(f"{code} {why}" for code, why in result.refused)
    if not result.count:
        return await _refuse(request, "parcels", f"Nothing added: {refused}.")
    notice = f"Added {result.count} parcel{'s' * (result.count != 1)}."
    if refused:
        notice += f" Not added: {refused}."
    return done(request, await publish(request, "draft.add_parcels", added(result), notice))


async def draft_add_code(request: Request) -> Response:
    """The scan box: one code typed or scanned, added to its destination's draft."""
    access = site_of(request)
    code = str((await form_of(request)).get("code") or "")
    try:
        async with write_tx(Parcel._meta.db):
            parcel_id = await parcel_id_for_code(access.site_id, code)
            result = await add_parcels(access.site_id, [parcel_id], actor_of(access), ttl(request))
    except DomainError as problem:
        return await _scan_again(request, code, str(problem))
    if not result.count:  # lost a race with someone adding it at the same moment
        return await _scan_again(request, code, f"{code.upper()} {result.refused[0][1]}.")
    notice = f"Added {code.strip().upper()}."
    html = await publish(request, "draft.add_parcels", added(result), notice)
    html += partial(
        "scan-form",
        render_fragment("drafts/_scan.html", site=access, code="", error=""),
        swap="outerHTML",
    )
    return done(request, html)


async def _scan_again(request: Request, code: str, error: str) -> Response:
    if is_htmx(request):
        return form_error(request, "scan-form", "drafts/_scan.html", {"code": code, "error": error})
    return await drafts_page(request, FormErrors({"code": error}), {"code": code})


async def _refuse(request: Request, field: str, message: str) -> Response:
    if is_htmx(request):
        return HTMLResponse(toast(message, "error"), status_code=422)
    return await drafts_page(request, FormErrors({field: message}))


def added(result: AddResult) -> Change:
    return Change(
        drafts=set(result.added), parcels=set(result.parcel_ids), layout=bool(result.created)
    )


def draft_id_of(request: Request) -> int:
    return int(request.path_params["draft"])


async def draft_remove_parcel(request: Request) -> Response:
    access = site_of(request)
    try:
        parcel_id = int(str((await form_of(request)).get("parcel")))
    except ValueError:
        raise HTTPException(400, "Which parcel?") from None
    try:
        async with write_tx(Parcel._meta.db):
            code = await remove_parcel(
                access.site_id, draft_id_of(request), parcel_id, actor_of(access), ttl(request)
            )
    except DomainError as problem:
        return await _refuse(request, "parcels", str(problem))
    change = Change(drafts={draft_id_of(request)}, parcels={parcel_id})
    return done(request, await publish(request, "draft.remove_parcel", change, f"Removed {code}."))


# -- vehicle and driver, under a soft lock ------------------------------------------------


async def _transport_form(
    request: Request,
    draft: Any,
    *,
    vehicle_id: int | None,
    driver: str,
    version: int,
    token: str = "",
    held: LockInfo | None = None,
    stale: StaleVersion | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    access = site_of(request)
    data = await board(access.site_id, only_draft=draft.id)
    context = {
        "draft": draft,
        "vehicles": data.vehicles,
        "vehicle_id": vehicle_id,
        "driver": driver,
        "version": version,
        "token": token,
        "held": held,
        "held_message": held.describe(ZoneInfo(access.timezone)) if held else "",
        "stale": stale,
        "errors": errors or FormErrors(),
        "drivers": sorted(DRIVERS | ({draft.driver} if draft.driver else set())),
    }
    return render(request, "drafts/transport.html", context, status_code=status)


async def _one_draft(request: Request) -> Any:
    access = site_of(request)
    draft = (await board(access.site_id, only_draft=draft_id_of(request))).draft(
        draft_id_of(request)
    )
    if draft is None:
        raise HTTPException(404, "That draft is no longer open: it was finalised or cleared.")
    return draft


async def _announce(request: Request, kind: str) -> None:
    """Someone took or let go of a transport lock: a snapshot, published in order."""
    access = site_of(request)
    change = Change(drafts={draft_id_of(request)})
    await request.app.state.hub.publish(
        drafts_topic(access),
        kind,
        access.username,
        lambda: changed_regions(request.app, access, change),
    )


async def draft_transport(request: Request) -> Response:
    access = site_of(request)
    draft = await _one_draft(request)
    common = {"vehicle_id": draft.vehicle_id, "driver": draft.driver, "version": draft.version}
    try:
        lock = await request.app.state.locks.acquire(
            lock_key(access, draft.id), access.user_id, access.display_name, LOCK_TTL
        )
    except LockHeld as held:
        return await _transport_form(request, draft, held=held.info, **common)
    await _announce(request, "draft.lock")
    return await _transport_form(request, draft, token=lock.token, **common)


async def draft_transport_save(request: Request) -> Response:
    access = site_of(request)
    draft = await _one_draft(request)
    form = await form_of(request)
    token = str(form.get("token") or "")
    driver = str(form.get("driver") or "")
    try:
        version = int(str(form.get("version")))
        raw_vehicle = str(form.get("vehicle") or "")
        vehicle_id = int(raw_vehicle) if raw_vehicle else None
    except ValueError:
        raise HTTPException(400, "That form could not be read.") from None
    again: dict[str, Any] = {"vehicle_id": vehicle_id, "driver": driver, "token": token}
    holder = await request.app.state.locks.holder(lock_key(access, draft.id))
    if holder is not None and holder.holder_id != access.user_id:
        return await _transport_form(
            request, draft, version=version, held=holder, status=423, **again
        )
    try:
        async with write_tx(Parcel._meta.db):
            await set_transport(
                access.site_id,
                draft.id,
                version,
                vehicle_id,
                driver,
                actor_of(access),
                ttl(request),
            )
    except StaleVersion as stale:
        return await _transport_form(
            request, draft, version=stale.current["version"], stale=stale, status=409, **again
        )
    except InvalidInput as bad:
        return await _transport_form(
            request, draft, version=version, errors=FormErrors(bad.errors), status=422, **again
        )
    if token:
        await request.app.state.locks.release(lock_key(access, draft.id), token)
    await publish(request, "draft.set_transport", Change(drafts={draft.id}))
    url = str(request.app.url_path_for("drafts", site=access.slug))
    return redirect(request, f"{url}#draft-{draft.id}")


async def draft_transport_renew(request: Request) -> Response:
    access = site_of(request)
    token = str((await form_of(request)).get("token") or "")
    key = lock_key(access, draft_id_of(request))
    if await request.app.state.locks.renew(key, token, LOCK_TTL):
        return Response(status_code=204)
    return Response("Your editing lock was taken over.", status_code=409)


async def draft_transport_cancel(request: Request) -> Response:
    access = site_of(request)
    token = str((await form_of(request)).get("token") or "")
    key = lock_key(access, draft_id_of(request))
    if token and await request.app.state.locks.release(key, token):
        await _announce(request, "draft.unlock")
    return redirect(request, str(request.app.url_path_for("drafts", site=access.slug)))


# -- clear, finalise, print ---------------------------------------------------------------


async def draft_clear_confirm(request: Request) -> Response:
    access = site_of(request)
    draft = await _one_draft(request)
    others = draft.others(access.display_name)
    return render(request, "drafts/clear.html", {"draft": draft, "others": others})


async def draft_clear(request: Request) -> Response:
    access = site_of(request)
    try:
        async with write_tx(Parcel._meta.db):
            released = await clear(access.site_id, draft_id_of(request), actor_of(access))
    except DomainError as problem:
        return await _refuse(request, "parcels", str(problem))
    change = Change(layout=True, parcels={row["id"] for row in released})
    notice = f"Cleared: {len(released)} parcels are available again."
    await publish(request, "draft.clear", change, notice)
    return redirect(request, str(request.app.url_path_for("drafts", site=access.slug)))


async def draft_finalise(request: Request) -> Response:
    access = site_of(request)
    try:
        async with write_tx(Parcel._meta.db):
            dispatch = await finalise(access.site_id, draft_id_of(request), actor_of(access))
    except AlreadyFinalised as late:
        # Not an error: someone was quicker. Say who, and where the parcels went.
        html = await page_regions(request, access)
        html += toast(str(late))
        if is_htmx(request):
            return HTMLResponse(html)
        return render(
            request,
            "drafts/finalised.html",
            {"by": late.by, "number": late.number, "dispatch_id": late.dispatch_id},
        )
    except InvalidInput as bad:
        return await _refuse(request, "parcels", " ".join(bad.errors.values()))
    except DomainError as problem:
        return await _refuse(request, "parcels", str(problem))
    number = dispatch["number"]
    manifest = request.app.url_path_for(
        "dispatch_manifest", site=access.slug, dispatch=dispatch["id"]
    )
    notice = Markup('Finalised → {} · <a href="{}" hx-boost="false">manifest</a>').format(
        number, manifest
    )
    change = Change(layout=True, gone=set(dispatch["parcel_ids"]))
    html = await publish(request, "draft.finalise", change, notice)
    if is_htmx(request):
        return HTMLResponse(html)
    context = {"by": access.display_name, "number": number, "dispatch_id": dispatch["id"]}
    return render(request, "drafts/finalised.html", context)


async def draft_load_sheet(request: Request) -> Response:
    draft = await _one_draft(request)
    return render(request, "drafts/load_sheet.html", {"draft": draft})


async def expire_drafts(app: Starlette) -> int:
    """Housekeeping: expire drafts untouched past their time, and tell their viewers."""
    expired = await expire_due()
    for site_id in sorted({d["site"] for d in expired}):
        row = await Site.select(Site.slug, Site.name).where(Site.id == site_id).first()
        site = SimpleNamespace(site_id=site_id, **(row or {}))
        released = {p for d in expired if d["site"] == site_id for p in d["released"]}
        change = Change(layout=True, parcels=released)
        await app.state.hub.publish(
            f"drafts:{site_id}",
            "draft.expire",
            "",
            lambda site=site, change=change: changed_regions(app, site, change),
        )
    return len(expired)


routes = [
    Route("/drafts", drafts_page, name="drafts"),
    Route("/drafts/parcels", parcel_receive, methods=["POST"], name="parcel_receive"),
    Route("/drafts/add", draft_add_parcels, methods=["POST"], name="draft_add_parcels"),
    Route("/drafts/scan", draft_add_code, methods=["POST"], name="draft_add_code"),
    Route(
        "/drafts/{draft:int}/remove",
        draft_remove_parcel,
        methods=["POST"],
        name="draft_remove_parcel",
    ),
    Route("/drafts/{draft:int}/transport", draft_transport, name="draft_transport"),
    Route(
        "/drafts/{draft:int}/transport",
        draft_transport_save,
        methods=["POST"],
        name="draft_transport_save",
    ),
    Route(
        "/drafts/{draft:int}/transport/lock",
        draft_transport_renew,
        methods=["POST"],
        name="draft_transport_renew",
    ),
    Route(
        "/drafts/{draft:int}/transport/cancel",
        draft_transport_cancel,
        methods=["POST"],
        name="draft_transport_cancel",
    ),
    Route("/drafts/{draft:int}/clear", draft_clear_confirm, name="draft_clear_confirm"),
    Route("/drafts/{draft:int}/clear", draft_clear, methods=["POST"], name="draft_clear"),
    Route("/drafts/{draft:int}/finalise", draft_finalise, methods=["POST"], name="draft_finalise"),
    Route("/drafts/{draft:int}/load-sheet", draft_load_sheet, name="draft_load_sheet"),
    *PAGE.routes("/drafts"),
]
