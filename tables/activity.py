"""The site activity list, which doubles as the audit trail: who did what, when, to what."""

from __future__ import annotations

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tables.people import Site


class Activity(Table):
    id: Serial
    site = ForeignKey(Site, null=False, index=True)
    actor = ForeignKey(BaseUser, null=True)
    actor_name = Varchar(length=150)  # kept as written, so the trail survives a renamed user
    verb = Varchar(length=40)  # e.g. "draft.add_parcels"
    entity_type = Varchar(length=40, default="")
    entity_id = Integer(null=True, default=None)
    summary = Varchar(length=300)  # "added 3 parcels to the Eldoret draft"
    created_at = Timestamptz(default=TimestamptzNow(), index=True)

    @classmethod
    async def record(
        cls,
        site_id: int,
        actor_id: int | None,
        actor_name: str,
        verb: str,
        summary: str,
        entity_type: str = "",
        entity_id: int | None = None,
    ) -> Activity:
        """Add a line to the site's trail; call it inside the action's transaction."""
        entry = cls(
            site=site_id,
            actor=actor_id,
            actor_name=actor_name,
            verb=verb,
            summary=summary[:300],
            entity_type=entity_type,
            entity_id=entity_id,
        )
        await entry.save()
        return entry

    @classmethod
    async def recent(cls, site_id: int, limit: int = 20) -> list[dict]:
        return await (
            cls.select(cls.id, cls.actor_name, cls.verb, cls.summary, cls.created_at)
            .where(cls.site == site_id)
            .order_by(cls.id, ascending=False)
            .limit(limit)
        )
