"""Dispatches (seed 004, SPEC §5.5). For now the manifest a finalised draft becomes; the
dispatches issue adds the board, transitions, details and the API."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from routes.access import site_of
from routes.common import render
from tables.dispatches import Dispatch, DispatchParcel


async def dispatch_manifest(request: Request) -> Response:
    access = site_of(request)
    dispatch = await (
        Dispatch.select(
            *Dispatch.all_columns(),
            Dispatch.vehicle.registration,
            Dispatch.vehicle.make,
            Dispatch.vehicle.model,
        )
        .where((Dispatch.id == request.path_params["dispatch"]) & (Dispatch.site == access.site_id))
        .first()
    )
    if dispatch is None:
        raise HTTPException(404, "There is no such dispatch.")
    parcels = await (
        DispatchParcel.select(
            DispatchParcel.parcel.code.as_alias("code"),
            DispatchParcel.parcel.destination.as_alias("destination"),
            DispatchParcel.parcel.description.as_alias("description"),
            DispatchParcel.parcel.weight_g.as_alias("weight_g"),
        )
        .where(DispatchParcel.dispatch == dispatch["id"])
        .order_by(DispatchParcel.parcel.code)
    )
    created = dispatch["created_at"].astimezone(ZoneInfo(access.timezone))
    context = {
        "dispatch": dispatch,
        "parcels": parcels,
        "total_g": sum(p["weight_g"] for p in parcels),
        "created": created.strftime("%d %b %Y %H:%M"),
    }
    return render(request, "dispatches/manifest.html", context)


routes = [
    Route("/dispatches/{dispatch:id}/manifest", dispatch_manifest, name="dispatch_manifest"),
]
