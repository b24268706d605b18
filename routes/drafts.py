"""Shared dispatch drafts (SPEC §5.1): /s/{site}/drafts.

The area on the kit: `DRAFTS` declares the live page and its forms, `render_drafts`
draws whatever an action changed (a draft, some parcel rows, the list), `TRANSPORT` is
the vehicle-and-driver editor under a soft lock. Every action is a plain form post first
(303 back to the page, with its message), and under htmx answers with the partials it
published to everyone, rendered once.
"""

from __future__ import annotations

from datetime import timedelta

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from routes.access import site_of
from routes.common import AREAS, Area, Services, path_for, render, services, wants_fragment
from routes.dispatches import DISPATCHES
from routes.editing import Editing, LockEditor, Saving
from routes.forms import read_form
from routes.fragments import delete, partial, render_fragment, toast, upsert
from routes.live import Change, Forms, FormSpec, LiveArea, Params, Render, deletions, held_by
from settings import Settings
from tables.base import DomainError, InvalidInput, write_tx
from tables.drafts import (
    AlreadyFinalised,
    Parcel,
    ParcelView,
    add_code,
    add_parcels,
    board,
    clear,
    driver_suggestions,
    expire_due,
    finalise,
    open_draft,
    parcel_rows,
    remove_parcel,
    set_transport,
    vehicles,
)
from tables.people import SiteRef

AREAS.append(Area("Dispatch drafts", "drafts", "Build tomorrow's runs together, parcel by parcel"))


def ttl(settings: Settings) -> timedelta:
    return timedelta(hours=settings.draft_ttl_hours)


async def render_drafts(view: Render) -> str:
    """What changed on the drafts page, for every viewer: draft items, parcel rows (new
    ones upserted in their place), the whole list when a draft opened or closed."""
    return await drafts_html(view) + await parcels_html(view)


async def drafts_html(view: Render) -> str:
    site, change = view.site, view.change
    if not (change.redraws("drafts") or change.ids("draft")):
        return ""
    context = {"site": site, "editors": await view.editing(TRANSPORT.prefix(site))}
    if change.redraws("drafts"):
        drafts = (await board(site.id)).drafts
        return partial("drafts", render_fragment("drafts/_drafts.html", drafts=drafts, **context))
    return "".join(
        partial(f"draft-{d.id}", render_fragment("drafts/_draft.html", draft=d, **context))
        for d in (await board(site.id, change.ids("draft"))).drafts
    )


async def parcels_html(view: Render) -> str:
    site, change = view.site, view.change
    if change.redraws("parcels"):
        rows = await parcel_rows(site.id)
        return partial("parcels", render_fragment("drafts/_parcels.html", site=site, parcels=rows))
    changed, new = set(change.ids("parcel")), set(change.new("parcel")) - set(change.ids("parcel"))
    rows = await parcel_rows(site.id, sorted(changed | new))

    def row(p: ParcelView) -> str:
        return render_fragment("drafts/_parcel_row.html", p=p, site=site)

    html = "".join(partial(f"parcel-{p.id}", row(p)) for p in rows if p.id in changed)
    if inserted := "".join(row(p) for p in rows if p.id in new):
        html += upsert("parcel-rows", inserted, key="data-key") + delete("parcels-empty")
    return html + deletions(change, "parcel")


DRAFTS = LiveArea(
    "drafts",
    render=render_drafts,
    regions={"drafts", "parcels"},
    forms={
        "scan": FormSpec("drafts/_scan.html", "scan-form", "code"),
        "receive": FormSpec("drafts/_receive.html", "receive-form", "code"),
        "parcels": FormSpec(None, "parcels", "parcels"),
    },
)


# -- the page ------------------------------------------------------------------------------


@DRAFTS.page
async def drafts_page(request: Request, forms: Forms | None = None) -> Response:
    site = site_of(request).ref
    context = {
        "drafts": (await board(site.id)).drafts,
        "parcels": await parcel_rows(site.id),
        "editors": await held_by(services(request).locks, TRANSPORT.prefix(site)),
        "only_available": request.query_params.get("only") == "available",
        "forms": forms or Forms(),
        "live": await DRAFTS.view(request),
    }
    return render(request, "drafts/page.html", context)


async def draft_page(request: Request, template: str, **context: object) -> Response:
    """A page about one open draft (clear, finalise, load sheet); 404 once it is closed."""
    site = site_of(request).ref
    try:
        draft = await open_draft(site.id, request.path_params["draft"])
    except AlreadyFinalised as late:
        return render(request, "drafts/finalised.html", vars(late))
    except DomainError as gone:
        raise HTTPException(404, str(gone)) from None
    live = await DRAFTS.view(request)
    return render(request, template, {"draft": draft, "live": live, **context})


# -- actions -------------------------------------------------------------------------------


async def parcel_receive(request: Request) -> Response:
    site, form = site_of(request), await read_form(request)
    values = {k: form.raw(k) for k in ("code", "destination", "description", "weight")}
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        async with write_tx():
            parcel = await Parcel.receive(site.site_id, site.actor, **values)
    except DomainError as bad:
        return await DRAFTS.refuse(request, "receive", bad, values)
    change = Change(added={"parcel": {parcel.id}})
    notice = f"Received {parcel.code}."
    return await DRAFTS.done(
        request, change, kind="parcel.receive", notice=notice, reset=["receive"]
    )


async def draft_add_parcels(request: Request) -> Response:
    """Add the ticked parcels, each to the draft of its destination (created if needed)."""
    site, form = site_of(request), await read_form(request)
    ids = form.ids("parcel")
    if form.errors or not ids:
        return await DRAFTS.refuse(
            request, "parcels", form.errors or "Tick the parcels to add first."
        )
    async with write_tx():
        result = await add_parcels(site.site_id, ids, site.actor, ttl(services(request).settings))
    refused = "; ".join(f"{code} {why}" for code, why in result.refused)
    if not result.count:
        return await DRAFTS.refuse(request, "parcels", f"Nothing added: {refused}.")
    notice = f"Added {result.count} parcel{'s' * (result.count != 1)}."
    notice += f" Not added: {refused}." if refused else ""
    return await DRAFTS.done(request, added(result), kind="draft.add_parcels", notice=notice)


async def draft_add_code(request: Request) -> Response:
    """The scan box: one code typed or scanned, added to its destination's draft. The box
    comes back empty either way, so the next scan never lands after a refused code."""
    site, form = site_of(request), await read_form(request)
    code = form.text("code", label="a parcel code", max_length=100)
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        async with write_tx():
            result = await add_code(site.site_id, code, site.actor, ttl(services(request).settings))
    except DomainError as problem:
        return await DRAFTS.refuse(request, "scan", problem)
    notice = f"Added {code.upper()}."
    return await DRAFTS.done(
        request, added(result), kind="draft.add_parcels", notice=notice, reset=["scan"]
    )


def added(result) -> Change:
    return Change(
        items={"draft": result.added, "parcel": result.parcel_ids},
        whole={"drafts"} if result.created else (),
    )


async def draft_remove_parcel(request: Request) -> Response:
    site, form, draft_id = site_of(request), await read_form(request), request.path_params["draft"]
    parcel_id = form.id("parcel")
    try:
        if parcel_id is None:
            raise InvalidInput(form.errors)
        async with write_tx():
            code = await remove_parcel(
                site.site_id, draft_id, parcel_id, site.actor, ttl(services(request).settings)
            )
    except DomainError as problem:
        return await DRAFTS.refuse(request, "parcels", problem)
    change = Change(items={"draft": {draft_id}, "parcel": {parcel_id}})
    return await DRAFTS.done(request, change, kind="draft.remove_parcel", notice=f"Removed {code}.")


async def draft_clear_confirm(request: Request) -> Response:
    return await draft_page(request, "drafts/clear.html", viewer_name=site_of(request).display_name)


async def draft_clear(request: Request) -> Response:
    site = site_of(request)
    try:
        async with write_tx():
            released = await clear(site.site_id, request.path_params["draft"], site.actor)
    except DomainError as problem:
        return await DRAFTS.refuse(request, "parcels", problem)
    change = Change(items={"parcel": [row["id"] for row in released]}, whole={"drafts"})
    notice = f"Cleared: {len(released)} parcels are available again."
    return await DRAFTS.done(request, change, kind="draft.clear", notice=notice)


async def draft_finalise_confirm(request: Request) -> Response:
    return await draft_page(request, "drafts/finalise.html")


async def draft_finalise(request: Request) -> Response:
    site = site_of(request)
    try:
        async with write_tx():
            dispatch = await finalise(site.site_id, request.path_params["draft"], site.actor)
    except AlreadyFinalised as late:
        return await finalised_already(request, late)
    except DomainError as problem:
        return await DRAFTS.refuse(request, "parcels", problem)
    await announce_finalised(request, dispatch)
    context = {"by": site.display_name, "number": dispatch["number"], "mine": True}
    return render(request, "drafts/finalised.html", {**context, "dispatch_id": dispatch["id"]})


async def announce_finalised(request: Request, dispatch: dict) -> None:
    """The draft leaves every screen, and everyone is told who finalised it into what."""
    site = site_of(request)
    manifest = path_for("dispatch_manifest", site=site.slug, dispatch=dispatch["id"])
    news = f"{site.display_name} finalised {dispatch['destination']} → {dispatch['number']}"
    change = Change(gone={"parcel": dispatch["parcel_ids"]}, whole={"drafts"})
    await DRAFTS.publish(
        services(request),
        site.ref,
        {},
        change,
        kind="draft.finalise",
        actor=site.username,
        extra=lambda: announcement(news, site.username, manifest),
    )
    # The new dispatch joins the status board (and its vehicle's history) live.
    await DISPATCHES.publish(
        services(request),
        site.ref,
        {},
        Change(items={"dispatch": {dispatch["id"]}}),
        kind="dispatch.create",
        actor=site.username,
    )


async def announcement(text: str, username: str, link: str) -> str:
    """News for everyone on the page; the actor's own copy hides itself (app.js)."""
    html = Markup(
        '<div class="toast toast--info" role="status" data-user="{}">'
        '{} · <a href="{}">manifest</a></div>'
    )
    return partial("toasts", str(html.format(username, text, link)), swap="beforeend")


async def finalised_already(request: Request, late: AlreadyFinalised) -> Response:
    """Not an error: someone was quicker (or this was a double tap). Say who, and where
    the parcels went; once."""
    mine = late.by == site_of(request).display_name
    if wants_fragment(request) and not mine:
        return HTMLResponse(toast(str(late)))
    return render(request, "drafts/finalised.html", {**vars(late), "mine": mine})


async def draft_load_sheet(request: Request) -> Response:
    return await draft_page(request, "drafts/load_sheet.html")


async def expire_drafts(svc: Services) -> int:
    """Housekeeping: expire drafts untouched past their time, and tell their viewers."""
    expired = await expire_due()
    for site_id in sorted({d["site"] for d in expired}):
        site = await SiteRef.load(site_id)
        released = [p for d in expired if d["site"] == site_id for p in d["released"]]
        if site is not None:
            change = Change(items={"parcel": released}, whole={"drafts"})
            await DRAFTS.publish(svc, site, {}, change, kind="draft.expire", actor="")
    return len(expired)


# -- vehicle and driver, under a soft lock -------------------------------------------------


async def load_transport(site: SiteRef, params: Params) -> Editing:
    draft = await open_draft(site.id, params["draft"])
    return Editing(
        {"vehicle": draft.vehicle_id, "driver": draft.driver},
        draft.version,
        f"the {draft.destination} draft's vehicle and driver",
        {
            "draft": draft,
            "vehicles": await vehicles(site.id),
            "drivers": await driver_suggestions(site.id),
        },
    )


async def save_transport(saving: Saving) -> str:
    form = saving.form
    vehicle = form.id("vehicle", required=False)
    driver = form.text("driver", label="the driver's name", max_length=100, required=False)
    if form.errors:
        raise InvalidInput(form.errors)
    draft_id = saving.params["draft"]
    await set_transport(
        saving.site.id,
        draft_id,
        saving.version,
        vehicle,
        driver,
        saving.actor,
        ttl(saving.settings),
    )
    return "Vehicle and driver saved."


TRANSPORT = LockEditor(
    DRAFTS,
    "draft_transport",
    params=("draft",),
    load=load_transport,
    save=save_transport,
    template="drafts/transport.html",
    redraw=lambda params: Change(items={"draft": {params["draft"]}}),
    entity="draft",
)


routes = [
    Route("/drafts", drafts_page, name="drafts"),
    Route("/drafts/parcels", parcel_receive, methods=["POST"], name="parcel_receive"),
    Route("/drafts/add", draft_add_parcels, methods=["POST"], name="draft_add_parcels"),
    Route("/drafts/scan", draft_add_code, methods=["POST"], name="draft_add_code"),
    Route(
        "/drafts/{draft:id}/remove",
        draft_remove_parcel,
        methods=["POST"],
        name="draft_remove_parcel",
    ),
    Route("/drafts/{draft:id}/clear", draft_clear_confirm, name="draft_clear_confirm"),
    Route("/drafts/{draft:id}/clear", draft_clear, methods=["POST"], name="draft_clear"),
    Route("/drafts/{draft:id}/finalise", draft_finalise_confirm, name="draft_finalise_confirm"),
    Route("/drafts/{draft:id}/finalise", draft_finalise, methods=["POST"], name="draft_finalise"),
    Route("/drafts/{draft:id}/load-sheet", draft_load_sheet, name="draft_load_sheet"),
    *TRANSPORT.routes("/drafts/{draft:id}/transport"),
    *DRAFTS.routes("/drafts"),
]
