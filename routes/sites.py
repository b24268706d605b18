"""The signed-in user's way in: the site picker at /, and each site's live home page.

The site home shows who is here (presence), the pinned site notice (edited under a soft
lock) and the site activity list, which every area feeds and which doubles as the audit
trail. Anyone at the site can post a short note to it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from routes.access import login_url, site_of, user_id
from routes.activity import activity_lines, activity_region, site_topic
from routes.common import AREAS, best_effort, render, services
from routes.editing import LockEditor
from routes.forms import read_form
from routes.live import Change, Forms, FormSpec, LiveArea, Render
from routes.notices import load_notice, notice_context, notice_region, save_notice
from tables.activity import Activity
from tables.orgs import managed_by
from tables.people import members_of, sites_of

NOTE_MAX = 280


async def render_home(view: Render) -> str:
    """The site home's changed regions: the notice (its text or who edits it) and, for a
    fresh page, the whole activity list (new lines travel on their own)."""
    html = ""
    if view.change.redraws("notice"):
        holder = await best_effort(view.locks.holder(NOTICE.key(view.site, {})), None)
        html += await notice_region(view.site, holder.holder if holder else None)
    if view.change.redraws("activity"):
        html += await activity_region(view.site)
    return html


HOME = LiveArea(
    "site_home",
    render=render_home,
    regions={"notice", "activity"},
    topic=lambda site, params: site_topic(site),
    forms={"note": FormSpec("sites/_note_form.html", "note-form", "note")},
)
NOTICE = LockEditor(
    HOME,
    "notice",
    load=load_notice,
    save=save_notice,
    template="notices/edit.html",
    redraw=lambda params: Change(whole={"notice"}),
)


async def home(request: Request) -> Response:
    uid = user_id(request)
    if uid is None:
        return RedirectResponse(login_url("/"), status_code=303)
    sites = await sites_of(uid)
    if len(sites) == 1:
        return RedirectResponse(request.url_for("site_home", site=sites[0]["slug"]), 303)
    context = {"sites": sites, "managed": await managed_by(uid)}
    return render(request, "sites/picker.html", context)


@HOME.page
async def site_home(request: Request, forms: Forms | None = None) -> Response:
    access = site_of(request)
    site = access.ref
    people = await members_of(site.id)
    holder = await best_effort(services(request).locks.holder(NOTICE.key(site, {})), None)
    context = {
        "areas": AREAS,
        "people": people,
        "activity": await activity_lines(site),
        **await notice_context(site, holder.holder if holder else None),
        "live": await HOME.view(request),
        "forms": forms or Forms(),
    }
    return render(request, "sites/home.html", context)


async def site_note(request: Request) -> Response:
    form = await read_form(request)
    note = form.text("note", label="a note", max_length=NOTE_MAX)
    if form.errors:
        return await HOME.refuse(request, "note", form.errors, form.values)
    # One INSERT, so its own transaction: BEGIN and COMMIT around it would be two more
    # round trips for nothing (the line is published once the INSERT has committed).
    await Activity.record(site_of(request).site_id, site_of(request).actor, "note", note)
    return await HOME.done(request, Change(), kind="note", reset=["note"])


routes = [Route("/", home, name="home")]
site_routes = [
    Route("/", site_home, name="site_home"),
    Route("/notes", site_note, methods=["POST"], name="site_note"),
    *HOME.routes(),
    *NOTICE.routes("/notice"),
]
