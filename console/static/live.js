// Keeps a page's live regions current: on a change that concerns the page (a request or alert
// id it shows, or any change for "*"), the page is fetched again and each
// [data-live-region] is swapped for its new version. Forms outside those regions are untouched,
// so a note being typed is never lost.
(function () {
  "use strict";

  const page = document.querySelector("[data-live-stream]");
  if (!page) return;
  const ids = new Set((page.dataset.liveIds || "").split(/\s+/).filter(Boolean));
  const everything = ids.has("*");
  let source = null;
  let pending = null;
  let snapshots = 0;

  const anyAlert = ids.has("*alerts"); // a list of alerts: any alert that changes may belong in it

  function concerns(data) {
    if (everything) return true;
    if (anyAlert && ((data.alerts || []).length || (data.alerts_removed || []).length)) return true;
    const touched = [];
    for (const row of data.rows || []) touched.push(row.id);
    for (const row of data.alerts || []) touched.push(row.id);
    for (const id of (data.removed || []).concat(data.alerts_removed || [])) touched.push(id);
    return touched.some((id) => ids.has(id));
  }

  // A page that follows every change (the roster) refreshes at most every 2 s.
  const quiet = everything ? 2000 : 150;
  let last = 0;

  function refresh() {
    clearTimeout(pending);
    const wait = Math.max(150, last + quiet - Date.now());
    pending = setTimeout(() => {
      last = Date.now();
      fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
        .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
        .then(swap)
        .catch((err) => console.warn("live: refresh failed", err));
    }, wait);
  }

  function swap(html) {
    const fresh = new DOMParser().parseFromString(html, "text/html");
    for (const region of document.querySelectorAll("[data-live-region]")) {
      const next = fresh.querySelector('[data-live-region="' + region.dataset.liveRegion + '"]');
      if (next) {
        region.replaceWith(next);
      }
    }
    if (window.Homecare) {
      window.Homecare.localise();
      window.Homecare.tick();
    }
    document.dispatchEvent(new CustomEvent("live:updated"));
  }

  function connect() {
    source = new EventSource(page.dataset.liveStream);
    source.addEventListener("open", () => { document.body.dataset.live = "open"; });
    source.addEventListener("error", () => { document.body.dataset.live = "reconnecting"; });
    source.addEventListener("snapshot", () => {
      if (snapshots++ > 0) refresh(); // a reconnect: something may have changed meanwhile
    });
    source.addEventListener("changes", (e) => {
      try {
        if (concerns(JSON.parse(e.data))) refresh();
      } catch (err) {
        console.error("live: bad event", err);
      }
    });
    source.addEventListener("refresh", refresh);
    source.addEventListener("signed-out", () => {
      source.close();
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
    });
  }

  const routine = document.getElementById("show-routine");
  function showRoutine() {
    document.body.classList.toggle("show-routine", !!(routine && routine.checked));
  }
  if (routine) routine.addEventListener("change", showRoutine);

  connect();
})();
