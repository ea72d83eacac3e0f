// The media page: hovering a label highlights its boxes; a video's moments seek the player and
// the boxes of the moment being shown are drawn over it.
"use strict";

(function () {
  const overlay = document.getElementById("overlay");
  const rows = document.querySelectorAll(".label-row, .track");

  function focusLabel(index) {
    if (!overlay) return;
    overlay.classList.toggle("focus", index !== null);
    overlay.querySelectorAll("rect.box").forEach((rect) => {
      rect.classList.toggle("hl", index !== null && rect.dataset.label === index);
    });
  }

  rows.forEach((row) => {
    row.addEventListener("mouseenter", () => focusLabel(row.dataset.label));
    row.addEventListener("mouseleave", () => focusLabel(null));
    row.addEventListener("focusin", () => focusLabel(row.dataset.label));
    row.addEventListener("focusout", () => focusLabel(null));
  });

  const player = document.getElementById("player");
  if (!player) return;
  const timed = Array.from(document.querySelectorAll("rect.box.timed"));
  const buttons = Array.from(document.querySelectorAll("[data-ts].moment"));
  const stamps = Array.from(new Set(
    Array.from(document.querySelectorAll("[data-ts]")).map((node) => Number(node.dataset.ts))
  )).sort((a, b) => a - b);
  const HOLD_MS = 1500;  // a moment's boxes stay up until the next moment, at most this long

  function shownMoment() {
    const now = player.currentTime * 1000 + 40;
    let chosen = null;
    for (const ts of stamps) {
      if (ts <= now) chosen = ts; else break;
    }
    if (chosen === null || now - chosen > HOLD_MS) return null;
    return chosen;
  }

  function update() {
    const moment = shownMoment();
    timed.forEach((rect) => rect.classList.toggle("shown", Number(rect.dataset.ts) === moment));
    buttons.forEach((b) => b.classList.toggle("current", Number(b.dataset.ts) === moment));
    player.dataset.moment = moment === null ? "" : String(moment);
  }

  function seek(ts) {
    player.pause();
    player.currentTime = ts / 1000;
    update();
  }

  document.querySelectorAll(".moment, rect.tick").forEach((node) => {
    node.addEventListener("click", () => seek(Number(node.dataset.ts)));
  });
  ["timeupdate", "seeked", "loadedmetadata"].forEach((name) => player.addEventListener(name, update));
  update();
})();
