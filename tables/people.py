"""People and places: organisations (tenants), their sites, and who works where (SPEC §3).

An organisation's managers are the users with the role `manager` at any of its sites; what
they may do to its people and sites is in tables/orgs.py."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import ForeignKey, Serial, Timestamptz, Varchar
from piccolo.table import Table

from tables.base import Actor, DomainError


class Role(StrEnum):
    manager = "manager"
    dispatcher = "dispatcher"
    staff = "staff"


class SiteKind(StrEnum):
    branch = "branch"  # a courier branch
    hotel = "hotel"
    workshop = "workshop"
    depot = "depot"


class Organisation(Table):
    id: Serial
    name = Varchar(length=200, unique=True)
    # The `{org}` of /o/{org}/…; unique (an index made by the migration). Null until set:
    # an organisation without one has no organisation pages.
    slug = Varchar(length=50, null=True, default=None)


SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,49}")


def slug_from_name(name: str) -> str:
    """ "Demo Logistics" -> "demo-logistics": how an organisation's slug is derived."""
    return "-".join(re.findall(r"[a-z0-9]+", name.lower()))[:50].strip("-") or "org"


class Site(Table):
    id: Serial
    organisation = ForeignKey(Organisation, null=False)
    slug = Varchar(length=50, unique=True, index=True)
    name = Varchar(length=200)
    kind = Varchar(length=20, choices=SiteKind, default=SiteKind.branch)
    timezone = Varchar(length=64, default="UTC")
    # Archived sites keep their rows (and trail) but are closed: no member gets in.
    archived_at = Timestamptz(null=True, default=None)

    @staticmethod
    def validate_timezone(name: str) -> ZoneInfo:
        if name not in available_timezones():
            raise DomainError(f"“{name}” is not a time zone we know.", field="timezone")
        return ZoneInfo(name)


class Membership(Table):
    id: Serial
    user = ForeignKey(BaseUser, null=False)
    site = ForeignKey(Site, null=False)
    role = Varchar(length=20, choices=Role, default=Role.staff)
    # One role per (user, site): a unique index made by the migration, because SQLite
    # cannot ALTER TABLE … ADD CONSTRAINT, which is what Piccolo's Unique() generates.


@dataclass(frozen=True, slots=True)
class SiteRef:
    """A site as renderers and tables see it: no request, no user. Broadcast fragments,
    housekeeping and tests all start from one of these."""

    id: int
    slug: str
    name: str
    timezone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    async def load(cls, site_id: int) -> SiteRef | None:
        row = await (
            Site.select(Site.id, Site.slug, Site.name, Site.timezone)
            .where(Site.id == site_id)
            .first()
        )
        return cls(**row) if row else None


@dataclass(frozen=True, slots=True)
class SiteAccess:
    """A signed-in user's standing at one site: what every page under /s/{site} is given."""

    site_id: int
    slug: str
    name: str
    kind: str
    timezone: str
    organisation_id: int
    organisation: str
    organisation_slug: str | None
    user_id: int
    username: str
    display_name: str
    role: str

    @property
    def is_manager(self) -> bool:
        return self.role == Role.manager.value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def ref(self) -> SiteRef:
        return SiteRef(self.site_id, self.slug, self.name, self.timezone)

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, self.display_name)


def display_name(first: str | None, last: str | None, username: str) -> str:
    return " ".join(p for p in (first, last) if p) or username


# Every request under /s/{site}/ asks this, page or action (SiteMembershipMiddleware): one
# statement written once, where Piccolo would build the same four-table join for each
# request (a fifth of a note POST's CPU went to assembling it).
_SITE_ACCESS_SQL = """
SELECT s.id, s.slug, s.name, s.kind, s.timezone,
       o.id AS org_id, o.name AS org_name, o.slug AS org_slug,
       u.id AS user_id, u.username, u.first_name, u.last_name, m.role
FROM membership m
JOIN site s ON s.id = m.site
JOIN organisation o ON o.id = s.organisation
JOIN piccolo_user u ON u.id = m."user"
WHERE s.slug = {} AND m."user" = {} AND s.archived_at IS NULL
LIMIT 1
"""


async def site_access(slug: str, user_id: int) -> SiteAccess | None:
    """The user's membership of the site, or None when the site is unknown or not theirs.

    Both cases look the same on purpose: outsiders must not learn which sites exist.
    """
    if not SLUG.fullmatch(slug):  # also keeps NUL bytes and 5 kB paths away from the database
        return None
    rows = await Membership.raw(_SITE_ACCESS_SQL, slug, user_id)
    if not rows:
        return None
    row = rows[0]
    return SiteAccess(
        site_id=row["id"],
        slug=row["slug"],
        name=row["name"],
        kind=row["kind"],
        timezone=row["timezone"],
        organisation_id=row["org_id"],
        organisation=row["org_name"],
        organisation_slug=row["org_slug"],
        user_id=row["user_id"],
        username=row["username"],
        display_name=display_name(row["first_name"], row["last_name"], row["username"]),
        role=row["role"],
    )


async def site_member(site_id: int, user_id: int | None) -> dict[str, Any] | None:
    """A person who works at the site (id, name), or None: who a card or a dispatch can be
    given to."""
    if user_id is None:
        return None
    row = await (
        Membership.select(
            Membership.user.id.as_alias("id"),
            Membership.user.username.as_alias("username"),
            Membership.user.first_name.as_alias("first"),
            Membership.user.last_name.as_alias("last"),
        )
        .where((Membership.site == site_id) & (Membership.user == user_id))
        .first()
    )
    if row is None:
        return None
    return {"id": row["id"], "name": display_name(row["first"], row["last"], row["username"])}


async def assignable_people(site_id: int) -> list[dict[str, Any]]:
    """Who work can be given to: the site's people (id, name), by name: 1 query."""
    rows = await Membership.select(
        Membership.user.id.as_alias("id"),
        Membership.user.username.as_alias("username"),
        Membership.user.first_name.as_alias("first"),
        Membership.user.last_name.as_alias("last"),
    ).where(Membership.site == site_id)
    people = [
        {"id": r["id"], "name": display_name(r["first"], r["last"], r["username"])} for r in rows
    ]
    return sorted(people, key=lambda p: (p["name"].casefold(), p["id"]))


async def members_of(site_id: int) -> list[dict[str, str]]:
    """The site's active people with their role, for the site home: name, role."""
    rows = await (
        Membership.select(
            Membership.user.username.as_alias("username"),
            Membership.user.first_name.as_alias("first"),
            Membership.user.last_name.as_alias("last"),
            Membership.role,
        )
        .where((Membership.site == site_id) & (Membership.user.active == True))  # noqa: E712
        .order_by(Membership.user.username)
    )
    return [
        {"name": display_name(r["first"], r["last"], r["username"]), "role": r["role"]}
        for r in rows
    ]


async def sites_of(user_id: int) -> list[dict]:
    """The sites a user belongs to, for the site switcher: slug, name, kind, role, organisation."""
    return await (
        Membership.select(
            Membership.site.slug.as_alias("slug"),
            Membership.site.name.as_alias("name"),
            Membership.site.kind.as_alias("kind"),
            Membership.site._.organisation._.name.as_alias("organisation"),
            Membership.role,
        )
        .where((Membership.user.id == user_id) & Membership.site.archived_at.is_null())
        .order_by(Membership.site._.organisation._.name)
        .order_by(Membership.site.name)
    )
