"""Rules the people tables enforce themselves."""

from __future__ import annotations

import pytest
from piccolo.apps.user.tables import BaseUser

from tables.base import DomainError
from tables.people import Membership, Role, Site, site_access


async def _id(username: str) -> int:
    row = await BaseUser.select(BaseUser.id).where(BaseUser.username == username).first()
    return row["id"]


async def test_a_user_has_one_role_per_site():
    nairobi = await Site.select(Site.id).where(Site.slug == "nairobi").first()
    with pytest.raises(Exception, match=r"(?i)unique"):
        await Membership(user=await _id("alice"), site=nairobi["id"], role=Role.manager).save()


async def test_site_access_carries_role_and_names():
    access = await site_access("nairobi", await _id("alice"))
    assert access is not None
    assert (access.slug, access.role, access.display_name, access.organisation) == (
        "nairobi",
        "dispatcher",
        "Alice Wanjiru",
        "Demo Logistics",
    )
    assert not access.is_manager
    assert (await site_access("nairobi", await _id("admin"))).is_manager


async def test_site_access_is_none_for_strangers_and_malformed_slugs():
    oscar = await _id("oscar")
    assert await site_access("nairobi", oscar) is None
    assert await site_access("Nairobi", await _id("alice")) is None
    assert await site_access("nai\x00robi", await _id("alice")) is None


def test_unknown_time_zones_are_refused_with_a_sentence():
    assert Site.validate_timezone("Africa/Nairobi").key == "Africa/Nairobi"
    with pytest.raises(DomainError, match="is not a time zone we know"):
        Site.validate_timezone("Mars/Olympus")
