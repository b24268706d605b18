"""The signed-in user's way in: the site picker at /, and each site's live home page.

The site home shows who is here (presence) and the site activity list, which every area
feeds and which doubles as the audit trail. Anyone at the site can post a short note to it.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from routes.access import login_url, site_of, user_id
from routes.common import AREAS, FormErrors, form_of, is_htmx, redirect, render, text_field
from routes.live import LivePage, partial, render_fragment
from tables.activity import Activity
from tables.base import write_tx
from tables.people import Membership, SiteAccess, display_name, sites_of

NOTE_MAX = 280
ACTIVITY_SHOWN = 20


def site_topic(access: SiteAccess) -> str:
    """The site's activity topic: every area publishes its activity lines here."""
    return f"site:{access.site_id}"


async def activity_lines(access: SiteAccess) -> list[dict]:
    """The latest activity, with times already in the site's time zone."""
    tz = ZoneInfo(access.timezone)
    rows = await Activity.recent(access.site_id, ACTIVITY_SHOWN)
    return [{**row, "at": row["created_at"].astimezone(tz).strftime("%H:%M")} for row in rows]


async def home_regions(access: SiteAccess) -> str:
    html = render_fragment("sites/_activity.html", activity=await activity_lines(access))
    return partial("activity", html)


HOME = LivePage("site_home", topics=lambda access: [site_topic(access)], regions=home_regions)


async def record_activity(
    request: Request, verb: str, summary: str, entity_type: str = "", entity_id: int | None = None
) -> None:
    """Add a line to the site's trail (inside the action's transaction)."""
    access = site_of(request)
    await Activity.record(
        access.site_id, access.user_id, access.display_name, verb, summary, entity_type, entity_id
    )


async def publish_activity(request: Request, kind: str) -> None:
    """After commit: everyone on the site home sees the new line (rendered once)."""
    access = site_of(request)
    await request.app.state.hub.publish(
        site_topic(access), kind, access.username, await home_regions(access)
    )


async def home(request: Request) -> Response:
    uid = user_id(request)
    if uid is None:
        return RedirectResponse(login_url("/"), status_code=303)
    sites = await sites_of(uid)
    if len(sites) == 1:
        return RedirectResponse(request.url_for("site_home", site=sites[0]["slug"]), 303)
    return render(request, "sites/picker.html", {"sites": sites})


async def site_home(request: Request, errors: FormErrors | None = None, note: str = "") -> Response:
    access = site_of(request)
    members = await (
        Membership.select(
            Membership.user.username.as_alias("username"),
            Membership.user.first_name.as_alias("first"),
            Membership.user.last_name.as_alias("last"),
            Membership.role,
        )
        .where(Membership.site == access.site_id)
        .order_by(Membership.user.username)
    )
    people = [
        {"name": display_name(m["first"], m["last"], m["username"]), "role": m["role"]}
        for m in members
    ]
    context = {
        "areas": AREAS,
        "people": people,
        "activity": await activity_lines(access),
        "live": await HOME.view(request),
        "errors": errors or FormErrors(),
        "note": note,
    }
    status = 422 if errors else 200
    return render(
        request, "sites/home.html", context, fragment="sites/_note_form.html", status_code=status
    )


async def site_note(request: Request) -> Response:
    form = await form_of(request)
    errors = FormErrors()
    note = text_field(form, "note", errors, label="a note", max_length=NOTE_MAX)
    if errors:
        return await site_home(request, errors, note)
    async with write_tx(Activity._meta.db):
        await record_activity(request, "note", note)
    await publish_activity(request, "note")
    if is_htmx(request):
        # The new line reaches this page through the stream too; here: a fresh, empty form.
        return render(
            request, "sites/home.html", await _empty_form(), fragment="sites/_note_form.html"
        )
    return redirect(request, request.url_for("site_home", site=site_of(request).slug).path)


async def _empty_form() -> dict:
    return {"errors": FormErrors(), "note": ""}


routes = [Route("/", home, name="home")]
site_routes = [
    Route("/", site_home, name="site_home"),
    Route("/notes", site_note, methods=["POST"], name="site_note"),
    *HOME.routes(),
]
