"""A board's column keys and ticket numbers are unique; a column's cards are read in order.

Raw SQL, in its own migration, for the reasons given in
floorboard_2026_11_22t0002_membership_unique.py (Piccolo's composite Unique() becomes
ALTER TABLE … ADD CONSTRAINT, which SQLite lacks; raw steps run before the tables of the
same migration exist). Plain CREATE INDEX runs on PostgreSQL and SQLite alike.

(column, position) is not unique on purpose: a renumbering UPDATE moves positions through
each other, which a unique index would refuse row by row; the write rules in
tables/boards.py keep each column's positions 0..n-1.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-01T23:42:29:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique column keys and ticket numbers per board; cards by (column, position)"

INDEXES = [
    ("board_column_board_key", 'CREATE UNIQUE INDEX board_column_board_key ON board_column (board, "key")'),
    ("ticket_board_number", "CREATE UNIQUE INDEX ticket_board_number ON ticket (board, number)"),
    ("ticket_column_position", 'CREATE INDEX ticket_column_position ON ticket ("column", "position")'),
]


class Ticket(Table, tablename="ticket"):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="floorboard", description=DESCRIPTION)

    async def create_indexes():
        for _, sql in INDEXES:
            await Ticket.raw(sql)

    async def drop_indexes():
        for name, _ in INDEXES:
            await Ticket.raw(f"DROP INDEX {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
