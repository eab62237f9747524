// Aftercare admin: progressive enhancement. Pages work as plain HTML; this adds fresh App Bridge session
// tokens to navigation and form posts (embedded), the live template preview, and the SLA countdown.
(function () {
  "use strict";
  var body = document.body;
  var mode = body.getAttribute("data-mode");
  var tokenMeta = document.querySelector('meta[name="aftercare-token"]');
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var currentToken = tokenMeta ? tokenMeta.content : null;

  function hasBridge() { return !!(window.shopify && typeof window.shopify.idToken === "function"); }

  function tokenExpiry(token) {
    try {
      var part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part)).exp * 1000;
    } catch (e) { return 0; }
  }

  function showExpired() {
    var banner = document.getElementById("session-banner");
    if (banner) { banner.hidden = false; banner.scrollIntoView({ block: "start" }); }
  }

  // A fresh token from App Bridge; without it (CDN unreachable) the page's token until it expires.
  async function freshToken() {
    if (hasBridge()) {
      try { currentToken = await window.shopify.idToken(); return currentToken; } catch (e) { /* fall back */ }
    }
    if (currentToken && tokenExpiry(currentToken) > Date.now() + 2000) { return currentToken; }
    showExpired();
    throw new Error("session expired");
  }

  function isInternal(url) { return url.origin === location.origin && url.pathname.indexOf("/admin") === 0; }

  async function go(url) {
    var target = new URL(url, location.href);
    if (mode === "embedded" && isInternal(target) && target.pathname.indexOf("/admin/static/") !== 0) {
      target.searchParams.set("id_token", await freshToken());
    }
    location.assign(target.toString());
  }

  function authHeaders() {
    var headers = { "Accept": "application/json", "X-Requested-With": "fetch" };
    if (mode === "standalone" && csrfMeta) { headers["X-CSRF-Token"] = csrfMeta.content; }
    return headers;
  }

  async function post(url, data) {
    var headers = authHeaders();
    if (mode === "embedded") { headers["Authorization"] = "Bearer " + await freshToken(); }
    var response = await fetch(url, { method: "POST", headers: headers, body: data, credentials: "same-origin" });
    if (response.status === 401 && response.headers.get("X-Shopify-Retry-Invalid-Session-Request") === "1") {
      if (hasBridge()) {
        headers["Authorization"] = "Bearer " + await freshToken();
        response = await fetch(url, { method: "POST", headers: headers, body: data, credentials: "same-origin" });
      } else { showExpired(); }
    }
    return response;
  }

  function showError(message) {
    var box = document.getElementById("form-error");
    if (box) { box.textContent = message; box.hidden = false; box.scrollIntoView({ block: "center" }); }
  }

  if (mode === "embedded") {
    document.addEventListener("click", function (event) {
      var link = event.target.closest("a[href]");
      if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey) { return; }
      var url = new URL(link.getAttribute("href"), location.href);
      if (!isInternal(url) || url.hash && url.pathname === location.pathname) { return; }
      event.preventDefault();
      // App Bridge there but its token call failed: still go, the server's bounce page recovers a session.
      // No App Bridge and the token expired: stay, the session banner explains how to reload.
      go(url).catch(function () { if (hasBridge()) { location.assign(url.toString()); } });
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var method = (form.getAttribute("method") || "get").toLowerCase();
    if (method === "get") {
      if (mode !== "embedded") { return; }
      event.preventDefault();
      var url = new URL(form.getAttribute("action") || location.pathname, location.href);
      new FormData(form).forEach(function (value, key) { if (value !== "") { url.searchParams.set(key, value); } });
      go(url).catch(function () {});
      return;
    }
    if (mode !== "embedded" && mode !== "standalone") { return; }
    event.preventDefault();
    var data = new FormData(form, event.submitter || undefined);
    data.delete("id_token");
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; b.classList.add("busy"); });
    post(form.action, data).then(function (response) {
      return response.json().catch(function () { return { error: "Unexpected answer (" + response.status + ")." }; });
    }).then(function (result) {
      if (result.redirect) { return go(result.redirect); }
      showError(result.error || result.reason || "Something went wrong; nothing was changed.");
    }).catch(function () {
      showError("The request did not go through; check your connection and try again.");
    }).finally(function () {
      buttons.forEach(function (b) { b.disabled = false; b.classList.remove("busy"); });
    });
  });

  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  });

  // Live previews (debounced): the template being edited, and the email brand being typed.
  function livePreview(form, prefix) {
    if (!form) { return; }
    var timer = null;
    var sequence = 0;
    var refresh = function () {
      var mine = ++sequence;
      var data = new FormData(form);
      data.delete("id_token");
      post(form.getAttribute("data-preview-url"), data).then(function (r) { return r.json(); }).then(function (result) {
        if (mine !== sequence) { return; }
        var error = document.getElementById(prefix + "preview-error");
        if (result.ok) {
          error.hidden = true;
          document.getElementById(prefix + "preview-subject").textContent = result.subject;
          document.getElementById(prefix + "preview-frame").srcdoc = result.html;
        } else {
          error.textContent = result.error || "The preview cannot be rendered.";
          error.hidden = false;
        }
      }).catch(function () {});
    };
    form.querySelectorAll("[data-preview]").forEach(function (field) {
      field.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 350); });
    });
  }
  livePreview(document.getElementById("template-form"), "");
  livePreview(document.getElementById("brand-form"), "brand-");

  // SLA countdown: the server computed the remaining seconds; tick them down locally.
  var slas = document.querySelectorAll("[data-sla-remaining]");
  if (slas.length) {
    var started = Date.now();
    var render = function () {
      var elapsed = Math.floor((Date.now() - started) / 1000);
      slas.forEach(function (el) {
        var left = parseInt(el.getAttribute("data-sla-remaining"), 10) - elapsed;
        var abs = Math.abs(left);
        var d = Math.floor(abs / 86400), h = Math.floor(abs % 86400 / 3600), m = Math.floor(abs % 3600 / 60), s = abs % 60;
        var text = (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (d ? "" : s + "s");
        el.textContent = left < 0 ? "Overdue by " + text : text.trim() + " left";
        el.classList.toggle("overdue", left < 0);
      });
    };
    render();
    setInterval(render, 1000);
  }

  // Friendly page without a valid token: with App Bridge, fetch a fresh token and reload with it.
  if (body.hasAttribute("data-bounce") && hasBridge()) {
    window.shopify.idToken().then(function (token) {
      var url = new URL(location.href);
      url.searchParams.set("id_token", token);
      location.replace(url.toString());
    }).catch(function () {});
  }
})();
