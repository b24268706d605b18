"""Broadcast fragments: rendered once per change, the same bytes for every viewer.

Nothing per viewer can get into them (no CSRF token, no "you"), and the links in them are
paths (`path_for`), right for every viewer whatever host they used. htmx 4 applies each
`<hx-partial>` to its target and ignores partials whose target is not on the page, so one
event can carry regions of several pages of an area (the list and its editor).
"""

from __future__ import annotations

from markupsafe import Markup

from routes.common import templates


def render_fragment(name: str, **context: object) -> str:
    """Render a `_fragment.html` for broadcast: once per change, the same for every viewer."""
    return templates.get_template(name).render(context)


def partial(target_id: str, html: str, swap: str = "outerMorph") -> str:
    """Wrap a fragment for htmx 4. Morphing keeps what a viewer is typing in a field."""
    return f'<hx-partial hx-target="#{target_id}" hx-swap="{swap}">{html}</hx-partial>'


def delete(target_id: str) -> str:
    return partial(target_id, "", swap="delete")


def upsert(container_id: str, html: str, *, key: str = "", sort: str = "asc") -> str:
    """Insert rows into a list in their place, or replace the ones already there (by id).

    The `hx-upsert` extension orders by the `key` attribute (the id by default), so a new
    parcel lands between its neighbours and a new activity line on top, without sending
    the whole list; a replayed or echoed row replaces itself instead of doubling.
    """
    attrs = f' key="{key}"' if key else ""
    attrs += ' sort="desc"' if sort == "desc" else " sort"
    return f'<hx-upsert hx-target="#{container_id}"{attrs}>{html}</hx-upsert>'


def toast(message: str, kind: str = "info") -> str:
    """A notice for #toasts. `message` is escaped unless it is Markup: it often carries
    what people typed (a destination, a note)."""
    role = "alert" if kind == "error" else "status"
    html = Markup('<div class="toast toast--{}" role="{}">{}</div>').format(kind, role, message)
    return partial("toasts", str(html), swap="beforeend")
