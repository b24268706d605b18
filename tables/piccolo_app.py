import os

from piccolo.conf.apps import AppConfig, table_finder

HERE = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="floorboard",
    migrations_folder_path=os.path.join(HERE, "piccolo_migrations"),
    table_classes=table_finder(
        modules=[
            "tables.people",
            "tables.activity",
            "tables.notices",
            "tables.assets",
            "tables.dispatches",
            "tables.drafts",
            "tables.boards",
            "tables.appointments",
            "tables.stocktakes",
            "tables.orgs",
            "tables.apitokens",
        ],
        exclude_imported=True,
    ),
    migration_dependencies=["piccolo.apps.user.piccolo_app"],
    commands=[],
)
