"""What every area's routes share: templates, the page-or-fragment helper, form errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True, slots=True)
class Area:
    """One area of a site, as listed on its home page and in the navigation."""

    title: str
    route: str  # the route name of the area's page; it takes `site`
    blurb: str


# Areas register themselves here as they are built (routes/<area>.py appends).
AREAS: list[Area] = []


def frame(request: Request) -> dict[str, Any]:
    """What base.html needs on every page: who is signed in, the site, the CSRF token."""
    user = request.scope.get("user")
    me = user.user if user is not None and user.is_authenticated else None
    return {
        "me": me,
        "site": getattr(request.state, "site", None),
        "csrftoken": request.scope.get("csrftoken", ""),
        "site_areas": AREAS,
    }


templates = Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[frame])


def kg(grams: int) -> str:
    return f"{grams / 1000:.1f}"


def ago(moment: datetime) -> str:
    """ "2 min ago" / "in 23 h", as rendered; app.js keeps `time[data-ago]` fresh."""
    seconds = (moment - datetime.now(UTC)).total_seconds()
    past, span = seconds < 0, abs(seconds)
    if span < 45:
        return "just now" if past else "in under a minute"
    if span < 3600:
        amount = f"{round(span / 60)} min"
    elif span < 86400 * 2:
        amount = f"{round(span / 3600)} h"
    else:
        amount = f"{round(span / 86400)} days"
    return f"{amount} ago" if past else f"in {amount}"


def now_local(timezone: str) -> str:
    return datetime.now(ZoneInfo(timezone)).strftime("%d %b %Y %H:%M")


templates.env.filters.update(kg=kg, ago=ago)
templates.env.globals["now_local"] = now_local


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def wants_fragment(request: Request) -> bool:
    """True when htmx asked for part of a page rather than a whole one.

    htmx 4 says "full" when it targets <body> (boosted links, hx-select) and for history
    restores, which need the whole page; everything else is a partial swap.
    """
    return (
        is_htmx(request)
        and request.headers.get("hx-request-type") == "partial"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def render(
    request: Request,
    page: str,
    context: Mapping[str, Any] | None = None,
    *,
    fragment: str | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The one place that decides between a full page and a fragment of it.

    `fragment` is the `_`-prefixed template that owns the region htmx targets; it gets the
    same context, so a handler builds its context once for both.
    """
    name = fragment if fragment and wants_fragment(request) else page
    return templates.TemplateResponse(
        request, name, dict(context or {}), status_code=status_code, headers=headers
    )


async def form_of(request: Request) -> Mapping[str, Any]:
    """The posted form. piccolo_api's CSRF middleware may already have read the body (to
    find the token field); it leaves the parsed form in the scope, and the body is gone."""
    return request.scope.get("form") or await request.form()


def redirect(request: Request, url: str) -> Response:
    """After a successful POST: 303 for plain forms, HX-Location for htmx (no page swap)."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Location": url})
    return RedirectResponse(url, status_code=303)


class FormErrors(dict[str, str]):
    """Field name -> message, rendered beside the field by the `field` macro."""

    def add(self, field: str, message: str) -> None:
        self.setdefault(field, message)


def text_field(
    form: Mapping[str, Any], name: str, errors: FormErrors, *, label: str, max_length: int
) -> str:
    """A required single-line text value, stripped; records a readable error when bad."""
    raw = form.get(name)
    value = raw.strip() if isinstance(raw, str) else ""
    if not value:
        errors.add(name, f"Enter {label}.")
    elif len(value) > max_length:
        errors.add(name, f"{label.capitalize()} is too long (at most {max_length} characters).")
    elif any(ord(ch) < 32 for ch in value):
        errors.add(name, f"{label.capitalize()} has characters that cannot be typed.")
    return value
