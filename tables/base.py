"""What every area's tables share: the domain error and the write transaction."""

from __future__ import annotations

from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.sqlite import TransactionType


class DomainError(ValueError):
    """A rule was broken; the message is a sentence a user can read.

    `field` names the form field the message belongs to, when there is one.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def write_tx(db: Engine) -> Any:
    """One transaction for a read-decide-write action.

    SQLite gets an IMMEDIATE transaction (the write lock is taken up front, so two writers
    queue instead of one failing with "database is locked"); PostgreSQL's transaction()
    takes no transaction type.
    """
    if db.engine_type == "sqlite":
        return db.transaction(transaction_type=TransactionType.immediate)
    return db.transaction()
