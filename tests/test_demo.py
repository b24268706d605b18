"""The demo data: the same on every fresh start, and loading it twice changes nothing."""

from __future__ import annotations

from piccolo.apps.user.tables import BaseUser

import demo
from tables.people import Membership, Organisation, Site

DEMO_ORGS = ("Demo Logistics", "Other Co")


async def _counts() -> tuple[int, int, int, int]:
    """The demo's organisations, their sites, the demo's people and their memberships —
    not what other tests made for themselves (a workshop of a test's own, say), which
    may share the run's database."""
    usernames = [username for username, *_ in demo.USERS]
    return (
        await Organisation.count().where(Organisation.name.is_in(list(DEMO_ORGS))),
        await Site.count().where(Site.organisation.name.is_in(list(DEMO_ORGS))),
        await BaseUser.count().where(BaseUser.username.is_in(usernames)),
        await Membership.count().where(Membership.user.username.is_in(usernames)),
    )


async def test_demo_has_the_documented_organisations_sites_and_people():
    assert await _counts() == (2, 5, 9, 11)
    sites = await (
        Site.select(Site.slug, Site.organisation.name)
        .where(Site.organisation.name.is_in(list(DEMO_ORGS)))
        .order_by(Site.slug)
    )
    assert [(s["slug"], s["organisation.name"]) for s in sites] == [
        ("killarney", "Demo Logistics"),
        ("nairobi", "Demo Logistics"),
        ("nakuru", "Demo Logistics"),
        ("other", "Other Co"),
        ("workshop", "Demo Logistics"),
    ]
    operators = await BaseUser.select(BaseUser.username).where(BaseUser.superuser.eq(True))
    assert operators == [{"username": "ops"}]


async def test_loading_again_changes_nothing():
    before = await _counts()
    await demo.load()
    assert await _counts() == before


async def test_every_demo_user_signs_in_with_the_documented_password(client):
    for username, *_ in demo.USERS:
        response = await client.post("/login", {"username": username, "password": "demo"})
        assert response.status_code == 303, username
