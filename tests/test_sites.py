"""Sites and tenancy: members get in, everyone else gets the same 404."""

from __future__ import annotations

import pytest
from starlette.exceptions import HTTPException

from routes.access import require_manager
from tests.conftest import texts


async def test_signed_out_visitor_is_sent_to_sign_in_and_back(client):
    response = await client.get("/s/nairobi/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/s/nairobi/"


async def test_member_sees_the_site_home_with_its_people(as_user):
    alice = await as_user("alice")
    page = await alice.get("/s/nairobi/")
    assert page.status_code == 200
    people = texts(page, ".people li")
    assert "Alice Wanjiru dispatcher" in people and "Ada Manager manager" in people
    assert not any("Dana" in p for p in people)  # nakuru's dispatcher is not listed


@pytest.mark.parametrize(
    ("username", "path"),
    [
        ("oscar", "/s/nairobi/"),
        ("alice", "/s/other/"),
        ("dana", "/s/nairobi/"),
        ("admin", "/s/other/"),  # a manager of Demo Logistics, not of Other Co
        ("alice", "/s/no-such-site/"),
        ("alice", "/s/" + "x" * 5000 + "/"),
        ("alice", "/s/%00%27%22%3Cb%3E/"),
        ("alice", "/s/naïrobi/"),
    ],
)
async def test_anyone_not_a_member_gets_404(as_user, username, path):
    user = await as_user(username)
    response = await user.get(path)
    assert response.status_code == 404
    assert texts(response, "h1") == ["Page not found"]


async def test_unknown_and_forbidden_sites_look_the_same(as_user):
    oscar = await as_user("oscar")
    real = await oscar.get("/s/nairobi/")
    fake = await oscar.get("/s/atlantis/")
    assert (real.status_code, real.text) == (fake.status_code, fake.text)


async def test_manager_of_several_sites_picks_one(as_user):
    admin = await as_user("admin")
    page = await admin.get("/")
    assert page.status_code == 200
    assert texts(page, ".tile strong") == [
        "Killarney Hotel Bar & Kitchen",
        "Nairobi Branch",
        "Nakuru Branch",
        "Westlands Auto Workshop",
    ]


async def test_require_manager_refuses_members_who_do_not_manage(as_user):
    from types import SimpleNamespace

    from tables.people import site_access

    alice = await site_access("nairobi", (await _user_id("alice")))
    admin = await site_access("nairobi", (await _user_id("admin")))
    assert require_manager(SimpleNamespace(state=SimpleNamespace(site=admin))) is admin
    with pytest.raises(HTTPException) as refused:
        require_manager(SimpleNamespace(state=SimpleNamespace(site=alice)))
    assert refused.value.status_code == 403


async def _user_id(username: str) -> int:
    from piccolo.apps.user.tables import BaseUser

    return (await BaseUser.select(BaseUser.id).where(BaseUser.username == username).first())["id"]
