"""Demo data (SPEC §2): the same rows on every fresh start, loaded by one idempotent loader.

Areas add their own rows by appending a loader to `AREA_LOADERS`; each receives the `Demo`
record of what the foundation made and must itself be idempotent (look up before insert).

    python demo.py            load what is missing
    python demo.py --reset    delete everything and load afresh
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from piccolo.apps.user.tables import BaseUser
from piccolo.table import Table
from piccolo_api.session_auth.tables import SessionsBase

from tables.activity import Activity
from tables.base import write_tx
from tables.people import Membership, Organisation, Role, Site, SiteKind

PASSWORD = "demo"

ORGANISATIONS = ["Demo Logistics", "Other Co"]

SITES = [
    # slug, organisation, name, kind, time zone
    ("nairobi", "Demo Logistics", "Nairobi Branch", SiteKind.branch, "Africa/Nairobi"),
    ("nakuru", "Demo Logistics", "Nakuru Branch", SiteKind.branch, "Africa/Nairobi"),
    (
        "killarney",
        "Demo Logistics",
        "Killarney Hotel Bar & Kitchen",
        SiteKind.hotel,
        "Europe/Dublin",
    ),
    ("workshop", "Demo Logistics", "Westlands Auto Workshop", SiteKind.workshop, "Africa/Nairobi"),
    ("other", "Other Co", "Other Co Depot", SiteKind.depot, "Europe/London"),
]

USERS = [
    # username, first, last, memberships [(site, role)], platform operator?
    ("alice", "Alice", "Wanjiru", [("nairobi", Role.dispatcher)], False),
    ("bob", "Bob", "Wilson", [("nairobi", Role.dispatcher)], False),
    ("charlie", "Charlie", "Smith", [("nairobi", Role.dispatcher)], False),
    ("dana", "Dana", "Kiprop", [("nakuru", Role.dispatcher)], False),
    ("erin", "Erin", "O'Sullivan", [("killarney", Role.staff)], False),
    ("frank", "Frank", "Mutua", [("workshop", Role.staff)], False),
    (
        "admin",
        "Ada",
        "Manager",
        [(s, Role.manager) for s in ("nairobi", "nakuru", "killarney", "workshop")],
        False,
    ),
    ("oscar", "Oscar", "Other", [("other", Role.manager)], False),
    ("ops", "Platform", "Operator", [], True),
]


@dataclass
class Demo:
    """What the foundation loaded, by natural key, for the area loaders to build on."""

    organisations: dict[str, int] = field(default_factory=dict)
    sites: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)


AREA_LOADERS: list[Callable[[Demo], Awaitable[None]]] = []

# Deleted child-first by --reset; areas append their tables in front.
TABLES: list[type[Table]] = [Activity, Membership, Site, Organisation, SessionsBase, BaseUser]


async def _organisations(demo: Demo) -> None:
    for name in ORGANISATIONS:
        row = await Organisation.objects().get_or_create(Organisation.name == name)
        demo.organisations[name] = row.id


async def _sites(demo: Demo) -> None:
    for slug, org, name, kind, tz in SITES:
        row = await Site.objects().where(Site.slug == slug).first()
        if row is None:
            row = Site(
                slug=slug, organisation=demo.organisations[org], name=name, kind=kind, timezone=tz
            )
            await row.save()
        demo.sites[slug] = row.id


async def _users(demo: Demo) -> None:
    for username, first, last, memberships, operator in USERS:
        user = await BaseUser.objects().where(BaseUser.username == username).first()
        if user is None:
            # BaseUser(...) rather than create_user(): the spec's demo password "demo" is
            # shorter than create_user's policy minimum; it is still hashed (PBKDF2).
            user = BaseUser(
                username=username,
                password=PASSWORD,
                first_name=first,
                last_name=last,
                email=f"{username}@example.com",
                active=True,
                admin=operator,  # piccolo_admin's own check
                superuser=operator,  # our /admin guard: platform operators only
            )
            await user.save()
        demo.users[username] = user.id
        for slug, role in memberships:
            site_id = demo.sites[slug]
            exists = await Membership.exists().where(
                (Membership.user == user.id) & (Membership.site == site_id)
            )
            if not exists:
                await Membership(user=user.id, site=site_id, role=role).save()


async def load() -> Demo:
    """Load whatever demo rows are missing; running it twice changes nothing."""
    demo = Demo()
    async with write_tx(Site._meta.db):
        await _organisations(demo)
        await _sites(demo)
        await _users(demo)
    for loader in AREA_LOADERS:
        await loader(demo)
    return demo


async def is_loaded() -> bool:
    return await Organisation.exists().where(Organisation.name == ORGANISATIONS[0])


async def reset() -> Demo:
    """Delete every row the app holds and load the demo afresh."""
    async with write_tx(Site._meta.db):
        for table in TABLES:
            await table.delete(force=True)
    return await load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reset", action="store_true", help="delete everything, then load")
    args = parser.parse_args()
    demo = asyncio.run(reset() if args.reset else load())
    print(f"Demo data ready: {len(demo.sites)} sites, {len(demo.users)} users (password: demo)")


if __name__ == "__main__":
    main()
