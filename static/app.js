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
  window.floorboard = { toast };

  // Answers htmx does not swap (403, 5xx, network failures) still tell the user something.
  document.addEventListener("htmx:response:error", (e) => {
    const status = e.detail?.ctx?.response?.status;
    if (status === 403) toast("Not allowed — reload the page and try again.", "error");
    else if (status >= 500) toast("Something went wrong on our side. Please try again.", "error");
  });
  document.addEventListener("htmx:error", (e) => {
    if (!e.detail?.ctx?.response) toast("No connection — check the Wi-Fi and try again.", "error");
  });
})();

// ---- live pages: connection state, polling fallback, heartbeats -------------------------
(() => {
  "use strict";
  const POLL_EVERY = 5000; // ms, while the stream cannot be held
  const BEAT_EVERY = 5000; // ms; presence drops a page after 15 s without one
  const FAILURES_BEFORE_POLLING = 3;

  const csrfToken = () => {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  };

  const start = () => {
    const live = document.getElementById("live");
    if (!live) return;
    const status = document.getElementById("live-status");
    const labels = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", polling: "Polling" };
    const show = (state) => {
      if (!status || status.dataset.state === state) return;
      status.dataset.state = state;
      status.textContent = labels[state];
    };
    const cursorEl = () => document.getElementById("live-cursor");
    const setCursor = (id) => { if (id && cursorEl()) cursorEl().dataset.cursor = id; };

    let failures = 0;
    let pollTimer = null;
    const poll = () => {
      const url = `${live.dataset.pollUrl}?cursor=${encodeURIComponent(cursorEl()?.dataset.cursor || "")}`;
      // htmx applies the <hx-partial>s of the answer; 204 (nothing new) swaps nothing.
      htmx.ajax("GET", url, { source: live, target: live, swap: "none" });
    };
    const startPolling = () => {
      show("polling");
      if (!pollTimer) { poll(); pollTimer = setInterval(poll, POLL_EVERY); }
    };
    const stopPolling = () => { clearInterval(pollTimer); pollTimer = null; };

    live.addEventListener("htmx:sse:after:connection", () => { failures = 0; stopPolling(); show("live"); });
    live.addEventListener("htmx:sse:after:message", (e) => setCursor(e.detail?.message?.id));
    live.addEventListener("htmx:sse:before:connection", (e) => {
      if (e.detail?.connection?.attempt > 0 && !pollTimer) show("reconnecting");
    });
    live.addEventListener("htmx:sse:error", (e) => {
      failures += 1;
      if (e.detail?.status === 401 || e.detail?.status === 404) {
        e.detail.connection.cancelled = true; // signed out or removed: stop retrying
        window.location.reload();
        return;
      }
      if (failures >= FAILURES_BEFORE_POLLING) startPolling(); else show("reconnecting");
    });
    live.addEventListener("htmx:sse:close", () => { if (!document.hidden) startPolling(); });

    // Presence: the page says it is open. Hidden tabs drop their stream (htmx pauses it),
    // so they stop beating too and leave the presence list: they are not looking.
    const beat = () => {
      if (document.hidden) return;
      fetch(live.dataset.beatUrl, { method: "POST", headers: { "X-CSRFToken": csrfToken() } })
        .then((r) => { if (r.status === 401 || r.status === 404) clearInterval(beatTimer); })
        .catch(() => {});
    };
    const beatTimer = setInterval(beat, BEAT_EVERY);
  };

  // Toasts arriving through the stream go away by themselves, and nobody is told that
  // they themselves joined.
  const tidyToasts = () => {
    const box = document.getElementById("toasts");
    if (!box) return;
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

  document.addEventListener("DOMContentLoaded", () => { start(); tidyToasts(); });
})();
