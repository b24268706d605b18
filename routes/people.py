"""An organisation's people and sites, run by its own managers: /o/{org}/people, /o/{org}/sites.

Only the organisation's managers get in (OrgManagerMiddleware on the mount; everyone else
the same 404 as an unknown organisation). Ordinary pages, not live: every action is a plain
form with Post/Redirect/Get, refused with 422 and the values kept — except adding someone
and resetting their sign-in, which answer with the new link or temporary password once (it
must not ride a redirect's cookie). The rules and the trail live in tables/orgs.py;
deactivating someone or resetting their sign-in also frees their soft locks and ends their
open streams on every worker, after commit.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from routes.access import org_of
from routes.common import path_for, redirect, render, services
from routes.forms import Form, FormErrors, read_form
from tables.base import DomainError, InvalidInput, write_tx
from tables.orgs import (
    NAME_MAX,
    SITE_NAME_MAX,
    Added,
    NotHere,
    StartWith,
    add_person,
    archive_site,
    change_site,
    create_site,
    deactivate,
    org_sites,
    people_of,
    person_of,
    reactivate,
    reset_sign_in,
    set_roles,
    site_of_org,
    starting_password,
    trail,
)
from tables.people import Role, SiteKind

TIMEZONES = sorted(available_timezones())
ROLES = [r.value for r in Role]
KINDS = [
    (SiteKind.branch.value, "Courier branch"),
    (SiteKind.workshop.value, "Workshop"),
    (SiteKind.hotel.value, "Hotel, bar or kitchen"),
    (SiteKind.depot.value, "Depot"),
]


def errors_of(problem: DomainError) -> FormErrors:
    """A refused change as messages by field ("form" when it belongs to no field)."""
    errors = FormErrors()
    if isinstance(problem, InvalidInput):
        errors.update(problem.errors)
    else:
        errors.add(problem.field or "form", str(problem))
    return errors


def not_here(problem: NotHere) -> HTTPException:
    return HTTPException(404, str(problem))


def common(request: Request) -> dict[str, Any]:
    return {"org": org_of(request), "roles": ROLES, "kinds": KINDS, "timezones": TIMEZONES}


# -- people ----------------------------------------------------------------------------------


async def people_page(
    request: Request,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    org = org_of(request)
    context = {
        **common(request),
        "people": await people_of(org.organisation_id),
        "sites": await org_sites(org.organisation_id, archived=False),
        "trail": await trail(org.organisation_id),
        "values": values or {"role": Role.dispatcher.value, "start_with": StartWith.link.value},
        "errors": errors or FormErrors(),
    }
    return render(request, "people/page.html", context, status_code=status)


async def person_add(request: Request) -> Response:
    org, form = org_of(request), await read_form(request)
    username = form.text("username", label="a username", max_length=30).lower()
    full_name = " ".join(
        form.text("full_name", label="their full name", max_length=NAME_MAX).split()
    )
    site_id = form.id("site")
    if "site" in form.errors:
        form.errors["site"] = "Choose one of your sites."
    role, start_with = form.raw("role"), form.raw("start_with")
    if form.errors:
        return await people_page(request, form.as_typed(), form.errors, 422)
    temporary, hashed = await starting_password(start_with)  # slow: before the transaction
    try:
        async with write_tx():
            added = await add_person(
                org.organisation_id,
                org.actor,
                username=username,
                full_name=full_name,
                site_id=site_id,
                role=role,
                start_with=start_with,
                password_hash=hashed,
            )
    except DomainError as problem:
        return await people_page(request, form.as_typed(), errors_of(problem), 422)
    return way_in(request, added, temporary, status=201)


def way_in(
    request: Request, added: Added, temporary: str, *, status: int, reset: bool = False
) -> Response:
    """The new sign-in link or temporary password, shown once, on this answer: not after a
    redirect (it must not sit in a cookie), and kept out of every cache."""
    link = str(request.url_for("welcome", token=added.secret)) if added.secret else ""
    context = {**common(request), "added": added, "username": added.username, "reset": reset}
    context.update(password=temporary, link=link)
    headers = {"Cache-Control": "no-store"}
    return render(request, "people/added.html", context, status_code=status, headers=headers)


async def person_page(
    request: Request,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    org = org_of(request)
    try:
        person = await person_of(org.organisation_id, request.path_params["person"])
    except NotHere as problem:
        raise not_here(problem) from None
    if values is None:
        values = {f"role-{site_id}": role for site_id, role in person.roles.items()}
        values["full_name"] = person.name
        values["start_with"] = StartWith.link.value
    context = {
        **common(request),
        "person": person,
        "sites": await org_sites(org.organisation_id),
        "values": values,
        "errors": errors or FormErrors(),
    }
    return render(request, "people/person.html", context, status_code=status)


def roles_from(form: Form, sites: list[dict[str, Any]]) -> dict[int, str | None]:
    """`role-{site}` for each site the form sent: a role, or "" for "not here"."""
    roles: dict[int, str | None] = {}
    for site in sites:
        name = f"role-{site['id']}"
        if name in form.data:
            roles[site["id"]] = form.raw(name) or None
    return roles


async def person_save(request: Request) -> Response:
    org, form = org_of(request), await read_form(request)
    person_id = request.path_params["person"]
    full_name = " ".join(
        form.text("full_name", label="their full name", max_length=NAME_MAX).split()
    )
    roles = roles_from(form, await org_sites(org.organisation_id))
    if form.errors:
        return await person_page(request, form.as_typed(), form.errors, 422)
    try:
        async with write_tx():
            person = await set_roles(org, person_id, roles, full_name)
    except NotHere as problem:
        raise not_here(problem) from None
    except DomainError as problem:
        return await person_page(request, form.as_typed(), errors_of(problem), 422)
    if any(role is None and site in person.roles for site, role in roles.items()):
        # Off a site: their open pages there re-check at once (their streams reconnect).
        await services(request).hub.end_user(person_id)
    back = path_for("org_person", org=org.slug, person=person_id)
    return redirect(request, back, f"Saved {full_name}'s sites and roles.")


async def person_deactivate(request: Request) -> Response:
    org = org_of(request)
    person_id = request.path_params["person"]
    try:
        async with write_tx():
            person = await deactivate(org, person_id)
    except NotHere as problem:
        raise not_here(problem) from None
    except DomainError as problem:
        return await person_page(request, None, errors_of(problem), 422)
    await signed_out(request, person_id)
    back = path_for("org_person", org=org.slug, person=person_id)
    return redirect(request, back, f"Deactivated {person.name}: signed out everywhere.")


async def signed_out(request: Request, person_id: int) -> None:
    """After commit, for someone whose sessions were just deleted: what they were editing is
    let go, their open pages' streams end (they reconnect, are refused, reload)."""
    svc = services(request)
    await svc.locks.release_holder(person_id)  # their badges clear within a watcher tick
    await svc.hub.end_user(person_id)


async def person_reset(request: Request) -> Response:
    org, form = org_of(request), await read_form(request)
    person_id = request.path_params["person"]
    start_with = form.raw("start_with")
    if start_with not in StartWith.__members__:
        form.errors.add("start_with", "Choose a sign-in link or a temporary password.")
    if form.errors:
        return await person_page(request, None, form.errors, 422)
    temporary, hashed = await starting_password(start_with)  # slow: before the transaction
    try:
        async with write_tx():
            reset = await reset_sign_in(org, person_id, start_with, hashed)
    except NotHere as problem:
        raise not_here(problem) from None
    except DomainError as problem:
        return await person_page(request, None, errors_of(problem), 422)
    await signed_out(request, person_id)
    return way_in(request, reset, temporary, status=200, reset=True)


async def person_reactivate(request: Request) -> Response:
    org = org_of(request)
    person_id = request.path_params["person"]
    try:
        async with write_tx():
            person = await reactivate(org, person_id)
    except NotHere as problem:
        raise not_here(problem) from None
    except DomainError as problem:
        return await person_page(request, None, errors_of(problem), 422)
    back = path_for("org_person", org=org.slug, person=person_id)
    return redirect(request, back, f"Reactivated {person.name}.")


# -- sites -----------------------------------------------------------------------------------


async def sites_page(
    request: Request,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    org = org_of(request)
    context = {
        **common(request),
        "sites": await org_sites(org.organisation_id),
        "trail": await trail(org.organisation_id),
        "values": values or {"kind": SiteKind.branch.value, "timezone": "Africa/Nairobi"},
        "errors": errors or FormErrors(),
    }
    return render(request, "people/sites.html", context, status_code=status)


async def site_create(request: Request) -> Response:
    org, form = org_of(request), await read_form(request)
    slug = form.text("slug", label="a slug", max_length=50)
    name = form.text("name", label="the site's name", max_length=SITE_NAME_MAX)
    kind, timezone = form.raw("kind"), form.raw("timezone").strip()
    if form.errors:
        return await sites_page(request, form.as_typed(), form.errors, 422)
    try:
        async with write_tx():
            site = await create_site(org, slug=slug, name=name, kind=kind, timezone=timezone)
    except DomainError as problem:
        return await sites_page(request, form.as_typed(), errors_of(problem), 422)
    return redirect(request, path_for("org_sites", org=org.slug), f"Created {site['name']}.")


async def site_page(
    request: Request,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    org = org_of(request)
    try:
        site = await site_of_org(org, request.path_params["site_id"])
    except NotHere as problem:
        raise not_here(problem) from None
    context = {
        **common(request),
        "the_site": site,
        "values": values or {"name": site["name"], "timezone": site["timezone"]},
        "errors": errors or FormErrors(),
    }
    return render(request, "people/site.html", context, status_code=status)


async def site_save(request: Request) -> Response:
    org, form = org_of(request), await read_form(request)
    site_id = request.path_params["site_id"]
    name = form.text("name", label="the site's name", max_length=SITE_NAME_MAX)
    timezone = form.raw("timezone").strip()
    if form.errors:
        return await site_page(request, form.as_typed(), form.errors, 422)
    try:
        async with write_tx():
            await change_site(org, site_id, name=name, timezone=timezone)
    except NotHere as problem:
        raise not_here(problem) from None
    except DomainError as problem:
        return await site_page(request, form.as_typed(), errors_of(problem), 422)
    back = path_for("org_site", org=org.slug, site_id=site_id)
    return redirect(request, back, f"Saved {name}.")


async def _archive(request: Request, archived: bool) -> Response:
    org = org_of(request)
    site_id = request.path_params["site_id"]
    try:
        async with write_tx():
            site = await archive_site(org, site_id, archived)
    except NotHere as problem:
        raise not_here(problem) from None
    except DomainError as problem:
        return await site_page(request, None, errors_of(problem), 422)
    back = path_for("org_site", org=org.slug, site_id=site_id)
    verb = "Archived" if archived else "Reopened"
    return redirect(request, back, f"{verb} {site['name']}.")


async def site_archive(request: Request) -> Response:
    return await _archive(request, True)


async def site_reopen(request: Request) -> Response:
    return await _archive(request, False)


routes = [
    Route("/people", people_page, methods=["GET"], name="org_people"),
    Route("/people", person_add, methods=["POST"], name="org_person_add"),
    Route("/people/{person:id}", person_page, methods=["GET"], name="org_person"),
    Route("/people/{person:id}", person_save, methods=["POST"], name="org_person_save"),
    Route(
        "/people/{person:id}/deactivate",
        person_deactivate,
        methods=["POST"],
        name="org_person_deactivate",
    ),
    Route(
        "/people/{person:id}/reset",
        person_reset,
        methods=["POST"],
        name="org_person_reset",
    ),
    Route(
        "/people/{person:id}/reactivate",
        person_reactivate,
        methods=["POST"],
        name="org_person_reactivate",
    ),
    Route("/sites", sites_page, methods=["GET"], name="org_sites"),
    Route("/sites", site_create, methods=["POST"], name="org_site_create"),
    Route("/sites/{site_id:id}", site_page, methods=["GET"], name="org_site"),
    Route("/sites/{site_id:id}", site_save, methods=["POST"], name="org_site_save"),
    Route("/sites/{site_id:id}/archive", site_archive, methods=["POST"], name="org_site_archive"),
    Route("/sites/{site_id:id}/reopen", site_reopen, methods=["POST"], name="org_site_reopen"),
]
