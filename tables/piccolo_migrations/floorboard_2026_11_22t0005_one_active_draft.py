"""One active draft per (site, destination).

A partial unique index (PostgreSQL and SQLite both have them): closed drafts stay as
history, and INSERT … ON CONFLICT DO NOTHING against this index lets concurrent first adds
share one draft. Raw SQL, in its own migration, for the reasons given in
floorboard_2026_11_22t0002_membership_unique.py.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-22T02:56:02:000000"
VERSION = "1.38.0"
DESCRIPTION = "one active draft per (site, destination)"


class Draft(Table, tablename="draft"):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="floorboard", description=DESCRIPTION)

    async def create_index():
        await Draft.raw(
            "CREATE UNIQUE INDEX draft_one_active ON draft (site, destination) "
            "WHERE status = 'active'"
        )

    async def drop_index():
        await Draft.raw("DROP INDEX draft_one_active")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
