"""The route modules, one per area. Importing the package registers the `:id` path
convertor, which every area's routes use for row ids."""

from routes import convertors as _convertors  # noqa: F401
