// floorboard's stocktakes: "Erin is editing Guinness Keg" on everyone else's line while
// someone has a line's count field focused or its movements drawer open (renewed while it
// lasts, ended on leaving), and a count form its user has typed in is kept out of the
// live redraws of its line (a morph would otherwise replace an unfocused field's text
// and the version the counter saw) until they save it.
(() => {
  "use strict";
  const RENEW_EVERY = 3000; // ms; others drop an indicator after 8 s without a renewal

  const post = window.floorboard.indicate;

  // One thing edited at a time per tab: a count form (focused) or a drawer (open).
  let current = null; // the data-editing-url being announced
  let renewal = null;
  const start = (url) => {
    if (current === url) return;
    if (current) post(current, "end");
    current = url;
    post(url, "start");
    clearInterval(renewal);
    renewal = setInterval(() => post(current, "start"), RENEW_EVERY);
  };
  const stop = (url) => {
    if (!current || (url && url !== current)) return;
    post(current, "end");
    current = null;
    clearInterval(renewal);
    renewal = null;
  };
  const panel = () => document.querySelector("#drawer .drawer__panel");

  document.addEventListener("focusin", (e) => {
    const form = e.target instanceof Element && e.target.closest("form.line__count[data-editing-url]");
    if (form) start(form.dataset.editingUrl);
  });
  document.addEventListener("focusout", (e) => {
    const form = e.target instanceof Element && e.target.closest("form.line__count[data-editing-url]");
    if (!form) return;
    // Moving between the line's own fields is still editing it.
    setTimeout(() => {
      if (form.contains(document.activeElement)) return;
      const open = panel();
      if (open) start(open.dataset.editingUrl); else stop(form.dataset.editingUrl);
    }, 0);
  });

  // The movements drawer: opened by a line's "Movements" (htmx puts it in #drawer), closed
  // by its Close button or Escape (focus back on the line's link), announced while open.
  const drawer = () => document.getElementById("drawer");
  let shown = null; // the line whose drawer is open, and what it announces
  const drawerOpened = () => {
    const open = panel();
    const line = open?.dataset.line || null;
    if (line === shown?.line) return;
    if (shown) stop(shown.url);
    shown = open ? { line, url: open.dataset.editingUrl } : null;
    if (!open) return;
    start(shown.url);
    const title = open.querySelector("h2");
    title?.setAttribute("tabindex", "-1");
    if (!open.contains(document.activeElement)) title?.focus();
  };
  const closeDrawer = () => {
    const open = panel();
    if (!open) return;
    const line = open.dataset.line;
    drawer().replaceChildren();
    drawerOpened();
    document.querySelector(`#line-${line} .line__moves`)?.focus();
  };
  document.addEventListener("click", (e) => {
    const close = e.target instanceof Element && e.target.closest("#drawer [data-close-drawer]");
    if (!close) return;
    e.preventDefault();
    e.stopPropagation();
    closeDrawer();
  }, true);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && panel()) closeDrawer(); });

  // Someone else added or deleted a movement of the line whose drawer is open: its line
  // arrives with a new stamp, and the drawer is fetched again — its list only while its
  // user is typing in the add form (what they typed stays).
  let refreshing = false;
  const refreshDrawer = async () => {
    const open = panel();
    if (!open || refreshing) return;
    const line = document.getElementById(`line-${open.dataset.line}`);
    if (!line || line.dataset.moves === open.dataset.moves) return;
    refreshing = true;
    try {
      const url = `${open.dataset.editingUrl.replace(/\/editing$/, "")}/movements`;
      const answer = await fetch(url, { headers: { "HX-Request": "true", "HX-Request-Type": "partial" } });
      if (!answer.ok || panel() !== open) return;
      const fresh = document.createElement("template");
      fresh.innerHTML = await answer.text();
      const next = fresh.content.querySelector(".drawer__panel");
      if (!next) return;
      const form = open.querySelector("form.move-form");
      const typing = form && ([...form.elements].some((el) => "defaultValue" in el && el.value !== el.defaultValue)
        || form.contains(document.activeElement));
      if (typing && next.querySelector("form.move-form")) {
        next.querySelector("form.move-form").replaceWith(form); // the typed form moves across
      }
      open.replaceWith(next);
      htmx.process(next);
    } catch { /* offline: the next change tries again */ } finally {
      refreshing = false;
    }
  };
  document.addEventListener("htmx:after:swap", () => { drawerOpened(); refreshDrawer(); });
  document.addEventListener("htmx:after:settle", () => { drawerOpened(); refreshDrawer(); });
  new MutationObserver(() => refreshDrawer())
    .observe(document.documentElement, { subtree: true, attributes: true, attributeFilter: ["data-moves"] });
  window.addEventListener("pagehide", () => stop());

  // Typed in: this form is the counter's until they save it.
  document.addEventListener("input", (e) => {
    const form = e.target instanceof Element && e.target.closest("form.line__count");
    if (form) form.setAttribute("hx-morph-skip", "");
  });
  document.addEventListener("htmx:before:request", (e) => {
    const form = e.target instanceof Element && e.target.closest("form.line__count");
    if (form) form.removeAttribute("hx-morph-skip");
  });
})();

// ---- counts entered offline --------------------------------------------------------------
// A counter who loses the Wi-Fi loses nothing. Every count sent under JavaScript carries an
// id of its own (`client_id`): the server applies an id once, and answers a repeat with the
// line as it is (200, "saved already"). A count that cannot be sent — the tablet is offline,
// or the request failed for lack of network — is kept in localStorage (one queue per
// stocktake), shown as pending on its line, and sent when the connection is back (the
// `online` event, and a timer while anything waits): in order, one at a time, each removed
// only once the server has answered it. An answer is applied like any htmx answer: 200 the
// line counted (or already counted), 409 the line as it is now with both values, 422 the
// message at the field. Without JavaScript the plain form posts as before (no queue).
(() => {
  "use strict";
  const RETRY_EVERY = 7000; // ms, while counts wait
  const PENDING = "Pending — will be sent when the connection is back";
  const STOCKTAKE = /^(\/s\/[^/]+\/stocktakes\/\d+)(?:\/|$)/;
  const toast = (text, kind) => window.floorboard?.toast?.(text, kind);

  const newId = () => {
    if (window.crypto?.randomUUID) return window.crypto.randomUUID();
    const bytes = new Uint8Array(16);
    if (window.crypto?.getRandomValues) window.crypto.getRandomValues(bytes);
    else for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256);
    return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  };

  // One queue per stocktake, keyed by its path ("/s/killarney/stocktakes/12").
  const stocktakeOf = (path) => (new URL(path, location.href).pathname.match(STOCKTAKE) || [])[1] || "";
  const keyOf = (stocktake) => `floorboard:stocktake-counts:${stocktake}`;
  const load = (stocktake) => {
    try {
      const items = JSON.parse(localStorage.getItem(keyOf(stocktake)) || "[]");
      return Array.isArray(items) ? items : [];
    } catch { return []; }
  };
  const save = (stocktake, items) => {
    try {
      if (items.length) localStorage.setItem(keyOf(stocktake), JSON.stringify(items));
      else localStorage.removeItem(keyOf(stocktake));
    } catch { /* storage full or refused: the count stays on the screen only */ }
  };
  const here = () => stocktakeOf(location.pathname);

  const lineOf = (url) => (String(url).match(/\/lines\/(\d+)\/count$/) || [])[1] || "";
  const countForm = (line) => document.querySelector(`#line-${line} form.line__count`);

  // The pending marks: an element of each line (kept out of the live morphs), filled in
  // from the queue whenever the page is drawn or redrawn.
  const renderMarks = () => {
    const stocktake = here();
    if (!stocktake) return;
    const waiting = new Set(load(stocktake).map((item) => String(item.line)));
    for (const mark of document.querySelectorAll(".line__pending[data-line]")) {
      const pending = waiting.has(mark.dataset.line);
      if (pending && !mark.firstElementChild) {
        const badge = document.createElement("span");
        badge.className = "badge badge--warn";
        badge.textContent = PENDING;
        mark.replaceChildren(badge);
      } else if (!pending && mark.firstChild) {
        mark.replaceChildren();
      }
      // A line with a count waiting keeps what its counter typed (and the version they saw).
      if (pending) countForm(mark.dataset.line)?.setAttribute("hx-morph-skip", "");
    }
  };

  const enqueue = (item) => {
    const stocktake = stocktakeOf(item.url);
    if (!stocktake) return;
    const items = load(stocktake);
    if (!items.some((kept) => kept.fields.client_id === item.fields.client_id)) items.push(item);
    save(stocktake, items);
    renderMarks();
  };

  // One count to the server, its answer applied by htmx; what became of it: the answer's
  // status, or "network" (no answer: keep it).
  const send = (item) => {
    let outcome = "network";
    const fetcher = async (url, init) => {
      try {
        const answer = await window.fetch(url, init);
        outcome = answer.status;
        return answer;
      } catch {
        outcome = "network";
        return new Response(null, { status: 204 }); // nothing to apply; no error toast
      }
    };
    const options = { source: document.body, values: item.fields, target: "#toasts", swap: "none", fetch: fetcher };
    return htmx.ajax("POST", item.url, options).then(() => outcome, () => outcome);
  };

  let flushing = false;
  const flush = async () => {
    const stocktake = here();
    if (flushing || !stocktake || !navigator.onLine || typeof htmx === "undefined") return;
    flushing = true;
    try {
      for (;;) {
        const item = load(stocktake)[0];
        if (!item) break;
        countForm(item.line)?.removeAttribute("hx-morph-skip"); // the answer redraws it
        const outcome = await send(item);
        if (outcome === "network" || outcome >= 500) break; // not answered: try again later
        save(stocktake, load(stocktake).filter((kept) => kept.fields.client_id !== item.fields.client_id));
        if (outcome >= 400 && outcome !== 409 && outcome !== 422) {
          toast(`A count kept on this tablet was refused (${outcome}): please count that line again.`, "error");
        }
        renderMarks();
      }
    } finally {
      flushing = false;
      renderMarks();
    }
  };

  // Every count sent gets an id of its own; one that cannot go now joins the queue, and so
  // does any count while others wait (they go in the order they were made).
  document.addEventListener("htmx:config:request", (e) => {
    const form = e.target instanceof Element && e.target.closest("form.line__count");
    const ctx = e.detail?.ctx;
    if (!form || !ctx || !(ctx.request?.body instanceof FormData)) return;
    const id = newId();
    if (form.elements.client_id) form.elements.client_id.value = id;
    ctx.request.body.set("client_id", id);
    const fields = Object.fromEntries([...ctx.request.body].filter(([name]) => name !== "csrftoken"));
    const item = { url: ctx.request.action, fields, line: lineOf(ctx.request.action), at: Date.now() };
    ctx.floorboardCount = item;
    const stocktake = stocktakeOf(item.url);
    if (!navigator.onLine || (stocktake && load(stocktake).length)) {
      e.preventDefault(); // not sent now: kept
      enqueue(item);
      if (navigator.onLine) flush();
      else toast("No connection: the count is kept on this tablet and will be sent when the connection is back.");
    }
  });
  // Sent but not answered (the network went mid-request): kept, and sent again with the same
  // id, so a count the server did get is not applied twice. Said here instead of app.js's
  // "No connection — try again": there is nothing to try again.
  window.addEventListener("htmx:error", (e) => {
    const ctx = e.detail?.ctx;
    if (!ctx?.floorboardCount || ctx.response) return;
    e.stopImmediatePropagation();
    enqueue(ctx.floorboardCount);
    toast("No connection: the count is kept on this tablet and will be sent when the connection is back.");
  }, true);

  window.addEventListener("online", () => flush());
  setInterval(() => { if (here() && load(here()).length) flush(); }, RETRY_EVERY);
  const drawn = () => renderMarks();
  document.addEventListener("htmx:after:swap", drawn);
  document.addEventListener("htmx:after:settle", drawn);
  const arrived = () => { renderMarks(); flush(); };
  document.addEventListener("htmx:after:process", arrived); // a boosted arrival too
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", arrived);
  else arrived();
})();
