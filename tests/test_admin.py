"""/admin is Piccolo's admin, which is not tenant-scoped: platform operators only."""

from __future__ import annotations

import pytest

from tests.conftest import texts


async def test_signed_out_visitor_is_sent_to_sign_in(client):
    response = await client.get("/admin/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/admin/"


@pytest.mark.parametrize("username", ["admin", "alice", "oscar"])
async def test_organisation_users_even_managers_get_404(as_user, username):
    user = await as_user(username)
    for path in ("/admin/", "/admin/api/tables/", "/admin/api/meta/"):
        response = await user.get(path)
        assert response.status_code == 404, path
    assert texts(response, "h1") == ["Page not found"]


async def test_platform_operator_gets_in(as_user):
    ops = await as_user("ops")
    page = await ops.get("/admin/")
    assert page.status_code == 200
    tables = await ops.get("/admin/api/tables/")
    assert tables.status_code == 200
    assert {"organisation", "site", "membership"} <= set(tables.json())
