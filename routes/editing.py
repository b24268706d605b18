"""One soft-lock editor for every editable thing (SPEC §4, soft locks and optimistic
concurrency), declared once per thing:

    TRANSPORT = LockEditor(DRAFTS, "transport", params=("draft",), load=..., save=...,
                           template="drafts/transport.html", redraw=lambda p: Change(...))
    routes = [..., *TRANSPORT.routes("/drafts/{draft:id}/transport")]

It gives the thing these routes, all under the editor's path `E`:

* `GET E` shows the editor. A GET only shows: it never takes the lock.
* `POST E/open` takes the lock (a form post, with or without JavaScript) and everyone on
  the area's pages sees "Being edited by X"; then back to `GET E`, now editable.
* `POST E/lock` renews it while the editor is open (every 10 s); 409 once it was lost.
* `POST E` saves: 423 naming the holder and when it frees up if someone else holds it,
  409 with the current values and what changed if the version is stale, 422 with the
  values kept for bad input; else one transaction, the lock let go, the change published.
* `POST E/cancel` lets go (also sent by the page when its user leaves it some other way).
* `POST E/break` (managers) takes the lock over: the holder's screen says so at once and
  their save is refused; the take-over is in the site's trail.

Locks that lapse (a tablet that vanished) are noticed by `release_lapsed`, run every few
seconds by the app, which clears their badge for everyone.

The editor page is a page of its area: the same stream and presence list, so opening
an editor is not leaving, and its lock state (`#lock-…`) changes live.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from live.locks import LockHeld, LockInfo
from routes.access import require_manager, site_of
from routes.common import Services, redirect, render, services
from routes.forms import Form, FormErrors, read_form
from routes.fragments import partial, render_fragment
from routes.live import Change, LiveArea, Params, errors_of, path_of
from settings import Settings
from tables.activity import Activity
from tables.base import Actor, DomainError, StaleVersion, write_tx
from tables.people import SiteRef

log = logging.getLogger("floorboard.editing")

LOCK_TTL = 30.0  # the open editor renews every 10 s; a vanished one frees it within 30 s

EDITORS: dict[str, LockEditor] = {}  # by name, to find the editor of a lapsed lock key


@dataclass
class Editing:
    """What an editor shows: the values as they are now, their version, a title for the
    page and the trail ("the site notice"), and whatever else its template needs."""

    values: dict[str, Any]
    version: int
    title: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Saving:
    """What a save is given: the form as posted, the version it was based on, who saves."""

    site: SiteRef
    params: Params
    form: Form
    version: int
    actor: Actor
    settings: Settings


@dataclass(frozen=True)
class Saved:
    """A save's answer when it changed more than the regions `redraw` names (an
    appointment moved to another day: that day's regions too)."""

    notice: str
    also: Change
    # What the save changed on other pages, known only once it is made (a booking's job
    # card on the workflow board), published after the commit like `elsewhere`'s.
    elsewhere: Sequence[tuple[LiveArea, Params, Change]] = ()


Load = Callable[[SiteRef, Params], Awaitable[Editing]]
Save = Callable[[Saving], Awaitable[str | Saved]]


@dataclass
class EditorView:
    """The editor's state for `_macros.html`'s `lock_editor`."""

    lock_id: str
    urls: dict[str, str]
    values: dict[str, Any]
    version: int
    token: str = ""  # set when this viewer holds the lock
    holder: LockInfo | None = None
    held_message: str = ""
    can_break: bool = False
    stale: StaleVersion | None = None
    errors: FormErrors = field(default_factory=FormErrors)

    @property
    def mine(self) -> bool:
        return bool(self.token)

    @property
    def state(self) -> str:
        """mine (editable), held (by someone else: read-only), free (take it to edit)."""
        return "mine" if self.token else "held" if self.holder else "free"


class LockEditor:
    def __init__(
        self,
        area: LiveArea,
        name: str,
        *,
        params: tuple[str, ...] = (),
        load: Load,
        save: Save,
        template: str,
        redraw: Callable[[Params], Change],
        entity: str = "",
        back: Callable[[SiteRef, Params], str] | None = None,
        elsewhere: Callable[[Params], list[tuple[LiveArea, Params, Change]]] | None = None,
    ) -> None:
        """`load` reads the thing (DomainError when it is gone); `save` validates the form
        and writes inside the action's transaction (InvalidInput, StaleVersion), and
        returns the message for the user; `redraw` says which regions show its badge;
        `elsewhere` what a save changes on other pages (a dispatch's detail: its card on
        the status board), published after the save's commit."""
        self.area, self.name, self.params = area, name, params
        self.load, self.save, self.template, self.redraw = load, save, template, redraw
        self.entity = entity  # the trail's entity type; its id is the last path parameter
        self._back = back  # where save and cancel return (default: the area's page, at it)
        self.elsewhere = elsewhere
        EDITORS[name] = self

    # -- keys ----------------------------------------------------------------------------

    def prefix(self, site: SiteRef) -> str:
        """Every lock of this editor at a site starts so (for list pages' badges)."""
        return f"{self.name}:{site.id}:"

    def key(self, site: SiteRef, params: Params) -> str:
        return self.prefix(site) + ":".join(str(params[p]) for p in self.params)

    def lock_id(self, site: SiteRef, params: Params) -> str:
        return "lock-" + self.key(site, params).replace(":", "-")

    def url(self, action: str, site: SiteRef, params: Params) -> str:
        return path_of(f"{self.name}_{action}", site, params)

    def _params(self, request: Request) -> dict[str, int]:
        return {p: int(request.path_params[p]) for p in self.params}

    async def _subject(self, request: Request) -> tuple[SiteRef, dict[str, int], Editing]:
        site, _ = await self.area.where(request)
        params = self._params(request)
        try:
            return site, params, await self.load(site, params)
        except DomainError as gone:
            raise HTTPException(404, str(gone)) from None

    # -- telling everyone ------------------------------------------------------------------

    async def lock_html(self, svc: Services, site: SiteRef, params: Params) -> str:
        holder = await svc.locks.holder(self.key(site, params))
        html = render_fragment(
            "live/_lock.html",
            lock_id=self.lock_id(site, params),
            holder=holder,
            message=holder.describe(site.tz) if holder else "",
        )
        return partial(self.lock_id(site, params), html)

    async def announce(
        self,
        svc: Services,
        site: SiteRef,
        params: Params,
        *,
        kind: str,
        actor: str,
        also: Change | None = None,
    ) -> None:
        """The lock changed hands: its badge everywhere, in order with the saves."""
        area_params = {p: params[p] for p in self.area.params}
        change = self.redraw(params)
        await self.area.publish(
            svc,
            site,
            area_params,
            change.merged(also) if also else change,
            kind=kind,
            actor=actor,
            extra=lambda: self.lock_html(svc, site, params),
        )

    # -- the page ------------------------------------------------------------------------

    def page(
        self,
        request: Request,
        site: SiteRef,
        params: Params,
        editing: Editing,
        view: EditorView,
        live: Any,
        status: int = 200,
    ) -> Response:
        context = {"editing": editing, "editor": view, "live": live, **editing.extra}
        return render(request, self.template, context, status_code=status)

    async def view(
        self,
        request: Request,
        site: SiteRef,
        params: Params,
        editing: Editing,
        *,
        values: dict[str, Any] | None = None,
        version: int | None = None,
        token: str = "",
        holder: LockInfo | None = None,
        stale: StaleVersion | None = None,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        access = site_of(request)
        ed = EditorView(
            lock_id=self.lock_id(site, params),
            urls={
                a: self.url(a, site, params) for a in ("save", "open", "renew", "cancel", "break")
            },
            values=values if values is not None else editing.values,
            version=version if version is not None else editing.version,
            token=token,
            holder=holder,
            held_message=holder.describe(site.tz) if holder else "",
            can_break=access.is_manager,
            stale=stale,
            errors=errors or FormErrors(),
        )
        live = await self.area.view(request)
        return self.page(request, site, params, editing, ed, live, status)

    async def show(self, request: Request) -> Response:
        site, params, editing = await self._subject(request)
        holder = await services(request).locks.holder(self.key(site, params))
        mine = holder is not None and holder.holder_id == site_of(request).user_id
        return await self.view(
            request,
            site,
            params,
            editing,
            token=holder.token if mine and holder else "",
            holder=None if mine else holder,
        )

    # -- actions -------------------------------------------------------------------------

    async def open(self, request: Request) -> Response:
        site, params, _ = await self._subject(request)
        access, svc = site_of(request), services(request)
        try:
            await svc.locks.acquire(
                self.key(site, params), access.user_id, access.display_name, LOCK_TTL
            )
        except LockHeld:
            pass  # the editor shows who has it, and until when
        else:
            await self.announce(svc, site, params, kind=f"{self.name}.lock", actor=access.username)
        return redirect(request, self.url("show", site, params))

    async def submit(self, request: Request) -> Response:
        site, params, editing = await self._subject(request)
        access, svc = site_of(request), services(request)
        form = await read_form(request)
        version = form.integer("version", label="the version", minimum=0) or 0
        token = form.raw("token")[:64]
        again: dict[str, Any] = {"values": form.as_typed(), "version": version, "token": token}
        holder = await svc.locks.holder(self.key(site, params))
        if holder is not None and holder.holder_id != access.user_id:
            return await self.view(
                request, site, params, editing, **again, holder=holder, status=423
            )
        try:
            async with write_tx():
                saving = Saving(site, params, form, version, access.actor, svc.settings)
                saved = await self.save(saving)
        except StaleVersion as stale:
            again["version"] = stale.current["version"]
            return await self.view(request, site, params, editing, **again, stale=stale, status=409)
        except DomainError as problem:
            errors = errors_of(problem, "editor")  # a rule of the whole thing: said on top
            return await self.view(
                request, site, params, editing, **again, errors=errors, status=422
            )
        if token:
            await svc.locks.release(self.key(site, params), token)
        notice, also = (saved.notice, saved.also) if isinstance(saved, Saved) else (saved, None)
        kind = f"{self.name}.save"
        others = [*(self.elsewhere(params) if self.elsewhere else ())]
        others += saved.elsewhere if isinstance(saved, Saved) else ()
        for area, area_params, change in others:
            await area.publish(svc, site, area_params, change, kind=kind, actor=access.username)
        await self.announce(svc, site, params, kind=kind, actor=access.username, also=also)
        return redirect(request, self.back(site, params), message=notice)

    def back(self, site: SiteRef, params: Params) -> str:
        if self._back is not None:
            return self._back(site, params)
        anchor = f"#{self.entity}-{params[self.params[-1]]}" if self.entity and self.params else ""
        return self.area.url(site, {p: params[p] for p in self.area.params}) + anchor

    async def renew(self, request: Request) -> Response:
        site, params = site_of(request).ref, self._params(request)
        token = (await read_form(request)).raw("token")[:64]
        locks = services(request).locks
        if await locks.renew(self.key(site, params), token, LOCK_TTL):
            return Response(status_code=204)
        holder = await locks.holder(self.key(site, params))
        who = f"{holder.holder} has taken over" if holder else "Your editing lock ran out"
        return Response(f"{who}: your changes can no longer be saved.", status_code=409)

    async def cancel(self, request: Request) -> Response:
        site, params = site_of(request).ref, self._params(request)
        form = await read_form(request)
        token, svc = form.raw("token")[:64], services(request)
        if token and await svc.locks.release(self.key(site, params), token):
            await self.announce(
                svc, site, params, kind=f"{self.name}.unlock", actor=site_of(request).username
            )
        if form.raw("beacon"):  # the page is being left: nothing to show it
            return Response(status_code=204)
        return redirect(request, self.back(site, params))

    async def take_over(self, request: Request) -> Response:
        """A manager takes the lock from whoever holds it; recorded in the trail."""
        access = require_manager(request)
        site, params, editing = await self._subject(request)
        svc, key = services(request), self.key(site, params)
        broken = await svc.locks.break_lock(key)
        await svc.locks.acquire(key, access.user_id, access.display_name, LOCK_TTL)
        if broken is not None and broken.holder_id != access.user_id:
            entity_id = params[self.params[-1]] if self.params else None
            async with write_tx():
                await Activity.record(
                    site.id,
                    access.actor,
                    f"{self.name}.break_lock",
                    f"took over editing {editing.title} from {broken.holder}",
                    self.entity,
                    entity_id,
                )
        await self.announce(svc, site, params, kind=f"{self.name}.break", actor=access.username)
        return redirect(request, self.url("show", site, params))

    def routes(self, path: str) -> list[Route]:
        n = self.name
        return [
            Route(path, self.show, name=f"{n}_show"),
            Route(path, self.submit, methods=["POST"], name=f"{n}_save"),
            Route(f"{path}/open", self.open, methods=["POST"], name=f"{n}_open"),
            Route(f"{path}/lock", self.renew, methods=["POST"], name=f"{n}_renew"),
            Route(f"{path}/cancel", self.cancel, methods=["POST"], name=f"{n}_cancel"),
            Route(f"{path}/break", self.take_over, methods=["POST"], name=f"{n}_break"),
        ]


async def release_lapsed(svc: Services) -> int:
    """Clear the badge of every lock that ran out (its holder vanished). Safe to run from
    every process: each lapse is reported to one of them."""
    lapsed = await svc.locks.lapsed()
    for key in lapsed:
        name, site_id, *rest = key.split(":")
        ids = [i for i in rest if i]  # a site-wide editor's key ends "notice:3:"
        editor = EDITORS.get(name)
        site = await SiteRef.load(int(site_id)) if site_id.isdigit() else None
        if editor is None or site is None or not all(i.isdigit() for i in ids):
            continue
        params = dict(zip(editor.params, map(int, ids), strict=False))
        await editor.announce(svc, site, params, kind=f"{name}.lapsed", actor="")
    return len(lapsed)
