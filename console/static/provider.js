// The provider's page tells dispatch it is open: a heartbeat now and every 30 s. A provider whose
// page (its app) goes quiet for the presence time-out (3 minutes) gets no offers until it beats
// again. Without JavaScript, each answer or step still counts as a sign of life.
(function () {
  "use strict";

  const EVERY_MS = 30000;

  function beat() {
    fetch("/provider/heartbeat", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": window.Homecare ? window.Homecare.csrf() : "" },
    }).catch((err) => console.warn("heartbeat failed", err));
  }

  beat();
  setInterval(beat, EVERY_MS);
  // A phone that wakes up (screen on, tab back) says so at once instead of waiting for the timer.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") beat();
  });
})();
