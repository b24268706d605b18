// floorboard's stocktakes: "Erin is editing Guinness Keg" on everyone else's line while
// someone has a line's count field focused or its movements drawer open (renewed while it
// lasts, ended on leaving), and a count form its user has typed in is kept out of the
// live redraws of its line (a morph would otherwise replace an unfocused field's text
// and the version the counter saw) until they save it.
(() => {
  "use strict";
  const RENEW_EVERY = 3000; // ms; others drop an indicator after 8 s without a renewal

  const post = (url, state) => {
    if (!url) return;
    const body = new FormData();
    body.append("state", state);
    const headers = { "X-CSRFToken": window.floorboard?.csrfToken?.() || "" };
    fetch(url, { method: "POST", body, headers }).catch(() => {});
  };

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
  const openDrawer = () => document.querySelector("details.line__moves[open]");

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
      const drawer = openDrawer();
      if (drawer) start(drawer.dataset.editingUrl); else stop(form.dataset.editingUrl);
    }, 0);
  });
  document.addEventListener("toggle", (e) => {
    const drawer = e.target instanceof HTMLDetailsElement && e.target.matches(".line__moves") ? e.target : null;
    if (!drawer) return;
    if (drawer.open) start(drawer.dataset.editingUrl);
    else stop(drawer.dataset.editingUrl);
  }, true);
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
