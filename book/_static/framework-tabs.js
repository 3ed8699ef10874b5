// Framework tabs: the little that sphinx-design 0.8's design-tabs.js does not do itself.
//
// design-tabs.js already switches every tab set of a sync group when one changes, stores the
// choice in localStorage ("<prefix>framework") and preselects `?framework=<id>`. Added here:
//  * `?framework=` is matched case-insensitively and accepts labels and the aliases of
//    d2lmini/frameworks.py (JAX, torch, tf, mx); an unknown value no longer overwrites the
//    stored choice, and the parameter also works on pages without tabs (it is stored for the next page);
//  * after a click, the tab set that was clicked stays put on screen even when tab sets
//    above it change height, and a `?framework=` in the address follows the new choice
//    (so reloading or sharing the link keeps what the reader picked);
//  * a choice made in another window of the book is applied here as well.
(() => {
  "use strict";
  const GROUP = "framework";
  const script = document.currentScript;
  // d2lmini.frameworks, handed over by framework_tabs.py: [{id, label, aliases, ...}, ...]
  const frameworks = JSON.parse(script?.dataset.frameworks || "[]");
  const sdScript = document.querySelector("script[data-sd-tabs-storage-prefix]");
  const prefix = sdScript ? sdScript.getAttribute("data-sd-tabs-storage-prefix") : "sphinx-design-tab-id-";
  const storageKey = prefix + GROUP;

  function normalize(value) {
    const wanted = (value || "").trim().toLowerCase();
    const found = frameworks.find((fw) => [fw.id, fw.label.toLowerCase(), ...fw.aliases].includes(wanted));
    return found ? found.id : null;
  }

  function load() {
    if (!prefix) return null;
    try { return window.localStorage.getItem(storageKey); } catch (err) { return null; }
  }

  function store(id) {
    if (!prefix) return;
    try { window.localStorage.setItem(storageKey, id); } catch (err) { /* no storage: no memory */ }
  }

  // Read before design-tabs.js runs (it runs on DOMContentLoaded and may overwrite it).
  const storedAtLoad = normalize(load());
  const param = new URLSearchParams(window.location.search).get(GROUP);

  function labels(id) {
    return document.querySelectorAll(`.sd-tab-label[data-sync-group="${GROUP}"][data-sync-id="${id}"]`);
  }

  function select(id) {
    labels(id).forEach((label) => {
      const input = document.getElementById(label.getAttribute("for"));
      if (input) input.checked = true;   // like design-tabs.js: no change event, no cascade
    });
  }

  function init() {
    const fromUrl = param === null ? null : normalize(param);
    const chosen = fromUrl || storedAtLoad;
    if (chosen) {
      select(chosen);
      store(chosen);   // also undoes design-tabs.js storing an unknown `?framework=` value
    } else if (param !== null && prefix) {
      try { window.localStorage.removeItem(storageKey); } catch (err) { /* nothing stored */ }
    }
  }

  // Keep the clicked tab set where it is on screen.
  let anchor = null;
  function remember(element) {
    const set = element && element.closest(".sd-tab-set");
    anchor = set ? { set, top: set.getBoundingClientRect().top } : null;
  }
  document.addEventListener("click", (event) => {
    const label = event.target instanceof Element
      && event.target.closest(`.sd-tab-label[data-sync-group="${GROUP}"]`);
    if (label) remember(label);
  }, true);
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement && event.target.closest(".sd-tab-set")) remember(event.target);
  }, true);

  // Bubbling listener: runs after design-tabs.js has synced the other tab sets.
  document.addEventListener("change", (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.checked) return;
    const label = input.nextElementSibling;
    if (!label || label.getAttribute("data-sync-group") !== GROUP) return;
    const id = label.getAttribute("data-sync-id");
    select(id);
    store(id);
    if (anchor && anchor.set.contains(input)) {
      const shift = anchor.set.getBoundingClientRect().top - anchor.top;
      if (shift) window.scrollBy(0, shift);
    }
    anchor = null;
    const url = new URL(window.location.href);
    if (url.searchParams.has(GROUP) && url.searchParams.get(GROUP) !== id) {
      url.searchParams.set(GROUP, id);
      window.history.replaceState(window.history.state, "", url);
    }
  });

  window.addEventListener("storage", (event) => {
    if (event.key === storageKey && event.newValue) {
      const id = normalize(event.newValue);
      if (id) select(id);
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
