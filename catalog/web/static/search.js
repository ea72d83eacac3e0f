// The search page: exact count and facets fetched after the page renders, label autocomplete,
// sort changes that resubmit. Everything user-supplied is inserted as text, never as HTML.
"use strict";

(function () {
  const form = document.getElementById("search-form");
  const input = document.getElementById("q");
  const list = document.getElementById("suggestions");
  const sort = document.getElementById("sort");

  function quoteName(name) {
    if (/^[\p{L}\p{N}_][\p{L}\p{N}_\-'&.+\/]*$/u.test(name) && !/^(and|or|not)$/i.test(name)) {
      return name;
    }
    return '"' + name.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
  }

  function quoteValue(value) {
    return /^[^\s()"']+$/.test(value) ? value : '"' + value.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
  }

  function refine(query, term) {
    const q = query.trim();
    if (!q) return term;
    return (/\bor\b/i.test(q) ? "(" + q + ")" : q) + " " + term;
  }

  function searchUrl(query) {
    const params = new URLSearchParams({ q: query });
    if (sort && sort.value !== "newest") params.set("sort", sort.value);
    return "/?" + params.toString();
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // -- count and facets -------------------------------------------------------------------------
  const count = document.getElementById("count");
  if (count) {
    fetch("/api/count?" + new URLSearchParams({ q: count.dataset.query }))
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((data) => { count.textContent = data.count.toLocaleString("en"); count.dataset.count = data.count; })
      .catch(() => { count.textContent = "?"; });
  }

  const facets = document.getElementById("facets");
  if (facets) {
    const query = facets.dataset.query;
    fetch("/api/facets?" + new URLSearchParams({ q: query, top: "15" }))
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((data) => {
        facets.replaceChildren();
        const groups = [
          ["Kind", data.kinds, (f) => "kind:" + f.value],
          ["Labels", data.labels, (f) => quoteName(f.value)],
          ["Prefix", data.prefixes, (f) => (f.value ? "prefix:" + quoteValue(f.value) : null)],
        ];
        for (const [title, items, term] of groups) {
          if (!items.length) continue;
          facets.appendChild(el("h3", null, title));
          const ul = el("ul", "facet-list");
          for (const item of items) {
            const li = el("li");
            const t = term(item);
            const name = item.value || "(top level)";
            const node = t ? el("a", "facet", name) : el("span", "facet", name);
            if (t) {
              node.href = searchUrl(refine(query, t));
              node.dataset.term = t;
            }
            li.appendChild(node);
            li.appendChild(el("span", "facet-count", item.count.toLocaleString("en")));
            ul.appendChild(li);
          }
          facets.appendChild(ul);
        }
        facets.dataset.loaded = "true";
      })
      .catch(() => { facets.replaceChildren(el("p", "muted", "No facets.")); });
  }

  if (sort && form) sort.addEventListener("change", () => form.requestSubmit());

  // -- autocomplete -----------------------------------------------------------------------------
  if (!input || !list) return;
  let timer = null;
  let active = -1;
  let items = [];

  function currentWord() {
    const caret = input.selectionStart ?? input.value.length;
    const before = input.value.slice(0, caret);
    const match = before.match(/(?:^|[\s(])(["']?)([^\s()"'<>=:]*)$/);
    if (!match) return null;
    const word = match[2];
    if (/^(and|or|not)$/i.test(word)) return null;
    const start = caret - word.length - match[1].length;
    return { start, end: caret, word };
  }

  function close() {
    list.hidden = true;
    list.replaceChildren();
    items = [];
    active = -1;
  }

  function choose(index) {
    const word = currentWord();
    const item = items[index];
    if (!word || !item) return;
    const text = quoteName(item.label) + " ";
    input.value = input.value.slice(0, word.start) + text + input.value.slice(word.end);
    const caret = word.start + text.length;
    input.setSelectionRange(caret, caret);
    close();
    input.focus();
  }

  function highlight(index) {
    active = index;
    list.querySelectorAll("li").forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
  }

  function suggest() {
    const word = currentWord();
    if (!word || word.word.length < 1) { close(); return; }
    fetch("/api/labels?" + new URLSearchParams({ q: word.word, limit: "8" }))
      .then((r) => (r.ok ? r.json() : []))
      .then((labels) => {
        items = labels;
        list.replaceChildren();
        labels.forEach((label, i) => {
          const li = el("li", "suggestion");
          li.setAttribute("role", "option");
          li.dataset.label = label.label;
          li.appendChild(el("span", "s-name", label.label));
          li.appendChild(el("span", "s-count", label.media_count.toLocaleString("en")));
          if (label.aliases.length) li.appendChild(el("span", "s-aliases", label.aliases.join(", ")));
          li.addEventListener("mousedown", (event) => { event.preventDefault(); choose(i); });
          list.appendChild(li);
        });
        list.hidden = labels.length === 0;
        active = -1;
      })
      .catch(close);
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, 120);
  });
  input.addEventListener("keydown", (event) => {
    if (list.hidden || !items.length) return;
    if (event.key === "ArrowDown") { event.preventDefault(); highlight((active + 1) % items.length); }
    else if (event.key === "ArrowUp") { event.preventDefault(); highlight((active - 1 + items.length) % items.length); }
    else if ((event.key === "Enter" || event.key === "Tab") && active >= 0) { event.preventDefault(); choose(active); }
    else if (event.key === "Escape") close();
  });
  input.addEventListener("blur", () => setTimeout(close, 150));
})();
