// The failures page: copy a retry command to the clipboard.
"use strict";

document.querySelectorAll(".command").forEach((box) => {
  const text = box.querySelector(".command-text");
  const button = box.querySelector(".copy");
  if (!text || !button) return;
  text.addEventListener("focus", () => text.select());
  button.addEventListener("click", () => {
    text.select();
    const done = () => { button.textContent = "Copied"; };
    if (navigator.clipboard) navigator.clipboard.writeText(text.value).then(done, () => document.execCommand("copy") && done());
    else if (document.execCommand("copy")) done();
  });
});
