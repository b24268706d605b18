"""Every response carries the browser-side protections (SPEC §3)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", ["/login", "/s/nairobi/", "/healthz", "/static/app.css"])
async def test_security_headers_on_every_response(as_user, path):
    alice = await as_user("alice")
    response = await alice.get(path)
    csp = response.headers["content-security-policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert script_src.split() == ["script-src", "'self'"]  # no unsafe-inline, no unsafe-eval
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_pages_load_scripts_only_from_files(client):
    page = await client.get("/login")
    assert "<script>" not in page.text  # every script has a src: nothing inline to allow
    assert "htmx-4.0.1.min.js" in page.text and "hx-sse-4.0.1.js" in page.text
