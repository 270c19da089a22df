// Shared by every page: local times, SLA and deadline countdowns against the server's clock,
// and a beep made with WebAudio (no sound files). Exposed as window.Homecare.
(function () {
  "use strict";

  const meta = document.querySelector('meta[name="server-time"]');
  let clockOffset = offsetFrom(meta && meta.content);

  function offsetFrom(serverTime) {
    const t = Date.parse(serverTime || "");
    return Number.isNaN(t) ? 0 : t - Date.now();
  }

  function now() {
    return Date.now() + clockOffset;
  }

  const TIME = { hour: "2-digit", minute: "2-digit", hour12: false };
  const DATETIME = { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hour12: false };
  const DATE = { day: "numeric", month: "short", year: "numeric" };

  const DAY = { weekday: "short", day: "numeric" };

  function localise(root) {
    for (const el of (root || document).querySelectorAll("text[data-time]")) {
      const t = Date.parse(el.dataset.time);
      if (Number.isNaN(t)) continue;
      el.textContent = new Date(t).toLocaleString([], el.dataset.format === "day" ? DAY : TIME);
    }
    for (const el of (root || document).querySelectorAll("time.local-time")) {
      const t = Date.parse(el.getAttribute("datetime"));
      if (Number.isNaN(t)) continue;
      const fmt = el.dataset.format === "datetime" ? DATETIME : el.dataset.format === "date" ? DATE : TIME;
      el.textContent = new Date(t).toLocaleString([], fmt);
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
    if (min < 60) return min + " min ago";
    if (min < 1440) return Math.floor(min / 60) + " h " + (min % 60) + " min ago";
    return Math.floor(min / 1440) + " d ago";
  }

  function warnMsFor(el) {
    const holder = el.closest("[data-sla-warn]");
    return Number(holder ? holder.dataset.slaWarn : 300) * 1000;
  }

  // SLA clocks turn amber when little is left and red when late; deadlines count down too.
  function tick(root) {
    const t = now();
    const scope = root || document;
    for (const el of scope.querySelectorAll(".sla[data-due]:not([data-board])")) {
      const left = Date.parse(el.dataset.due) - t;
      const state = left <= 0 ? "late" : left <= warnMsFor(el) ? "warn" : "ok";
      el.classList.toggle("sla-ok", state === "ok");
      el.classList.toggle("sla-warn", state === "warn");
      el.classList.toggle("sla-late", state === "late");
      el.textContent = left <= 0 ? "late " + clock(left) : "in " + clock(left);
    }
    for (const el of scope.querySelectorAll(".countdown[data-deadline]")) {
      const left = Date.parse(el.dataset.deadline) - t;
      el.textContent = left <= 0 ? "time is up" : clock(left) + " left";
      el.classList.toggle("urgent", left < 30000);
    }
    for (const el of scope.querySelectorAll(".ago[data-since]")) {
      el.textContent = age(t - Date.parse(el.dataset.since));
    }
  }

  // --- sound ----------------------------------------------------------------------------------
  // Browsers start audio only after a user gesture, so the context is made on the first click.
  let audio = null;
  function unlock() {
    if (audio) return;
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx) audio = new Ctx();
  }
  document.addEventListener("pointerdown", unlock, { once: true });
  document.addEventListener("keydown", unlock, { once: true });

  function soundOn() {
    return localStorage.getItem("homecare.sound") !== "off";
  }

  // Three short high beeps: the pattern of an alarm, not of a notification.
  function beep() {
    document.body.dataset.alarms = String(Number(document.body.dataset.alarms || 0) + 1);
    if (!soundOn() || !audio) return false;
    if (audio.state === "suspended") audio.resume();
    const start = audio.currentTime + 0.02;
    for (let i = 0; i < 3; i++) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      const t0 = start + i * 0.22;
      gain.gain.setValueAtTime(0.0001, t0);
      gain.gain.exponentialRampToValueAtTime(0.18, t0 + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(t0);
      osc.stop(t0 + 0.18);
    }
    return true;
  }

  function csrf() {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  }

  function setOffset(serverTime) {
    clockOffset = offsetFrom(serverTime);
  }

  // A sound switch, where a page has one.
  const toggle = document.getElementById("sound-toggle");
  function showSound() {
    if (!toggle) return;
    toggle.setAttribute("aria-pressed", soundOn() ? "true" : "false");
    toggle.textContent = soundOn() ? "Sound on" : "Sound off";
  }
  if (toggle) {
    toggle.addEventListener("click", () => {
      localStorage.setItem("homecare.sound", soundOn() ? "off" : "on");
      unlock();
      showSound();
      if (soundOn()) beep();
    });
    showSound();
  }

  const flash = document.getElementById("flash");
  if (flash && flash.classList.contains("flash-ok")) setTimeout(() => flash.classList.add("fade"), 6000);

  // The system banner of staff pages: while a queue of the internal log is stuck, what reaches
  // dispatchers is late. Checked again (every 15 s by default), so a board left open all night
  // shows it too.
  const banner = document.getElementById("system-banner");
  if (banner && banner.dataset.source) {
    const lines = banner.querySelector(".lines");
    const show = (notices) => {
      lines.replaceChildren(...notices.map((text) => {
        const p = document.createElement("p");
        p.textContent = text;
        return p;
      }));
      banner.hidden = notices.length === 0;
    };
    const refresh = () => fetch(banner.dataset.source, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : r.status === 503 ? { notices: ["Delays cannot be checked: the console does not reach the internal log."] } : null))
      .then((body) => { if (body && Array.isArray(body.notices)) show(body.notices); })
      .catch(() => {});
    setInterval(refresh, (Number(banner.dataset.every) || 15) * 1000);
  }

  window.Homecare = { localise, tick, beep, csrf, now, setOffset, clock, age };
  localise();
  tick();
  setInterval(() => tick(), 1000);
})();
