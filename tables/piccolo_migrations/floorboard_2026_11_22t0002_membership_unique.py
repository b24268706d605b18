"""One role per (user, site).

A raw unique index rather than Piccolo's Unique(): that becomes ALTER TABLE … ADD CONSTRAINT,
which SQLite does not have. Its own migration because raw steps run before the tables of the
same migration are created.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-22T02:32:11:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique (user, site) membership"


class Membership(Table, tablename="membership"):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="floorboard", description=DESCRIPTION)

    async def create_index():
        await Membership.raw('CREATE UNIQUE INDEX membership_user_site ON membership ("user", site)')

    async def drop_index():
        await Membership.raw("DROP INDEX membership_user_site")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
