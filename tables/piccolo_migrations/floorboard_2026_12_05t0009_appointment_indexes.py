"""A site's appointments are read by day, a bay's by time (the overlap check).

Raw SQL, in its own migration, for the reasons given in
floorboard_2026_11_22t0002_membership_unique.py (raw steps run before the tables of the
same migration exist). Plain CREATE INDEX runs on PostgreSQL and SQLite alike.

No exclusion constraint keeps a bay's bookings apart: SQLite has none, and a cancelled
booking must free its slot. The rule lives in tables/appointments.py (the bay row lock).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-05T00:09:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "appointments by (site, starts_at) and (bay, starts_at)"

INDEXES = [
    ("appointment_site_starts", "CREATE INDEX appointment_site_starts ON appointment (site, starts_at)"),
    ("appointment_bay_starts", "CREATE INDEX appointment_bay_starts ON appointment (bay, starts_at)"),
]


class Appointment(Table, tablename="appointment"):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="floorboard", description=DESCRIPTION)

    async def create_indexes():
        for _, sql in INDEXES:
            await Appointment.raw(sql)

    async def drop_indexes():
        for name, _ in INDEXES:
            await Appointment.raw(f"DROP INDEX {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
