"""The JSON API's one way to declare an endpoint, and everything made from the declarations.

An area declares each endpoint once, with the pydantic models of what it takes and gives:

    dispatch_api = Endpoints("Dispatches")

    @dispatch_api.get("/s/{site}/dispatches", query=DispatchFilter, response=DispatchPage)
    async def dispatch_list(request: Request, query: DispatchFilter) -> DispatchPage:
        ...

From that list come both the Starlette routes (`routes_of`: read the path, query and JSON
body into their models — anything that does not fit is a 422 naming each field, never a
500 — call the handler, check what it returns against the response model) and the OpenAPI
3.1 document (`openapi_document`: paths, parameters, request and response schemas, the
bearer scheme and the error responses). Adding an endpoint is one declaration; nothing is
written twice.

Paths under `/s/{site}` are the site's: they are mounted behind SiteMembershipMiddleware,
like the pages, so a site the caller is not a member of is the same 404 as one that does
not exist. Every error is `Error` JSON: `{"message": "...", "fields": {"title": "..."}}`.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as ModelError
from pydantic.json_schema import models_json_schema
from pydantic_core import PydanticCustomError, core_schema
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from routes.access import SiteMembershipMiddleware
from routes.forms import INT_MAX, typeable
from tables.people import SLUG

log = logging.getLogger("floorboard.api")

SITE_PREFIX = "/s/{site}"
MAX_BODY = 256 * 1024  # no API request needs more; a bigger one is refused unread (413)
PARAM = re.compile(r"{(\w+)}")


# -- the error shape ---------------------------------------------------------------------------


class Error(BaseModel):
    """Every 4xx/5xx answer of the API."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    message: str = Field(description="A sentence a person can read.")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="A message per field at fault (`status`, `limit`, `body.title`); "
        "empty when the error is not about one field.",
    )


class ApiError(Exception):
    """Raised by a handler (or the kit) to answer with `Error` JSON — or with `body`, an
    `Error` of a richer kind that the endpoint declares for that status (`errors=`)."""

    def __init__(
        self,
        status: int,
        message: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: Error | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.fields, self.headers = fields or {}, headers or {}
        self.body = body


NO_STORE = {"Cache-Control": "no-store"}  # answers depend on whose token asked


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def error_response(
    status: int,
    message: str,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return json_response(Error(message=message, fields=fields or {}).model_dump(), status, headers)


GENERIC = {
    400: "That request could not be read.",
    401: "Send a valid API token.",
    403: "Not allowed.",
    404: "Not found.",
    405: "That method is not allowed here.",
    413: "That request is too large.",
    415: "Send JSON (Content-Type: application/json).",
    422: "Check the fields named in `fields`.",
}


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.body is not None:
        return json_response(exc.body.model_dump(mode="json"), exc.status, exc.headers)
    return error_response(exc.status, exc.message, exc.fields, exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, wrong method) and the membership check's
    404, in the API's shape. A 404 always reads the same, so it tells nothing about whether
    a site exists."""
    assert isinstance(exc, HTTPException)
    message = GENERIC.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, message, headers=dict(exc.headers or {}))


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("API error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "Something went wrong on our side. It has been logged.")


exception_handlers: dict[Any, Any] = {
    ApiError: api_error,
    HTTPException: http_error,
    Exception: server_error,
}


def unauthorized(conn: HTTPConnection, exc: Exception) -> Response:
    """AuthenticationMiddleware's `on_error`: no token, a malformed header, or a token that
    is unknown, revoked or belongs to a deactivated user — all 401, never a redirect."""
    message = str(exc) or "This API token is not valid: it was revoked, or never existed."
    return error_response(401, message, headers={"WWW-Authenticate": 'Bearer realm="api"'})


# -- what the handlers share with the pages ---------------------------------------------------

SITE_APP = "floorboard.site_app"  # scope key: the app the API is mounted in (set by ApiFirst)


def services_of(request: Request) -> Any:
    """The app's `Services` (hub, broker, locks, settings): the API is an app of its own,
    so `request.app` is not the one that holds them — the app it is mounted in does."""
    outer = request.scope.get(SITE_APP) or request.app
    return outer.state.services


# -- field types the models share ----------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A line a person typed, as a model field: `title: Annotated[str, Text(200)]`.
    Stripped, 1..max_length characters, no NUL or other control characters — what
    `routes.forms.Form.text` enforces on the pages; documented as a string with its
    lengths."""

    max_length: int
    min_length: int = 1

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        text = core_schema.str_schema(
            strip_whitespace=True, min_length=self.min_length, max_length=self.max_length
        )
        return core_schema.no_info_after_validator_function(_typeable, text)


def _typeable(text: str) -> str:
    if not typeable(text):
        raise PydanticCustomError("untypeable", "Has characters that cannot be typed")
    return text


RowId = Annotated[int, Field(ge=1, le=INT_MAX, description="A row id.")]


def messages(problem: ModelError, where: str = "") -> dict[str, str]:
    """pydantic's errors as one sentence per field (`limit`, `body.title`)."""
    fields: dict[str, str] = {}
    for error in problem.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in error["loc"]) or "body"
        name = f"{where}.{path}" if where and path != where else path
        text = error["msg"]
        if error["type"] == "extra_forbidden":
            text = "This field is not expected here."
        fields.setdefault(name, text[:1].upper() + text[1:] + ("" if text.endswith(".") else "."))
    return fields


# -- declarations --------------------------------------------------------------------------------

Handler = Callable[..., Awaitable[BaseModel | Any]]


@dataclass(frozen=True)
class Endpoint:
    """One operation of the API: everything both the route and its OpenAPI entry need."""

    method: str
    path: str  # under /api/v1, e.g. "/s/{site}/dispatches/{id}"
    handler: Handler
    response: type[BaseModel]
    query: type[BaseModel] | None = None
    params: type[BaseModel] | None = None  # the path's parameters other than {site}
    body: type[BaseModel] | None = None
    status: int = 200
    summary: str = ""
    tag: str = ""
    # Statuses beyond the kit's own (409, say), each with what it means and its model.
    errors: tuple[tuple[int, str, type[Error]], ...] = ()
    operation: str = ""  # the operationId and route name; the handler's name by default
    description: str = ""  # the docstring's paragraphs after the summary

    @property
    def name(self) -> str:
        return self.operation or self.handler.__name__

    @property
    def site_scoped(self) -> bool:
        return self.path == SITE_PREFIX or self.path.startswith(SITE_PREFIX + "/")

    def check(self) -> None:
        """Declaration mistakes fail at import, not on the first request."""
        named = set(PARAM.findall(self.path)) - ({"site"} if self.site_scoped else set())
        declared = set(self.params.model_fields) if self.params else set()
        if named != declared:
            raise TypeError(f"{self.name}: the path names {named}, its params model {declared}")
        if self.body is not None and self.method not in ("POST", "PUT", "PATCH"):
            raise TypeError(f"{self.name}: a {self.method} takes no body")
        for code, _, model in self.errors:
            if not (400 <= code < 600 and issubclass(model, Error)):
                raise TypeError(f"{self.name}: error {code} must be 4xx/5xx with an Error model")


class Endpoints(list[Endpoint]):
    """An area's endpoints, declared with the decorators; a list, to be mounted and documented."""

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag

    def route(
        self,
        method: str,
        path: str,
        *,
        response: type[BaseModel],
        query: type[BaseModel] | None = None,
        params: type[BaseModel] | None = None,
        body: type[BaseModel] | None = None,
        status: int = 200,
        errors: Mapping[int, str | tuple[str, type[Error]]] | None = None,
        name: str = "",
        summary: str = "",
    ) -> Callable[[Handler], Handler]:
        """Declare `handler` as METHOD path. `errors`: statuses it answers beyond the kit's
        own (401, 404, 422, …), each described, with `Error` or a model extending it.
        `name`: the operationId when one handler serves several paths; `summary`: the
        first paragraph of the handler's docstring unless given."""
        extra = tuple(
            (code, *(what if isinstance(what, tuple) else (what, Error)))
            for code, what in sorted((errors or {}).items())
        )

        def declare(handler: Handler) -> Handler:
            first, _, rest = inspect.cleandoc(handler.__doc__ or "").partition("\n\n")
            endpoint = Endpoint(
                method, path, handler, response, query, params, body, status,
                summary or first, self.tag, extra, name, rest if not summary else "",
            )  # fmt: skip
            endpoint.check()
            self.append(endpoint)
            return handler

        return declare

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **options)

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **options)


# -- from declarations to routes -----------------------------------------------------------------


async def read_body(request: Request, model: type[BaseModel]) -> BaseModel:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, GENERIC[415])
    length = request.headers.get("content-length", "")
    if length and not (length.isascii() and length.isdigit()):
        raise ApiError(400, GENERIC[400])
    if length and int(length) > MAX_BODY:
        raise ApiError(413, GENERIC[413])
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, GENERIC[413])
    try:
        json.loads(raw)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested past reason
        raise ApiError(400, "The body is not JSON.") from None
    try:
        # Validated as JSON, not as the Python it loads into: a strict model then takes
        # dates and enums as JSON spells them, and nothing else ("12" is not 12).
        return model.model_validate_json(raw)
    except ModelError as problem:
        raise ApiError(422, GENERIC[422], messages(problem, "body")) from None


def _parse(model: type[BaseModel], data: dict[str, str]) -> BaseModel:
    try:
        return model.model_validate(data)
    except ModelError as problem:
        raise ApiError(422, GENERIC[422], messages(problem)) from None


def endpoint_app(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette handler for one declaration: parse, call, check the answer."""

    async def handle(request: Request) -> Response:
        inputs: dict[str, BaseModel] = {}
        if endpoint.params:
            values = {k: v for k, v in request.path_params.items() if k != "site"}
            inputs["params"] = _parse(endpoint.params, values)
        if endpoint.query:
            inputs["query"] = _parse(endpoint.query, dict(request.query_params))
        if endpoint.body:
            inputs["body"] = await read_body(request, endpoint.body)
        result = await endpoint.handler(request, **inputs)
        if not isinstance(result, endpoint.response):
            result = endpoint.response.model_validate(result)
        return json_response(result.model_dump(mode="json"), endpoint.status)

    handle.__name__ = endpoint.name
    return handle


def routes_of(endpoints: Iterable[Endpoint]) -> list[BaseRoute]:
    """Routes for the endpoints; the site's ones under one membership-checked mount."""
    plain: list[BaseRoute] = []
    scoped: list[BaseRoute] = []
    for e in endpoints:
        target, path = (scoped, e.path[len(SITE_PREFIX) :]) if e.site_scoped else (plain, e.path)
        target.append(Route(path or "/", endpoint_app(e), methods=[e.method], name=e.name))
    if scoped:
        plain.append(
            Mount(SITE_PREFIX, routes=scoped, middleware=[Middleware(SiteMembershipMiddleware)])
        )
    return plain


# -- from declarations to OpenAPI ---------------------------------------------------------------

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query or path parameter is absent rather than null: `X | None` documents as X."""
    schema = dict(schema)
    options = schema.pop("anyOf", None)
    if options:
        rest = [o for o in options if o != {"type": "null"}]
        schema.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
    if schema.get("default", ...) is None:
        del schema["default"]
    return schema


def _parameters(schema: dict[str, Any], where: str) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    found = []
    for name, prop in schema.get("properties", {}).items():
        prop = _not_null(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        parameter = {"name": name, "in": where, "required": where == "path" or name in required}
        if description:
            parameter["description"] = description
        found.append({**parameter, "schema": prop})
    return found


SITE_PARAMETER = {
    "name": "site",
    "in": "path",
    "required": True,
    "description": "The site's slug. A site you are not a member of is a 404, as is one "
    "that does not exist.",
    "schema": {"type": "string", "pattern": f"^{SLUG.pattern}$"},
}

ERROR_RESPONSES = {  # status: (name in components.responses, description)
    "400": ("BadRequest", "The body is not JSON."),
    "401": (
        "Unauthorized",
        "No API token, or one that is not valid (revoked, unknown, or its user deactivated).",
    ),
    "404": ("NotFound", "No such site (or not yours), or nothing with that id at the site."),
    "413": ("TooLarge", "The body is too large."),
    "415": ("NotJson", "The body is not JSON."),
    "422": ("Invalid", "A path, query or body field is not valid; `fields` says which and why."),
}


def openapi_document(
    endpoints: Iterable[Endpoint], *, prefix: str, title: str, version: str, description: str
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the endpoints, from their declarations alone."""
    endpoints = list(endpoints)
    wanted: list[tuple[type[BaseModel], Any]] = [(Error, "serialization")]
    for e in endpoints:
        wanted.append((e.response, "serialization"))
        wanted += [(m, "validation") for m in (e.query, e.params, e.body) if m is not None]
        wanted += [(model, "serialization") for _, _, model in e.errors]
    keys, defs = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    schemas: dict[str, Any] = defs.get("$defs", {})

    def inline(model: type[BaseModel]) -> dict[str, Any]:
        name = keys[(model, "validation")]["$ref"].rsplit("/", 1)[1]
        return schemas[name]

    paths: dict[str, dict[str, Any]] = {}
    used_responses: set[str] = {"401"}
    for e in endpoints:
        parameters = [SITE_PARAMETER] if e.site_scoped else []
        if e.params:
            parameters += _parameters(inline(e.params), "path")
        if e.query:
            parameters += _parameters(inline(e.query), "query")
        errors = ["401"]
        if e.site_scoped or e.params:
            errors.append("404")
        if e.body:
            errors += ["400", "413", "415"]
        if e.params or e.query or e.body:
            errors.append("422")
        used_responses.update(errors)
        operation: dict[str, Any] = {
            "operationId": e.name,
            "summary": e.summary,
            **({"description": e.description} if e.description else {}),
            "tags": [e.tag] if e.tag else [],
            "parameters": parameters,
            "responses": {  # the answer, the kit's errors, then the endpoint's own
                str(e.status): {
                    "description": e.response.__doc__.strip().split("\n")[0]
                    if e.response.__doc__
                    else "OK",
                    "content": {
                        "application/json": {"schema": keys[(e.response, "serialization")]}
                    },
                },
                **{
                    code: {"$ref": f"#/components/responses/{ERROR_RESPONSES[code][0]}"}
                    for code in sorted(errors)
                },
                **{
                    str(code): {
                        "description": what,
                        "content": {"application/json": {"schema": keys[(model, "serialization")]}},
                    }
                    for code, what, model in e.errors
                },
            },
        }
        if e.body:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": keys[(e.body, "validation")]}},
            }
        paths.setdefault(prefix + e.path, {})[e.method.lower()] = operation
    # Query and path models are spelled out as parameters; they are not schemas of their own.
    for e in endpoints:
        for model in (e.query, e.params):
            if model is not None and (model, "serialization") not in keys:
                schemas.pop(keys[(model, "validation")]["$ref"].rsplit("/", 1)[1], None)
    error_name = keys[(Error, "serialization")]["$ref"].rsplit("/", 1)[1]
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                ERROR_RESPONSES[code][0]: {
                    "description": ERROR_RESPONSES[code][1],
                    "content": {"application/json": {"schema": _ref(error_name)}},
                }
                for code in sorted(used_responses)
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal API token, made on your account page (/me).",
                }
            },
        },
        "security": [{"bearer": []}],
    }
