"""Dispatch reports over the JSON API (SPEC §5.5): the figures of the reports page.

Over whole days in the site's time zone, first to last (the last 30 days by default): how
many of the dispatches created in the period are in each status, and the average time
from creation to completion, in whole seconds, by asset type and by priority, of those
completed in it. The period is read as the page reads it (routes/reports.py), with the
same limits and messages, and the figures are the same function's (tables/dispatches.py).

routes.reports is imported where it is used: importing the pages' modules registers their
areas (the site home's list, in import order), and the app imports the API first.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from starlette.requests import Request

from routes.access import site_of
from routes.api.dispatches import Out
from routes.api.kit import GENERIC, ApiError, Endpoints
from tables.base import InvalidInput
from tables.dispatches import report

if TYPE_CHECKING:
    from routes.reports import Period

api = Endpoints("Reports")


DEFAULT_DAYS = 30  # the reports page's default period (routes.reports.DEFAULT_DAYS)
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: Any) -> Any:
    """A day only as YYYY-MM-DD (not a timestamp, not a date-time)."""
    if isinstance(value, str) and not ISO_DAY.fullmatch(value):
        raise PydanticCustomError("day", "Enter a day like 2026-11-30.")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]


class ReportQuery(BaseModel):
    start: Day | None = Field(
        None,
        description=f"The first day (YYYY-MM-DD, in the site's time zone), from 2000; "
        f"{DEFAULT_DAYS - 1} days before `end` when left out.",
    )
    end: Day | None = Field(
        None,
        description="The last day, included; at most a year ahead; today when left out.",
    )


class StatusCounts(Out):
    created: int
    assigned: int
    in_progress: int
    completed: int
    cancelled: int


class AverageOut(Out):
    label: str = Field(description="The asset type's name, or the priority's.")
    dispatches: int = Field(description="How many were completed in the period.")
    seconds: int = Field(description="Their average time from creation to completion.")


class ReportOut(Out):
    """The site's dispatch figures over a period."""

    site: str
    start: date = Field(description="The first day of the period.")
    end: date = Field(description="The last day of the period (included).")
    starts_at: datetime = Field(description="The period as instants: from this one …")
    ends_at: datetime = Field(description="… to this one (excluded).")
    by_status: StatusCounts = Field(
        description="The dispatches created in the period, by the status they are in now."
    )
    completed: int = Field(description="How many were completed in the period.")
    by_asset_type: list[AverageOut]
    by_priority: list[AverageOut]


def _period(query: ReportQuery, today: date) -> Period:
    """The period asked for, within the page's limits, or 422 at each field at fault."""
    from routes.reports import Period, read_day

    errors: dict[str, str] = {}
    days: dict[str, date | None] = {}
    for name in ("start", "end"):
        value = getattr(query, name)
        days[name] = None
        if value is not None:
            days[name], why = read_day(value.isoformat(), today)
            if why:
                errors[name] = why
    if errors:
        raise ApiError(422, GENERIC[422], errors)
    last = days["end"] or today
    first = days["start"] or last - timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        message = "The period ends before it starts: choose an end on or after the start."
        raise ApiError(422, GENERIC[422], {"end": message})
    return Period(first, last)


@api.get("/s/{site}/reports", query=ReportQuery, response=ReportOut)
async def report_get(request: Request, query: ReportQuery) -> ReportOut:
    """Counts by status and average times to complete, over a period of whole days."""
    access = site_of(request)
    tz = access.tz
    period = _period(query, datetime.now(tz).date())
    starts_at, ends_at = period.bounds(tz)
    try:
        figures = await report(access.site_id, starts_at, ends_at)
    except InvalidInput as problem:  # the period is checked above: not expected
        raise ApiError(422, GENERIC[422], dict(problem.errors)) from None
    averages = ("label", "dispatches", "seconds")
    return ReportOut(
        site=access.slug,
        start=period.first,
        end=period.last,
        starts_at=starts_at,
        ends_at=ends_at,
        by_status=StatusCounts(**figures.by_status),
        completed=figures.completed,
        by_asset_type=[
            AverageOut(**{k: getattr(a, k) for k in averages}) for a in figures.by_asset_type
        ],
        by_priority=[
            AverageOut(**{k: getattr(a, k) for k in averages}) for a in figures.by_priority
        ],
    )
