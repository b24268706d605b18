"""Dispatches over the JSON API (SPEC §5.5): list and get, at one site.

The models say what goes in and out, and are the OpenAPI document's schemas. The queries
are here until the dispatches area grows its own (tables/dispatches.py): they read only
the core columns (id, number, title, status, site, created_at), so richer fields are added
to `DispatchOut` and its select, and nothing else changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from routes.access import site_of
from routes.api.kit import ApiError, Endpoints, RowId
from routes.forms import INT_MAX
from tables.dispatches import Dispatch, DispatchStatus

api = Endpoints("Dispatches")

LIMIT_DEFAULT = 50
LIMIT_MAX = 200


class DispatchOut(BaseModel):
    """A dispatch."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: int
    number: str = Field(description="Readable and unique, e.g. D-00042.")
    title: str
    status: DispatchStatus
    site: str = Field(description="The slug of the dispatch's site.")
    created_at: datetime


class DispatchPage(BaseModel):
    """One page of a site's dispatches, newest first."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    items: list[DispatchOut]
    next: int | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class DispatchFilter(BaseModel):
    status: DispatchStatus | None = Field(None, description="Only dispatches in this status.")
    limit: int = Field(LIMIT_DEFAULT, ge=1, le=LIMIT_MAX, description="At most this many.")
    cursor: int | None = Field(
        None, ge=1, le=INT_MAX, description="The `next` of the previous page."
    )


class DispatchRef(BaseModel):
    id: RowId


COLUMNS = (
    Dispatch.id,
    Dispatch.number,
    Dispatch.title,
    Dispatch.status,
    Dispatch.created_at,
)


def _out(row: dict[str, Any], slug: str) -> DispatchOut:
    return DispatchOut(**row, site=slug)


@api.get("/s/{site}/dispatches", query=DispatchFilter, response=DispatchPage)
async def dispatch_list(request: Request, query: DispatchFilter) -> DispatchPage:
    """The site's dispatches, newest first, a page at a time."""
    site = site_of(request)
    where: Any = Dispatch.site == site.site_id
    if query.status is not None:
        where &= Dispatch.status == query.status.value
    if query.cursor is not None:
        where &= Dispatch.id < query.cursor
    rows = await (
        Dispatch.select(*COLUMNS)
        .where(where)
        .order_by(Dispatch.id, ascending=False)
        .limit(query.limit + 1)
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return DispatchPage(
        items=[_out(r, site.slug) for r in rows], next=rows[-1]["id"] if more else None
    )


@api.get("/s/{site}/dispatches/{id}", params=DispatchRef, response=DispatchOut)
async def dispatch_get(request: Request, params: DispatchRef) -> DispatchOut:
    """One dispatch of the site."""
    site = site_of(request)
    row = await (
        Dispatch.select(*COLUMNS)
        .where((Dispatch.id == params.id) & (Dispatch.site == site.site_id))
        .first()
    )
    if row is None:
        raise ApiError(404, "There is no such dispatch at this site.")
    return _out(row, site.slug)
