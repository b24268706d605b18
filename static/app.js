// floorboard's page glue. No build step; loaded after htmx with `defer`.
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
