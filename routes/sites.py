"""The signed-in user's way in: the site picker at /, and each site's live home page.

The site home shows who is here (presence) and the site activity list, which every area
feeds and which doubles as the audit trail. Anyone at the site can post a short note to it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from routes.access import login_url, site_of, user_id
from routes.activity import (
    activity_lines,
    activity_region,
    publish_site,
    record_activity,
    site_topic,
)
from routes.common import AREAS, FormErrors, form_of, is_htmx, redirect, render, text_field
from routes.live import LivePage, partial
from routes.notices import notice_region
from tables.activity import Activity
from tables.base import write_tx
from tables.people import Membership, SiteAccess, display_name, sites_of

NOTE_MAX = 280


async def home_regions(request: Request, access: SiteAccess) -> str:
    """Every live region of the site home, fresh (for a resync or a poll)."""
    notice = partial("notice", await notice_region(request, access))
    return notice + await activity_region(access)


HOME = LivePage("site_home", topics=lambda access: [site_topic(access)], regions=home_regions)


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
        "notice_html": await notice_region(request, access),
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
    await publish_site(request, "note")
    if is_htmx(request):
        # The new line reaches this page through the stream too; here: a fresh, empty form.
        return render(request, "sites/_note_form.html", {"errors": FormErrors(), "note": ""})
    return redirect(request, request.url_for("site_home", site=site_of(request).slug).path)


routes = [Route("/", home, name="home")]
site_routes = [
    Route("/", site_home, name="site_home"),
    Route("/notes", site_note, methods=["POST"], name="site_note"),
    *HOME.routes(),
]
