"""Items (/s/{site}/items): what a stock site counts, kept by its managers — the list with
a search and a category filter (a GET form), add, edit from the version the form showed
(409 with what changed), take out of use and back. The rules, and what an edit means for
stocktakes already populated, are in tables/items.py.

Plain forms with Post/Redirect/Get; a refused form comes back with 422 (409 when stale),
what was typed and a message at each field. Not live: a few managers edit items, and the
stocktake pages read them when drawn. Staff get 403 (`require_manager`); another site's
item is 404, like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from routes.access import require_manager
from routes.common import path_for, redirect, render
from routes.forms import Form, read_form
from tables.base import DomainError, InvalidInput, StaleVersion, write_tx
from tables.items import (
    FIELDS,
    ItemRow,
    create_item,
    drafts_counting,
    form_values,
    items_of,
    set_item_in_use,
    site_item,
    update_item,
)


def typed(form: Form) -> dict[str, str]:
    """The item's fields as sent, for the table to read and the form to show again."""
    return {name: form.raw(name) for name in FIELDS}


def errors_of(problem: DomainError) -> dict[str, str]:
    if isinstance(problem, InvalidInput):
        return problem.errors
    return {problem.field or "item": str(problem)}


async def items_page(
    request: Request,
    *,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The site's items, filtered by the GET form, and the add form (open, with what was
    typed and its messages, when an add was refused)."""
    access = require_manager(request)
    context = {
        "items": await items_of(access.site_id, request.query_params),
        "errors": errors or {},
        "values": values or {"sub_units": "1"},
    }
    return render(request, "items/list.html", context, status_code=status_code)


async def item_create(request: Request) -> Response:
    access, form = require_manager(request), await read_form(request)
    values = typed(form)
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        async with write_tx():
            row = await create_item(access.site_id, values, access.actor)
    except DomainError as problem:
        return await items_page(request, errors=errors_of(problem), values=values, status_code=422)
    return listed(request, access.slug, row, f"Added {row['name']} ({row['sku']}).")


def listed(request: Request, site: str, row: Mapping[str, Any], message: str) -> Response:
    """Back to the list, at the item's row."""
    return redirect(request, path_for("items", site=site) + f"#item-{row['id']}", message)


async def the_item(request: Request) -> dict[str, Any]:
    """The item the path names, if it is one of the site's (404 otherwise), for a manager."""
    access = require_manager(request)
    try:
        return await site_item(access.site_id, request.path_params["item"])
    except DomainError as gone:
        raise HTTPException(404, str(gone)) from None


async def item_page(
    request: Request,
    *,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    version: str | None = None,
    stale: StaleVersion | None = None,
    status_code: int = 200,
) -> Response:
    """One item's edit form (the item as it is now, unless `values` were typed), the
    version it is based on, and the in-use switch."""
    row = await the_item(request)
    context = {
        "item": ItemRow.of(row),
        "values": values or form_values(row),
        "version": row["version"] if version is None else version,
        "errors": errors or {},
        "stale": stale,
        "drafts": await drafts_counting(row["id"]),
        "items": await items_of(row["site"]),  # the categories and units to offer
    }
    return render(request, "items/item.html", context, status_code=status_code)


async def item_save(request: Request) -> Response:
    row = await the_item(request)
    access, form = require_manager(request), await read_form(request)
    values, version = typed(form), form.raw("version")
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        async with write_tx():
            saved = await update_item(access.site_id, row["id"], version, values, access.actor)
    except StaleVersion as stale:  # theirs is kept; saving again from it replaces it
        now = str(stale.current["version"])
        return await item_page(request, values=values, version=now, stale=stale, status_code=409)
    except DomainError as problem:
        errors = errors_of(problem)
        return await item_page(
            request, errors=errors, values=values, version=version, status_code=422
        )
    what = f"Saved {saved.row['name']}: {', '.join(saved.changed)}." if saved.changed else ""
    return listed(request, access.slug, saved.row, what or "Nothing changed.")


async def item_in_use(request: Request) -> Response:
    row = await the_item(request)
    access, form = require_manager(request), await read_form(request)
    in_use = form.raw("in_use")
    if form.errors or in_use not in ("yes", "no"):
        errors = {"in_use": "Choose one of the buttons shown."}
        return await item_page(request, errors=errors, status_code=422)
    async with write_tx():
        saved = await set_item_in_use(access.site_id, row["id"], in_use == "yes", access.actor)
    label = f"{saved['name']} ({saved['sku']})"
    words = "is in use again" if saved["active"] else "is out of use: later stocktakes leave it out"
    there = path_for("item", site=access.slug, item=saved["id"])
    return redirect(request, there, f"{label} {words}.")


ONE = "/items/{item:id}"

routes = [
    Route("/items", items_page, name="items"),
    Route("/items", item_create, methods=["POST"], name="item_create"),
    Route(ONE, item_page, name="item"),
    Route(ONE, item_save, methods=["POST"], name="item_save"),
    Route(f"{ONE}/in-use", item_in_use, methods=["POST"], name="item_in_use"),
]
