"""The site notice: one pinned message per site, edited under a soft lock.

What is the notice's own: how it is drawn on the site home (`#notice`), and how its
editor loads and saves it. The editor itself (lock, renew, 423/409/422, take-over) is the
kit's `LockEditor`, declared with the site home in routes/sites.py.
"""

from __future__ import annotations

from typing import Any

from routes.editing import Editing, Saving
from routes.fragments import partial, render_fragment
from routes.live import Params
from tables.base import InvalidInput
from tables.notices import NOTICE_MAX, SiteNotice
from tables.people import SiteRef


async def notice_context(site: SiteRef, editor: str | None) -> dict[str, Any]:
    """What `notices/_notice.html` shows: the text, who saved it and when, who edits it."""
    notice = await SiteNotice.for_site(site.id)
    saved_at = notice["updated_at"].astimezone(site.tz).strftime("%H:%M")
    return {"notice": notice, "saved_at": saved_at, "editor": editor}


async def notice_region(site: SiteRef, editor: str | None) -> str:
    """The #notice region, rendered once for every viewer."""
    context = await notice_context(site, editor)
    return partial("notice", render_fragment("notices/_notice.html", site=site, **context))


async def load_notice(site: SiteRef, params: Params) -> Editing:
    notice = await SiteNotice.for_site(site.id)
    return Editing(
        {"text": notice["text"]}, notice["version"], "the site notice", {"max_length": NOTICE_MAX}
    )


async def save_notice(saving: Saving) -> str:
    form = saving.form
    text = form.text(
        "text", label="the notice", max_length=NOTICE_MAX, required=False, multiline=True
    )
    if form.errors:
        raise InvalidInput(form.errors)
    await SiteNotice.save_text(saving.site.id, text, saving.version, saving.actor)
    return "Notice saved." if text else "Notice taken down."
