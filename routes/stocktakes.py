"""Stocktakes (SPEC §5.4; seed 003): /s/{site}/stocktakes and /s/{site}/stocktakes/{id}.

Two live pages on the kit: `STOCKTAKES`, the site's list (created, deleted, approved,
populated: redrawn whole, it is a handful of rows), and `STOCKTAKE`, one stocktake being
counted by several people at once (its own topic and presence list). A count, a movement
or a deleted movement redraws only that line and the progress figures (its category's,
the overall one and the variance total, summed without reading the lines as views), as
outerMorph partials: a counter typing in another line keeps what they typed
(static/stocktakes.js also keeps a line's count form out of a morph once its user has
typed in it). A line carries its count form and a link to its movements: the drawer (list,
add, delete) is loaded when opened, one per page, a page of its own without JavaScript.
Populating and approving change every line: the head is broadcast and every page is told
to refetch its lines (`Change.refetch`), drawn with its own filters.

Blind counting: counters (not managers) never get expected quantities or variances — not
on their pages, not in their stream. Broadcast fragments are the same for every viewer of
a topic, so a blind stocktake has two: `STOCKTAKE`'s, drawn without figures, and
`REVEALED`'s (its managers' page, 404 for counters), drawn with them; a change is drawn
once for each, and both share one presence list.

Exports: the CSV of the lines, a printable count sheet per category, and the variance
by category as an SVG chart drawn by a Jinja template.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from routes.access import require_manager, site_of
from routes.common import (
    AREAS,
    Area,
    best_effort,
    path_for,
    redirect,
    render,
    services,
    templates,
    wants_fragment,
)
from routes.forms import FormErrors, read_form
from routes.fragments import partial, render_fragment, toast
from routes.live import (
    CONN_ID,
    INDICATOR_TTL,
    Change,
    Forms,
    FormSpec,
    FormState,
    LiveArea,
    LiveView,
    Params,
    Render,
    Throttle,
    indicator,
    viewer_of,
)
from tables.base import DomainError, InvalidInput, StaleVersion, write_tx
from tables.people import SiteRef
from tables.stocktakes import (
    EXPORT_COLUMNS,
    LineView,
    Movement,
    Stamps,
    Stocktake,
    StocktakeView,
    add_movement,
    approve,
    cents,
    count_line,
    create_stocktake,
    delete_movement,
    delete_stocktake,
    export_rows,
    line_by_sku,
    lines_by_id,
    movement_stamps,
    movements_of,
    populate,
    stocktake_figures,
    stocktake_view,
    stocktakes_of,
    variance_by_category,
)

AREAS.append(Area("Stocktakes", "stocktakes", "Count the stock together, line by line"))

# Text cells a spreadsheet would run as a formula (CSV injection): prefixed with "'".
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TEXT_COLUMNS = frozenset({"sku", "name", "category", "unit", "counted_by"})


def category_key(name: str) -> str:
    """A category as an element id: its names are anything people typed."""
    return "cat-" + hashlib.sha1(name.encode()).hexdigest()[:10]


def number(value: Decimal | None) -> str:
    """A quantity as a page shows it: exact, no trailing zeros ('13.3', '0')."""
    if value is None:
        return ""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


templates.env.filters.update(category_key=category_key, number=number, cents=cents)


# -- the list ---------------------------------------------------------------------------------


async def render_list(view: Render) -> str:
    if not view.change.redraws("stocktakes"):
        return ""
    rows = await stocktakes_of(view.site.id)
    html = render_fragment("stocktakes/_list.html", site=view.site, stocktakes=rows)
    return partial("stocktakes", html)


STOCKTAKES = LiveArea(
    "stocktakes",
    render=render_list,
    regions={"stocktakes"},
    forms={"stocktake": FormSpec(None, "new-stocktake-form", "period_start")},
)


@STOCKTAKES.page
async def stocktakes_page(request: Request, forms: Forms | None = None) -> Response:
    site = site_of(request).ref
    context = {
        "stocktakes": await stocktakes_of(site.id),
        "forms": forms or Forms(),
        "live": await STOCKTAKES.view(request),
    }
    return render(request, "stocktakes/list.html", context)


async def stocktake_create(request: Request) -> Response:
    access, form = site_of(request), await read_form(request)
    names = ("period_start", "period_end", "variance_threshold", "blind")
    values = {name: form.raw(name) for name in names}
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        async with write_tx():
            made = await create_stocktake(access.site_id, values, access.actor)
    except DomainError as problem:
        return await STOCKTAKES.refuse(request, "stocktake", problem, values)
    back = path_for("stocktake", site=access.slug, stocktake=made["id"])
    return await STOCKTAKES.done(
        request,
        Change(whole={"stocktakes"}),
        kind="stocktake.create",
        notice="Stocktake started: populate it to add its lines.",
        back=back,
    )


LIST_CHANGED = Change(whole={"stocktakes"})
TYPING = Throttle()  # "is editing": at most one showing per 2 s per person and line


# -- one stocktake: the renderer ----------------------------------------------------------------


async def stocktake_is_the_sites(site: SiteRef, params: Params) -> bool:
    return await Stocktake.exists().where(
        (Stocktake.id == params["stocktake"]) & (Stocktake.site == site.id)
    )


def page_context(
    site: SiteRef, st: StocktakeView, stamps: Stamps | None = None, *, reveal: bool
) -> dict[str, Any]:
    """What the stocktake's fragments need. `reveal`: expected and variance are drawn
    (never in a blind stocktake's broadcasts). `lines_url`: a line's address is this and
    its id (built once, not 5 route lookups per line of 1,000)."""
    url = path_for("stocktake", site=site.slug, stocktake=st.id)
    return {
        "site": site,
        "st": st,
        "stamps": stamps or {},
        "reveal": reveal or not st.blind,
        "problems": {},
        "stocktake_url": url,
        "lines_url": f"{url}/lines/",
    }


def line_html(context: Mapping[str, Any], line: LineView, swap: str = "outerMorph") -> str:
    html = render_fragment("stocktakes/_line.html", line=line, **context)
    return partial(f"line-{line.id}", html, swap)


def progress_html(context: Mapping[str, Any], categories: Iterable[str]) -> str:
    """The overall progress and variance total, and the named categories' progress."""
    st: StocktakeView = context["st"]
    html = partial("progress", render_fragment("stocktakes/_progress.html", **context))
    wanted = set(categories)
    for c in st.categories:
        if c.name in wanted:
            fragment = render_fragment("stocktakes/_category_progress.html", c=c, **context)
            html += partial(f"{category_key(c.name)}-progress", fragment)
    return html


async def draw(view: Render, *, reveal: bool = False) -> str:
    """What changed on a stocktake page: its head (status, banner, actions, scan box), all
    its lines (a resync, a poll, a refetch: drawn with the page's filters), or some lines
    with the progress figures (their categories', the overall one). Populating and
    approving change every line: pages are told to refetch them (`Change.refetch`), never
    sent a 1,000-line region through the stream."""
    site, change = view.site, view.change
    if change.redraws("lines"):
        return await draw_whole(view, reveal=reveal)
    try:
        st = await stocktake_figures(site.id, view.params["stocktake"])
    except DomainError:  # deleted a moment ago: say so where it was
        return gone_html(site)
    lines = await lines_by_id(site.id, change.ids("line"))
    mine = [line for line in lines.values() if line.stocktake_id == st.id]
    stamps = await movement_stamps(st.id, [line.id for line in mine]) if mine else {}
    context = page_context(site, st, stamps, reveal=reveal)
    html = ""
    if change.redraws("head"):
        html += partial("stocktake-head", render_fragment("stocktakes/_head.html", **context))
    html += "".join(line_html(context, line) for line in mine)
    return html + progress_html(context, {line.category for line in mine}) if mine else html


async def draw_whole(view: Render, *, reveal: bool) -> str:
    site = view.site
    try:
        st = await stocktake_view(site.id, view.params["stocktake"], view.filters)
    except DomainError:
        return gone_html(site)
    if st.filters.over and st.blind and not reveal:  # which lines are over tells a variance
        st = await stocktake_view(site.id, st.id, {**view.filters, "over": ""})
    context = page_context(site, st, await movement_stamps(st.id), reveal=reveal)
    html = ""
    if view.change.redraws("head"):
        html += partial("stocktake-head", render_fragment("stocktakes/_head.html", **context))
    return html + partial("lines", render_fragment("stocktakes/_lines.html", **context))


def gone_html(site: SiteRef) -> str:
    gone = render_fragment("stocktakes/_gone.html", site=site)
    return partial("stocktake-head", gone) + partial("lines", '<div id="lines"></div>')


async def render_stocktake(view: Render) -> str:
    return await draw(view)


STOCKTAKE = LiveArea(
    "stocktake",
    params=("stocktake",),
    exists=stocktake_is_the_sites,
    render=render_stocktake,
    regions={"head", "lines"},
    filters=("q", "category", "uncounted", "over"),
    forms={
        "scan": FormSpec(None, "scan-form", "sku"),
        "count": FormSpec(None, "toasts", "full"),
        "action": FormSpec(None, "toasts", "status"),
    },
)


async def render_revealed(view: Render) -> str:
    return await draw(view, reveal=True)


class RevealedArea(LiveArea):
    """A blind stocktake's page as its managers see it: the same changes drawn with
    expected and variance, on a topic of its own that no counter's stream gets (404 for
    them). Its presence list stays the page's: everyone counting sees everyone."""

    def __init__(self, base: LiveArea) -> None:
        super().__init__(
            f"{base.name}_revealed",
            render=render_revealed,
            regions=base.regions,
            params=base.params,
            topic=lambda site, params: f"{base.topic(site, params)}:revealed",
            exists=base.exists,
            forms=base.forms,
            filters=base.filters,
        )
        self.base = base

    async def where(self, request: Request) -> tuple[SiteRef, dict[str, int]]:
        site, params = await super().where(request)
        if not site_of(request).is_manager:
            raise HTTPException(404, "There is no such page.")
        return site, params

    def url(self, site: SiteRef, params: Params) -> str:
        return self.base.url(site, params)

    async def view(self, request: Request) -> LiveView:
        site, params = await self.where(request)
        topic = self.base.topic(site, params)
        viewers = await best_effort(services(request).hub.presence.viewers(topic), [])
        return replace(await super().view(request), viewers=viewers)

    async def stream(self, request: Request) -> Response:
        site, params = await self.where(request)
        svc = services(request)
        conn = request.query_params.get("conn", "")
        resume = request.headers.get("last-event-id") or request.query_params.get("cursor")
        filters = self.filters_of(request)
        return svc.hub.stream(  # type: ignore[return-value]
            [self.topic(site, params)],
            resume,
            lambda: self.fresh(svc, site, params, filters),
            page=self.base.topic(site, params),  # the page's presence list
            conn_id=conn if CONN_ID.fullmatch(conn) else None,
            viewer=viewer_of(site_of(request)),
        )

    async def beat(self, request: Request) -> Response:
        site, params = await self.where(request)
        conn = request.query_params.get("conn", "")
        if not CONN_ID.fullmatch(conn):
            return Response("Missing or malformed conn.", status_code=400)
        page = self.base.topic(site, params)
        await services(request).hub.beat(page, conn, viewer_of(site_of(request)))
        return Response(status_code=204)


REVEALED = RevealedArea(STOCKTAKE)


def live_area(request: Request, blind: bool) -> LiveArea:
    """The page a viewer holds: a blind count's managers hold the revealed one."""
    return REVEALED if blind and site_of(request).is_manager else STOCKTAKE


async def finished(
    request: Request,
    blind: bool,
    change: Change,
    *,
    also: Sequence[tuple[LiveArea, Params, Change]] = (),
    **answer: Any,
) -> Response:
    """`done` on the page the actor holds; a blind count's change is drawn for the other
    page too (counters without figures, managers with)."""
    area = live_area(request, blind)
    if blind and change:
        other = STOCKTAKE if area is REVEALED else REVEALED
        also = [*also, (other, STOCKTAKE.params_of(request), change)]
    return await area.done(request, change, also=also, **answer)


async def announce(request: Request, site: SiteRef, params: Params, blind: bool, html: str) -> None:
    """An ephemeral note to everyone on the page (both of a blind count's topics); no
    query, so a populate can call it inside its transaction."""
    hub, actor = services(request).hub, site_of(request).username
    for area in (STOCKTAKE, REVEALED) if blind else (STOCKTAKE,):
        await hub.indicate(area.topic(site, params), "indicator", actor, html)


# -- one stocktake: pages -------------------------------------------------------------------


def reveals(request: Request, st: StocktakeView) -> bool:
    """Expected and variance: for everyone, unless the count is blind (managers only)."""
    return not st.blind or site_of(request).is_manager


async def the_stocktake(request: Request, filters: Mapping[str, str] | None = None):
    site, params = await STOCKTAKE.where(request)
    try:
        st = await stocktake_view(site.id, params["stocktake"], filters)
    except DomainError as gone:
        raise HTTPException(404, str(gone)) from None
    return site, params, st


@STOCKTAKE.page
async def stocktake_page(request: Request, forms: Forms | None = None) -> Response:
    forms = forms or Forms()
    filters = STOCKTAKE.filters_of(request)
    site, _, st = await the_stocktake(request, filters)
    if st.filters.over and not reveals(request, st):  # which lines are over tells a variance
        site, _, st = await the_stocktake(request, {**filters, "over": ""})
    context = page_context(site, st, await movement_stamps(st.id), reveal=reveals(request, st))
    problems: dict[int, FormState] = {}
    state = forms["count"]
    if state.errors and state.value("line").isdigit():
        problems[int(state.value("line"))] = state
    focus = request.query_params.get("line", "")
    context.update(
        problems=problems,
        focus=int(focus) if focus.isascii() and focus.isdigit() and len(focus) < 11 else 0,
        forms=forms,
        filters=st.filters,
        live=await live_area(request, st.blind).view(request),
    )
    return render(request, "stocktakes/page.html", context)


async def stocktake_scan(request: Request) -> Response:
    """The scan box (GET or POST): jump to the SKU's line, its count field focused."""
    site, params = await STOCKTAKE.where(request)
    if request.method == "POST":
        sku = (await read_form(request)).raw("sku")
    else:
        sku = request.query_params.get("sku", "")
    found = await line_by_sku(site.id, params["stocktake"], sku)
    if found is None:
        shown = sku.strip()[:40] if sku.isprintable() else "that"
        message = f"No line for SKU {shown} in this stocktake." if shown else "Scan or type a SKU."
        return await STOCKTAKE.refuse(request, "scan", message, {"sku": sku[:100]}, status=404)
    url = path_for("stocktake", site=site.slug, stocktake=found.stocktake_id)
    return redirect(request, f"{url}?line={found.id}#line-{found.id}")


# -- one line ---------------------------------------------------------------------------------


async def the_line(request: Request) -> tuple[SiteRef, Params, LineView]:
    site, params = await STOCKTAKE.where(request)
    line_id = int(request.path_params["line"])
    line = (await lines_by_id(site.id, [line_id])).get(line_id)
    if line is None or line.stocktake_id != params["stocktake"]:
        raise HTTPException(404, "There is no such line.")
    return site, params, line


async def line_answer(
    request: Request, line: LineView, message: str, state: FormState, status: int
) -> Response:
    """A refused count: htmx gets the line as it is now with the messages at its fields
    (and a toast); a plain form the page with them."""
    if not wants_fragment(request):
        state.values["line"] = str(line.id)
        return await STOCKTAKE.refuse(request, "count", state.errors, state.values, status=status)
    site, params = await STOCKTAKE.where(request)
    now = (await lines_by_id(site.id, [line.id])).get(line.id, line)
    st = await stocktake_figures(site.id, params["stocktake"])
    context = page_context(
        site, st, await movement_stamps(st.id, [line.id]), reveal=reveals(request, st)
    )
    context["problems"] = {line.id: state}
    html = line_html(context, now, "outerHTML") + toast(message, "error")
    return HTMLResponse(html, status_code=status)


# -- a line's movements: a drawer loaded when opened (a page of its own without JavaScript) --


def drawer_url(request: Request, line: LineView) -> str:
    return path_for(
        "line_movements", site=site_of(request).slug, stocktake=line.stocktake_id, line=line.id
    )


async def drawer_context(request: Request, line: LineView, state: FormState) -> dict[str, Any]:
    site = site_of(request).ref
    stocktake_url = path_for("stocktake", site=site.slug, stocktake=line.stocktake_id)
    return {
        "site": site,
        "line": line,
        "moves": await movements_of(site.id, line.id),
        "form": state,
        "open": not line.approved,
        "stocktake_url": stocktake_url,
        "line_url": f"{stocktake_url}/lines/{line.id}",
        "csrftoken": request.scope.get("csrftoken", ""),
    }


async def drawer_answer(
    request: Request, line: LineView, state: FormState | None = None, status: int = 200
) -> Response:
    """The drawer: htmx gets it to put in the page's drawer, a plain request the page."""
    context = await drawer_context(request, line, state or FormState())
    if wants_fragment(request):
        html = render_fragment("stocktakes/_drawer.html", **context)
        if status >= 400:  # a refused add or delete (the form's hx-target is the toasts)
            message = "; ".join((state or FormState()).errors.values())
            html = partial("drawer", html, "innerHTML") + toast(message, "error")
        return HTMLResponse(html, status_code=status)
    response = render(request, "stocktakes/movements.html", context)
    response.status_code = status
    return response


async def line_movements(request: Request) -> Response:
    _site, _params, line = await the_line(request)
    return await drawer_answer(request, line)


async def moved(request: Request, line: LineView, kind: str, notice: str) -> Response:
    """A movement added or deleted: the line and the figures for everyone, the drawer
    for its user (a plain form goes back to the line's movements page)."""
    fresh = (await lines_by_id(site_of(request).site_id, [line.id])).get(line.id, line)
    drawer = render_fragment(
        "stocktakes/_drawer.html", **await drawer_context(request, fresh, FormState())
    )
    return await finished(
        request, line.blind, the_change(line.id), kind=kind, notice=notice,
        back=drawer_url(request, line), mine=partial("drawer", drawer, "innerHTML"),
    )  # fmt: skip


def the_change(line_id: int) -> Change:
    return Change(items={"line": {line_id}})


async def line_count(request: Request) -> Response:
    """A count of one line (full units + a partial), from the version its counter saw."""
    site, _params, line = await the_line(request)
    access, form = site_of(request), await read_form(request)
    values = {n: form.raw(n) for n in ("full", "partial", "client_id")}
    version = form.integer("version", label="the version", minimum=1)
    try:
        if form.errors or version is None:
            raise InvalidInput(form.errors or {"full": "Reload the page: the line's version."})
        async with write_tx():
            result = await count_line(
                site.id, line.id, version, values["full"], values["partial"],
                access.actor, values["client_id"],
            )  # fmt: skip
    except StaleVersion as stale:
        yours, theirs = stale.changes.get("counted", ("", ""))
        who = stale.current.get("counted_by_name") or "Someone"
        message = f"Not saved: {who} counted {line.name} meanwhile — now {theirs}, yours {yours}."
        state = FormState(FormErrors({"full": message}), values)
        return await line_answer(request, line, message, state, 409)
    except DomainError as problem:
        errors = FormErrors(problem.errors) if isinstance(problem, InvalidInput) else None
        state = FormState(errors or FormErrors({"full": str(problem)}), values)
        message = "Not saved: " + "; ".join(state.errors.values())
        return await line_answer(request, line, message, state, 422)
    fresh = (await lines_by_id(site.id, [line.id]))[line.id]
    notice = f"Counted {line.name}: {fresh.count_label}."
    if not result.applied:
        notice = f"That count of {line.name} was saved already."
    elif fresh.needs_recount:
        notice += " Over the variance threshold: please recount it."
    return await finished(
        request, line.blind, the_change(line.id), kind="stocktake.count", notice=notice,
        anchor=f"line-{line.id}",
    )  # fmt: skip


async def movement_add(request: Request) -> Response:
    site, _params, line = await the_line(request)
    access, form = site_of(request), await read_form(request)
    values = {n: form.raw(n) for n in ("kind", "quantity", "reference")}
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        async with write_tx():
            await add_movement(
                site.id, line.id, values["kind"], values["quantity"], values["reference"],
                access.actor,
            )  # fmt: skip
    except DomainError as problem:
        errors = FormErrors(problem.errors) if isinstance(problem, InvalidInput) else None
        state = FormState(errors or FormErrors({"quantity": str(problem)}), values)
        return await drawer_answer(request, line, state, 422)
    word = "a purchase" if values["kind"].strip().lower() == "purchase" else "waste"
    notice = f"Added {word} of {values['quantity'].strip()} {line.unit} to {line.name}."
    return await moved(request, line, "stocktake.movement", notice)


async def movement_delete(request: Request) -> Response:
    site, _params, line = await the_line(request)
    access = site_of(request)
    movement_id = int(request.path_params["movement"])
    mine = await Movement.exists().where((Movement.id == movement_id) & (Movement.line == line.id))
    if not mine:
        raise HTTPException(404, "There is no such movement.")
    try:
        async with write_tx():
            await delete_movement(site.id, movement_id, access.actor)
    except DomainError as problem:
        state = FormState(FormErrors({"movement": str(problem)}), {})
        return await drawer_answer(request, line, state, 422)
    notice = f"Deleted a movement of {line.name}."
    return await moved(request, line, "stocktake.movement_delete", notice)


async def line_editing(request: Request) -> Response:
    """Someone has the line's count field focused or its drawer open (renewed while it
    lasts): "Erin is editing Guinness Keg" on everyone else's line."""
    site, params, line = await the_line(request)
    access, form = site_of(request), await read_form(request)
    text = "" if form.raw("state") == "end" else f"{access.display_name} is editing {line.name}"
    if not TYPING.admits((f"{line.stocktake_id}:{line.id}", access.username), bool(text), 2.0):
        return Response(status_code=204)
    html = indicator(f"editing-{line.id}", text, by=access.username, ttl=INDICATOR_TTL)
    await announce(request, site, params, line.blind, html)
    return Response(status_code=204)


# -- the stocktake as a whole -----------------------------------------------------------------


async def stocktake_populate(request: Request) -> Response:
    """One line per active item (a second press adds nothing), with its progress shown
    to everyone on the page while it runs."""
    site, params, st = await the_stocktake(request)
    access = site_of(request)

    async def progress(done: int, total: int) -> None:
        # Everyone's, the presser's too (by=""): it lapses by itself if the server dies.
        text = f"Populating… {done:,} of {total:,}"
        html = indicator("populating", text, by="", ttl=30)
        await announce(request, site, params, st.blind, html)

    try:
        async with write_tx():
            added = await populate(site.id, st.id, access.actor, progress)
    except DomainError as problem:
        return await STOCKTAKE.refuse(request, "action", problem)
    finally:
        await announce(
            request, site, params, st.blind, indicator("populating", "", by="", ttl=INDICATOR_TTL)
        )
    if not added:
        notice = f"Already populated: {st.total:,} lines."
        return await finished(request, st.blind, Change(), kind="stocktake.populate", notice=notice)
    return await finished(
        request,
        st.blind,
        Change(whole={"head"}, refetch={"lines"}),
        kind="stocktake.populate",
        notice=f"Added {added:,} lines.",
        also=[(STOCKTAKES, {}, LIST_CHANGED)],
    )


async def stocktake_delete_confirm(request: Request) -> Response:
    _, _, st = await the_stocktake(request)
    return render(request, "stocktakes/delete.html", {"st": st})


async def stocktake_delete(request: Request) -> Response:
    site, params, st = await the_stocktake(request)
    access = site_of(request)
    try:
        async with write_tx():
            await delete_stocktake(site.id, st.id, access.actor)
    except DomainError as problem:
        return await STOCKTAKE.refuse(request, "action", problem)
    return await STOCKTAKES.done(
        request,
        LIST_CHANGED,
        kind="stocktake.delete",
        notice=f"Deleted the stocktake {st.label}.",
        also=[(area, params, Change(whole={"head"})) for area in (STOCKTAKE, REVEALED)],
    )


async def stocktake_approve_confirm(request: Request) -> Response:
    require_manager(request)
    _, _, st = await the_stocktake(request)
    return render(request, "stocktakes/approve.html", {"st": st, "reveal": True})


async def stocktake_approve(request: Request) -> Response:
    """Approve (managers): one adjustment per line with a variance; every open page of
    it becomes read-only at once, and the list says APPROVED."""
    access = require_manager(request)
    site, _params, st = await the_stocktake(request)
    try:
        async with write_tx():
            result = await approve(site.id, st.id, access.actor)
    except DomainError as problem:
        return await STOCKTAKE.refuse(request, "action", problem, status=409)
    n = result.adjustments
    return await finished(
        request,
        st.blind,
        Change(whole={"head"}, refetch={"lines"}),
        kind="stocktake.approve",
        notice=f"{n:,} adjustment{'s' if n != 1 else ''} created.",
        also=[(STOCKTAKES, {}, LIST_CHANGED)],
    )


# -- taking the data away ---------------------------------------------------------------------


def csv_cell(column: str, value: str) -> str:
    if column in TEXT_COLUMNS and value.startswith(FORMULA_START):
        return "'" + value
    return value


async def stocktake_export(request: Request) -> Response:
    """The lines as CSV: exact decimals as the tables give them, UTF-8 with a BOM (so a
    spreadsheet opened by double-click reads "Jägermeister", not "JÃ¤germeister")."""
    site, _, st = await the_stocktake(request)
    rows = await export_rows(site.id, st.id)
    columns = [c for c in EXPORT_COLUMNS if reveals(request, st) or c in SHOWN_BLIND]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(c, row[c]) for c in columns])
    name = f"stocktake-{site.slug}-{st.period_start.isoformat()}-{st.period_end.isoformat()}.csv"
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


SHOWN_BLIND = frozenset({"sku", "name", "category", "unit", "counted", "counted_by", "counted_at"})


async def stocktake_sheet(request: Request) -> Response:
    """A printable count sheet: one category (or all), blank columns to write counts in."""
    _, _, st = await the_stocktake(request)
    chosen = request.query_params.get("category", "")
    categories = [c for c in st.categories if not chosen or c.name == chosen]
    return render(request, "stocktakes/sheet.html", {"st": st, "categories": categories})


async def stocktake_chart(request: Request) -> Response:
    """Variance value by category: an SVG drawn by a template, with a table beside it."""
    site, _, st = await the_stocktake(request)
    if not reveals(request, st):
        raise HTTPException(403, "This is a blind count: its variances are for managers.")
    bars = await variance_by_category(site.id, st.id)
    return render(request, "stocktakes/chart.html", {"st": st, "chart": Chart.of(bars)})


class Chart:
    """Horizontal bars either side of an axis at zero, in SVG units: names on the left,
    values in a column on the right (no inline styles under our CSP: attributes only)."""

    WIDTH, LABEL, VALUES, ROW = 720, 180, 100, 28

    def __init__(self, bars: list[dict[str, Any]], height: int, zero: int) -> None:
        self.bars, self.height, self.zero = bars, height, zero

    @classmethod
    def of(cls, values: list[tuple[str, Decimal]]) -> Chart:
        span = cls.WIDTH - cls.LABEL - cls.VALUES - 10
        losses = max((-v for _, v in values if v < 0), default=Decimal(0))
        gains = max((v for _, v in values if v > 0), default=Decimal(0))
        scale = span / (losses + gains) if losses + gains else 0
        zero = cls.LABEL + round(losses * Decimal(scale))
        bars = []
        for n, (name, v) in enumerate(values):
            length = round(abs(v) * Decimal(scale))
            x = zero - length if v < 0 else zero
            y = 10 + n * cls.ROW
            bars.append({"name": name, "value": v, "x": x, "y": y, "width": max(length, 1)})
        return cls(bars, 20 + len(values) * cls.ROW, zero)


# -- wiring -----------------------------------------------------------------------------------

ONE = "/stocktakes/{stocktake:id}"
LINE = ONE + "/lines/{line:id}"

routes = [
    Route("/stocktakes", stocktakes_page, name="stocktakes"),
    Route("/stocktakes", stocktake_create, methods=["POST"], name="stocktake_create"),
    *STOCKTAKES.routes("/stocktakes"),
    Route(ONE, stocktake_page, name="stocktake"),
    Route(f"{ONE}/scan", stocktake_scan, methods=["GET", "POST"], name="stocktake_scan"),
    Route(f"{ONE}/populate", stocktake_populate, methods=["POST"], name="stocktake_populate"),
    Route(f"{ONE}/delete", stocktake_delete_confirm, name="stocktake_delete_confirm"),
    Route(f"{ONE}/delete", stocktake_delete, methods=["POST"], name="stocktake_delete"),
    Route(f"{ONE}/approve", stocktake_approve_confirm, name="stocktake_approve_confirm"),
    Route(f"{ONE}/approve", stocktake_approve, methods=["POST"], name="stocktake_approve"),
    Route(f"{ONE}/export.csv", stocktake_export, name="stocktake_export"),
    Route(f"{ONE}/sheet", stocktake_sheet, name="stocktake_sheet"),
    Route(f"{ONE}/chart", stocktake_chart, name="stocktake_chart"),
    Route(f"{LINE}/count", line_count, methods=["POST"], name="line_count"),
    Route(f"{LINE}/editing", line_editing, methods=["POST"], name="line_editing"),
    Route(f"{LINE}/movements", line_movements, name="line_movements"),
    Route(f"{LINE}/movements", movement_add, methods=["POST"], name="movement_add"),
    Route(
        LINE + "/movements/{movement:id}/delete",
        movement_delete,
        methods=["POST"],
        name="movement_delete",
    ),
    *STOCKTAKE.routes(ONE),
    *REVEALED.routes(f"{ONE}/revealed"),
]
