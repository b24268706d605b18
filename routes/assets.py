"""Assets (seed 004; SPEC §5.5): /s/{site}/assets, one asset with its dispatch history,
and /s/{site}/assets/config, which detail records a dispatch of each asset type and
make/model gets (managers).

Plain server-rendered pages, tablet-first, that work without JavaScript: nothing on them
changes under a viewer often enough to be worth a stream. Adding an asset and saving the
configuration are plain form posts (Post/Redirect/Get, or the page again with a message
at each wrong field and 422), each one transaction with a line in the site's trail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from routes.access import require_manager, site_of
from routes.activity import publish_activity
from routes.common import path_for, redirect, render, services
from routes.forms import Form, FormErrors, read_form, typeable
from routes.live import FormState, errors_of
from tables.activity import Activity
from tables.assets import (
    AssetView,
    asset_types_of,
    assets_of,
    create_asset,
    make_models_of,
    site_asset,
)
from tables.base import DomainError, InvalidInput, write_tx
from tables.dispatches import (
    DETAIL_KINDS,
    MARKUP,
    PLAIN,
    asset_dispatches,
    configured_kinds,
    set_detail_kind,
)
from tables.people import SiteAccess

ASSET_FIELDS = (
    "asset_type",
    "make_model",
    "registration",
    "name",
    "location",
    "meter_reading",
    "capacity_kg",
)
PLAIN_FIELDS = ("name", "location")  # shown on dispatches, printed, sent by the API


# -- the list, and adding an asset --------------------------------------------------------


async def assets_page(
    request: Request, form: FormState | None = None, status_code: int = 200
) -> Response:
    access = site_of(request)
    context = {
        "assets": await assets_of(access.site_id),
        "types": await asset_types_of(access.organisation_id),
        "models": await make_models_of(access.organisation_id),
        "form": form or FormState(),
    }
    return render(request, "assets/list.html", context, status_code=status_code)


async def add_asset(site_id: int, values: Mapping[str, str]) -> dict[str, Any]:
    """`create_asset`, refusing markup in the name and location as every dispatch text is
    refused it (create_asset takes any typeable text there); every wrong field at once.
    Call inside a write transaction: a refusal after the insert rolls it back."""
    markup = {n: PLAIN for n in PLAIN_FIELDS if MARKUP.search(values.get(n, ""))}
    try:
        made = await create_asset(site_id, {**values, **{n: "" for n in markup}})
    except InvalidInput as problem:
        raise InvalidInput({**problem.errors, **markup}) from None
    if markup:
        raise InvalidInput(markup)
    return made


async def asset_create(request: Request) -> Response:
    access = require_manager(request)
    form = await read_form(request)
    values = {name: form.raw(name) for name in ASSET_FIELDS}
    try:
        if form.errors:
            raise InvalidInput(form.errors)
        async with write_tx():
            made = await add_asset(access.site_id, values)
            summary = f"added the asset {made['registration']} ({made['name']})"
            await Activity.record(
                access.site_id, access.actor, "asset.create", summary, "asset", made["id"]
            )
    except DomainError as problem:
        kept = {name: "".join(ch for ch in v if typeable(ch)) for name, v in values.items()}
        return await assets_page(request, FormState(errors_of(problem, "registration"), kept), 422)
    await publish_activity(services(request).hub, access.ref, access.username)
    back = path_for("asset", site=access.slug, asset=made["id"])
    return redirect(request, back, f"Added {made['registration']}.")


# -- one asset ------------------------------------------------------------------------------


async def the_asset(request: Request) -> AssetView:
    """The site's asset the path names; another site's is as unknown as a missing one."""
    try:
        return await site_asset(site_of(request).site_id, request.path_params["asset"])
    except DomainError:
        raise HTTPException(404, "There is no such asset.") from None


async def asset_page(request: Request) -> Response:
    access, asset = site_of(request), await the_asset(request)
    dispatches = await asset_dispatches(access.site_id, asset.id)
    kinds = await configured_kinds(asset.type_id, asset.make_model_id)
    context = {
        "asset": asset,
        "dispatches": dispatches,
        "kinds": [DETAIL_KINDS[k].label for k in kinds],
    }
    return render(request, "assets/asset.html", context)


# -- the detail-set configuration (managers) --------------------------------------------------


@dataclass
class ConfigEntry:
    """An asset type or a make/model with the detail kinds configured for it."""

    key: str  # its form field: "type-3", "model-7"
    label: str
    kinds: set[str]
    inherited: list[str]  # a make/model: its type's kinds (labels), which it adds to
    type_id: int
    make_model_id: int | None = None


async def configuration(access: SiteAccess) -> list[ConfigEntry]:
    """Every asset type of the organisation, then every make/model, with its kinds."""
    types = await asset_types_of(access.organisation_id)
    entries: list[ConfigEntry] = []
    by_type: dict[int, ConfigEntry] = {}
    for t in types:
        kinds = await configured_kinds(t["id"], None)
        entry = ConfigEntry(f"type-{t['id']}", t["name"], set(kinds), [], t["id"])
        by_type[t["id"]] = entry
        entries.append(entry)
    for m in await make_models_of(access.organisation_id):
        kinds = await configured_kinds(None, m["id"])
        of_type = by_type[m["asset_type"]]
        inherited = [v.label for k, v in DETAIL_KINDS.items() if k in of_type.kinds]
        label = f"{m['make']} {m['model']}".strip() + f" ({m['type_name']})"
        entries.append(
            ConfigEntry(f"model-{m['id']}", label, set(kinds), inherited, m["asset_type"], m["id"])
        )
    return entries


async def config_page(
    request: Request, errors: FormErrors | None = None, status_code: int = 200
) -> Response:
    access = require_manager(request)
    entries = await configuration(access)
    context = {
        "types": [e for e in entries if e.make_model_id is None],
        "models": [e for e in entries if e.make_model_id is not None],
        "kinds": list(DETAIL_KINDS.values()),
        "errors": errors or FormErrors(),
    }
    return render(request, "assets/config.html", context, status_code=status_code)


KindChange = tuple[ConfigEntry, str, bool]  # the entry, a detail kind, on or off


def changes_asked(form: Form, entries: list[ConfigEntry]) -> list[KindChange]:
    """What the ticks change, for the entries the page showed (`shown`: a type or
    make/model added since the page was drawn keeps its configuration). InvalidInput
    for a kind that is not registered."""
    shown = set(ticked(form, "shown"))
    changes: list[KindChange] = []
    for entry in (e for e in entries if e.key in shown):
        kinds = ticked(form, entry.key)
        if any(k not in DETAIL_KINDS for k in kinds):
            raise InvalidInput({"config": UNREADABLE})
        changes += [
            (entry, k, k in kinds) for k in DETAIL_KINDS if (k in kinds) != (k in entry.kinds)
        ]
    return changes


async def save_changes(access: SiteAccess, changes: list[KindChange]) -> None:
    """Every change and the trail line, in one transaction."""
    async with write_tx():
        for entry, key, on in changes:
            if entry.make_model_id is not None:
                await set_detail_kind(key, on, make_model_id=entry.make_model_id)
            else:
                await set_detail_kind(key, on, asset_type_id=entry.type_id)
        said = "; ".join(
            f"{DETAIL_KINDS[key].label} {'on' if on else 'off'} for {entry.label}"
            for entry, key, on in changes
        )
        await Activity.record(access.site_id, access.actor, "asset.config", f"detail sets: {said}")


async def config_save(request: Request) -> Response:
    access = require_manager(request)
    form = await read_form(request)
    back = path_for("assets_config", site=access.slug)
    try:
        changes = changes_asked(form, await configuration(access))
    except InvalidInput as problem:
        return await config_page(request, FormErrors(problem.errors), 422)
    if not changes:
        return redirect(request, back, "Nothing changed.")
    await save_changes(access, changes)
    await publish_activity(services(request).hub, access.ref, access.username)
    n = len(changes)
    notice = f"Saved {n} change{'s' if n != 1 else ''}: dispatches created from now on get them."
    return redirect(request, back, notice)


UNREADABLE = "Those choices could not be read. Reload the page and try again."


def ticked(form: Form, name: str) -> list[str]:
    """Every value of a repeated field (ticked boxes); a file counts as unreadable."""
    raw = form.data.getlist(name) if isinstance(form.data, FormData) else []
    return [v if isinstance(v, str) else "\x00" for v in raw]


# -- wiring -----------------------------------------------------------------------------------

routes = [
    Route("/assets", assets_page, name="assets"),
    Route("/assets", asset_create, methods=["POST"], name="asset_create"),
    Route("/assets/config", config_page, name="assets_config"),
    Route("/assets/config", config_save, methods=["POST"], name="assets_config_save"),
    Route("/assets/{asset:id}", asset_page, name="asset"),
]
