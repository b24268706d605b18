"""Slugs for the organisations that exist ("Demo Logistics" -> "demo-logistics"), then
unique indexes: organisation slugs (NULLs allowed: an organisation without a slug simply
has no /o/ pages) and one account row per user.

Raw SQL in its own migration, for the reasons given in
floorboard_2026_11_22t0002_membership_unique.py. Slugs are derived in Python with the
same function the app uses, with a numeric suffix should two names give the same slug.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-05T00:13:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "organisation slugs, unique slugs and accounts"

INDEXES = [
    ("organisation_slug_unique", "CREATE UNIQUE INDEX organisation_slug_unique ON organisation (slug)"),
    ("account_user_unique", 'CREATE UNIQUE INDEX account_user_unique ON account ("user")'),
    ("account_token_hash", "CREATE INDEX account_token_hash ON account (token_hash)"),
]


class Organisation(Table, tablename="organisation"):
    pass


async def forwards():
    from tables.people import slug_from_name

    manager = MigrationManager(migration_id=ID, app_name="floorboard", description=DESCRIPTION)

    async def fill_slugs_and_index():
        rows = await Organisation.raw("SELECT id, name, slug FROM organisation ORDER BY id")
        taken = {row["slug"] for row in rows if row["slug"]}
        for row in rows:
            if row["slug"]:
                continue
            base = slug_from_name(row["name"])
            slug, n = base, 1
            while slug in taken:
                n += 1
                slug = f"{base[:45]}-{n}"
            taken.add(slug)
            await Organisation.raw("UPDATE organisation SET slug = {} WHERE id = {}", slug, row["id"])
        for _, sql in INDEXES:
            await Organisation.raw(sql)

    async def drop_indexes():
        for name, _ in INDEXES:
            await Organisation.raw(f"DROP INDEX {name}")

    manager.add_raw(fill_slugs_and_index)
    manager.add_raw_backwards(drop_indexes)
    return manager
