/* circular-ledger console: what every page shares. Written here, no dependencies.
 * - A form is sent once: its buttons are disabled on submit (the server also answers a repeated submission with
 *   the first one's result, by the form's submission key).
 * - The sign-in page reads a one-time link's code from the URL fragment (never sent to the server) and posts it.
 * - console.call(): a JSON call to the console's own endpoints, with the session's CSRF token in its header.
 */
(function () {
  "use strict";
  const csrfToken = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.dataset.script === "true") return;
    if (form.dataset.sent === "true") { event.preventDefault(); return; }
    form.dataset.sent = "true";
    form.setAttribute("aria-busy", "true");
    for (const button of form.querySelectorAll("button[type=submit], button:not([type])")) {
      button.disabled = true;
      if (button.dataset.busy) button.textContent = button.dataset.busy;
    }
    if (form.dataset.progress) showProgress(form);
  }, true);

  // A long write (a run of thousands in one transaction): the time it has taken so far, while the page waits.
  function showProgress(form) {
    const box = form.querySelector(".progress-box");
    if (!box) return;
    box.hidden = false;
    const text = box.querySelector(".progress-text");
    const started = Date.now();
    const tick = () => {
      const seconds = Math.round((Date.now() - started) / 1000);
      text.textContent = form.dataset.progress + " " + seconds + " s";
    };
    tick();
    setInterval(tick, 1000);
  }
  // Back to a page from the history: its forms may be sent again (the server still sends each submission once).
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    for (const form of document.querySelectorAll("form[data-sent]")) {
      delete form.dataset.sent;
      form.removeAttribute("aria-busy");
      for (const button of form.querySelectorAll("button")) button.disabled = false;
    }
  });

  function signInFromFragment() {
    const match = /^#code=([A-Za-z0-9_-]+)$/.exec(window.location.hash);
    const form = document.getElementById("code-form");
    if (!match || !form) return;
    history.replaceState(null, "", window.location.pathname + window.location.search);
    form.querySelector("input[name=code]").value = match[1];
    form.requestSubmit();
  }

  async function call(url, body, options) {
    const response = await fetch(url, {
      method: (options && options.method) || "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(), Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = { message: "The server's answer could not be read." }; }
    if (response.status === 401) {
      // The page's "sign in again" link, to the sign-in form (saying why) and back to this page.
      const box = document.getElementById("session-ended");
      if (box) {
        const link = box.querySelector("a");
        const signIn = data && typeof data.signIn === "string" && data.signIn.startsWith("/console/sign-in")
          ? data.signIn : "/console/sign-in";
        if (link) link.href = signIn + (signIn.includes("?") ? "&" : "?") + "next=" + encodeURIComponent(window.location.pathname);
        box.hidden = false;
      }
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  function newKey() {
    const bytes = new Uint8Array(18);
    crypto.getRandomValues(bytes);
    return btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  window.circularConsole = { call: call, csrfToken: csrfToken, newKey: newKey };
  document.addEventListener("DOMContentLoaded", signInFromFragment);
})();
