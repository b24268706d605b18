"""What every area's tables share: the domain error and the write transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from piccolo.engine import engine_finder
from piccolo.engine.base import Engine
from piccolo.engine.sqlite import TransactionType
from piccolo.query.methods.select import Select
from piccolo.table import Table


class DomainError(ValueError):
    """A rule was broken; the message is a sentence a user can read.

    `field` names the form field the message belongs to, when there is one.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# What is to happen once the outermost write_tx of this task commits (None: not in one).
_after_commit: ContextVar[list[Callable[[], None]] | None] = ContextVar(
    "after_commit", default=None
)


@asynccontextmanager
async def write_tx(db: Engine | None = None) -> AsyncIterator[None]:
    """One transaction for a read-decide-write action (on the app's one engine).

    SQLite gets an IMMEDIATE transaction (the write lock is taken up front, so two writers
    queue instead of one failing with "database is locked"); PostgreSQL's transaction()
    takes no transaction type. Once the outermost one commits, what `after_commit` was
    given runs; if it rolls back, that is dropped.
    """
    db = db or engine_finder()
    assert db is not None, "no Piccolo engine configured"
    if db.engine_type == "sqlite":
        transaction = db.transaction(transaction_type=TransactionType.immediate)
    else:
        transaction = db.transaction()
    if _after_commit.get() is not None:  # nested: the outer one commits, or not
        async with transaction:
            yield
        return
    pending: list[Callable[[], None]] = []
    token = _after_commit.set(pending)
    try:
        async with transaction:
            yield
    finally:
        _after_commit.reset(token)
    for then in pending:
        then()


def locking(query: Select, strength: Literal["UPDATE", "SHARE"] = "UPDATE") -> Select:
    """`query`, locking the rows it reads until the transaction ends (PostgreSQL's
    SELECT … FOR UPDATE / FOR SHARE): a rule checked on a row then holds until commit.
    SQLite has no row locks and needs none: write_tx's IMMEDIATE transaction already
    lets one writer at a time in."""
    if query.table._meta.db.engine_type == "sqlite":
        return query
    return query.lock_rows(strength)


def after_commit(then: Callable[[], None]) -> None:
    """Run `then` once the current write_tx has committed (at once outside one); never
    if it rolls back."""
    pending = _after_commit.get()
    if pending is None:
        then()
    else:
        pending.append(then)


class StaleVersion(DomainError):
    """A save based on a version that is no longer current (optimistic concurrency).

    `current` is the row as it is now; `changes` maps each field whose current value
    differs from what the user submitted to (what they submitted, what it is now), so the
    409 page can show what changed under them.
    """

    def __init__(self, current: dict[str, Any], changes: dict[str, tuple[Any, Any]]) -> None:
        who = current.get("updated_by_name") or "someone else"
        super().__init__(f"{who} saved a newer version while you were editing.")
        self.current = current
        self.changes = changes


async def update_versioned(
    table: type[Table],
    row_id: int,
    expected_version: int,
    values: dict[str, Any],
    compare: tuple[str, ...] = (),
    where: Any = None,
) -> dict[str, Any]:
    """Save `values` if the row is still at `expected_version`; bump the version.

    One conditional UPDATE (… WHERE id = ? AND version = ?), so two concurrent saves of
    the same version cannot both win. Returns the saved row, or raises StaleVersion with
    the current row when someone else saved first. `compare` names the fields a user
    edits (the ones a 409 page lists as changed); by default all of `values`. `where`
    narrows the rows that may be saved (an active draft, say).
    """
    columns = {name: table._meta.get_column_by_name(name) for name in values}
    version: Any = table._meta.get_column_by_name("version")  # an Integer column
    pk = table._meta.primary_key
    condition = (pk == row_id) & (version == expected_version)
    if where is not None:
        condition &= where
    saved = await (
        table.update({**{columns[n]: v for n, v in values.items()}, version: version + 1})
        .where(condition)
        .returning(*table._meta.columns)
    )
    if saved:
        return saved[0]
    current = await table.select().where(pk == row_id).first()
    if current is None:
        raise DomainError("This was deleted while you were editing.")
    changes = {n: (values[n], current[n]) for n in compare or values if current[n] != values[n]}
    raise StaleVersion(current, changes)


class InvalidInput(DomainError):
    """Several fields are wrong at once: field name -> message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(next(iter(errors.values())), field=next(iter(errors)))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is doing something, as the trail records it."""

    id: int
    name: str


def kg(grams: int) -> str:
    """Grams as kilograms to one decimal, exactly ("12.5"), for pages and messages."""
    return f"{Decimal(grams) / 1000:.1f}"
