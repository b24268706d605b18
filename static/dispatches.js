// floorboard's dispatch status board. Cards arrive live one by one (deleted where they
// were, upserted in their column by urgency); the broadcast is the same for everyone, so
// this page keeps out the cards its own filters hide, keeps ticked what its user ticked
// (a card redrawn while ticked stays ticked), recounts the columns, and turns a card
// overdue when its due time passes while the page is open.
(() => {
  "use strict";
  const ticked = new Set(); // dispatch ids this page's user has ticked

  const board = () => document.getElementById("board");
  const idOf = (box) => box.value.split(":")[0];

  const tidy = () => {
    const here = board();
    if (!here) return;
    const wanted = {
      priority: here.dataset.priority || "",
      asset: here.dataset.asset || "",
      assignee: here.dataset.assignee || "",
    };
    for (const card of here.querySelectorAll(".dcard")) {
      const hidden = Object.entries(wanted).some(([name, value]) => value && card.dataset[name] !== value);
      if (hidden) { card.remove(); continue; }
      const box = card.querySelector('input[name="dispatches"]');
      if (box && ticked.has(idOf(box)) && !box.checked) box.checked = true;
    }
    for (const count of here.querySelectorAll("[data-count-of]")) {
      const list = document.getElementById(count.dataset.countOf);
      if (list) count.textContent = String(list.children.length);
    }
    markOverdue();
  };

  const markOverdue = () => {
    const now = Date.now();
    let overdue = 0;
    for (const card of document.querySelectorAll(".dcard[data-due]")) {
      const late = Date.parse(card.dataset.due) < now;
      card.classList.toggle("dcard--overdue", late);
      if (late) overdue += 1;
    }
    const note = document.getElementById("overdue-note");
    if (note && board()) note.innerHTML = overdue ? `<strong>${overdue} overdue</strong>` : "";
  };

  document.addEventListener("change", (e) => {
    const box = e.target instanceof HTMLInputElement && e.target.name === "dispatches" ? e.target : null;
    if (!box) return;
    if (box.checked) ticked.add(idOf(box)); else ticked.delete(idOf(box));
  });
  // A bulk change that went through: nothing stays ticked.
  document.addEventListener("htmx:after:request", (e) => {
    const form = e.target instanceof HTMLFormElement && e.target.id === "bulk-form" ? e.target : null;
    if (!form || !e.detail?.ctx?.response || e.detail.ctx.response.status >= 300) return;
    ticked.clear();
    for (const box of document.querySelectorAll('input[name="dispatches"]:checked')) box.checked = false;
    const results = document.getElementById("bulk-results");
    if (results) results.replaceChildren();
  });
  document.addEventListener("htmx:after:swap", tidy);
  document.addEventListener("htmx:after:settle", tidy);
  document.addEventListener("htmx:after:process", tidy);
  setInterval(markOverdue, 30000);
})();
