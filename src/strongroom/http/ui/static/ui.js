// Strongroom web console: Reveal and Copy on the secret page. No inline script anywhere; the
// value is fetched only on click (a POST with the CSRF token, audited as a read) and never stored.
"use strict";
(function () {
  var out = document.getElementById("secret-value");
  if (!out) { return; }
  var status = document.getElementById("reveal-status");
  var revealButton = document.getElementById("reveal");
  var copyButton = document.getElementById("copy");
  var shown = false;

  function fetchValue() {
    var body = new URLSearchParams();
    body.set("path", out.getAttribute("data-path"));
    return fetch("/ui/reveal", {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: {
        "X-CSRF-Token": out.getAttribute("data-csrf"),
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json"
      },
      body: body.toString()
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error(data.error || "request failed"); }
        return data.value;
      });
    });
  }

  function mask() {
    out.textContent = "••••••••••••";
    out.classList.add("masked");
    revealButton.textContent = "Reveal";
    shown = false;
  }

  revealButton.addEventListener("click", function () {
    if (shown) { mask(); return; }
    status.textContent = "";
    fetchValue().then(function (value) {
      out.textContent = value;
      out.classList.remove("masked");
      revealButton.textContent = "Hide";
      shown = true;
    }).catch(function (err) { status.textContent = err.message; });
  });

  copyButton.addEventListener("click", function () {
    fetchValue().then(function (value) {
      if (!navigator.clipboard) { throw new Error("clipboard not available (needs HTTPS)"); }
      return navigator.clipboard.writeText(value);
    }).then(function () {
      status.textContent = "Copied.";
    }).catch(function (err) { status.textContent = err.message; });
  });

  // Leaving the page (or the back/forward cache) must not keep the value on screen.
  window.addEventListener("pagehide", mask);
})();
