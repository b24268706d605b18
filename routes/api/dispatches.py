"""Dispatches over the JSON API (SPEC §5.5; seed 004's "API Design"), at one site:

    GET  dispatches                          list: filters, newest first, a page at a time
    POST dispatches                          create
    GET  dispatches/{id}                     one, with its details and timeline
    POST dispatches/{id}/transition          one status change, from the version seen
    POST dispatches/bulk-transition          all of them or none, with a result per item
    GET  dispatches/{id}/details/{kind}      one of its detail records
    PUT  dispatches/{id}/details/{kind}      save fields of it, from the version seen

The rules are tables/dispatches.py's, the same the pages obey; here they are only read
into and out of models. A detail kind gets its own pair of operations, with models made
from its `DetailKind` fields (typed values: numbers, yes/no, a check as true, false or
null), so a kind added to the registry is in the API and its document without an edit
here — and a kind nobody registered is no route at all (404).

Every write publishes after its commit as the pages do: the dispatches on the site's
status board (`DISPATCHES`) and on each one's own page (`DISPATCH`), so a transition by
API moves the card on every open board.

The list reads one query per page (the asset's registration by a join; the assignee's
name is the dispatch's own column).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model
from starlette.requests import Request

from routes.access import site_of
from routes.api.kit import GENERIC, ApiError, Endpoints, Error, RowId, Text, services_of
from routes.forms import INT_MAX
from tables.base import DomainError, InvalidInput, StaleVersion
from tables.dispatches import (
    BULK_MAX,
    DESCRIPTION_MAX,
    DETAIL_KINDS,
    NEXT,
    OPEN,
    REASON_MAX,
    TITLE_MAX,
    BulkRefused,
    DetailField,
    DetailKind,
    DetailView,
    Dispatch,
    DispatchChanged,
    DispatchStatus,
    EventKind,
    ItemResult,
    Priority,
    TransitionRefused,
    assign,
    bulk_transition,
    create_dispatch,
    details_of,
    timeline_of,
    transition,
    update_detail,
)
from tables.people import SiteAccess

log = logging.getLogger("floorboard.api")

api = Endpoints("Dispatches")

LIMIT_DEFAULT = 50
LIMIT_MAX = 200
NOT_HERE = "There is no such dispatch at this site."


class Out(BaseModel):
    """What the API answers: every field always present (null when empty)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class In(BaseModel):
    """A JSON body: typed as JSON types it (no "12" for 12, no "yes" for true), and no
    field it does not know."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise ValueError("Give the time with its offset, like 2026-12-31T14:30:00+03:00")
    return moment


Moment = Annotated[datetime, AfterValidator(_aware)]


# -- a dispatch ---------------------------------------------------------------------------------


class AssetRef(Out):
    id: int
    registration: str = Field(description="Its registration, or asset tag.")


class PersonRef(Out):
    id: int
    name: str


class DispatchOut(Out):
    """A dispatch."""

    id: int
    number: str = Field(description="Readable and unique, e.g. D-00042.")
    title: str
    status: DispatchStatus
    priority: Priority
    version: int = Field(description="Send it with a transition: the version you acted on.")
    site: str = Field(description="The slug of the dispatch's site.")
    asset: AssetRef | None
    assignee: PersonRef | None
    due_at: datetime | None
    overdue: bool = Field(description="Open and past its due time.")
    created_at: datetime


class DispatchPage(Out):
    """One page of a site's dispatches, newest first."""

    items: list[DispatchOut]
    next: int | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class DispatchFilter(BaseModel):
    status: DispatchStatus | None = Field(None, description="Only dispatches in this status.")
    priority: Priority | None = Field(None, description="Only dispatches of this priority.")
    asset: int | None = Field(None, ge=1, le=INT_MAX, description="Only this asset's.")
    assignee: int | None = Field(
        None, ge=1, le=INT_MAX, description="Only those assigned to this user (an id)."
    )
    limit: int = Field(LIMIT_DEFAULT, ge=1, le=LIMIT_MAX, description="At most this many.")
    cursor: int | None = Field(
        None, ge=1, le=INT_MAX, description="The `next` of the previous page."
    )


class DispatchRef(BaseModel):
    id: RowId


class DetailFieldOut(Out):
    name: str
    label: str
    kind: Literal["line", "text", "number", "flag", "check"] = Field(
        description="line: one line of text; text: several lines; number: a whole number "
        "from min to max; flag: true or false; check: true (passed), false (failed) or "
        "null (not checked)."
    )
    min: int | None = Field(description="The smallest number (numbers only).")
    max: int | None = Field(description="The largest number, or the most characters.")
    unit: str


Value = str | int | bool | None


class DetailOut(Out):
    """One detail record of a dispatch."""

    kind: str = Field(description="The detail's kind, as its own operations name it.")
    label: str
    version: int = Field(description="Send it with a save: the version you edited.")
    values: dict[str, Value]
    needs: dict[str, str] = Field(
        description="Per status (`in_progress`, `completed`), what this detail still needs "
        "before the dispatch may enter it; empty when nothing."
    )
    complete: bool = Field(description="It needs nothing for any status.")
    summary: str
    updated_by: str
    updated_at: datetime | None
    fields: list[DetailFieldOut]


class TimelineOut(Out):
    at: datetime
    kind: EventKind
    by: str
    summary: str
    from_status: DispatchStatus | None
    to_status: DispatchStatus | None
    reason: str
    override: bool = Field(description="A manager moved it despite what its details needed.")


class DispatchFull(DispatchOut):
    """A dispatch with its details and its timeline."""

    description: str
    location: str = Field(description="Where its asset stood when it was made.")
    driver_name: str
    created_by: str
    updated_by: str
    updated_at: datetime | None
    assigned_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    next: list[DispatchStatus] = Field(description="The statuses it may go to from here.")
    needs: list[str] = Field(description="What its details still need for its next step.")
    details: list[DetailOut]
    timeline: list[TimelineOut] = Field(description="Its history and events, oldest first.")


LIST_COLUMNS = (
    Dispatch.id,
    Dispatch.number,
    Dispatch.title,
    Dispatch.status,
    Dispatch.priority,
    Dispatch.version,
    Dispatch.vehicle,
    Dispatch.vehicle.registration.as_alias("registration"),
    Dispatch.assigned_to,
    Dispatch.assigned_to_name,
    Dispatch.due_at,
    Dispatch.created_at,
)
FULL_COLUMNS = (
    *LIST_COLUMNS,
    Dispatch.description,
    Dispatch.location,
    Dispatch.driver_name,
    Dispatch.created_by_name,
    Dispatch.updated_by_name,
    Dispatch.updated_at,
    Dispatch.assigned_at,
    Dispatch.started_at,
    Dispatch.completed_at,
    Dispatch.cancelled_at,
)


def _fields(row: Mapping[str, Any], slug: str, at: datetime) -> dict[str, Any]:
    due = row["due_at"]
    return {
        "id": row["id"],
        "number": row["number"],
        "title": row["title"],
        "status": row["status"],
        "priority": row["priority"],
        "version": row["version"],
        "site": slug,
        "asset": (
            {"id": row["vehicle"], "registration": row["registration"] or ""}
            if row["vehicle"] is not None
            else None
        ),
        "assignee": (
            {"id": row["assigned_to"], "name": row["assigned_to_name"]}
            if row["assigned_to"] is not None
            else None
        ),
        "due_at": due,
        "overdue": due is not None and due < at and row["status"] in OPEN,
        "created_at": row["created_at"],
    }


def _out(row: Mapping[str, Any], slug: str, at: datetime) -> DispatchOut:
    return DispatchOut(**_fields(row, slug, at))


def _field_out(spec: DetailField) -> DetailFieldOut:
    number = spec.kind == "number"
    return DetailFieldOut(
        name=spec.name,
        label=spec.label,
        kind=spec.kind,  # type: ignore[arg-type]  # the registry's kinds are these
        min=spec.least if number else None,
        max=spec.most if spec.kind in ("number", "line", "text") else None,
        unit=spec.unit,
    )


def _detail_out(view: DetailView, model: type[DetailOut] = DetailOut) -> DetailOut:
    return model.model_validate(
        {
            "kind": view.kind,
            "label": view.label,
            "version": view.version,
            "values": view.values,
            "needs": view.problems,
            "complete": view.complete,
            "summary": view.summary,
            "updated_by": view.row["updated_by_name"],
            "updated_at": view.row["updated_at"],
            "fields": [_field_out(f) for f in view.fields],
        }
    )


async def dispatch_full(access: SiteAccess, dispatch_id: int) -> DispatchFull:
    """One of the site's dispatches with its details and timeline: 1 query for the
    dispatch, 1 + 1 per kind for its details, 2 for its timeline."""
    row = await (
        Dispatch.select(*FULL_COLUMNS)
        .where((Dispatch.id == dispatch_id) & (Dispatch.site == access.site_id))
        .first()
    )
    if row is None:
        raise ApiError(404, NOT_HERE)
    details = await details_of(row["id"])
    timeline = await timeline_of(row["id"])
    steps = list(NEXT[DispatchStatus(row["status"])])
    forward = next((s.value for s in steps if s != DispatchStatus.cancelled), None)
    return DispatchFull(
        **_fields(row, access.slug, datetime.now(UTC)),
        description=row["description"],
        location=row["location"],
        driver_name=row["driver_name"],
        created_by=row["created_by_name"],
        updated_by=row["updated_by_name"],
        updated_at=row["updated_at"],
        assigned_at=row["assigned_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        cancelled_at=row["cancelled_at"],
        next=steps,
        needs=[d.problems[forward] for d in details if forward in d.problems],
        details=[_detail_out(d) for d in details],
        timeline=[TimelineOut.model_validate(entry, from_attributes=True) for entry in timeline],
    )


# -- refusals and publishing -----------------------------------------------------------------

# Where a rule's field is in the body, when the body names it otherwise.
BODY_FIELD = {"dispatches": "items"}


def refused(problem: DomainError) -> ApiError:
    """A rule's refusal as the API says it: wrong fields 422 (each at its body field),
    a dispatch or detail that is not there 404, a status change the graph or a detail
    does not allow 422 at `body.to`, anything else the dispatch's state refuses 409."""
    if isinstance(problem, InvalidInput):
        fields = {f"body.{BODY_FIELD.get(k, k)}": v for k, v in problem.errors.items()}
        return ApiError(422, GENERIC[422], fields)
    if problem.field == "dispatch":
        return ApiError(404, NOT_HERE)
    if problem.field == "kind":
        return ApiError(404, str(problem))
    if isinstance(problem, TransitionRefused):
        return ApiError(422, str(problem), {f"body.{problem.field or 'to'}": str(problem)})
    return ApiError(409, str(problem))


def changed_meanwhile(stale: StaleVersion, what: str) -> ApiError:
    """409: someone saved first. Who, and the version to look at again."""
    current = stale.current
    who = current.get("updated_by_name") or "Someone"
    now = f"version {current['version']}"
    if "status" in current and "number" in current:  # the dispatch itself
        now = f"{DispatchStatus(current['status']).word} now, {now}"
    message = f"Not saved: {who} changed {what} meanwhile (it is {now}). Look again."
    return ApiError(409, message, {"body.version": f"The current version is {current['version']}."})


async def publish(request: Request, ids: Iterable[int], kind: str, *, bulk: bool = False) -> None:
    """After commit, what the pages publish for the same change: the cards on the site's
    status board, then each dispatch's own page — drawn, or for a bulk change only told
    to refetch itself (most have no viewer; 50 are not drawn here). A failure to publish
    is logged, not answered: the change is made, and open pages catch up when they
    reconnect."""
    # Imported here, not at the top: the pages' module registers its area (AREAS, the
    # site home's list) when imported, and the app imports the API first.
    from routes.dispatches import DISPATCH, DISPATCHES, changed
    from routes.live import Change

    access, svc = site_of(request), services_of(request)
    site, actor = access.ref, access.username
    ids = list(dict.fromkeys(ids))
    try:
        await DISPATCHES.publish(svc, site, {}, changed(ids), kind=kind, actor=actor)
        for dispatch_id in ids:
            change = Change(refetch=DISPATCH.regions) if bulk else changed([dispatch_id])
            await DISPATCH.publish(
                svc, site, {"dispatch": dispatch_id}, change, kind=kind, actor=actor
            )
    except Exception:
        log.exception("publishing %s of %s failed", kind, ids)


STALE = "Someone changed it since the version you sent: `message` says who; look again."
REFUSED = "Its current state does not allow it (closed, say)."


# -- list, get ----------------------------------------------------------------------------------


@api.get("/s/{site}/dispatches", query=DispatchFilter, response=DispatchPage)
async def dispatch_list(request: Request, query: DispatchFilter) -> DispatchPage:
    """The site's dispatches, newest first, a page at a time.

    One query per page, whatever the filters."""
    site = site_of(request)
    where: Any = Dispatch.site == site.site_id
    if query.status is not None:
        where &= Dispatch.status == query.status.value
    if query.priority is not None:
        where &= Dispatch.priority == query.priority.value
    if query.asset is not None:
        where &= Dispatch.vehicle == query.asset
    if query.assignee is not None:
        where &= Dispatch.assigned_to == query.assignee
    if query.cursor is not None:
        where &= Dispatch.id < query.cursor
    rows = await (
        Dispatch.select(*LIST_COLUMNS)
        .where(where)
        .order_by(Dispatch.id, ascending=False)
        .limit(query.limit + 1)
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    at = datetime.now(UTC)
    return DispatchPage(
        items=[_out(r, site.slug, at) for r in rows], next=rows[-1]["id"] if more else None
    )


@api.get("/s/{site}/dispatches/{id}", params=DispatchRef, response=DispatchFull)
async def dispatch_get(request: Request, params: DispatchRef) -> DispatchFull:
    """One dispatch of the site, with its details and timeline."""
    return await dispatch_full(site_of(request), params.id)


# -- create -------------------------------------------------------------------------------------


class DispatchIn(In):
    """A new dispatch."""

    title: Annotated[str, Text(TITLE_MAX)] = Field(description="Plain text, no markup.")
    description: Annotated[str, Field(max_length=DESCRIPTION_MAX)] = Field(
        "", description="Plain text (several lines), no markup."
    )
    priority: Priority = Priority.normal
    asset: RowId = Field(description="One of the site's assets (an id).")
    assignee: RowId | None = Field(
        None, description="Someone who works at the site (a user id), or null."
    )
    due_at: Moment | None = Field(
        None, description="With its offset; from the year 2000 to ten years ahead."
    )


@api.post("/s/{site}/dispatches", body=DispatchIn, response=DispatchFull, status=201)
async def dispatch_create(request: Request, body: DispatchIn) -> DispatchFull:
    """Create a dispatch of one of the site's assets.

    It gets exactly the details its asset's type and make/model configure, and its first
    history row; a field the rules refuse is a 422 at that field, with nothing made."""
    access = site_of(request)
    values = body.model_dump()
    values["priority"] = body.priority.value
    try:
        row = await create_dispatch(access.site_id, values, access.actor)
    except DomainError as problem:
        raise refused(problem) from None
    await publish(request, [row["id"]], "dispatch.create")
    return await dispatch_full(access, row["id"])


# -- status changes -----------------------------------------------------------------------------


Reason = Annotated[str, Text(REASON_MAX, min_length=0)]


class TransitionIn(In):
    """One status change."""

    to: DispatchStatus
    version: RowId = Field(description="The dispatch's version you acted on.")
    reason: Reason = Field("", description="Needed to cancel, and to override.")
    override: bool = Field(
        False,
        description="Move it despite what its details still need (a failed or incomplete "
        "checklist): managers of the site only, with a reason.",
    )


@api.post(
    "/s/{site}/dispatches/{id}/transition",
    params=DispatchRef,
    body=TransitionIn,
    response=DispatchFull,
    errors={409: STALE},
)
async def dispatch_transition(
    request: Request, params: DispatchRef, body: TransitionIn
) -> DispatchFull:
    """Move a dispatch along its status graph.

    Created → Assigned → In Progress → Completed, and any open status → Cancelled. A
    move the graph or the details do not allow is a 422 at `body.to` saying why."""
    access = site_of(request)
    try:
        row = await transition(
            access.site_id, params.id, body.to.value, access.actor, body.version,
            reason=body.reason, override=body.override, manager=access.is_manager,
        )  # fmt: skip
    except DispatchChanged as stale:
        raise changed_meanwhile(stale, "the dispatch") from None
    except DomainError as problem:
        raise refused(problem) from None
    await publish(request, [row["id"]], "dispatch.status")
    return await dispatch_full(access, row["id"])


class AssignIn(In):
    """Who does it."""

    assignee: RowId = Field(description="A person who works at the site (a user id).")
    version: RowId = Field(description="The dispatch's version you acted on.")


@api.post(
    "/s/{site}/dispatches/{id}/assign",
    params=DispatchRef,
    body=AssignIn,
    response=DispatchFull,
    errors={409: STALE},
)
async def dispatch_assign(request: Request, params: DispatchRef, body: AssignIn) -> DispatchFull:
    """Give an open dispatch to someone who works at the site.

    A Created dispatch becomes Assigned (with its history row and event); an Assigned or
    In Progress one changes hands. Someone who does not work at the site is a 422 at
    `body.assignee`."""
    access = site_of(request)
    try:
        row = await assign(access.site_id, params.id, body.assignee, access.actor, body.version)
    except DispatchChanged as stale:
        raise changed_meanwhile(stale, "the dispatch") from None
    except DomainError as problem:
        raise refused(problem) from None
    await publish(request, [row["id"]], "dispatch.assign")
    return await dispatch_full(access, row["id"])


class BulkItem(In):
    id: RowId
    version: RowId = Field(description="The dispatch's version you acted on.")


class BulkTransitionIn(In):
    """One status for several dispatches: all of them, or none."""

    items: Annotated[list[BulkItem], Field(min_length=1, max_length=BULK_MAX)]
    to: DispatchStatus
    reason: Reason = Field("", description="Needed to cancel, and to override.")
    override: bool = Field(False, description="Managers only, with a reason.")


class ItemResultOut(Out):
    id: int
    number: str
    ok: bool = Field(description="This one could move (false: `message` says why not).")
    message: str


class BulkDone(Out):
    """Every dispatch moved."""

    results: list[ItemResultOut]
    dispatches: list[DispatchOut]


class BulkError(Error):
    """Nothing was changed: `results` says, per dispatch, which could have moved and why
    the others could not."""

    results: list[ItemResultOut]


def _result(result: ItemResult) -> ItemResultOut:
    return ItemResultOut(id=result.id, number=result.number, ok=result.ok, message=result.message)


@api.post(
    "/s/{site}/dispatches/bulk-transition",
    body=BulkTransitionIn,
    response=BulkDone,
    errors={409: ("Nothing was changed; a result per dispatch says why.", BulkError)},
)
async def dispatch_bulk_transition(request: Request, body: BulkTransitionIn) -> BulkDone:
    """One status for every dispatch named, or for none.

    Any one that may not move (the graph, its details, a version that is not current, not
    this site's) refuses the whole change: 409 with a result per dispatch."""
    access = site_of(request)
    ids = [item.id for item in body.items]
    versions = {item.id: item.version for item in body.items}
    try:
        moved = await bulk_transition(
            access.site_id, ids, body.to.value, access.actor, versions,
            reason=body.reason, override=body.override, manager=access.is_manager,
        )  # fmt: skip
    except BulkRefused as no:
        message = "Nothing was changed: " + "; ".join(str(r) for r in no.results if not r.ok)
        error = BulkError(message=message + ".", results=[_result(r) for r in no.results])
        raise ApiError(409, error.message, body=error) from None
    except DomainError as problem:
        raise refused(problem) from None
    moved_ids = [row["id"] for row in moved]
    await publish(request, moved_ids, "dispatch.bulk", bulk=True)
    rows = await Dispatch.select(*LIST_COLUMNS).where(Dispatch.id.is_in(moved_ids))
    at, by_id = datetime.now(UTC), {r["id"]: r for r in rows}
    return BulkDone(
        results=[_result(ItemResult(row["id"], row["number"], True)) for row in moved],
        dispatches=[_out(by_id[i], access.slug, at) for i in moved_ids if i in by_id],
    )


# -- details: a pair of operations per registered kind ------------------------------------------


def _camel(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


def _annotation(spec: DetailField) -> Any:
    """A field's type as JSON has it, with its limits and label for the document."""
    about = spec.label + (f" ({spec.unit})" if spec.unit else "")
    if spec.kind == "line":
        return Annotated[str, Text(spec.most, min_length=0), Field(title=spec.label)]
    if spec.kind == "text":
        return Annotated[
            str, Field(max_length=spec.most, title=spec.label, description="Several lines.")
        ]
    if spec.kind == "number":
        number = Annotated[int, Field(ge=spec.least, le=spec.most)]
        return Annotated[number | None, Field(title=spec.label, description=about)]
    if spec.kind == "flag":
        return Annotated[bool, Field(title=spec.label)]
    if spec.kind == "check":
        return Annotated[
            bool | None,
            Field(title=spec.label, description="true: passed, false: failed, null: not checked."),
        ]
    raise TypeError(f"no API type for detail fields of kind {spec.kind!r}")


DEFAULTS = {"line": "", "text": "", "number": None, "flag": False, "check": None}


def detail_models(kind: DetailKind) -> tuple[type[DetailOut], type[In]]:
    """The kind's answer (its values typed) and its save body (every field optional:
    those left out keep their values)."""
    name = _camel(kind.key)
    values: Any = create_model(  # type: ignore[call-overload]
        f"{name}Values",
        __base__=Out,
        __doc__=f"The fields of a {kind.label.lower()}.",
        **{f.name: (_annotation(f), ...) for f in kind.fields},
    )
    answer: Any = create_model(  # type: ignore[call-overload]
        f"{name}Detail",
        __base__=DetailOut,
        __doc__=f"A dispatch's {kind.label.lower()}.",
        values=(values, ...),
    )
    body: Any = create_model(  # type: ignore[call-overload]
        f"{name}Save",
        __base__=In,
        __doc__=f"Fields of a {kind.label.lower()} to save; those left out keep theirs.",
        version=(RowId, Field(description="The detail's version you edited.")),
        **{f.name: (_annotation(f), DEFAULTS[f.kind]) for f in kind.fields},
    )
    return answer, body


async def _detail(access: SiteAccess, dispatch_id: int, kind: DetailKind) -> DetailView:
    found = await (
        Dispatch.select(Dispatch.id, Dispatch.number)
        .where((Dispatch.id == dispatch_id) & (Dispatch.site == access.site_id))
        .first()
    )
    if found is None:
        raise ApiError(404, NOT_HERE)
    view = next((d for d in await details_of(found["id"]) if d.kind == kind.key), None)
    if view is None:
        raise ApiError(404, f"{found['number']} has no {kind.label.lower()}.")
    return view


def declare_detail(kind: DetailKind) -> None:
    answer, body_model = detail_models(kind)
    path = f"/s/{{site}}/dispatches/{{id}}/details/{kind.key}"
    label = kind.label.lower()

    async def get(request: Request, params: DispatchRef) -> DetailOut:
        return _detail_out(await _detail(site_of(request), params.id, kind), answer)

    async def save(request: Request, params: DispatchRef, body: In) -> DetailOut:
        access = site_of(request)
        values = body.model_dump(exclude_unset=True)  # a field left out keeps its value
        version = values.pop("version")
        try:
            await update_detail(access.site_id, params.id, kind.key, values, version, access.actor)
        except StaleVersion as stale:
            raise changed_meanwhile(stale, f"the {label}") from None
        except DomainError as problem:
            raise refused(problem) from None
        await publish(request, [params.id], "dispatch.detail")
        return _detail_out(await _detail(access, params.id, kind), answer)

    api.get(
        path, params=DispatchRef, response=answer, name=f"detail_get_{kind.key}",
        summary=f"A dispatch's {label}.",
    )(get)  # fmt: skip
    api.put(
        path, params=DispatchRef, body=body_model, response=answer,
        name=f"detail_save_{kind.key}",
        summary=f"Save fields of a dispatch's {label}, from the version you edited "
        "(those left out keep theirs).",
        errors={409: STALE + " Or the dispatch is closed: its details are final."},
    )(save)  # fmt: skip


for _kind in DETAIL_KINDS.values():
    declare_detail(_kind)
