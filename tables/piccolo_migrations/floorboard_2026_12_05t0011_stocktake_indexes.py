"""Stocktake uniqueness and lookups.

* one item per SKU per site (the scanner box finds a line by SKU);
* one line per item per stocktake: backs populate's "a second press adds nothing";
* one applied count per (line, client id): an offline count sent twice is applied once;
* a site's stocktakes by period; a line's movements are found by the FK index.

Raw SQL, in its own migration, for the reasons given in
floorboard_2026_11_22t0002_membership_unique.py (raw steps run before the tables of the
same migration exist; SQLite has no ALTER TABLE … ADD CONSTRAINT). Plain CREATE [UNIQUE]
INDEX runs on PostgreSQL and SQLite alike.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-05T00:11:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "stocktake unique and composite indexes"

INDEXES = [
    ("item_site_sku", "CREATE UNIQUE INDEX item_site_sku ON item (site, sku)"),
    (
        "stocktake_line_stocktake_item",
        "CREATE UNIQUE INDEX stocktake_line_stocktake_item ON stocktake_line (stocktake, item)",
    ),
    (
        "stocktake_applied_count_line_client",
        "CREATE UNIQUE INDEX stocktake_applied_count_line_client"
        " ON stocktake_applied_count (line, client_id)",
    ),
    ("stocktake_site_period", "CREATE INDEX stocktake_site_period ON stocktake (site, period_start)"),
]


class Item(Table, tablename="item"):
    pass


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="floorboard", description=DESCRIPTION)

    async def create_indexes():
        for _, sql in INDEXES:
            await Item.raw(sql)

    async def drop_indexes():
        for name, _ in INDEXES:
            await Item.raw(f"DROP INDEX {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
