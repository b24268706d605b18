"""The site notice: one pinned message per site ("Gate 2 closed until noon"), edited by
anyone at the site — one at a time (a soft lock) and never over someone else's newer
version (optimistic concurrency)."""

from __future__ import annotations

from typing import Any

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tables.activity import Activity
from tables.base import Actor, DomainError, update_versioned
from tables.people import Site

NOTICE_MAX = 1000


class SiteNotice(Table):
    id: Serial
    site = ForeignKey(Site, null=False, unique=True)
    text = Text(default="")
    version = Integer(default=1)
    updated_by = ForeignKey(BaseUser, null=True)
    updated_by_name = Varchar(length=150, default="")
    updated_at = Timestamptz(default=TimestamptzNow())

    @classmethod
    async def for_site(cls, site_id: int) -> dict[str, Any]:
        """The site's notice, created empty on first use."""
        row = await cls.select().where(cls.site == site_id).first()
        if row is None:
            await cls.insert(cls(site=site_id)).on_conflict(action="DO NOTHING")
            row = await cls.select().where(cls.site == site_id).first()
        assert row is not None
        return row

    @classmethod
    async def save_text(
        cls, site_id: int, text: str, expected_version: int, actor: Actor
    ) -> dict[str, Any]:
        """Replace the text if nobody saved since `expected_version` (else StaleVersion),
        and record it in the site's trail. Call inside the action's transaction."""
        text = text.strip()
        if len(text) > NOTICE_MAX:
            raise DomainError(f"A notice has at most {NOTICE_MAX} characters.", field="text")
        notice = await cls.for_site(site_id)
        saved = await update_versioned(
            cls,
            notice["id"],
            expected_version,
            {
                "text": text,
                "updated_by": actor.id,
                "updated_by_name": actor.name,
                "updated_at": TimestamptzNow().python(),
            },
            compare=("text",),
        )
        await Activity.record(site_id, actor, "notice.update", "updated the site notice")
        return saved
