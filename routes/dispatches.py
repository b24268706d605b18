"""Dispatches (SPEC §5.5; seed 004): /s/{site}/dispatches and the pages of one dispatch.

Two live pages on the kit. `DISPATCHES`, the site's status board: a column per open
status, most urgent first, filters by priority, asset and assignee (a GET form its
stream and poll carry), tick boxes for a bulk status change. `DISPATCH`, one dispatch
(its own topic and presence list): its head with the next steps, its details (each kind
edited under a soft lock: one `LockEditor` per registered detail kind, so a kind added
to the registry gets its editor here without an edit), and its timeline.

A change to dispatches is `Change(items={"dispatch": ids})`, published on the board and
on each dispatch's page: the board gets each card deleted where it was and upserted in
its column by urgency (`data-rank`), or only deleted once it is closed; static/
dispatches.js keeps what the page's filters hide out, ticks what was ticked, recounts
the columns and turns cards overdue as time passes. Every action is a plain form first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from live.locks import LockInfo, LockStore
from routes.access import site_of
from routes.common import AREAS, Area, best_effort, path_for, render, services, wants_fragment
from routes.editing import Editing, LockEditor, Saving
from routes.forms import FormErrors, read_form
from routes.fragments import delete, partial, render_fragment, toast, upsert
from routes.live import Change, Forms, FormSpec, FormState, LiveArea, Params, Render
from tables.assets import assets_of
from tables.base import DomainError, InvalidInput
from tables.dispatches import (
    DETAIL_KINDS,
    NEXT,
    PRIORITY_ORDER,
    BulkRefused,
    DetailKind,
    Dispatch,
    DispatchCard,
    DispatchChanged,
    DispatchParcel,
    DispatchStatus,
    DispatchView,
    ItemResult,
    Priority,
    assign,
    bulk_transition,
    create_dispatch,
    dispatch_view,
    my_dispatches,
    status_board,
    transition,
    update_detail,
)
from tables.people import SiteRef, assignable_people
from tables.values import row_id

AREAS.append(Area("Dispatches", "dispatches", "Jobs on vehicles and trucks, by status"))

REASON_NEEDED = frozenset({DispatchStatus.cancelled})


def rank(card: DispatchCard) -> str:
    """Where a card sits in its column, as text the upsert compares numerically: the
    most urgent priority first, then the earliest due time (none last), then the oldest."""
    due = int(card.due_at.timestamp()) if card.due_at else 9_999_999_999
    return f"{PRIORITY_ORDER[Priority(card.priority)]}-{due:010d}-{card.id:09d}"


def when(moment: datetime | None, timezone: str, fmt: str = "%d %b %H:%M") -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime(fmt) if moment else ""


def card_html(site: SiteRef, card: DispatchCard) -> str:
    return render_fragment("dispatches/_card.html", site=site, card=card, rank=rank(card))


# -- the status board --------------------------------------------------------------------------


async def render_board(view: Render) -> str:
    site, change = view.site, view.change
    if change.redraws("board"):
        board = await status_board(site.id, view.filters)
        html = render_fragment("dispatches/_board.html", site=site, board=board, rank=rank)
        return partial("board", html)
    ids = change.ids("dispatch")
    if not ids:
        return ""
    cards = {c.id: c for c in (await status_board(site.id, only=ids)).cards}
    html = ""
    for dispatch_id in ids:
        html += delete(f"dispatch-{dispatch_id}")
        card = cards.get(dispatch_id)
        if card is not None:  # still open: in its column, by urgency
            html += upsert(f"cards-{card.status}", card_html(site, card), key="data-rank")
    return html


DISPATCHES = LiveArea(
    "dispatches",
    render=render_board,
    regions={"board"},
    filters=("priority", "asset", "assignee"),
    forms={"bulk": FormSpec(None, "toasts", "dispatches")},
)


def changed(ids: Iterable[int]) -> Change:
    return Change(items={"dispatch": set(ids)})


@DISPATCHES.page
async def dispatches_page(request: Request, forms: Forms | None = None) -> Response:
    return await board_page(request, forms)


async def board_page(
    request: Request, forms: Forms | None = None, results: list[ItemResult] | None = None
) -> Response:
    access = site_of(request)
    filters = DISPATCHES.filters_of(request)
    bulk = (forms or Forms())["bulk"]
    context = {
        "board": await status_board(access.site_id, filters),
        "rank": rank,
        "assets": await assets_of(access.site_id),
        "people": await assignable_people(access.site_id),
        "priorities": list(Priority),
        "targets": [s for s in DispatchStatus if s != DispatchStatus.created],
        "bulk": bulk,
        "results": results or [],
        "live": await DISPATCHES.view(request),
    }
    return render(request, "dispatches/board.html", context)


def ticked(values: list[str]) -> tuple[list[str], dict[int, int]]:
    """The ticked boxes ("42:3": the dispatch and the version its ticker saw): the ids as
    sent, and the versions of those that parse."""
    ids, versions = [], {}
    for value in values[:1000]:
        number, _, version = value.partition(":")
        ids.append(number)
        if (dispatch := row_id(number)) is not None and (seen := row_id(version)) is not None:
            versions[dispatch] = seen
    return ids, versions


async def dispatches_bulk(request: Request) -> Response:
    """One status for every ticked dispatch, or for none: each refusal said per item."""
    access, form = site_of(request), await read_form(request)
    ids, versions = ticked(form.all("dispatches"))
    values = {"to": form.raw("to"), "reason": form.raw("reason")}
    override = form.raw("override") == "on"
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        moved = await bulk_transition(
            access.site_id, ids, values["to"], access.actor, versions,
            reason=values["reason"], override=override, manager=access.is_manager,
        )  # fmt: skip
    except BulkRefused as refused:
        return await bulk_refused(request, refused, values)
    except DomainError as problem:
        return await DISPATCHES.refuse(request, "bulk", problem, values)
    word = DispatchStatus(moved[0]["status"]).word
    numbers = ", ".join(row["number"] for row in moved)
    notice = f"{len(moved)} dispatch{'es' if len(moved) != 1 else ''} now {word}: {numbers}."
    # The board first, in one event; each dispatch's own page (most have no viewer) is
    # only told to refetch itself, not drawn here 50 times.
    answer = await DISPATCHES.done(
        request, changed(row["id"] for row in moved), kind="dispatch.bulk", notice=notice
    )
    svc = services(request)
    for row in moved:
        await DISPATCH.publish(
            svc, access.ref, {"dispatch": row["id"]}, Change(refetch=DISPATCH.regions),
            kind="dispatch.bulk", actor=access.username,
        )  # fmt: skip
    return answer


async def bulk_refused(request: Request, refused: BulkRefused, values: dict[str, str]) -> Response:
    """Nothing changed: the results per ticked dispatch (which would have gone through,
    which not and why) where the bulk form is — htmx in place, a plain form on the page."""
    message = "Nothing was changed: " + "; ".join(str(r) for r in refused.results if not r.ok) + "."
    if wants_fragment(request):
        html = render_fragment("dispatches/_bulk_results.html", results=refused.results)
        return HTMLResponse(
            partial("bulk-results", html) + toast(message, "error"), status_code=409
        )
    state = FormState(FormErrors({"dispatches": message}), values)
    response = await board_page(request, Forms({"bulk": state}), refused.results)
    response.status_code = 409
    return response


# -- a new dispatch -----------------------------------------------------------------------------


async def new_dispatch_page(request: Request, state: FormState | None = None) -> Response:
    access = site_of(request)
    state = state or FormState(
        values={"priority": "normal", "asset": request.query_params.get("asset", "")}
    )
    context = {
        "form": state,
        "assets": await assets_of(access.site_id),
        "people": await assignable_people(access.site_id),
        "priorities": list(Priority),
    }
    response = render(request, "dispatches/new.html", context)
    if state.errors:
        response.status_code = 422
    return response


async def dispatch_create(request: Request) -> Response:
    access, form = site_of(request), await read_form(request)
    names = ("title", "description", "priority", "asset", "assignee", "due_at")
    values = {n: form.raw(n) for n in names}
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        row = await create_dispatch(access.site_id, values, access.actor)
    except DomainError as problem:
        errors = FormErrors(
            problem.errors if isinstance(problem, InvalidInput) else {"title": str(problem)}
        )
        return await new_dispatch_page(request, FormState(errors, values))
    return await DISPATCHES.done(
        request, changed([row["id"]]), kind="dispatch.create",
        notice=f"Created {row['number']} {row['title']}.",
        back=path_for("dispatch", site=access.slug, dispatch=row["id"]),
    )  # fmt: skip


# -- one dispatch -------------------------------------------------------------------------------


async def dispatch_is_the_sites(site: SiteRef, params: Params) -> bool:
    return await Dispatch.exists().where(
        (Dispatch.id == params["dispatch"]) & (Dispatch.site == site.id)
    )


async def render_dispatch(view: Render) -> str:
    site = view.site
    if not set(view.change.whole) and not view.change.ids("dispatch"):
        return ""  # a refetch (a bulk change): the page fetches itself
    try:
        d = await dispatch_view(site.id, view.params["dispatch"])
    except DomainError:
        return partial(
            "dispatch-head", '<div id="dispatch-head"><p>This dispatch is gone.</p></div>'
        )
    context = {
        "site": site,
        "d": d,
        "steps": steps(d.card),
        "editors": DETAIL_EDITORS,
        "locks": await detail_locks(view.locks, site, d),
        "people": await assignable_people(site.id),
    }
    html = partial("dispatch-head", render_fragment("dispatches/_head.html", **context))
    html += partial("details", render_fragment("dispatches/_details.html", **context))
    return html + partial("timeline", render_fragment("dispatches/_timeline.html", **context))


DISPATCH = LiveArea(
    "dispatch",
    params=("dispatch",),
    exists=dispatch_is_the_sites,
    render=render_dispatch,
    regions={"dispatch-head", "details", "timeline"},
    forms={
        "step": FormSpec(None, "toasts", "reason"),
        "assign": FormSpec(None, "toasts", "assignee"),
    },
)


@dataclass(frozen=True)
class DetailLock:
    id: str
    holder: LockInfo | None
    message: str


async def detail_locks(locks: LockStore, site: SiteRef, d: DispatchView) -> dict[str, DetailLock]:
    """Who holds each detail's editor ("Being edited by Erin until 10:42"), by kind."""
    params = {"dispatch": d.card.id}
    found = {}
    for detail in d.details:
        editor = DETAIL_EDITORS.get(detail.kind)
        if editor is None:
            continue
        holder = await best_effort(locks.holder(editor.key(site, params)), None)
        message = holder.describe(site.tz) if holder else ""
        found[detail.kind] = DetailLock(editor.lock_id(site, params), holder, message)
    return found


def steps(card: DispatchCard) -> list[DispatchStatus]:
    """Where the dispatch may go from here: forward first, then Cancelled. Not to Assigned
    while nobody is (the button could only be refused): assigning someone moves it there."""
    return [
        to
        for to in NEXT[DispatchStatus(card.status)]
        if to != DispatchStatus.assigned or card.assignee_id is not None
    ]


@DISPATCH.page
async def dispatch_page(request: Request, forms: Forms | None = None) -> Response:
    access = site_of(request)
    site, params = await DISPATCH.where(request)
    try:
        d = await dispatch_view(site.id, params["dispatch"])
    except DomainError as gone:
        raise HTTPException(404, str(gone)) from None
    context = {
        "d": d,
        "steps": steps(d.card),
        "editors": DETAIL_EDITORS,
        "locks": await detail_locks(services(request).locks, site, d),
        "people": await assignable_people(access.site_id),
        "forms": forms or Forms(),
        "live": await DISPATCH.view(request),
    }
    return render(request, "dispatches/page.html", context)


async def dispatch_step(request: Request) -> Response:
    """One status change from the version its user saw: a reason to cancel, a manager's
    reason to override what the details still need."""
    access, form = site_of(request), await read_form(request)
    site, params = await DISPATCH.where(request)
    values = {n: form.raw(n) for n in ("to", "reason", "version")}
    override = form.raw("override") == "on"
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        row = await transition(
            site.id, params["dispatch"], values["to"], access.actor, values["version"],
            reason=values["reason"], override=override, manager=access.is_manager,
        )  # fmt: skip
    except DispatchChanged as stale:
        who = stale.current.get("updated_by_name") or "Someone"
        word = DispatchStatus(stale.current["status"]).word
        message = f"Not changed: {who} changed it meanwhile — it is {word} now. Look again."
        return await DISPATCH.refuse(request, "step", message, values, status=409)
    except DomainError as problem:
        return await DISPATCH.refuse(request, "step", problem, values)
    word = DispatchStatus(row["status"]).word
    back = path_for("my_dispatches", site=site.slug) if form.raw("back") == "mine" else ""
    return await DISPATCH.done(
        request, changed([row["id"]]), kind="dispatch.status", notice=f"{row['number']} is {word}.",
        back=back, also=[(DISPATCHES, {}, changed([row["id"]]))],
    )  # fmt: skip


async def dispatch_assign(request: Request) -> Response:
    access, form = site_of(request), await read_form(request)
    site, params = await DISPATCH.where(request)
    values = {n: form.raw(n) for n in ("assignee", "version")}
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        row = await assign(
            site.id, params["dispatch"], values["assignee"], access.actor, values["version"]
        )
    except DispatchChanged:
        message = "Not assigned: someone changed the dispatch meanwhile. Look again."
        return await DISPATCH.refuse(request, "assign", message, values, status=409)
    except DomainError as problem:
        return await DISPATCH.refuse(request, "assign", problem, values)
    return await DISPATCH.done(
        request, changed([row["id"]]), kind="dispatch.assign",
        notice=f"{row['number']} is assigned to {row['assigned_to_name']}.",
        also=[(DISPATCHES, {}, changed([row["id"]]))],
    )  # fmt: skip


# -- details: one soft-lock editor per registered kind --------------------------------------------


def detail_loader(kind: DetailKind):
    async def load(site: SiteRef, params: Params) -> Editing:
        d = await dispatch_view(site.id, params["dispatch"])
        detail = d.detail(kind.key)
        if detail is None:
            raise DomainError(f"{d.card.number} has no {kind.label.lower()}.")
        values = {name: value for name, value in detail.values.items()}
        extra = {"d": d, "detail": detail, "kind": kind}
        return Editing(values, detail.version, f"{kind.label} of {d.card.number}", extra)

    return load


def detail_saver(kind: DetailKind):
    async def save(saving: Saving) -> str:
        form = saving.form
        values = {}
        for spec in kind.fields:
            if spec.kind == "flag":
                values[spec.name] = "on" if form.raw(spec.name) == "on" else "off"
            else:
                values[spec.name] = form.raw(spec.name)
        if form.errors:
            raise InvalidInput(form.errors)
        await update_detail(
            saving.site.id,
            saving.params["dispatch"],
            kind.key,
            values,
            saving.version,
            saving.actor,
        )
        return f"Saved the {kind.label.lower()}."

    return save


def back_to_dispatch(site: SiteRef, params: Params) -> str:
    return path_for("dispatch", site=site.slug, dispatch=params["dispatch"]) + "#details"


DETAIL_EDITORS: dict[str, LockEditor] = {
    key: LockEditor(
        DISPATCH,
        f"detail_{key}",
        params=("dispatch",),
        load=detail_loader(kind),
        save=detail_saver(kind),
        template="dispatches/detail_edit.html",
        redraw=lambda p: Change(items={"dispatch": {p["dispatch"]}}),
        entity="dispatch",
        back=back_to_dispatch,
        elsewhere=lambda p: [(DISPATCHES, {}, changed([p["dispatch"]]))],  # its card's needs
    )
    for key, kind in DETAIL_KINDS.items()
}


# -- mine ---------------------------------------------------------------------------------------


async def my_dispatches_page(request: Request) -> Response:
    """The assigned user's open dispatches, each with one big button for its next step
    (a plain page: it is read, then acted on; the status board is the live view)."""
    access = site_of(request)
    cards = await my_dispatches(access.site_id, access.user_id)
    return render(request, "dispatches/mine.html", {"cards": cards})


# -- the manifest of a finalised draft ----------------------------------------------------------


async def dispatch_manifest(request: Request) -> Response:
    access = site_of(request)
    dispatch = await (
        Dispatch.select(
            *Dispatch.all_columns(),
            Dispatch.vehicle.registration,
            Dispatch.vehicle.make,
            Dispatch.vehicle.model,
        )
        .where((Dispatch.id == request.path_params["dispatch"]) & (Dispatch.site == access.site_id))
        .first()
    )
    if dispatch is None:
        raise HTTPException(404, "There is no such dispatch.")
    parcels = await (
        DispatchParcel.select(
            DispatchParcel.parcel.code.as_alias("code"),
            DispatchParcel.parcel.destination.as_alias("destination"),
            DispatchParcel.parcel.description.as_alias("description"),
            DispatchParcel.parcel.weight_g.as_alias("weight_g"),
        )
        .where(DispatchParcel.dispatch == dispatch["id"])
        .order_by(DispatchParcel.parcel.code)
    )
    created = dispatch["created_at"].astimezone(ZoneInfo(access.timezone))
    context = {
        "dispatch": dispatch,
        "parcels": parcels,
        "total_g": sum(p["weight_g"] for p in parcels),
        "created": created.strftime("%d %b %Y %H:%M"),
    }
    return render(request, "dispatches/manifest.html", context)


ONE = "/dispatches/{dispatch:id}"

routes = [
    Route("/dispatches", dispatches_page, name="dispatches"),
    Route("/dispatches", dispatch_create, methods=["POST"], name="dispatch_create"),
    Route("/dispatches/new", new_dispatch_page, name="dispatch_new"),
    Route("/dispatches/bulk", dispatches_bulk, methods=["POST"], name="dispatches_bulk"),
    Route("/dispatches/mine", my_dispatches_page, name="my_dispatches"),
    *DISPATCHES.routes("/dispatches"),
    Route(ONE, dispatch_page, name="dispatch"),
    Route(f"{ONE}/step", dispatch_step, methods=["POST"], name="dispatch_step"),
    Route(f"{ONE}/assign", dispatch_assign, methods=["POST"], name="dispatch_assign"),
    Route(f"{ONE}/manifest", dispatch_manifest, name="dispatch_manifest"),
    *[r for key, editor in DETAIL_EDITORS.items() for r in editor.routes(f"{ONE}/details/{key}")],
    *DISPATCH.routes(ONE),
]
