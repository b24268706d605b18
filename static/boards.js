// floorboard's boards: drag a card by its handle (mouse, finger or pen), or move it with
// the handle's arrow keys; "Bob is moving #12" while a drag lasts; "Bob is typing…" on a
// ticket's comments. Every move posts to the same address as the "Move to…" page, so a drag
// says what the mover saw (the card's version) like the plain "Move to…" page does, and
// the answer (what changed, or a 409 with the board as it is and a message) is applied.
(() => {
  "use strict";
  const { indicate: post } = window.floorboard;
  const RENEW_EVERY = 3000; // ms; others drop an indicator after 8 s without a renewal
  const TYPING_EVERY = 2000; // ms between "typing" events while keys go down
  const TYPING_IDLE = 3000; // ms without a key: "stopped typing"

  // Post a move as the card's own page would: the version the mover saw, a column and a
  // place ("top", "after:<id>"). The answer (the board as it is now and a message) is
  // applied like any htmx answer; it goes nowhere but its <hx-partial>s and toast.
  let refocus = null; // the card whose handle gets the focus back after the redraw
  const move = (card, column, position) => {
    const values = { version: card.dataset.version, column, position };
    htmx.ajax("POST", card.dataset.moveUrl, { source: card, values, target: "#toasts", swap: "none" })
      .catch(() => {});
  };
  const placeAfter = (card) => {
    let before = card.previousElementSibling;
    while (before && !before.classList.contains("ticket")) before = before.previousElementSibling;
    return before ? `after:${before.id.replace("ticket-", "")}` : "top";
  };
  const cardsOf = (list) => [...list.children].filter((el) => el.classList.contains("ticket"));

  // -- drag and drop -------------------------------------------------------------------
  let renewal = null;
  const wired = new WeakSet(); // not an attribute: a morph of the column would drop it
  const wireList = (list) => {
    if (wired.has(list) || typeof Sortable === "undefined") return;
    if (document.body.classList.contains("wall-page")) return; // the wall only shows
    wired.add(list);
    Sortable.create(list, {
      group: "board",
      handle: ".ticket__handle",
      draggable: ".ticket",
      animation: 150,
      ghostClass: "ticket--ghost",
      chosenClass: "ticket--dragging",
      onStart: (e) => {
        const card = e.item;
        post(card.dataset.movingUrl, "start");
        clearInterval(renewal);
        renewal = setInterval(() => post(card.dataset.movingUrl, "start"), RENEW_EVERY);
      },
      onEnd: (e) => {
        const card = e.item;
        clearInterval(renewal);
        renewal = null;
        post(card.dataset.movingUrl, "end");
        if (e.from === e.to && e.oldIndex === e.newIndex) return; // put back where it was
        move(card, e.to.dataset.column, placeAfter(card));
      },
    });
  };

  // -- the keyboard: arrows on a focused handle ------------------------------------------
  document.addEventListener("keydown", (e) => {
    const handle = e.target instanceof Element && e.target.closest(".ticket__handle");
    if (!handle || !["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"].includes(e.key)) return;
    const card = handle.closest(".ticket");
    const list = card.closest(".column__cards[data-column]");
    if (!list) return;
    e.preventDefault();
    const cards = cardsOf(list);
    const i = cards.indexOf(card);
    if (e.key === "ArrowUp" && i > 0) {
      move(card, list.dataset.column, i > 1 ? `after:${cards[i - 2].id.replace("ticket-", "")}` : "top");
    } else if (e.key === "ArrowDown" && i < cards.length - 1) {
      move(card, list.dataset.column, `after:${cards[i + 1].id.replace("ticket-", "")}`);
    } else if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      const lists = [...document.querySelectorAll(".column__cards[data-column]")];
      const next = lists[lists.indexOf(list) + (e.key === "ArrowLeft" ? -1 : 1)];
      if (next) move(card, next.dataset.column, "top");
    } else {
      return;
    }
    refocus = card.id;
  });
  const restoreFocus = () => {
    if (!refocus) return;
    const handle = document.querySelector(`#${refocus} .ticket__handle`);
    if (handle && document.activeElement !== handle) handle.focus();
  };
  document.addEventListener("htmx:after:settle", restoreFocus);
  document.addEventListener("htmx:after:swap", restoreFocus);
  document.addEventListener("focusin", (e) => {
    if (refocus && !(e.target instanceof Element && e.target.closest(`#${refocus}`))) refocus = null;
  });

  // -- "Bob is typing…" ---------------------------------------------------------------------
  // Shown while keys go down; taken away after TYPING_IDLE without one, and at once when
  // the typist sends the comment, leaves the box or leaves the page (back, a link, the tab
  // closed), so that the others never watch someone "typing" who is gone.
  let lastTyping = 0;
  let idle = null;
  let typingUrl = null;
  const stopTyping = () => {
    clearTimeout(idle);
    if (lastTyping && typingUrl) post(typingUrl, "end");
    lastTyping = 0;
  };
  document.addEventListener("input", (e) => {
    const box = e.target instanceof HTMLTextAreaElement && e.target.dataset.typingUrl ? e.target : null;
    if (!box) return;
    typingUrl = box.dataset.typingUrl;
    const now = Date.now();
    if (now - lastTyping > TYPING_EVERY) { lastTyping = now; post(typingUrl, "start"); }
    clearTimeout(idle);
    idle = setTimeout(stopTyping, TYPING_IDLE);
  });
  document.addEventListener("submit", (e) => {
    if (e.target.querySelector?.("textarea[data-typing-url]")) stopTyping();
  });
  document.addEventListener("focusout", (e) => {
    if (e.target instanceof HTMLTextAreaElement && e.target.dataset.typingUrl) stopTyping();
  });
  // Boosted links and htmx's back and forward swap the page without a pagehide.
  document.addEventListener("htmx:before:history:update", stopTyping);
  document.addEventListener("htmx:before:history:restore", stopTyping);
  window.addEventListener("pagehide", stopTyping);

  // -- a move by anyone: the card, and the order of the columns it left and entered -------
  // A move's event carries the moved card (morphed where it is) and each touched column's
  // head with its order (`#order-<id>`, data-order="12,7,3"): the cards are put in that
  // order here, moving the elements the page already has — not the whole column again.
  const reorder = (span) => {
    const list = document.getElementById(`cards-${span.dataset.column}`);
    if (!list) return; // a page without the board (a ticket's own page)
    list.closest(".column")?.classList.remove(...["none", "ok", "full", "over"].map((w) => `column--wip-${w}`));
    list.closest(".column")?.classList.add(`column--wip-${span.dataset.wip}`);
    let before = list.firstElementChild;
    for (const id of (span.dataset.order || "").split(",").filter(Boolean)) {
      const card = document.getElementById(`ticket-${id}`);
      if (!card) continue; // not on this page yet: the next resync brings it
      if (card !== before) list.insertBefore(card, before);
      else before = before.nextElementSibling;
    }
  };
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.type === "attributes" && change.target.classList?.contains("column__order")) {
        reorder(change.target);
      }
      for (const node of change.addedNodes) {
        if (!(node instanceof Element)) continue;
        const spans = node.matches(".column__order") ? [node] : node.querySelectorAll(".column__order");
        spans.forEach(reorder);
      }
    }
  }).observe(document.body, { childList: true, subtree: true, attributes: true, attributeFilter: ["data-order"] });

  // Lists come and go with swaps (a column redrawn, a boosted navigation): wire new ones.
  const wire = () => document.querySelectorAll(".column__cards[data-column]").forEach(wireList);
  document.addEventListener("htmx:after:process", wire);
  document.addEventListener("htmx:after:swap", wire);
  document.addEventListener("DOMContentLoaded", wire);
})();
