"""The site activity list (every area's actions, which doubles as the audit trail) and the
site topic its updates travel on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

from starlette.requests import Request

from routes.access import site_of
from routes.live import partial, render_fragment
from tables.activity import Activity
from tables.people import SiteAccess

ACTIVITY_SHOWN = 20


def site_topic(access: SiteAccess) -> str:
    """The site's topic: the site home's regions (activity, notice) change on it."""
    return f"site:{access.site_id}"


async def activity_lines(access: SiteAccess) -> list[dict]:
    """The latest activity, with times already in the site's time zone."""
    tz = ZoneInfo(access.timezone)
    rows = await Activity.recent(access.site_id, ACTIVITY_SHOWN)
    return [{**row, "at": row["created_at"].astimezone(tz).strftime("%H:%M")} for row in rows]


async def activity_region(access: SiteAccess) -> str:
    """The whole #activity list as one partial: idempotent, so a replay or an echo of
    one's own action lands on the same DOM without duplicating lines."""
    html = render_fragment("sites/_activity.html", activity=await activity_lines(access))
    return partial("activity", html)


async def record_activity(
    request: Request, verb: str, summary: str, entity_type: str = "", entity_id: int | None = None
) -> None:
    """Add a line to the site's trail; call it inside the action's transaction."""
    access = site_of(request)
    await Activity.record(
        access.site_id, access.user_id, access.display_name, verb, summary, entity_type, entity_id
    )


async def publish_site(
    request: Request, kind: str, also: Callable[[], Awaitable[str]] | None = None
) -> None:
    """After commit: the activity list (and `also`, other changed site-home regions) to
    every viewer of the site, rendered once."""
    access = site_of(request)

    async def render() -> str:
        return (await also() if also else "") + await activity_region(access)

    await request.app.state.hub.publish(site_topic(access), kind, access.username, render)
