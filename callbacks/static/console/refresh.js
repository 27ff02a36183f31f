// The operator pages' live refresh and chart tooltips. Plain JavaScript, nothing loaded from elsewhere.
//
// Refresh: every data-refresh-seconds (on #tc-live) the page fetches its own URL and swaps each
// element marked data-refresh (by id) with the fresh one, in place: no navigation, the scroll
// position, the form being filled and the focus stay. A Pause button stops it (remembered for the
// tab). Without JavaScript the page is a plain page with a Refresh link.
//
// Tooltips: each chart's time slot is a rect.slot whose <title> names the time and the values;
// hovering or tapping it shows that text at once in a box beside the pointer.
(function () {
  "use strict";

  var PAUSED_KEY = "tc-refresh-paused";

  function slotText(slot) {
    if (slot.dataset.tip === undefined) {
      var title = slot.querySelector("title");
      slot.dataset.tip = title ? title.textContent : "";
      if (title) {
        title.remove(); // the box below shows it; the browser's own tooltip would show it twice
      }
    }
    return slot.dataset.tip;
  }

  function tooltips() {
    var tip = document.createElement("div");
    tip.className = "tc-tip";
    tip.setAttribute("role", "tooltip");
    tip.hidden = true;
    document.body.appendChild(tip);

    function show(event) {
      var slot = event.target.closest && event.target.closest("svg.tc-chart rect.slot");
      if (!slot) {
        tip.hidden = true;
        return;
      }
      tip.textContent = slotText(slot);
      tip.hidden = false;
      var x = event.clientX + 14;
      var y = event.clientY + 14;
      var width = tip.offsetWidth;
      var height = tip.offsetHeight;
      if (x + width > window.innerWidth - 4) {
        x = Math.max(4, event.clientX - width - 14);
      }
      if (y + height > window.innerHeight - 4) {
        y = Math.max(4, event.clientY - height - 14);
      }
      tip.style.left = x + "px";
      tip.style.top = y + "px";
    }

    document.addEventListener("pointermove", show);
    document.addEventListener("pointerdown", show);
    document.addEventListener("scroll", function () { tip.hidden = true; }, { passive: true });
  }

  function refresher(live) {
    var seconds = parseFloat(live.dataset.refreshSeconds) || 10;
    var paused = window.sessionStorage && sessionStorage.getItem(PAUSED_KEY) === "1";
    var busy = false;
    var timer = null;

    var button = document.createElement("button");
    button.type = "button";
    button.className = "button tc-pause";
    var status = document.createElement("span");
    status.className = "tc-live-status";
    status.setAttribute("aria-live", "polite");
    live.appendChild(status);
    live.appendChild(button);

    function label() {
      button.textContent = paused ? "Resume" : "Pause";
      button.setAttribute("aria-pressed", paused ? "true" : "false");
      status.textContent = paused ? "paused" : "refreshes every " + seconds + " s";
      live.classList.toggle("tc-paused", paused);
    }

    function swap(html) {
      var fresh = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("[data-refresh][id]").forEach(function (old) {
        var next = fresh.getElementById(old.id);
        if (next) {
          old.replaceWith(document.importNode(next, true));
        }
      });
      document.dispatchEvent(new CustomEvent("tc:refreshed"));
    }

    function tick() {
      if (paused || busy || document.hidden) {
        return;
      }
      busy = true;
      fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (!response.ok || response.redirected) {
            // Logged out, or the server is in trouble: say so rather than swap in a login form.
            throw new Error(response.redirected ? "signed out" : "HTTP " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          swap(html);
          live.classList.remove("tc-stale");
          label();
        })
        .catch(function (error) {
          live.classList.add("tc-stale");
          status.textContent = "not refreshed (" + error.message + "); retrying";
        })
        .finally(function () {
          busy = false;
        });
    }

    button.addEventListener("click", function () {
      paused = !paused;
      if (window.sessionStorage) {
        sessionStorage.setItem(PAUSED_KEY, paused ? "1" : "0");
      }
      label();
      if (!paused) {
        tick();
      }
    });
    label();
    timer = window.setInterval(tick, seconds * 1000);
    return timer;
  }

  document.addEventListener("DOMContentLoaded", function () {
    tooltips();
    var live = document.getElementById("tc-live");
    if (live) {
      refresher(live);
    }
  });
})();
