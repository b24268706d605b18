"""The site activity list: every area's actions, which doubles as the audit trail.

Lines travel on the site topic (the site home's stream). A new line is sent as itself,
upserted into the list by id (newest first), so an action publishes a few hundred bytes
instead of the whole list, and a replayed or echoed line lands on the one already there.
"""

from __future__ import annotations

from live.hub import LiveHub
from routes.common import path_for
from routes.fragments import partial, render_fragment, upsert
from tables.activity import Activity
from tables.people import SiteRef

ACTIVITY_SHOWN = 20


def site_topic(site: SiteRef) -> str:
    """The site's topic: the site home's regions (activity, notice) change on it."""
    return f"site:{site.id}"


def link_of(site: SiteRef, line: dict) -> str:
    """Where a line points: the thing it is about, when it has a page."""
    if line["entity_type"] == "dispatch" and line["entity_id"]:
        return path_for("dispatch_manifest", site=site.slug, dispatch=line["entity_id"])
    if line["entity_type"] == "draft" and line["entity_id"]:
        return path_for("drafts", site=site.slug) + f"#draft-{line['entity_id']}"
    if line["entity_type"] == "board" and line["entity_id"]:
        return path_for("board", site=site.slug, board=line["entity_id"])
    return ""


async def activity_lines(site: SiteRef) -> list[dict]:
    """The latest activity, with times in the site's time zone."""
    return lines_shown(site, await Activity.recent(site.id, ACTIVITY_SHOWN))


def lines_shown(site: SiteRef, rows: list[dict]) -> list[dict]:
    """Rows of the trail as the list shows them: the time in the site's zone, the link."""
    return [
        {
            **row,
            "at": row["created_at"].astimezone(site.tz).strftime("%H:%M"),
            "link": link_of(site, row),
        }
        for row in rows
    ]


async def activity_region(site: SiteRef) -> str:
    """The whole #activity section, for a fresh page, a resync or a poll."""
    html = render_fragment("sites/_activity.html", activity=await activity_lines(site))
    return partial("activity", html)


async def publish_activity(hub: LiveHub, site: SiteRef, actor: str) -> None:
    """After commit: the lines this request recorded, to every viewer of the site home."""
    recorded = Activity.take_recorded()
    if not recorded:
        return

    async def lines() -> str:
        rows = lines_shown(site, sorted(recorded, key=lambda line: line["id"], reverse=True))
        html = "".join(render_fragment("sites/_activity_line.html", a=a) for a in rows)
        return upsert("activity-list", html, sort="desc") if html else ""

    # Lines are immutable and find their own place (sorted by id): no turn to wait for.
    await hub.publish(site_topic(site), "activity", actor, lines, ordered=False)
