"""Boards with live collaboration (seeds 001, 002; SPEC §5.2 and §5.3).

A site has boards; a board has ordered columns and numbered tickets (#1, #2, … per
board). A ticket board's columns are To do, In progress, Review, Done; the workshop's
workflow board is a board whose columns are estimates, in progress, waiting parts and
completed, and whose cards carry a job part (vehicle, customer, service, due-out time,
parts wait, appointment).

Every rule takes the site's id and refuses what is not one of that site's boards, with
the same sentence as for an id that does not exist. Call the operations inside one write
transaction (`write_tx()`); each records its own line in the site's activity list.

Concurrency rules, enforced by the database:
* positions are the server's: each column's cards are numbered 0..n-1 top to bottom.
  Everything that changes a board's layout (create, move, delete) first bumps the
  board's `revision` — one UPDATE of the board row, which holds the row lock until commit
  on PostgreSQL; SQLite's IMMEDIATE write transaction already lets one writer in at a
  time — and then renumbers the columns it touched. So any number of concurrent moves
  end in one dense order, and the revision numbers the layouts in the order they were
  committed;
* a move carries the card's version as the mover saw it: if someone moved or edited the
  card since, the move is refused (StaleVersion) with the card as it is now. A neighbour
  that has left the column does not refuse the move: the card goes to the top;
* ticket numbers come from one UPDATE … RETURNING of the board's counter;
* edits are optimistic (`update_versioned`): of two saves from one version, one wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.query.functions.aggregate import Count
from piccolo.table import Table

from tables.activity import Activity
from tables.base import Actor, DomainError, InvalidInput, StaleVersion, update_versioned
from tables.people import Site, site_member
from tables.values import (
    UNTYPEABLE,
    parse_date,
    parse_moment,
    row_id,
    typeable,
)

NAME_MAX = 100
TITLE_MAX = 200
DESCRIPTION_MAX = 5000
COMMENT_MAX = 2000
WAITING_PARTS = "waiting_parts"
FINISHED = frozenset({"done", "completed"})  # cards there are neither ageing nor overdue


class BoardKind(StrEnum):
    tickets = "tickets"
    workflow = "workflow"


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"

    @property
    def word(self) -> str:
        return self.value.capitalize()


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    key: str
    title: str
    wip_limit: int | None = None
    amber_after_hours: int | None = None
    red_after_hours: int | None = None


LAYOUTS: dict[BoardKind, tuple[ColumnSpec, ...]] = {
    BoardKind.tickets: (
        ColumnSpec("todo", "To do"),
        ColumnSpec("in_progress", "In progress"),
        ColumnSpec("review", "Review"),
        ColumnSpec("done", "Done"),
    ),
    BoardKind.workflow: (
        ColumnSpec("estimates", "Estimates", 6, 24, 72),
        ColumnSpec("in_progress", "In progress", 4, 24, 72),
        ColumnSpec(WAITING_PARTS, "Waiting parts", None, 24, 72),
        ColumnSpec("completed", "Completed"),
    ),
}


def now() -> datetime:
    return datetime.now(UTC)


class Board(Table):
    id: Serial
    site = ForeignKey(Site, null=False, index=True)
    name = Varchar(length=NAME_MAX)
    kind = Varchar(length=20, choices=BoardKind, default=BoardKind.tickets)
    archived = Boolean(default=False)
    next_number = Integer(default=1)  # the next ticket's #
    version = Integer(default=1)  # of the name and archived flag (renames are versioned)
    # Of the layout: bumped by every create, move and delete of a card, before anything
    # else in that transaction. The UPDATE is what serialises a board's layout changes;
    # the number orders them for viewers. Separate from `version`, so that cards moving
    # never make a rename stale.
    revision = Integer(default=0)
    created_by_name = Varchar(length=150)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_by_name = Varchar(length=150, default="")
    updated_at = Timestamptz(default=TimestamptzNow())


class BoardColumn(Table):
    id: Serial
    board = ForeignKey(Board, null=False)  # indexed by the unique (board, key)
    key = Varchar(length=40)  # unique per board (an index made by the migration)
    title = Varchar(length=60)
    position = Integer(default=0)
    wip_limit = Integer(null=True, default=None)  # warned about, never enforced
    amber_after_hours = Integer(null=True, default=None)
    red_after_hours = Integer(null=True, default=None)


class Ticket(Table):
    id: Serial
    board = ForeignKey(Board, null=False)  # indexed by the unique (board, number)
    number = Integer()  # unique per board (an index made by the migration), shown "#12"
    column = ForeignKey(BoardColumn, null=False)
    position = Integer(default=0)  # 0..n-1 within the column; (column, position) indexed
    title = Varchar(length=TITLE_MAX)
    description = Text(default="")
    assignee = ForeignKey(BaseUser, null=True, on_delete=OnDelete.set_null)
    assignee_name = Varchar(length=150, default="")
    priority = Varchar(length=10, choices=Priority, default=Priority.normal)
    due_date = Date(null=True, default=None)
    version = Integer(default=1)  # bumped by every edit and move of this card
    entered_column_at = Timestamptz(default=TimestamptzNow())
    created_by = ForeignKey(BaseUser, null=True, on_delete=OnDelete.set_null)
    created_by_name = Varchar(length=150)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_by_name = Varchar(length=150, default="")
    updated_at = Timestamptz(default=TimestamptzNow())
    # The job part of a workflow card; empty on ticket boards.
    vehicle_registration = Varchar(length=20, default="")
    customer = Varchar(length=100, default="")
    service = Varchar(length=200, default="")
    due_out_at = Timestamptz(null=True, default=None)
    parts_reason = Varchar(length=200, default="")
    parts_eta = Timestamptz(null=True, default=None)
    appointment = Integer(null=True, default=None)  # the appointments area links it


class Comment(Table, tablename="ticket_comment"):
    id: Serial
    ticket = ForeignKey(Ticket, null=False, index=True)
    author = ForeignKey(BaseUser, null=True, on_delete=OnDelete.set_null)
    author_name = Varchar(length=150)
    body = Text()
    created_at = Timestamptz(default=TimestamptzNow())


# -- input: what a form sends, as the values to store ---------------------------------

# Single-line text fields a card has: form field -> (most characters, what it is called).
LINES = {
    "vehicle_registration": (20, "A registration"),
    "customer": (100, "A customer's name"),
    "service": (200, "A service"),
    "parts_reason": (200, "A parts reason"),
}
EDITABLE = (
    "title",
    "description",
    "assignee",
    "priority",
    "due_date",
    *LINES,
    "due_out_at",
    "parts_eta",
    "appointment",
)


def _text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name)
    return value if isinstance(value, str) else ""


async def _read_card(
    values: Mapping[str, Any], site_id: int, tz: ZoneInfo, creating: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """The columns to store for a card's form fields, and a message per wrong field.
    When editing, only the fields present are read (the others keep their value); names
    that are not a card's fields are ignored."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    present = [n for n in EDITABLE if creating or n in values]

    if "title" in present:
        title = _text(values, "title")
        if not typeable(title):
            errors["title"] = UNTYPEABLE
        elif not (title := " ".join(title.split())):
            errors["title"] = "Give the ticket a title."
        elif len(title) > TITLE_MAX:
            errors["title"] = f"A title has at most {TITLE_MAX} characters."
        out["title"] = title
    if "description" in present:
        description = _text(values, "description").replace("\r\n", "\n").replace("\r", "\n")
        if not typeable(description, multiline=True):
            errors["description"] = UNTYPEABLE
        elif len(description := description.strip()) > DESCRIPTION_MAX:
            errors["description"] = f"A description has at most {DESCRIPTION_MAX:,} characters."
        out["description"] = description
    if "priority" in present:
        priority = _text(values, "priority").strip().lower() or Priority.normal.value
        if priority not in Priority.__members__:
            errors["priority"] = "Choose a priority: Low, Normal, High or Urgent."
        out["priority"] = priority
    if "due_date" in present:
        text = _text(values, "due_date").strip()
        out["due_date"] = parse_date(text) if text else None
        if text and out["due_date"] is None:
            errors["due_date"] = "Enter the due date like 2026-12-31, or leave it empty."
    if "assignee" in present:
        text = _text(values, "assignee").strip()
        out["assignee"], out["assignee_name"] = None, ""
        if text:
            person = await site_member(site_id, row_id(text))
            if person is None:
                errors["assignee"] = "Choose someone who works at this site, or nobody."
            else:
                out["assignee"], out["assignee_name"] = person["id"], person["name"]
    for name, (most, called) in LINES.items():
        if name in present:
            text = _text(values, name)
            if not typeable(text):
                errors[name] = UNTYPEABLE
            elif len(text := " ".join(text.split())) > most:
                errors[name] = f"{called} has at most {most} characters."
            out[name] = text.upper() if name == "vehicle_registration" else text
    for name in ("due_out_at", "parts_eta"):
        if name in present:
            text = _text(values, name).strip()
            out[name] = parse_moment(text, tz) if text else None
            if text and out[name] is None:
                errors[name] = "Enter a date and time like 2026-12-31 14:30, or leave it empty."
    if "appointment" in present:
        text = _text(values, "appointment").strip()
        out["appointment"] = row_id(text) if text else None
        if text and out["appointment"] is None:
            errors["appointment"] = "That is not an appointment."
    return out, errors


def _parts_errors(reason: str, eta: datetime | None, eta_text: str) -> dict[str, str]:
    """Why a card may not enter "waiting parts" yet (empty when it may)."""
    errors = {}
    if not typeable(reason):
        errors["parts_reason"] = UNTYPEABLE
    elif not reason:
        errors["parts_reason"] = "Say which parts the job is waiting for."
    elif len(reason) > 200:
        errors["parts_reason"] = "A parts reason has at most 200 characters."
    if eta is None:
        errors["parts_eta"] = (
            "Enter a date and time like 2026-12-31 14:30."
            if eta_text
            else "Say when the parts are expected."
        )
    elif eta < now().replace(second=0, microsecond=0):  # a datetime field has minutes only
        errors["parts_eta"] = "The parts cannot be expected in the past."
    return errors


def _board_name(text: str) -> str:
    if not typeable(text):
        raise InvalidInput({"name": UNTYPEABLE})
    name = " ".join(text.split())
    if not name:
        raise InvalidInput({"name": "Give the board a name."})
    if len(name) > NAME_MAX:
        raise InvalidInput({"name": f"A board's name has at most {NAME_MAX} characters."})
    return name


# -- lookups every rule starts with ------------------------------------------------------

NO_BOARD = "There is no such board."
NO_TICKET = "There is no such ticket."


async def _board(site_id: int, board_id: int) -> dict[str, Any]:
    """One of the site's boards (with the site's time zone as `tz`), or DomainError."""
    if row_id(board_id) is None:
        raise DomainError(NO_BOARD)
    row = await (
        Board.select(*Board.all_columns(), Board.site.timezone.as_alias("timezone"))
        .where((Board.id == board_id) & (Board.site == site_id))
        .first()
    )
    if row is None:
        raise DomainError(NO_BOARD)
    row["tz"] = ZoneInfo(row.pop("timezone"))
    return row


async def _board_of_ticket(site_id: int, ticket_id: int) -> dict[str, Any]:
    """The board of one of the site's tickets, or DomainError."""
    if row_id(ticket_id) is None:
        raise DomainError(NO_TICKET)
    row = await (
        Ticket.select(Ticket.board)
        .where((Ticket.id == ticket_id) & (Ticket.board.site == site_id))
        .first()
    )
    if row is None:
        raise DomainError(NO_TICKET)
    return await _board(site_id, row["board"])


async def _lock_layout(board: dict[str, Any], number: bool = False) -> dict[str, Any]:
    """Bump the board's revision (and take a ticket number): from here to commit, this
    transaction is the only one changing the board's layout. Refuses archived boards."""
    bumped: dict[Any, Any] = {Board.revision: Board.revision + 1}
    if number:
        bumped[Board.next_number] = Board.next_number + 1
    rows = await (
        Board.update(bumped)
        .where(Board.id == board["id"])
        .returning(Board.revision, Board.next_number, Board.archived, Board.name)
    )
    if not rows:
        raise DomainError(NO_BOARD)
    _writable(rows[0])
    return rows[0]


def _writable(board: Mapping[str, Any]) -> None:
    """An archived board's cards are read-only until it is restored."""
    if board["archived"]:
        raise DomainError(f"The board “{board['name']}” is archived: restore it first.")


async def _column(board_id: int, column_id: int | None) -> dict[str, Any] | None:
    """One of the board's columns, or its first when `column_id` is None."""
    query = BoardColumn.select().where(BoardColumn.board == board_id)
    if column_id is not None:
        if row_id(column_id) is None:
            return None
        query = query.where(BoardColumn.id == column_id)
    return await query.order_by(BoardColumn.position).first()


async def _record(board: dict[str, Any], actor: Actor, verb: str, summary: str) -> None:
    # Card lines point at the board: a ticket may be gone, the board page is not.
    await Activity.record(board["site"], actor, verb, summary, "board", board["id"])


def _label(ticket: Mapping[str, Any]) -> str:
    return f"#{ticket['number']} {ticket['title']}"


# -- boards -------------------------------------------------------------------------------


async def create_board(site_id: int, name: str, kind: str, actor: Actor) -> dict[str, Any]:
    """A new board with its kind's columns. Returns the board's row."""
    name = _board_name(name)
    if kind not in BoardKind.__members__:
        raise InvalidInput({"kind": "Choose a ticket board or a workflow board."})
    board = Board(
        site=site_id,
        name=name,
        kind=kind,
        created_by_name=actor.name,
        updated_by_name=actor.name,
    )
    await board.save()
    await BoardColumn.insert(
        *(
            BoardColumn(
                board=board.id,
                key=spec.key,
                title=spec.title,
                position=i,
                wip_limit=spec.wip_limit,
                amber_after_hours=spec.amber_after_hours,
                red_after_hours=spec.red_after_hours,
            )
            for i, spec in enumerate(LAYOUTS[BoardKind(kind)])
        )
    )
    row = await _board(site_id, board.id)
    await _record(row, actor, "board.create", f"created the board {name}")
    return row


async def rename_board(
    site_id: int, board_id: int, expected_version: int, name: str, actor: Actor
) -> dict[str, Any]:
    """Rename a board if nobody renamed it since `expected_version` (else StaleVersion)."""
    board = await _board(site_id, board_id)
    name = _board_name(name)
    saved = await update_versioned(
        Board,
        board["id"],
        expected_version,
        {"name": name, "updated_by_name": actor.name, "updated_at": now()},
        compare=("name",),
        where=Board.site == site_id,
    )
    await _record(board, actor, "board.rename", f"renamed the board {board['name']} to {name}")
    return saved


async def archive_board(
    site_id: int, board_id: int, actor: Actor, archived: bool = True
) -> dict[str, Any]:
    """Archive a board (its cards stay, read-only: no creates, edits, moves, deletes or
    comments), or restore it with archived=False."""
    board = await _board(site_id, board_id)
    rows = await (
        Board.update(
            {
                Board.archived: archived,
                Board.version: Board.version + 1,
                Board.updated_by_name: actor.name,
                Board.updated_at: now(),
            }
        )
        .where((Board.id == board["id"]) & (Board.archived != archived))
        .returning(*Board.all_columns())
    )
    if not rows:  # already so: nothing to record
        return board
    verb, done = ("archive", "archived") if archived else ("restore", "restored")
    await _record(board, actor, f"board.{verb}", f"{done} the board {board['name']}")
    return rows[0]


# -- tickets ------------------------------------------------------------------------------


async def create_ticket(
    site_id: int,
    board_id: int,
    column_id: int | None,
    values: Mapping[str, str],
    actor: Actor,
) -> dict[str, Any]:
    """A new card at the bottom of a column (the board's first when None), numbered by
    the board's counter. Returns the ticket's row. Fields: see `_read_card`; a card
    made in "waiting parts" needs its parts reason and ETA."""
    board = await _board(site_id, board_id)
    column = await _column(board["id"], column_id)
    card, errors = await _read_card(values, site_id, board["tz"], creating=True)
    if column is None:
        errors["column"] = "Choose one of this board's columns."
    elif column["key"] == WAITING_PARTS:
        eta_text = _text(values, "parts_eta").strip()
        waiting = _parts_errors(card["parts_reason"], card["parts_eta"], eta_text)
        errors |= {name: why for name, why in waiting.items() if name not in errors}
    if errors:
        raise InvalidInput(errors)
    assert column is not None
    layout = await _lock_layout(board, number=True)
    position = await Ticket.count().where(Ticket.column == column["id"])
    stamp = now()
    ticket = Ticket(
        board=board["id"],
        number=layout["next_number"] - 1,
        column=column["id"],
        position=position,
        entered_column_at=stamp,
        created_by=actor.id or None,
        created_by_name=actor.name,
        created_at=stamp,
        updated_by_name=actor.name,
        updated_at=stamp,
        **card,
    )
    await ticket.save()
    row = await Ticket.select().where(Ticket.id == ticket.id).first()
    assert row is not None
    await _record(board, actor, "ticket.create", f"created {_label(row)} in {column['title']}")
    return row


async def update_ticket(
    site_id: int,
    ticket_id: int,
    expected_version: int,
    values: Mapping[str, str],
    actor: Actor,
) -> dict[str, Any]:
    """Save a card's fields if nobody moved or edited it since `expected_version`; else
    StaleVersion whose `changes` say, readably, what differs from what was submitted.
    Only the fields present in `values` are changed. Returns the saved row."""
    board = await _board_of_ticket(site_id, ticket_id)
    _writable(board)
    card, errors = await _read_card(values, site_id, board["tz"], creating=False)
    if errors:
        raise InvalidInput(errors)
    try:
        saved = await update_versioned(
            Ticket,
            ticket_id,
            expected_version,
            {**card, "updated_by_name": actor.name, "updated_at": now()},
            compare=tuple(n for n in card if n != "assignee_name"),
            where=Ticket.board == board["id"],
        )
    except StaleVersion as stale:
        raise StaleVersion(
            stale.current, _readable_changes(stale.changes, card, stale.current, board["tz"])
        ) from None
    await _record(board, actor, "ticket.update", f"edited {_label(saved)}")
    return saved


def _shown(name: str, value: Any, tz: ZoneInfo) -> str:
    """A field's value as a person reads it on a 409 page."""
    if value is None or value == "":
        return "none"
    if name == "priority":
        return Priority(value).word
    if isinstance(value, datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _readable_changes(
    changes: dict[str, tuple[Any, Any]],
    submitted: Mapping[str, Any],
    current: Mapping[str, Any],
    tz: ZoneInfo,
) -> dict[str, tuple[str, str]]:
    """A StaleVersion's changes as people say them: field -> (yours, theirs), with
    people by name, priorities as words, dates and times as text, nothing as "none"."""
    readable = {}
    for name, (yours, theirs) in changes.items():
        if name == "assignee":
            readable[name] = (
                submitted.get("assignee_name") or "nobody",
                current.get("assignee_name") or "nobody",
            )
        else:
            readable[name] = (_shown(name, yours, tz), _shown(name, theirs, tz))
    return readable


class TicketMoved(StaleVersion):
    """A move (or delete) from a version that is no longer current: someone moved or
    edited the card meanwhile. `current` is the card as it is now."""

    def __init__(self, current: dict[str, Any], changes: dict[str, tuple[Any, Any]]) -> None:
        super().__init__(current, changes)
        who = current.get("updated_by_name") or "Someone else"
        self.args = (f"{who} moved or changed #{current['number']} just before you did.",)


@dataclass
class MoveResult:
    """What a move did, for redrawing only that: the columns it touched, in their new
    order, and the cards whose place changed."""

    ticket_id: int
    number: int
    board_id: int
    from_column: int
    to_column: int
    revision: int  # the board's layout revision this move made: apply moves in this order
    changed: list[int]  # tickets whose column or position changed (the moved one first;
    # none when the card was dropped where it was)
    order: dict[int, list[int]]  # column id -> its ticket ids, top to bottom, after the move
    as_asked: bool = True  # False when the chosen neighbour had left and the card went on top

    @property
    def columns(self) -> list[int]:
        return list(dict.fromkeys((self.from_column, self.to_column)))


BOTTOM = -1  # `after_ticket_id` of move_ticket: after the last card, whichever that is then


def place(order: list[int], ticket_id: int, after: int | None) -> tuple[list[int], bool]:
    """A column's order (without the card) with `ticket_id` put after `after` (None: at
    the top), and whether that neighbour was there. A neighbour that is not in the column
    any more (moved away, deleted) puts the card at the top: deterministic, and the part
    of the column the mover surely saw."""
    rest = [i for i in order if i != ticket_id]
    if after is None:
        return [ticket_id, *rest], True
    if after not in rest:
        return [ticket_id, *rest], False
    at = rest.index(after) + 1
    return [*rest[:at], ticket_id, *rest[at:]], True


async def _column_orders(
    column_ids: list[int],
) -> tuple[dict[int, list[int]], dict[int, tuple[int, int]]]:
    """Each column's ticket ids top to bottom, and where each ticket is (column, position)."""
    rows = await (
        Ticket.select(Ticket.id, Ticket.column, Ticket.position)
        .where(Ticket.column.is_in(column_ids or [-1]))
        .order_by(Ticket.position)
        .order_by(Ticket.id)
    )
    orders: dict[int, list[int]] = {c: [] for c in column_ids}
    for row in rows:
        orders[row["column"]].append(row["id"])
    return orders, {row["id"]: (row["column"], row["position"]) for row in rows}


async def _renumber(orders: dict[int, list[int]], places: dict[int, tuple[int, int]]) -> list[int]:
    """Give every ticket of these columns its index as its position, in one UPDATE.
    Returns the tickets whose place changed."""
    changed = [
        (ticket_id, i)
        for column_id, ids in orders.items()
        for i, ticket_id in enumerate(ids)
        if places.get(ticket_id) != (column_id, i)
    ]
    if changed:
        cases = " ".join("WHEN {} THEN CAST({} AS INTEGER)" for _ in changed)
        marks = ", ".join("{}" for _ in changed)
        await Ticket.raw(
            f'UPDATE ticket SET "position" = CASE "id" {cases} END WHERE "id" IN ({marks})',
            *(value for pair in changed for value in pair),
            *(ticket_id for ticket_id, _ in changed),
        )
    return [ticket_id for ticket_id, _ in changed]


def _read_parts(
    reason: str, eta: datetime | str | None, tz: ZoneInfo
) -> tuple[str, datetime | None, str]:
    """The parts wait as given: the reason tidied, the ETA as a moment (datetime-local
    text is in the site's time zone), and the ETA text as typed ("" if none)."""
    tidy = " ".join(reason.split()) if typeable(reason) else reason
    text = eta.strip() if isinstance(eta, str) else ""
    if text:
        return tidy, parse_moment(text, tz), text
    if isinstance(eta, datetime):
        return tidy, eta if eta.tzinfo else eta.replace(tzinfo=tz), text
    return tidy, None, text


async def _write_move(
    ticket: dict[str, Any],
    expected_version: int,
    to_column: dict[str, Any],
    actor: Actor,
    reason: str,
    eta: datetime | None,
) -> None:
    """The card's own row: its column (entering one starts its clock and sets or clears the
    parts wait), version and who — only if nobody edited it since `expected_version`."""
    stamp = now()
    moved: dict[Any, Any] = {
        Ticket.column: to_column["id"],
        Ticket.version: Ticket.version + 1,
        Ticket.updated_by_name: actor.name,
        Ticket.updated_at: stamp,
    }
    if ticket["column"] != to_column["id"]:
        moved[Ticket.entered_column_at] = stamp
        waiting = to_column["key"] == WAITING_PARTS
        moved[Ticket.parts_reason] = reason if waiting else ""
        moved[Ticket.parts_eta] = eta if waiting else None
    saved = await (
        Ticket.update(moved)
        .where((Ticket.id == ticket["id"]) & (Ticket.version == expected_version))
        .returning(Ticket.id)
    )
    if not saved:  # edited between our read and this write (edits take no board lock)
        current = await Ticket.select().where(Ticket.id == ticket["id"]).first()
        if current is None:
            raise DomainError("This ticket was deleted a moment ago.")
        raise await _moved_meanwhile(current, to_column)


async def move_ticket(
    site_id: int,
    ticket_id: int,
    expected_version: int,
    to_column_id: int,
    after_ticket_id: int | None,
    actor: Actor,
    parts_reason: str = "",
    parts_eta: datetime | str | None = None,
) -> MoveResult:
    """Move a card into a column (maybe the one it is in) after a neighbour (None: at the
    top; BOTTOM: at the bottom), as the mover saw it at `expected_version`.

    Refused with StaleVersion (TicketMoved) when the card was moved or edited since. A
    card entering a workflow board's "waiting parts" needs a parts reason and an ETA not
    in the past (a datetime, or datetime-local text in the site's time zone).
    """
    board = await _board_of_ticket(site_id, ticket_id)
    to_column = await _column(board["id"], to_column_id)
    if to_column is None:
        raise InvalidInput({"column": "Choose one of this board's columns."})
    reason, eta, eta_text = _read_parts(parts_reason, parts_eta, board["tz"])
    layout = await _lock_layout(board)
    ticket = await Ticket.select().where(Ticket.id == ticket_id).first()
    if ticket is None:
        raise DomainError("This ticket was deleted a moment ago.")
    entering = ticket["column"] != to_column["id"]
    if ticket["version"] != expected_version:
        raise await _moved_meanwhile(ticket, to_column)
    if entering and to_column["key"] == WAITING_PARTS:
        errors = _parts_errors(reason, eta, eta_text)
        if errors:
            raise InvalidInput(errors)
    before, places = await _column_orders(list(dict.fromkeys((ticket["column"], to_column["id"]))))
    orders = {column_id: [i for i in ids if i != ticket_id] for column_id, ids in before.items()}
    if after_ticket_id == BOTTOM:  # read under the board's lock: the bottom as it is now
        after_ticket_id = orders[to_column["id"]][-1] if orders[to_column["id"]] else None
    elif after_ticket_id == ticket_id:  # "after itself": where it is, or on top elsewhere
        after_ticket_id = None if entering else _before(before[ticket["column"]], ticket_id)
    orders[to_column["id"]], as_asked = place(orders[to_column["id"]], ticket_id, after_ticket_id)
    result = MoveResult(
        ticket_id=ticket_id,
        number=ticket["number"],
        board_id=board["id"],
        from_column=ticket["column"],
        to_column=to_column["id"],
        revision=layout["revision"],
        changed=[],
        order=orders,
        as_asked=as_asked,
    )
    if orders == before:  # dropped where it was: nothing changes, nothing to record
        return result
    await _write_move(ticket, expected_version, to_column, actor, reason, eta)
    result.changed = sorted(await _renumber(orders, places), key=lambda i: i != ticket_id)
    summary = _move_summary(ticket, to_column, entering, reason, eta, board["tz"])
    await _record(board, actor, "ticket.move", summary)
    return result


def _before(order: list[int], ticket_id: int) -> int | None:
    """The card just above `ticket_id` in a column (None when it is on top)."""
    at = order.index(ticket_id)
    return order[at - 1] if at else None


async def _moved_meanwhile(current: dict[str, Any], wanted: dict[str, Any]) -> TicketMoved:
    changes: dict[str, tuple[Any, Any]] = {}
    if current["column"] != wanted["id"]:
        now_in = (
            await BoardColumn.select(BoardColumn.title)
            .where(BoardColumn.id == current["column"])
            .first()
        )
        changes["column"] = (wanted["title"], now_in["title"] if now_in else "none")
    return TicketMoved(current, changes)


def _move_summary(
    ticket: dict[str, Any],
    to_column: dict[str, Any],
    entering: bool,
    reason: str,
    eta: datetime | None,
    tz: ZoneInfo,
) -> str:
    if not entering:
        return f"reordered {_label(ticket)} in {to_column['title']}"
    summary = f"moved {_label(ticket)} to {to_column['title']}"
    if to_column["key"] == WAITING_PARTS and eta is not None:
        summary += f" ({reason}, expected {eta.astimezone(tz):%d %b %H:%M})"
    return summary


@dataclass
class DeleteResult:
    """A deleted card, and its column's new order (for redrawing only that)."""

    ticket_id: int
    number: int
    title: str
    board_id: int
    column_id: int
    revision: int
    changed: list[int]  # the cards below it, which moved up
    order: list[int]


async def delete_ticket(
    site_id: int, ticket_id: int, expected_version: int, actor: Actor
) -> DeleteResult:
    """Delete a card (and its comments) if nobody moved or edited it since
    `expected_version`; the activity line keeps the trail ("deleted #12 Fix the printer")."""
    board = await _board_of_ticket(site_id, ticket_id)
    layout = await _lock_layout(board)
    gone = await (
        Ticket.delete()
        .where((Ticket.id == ticket_id) & (Ticket.version == expected_version))
        .returning(Ticket.id, Ticket.number, Ticket.title, Ticket.column)
    )
    if not gone:
        current = await Ticket.select().where(Ticket.id == ticket_id).first()
        if current is None:
            raise DomainError("This ticket was deleted a moment ago.")
        raise TicketMoved(current, {})
    ticket = gone[0]
    orders, places = await _column_orders([ticket["column"]])
    changed = await _renumber(orders, places)
    await _record(board, actor, "ticket.delete", f"deleted {_label(ticket)}")
    return DeleteResult(
        ticket_id=ticket_id,
        number=ticket["number"],
        title=ticket["title"],
        board_id=board["id"],
        column_id=ticket["column"],
        revision=layout["revision"],
        changed=changed,
        order=orders[ticket["column"]],
    )


async def add_comment(site_id: int, ticket_id: int, body: str, actor: Actor) -> dict[str, Any]:
    """A comment on one of the site's tickets. Returns its row."""
    board = await _board_of_ticket(site_id, ticket_id)
    _writable(board)
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if not typeable(body, multiline=True):
        raise InvalidInput({"body": UNTYPEABLE})
    if not (body := body.strip()):
        raise InvalidInput({"body": "Write something first."})
    if len(body) > COMMENT_MAX:
        raise InvalidInput({"body": f"A comment has at most {COMMENT_MAX:,} characters."})
    ticket = await Ticket.select(Ticket.number, Ticket.title).where(Ticket.id == ticket_id).first()
    if ticket is None:
        raise DomainError("This ticket was deleted a moment ago.")
    comment = Comment(ticket=ticket_id, author=actor.id or None, author_name=actor.name, body=body)
    await comment.save()
    await _record(board, actor, "ticket.comment", f"commented on {_label(ticket)}")
    row = await Comment.select().where(Comment.id == comment.id).first()
    assert row is not None
    return row


# -- reading: each in a fixed number of queries, whatever the counts ----------------------


def age_state(entered_at: datetime, column: ColumnView | Mapping[str, Any], at: datetime) -> str:
    """How long a card has sat in its column, as a colour: "fresh", "amber" or "red",
    from the column's thresholds (a column without them never ages)."""

    def threshold(name: str) -> int | None:
        return column[name] if isinstance(column, Mapping) else getattr(column, name)

    hours = (at - entered_at).total_seconds() / 3600
    red, amber = threshold("red_after_hours"), threshold("amber_after_hours")
    if red is not None and hours >= red:
        return "red"
    if amber is not None and hours >= amber:
        return "amber"
    return "fresh"


@dataclass
class TicketView:
    id: int
    board_id: int
    number: int
    column_id: int
    position: int
    title: str
    description: str
    assignee_id: int | None
    assignee_name: str
    priority: str
    due_date: date | None
    version: int
    entered_column_at: datetime
    created_by_name: str
    created_at: datetime
    updated_by_name: str
    updated_at: datetime
    vehicle_registration: str
    customer: str
    service: str
    due_out_at: datetime | None
    parts_reason: str
    parts_eta: datetime | None
    appointment: int | None
    comments: int = 0
    age: str = "fresh"  # "fresh" | "amber" | "red": time in column against its thresholds
    overdue: bool = False  # due date (ticket) or due-out time (job) passed, not finished
    in_column_for: timedelta = timedelta(0)

    @property
    def label(self) -> str:
        return f"#{self.number}"

    @property
    def priority_word(self) -> str:
        return Priority(self.priority).word


@dataclass
class ColumnView:
    id: int
    key: str
    title: str
    position: int
    wip_limit: int | None
    amber_after_hours: int | None
    red_after_hours: int | None
    tickets: list[TicketView] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.tickets)

    @property
    def wip_state(self) -> str:
        """ "none" without a limit, else "ok", "full" (at the limit) or "over"."""
        if self.wip_limit is None:
            return "none"
        if self.count > self.wip_limit:
            return "over"
        return "full" if self.count == self.wip_limit else "ok"

    @property
    def over_limit(self) -> bool:
        return self.wip_state == "over"


@dataclass
class BoardView:
    id: int
    site_id: int
    name: str
    kind: str
    archived: bool
    version: int
    revision: int
    next_number: int
    columns: list[ColumnView]

    def column(self, column_id: int) -> ColumnView | None:
        return next((c for c in self.columns if c.id == column_id), None)

    @property
    def tickets(self) -> list[TicketView]:
        return [t for c in self.columns for t in c.tickets]


TICKET_FIELDS = (
    "id",
    "number",
    "position",
    "title",
    "description",
    "assignee_name",
    "priority",
    "due_date",
    "version",
    "entered_column_at",
    "created_by_name",
    "created_at",
    "updated_by_name",
    "updated_at",
    "vehicle_registration",
    "customer",
    "service",
    "due_out_at",
    "parts_reason",
    "parts_eta",
    "appointment",
)


def _ticket_view(
    row: Mapping[str, Any], column: Mapping[str, Any], comments: int, at: datetime, tz: ZoneInfo
) -> TicketView:
    finished = column["key"] in FINISHED
    due_out, due = row["due_out_at"], row["due_date"]
    overdue = not finished and (
        (due_out is not None and due_out < at)
        or (due is not None and due < at.astimezone(tz).date())
    )
    return TicketView(
        **{name: row[name] for name in TICKET_FIELDS},
        board_id=row["board"],
        column_id=row["column"],
        assignee_id=row["assignee"],
        comments=comments,
        age="fresh" if finished else age_state(row["entered_column_at"], column, at),
        overdue=overdue,
        in_column_for=max(at - row["entered_column_at"], timedelta(0)),
    )


async def _comment_counts(where: Any) -> dict[int, int]:
    rows = await Comment.select(Comment.ticket, Count()).where(where).group_by(Comment.ticket)
    return {row["ticket"]: row["count"] for row in rows}


COLUMN_FIELDS = ("key", "title", "position", "wip_limit", "amber_after_hours", "red_after_hours")


async def board_view(
    site_id: int, board_id: int, only: list[int] | None = None, at: datetime | None = None
) -> BoardView:
    """A board as its page shows it: columns in order with their cards in order, counts,
    WIP state, comment counts, ageing and overdue flags — or just the columns `only`
    names, for redrawing what a move touched. 4 queries for any number of cards."""
    at = at or now()
    board = await _board(site_id, board_id)
    in_board: Any = BoardColumn.board == board["id"]
    if only is not None:
        in_board &= BoardColumn.id.is_in([i for i in only if row_id(i)] or [-1])
    columns = await BoardColumn.select().where(in_board).order_by(BoardColumn.position)
    shown = [c["id"] for c in columns] or [-1]
    tickets = await (
        Ticket.select()
        .where(Ticket.column.is_in(shown))
        .order_by(Ticket.position)
        .order_by(Ticket.id)
    )
    comments = await _comment_counts(Comment.ticket._.column.is_in(shown))
    views = {c["id"]: ColumnView(id=c["id"], **{n: c[n] for n in COLUMN_FIELDS}) for c in columns}
    by_id = {c["id"]: c for c in columns}
    for row in tickets:
        views[row["column"]].tickets.append(
            _ticket_view(row, by_id[row["column"]], comments.get(row["id"], 0), at, board["tz"])
        )
    return BoardView(
        id=board["id"],
        site_id=site_id,
        name=board["name"],
        kind=board["kind"],
        archived=board["archived"],
        version=board["version"],
        revision=board["revision"],
        next_number=board["next_number"],
        columns=list(views.values()),
    )


async def tickets_by_id(
    site_id: int, ids: list[int], at: datetime | None = None
) -> dict[int, TicketView]:
    """Those of `ids` that are tickets of the site's boards, for redrawing just them:
    2 queries for any number."""
    at = at or now()
    ids = [i for i in ids if row_id(i) is not None] or [-1]
    rows = await (
        Ticket.select(
            *Ticket.all_columns(),
            *(getattr(Ticket.column, n).as_alias(f"column_{n}") for n in COLUMN_FIELDS),
            Ticket.board._.site._.timezone.as_alias("timezone"),
        )
        .where(Ticket.id.is_in(ids) & (Ticket.board.site == site_id))
        .order_by(Ticket.id)
    )
    comments = await _comment_counts(Comment.ticket.is_in([r["id"] for r in rows] or [-1]))
    return {
        row["id"]: _ticket_view(
            row,
            {n: row[f"column_{n}"] for n in COLUMN_FIELDS},
            comments.get(row["id"], 0),
            at,
            ZoneInfo(row["timezone"]),
        )
        for row in rows
    }


async def open_ticket(site_id: int, ticket_id: int, at: datetime | None = None) -> TicketView:
    """One of the site's tickets (for its editor or detail), or DomainError."""
    found = await tickets_by_id(site_id, [ticket_id], at)
    if ticket_id not in found:
        raise DomainError(NO_TICKET)
    return found[ticket_id]


async def comments_of(site_id: int, ticket_id: int) -> list[dict[str, Any]]:
    """A ticket's comments, oldest first (id, author_name, body, created_at): 2 queries."""
    await _board_of_ticket(site_id, ticket_id)
    return await (
        Comment.select(
            Comment.id, Comment.ticket, Comment.author_name, Comment.body, Comment.created_at
        )
        .where(Comment.ticket == ticket_id)
        .order_by(Comment.id)
    )


@dataclass
class BoardSummary:
    id: int
    name: str
    kind: str
    archived: bool
    version: int
    tickets: int


async def boards_of(site_id: int) -> list[BoardSummary]:
    """The site's boards for its list page, open ones first, each with its card count:
    2 queries."""
    boards = await (
        Board.select(Board.id, Board.name, Board.kind, Board.archived, Board.version)
        .where(Board.site == site_id)
        .order_by(Board.archived)
        .order_by(Board.name)
        .order_by(Board.id)
    )
    counts = await (
        Ticket.select(Ticket.board, Count())
        .where(Ticket.board.site == site_id)
        .group_by(Ticket.board)
    )
    per_board = {row["board"]: row["count"] for row in counts}
    return [BoardSummary(**b, tickets=per_board.get(b["id"], 0)) for b in boards]
