"""floorboard's tables: a Piccolo app, one module per area."""
