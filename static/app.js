// floorboard's page glue. No build step; loaded after htmx with `defer`.
document.documentElement.classList.add("js");

(() => {
  "use strict";

  // CSRF: piccolo_api's double-submit cookie, copied into the header of every htmx request.
  // (A listener, not hx-headers: htmx 4 inheritance is explicit and a child's own
  // hx-headers would replace an inherited one.)
  const csrfToken = () => {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  };
  document.addEventListener("htmx:config:request", (e) => {
    e.detail.ctx.request.headers["X-CSRFToken"] = csrfToken();
  });

  // Toasts: short notices announced by the #toasts live region, gone after a while.
  const toast = (text, kind = "info") => {
    const box = document.getElementById("toasts");
    if (!box) return;
    const item = document.createElement("div");
    item.className = `toast toast--${kind}`;
    item.textContent = text;
    box.append(item);
    setTimeout(() => item.remove(), 6000);
  };
  // "Bob is moving #12", "Erin is editing Guinness Keg": tell the page's others that this
  // user started or ended something (`state`). keepalive: an "end" sent as the page is
  // left (pagehide: the back button, a link) still arrives; without it the browser drops
  // the request with the page and the others keep the indicator until it lapses.
  const indicate = (url, state) => {
    if (!url) return;
    const body = new FormData();
    body.append("state", state);
    const headers = { "X-CSRFToken": csrfToken() };
    fetch(url, { method: "POST", body, headers, keepalive: true }).catch(() => {});
  };
  window.floorboard = { toast, csrfToken, indicate };

  // htmx parses a boosted page with scripting off, so its <noscript> children come in as
  // real elements: the no-JavaScript status frame would load (and refresh itself every
  // 15 s) hidden in every page reached by a boosted link. Drop them before the swap.
  document.addEventListener("htmx:before:swap", (e) => {
    for (const task of e.detail?.tasks || []) {
      for (const el of task.fragment?.querySelectorAll?.("noscript") || []) el.remove();
    }
  });

  // Answers htmx does not swap (403, 5xx, network failures) still tell the user something.
  // The page's own stream and polls (source #live) report through #live-status instead.
  const fromLive = (e) => e.target instanceof Element && e.target.id === "live";
  document.addEventListener("htmx:response:error", (e) => {
    if (fromLive(e)) return;
    const ctx = e.detail?.ctx;
    const status = ctx?.response?.status;
    // A 503 says in a sentence what is not answering ("… try again in a moment").
    const said = status === 503 && ctx.response.headers?.get("content-type")?.startsWith("text/plain");
    if (status === 403) toast("Not allowed — reload the page and try again.", "error");
    else if (said && ctx.text) toast(ctx.text.slice(0, 300), "error");
    else if (status >= 500) toast("Something went wrong on our side. Please try again.", "error");
  });
  document.addEventListener("htmx:error", (e) => {
    if (fromLive(e)) return;
    if (!e.detail?.ctx?.response) toast("No connection — check the Wi-Fi and try again.", "error");
  });
})();

// ---- live pages: connection state, polling fallback, heartbeats -------------------------
// Wired per #live element, not once per document: a boosted navigation swaps in a new body
// (new #live, #live-status, #toasts) without a DOMContentLoaded, and the old page's timers
// must stop, or it would keep heartbeating a connection that no longer exists.
(() => {
  "use strict";
  const POLL_EVERY = 5000; // ms, while the stream cannot be held
  const BEAT_EVERY = 5000; // ms; presence drops a page after 15 s without one
  const FAILURES_BEFORE_POLLING = 3;
  const RETRY_BASE = 1000; // ms; a stream that never opened is retried like a reconnect
  const RETRY_MAX = 10000;

  const { csrfToken } = window.floorboard;

  let stopCurrent = null; // tears down the timers of the page wired last

  const start = (live) => {
    if (stopCurrent) stopCurrent();
    const status = document.getElementById("live-status");
    const labels = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", polling: "Polling" };
    // A page that cannot reach the server says since when (a wall screen left for days
    // must not look current when it is not); polling is current, only slower.
    let offlineSince = null;
    const clock = (d) => d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const show = (state) => {
      if (!status || status.dataset.state === state) return;
      if (state === "reconnecting") offlineSince ||= new Date();
      else offlineSince = null;
      status.dataset.state = state;
      status.textContent = offlineSince
        ? `Offline since ${clock(offlineSince)} — reconnecting…` : labels[state];
    };
    const cursorEl = () => document.getElementById("live-cursor");
    const setCursor = (id) => { if (id && cursorEl()) cursorEl().dataset.cursor = id; };
    const streamPath = new URL(live.getAttribute("hx-sse:connect"), location.href).pathname;
    const pollPath = new URL(live.dataset.pollUrl, location.href).pathname;
    const pathOf = (ctx) => ctx?.request?.action && new URL(ctx.request.action, location.href).pathname;

    let failures = 0;
    let streaming = false; // the hx-sse extension holds the stream (and reconnects by itself)
    let pollTimer = null;
    let retryTimer = null;
    const poll = () => {
      if (!live.isConnected) return stop();
      const url = new URL(live.dataset.pollUrl, location.href); // it may carry the page's filters
      url.searchParams.set("cursor", cursorEl()?.dataset.cursor || "");
      // htmx applies the <hx-partial>s of the answer; 204 (nothing new) swaps nothing.
      htmx.ajax("GET", url.pathname + url.search, { source: live, target: live, swap: "none" }).catch(() => {});
    };
    // A change too big to broadcast (a stocktake populated): each page fetches those
    // regions for itself, drawn with its own filters, a moment apart from the others.
    const REFETCH_SPREAD = 400; // ms
    const refetch = (regions) => {
      const url = new URL(live.dataset.pollUrl, location.href);
      url.searchParams.set("regions", regions);
      setTimeout(() => {
        if (!live.isConnected) return;
        htmx.ajax("GET", url.pathname + url.search, { source: live, target: live, swap: "none" }).catch(() => {});
      }, Math.random() * REFETCH_SPREAD);
    };
    let lastRefetch = ""; // the actor's page gets the same word in its answer and its stream
    const refetches = new MutationObserver((changes) => {
      for (const change of changes) {
        for (const node of change.addedNodes) {
          if (node instanceof HTMLElement && node.id === "live-refetch" && node.dataset.regions
              && node.dataset.n !== lastRefetch) {
            lastRefetch = node.dataset.n;
            refetch(node.dataset.regions);
          }
        }
      }
    });
    refetches.observe(document.body, { childList: true });

    const startPolling = () => {
      if (pollTimer) return;
      show("reconnecting"); // "Polling" once a poll gets through (see below)
      poll();
      pollTimer = setInterval(poll, POLL_EVERY);
    };
    const stopPolling = () => { clearInterval(pollTimer); pollTimer = null; };

    // The first request of the stream is a plain htmx request: if it fails (no network,
    // a proxy that refuses streams, a 5xx) the extension never takes over and never
    // retries. Retry it here, with the same backoff, and poll meanwhile.
    const connect = () => {
      retryTimer = null;
      if (!live.isConnected || streaming) return;
      htmx.ajax("GET", live.getAttribute("hx-sse:connect"), { source: live }).catch(() => {});
    };
    const streamFailed = () => {
      failures += 1;
      if (failures >= FAILURES_BEFORE_POLLING) startPolling(); else show("reconnecting");
    };
    live.addEventListener("htmx:finally:request", (e) => {
      const ctx = e.detail?.ctx;
      if (e.target !== live || !ctx) return;
      if (pathOf(ctx) === pollPath) {
        // Polling works only while polls get through: when they fail too, the server (or
        // the network) is away, and the page is reconnecting, not polling.
        if (pollTimer) show(ctx.response?.status < 500 ? "polling" : "reconnecting");
        return;
      }
      if (pathOf(ctx) !== streamPath || streaming) return;
      streamFailed();
      if (!retryTimer && live.isConnected) {
        const delay = Math.min(RETRY_BASE * 2 ** (failures - 1), RETRY_MAX);
        retryTimer = setTimeout(connect, delay * (0.7 + Math.random() * 0.6));
      }
    });

    live.addEventListener("htmx:sse:after:connection", () => {
      streaming = true; failures = 0; stopPolling(); show("live");
    });
    live.addEventListener("htmx:sse:after:message", (e) => setCursor(e.detail?.message?.id));
    live.addEventListener("htmx:sse:before:connection", (e) => {
      if (e.detail?.connection?.attempt > 0 && !pollTimer) show("reconnecting");
    });
    live.addEventListener("htmx:sse:error", (e) => {
      if (e.detail?.status === 401 || e.detail?.status === 404) {
        e.detail.connection.cancelled = true; // signed out or removed: stop retrying
        window.location.reload();
        return;
      }
      streamFailed();
    });
    live.addEventListener("htmx:sse:close", () => {
      streaming = false;
      if (live.isConnected && !document.hidden) startPolling();
    });

    // Presence: the page says it is open. Hidden tabs drop their stream (htmx pauses it),
    // so they stop beating too and leave the presence list: they are not looking.
    const beat = () => {
      if (!live.isConnected) return stop();
      if (document.hidden) return;
      fetch(live.dataset.beatUrl, { method: "POST", headers: { "X-CSRFToken": csrfToken() } })
        .then((r) => { if (r.status === 401 || r.status === 404) clearInterval(beatTimer); })
        .catch(() => {});
    };
    const beatTimer = setInterval(beat, BEAT_EVERY);

    const stop = () => {
      refetches.disconnect();
      clearInterval(beatTimer);
      clearTimeout(retryTimer);
      stopPolling();
      if (stopCurrent === stop) stopCurrent = null;
    };
    stopCurrent = stop;
  };

  // Toasts arriving through the stream go away by themselves, and nobody is told that
  // they themselves joined.
  const tidyToasts = (box) => {
    const me = document.body.dataset.me;
    new MutationObserver((changes) => {
      for (const change of changes) {
        for (const node of change.addedNodes) {
          if (!(node instanceof HTMLElement)) continue;
          if (me && node.dataset.user === me) { node.remove(); continue; }
          setTimeout(() => node.remove(), 6000);
        }
      }
    }).observe(box, { childList: true });
  };

  const wired = new WeakSet();
  const wire = () => {
    const live = document.getElementById("live");
    if (live && !wired.has(live)) { wired.add(live); start(live); }
    if (!live && stopCurrent) stopCurrent(); // a boosted navigation to a page that is not live
    const box = document.getElementById("toasts");
    if (box && !wired.has(box)) { wired.add(box); tidyToasts(box); }
  };
  // Runs when htmx has processed the page, and after every swap (boosted navigations);
  // before any stream answer can arrive, since those are asynchronous.
  document.addEventListener("htmx:after:process", wire);
  document.addEventListener("DOMContentLoaded", wire);
})();

// Relative times ("added 2 min ago", "expires in 23 h") stay true while the page is open.
(() => {
  "use strict";
  const say = (seconds) => {
    const span = Math.abs(seconds), past = seconds < 0;
    if (span < 45) return past ? "just now" : "in under a minute";
    const amount = span < 3600 ? `${Math.round(span / 60)} min`
      : span < 172800 ? `${Math.round(span / 3600)} h` : `${Math.round(span / 86400)} days`;
    return past ? `${amount} ago` : `in ${amount}`;
  };
  const refresh = () => {
    for (const el of document.querySelectorAll("time[data-ago]")) {
      const at = Date.parse(el.getAttribute("datetime"));
      if (!Number.isNaN(at)) el.textContent = say((at - Date.now()) / 1000);
    }
  };
  setInterval(refresh, 30000);
})();

// ---- soft-locked editors: keep the page's state true, and let go when leaving ------------
// The lock badge (#lock-…) is broadcast to every page of the area when the lock changes
// hands. An editor compares its holder with the signed-in user: the holder who lost it is
// told at once and can no longer save; a locked-out viewer sees when it is free.
(() => {
  "use strict";
  const { csrfToken } = window.floorboard;
  let keeper = null; // the open editor's renewal element, while this page holds a lock

  const sync = () => {
    const editor = document.getElementById("editor");
    const badge = editor && document.getElementById(editor.dataset.lock);
    if (!editor || !badge) return;
    // Lost stays lost: `lose` itself clears data-mine and removes the keeper (a change
    // the observer sees), which must not turn "lost" into "held" with no message.
    if (editor.dataset.lockState === "lost") return;
    const me = document.body.dataset.meId;
    const holder = badge.dataset.holderId;
    let state = editor.dataset.lockState;
    if (editor.dataset.mine) state = holder && holder !== me ? "lost" : state;
    else state = holder ? "held" : "free";
    if (state === editor.dataset.lockState) return;
    editor.dataset.lockState = state;
    if (state === "lost") lose(editor);
  };
  const lose = (editor) => {
    editor.dataset.lockState = "lost";
    editor.dataset.mine = "";
    const fields = editor.querySelector(".editor__fields");
    if (fields) fields.disabled = true;
    if (keeper) { keeper.remove(); keeper = null; }
  };

  // Leaving the editor by any way (a link, the back button, closing the tab) frees the
  // lock at once; without JavaScript it lapses within 30 s and its badge clears then.
  const release = (el) => {
    const body = new FormData();
    body.append("token", el.dataset.token);
    body.append("csrftoken", csrfToken());
    body.append("beacon", "1"); // answered 204: nothing to render for a page being left
    navigator.sendBeacon(el.dataset.releaseUrl, body);
  };
  const watch = () => {
    const current = document.getElementById("lock-keeper");
    if (keeper && keeper !== current && !keeper.isConnected
        && (!current || current.dataset.token !== keeper.dataset.token)) {
      release(keeper); // a boosted navigation away from the editor
    }
    keeper = current;
    const editor = document.getElementById("editor");
    if (editor && !observed.has(editor)) {
      observed.add(editor); // the badge is morphed in place: watch its holder attribute
      new MutationObserver(sync).observe(editor, {
        subtree: true, childList: true, attributes: true, attributeFilter: ["data-holder-id"],
      });
    }
    sync();
  };
  const observed = new WeakSet();
  window.addEventListener("pagehide", () => { if (keeper && keeper.isConnected) release(keeper); });
  document.addEventListener("htmx:after:process", watch);
  document.addEventListener("DOMContentLoaded", watch);
  // The renewal answers 409 once the lock was taken over or ran out.
  document.addEventListener("htmx:after:request", (e) => {
    if (e.target?.id === "lock-keeper" && e.detail?.ctx?.response?.status === 409) {
      const editor = document.getElementById("editor");
      if (editor) lose(editor);
    }
  });
})();

// ---- the drafts page: "3 ticked · Add" stays in reach at the bottom of the screen --------
// The count follows the ticks: the user's own, and rows that a swap took away (their own
// add, someone else's change arriving live, a morph of the whole list).
(() => {
  "use strict";
  const recount = () => {
    for (const count of document.querySelectorAll("[data-ticked-count]")) {
      const form = count.closest("form");
      const n = form ? form.querySelectorAll('input[type="checkbox"]:checked').length : 0;
      const text = n ? `${n} ticked` : "";
      if (count.textContent !== text) count.textContent = text;
    }
  };
  document.addEventListener("change", (e) => {
    if (e.target instanceof HTMLInputElement && e.target.type === "checkbox") recount();
  });
  document.addEventListener("htmx:after:swap", recount);
  document.addEventListener("htmx:after:settle", recount);
})();

// ---- ephemeral indicators ("Bob is moving #12", "Bob is typing…") ----------------------
// Sent live only. A person never sees their own; one not renewed within its data-ttl
// seconds goes (its author closed the tab or lost the Wi-Fi mid-drag). A renewal arrives
// as a new element (or a morph that drops data-seen), which starts the clock again.
(() => {
  "use strict";
  const sweep = () => {
    const me = document.body.dataset.me;
    const now = Date.now();
    for (const el of document.querySelectorAll(".indicator[data-ttl]")) {
      if (me && el.dataset.user === me) { el.hidden = true; continue; }
      if (!el.dataset.seen) { el.dataset.seen = String(now); continue; }
      if (now - Number(el.dataset.seen) > Number(el.dataset.ttl) * 1000) {
        if (el.parentElement?.classList.contains("indicators")) el.remove();
        else el.replaceWith(Object.assign(document.createElement("span"), { id: el.id }));
      }
    }
  };
  // New ones are checked as they arrive, so a person's own never shows even for a moment.
  const arrived = (changes) => {
    if (changes.some((c) => [...c.addedNodes].some((n) => n instanceof Element
        && (n.matches(".indicator") || n.querySelector(".indicator"))))) sweep();
  };
  const watch = () => new MutationObserver(arrived).observe(document.body, { childList: true, subtree: true });
  if (document.body) watch(); else document.addEventListener("DOMContentLoaded", watch);
  setInterval(sweep, 1000);
})();

// ---- a schedule's "now" line ------------------------------------------------------------
// Drawn across today's schedule where the clock is, and moved every half minute. The grid's
// hour labels give the scale: each spans an hour of rows from data-first (its first row).
(() => {
  "use strict";
  const place = () => {
    for (const grid of document.querySelectorAll(".schedule[data-today][data-first]")) {
      const line = grid.querySelector(".schedule__now");
      const hour = grid.querySelector(".schedule__hour");
      if (!line || !hour) continue;
      const minutes = (Date.now() - Date.parse(grid.dataset.first)) / 60000;
      const hours = grid.querySelectorAll(".schedule__hour").length;
      if (minutes < 0 || minutes > hours * 60) { line.hidden = true; continue; }
      line.style.top = `${hour.offsetTop + (minutes / 60) * hour.offsetHeight}px`;
      line.hidden = false;
    }
  };
  // A page showing "today" (a wall left on for days) turns to the new day at midnight.
  const rollOver = () => {
    const at = document.getElementById("rollover")?.dataset.at;
    if (at && Date.now() >= Date.parse(at)) window.location.reload();
  };
  setInterval(rollOver, 30000);
  for (const name of ["DOMContentLoaded", "htmx:after:process", "htmx:after:swap", "htmx:after:settle"]) {
    document.addEventListener(name, place);
  }
  setInterval(place, 30000);
})();
