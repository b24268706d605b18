"""The site activity list, which doubles as the audit trail: who did what, when, to what.

Every area's table operations record their own lines (inside the action's transaction),
so no route can forget one. The lines a request recorded are remembered once their
transaction commits (a context variable, per request; a rolled-back line is forgotten),
so that the route layer can publish exactly those new lines after commit, without
reading them back and instead of the whole list.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tables.base import Actor, after_commit
from tables.people import Site

SYSTEM = Actor(0, "floorboard")  # housekeeping (expiry): no user did it

_recorded: ContextVar[list[dict[str, Any]] | None] = ContextVar("activity_recorded", default=None)


# What a line of the list carries: read by `recent`, kept by `record` for publishing.
LINE_FIELDS = ("id", "actor_name", "verb", "summary", "entity_type", "entity_id", "created_at")


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
        actor: Actor,
        verb: str,
        summary: str,
        entity_type: str = "",
        entity_id: int | None = None,
    ) -> Activity:
        """Add a line to the site's trail; call it inside the action's transaction (an
        action that writes nothing else needs none: the INSERT commits on its own, and
        the line is published once it has)."""
        entry = cls(
            site=site_id,
            actor=actor.id or None,
            actor_name=actor.name,
            verb=verb,
            summary=summary[:300],
            entity_type=entity_type,
            entity_id=entity_id,
        )
        await entry.save()
        line = {name: getattr(entry, name) for name in LINE_FIELDS}  # as `recent` reads it

        def committed() -> None:
            lines = _recorded.get()
            if lines is None:
                _recorded.set(lines := [])
            lines.append(line)

        after_commit(committed)
        return entry

    @staticmethod
    def start_recording() -> None:
        """A new request begins: lines recorded from here on are its own."""
        _recorded.set([])

    @staticmethod
    def take_recorded() -> list[dict[str, Any]]:
        """The lines recorded and committed in this context since the last call (then
        forgotten), as `recent` gives them: published without being read back."""
        lines = _recorded.get() or []
        _recorded.set(None)
        return lines

    @classmethod
    async def recent(cls, site_id: int, limit: int = 20) -> list[dict]:
        """The latest lines of the site's trail, newest first."""
        return await (
            cls.select(*(getattr(cls, name) for name in LINE_FIELDS))
            .where(cls.site == site_id)
            .order_by(cls.id, ascending=False)
            .limit(limit)
        )
