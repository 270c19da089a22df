// The live board: keeps the tables in step with /events/requests (server-sent events).
// Rows arrive as data plus the HTML the server renders with the page's own macro.
(function () {
  "use strict";

  const board = document.getElementById("board");
  if (!board) return;

  const SECTIONS = ["active", "recent"];
  const ACTIVE = ["escalated", "open", "offered", "assigned", "en_route", "arrived"];
  let lastCounts = {};
  const warnMs = Number(board.dataset.slaWarn || 300) * 1000;
  let recentLimit = Number(board.dataset.recentLimit || 15);
  let clockOffset = offsetFrom(board.dataset.serverTime); // server clock minus ours
  const rows = new Map(); // request id -> row
  const alerts = new Map(); // alert id -> row
  const alerted = new Set(); // ids whose alarm already sounded (requests and alerts)
  let firstSnapshot = true;
  const alertList = document.getElementById("alerts");
  const alertsEmpty = document.getElementById("alerts-empty");
  const live = document.getElementById("live");
  const tbody = {
    active: document.querySelector("#active tbody"),
    recent: document.querySelector("#recent tbody"),
  };
  const empty = {
    active: document.getElementById("active-empty"),
    recent: document.getElementById("recent-empty"),
  };
  const scratch = document.createElement("template");
  const baseTitle = document.title;
  let source = null;
  let retryTimer = null;

  function offsetFrom(serverTime) {
    const t = Date.parse(serverTime || "");
    return Number.isNaN(t) ? 0 : t - Date.now();
  }

  function now() {
    return Date.now() + clockOffset;
  }

  function compareKeys(a, b) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const d = (a[i] || 0) - (b[i] || 0);
      if (d) return d;
    }
    return 0;
  }

  function setState(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  // --- applying events -----------------------------------------------------------------------

  // A snapshot never beeps (it is what the page already showed, or a reconnect); alarms that
  // are in it count as heard, so only emergencies that appear afterwards sound.
  function onSnapshot(data) {
    clockOffset = offsetFrom(data.server_time);
    recentLimit = data.recent_limit;
    rows.clear();
    for (const row of data.active.concat(data.recent)) rows.set(row.id, row);
    alerts.clear();
    for (const a of data.alerts || []) alerts.set(a.id, a);
    render(new Set());
    renderAlerts(new Set());
    setCounts(data.counts);
    if (firstSnapshot) for (const id of alarmIds()) alerted.add(id);
    else soundNewAlarms(); // a reconnect: emergencies that came meanwhile still sound
    firstSnapshot = false;
  }

  function onChanges(data) {
    clockOffset = offsetFrom(data.server_time);
    for (const id of data.removed || []) rows.delete(id);
    const changed = new Set();
    for (const row of data.rows || []) {
      rows.set(row.id, row);
      changed.add(row.id);
    }
    for (const id of data.alerts_removed || []) alerts.delete(id);
    const changedAlerts = new Set();
    for (const a of data.alerts || []) {
      alerts.set(a.id, a);
      changedAlerts.add(a.id);
    }
    if (changed.size || (data.removed || []).length) render(changed);
    if (changedAlerts.size || (data.alerts_removed || []).length) renderAlerts(changedAlerts);
    if (data.counts) setCounts(data.counts);
    soundNewAlarms();
  }

  function alarmIds() {
    const ids = [];
    // The key changes when an alarm is announced again (nobody took or acknowledged it), so it sounds again.
    for (const row of rows.values()) if (row.alarm) ids.push(row.alarm_key || row.id);
    for (const a of alerts.values()) if (a.emergency) ids.push(a.alarm_key || a.id);
    return ids;
  }

  // New emergencies: a beep (when sound is on) and the title blinks until the tab is looked at.
  function soundNewAlarms() {
    const fresh = alarmIds().filter((id) => !alerted.has(id));
    if (!fresh.length) return;
    for (const id of fresh) alerted.add(id);
    if (window.Homecare) window.Homecare.beep();
    blinkTitle();
  }

  let blinker = null;
  function blinkTitle() {
    if (blinker || !document.hidden) return;
    let on = false;
    blinker = setInterval(() => {
      on = !on;
      document.title = on ? "⚠ EMERGENCY" : baseTitle;
    }, 800);
    document.addEventListener("visibilitychange", function stop() {
      if (document.hidden) return;
      clearInterval(blinker);
      blinker = null;
      setCounts(lastCounts);
      document.removeEventListener("visibilitychange", stop);
    });
  }

  function renderAlerts(changed) {
    const list = [...alerts.values()].sort((a, b) => compareKeys(a.sort, b.sort));
    scratch.innerHTML = list.map((a) => a.html).join("");
    for (const li of scratch.content.querySelectorAll("li[data-alert]")) {
      if (changed.has(li.dataset.alert)) li.classList.add("changed");
    }
    alertList.replaceChildren(scratch.content);
    alertsEmpty.hidden = list.length > 0;
    document.getElementById("alerts-total").textContent = String(list.length);
    localiseTimes();
  }

  // One click acknowledges; the change comes back over the stream like any other.
  alertList.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-ack]");
    if (!button) return;
    button.disabled = true;
    fetch("/alerts/" + encodeURIComponent(button.dataset.ack) + "/acknowledge", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": window.Homecare ? window.Homecare.csrf() : "" },
    }).then((r) => {
      if (!r.ok && r.status !== 303) button.disabled = false;
    }, () => { button.disabled = false; });
  });

  // A click anywhere on a request row opens it (the name is the link for keyboards).
  board.addEventListener("click", (event) => {
    const tr = event.target.closest("tr.request[data-id]");
    if (!tr || event.target.closest("a, button")) return;
    window.location.assign("/requests/" + encodeURIComponent(tr.dataset.id));
  });

  // --- rendering -----------------------------------------------------------------------------

  function render(changed) {
    for (const section of SECTIONS) {
      let list = [...rows.values()].filter((r) => r.section === section);
      list.sort((a, b) => compareKeys(a.sort, b.sort));
      if (section === "recent") {
        for (const row of list.slice(recentLimit)) rows.delete(row.id);
        list = list.slice(0, recentLimit);
      }
      scratch.innerHTML = list.map((r) => r.html).join("");
      for (const tr of scratch.content.querySelectorAll("tr[data-id]")) {
        if (changed.has(tr.dataset.id)) tr.classList.add("changed");
      }
      tbody[section].replaceChildren(scratch.content);
      empty[section].hidden = list.length > 0;
    }
    showTotal();
    localiseTimes();
    tick();
  }

  function countOf(section) {
    let n = 0;
    for (const row of rows.values()) if (row.section === section) n++;
    return n;
  }

  // "12", or "200 of 245" when the board could load only the newest of them.
  function showTotal() {
    const shown = countOf("active");
    const total = ACTIVE.reduce((n, s) => n + (lastCounts[s] || 0), 0);
    document.getElementById("active-total").textContent =
      total > shown ? shown + " of " + total : String(shown);
  }

  function setCounts(counts) {
    if (!counts) return;
    lastCounts = counts;
    showTotal();
    for (const chip of document.querySelectorAll("#counts [data-status]")) {
      chip.querySelector("b").textContent = String(counts[chip.dataset.status] || 0);
    }
    const waiting = (counts.escalated || 0) + (counts.open || 0);
    document.title = waiting ? "(" + waiting + ") " + baseTitle : baseTitle;
  }

  function localiseTimes() {
    for (const el of board.querySelectorAll("time.local-time")) {
      const t = Date.parse(el.getAttribute("datetime"));
      if (!Number.isNaN(t)) {
        el.textContent = new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
      }
    }
  }

  function clock(ms) {
    const s = Math.floor(Math.abs(ms) / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = String(s % 60).padStart(2, "0");
    return h ? h + " h " + String(m).padStart(2, "0") + " m" : m + ":" + sec;
  }

  function age(ms) {
    const min = Math.floor(ms / 60000);
    if (min < 1) return "just now";
    if (min < 60) return min + " min";
    return Math.floor(min / 60) + " h " + (min % 60) + " min";
  }

  // Counts SLA clocks down every second against the server's clock.
  function tick() {
    const t = now();
    for (const el of board.querySelectorAll(".sla[data-due]")) {
      const left = Date.parse(el.dataset.due) - t;
      const state = left <= 0 ? "late" : left <= warnMs ? "warn" : "ok";
      el.classList.toggle("sla-ok", state === "ok");
      el.classList.toggle("sla-warn", state === "warn");
      el.classList.toggle("sla-late", state === "late");
      el.textContent = left <= 0 ? "late " + clock(left) : "in " + clock(left);
    }
    for (const el of board.querySelectorAll(".age[data-since]")) {
      el.textContent = age(t - Date.parse(el.dataset.since));
    }
  }

  // --- the stream ----------------------------------------------------------------------------

  function parse(event) {
    try {
      return JSON.parse(event.data);
    } catch (err) {
      console.error("board: bad event", err);
      return null;
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    if (source) source.close();
    setState("connecting", "Connecting…");
    source = new EventSource(board.dataset.stream);
    source.addEventListener("open", () => setState("live", "Live"));
    source.addEventListener("snapshot", (e) => {
      const data = parse(e);
      if (data) onSnapshot(data);
    });
    source.addEventListener("changes", (e) => {
      const data = parse(e);
      if (data) onChanges(data);
    });
    source.addEventListener("signed-out", () => {
      source.close();
      signIn();
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CONNECTING) {
        setState("reconnecting", "Reconnecting…");
        return;
      }
      // The browser gave up (an HTTP error): signed out, or the server is away.
      setState("offline", "Offline — retrying");
      fetch("/api/v1/me", { credentials: "same-origin" })
        .then((r) => (r.status === 401 ? signIn() : retryLater()))
        .catch(retryLater);
    });
  }

  function retryLater() {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, 5000);
  }

  function signIn() {
    window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
  }

  localiseTimes();
  tick();
  setInterval(tick, 1000);
  connect();
})();
