"""The signed-in user's way in: the site picker at / and each site's home page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from routes.access import login_url, site_of, user_id
from routes.common import AREAS, render
from tables.people import Membership, display_name, sites_of


async def home(request: Request) -> Response:
    uid = user_id(request)
    if uid is None:
        return RedirectResponse(login_url("/"), status_code=303)
    sites = await sites_of(uid)
    if len(sites) == 1:
        return RedirectResponse(request.url_for("site_home", site=sites[0]["slug"]), 303)
    return render(request, "sites/picker.html", {"sites": sites})


async def site_home(request: Request) -> Response:
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
    return render(request, "sites/home.html", {"areas": AREAS, "people": people})


routes = [Route("/", home, name="home")]
site_routes = [Route("/", site_home, name="site_home")]
