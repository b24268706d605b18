"""The JSON API, `/api/v1` (SPEC §5.5): personal API tokens only, scoped like the pages.

- Who: `Authorization: Bearer <token>`, checked by piccolo_api's `TokenAuthBackend` and
  `PiccoloTokenAuthProvider` over our `ApiToken` table (tables/apitokens.py: hashed
  tokens). Cookies are not read here at all: API requests go to the API app ahead of the
  pages' session authentication and CSRF check (`ApiFirst`), so a signed-in browser gets
  401 (and a cross-site page cannot ride on its cookies), and a token request needs no
  CSRF token (a browser never sends the token header by itself).
- Where: `/api/v1/s/{site}/…` behind the pages' own SiteMembershipMiddleware: a site the
  token's user is not a member of is the same 404 as one that does not exist.
- What: each area declares its endpoints with `routes.api.kit.Endpoints`; the routes and
  `/api/v1/openapi.json` (public: it describes, it holds no data) are made from those
  declarations.
"""

from __future__ import annotations

import functools
from typing import Any

from piccolo_api.token_auth.middleware import PiccoloTokenAuthProvider, TokenAuthBackend
from starlette.applications import Starlette
from starlette.authentication import AuthenticationError
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from routes.api import dispatches, reports
from routes.api.kit import (
    SITE_APP,
    exception_handlers,
    json_response,
    openapi_document,
    routes_of,
    unauthorized,
)
from tables.apitokens import ApiToken

PREFIX = "/api/v1"
OPENAPI_PATH = "/openapi.json"

ENDPOINTS = [*dispatches.api, *reports.api]

DESCRIPTION = """floorboard's JSON API. Every request carries a personal API token
(`Authorization: Bearer fb_…`), made and revoked on your account page (/me); it sees the
sites you are a member of, like your pages do. Errors are JSON: a `message`, and `fields`
with a message per field at fault."""


def is_api(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


@functools.cache
def document() -> dict[str, Any]:
    return openapi_document(
        ENDPOINTS, prefix=PREFIX, title="floorboard API", version="1", description=DESCRIPTION
    )


async def openapi_json(request: Request) -> Response:
    return json_response(document(), headers={"Cache-Control": "public, max-age=300"})


class BearerBackend(TokenAuthBackend):
    """piccolo_api's token check, reading the header as HTTP says: the scheme is
    case-insensitive (`bearer fb_…` from a client library is the same as `Bearer fb_…`)."""

    def extract_token(self, header: str) -> str:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("The header is in the wrong format.")
        return token.strip()


def api_app() -> Starlette:
    """The API as its own app, mounted at PREFIX: its own authentication and its own
    (JSON) error handling, whatever the pages around it do."""
    backend = BearerBackend(
        PiccoloTokenAuthProvider(token_table=ApiToken),
        excluded_paths=[PREFIX + OPENAPI_PATH],
    )
    return Starlette(
        routes=[
            Route(OPENAPI_PATH, openapi_json, methods=["GET"], name="api_openapi"),
            *routes_of(ENDPOINTS),
        ],
        middleware=[Middleware(AuthenticationMiddleware, backend=backend, on_error=unauthorized)],
        exception_handlers=exception_handlers,
    )


class ApiFirst:
    """Sends every request under PREFIX to the API app, ahead of the pages' middleware
    (session, CSRF: the API reads no cookie) and their router: a path the router cannot
    match (a `%0A` in it, say) still gets the API's JSON 404, not the pages' HTML one.
    The `Mount` of the API stays in the route table for `url_for` only."""

    def __init__(self, app: ASGIApp, *, api: ASGIApp) -> None:
        self.app, self.api = app, api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_api(scope["path"]):
            # What Mount would do: the API's routes see the path below PREFIX. The app
            # around it (scope["app"] until the API app puts itself there) holds the
            # services the handlers publish with.
            scope = {
                **scope,
                "root_path": scope.get("root_path", "") + PREFIX,
                SITE_APP: scope.get("app"),
            }
            await self.api(scope, receive, send)
        else:
            await self.app(scope, receive, send)
