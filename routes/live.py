"""The kit every live area plugs into (SPEC §4): one declaration, one renderer.

An area declares its page once:

    DRAFTS = LiveArea("drafts", render=render_drafts, regions={"drafts", "parcels"},
                      forms={"scan": FormSpec("drafts/_scan.html", "scan-form", "code")})

    @DRAFTS.page
    async def drafts_page(request, forms): ...  # the page, with `live=await DRAFTS.view(request)`

    routes = [Route("/drafts", drafts_page, name="drafts"), ..., *DRAFTS.routes("/drafts")]

and every action ends in one of two answers:

    return await DRAFTS.done(request, Change(items={"draft": {7}}), kind="add", notice="Added")
    return await DRAFTS.refuse(request, "scan", problem, values={"code": code})

`done` renders what changed ONCE (the area's renderer, given a `Render`: the site, the
page's path parameters and the `Change` — no request), publishes it in order on the
page's topic, publishes the site activity lines the action recorded, and answers the
caller: htmx gets the same partials (plus its toast and fresh forms), a plain form a 303
back to the page with the message carried along. `refuse` answers bad input: htmx gets
that one form again (422), a plain form the whole page with that form's messages and
values (422) — every form on a page keeps its own.

A page may belong to one entity of a site (`params=("board",)` for
`/s/{site}/boards/{board}`): its topic, presence list and streams are that entity's, and
`exists` answers 404 when the entity is not the site's. The page's stream is `P/live`,
with `P/live/beat` (presence heartbeats), `P/live/poll` (the fallback when a stream
cannot be held) and `P/live/status` (the small frame that tells a page without
JavaScript that it is out of date, without reloading what its user is typing).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from live.events import Cursor
from live.locks import LockStore
from live.presence import Viewer
from routes.access import site_of
from routes.activity import publish_activity
from routes.common import (
    Services,
    best_effort,
    path_for,
    redirect,
    services,
    templates,
    wants_fragment,
)
from routes.forms import FormErrors
from routes.fragments import delete, partial, render_fragment, toast, upsert
from routes.security import APP_CSP
from tables.base import DomainError, InvalidInput
from tables.people import SiteAccess, SiteRef

CONN_ID = re.compile(r"[A-Za-z0-9_-]{8,40}")
# The no-JS status frame is the one page that our own pages may frame.
FRAMED_CSP = APP_CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'")

Params = Mapping[str, int]


# -- what an action changed, and how an area renders it -----------------------------------


@dataclass(frozen=True)
class Change:
    """What an action changed, so that only that is rendered and sent to every viewer.

    Region kinds are the area's own words ("draft", "parcel"): `items` changed in place,
    `added` are new (inserted where they belong), `gone` are removed; `whole` names
    regions redrawn whole (a list whose layout changed). `refetch` names regions too big
    to broadcast (a stocktake's 1,000 lines): every page is told to fetch them for itself,
    drawn with its own filters, in a plain request of its own.
    """

    items: Mapping[str, Iterable[int]] = field(default_factory=dict)
    added: Mapping[str, Iterable[int]] = field(default_factory=dict)
    gone: Mapping[str, Iterable[int]] = field(default_factory=dict)
    whole: Iterable[str] = ()
    refetch: Iterable[str] = ()

    def ids(self, kind: str) -> list[int]:
        """Ids of `kind` changed in place, not gone, in order."""
        return sorted(set(self.items.get(kind, ())) - set(self.gone.get(kind, ())))

    def new(self, kind: str) -> list[int]:
        return sorted(set(self.added.get(kind, ())) - set(self.gone.get(kind, ())))

    def removed(self, kind: str) -> list[int]:
        return sorted(set(self.gone.get(kind, ())))

    def redraws(self, region: str) -> bool:
        return region in set(self.whole)

    def merged(self, other: Change) -> Change:
        """Both changes as one (one event, one render)."""

        def union(a: Mapping[str, Iterable[int]], b: Mapping[str, Iterable[int]]) -> dict:
            return {k: {*a.get(k, ()), *b.get(k, ())} for k in {*a, *b}}

        return Change(
            items=union(self.items, other.items),
            added=union(self.added, other.added),
            gone=union(self.gone, other.gone),
            whole={*self.whole, *other.whole},
            refetch={*self.refetch, *other.refetch},
        )

    def __bool__(self) -> bool:
        rows = (*self.items.values(), *self.added.values(), *self.gone.values())
        return any(any(ids) for ids in rows) or bool(set(self.whole) | set(self.refetch))


def refetch_html(regions: Iterable[str]) -> str:
    """Tells every page to fetch these regions for itself (app.js: from its poll address,
    with the page's filters, after a short random delay so that the pages do not all ask
    at once). A fresh nonce: each one is a new element, so each is acted on."""
    wanted = " ".join(sorted(set(regions)))
    if not wanted:
        return ""
    nonce = secrets.token_hex(4)
    span = f'<span id="live-refetch" hidden data-regions="{wanted}" data-n="{nonce}"></span>'
    return partial("live-refetch", span, swap="outerHTML")


def deletions(change: Change, kind: str) -> str:
    """`<hx-partial>`s removing the `gone` rows of a kind (ids `{kind}-{id}`)."""
    return "".join(delete(f"{kind}-{i}") for i in change.removed(kind))


@dataclass(frozen=True)
class Render:
    """What an area's renderer is given: no request, so housekeeping and tests can call it."""

    site: SiteRef
    params: Params
    change: Change
    locks: LockStore
    filters: Mapping[str, str] = field(default_factory=dict)  # the page's (a day), for a resync

    async def editing(self, prefix: str) -> dict[int, str]:
        """Who holds the locks under `prefix`, by the entity id that ends each key."""
        return await held_by(self.locks, prefix)


async def held_by(locks: LockStore, prefix: str) -> dict[int, str]:
    """Lock holders' names by the entity id that ends each key (for "being edited" badges)."""
    held = await best_effort(locks.holders(prefix), {})
    return {int(key.rsplit(":", 1)[1]): info.holder for key, info in held.items()}


Renderer = Callable[[Render], Awaitable[str]]


# -- forms on a live page ------------------------------------------------------------------


@dataclass
class FormState:
    """One form's messages and values, as it is shown again after bad input."""

    errors: FormErrors = field(default_factory=FormErrors)
    values: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> str:
        return self.values.get(name, "")

    def error(self, name: str) -> str:
        return self.errors.get(name, "")


class Forms(dict[str, FormState]):
    """The page's forms by name; a form nobody posted is blank."""

    def __missing__(self, name: str) -> FormState:
        return FormState()


@dataclass(frozen=True)
class FormSpec:
    """A form of a live page: its fragment (None: messages go to a toast / an alert), the
    id its root element has, and the field that messages without one belong to."""

    template: str | None
    target: str
    field: str


def errors_of(problem: DomainError | FormErrors | str, default_field: str) -> FormErrors:
    if isinstance(problem, InvalidInput):
        return FormErrors(problem.errors)
    if isinstance(problem, DomainError):
        return FormErrors({problem.field or default_field: str(problem)})
    if isinstance(problem, FormErrors):
        return problem
    return FormErrors({default_field: problem})


# -- ephemeral indicators ------------------------------------------------------------------

INDICATOR_TTL = 8  # s: a page drops an indicator not renewed for this long (its author left)


def indicator(slot: str, text: str, *, by: str, ttl: int, within: str = "") -> str:
    """The partial of an indicator ("Bob is moving #12"): the element `slot` itself, or,
    `within` a container, a line of its own there (one per author: several can type).
    Empty `text` takes it away. app.js hides one of the viewer's own and drops one that
    was not renewed within `ttl` seconds."""
    if not text:
        return delete(slot) if within else partial(slot, f'<span id="{slot}"></span>', "outerHTML")
    html = Markup(
        '<span id="{}" class="indicator" data-user="{}" data-ttl="{}" role="status">{}</span>'
    ).format(slot, by, ttl, text)
    return upsert(within, str(html)) if within else partial(slot, str(html), "outerHTML")


class Throttle:
    """At most one event per `every` seconds per key, in this process (a typist's
    indicator: the keystrokes of one person must not flood every viewer)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, ...], float] = {}

    def admits(self, key: tuple[str, ...], showing: bool, every: float) -> bool:
        """Whether to send what `key` shows now. An end always goes out, and the next
        start after it at once (someone who leaves a line and comes back to it is shown
        again, not `every` seconds later); a start or a renewal at most once per `every`."""
        if not showing:
            self._last.pop(key, None)
            return True
        if not every:
            return True
        now = time.monotonic()
        if now - self._last.get(key, -every) < every:
            return False
        if len(self._last) > 10_000:  # forget the long quiet ones
            self._last = {k: t for k, t in self._last.items() if now - t < 60}
        self._last[key] = now
        return True


# -- the page ------------------------------------------------------------------------------


def viewer_of(access: SiteAccess) -> Viewer:
    return Viewer.for_user(access.user_id, access.username, access.display_name)


def render_presence(
    page: str, viewers: list[Viewer], joined: list[Viewer], left: list[Viewer]
) -> str:
    """The hub's presence renderer: avatars for #presence, notices for #toasts."""
    html = partial(
        "presence", render_fragment("live/_presence.html", viewers=viewers), swap="innerHTML"
    )
    notices = render_fragment("live/_toasts.html", joined=joined, left=left)
    if notices.strip():
        html += partial("toasts", notices, swap="beforeend")
    return html


@dataclass(frozen=True)
class LiveView:
    """What base.html needs to wire a live page: stream, heartbeat, poll and status URLs."""

    stream_url: str
    beat_url: str
    poll_url: str
    status_url: str
    cursor: str
    viewers: list[Viewer]


PageHandler = Callable[[Request, Forms], Awaitable[Response]]


class LiveArea:
    """A live page: its route name, the path parameters that scope it to one entity, and
    the one renderer that draws any change of it."""

    def __init__(
        self,
        name: str,
        *,
        render: Renderer,
        regions: Iterable[str],
        params: tuple[str, ...] = (),
        topic: Callable[[SiteRef, Params], str] | None = None,
        exists: Callable[[SiteRef, Params], Awaitable[bool]] | None = None,
        forms: Mapping[str, FormSpec] | None = None,
        filters: tuple[str, ...] = (),
    ) -> None:
        self.name = name  # the page's route name; its stream is "<name>_live"
        self.render = render
        self.regions = frozenset(regions)  # drawn whole for a resync or a poll
        self.params = params
        self._topic = topic
        self.exists = exists
        self.forms = dict(forms or {})
        # Query parameters that choose what the page shows (the day of a dashboard): its
        # stream and poll carry them, so a resync or a poll draws what that page shows.
        self.filters = filters
        self._page: PageHandler | None = None
        self._throttle = Throttle()

    def page(self, handler: PageHandler) -> PageHandler:
        """Declare the page handler (it takes the page's `Forms`); `refuse` calls it."""
        self._page = handler
        return handler

    # -- where a request is ---------------------------------------------------------------

    def topic(self, site: SiteRef, params: Params) -> str:
        """The page's topic, which is also its presence key: one per entity."""
        if self._topic is not None:
            return self._topic(site, params)
        return ":".join([self.name, str(site.id), *(str(params[p]) for p in self.params)])

    def params_of(self, request: Request) -> dict[str, int]:
        return {p: int(request.path_params[p]) for p in self.params}

    async def where(self, request: Request) -> tuple[SiteRef, dict[str, int]]:
        """The site and the entity the request is about; 404 when the entity is not the
        site's (membership of the site was checked by the /s/{site} middleware)."""
        site, params = site_of(request).ref, self.params_of(request)
        known = request.scope.setdefault("floorboard.exists", set())  # asked once a request
        key = (self.name, *params.values())
        if self.exists is not None and key not in known:
            if not await self.exists(site, params):
                raise HTTPException(404, "There is no such page.")
            known.add(key)
        return site, params

    def url(self, site: SiteRef, params: Params) -> str:
        return path_of(self.name, site, params)

    def filters_of(self, request: Request) -> dict[str, str]:
        """The page's filters as the request gives them (the renderer checks them)."""
        return {f: request.query_params.get(f, "")[:100] for f in self.filters}

    # -- the page's live wiring -------------------------------------------------------------

    async def view(self, request: Request) -> LiveView:
        """Call from the page handler (or an editor of the area): the URLs base.html wires,
        the cursor at render time, and who is here."""
        site, params = await self.where(request)
        hub = services(request).hub
        topic = self.topic(site, params)
        cursor = await best_effort(hub.cursor([topic]), "")  # "": the stream resyncs
        conn = secrets.token_urlsafe(12)
        base = path_of(f"{self.name}_live", site, params)
        filters = {k: v for k, v in self.filters_of(request).items() if v}
        # A refused plain post renders the page at the action's address: refresh the page.
        page = request.url.path if request.method == "GET" else self.url(site, params)
        if filters:
            page += "?" + urlencode(filters)
        status_query = urlencode({"cursor": cursor, "page": page})
        return LiveView(
            stream_url=f"{base}?{urlencode({'cursor': cursor, 'conn': conn, **filters})}",
            beat_url=f"{base}/beat?conn={conn}",
            poll_url=f"{base}/poll" + (f"?{urlencode(filters)}" if filters else ""),
            status_url=f"{base}/status?{status_query}",
            cursor=cursor,
            viewers=await best_effort(hub.presence.viewers(topic), []),
        )

    async def fresh(
        self,
        svc: Services,
        site: SiteRef,
        params: Params,
        filters: Mapping[str, str],
        regions: Iterable[str] | None = None,
    ) -> str:
        """Every live region of the page (or those of `regions`), fresh: for a resync, a
        poll or a refetch."""
        change = Change(whole=self.regions if regions is None else self.regions & set(regions))
        return await self.render(Render(site, params, change, svc.locks, filters))

    async def stream(self, request: Request) -> Response:
        site, params = await self.where(request)
        svc, access = services(request), site_of(request)
        conn = request.query_params.get("conn", "")
        resume = request.headers.get("last-event-id") or request.query_params.get("cursor")
        topic = self.topic(site, params)
        return svc.hub.stream(  # type: ignore[return-value]
            [topic],
            resume,
            lambda: self.fresh(svc, site, params, self.filters_of(request)),
            page=topic,
            conn_id=conn if CONN_ID.fullmatch(conn) else None,
            viewer=viewer_of(access),
        )

    async def beat(self, request: Request) -> Response:
        site, params = await self.where(request)
        conn = request.query_params.get("conn", "")
        if not CONN_ID.fullmatch(conn):
            return Response("Missing or malformed conn.", status_code=400)
        topic = self.topic(site, params)
        await services(request).hub.beat(topic, conn, viewer_of(site_of(request)))
        return Response(status_code=204)

    async def poll(self, request: Request) -> Response:
        """The fallback when the stream cannot be held: 204 if nothing changed since
        `cursor`, else the live regions fresh plus the new cursor. With `regions` (a
        page told to refetch them): just those, drawn now, the page's cursor left alone."""
        site, params = await self.where(request)
        svc = services(request)
        if "regions" in request.query_params:
            wanted = request.query_params["regions"].split()
            html = await self.fresh(svc, site, params, self.filters_of(request), wanted)
            return HTMLResponse(html) if html else Response(status_code=204)
        topics = [self.topic(site, params)]
        now = await svc.broker.cursor(topics)
        seen = Cursor.decode(request.query_params.get("cursor"), topics)
        if seen is not None and seen == now:
            return Response(status_code=204)
        html = await self.fresh(svc, site, params, self.filters_of(request))
        html += partial(
            "live-cursor",
            f'<span id="live-cursor" hidden data-cursor="{now.encode(topics)}"></span>',
            swap="outerHTML",
        )
        return HTMLResponse(html)

    async def status(self, request: Request) -> Response:
        """For pages without JavaScript: a small frame that refreshes itself and says how
        many changes happened since the page was loaded — the page itself is left alone,
        with whatever its user has typed or ticked."""
        site, params = await self.where(request)
        topic = self.topic(site, params)
        seen = Cursor.decode(request.query_params.get("cursor"), [topic])
        events = (
            None
            if seen is None
            else await services(request).broker.since(topic, seen.position(topic))
        )
        page = request.query_params.get("page", "")
        if not (page.startswith(f"/s/{site.slug}/") or page == f"/s/{site.slug}") or "//" in page:
            page = self.url(site, params)
        context = {
            "changes": None if events is None else sum(not e.ephemeral for e in events),
            "page": page,
        }
        return templates.TemplateResponse(
            request,
            "live/status.html",
            context,
            headers={"Content-Security-Policy": FRAMED_CSP, "X-Frame-Options": "SAMEORIGIN"},
        )

    def routes(self, path: str = "") -> list[Route]:
        return [
            Route(f"{path}/live", self.stream, name=f"{self.name}_live"),
            Route(f"{path}/live/beat", self.beat, methods=["POST"], name=f"{self.name}_beat"),
            Route(f"{path}/live/poll", self.poll, name=f"{self.name}_poll"),
            Route(f"{path}/live/status", self.status, name=f"{self.name}_status"),
        ]

    # -- after an action ------------------------------------------------------------------

    async def publish(
        self,
        svc: Services,
        site: SiteRef,
        params: Params,
        change: Change,
        *,
        kind: str,
        actor: str,
        extra: Callable[[], Awaitable[str]] | None = None,
    ) -> str:
        """After commit: render `change` once and publish it on the page's topic, in order
        with every other change of it; then the site activity lines that were recorded.
        Returns the partials (for the caller's own answer)."""

        async def rendered() -> str:
            html = await self.render(Render(site, params, change, svc.locks))
            html += refetch_html(change.refetch)
            return html + (await extra() if extra else "")

        html = ""
        if change or extra is not None:  # a note changes no region: only its activity line
            html = await svc.hub.publish(self.topic(site, params), kind, actor, rendered)
        await publish_activity(svc.hub, site, actor)
        return html

    async def indicate(
        self,
        request: Request,
        slot: str,
        text: str = "",
        *,
        within: str = "",
        ttl: int = INDICATOR_TTL,
        every: float = 0.0,
    ) -> None:
        """An ephemeral note for everyone else on this page ("Bob is moving #12") in the
        element `slot` (or a line of its own `within` a container): sent live only, never
        stored, never replayed after a reconnect. `text=""` takes it away; without a
        renewal every `ttl` seconds pages drop it by themselves, so one whose author
        vanished mid-drag does not stay. `every`: at most one showing per that many
        seconds per author and slot (clearing is never held back)."""
        site, params = await self.where(request)
        access = site_of(request)
        topic = self.topic(site, params)
        if not self._throttle.admits((topic, slot, access.username), bool(text), every):
            return
        html = indicator(slot, text, by=access.username, ttl=ttl, within=within)
        await services(request).hub.indicate(topic, "indicator", access.username, html)

    async def done(
        self,
        request: Request,
        change: Change,
        *,
        kind: str,
        notice: str = "",
        reset: Iterable[str] = (),
        anchor: str = "",
        back: str = "",
        also: Iterable[tuple[LiveArea, Params, Change]] = (),
        mine: str = "",
    ) -> Response:
        """Success: publish what changed, then htmx gets the partials (and its notice and
        fresh copies of the `reset` forms), a plain form goes back to the page (PRG) with
        the notice carried along. `also`: what the action changed on other pages (a
        board renamed: its page and the list of boards), published first. `mine`:
        partials for the actor's htmx answer only (a drawer only they have open)."""
        site, params = await self.where(request)  # an entity that is not the site's: 404
        svc, actor = services(request), site_of(request).username
        for area, area_params, area_change in also:
            await area.publish(svc, site, area_params, area_change, kind=kind, actor=actor)
        html = await self.publish(svc, site, params, change, kind=kind, actor=actor)
        if wants_fragment(request):  # an in-page htmx post; a boosted form navigates
            html += "".join(self.form_html(request, name, FormState()) for name in reset)
            return HTMLResponse(html + mine + (toast(notice) if notice else ""))
        url = back or self.url(site, params) + (f"#{anchor}" if anchor else "")
        text = notice.striptags() if isinstance(notice, Markup) else notice
        return redirect(request, url, message=text)

    def form_html(self, request: Request, name: str, state: FormState) -> str:
        spec = self.forms[name]
        if spec.template is None:
            return ""
        html = templates.get_template(spec.template).render(
            site=site_of(request).ref,
            form=state,
            csrftoken=request.scope.get("csrftoken", ""),
        )
        return partial(spec.target, html, swap="outerHTML")

    async def refuse(
        self,
        request: Request,
        form: str,
        problem: DomainError | FormErrors | str,
        values: Mapping[str, str] | None = None,
        *,
        status: int = 422,
    ) -> Response:
        """Bad input, nothing written: htmx gets that form again with its messages and
        values (a toast for a form without a fragment), a plain form the whole page with
        that form's messages and values — both 422 (`status`: 409 when what the user saw
        has changed since)."""
        spec = self.forms[form]
        state = FormState(errors_of(problem, spec.field), dict(values or {}))
        if wants_fragment(request):
            html = self.form_html(request, form, state)
            if not html:
                html = toast(next(iter(state.errors.values()), "That did not work."), "error")
            return HTMLResponse(html, status_code=status)
        assert self._page is not None, f"{self.name} declares no page handler"
        response = await self._page(request, Forms({form: state}))
        response.status_code = status
        return response


def path_of(name: str, site: SiteRef, params: Params) -> str:
    return path_for(name, site=site.slug, **params)
