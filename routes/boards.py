"""Ticket boards and the workshop's workflow board (SPEC §5.2, §5.3; seeds 001, 002):
/s/{site}/boards and /s/{site}/boards/{board}.

Two live pages on the kit: `BOARDS`, the site's list of boards, and `BOARD`, one board
(its own topic and presence list; the ticket page and the ticket editor are pages of it).
`render_board` draws only what a change names: cards changed in place, the columns a
move, create or delete touched, comments added. `TICKET` is the card editor under a soft
lock. Every action is a plain form first (303 back, with its message); a move works
without JavaScript through the "Move to…" form on every card, and under htmx answers with
the columns it touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from routes.access import site_of
from routes.common import (
    AREAS,
    Area,
    path_for,
    redirect,
    render,
    services,
    templates,
    wants_fragment,
)
from routes.editing import Editing, LockEditor, Saving
from routes.forms import Form, FormErrors, read_form
from routes.fragments import delete, partial, render_fragment, toast, upsert
from routes.live import (
    Change,
    Forms,
    FormSpec,
    FormState,
    LiveArea,
    Params,
    Render,
    deletions,
    held_by,
)
from tables.base import DomainError, InvalidInput, StaleVersion, write_tx
from tables.boards import (
    BOTTOM,
    EDITABLE,
    Board,
    BoardKind,
    BoardView,
    ColumnView,
    MoveResult,
    Priority,
    TicketView,
    add_comment,
    archive_board,
    board_view,
    boards_of,
    comments_of,
    create_board,
    create_ticket,
    delete_ticket,
    move_ticket,
    open_ticket,
    rename_board,
    tickets_by_id,
    update_ticket,
)
from tables.people import SiteRef, assignable_people
from tables.values import row_id

AREAS.append(Area("Boards", "boards", "Tickets and workshop jobs, moved and edited together"))

PARTS_FIELDS = frozenset({"parts_reason", "parts_eta"})


# -- template helpers ----------------------------------------------------------------------


def duration(span: timedelta) -> str:
    """Time in a column as a person says it: "12 min", "5 h", "3 d 4 h"."""
    minutes = int(span.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h"
    return f"{hours // 24} d {hours % 24} h" if hours % 24 else f"{hours // 24} d"


def local(moment: datetime | None, timezone: str, fmt: str = "%d %b %H:%M") -> str:
    """A moment in the site's time zone (pages get the site's access, fragments its ref:
    both have `timezone`)."""
    return moment.astimezone(ZoneInfo(timezone)).strftime(fmt) if moment else ""


templates.env.filters.update(duration=duration, local=local)


# -- the list of boards --------------------------------------------------------------------


async def render_boards(view: Render) -> str:
    if not view.change.redraws("boards"):
        return ""
    boards = await boards_of(view.site.id)
    return partial("boards", render_fragment("boards/_boards.html", site=view.site, boards=boards))


BOARDS = LiveArea(
    "boards",
    render=render_boards,
    regions={"boards"},
    forms={"board": FormSpec(None, "new-board-form", "name")},
)


@BOARDS.page
async def boards_page(request: Request, forms: Forms | None = None) -> Response:
    site = site_of(request).ref
    context = {
        "boards": await boards_of(site.id),
        "kinds": [k.value for k in BoardKind],
        "forms": forms or Forms(),
        "live": await BOARDS.view(request),
    }
    return render(request, "boards/list.html", context)


async def board_create(request: Request) -> Response:
    site, form = site_of(request), await read_form(request)
    values = {"name": form.raw("name"), "kind": form.raw("kind")}
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        async with write_tx():
            board = await create_board(site.site_id, values["name"], values["kind"], site.actor)
    except DomainError as problem:
        return await BOARDS.refuse(request, "board", problem, values)
    back = path_for("board", site=site.slug, board=board["id"])
    notice = f"Created the board {board['name']}."
    return await BOARDS.done(
        request, Change(whole={"boards"}), kind="board.create", notice=notice, back=back
    )


async def board_archive(request: Request) -> Response:
    """Archive a board (read-only from then on), or restore it."""
    site, params = await BOARD.where(request)
    access, form = site_of(request), await read_form(request)
    archived = form.raw("archived") != "no"
    try:
        async with write_tx():
            board = await archive_board(site.id, params["board"], access.actor, archived)
    except DomainError as problem:
        raise HTTPException(404, str(problem)) from None
    notice = f"{'Archived' if archived else 'Restored'} the board {board['name']}."
    return await BOARD.done(
        request,
        Change(whole={"head", "columns"}),
        kind="board.archive",
        notice=notice,
        also=[(BOARDS, {}, Change(whole={"boards"}))],
    )


async def board_rename(request: Request) -> Response:
    """Rename a board from the name its renamer saw (a rename since then: 409)."""
    site, params = await BOARD.where(request)
    access, form = site_of(request), await read_form(request)
    version = form.integer("version", label="the version", minimum=1)
    name = form.raw("name")
    try:
        if form.errors or version is None:
            raise InvalidInput(form.errors)
        async with write_tx():
            board = await rename_board(site.id, params["board"], version, name, access.actor)
    except StaleVersion as stale:
        return await BOARD.refuse(request, "rename", str(stale), {"name": name}, status=409)
    except DomainError as problem:
        return await BOARD.refuse(request, "rename", problem, {"name": name})
    return await BOARD.done(
        request,
        Change(whole={"head"}),
        kind="board.rename",
        notice=f"Renamed the board {board['name']}.",
        also=[(BOARDS, {}, Change(whole={"boards"}))],
    )


# -- one board -----------------------------------------------------------------------------


async def board_is_the_sites(site: SiteRef, params: Params) -> bool:
    """Archived boards too: they are shown, read-only."""
    return await Board.exists().where((Board.id == params["board"]) & (Board.site == site.id))


def column_ids(names: set[str], kind: str = "column") -> list[int]:
    """The columns named "<kind>-<id>" in a change's `whole`."""
    return sorted(int(n.split("-", 1)[1]) for n in names if n.startswith(f"{kind}-"))


def board_context(site: SiteRef, board: BoardView, editors: Mapping[int, str]) -> dict:
    """What every column and card fragment needs; nothing per viewer."""
    return {"site": site, "board": board, "editors": editors}


async def render_board(view: Render) -> str:
    """What changed on a board, for every viewer: its head (renamed, archived), the whole
    board, some columns (what a move, create or delete touched), some cards in place, a
    deleted card, new comments."""
    editors = await view.editing(TICKET.prefix(view.site))
    html = ""
    if view.change.redraws("head") or view.change.redraws("columns"):
        board = await board_view(view.site.id, view.params["board"])
        context = board_context(view.site, board, editors)
        if view.change.redraws("head"):
            html += partial("board-head", render_fragment("boards/_head.html", **context))
        if view.change.redraws("columns"):
            html += partial("columns", render_fragment("boards/_columns.html", **context))
            return html + deletions(view.change, "ticket") + tickets_gone(view)
    html += await cards_html(view, editors)
    html += await comments_html(view)
    return html + deletions(view.change, "ticket") + tickets_gone(view)


async def cards_html(view: Render, editors: Mapping[int, str]) -> str:
    """The columns a change redraws ("column-<id>", and those new cards went to), the
    heads and orders of those whose cards only moved ("order-<id>": a move sends the card
    it moved and the order, not the columns), and the cards it changed in place: one
    board query for all of them."""
    site, change, board_id = view.site, view.change, view.params["board"]
    redrawn = set(column_ids(set(change.whole)))
    reordered = set(column_ids(set(change.whole), "order")) - redrawn
    cards = await tickets_by_id(site.id, sorted({*change.ids("ticket"), *change.new("ticket")}))
    cards = {i: t for i, t in cards.items() if t.board_id == board_id}
    redrawn |= {t.column_id for i, t in cards.items() if i in change.new("ticket")}
    in_place = {t.id for t in cards.values() if t.column_id not in redrawn}
    needed = sorted(redrawn | reordered | {cards[i].column_id for i in in_place})
    if not needed:
        return ""
    board = await board_view(site.id, board_id, only=needed)
    context = board_context(site, board, editors)
    html = heads = ""
    for column in board.columns:
        if column.id in redrawn:
            fragment = render_fragment("boards/_column.html", column=column, **context)
            html += partial(f"column-{column.id}", fragment)
        elif column.id in reordered:  # after the cards: boards.js orders them on arrival
            heads += partial(
                f"column-head-{column.id}",
                render_fragment("boards/_column_head.html", column=column),
                "outerHTML",
            )
        for t in column.tickets if column.id not in redrawn else ():
            if t.id in in_place:
                fragment = render_fragment("boards/_card.html", t=t, column=column, **context)
                html += partial(f"ticket-{t.id}", fragment)
                if column.id not in reordered:  # edited, not moved: its page's text too
                    html += ticket_page_parts(t)
    return html + heads


def tickets_gone(view: Render) -> str:
    """On a deleted ticket's open page: say so where its description was, and take away
    the comment form (a comment could only land on "There is no such ticket")."""
    board = path_for("board", site=view.site.slug, board=view.params["board"])
    html = ""
    for ticket_id in view.change.removed("ticket"):
        notice = render_fragment("boards/_ticket_gone.html", ticket_id=ticket_id, board_url=board)
        html += partial(f"ticket-about-{ticket_id}", notice) + delete(f"ticket-reply-{ticket_id}")
    return html


def ticket_page_parts(t: TicketView) -> str:
    """A changed ticket's heading and description, for whoever has its page open."""
    return partial(
        f"ticket-title-{t.id}", render_fragment("boards/_ticket_title.html", t=t)
    ) + partial(f"ticket-about-{t.id}", render_fragment("boards/_ticket_about.html", t=t))


async def comments_html(view: Render) -> str:
    """New comments, upserted into the open ticket pages' lists."""
    new = set(view.change.new("comment"))
    html = ""
    for ticket_id in view.change.ids("ticket") if new else []:
        try:
            rows = [c for c in await comments_of(view.site.id, ticket_id) if c["id"] in new]
        except DomainError:
            continue
        items = "".join(render_fragment("boards/_comment.html", c=c, site=view.site) for c in rows)
        if items:
            html += upsert(f"comments-{ticket_id}", items)
    return html


# A board's kind and columns are made with it and never change (no rule changes them):
# they are read once per process, not with every move.
_LAYOUTS: dict[tuple[int, int], tuple[str, list[ColumnView]]] = {}


async def layout_of(site_id: int, board_id: int) -> tuple[str, list[ColumnView]]:
    """A board's kind and columns (without their cards); DomainError if not the site's."""
    if (site_id, board_id) not in _LAYOUTS:
        board = await board_view(site_id, board_id)
        columns = [
            ColumnView(c.id, c.key, c.title, c.position, c.wip_limit, None, None)
            for c in board.columns
        ]
        _LAYOUTS[site_id, board_id] = (board.kind, columns)
    return _LAYOUTS[site_id, board_id]


async def column_choices(site_id: int, board_id: int) -> list[ColumnView]:
    return (await layout_of(site_id, board_id))[1]


BOARD = LiveArea(
    "board",
    params=("board",),
    exists=board_is_the_sites,
    render=render_board,
    regions={"head", "columns"},
    forms={
        "rename": FormSpec(None, "rename-form", "name"),
        "ticket": FormSpec(None, "new-ticket-form", "title"),
        "move": FormSpec(None, "toasts", "position"),
    },
)


@BOARD.page
async def board_page(request: Request, forms: Forms | None = None) -> Response:
    site, params = await BOARD.where(request)
    board = await board_view(site.id, params["board"])
    editors = await held_by(services(request).locks, TICKET.prefix(site))
    context = {
        **board_context(site, board, editors),
        "people": await assignable_people(site.id),
        "priorities": list(Priority),
        "forms": forms or Forms(),
        "live": await BOARD.view(request),
    }
    return render(request, "boards/page.html", context)


async def the_ticket(request: Request) -> tuple[SiteRef, dict[str, int], TicketView]:
    """The ticket in the path, if it is on the board in the path (else 404)."""
    site, params = await BOARD.where(request)
    try:
        ticket = await open_ticket(site.id, request.path_params["ticket"])
    except DomainError as gone:
        raise HTTPException(404, str(gone)) from None
    if ticket.board_id != params["board"]:
        raise HTTPException(404, "There is no such ticket.")
    return site, params, ticket


def card_values(form: Form) -> dict[str, str]:
    return {name: form.raw(name) for name in EDITABLE if name in form.data}


async def ticket_create(request: Request) -> Response:
    site, params = await BOARD.where(request)
    access, form = site_of(request), await read_form(request)
    column = form.id("column", required=False)
    values = card_values(form)
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        async with write_tx():
            ticket = await create_ticket(site.id, params["board"], column, values, access.actor)
    except DomainError as problem:
        return await BOARD.refuse(request, "ticket", problem, {**values, "column": str(column)})
    change = Change(added={"ticket": {ticket["id"]}}, whole={f"column-{ticket['column']}"})
    notice = f"Created #{ticket['number']} {ticket['title']}."
    return await BOARD.done(
        request, change, kind="ticket.create", notice=notice, anchor=f"ticket-{ticket['id']}"
    )


def read_place(form: Form) -> tuple[int | None, str, int | None]:
    """Where a move goes: the column, and "top", "bottom" or "after" a card. From the move
    page's one choice ("to": "12:top", "12:after:345", "12:bottom"), or from a drop or the
    arrow keys ("column" and "position")."""
    column: int | None
    if "to" in form.data:
        column_text, _, position = form.raw("to").partition(":")
        column = row_id(column_text)
        if column is None:
            form.errors.add("position", "Choose where on the board it goes.")
            return None, "", None
    else:
        column, position = form.id("column"), form.raw("position")
    position = position.strip()
    if position in ("top", "bottom"):
        return column, position, None
    kind, _, ticket = position.partition(":")
    if kind == "after" and (after := row_id(ticket)) is not None:
        return column, "after", after
    form.errors.add("position", "Choose where in the column: top, bottom or after a card.")
    return column, "", None


async def ticket_move_page(request: Request) -> Response:
    """The "Move to…" page: every place on the board, as it is now, to choose from."""
    site, params, ticket = await the_ticket(request)
    board = await board_view(site.id, params["board"])
    context = {
        "site": site,
        "board": board,
        "t": next(t for t in board.tickets if t.id == ticket.id),
        "column": board.column(ticket.column_id),
        "live": await BOARD.view(request),
    }
    return render(request, "boards/move.html", context)


async def ticket_move(request: Request) -> Response:
    """The "Move to…" form (and a drop, which fills it in): a column and a place in it,
    as the mover saw the card."""
    site, params, ticket = await the_ticket(request)
    access, form = site_of(request), await read_form(request)
    version = form.integer("version", label="the version", minimum=1)
    column, where, after = read_place(form)
    if form.errors or version is None or column is None:
        return await BOARD.refuse(request, "move", FormErrors(form.errors))
    choices = {c.id: c for c in await column_choices(site.id, params["board"])}
    if column not in choices:
        return await BOARD.refuse(request, "move", "Choose one of this board's columns.")
    if where == "bottom":
        after = BOTTOM
    try:
        async with write_tx():
            moved = await move_ticket(
                site.id, ticket.id, version, column, after, access.actor,
                form.raw("parts_reason"), form.raw("parts_eta"),
            )  # fmt: skip
    except StaleVersion as stale:
        return await stale_move(request, site, params, stale)
    except InvalidInput as bad:
        if set(bad.errors) <= PARTS_FIELDS:
            return await waiting_parts_step(request, ticket, form, bad)
        return await BOARD.refuse(request, "move", bad)
    except DomainError as problem:
        return await BOARD.refuse(request, "move", problem)
    return await moved_answer(request, ticket, moved, choices[column].title)


async def moved_answer(
    request: Request, ticket: TicketView, moved: MoveResult, column_title: str
) -> Response:
    """A move done: the touched columns for everyone, and the mover's notice."""
    if not moved.changed:
        notice = f"{ticket.label} is already there."
        return await BOARD.done(request, Change(), kind="ticket.move", notice=notice)
    # The card itself (its column, version, clock) and the order of the columns it left
    # and entered: a few kB, however long the columns are.
    change = Change(
        items={"ticket": {moved.ticket_id}}, whole={f"order-{c}" for c in moved.columns}
    )
    notice = f"Moved {ticket.label} to {column_title}."
    if not moved.as_asked:
        notice += " The card you chose had left that column, so it went to the top."
    return await BOARD.done(
        request, change, kind="ticket.move", notice=notice, anchor=f"ticket-{ticket.id}"
    )


async def stale_move(
    request: Request,
    site: SiteRef,
    params: Params,
    stale: StaleVersion,
    what: str = "moved",
) -> Response:
    """Someone moved or edited the card since the mover saw it: 409, never a silent jump
    back. htmx gets the touched columns as they are now and an error toast; a plain form
    the board as it is now, with the message."""
    message = f"Not {what}: {stale} The board now shows where it is."
    if wants_fragment(request):
        # The whole board: the mover's screen may show the card where it no longer is
        # (their stream was behind), and only a redraw of every column takes that copy away.
        change = Change(whole={"columns"})
        html = await BOARD.render(Render(site, params, change, services(request).locks))
        return HTMLResponse(html + toast(message, "error"), status_code=409)
    state = FormState(FormErrors({"position": message}))
    response = await board_page(request, Forms({"move": state}))
    response.status_code = 409
    return response


async def waiting_parts_step(
    request: Request, ticket: TicketView, form: Form, bad: InvalidInput
) -> Response:
    """Entering "waiting parts" needs a reason and an ETA: the first time a page asking
    for them (a plain step that posts the move again), then that page with its messages."""
    site = site_of(request).ref
    step = path_for("ticket_waiting_parts", site=site.slug, board=ticket.board_id, ticket=ticket.id)
    column, where, after = read_place(form)
    position = f"after:{after}" if where == "after" else where
    query = {"column": str(column), "position": position, "version": form.raw("version")}
    if "parts_reason" not in form.data:
        return redirect(request, f"{step}?{urlencode(query)}")
    values = {**query, "parts_reason": form.raw("parts_reason"), "parts_eta": form.raw("parts_eta")}
    return await parts_page(request, ticket, values, FormErrors(bad.errors), 422)


async def ticket_waiting_parts(request: Request) -> Response:
    _, _, ticket = await the_ticket(request)
    query = request.query_params
    values = {n: query.get(n, "")[:40] for n in ("column", "position", "version")}
    return await parts_page(request, ticket, values, FormErrors(), 200)


async def parts_page(
    request: Request, ticket: TicketView, values: dict, errors: FormErrors, status: int
) -> Response:
    context = {"t": ticket, "values": values, "errors": errors, "live": await BOARD.view(request)}
    return render(request, "boards/waiting_parts.html", context, status_code=status)


async def ticket_page(request: Request, forms: Forms | None = None) -> Response:
    """One ticket with its comments: a page of the board (same stream and presence)."""
    site, params, ticket = await the_ticket(request)
    board = await board_view(site.id, params["board"], only=[ticket.column_id])
    editors = await held_by(services(request).locks, TICKET.prefix(site))
    context = {
        **board_context(site, board, editors),
        "t": next(t for t in board.columns[0].tickets if t.id == ticket.id),
        "column": board.columns[0],
        "comments": await comments_of(site.id, ticket.id),
        "forms": forms or Forms(),
        "live": await BOARD.view(request),
    }
    return render(request, "boards/ticket.html", context)


async def comment_add(request: Request) -> Response:
    site, params, ticket = await the_ticket(request)
    access, form = site_of(request), await read_form(request)
    body = form.raw("body")
    try:
        async with write_tx():
            comment = await add_comment(site.id, ticket.id, body, access.actor)
    except DomainError as problem:
        state = FormState(FormErrors({"body": str(problem)}), {"body": body})
        response = await ticket_page(request, Forms({"comment": state}))
        response.status_code = 422
        return response
    change = Change(items={"ticket": {ticket.id}}, added={"comment": {comment["id"]}})
    back = path_for("ticket", site=site.slug, board=params["board"], ticket=ticket.id)
    return await BOARD.done(
        request, change, kind="ticket.comment", notice="Comment added.", back=back + "#comments"
    )


async def ticket_delete_confirm(request: Request) -> Response:
    _, _, ticket = await the_ticket(request)
    live = await BOARD.view(request)
    return render(request, "boards/confirm_delete.html", {"t": ticket, "live": live})


async def ticket_delete(request: Request) -> Response:
    site, params, ticket = await the_ticket(request)
    access, form = site_of(request), await read_form(request)
    version = form.integer("version", label="the version", minimum=1)
    if version is None:
        return await BOARD.refuse(request, "move", FormErrors(form.errors))
    try:
        async with write_tx():
            gone = await delete_ticket(site.id, ticket.id, version, access.actor)
    except StaleVersion as stale:
        return await stale_move(request, site, params, stale, "deleted")
    except DomainError as problem:
        return await BOARD.refuse(request, "move", problem)
    change = Change(gone={"ticket": {gone.ticket_id}}, whole={f"column-{gone.column_id}"})
    notice = f"Deleted #{gone.number} {gone.title}."
    return await BOARD.done(request, change, kind="ticket.delete", notice=notice)


# -- who is doing what, ephemeral --------------------------------------------------------------


async def ticket_moving(request: Request) -> Response:
    """A drag started (renewed every few seconds while it lasts) or ended: "Bob is moving
    #12" on everyone else's card."""
    _, _, ticket = await the_ticket(request)
    access, form = site_of(request), await read_form(request)
    text = "" if form.raw("state") == "end" else f"{access.display_name} is moving {ticket.label}"
    await BOARD.indicate(request, f"moving-{ticket.id}", text)
    return Response(status_code=204)


async def ticket_typing(request: Request) -> Response:
    """Someone is writing a comment on the ticket: "Bob is typing…" under its comments,
    at most one event a second per typist."""
    _, _, ticket = await the_ticket(request)
    access, form = site_of(request), await read_form(request)
    text = "" if form.raw("state") == "end" else f"{access.display_name} is typing…"
    slot = f"typing-{ticket.id}-{access.user_id}"
    await BOARD.indicate(request, slot, text, within=f"typing-{ticket.id}", ttl=5, every=1.0)
    return Response(status_code=204)


async def board_wall(request: Request) -> Response:
    """The wall screen: the board in large type for a TV, read-only, live for days; it
    says since when it is offline when it is not current."""
    site, params = await BOARD.where(request)
    board = await board_view(site.id, params["board"])
    context = {
        **board_context(site, board, await held_by(services(request).locks, TICKET.prefix(site))),
        "wall": True,
        "live": await BOARD.view(request),
    }
    return render(request, "boards/wall.html", context)


# -- a card's fields, under a soft lock ------------------------------------------------------


async def load_ticket(site: SiteRef, params: Params) -> Editing:
    ticket = await open_ticket(site.id, params["ticket"])
    if ticket.board_id != params["board"]:
        raise DomainError("There is no such ticket.")
    values = {
        "title": ticket.title,
        "description": ticket.description,
        "assignee": str(ticket.assignee_id or ""),
        "priority": ticket.priority,
        "due_date": ticket.due_date.isoformat() if ticket.due_date else "",
        "vehicle_registration": ticket.vehicle_registration,
        "customer": ticket.customer,
        "service": ticket.service,
        "due_out_at": local(ticket.due_out_at, site.timezone, "%Y-%m-%dT%H:%M"),
    }
    kind, _ = await layout_of(site.id, ticket.board_id)
    extra = {
        "t": ticket,
        "people": await assignable_people(site.id),
        "priorities": list(Priority),
        "workflow": kind == BoardKind.workflow,
    }
    return Editing(values, ticket.version, f"#{ticket.number} {ticket.title}", extra)


async def save_ticket(saving: Saving) -> str:
    values = card_values(saving.form)
    if saving.form.errors:  # a file where text goes, say
        raise InvalidInput(saving.form.errors)
    saved = await update_ticket(
        saving.site.id, saving.params["ticket"], saving.version, values, saving.actor
    )
    return f"Saved #{saved['number']} {saved['title']}."


TICKET = LockEditor(
    BOARD,
    "ticket",
    params=("board", "ticket"),
    load=load_ticket,
    save=save_ticket,
    template="boards/ticket_edit.html",
    redraw=lambda p: Change(items={"ticket": {p["ticket"]}}),
    entity="ticket",
)


TICKET_PATH = "/boards/{board:id}/tickets/{ticket:id}"

routes = [
    Route("/boards", boards_page, name="boards"),
    Route("/boards", board_create, methods=["POST"], name="board_create"),
    *BOARDS.routes("/boards"),
    Route("/boards/{board:id}", board_page, name="board"),
    Route("/boards/{board:id}/wall", board_wall, name="board_wall"),
    Route("/boards/{board:id}/archive", board_archive, methods=["POST"], name="board_archive"),
    Route("/boards/{board:id}/rename", board_rename, methods=["POST"], name="board_rename"),
    Route("/boards/{board:id}/tickets", ticket_create, methods=["POST"], name="ticket_create"),
    Route(TICKET_PATH, ticket_page, name="ticket"),
    Route(f"{TICKET_PATH}/move", ticket_move_page, name="ticket_move_page"),
    Route(f"{TICKET_PATH}/move", ticket_move, methods=["POST"], name="ticket_move"),
    Route(f"{TICKET_PATH}/waiting-parts", ticket_waiting_parts, name="ticket_waiting_parts"),
    Route(f"{TICKET_PATH}/comments", comment_add, methods=["POST"], name="comment_add"),
    Route(f"{TICKET_PATH}/moving", ticket_moving, methods=["POST"], name="ticket_moving"),
    Route(f"{TICKET_PATH}/typing", ticket_typing, methods=["POST"], name="ticket_typing"),
    Route(f"{TICKET_PATH}/delete", ticket_delete_confirm, name="ticket_delete_confirm"),
    Route(f"{TICKET_PATH}/delete", ticket_delete, methods=["POST"], name="ticket_delete"),
    *TICKET.routes(f"{TICKET_PATH}/edit"),
    *BOARD.routes("/boards/{board:id}"),
]
