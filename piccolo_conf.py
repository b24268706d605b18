"""Piccolo's engine and apps: SQLite under var/ by default, PostgreSQL when DATABASE_URL says so."""

import os
from pathlib import Path

from piccolo.conf.apps import AppRegistry

from settings import VAR, is_postgres_url

DATABASE_URL = os.environ.get("DATABASE_URL", "")

if is_postgres_url(DATABASE_URL):
    from piccolo.engine.postgres import PostgresEngine

    DB = PostgresEngine(config={"dsn": DATABASE_URL})
else:
    from piccolo.engine.sqlite import SQLiteEngine

    sqlite_path = Path(os.environ.get("SQLITE_PATH", str(VAR / "floorboard.sqlite")))
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    # timeout: with one writer at a time, a waiting writer queues instead of failing.
    DB = SQLiteEngine(path=str(sqlite_path), timeout=30)

APP_REGISTRY = AppRegistry(
    apps=[
        "piccolo.apps.user.piccolo_app",
        "piccolo_api.session_auth.piccolo_app",
        "piccolo_admin.piccolo_app",
        "tables.piccolo_app",
    ]
)
