"""Dispatch reports (seed 004; SPEC §5.5): /s/{site}/dispatches/reports and its CSV.

Over a period of whole days in the site's time zone, chosen with a plain GET form (the
last 30 days by default): how many of the dispatches created in it are in each status,
and the average time from creation to completion, by asset type and by priority, of those
completed in it. The charts are SVG drawn by a Jinja template (no script, they print as
they show) with the same figures as tables beside them; the CSV has them exactly (whole
seconds). A period that cannot be read is said at its field (422), with the default
period's report below: never a 500.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from routes.access import site_of
from routes.common import path_for, render, templates
from routes.forms import FormErrors, typeable
from routes.live import FormState
from routes.stocktakes import FORMULA_START
from tables.dispatches import WORDS, DispatchStatus, Report, report

DEFAULT_DAYS = 30
EARLIEST = date(2000, 1, 1)
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
LIKE = "Enter a day like 2026-11-30."


# -- the period -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole days in the site's time zone, first to last, both included."""

    first: date
    last: date

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC: midnight before the first day to midnight after the last."""
        start = datetime.combine(self.first, time(), tz)
        end = datetime.combine(self.last + timedelta(days=1), time(), tz)
        return start.astimezone(UTC), end.astimezone(UTC)

    @property
    def query(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def default_period(today: date) -> Period:
    return Period(today - timedelta(days=DEFAULT_DAYS - 1), today)


def read_day(raw: str, today: date) -> tuple[date | None, str]:
    """A day as a date field sends it (YYYY-MM-DD), from 2000 to a year ahead."""
    text = raw.strip()
    if len(text) > 10 or not typeable(text) or not DATE.fullmatch(text):
        return None, LIKE
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None, f"{text} is not a day of the calendar. {LIKE}"
    if day < EARLIEST:
        return None, "Choose a day in 2000 or later."
    if day > today + timedelta(days=366):
        return None, "Choose a day at most a year ahead."
    return day, ""


def read_period(params: Mapping[str, str], today: date) -> tuple[Period, FormState]:
    """The period the query asks for (missing ends: the last day is today, the first
    29 days before it), or the default one with a message per field that was wrong."""
    typed = {name: str(params.get(name, ""))[:40] for name in ("from", "to")}
    errors = FormErrors()
    days: dict[str, date | None] = {}
    for name, value in typed.items():
        days[name], why = read_day(value, today) if value.strip() else (None, "")
        if why:
            errors.add(name, why)
    last = days["to"] or today
    first = days["from"] or last - timedelta(days=DEFAULT_DAYS - 1)
    if not errors and last < first:
        errors.add(
            "to", "The period ends before it starts: choose a last day on or after the first."
        )
    if errors:
        return default_period(today), FormState(errors, typed)
    return Period(first, last), FormState(FormErrors(), typed)


# -- what the page shows ----------------------------------------------------------------------


def span(seconds: int) -> str:
    """An average time as people say it: "2 h 15 min", "1 d 3 h 5 min", "40 s"."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = (seconds + 30) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours or days:
        parts.append(f"{hours} h")
    parts.append(f"{minutes} min")
    return " ".join(parts)


@dataclass
class Bar:
    label: str
    value: int
    text: str  # the value as the page says it
    y: int = 0
    width: int = 0


@dataclass
class BarChart:
    """Horizontal bars from a common axis, in SVG units (positions as attributes, colours
    as classes: nothing inline under our CSP)."""

    key: str
    title: str
    caption: str
    rows: str  # the table's heading for what the bars are
    figure: str  # and for their figures
    bars: list[Bar] = field(default_factory=list)
    height: int = 0

    WIDTH, LABEL, VALUES, ROW = 720, 170, 150, 30

    def __post_init__(self) -> None:
        room = self.WIDTH - self.LABEL - self.VALUES - 10
        most = max((b.value for b in self.bars), default=0)
        for n, bar in enumerate(self.bars):
            bar.y = 10 + n * self.ROW
            bar.width = max(round(bar.value * room / most), 1) if most and bar.value else 0
        self.height = 20 + max(len(self.bars), 1) * self.ROW


COMPLETED = "Creation to completion, of the dispatches completed in the period (how many)."


def charts_of(figures: Report) -> list[BarChart]:
    counts = figures.by_status
    return [
        BarChart(
            "status", "Dispatches by status", "Of the dispatches created in the period.",
            "Status", "Dispatches",
            [Bar(WORDS[s], counts[s.value], str(counts[s.value])) for s in DispatchStatus],
        ),
        BarChart(
            "asset-type", "Average time to complete by asset type", COMPLETED,
            "Asset type", "Average time (completed)",
            [Bar(a.label, a.seconds, f"{span(a.seconds)} ({a.dispatches})")
             for a in figures.by_asset_type],
        ),
        BarChart(
            "priority", "Average time to complete by priority", COMPLETED,
            "Priority", "Average time (completed)",
            [Bar(a.label, a.seconds, f"{span(a.seconds)} ({a.dispatches})")
             for a in figures.by_priority],
        ),
    ]  # fmt: skip


templates.env.filters.update(span=span)


async def period_report(request: Request) -> tuple[Period, FormState, Report]:
    access = site_of(request)
    period, form = read_period(request.query_params, datetime.now(access.tz).date())
    start, end = period.bounds(access.tz)
    return period, form, await report(access.site_id, start, end)


# -- pages ----------------------------------------------------------------------------------


async def reports_page(request: Request) -> Response:
    access = site_of(request)
    period, form, figures = await period_report(request)
    csv_url = path_for("dispatch_reports_csv", site=access.slug) + "?" + urlencode(period.query)
    context = {
        "period": period,
        "form": form,
        "report": figures,
        "created": sum(figures.by_status.values()),
        "charts": charts_of(figures),
        "csv_url": csv_url,
    }
    status_code = 422 if form.errors else 200
    return render(request, "reports/page.html", context, status_code=status_code)


CSV_COLUMNS = ("section", "name", "dispatches", "average_seconds", "average")


def guarded(text: str) -> str:
    """A text cell a spreadsheet would run as a formula (CSV injection), made inert."""
    return "'" + text if text.startswith(FORMULA_START) else text


async def reports_csv(request: Request) -> Response:
    """The page's figures, UTF-8 with a BOM (spreadsheets opened by double-click read it
    right); averages exact, in whole seconds, and as the page says them."""
    access = site_of(request)
    period, form, figures = await period_report(request)
    if form.errors:
        raise HTTPException(422, " ".join(form.errors.values()))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for status in DispatchStatus:
        writer.writerow(["status", WORDS[status], figures.by_status[status.value], "", ""])
    for section, averages in (("asset_type", figures.by_asset_type),
                              ("priority", figures.by_priority)):  # fmt: skip
        for a in averages:
            writer.writerow([section, guarded(a.label), a.dispatches, a.seconds, span(a.seconds)])
    name = f"dispatches-{access.slug}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- wiring -----------------------------------------------------------------------------------

# Before any /dispatches/{dispatch} route in the mount (main.py lists these first): the id
# convertor takes digits only, but a route that took any text would swallow "reports".
routes = [
    Route("/dispatches/reports", reports_page, name="dispatch_reports"),
    Route("/dispatches/reports.csv", reports_csv, name="dispatch_reports_csv"),
]
